//! A real LXD or Incus cluster on loopback addresses, for integration tests. Both kinds go
//! through the same code; what differs (binaries, variables, command spellings) is in
//! [`ServerKind`](crate::ServerKind).
//!
//! Layout of one run (under `$TMPDIR/lxd-testbed/`):
//! ```text
//! 127.X.Y/            run dir; its name reserves the addresses 127.X.Y.1..N
//!   owner             "<pid> <start time>" of the test process that owns the run
//!   kind              `lxd` or `incus`
//!   daemons           one "<pid> <start time> <member>" line per daemon started
//!   home/             HOME (and LXD_CONF / INCUS_CONF) for every client command
//!   n1/ n2/ ...       LXD_DIR / INCUS_DIR of each member
//!   n1.log n1.out     the daemon's --logfile, and its stdout+stderr
//! ```
//! Runs whose owner has died are cleaned up by the next [`LxdCluster::start`] (see
//! [`remove_stale_runs`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Value, json};

use crate::certs::{self, Ca, Pem};
use crate::proc;
use crate::server::ServerKind;

/// The port every member listens on (LXD's default).
pub const PORT: u16 = 8443;
/// `cluster.offline_threshold` set on every cluster. LXD's default (20 s): at its minimum (11 s)
/// members of a busy 2-core machine were seen flapping to `Offline`, which made scenarios flaky.
pub const OFFLINE_THRESHOLD_SECS: u64 = 20;

const CMD_TIMEOUT: Duration = Duration::from_secs(60);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const ONLINE_TIMEOUT: Duration = Duration::from_secs(60);

struct Member {
    name: String,
    addr: Ipv4Addr,
    dir: PathBuf,
    log: PathBuf,
    out: PathBuf,
    child: Option<Child>,
}

/// A running LXD or Incus cluster (or single server) owned by this test. Dropping it stops the
/// daemons it started and removes its directories.
pub struct LxdCluster {
    kind: ServerKind,
    run_dir: PathBuf,
    home: PathBuf,
    members: Vec<Member>,
    clustered: bool,
    /// The CA of LXD's PKI mode, when the cluster runs in it.
    ca: Option<Ca>,
    cluster_cert_pem: String,
    admin: Pem,
    startup: Duration,
}

impl LxdCluster {
    /// Start a real LXD cluster of `n` members (`node1`..`nodeN`), all `Online`, with an admin
    /// client certificate trusted.
    pub fn start(n: usize) -> Result<Self> {
        Self::start_kind(ServerKind::Lxd, n)
    }

    /// [`start`](Self::start) for either kind of server.
    pub fn start_kind(kind: ServerKind, n: usize) -> Result<Self> {
        Self::start_inner(kind, n, Layout::Cluster)
    }

    /// Start a real LXD cluster of `n` members in PKI mode: a CA of its own ([`ca`](Self::ca))
    /// issued every member's server certificate and the cluster certificate every member
    /// presents ([`cluster_cert_pem`](Self::cluster_cert_pem)), and each member names it as
    /// the only issuer of client certificates it asks for. The admin identity is issued by the
    /// CA and, as any client's must be (`core.trust_ca_certificates` is left false), in the
    /// trust store. How LXD 5.0 does it: `seed_pki` and `install_cluster_cert`.
    pub fn start_pki(n: usize) -> Result<Self> {
        Self::start_pki_kind(ServerKind::Lxd, n)
    }

    /// [`start_pki`](Self::start_pki) for either kind of server (Incus kept LXD's files).
    pub fn start_pki_kind(kind: ServerKind, n: usize) -> Result<Self> {
        Self::start_inner(kind, n, Layout::PkiCluster)
    }

    /// Start one LXD server that is *not* clustered (`GET /1.0/cluster/members` gives 500
    /// `Server is not clustered`). Its member name is `node1`, but LXD reports its hostname as
    /// `server_name`; [`cluster_cert_pem`](Self::cluster_cert_pem) is its `server.crt`.
    pub fn start_standalone() -> Result<Self> {
        Self::start_standalone_kind(ServerKind::Lxd)
    }

    /// [`start_standalone`](Self::start_standalone) for either kind of server.
    pub fn start_standalone_kind(kind: ServerKind) -> Result<Self> {
        Self::start_inner(kind, 1, Layout::Standalone)
    }

    fn start_inner(kind: ServerKind, n: usize, layout: Layout) -> Result<Self> {
        ensure!((1..=254).contains(&n), "a cluster needs 1..=254 members, not {n}");
        kind.check_installed()?;
        if let Err(e) = remove_stale_runs() {
            eprintln!("testbed: cleaning up stale runs failed: {e:#}");
        }
        let t0 = Instant::now();
        let mut cluster = Self::allocate(kind, n, layout)?;
        // The daemons start concurrently; only bootstrap and joins are sequential (concurrent
        // joins work on 5.0.2 but gain nothing on two cores and risk raft contention).
        for i in 0..n {
            cluster.spawn_daemon(i)?;
        }
        for i in 0..n {
            cluster.wait_ready(i)?;
        }
        cluster.bootstrap()?;
        for i in 1..n {
            cluster.join(i)?;
        }
        if cluster.ca.is_some() && cluster.clustered {
            cluster.install_cluster_cert()?;
        }
        let cert_file = if cluster.clustered { "cluster.crt" } else { "server.crt" };
        let cert_path = cluster.members[0].dir.join(cert_file);
        cluster.cluster_cert_pem =
            std::fs::read_to_string(&cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
        let admin_pem = cluster.admin.cert_pem.clone();
        cluster.trust_add("testbed-admin", &admin_pem)?;
        if cluster.clustered {
            for i in 0..n {
                cluster.wait_member_status(i, "Online", ONLINE_TIMEOUT)?;
            }
        }
        cluster.startup = t0.elapsed();
        Ok(cluster)
    }

    /// The run's directories and files, before any daemon starts; from its return on, Drop
    /// cleans up whatever happens.
    fn allocate(kind: ServerKind, n: usize, layout: Layout) -> Result<Self> {
        let ca = match layout {
            Layout::PkiCluster => Some(certs::ca_cert("testbed PKI CA")?),
            Layout::Cluster | Layout::Standalone => None,
        };
        let admin = match &ca {
            Some(ca) => ca.issue_client("testbed-admin")?,
            None => certs::client_cert("testbed-admin")?,
        };
        let (run_dir, x, y) = allocate_run_dir(n)?;
        let home = run_dir.join("home");
        let members = (1..=n)
            .map(|i| Member {
                name: format!("node{i}"),
                addr: Ipv4Addr::new(127, x, y, i as u8),
                dir: run_dir.join(format!("n{i}")),
                log: run_dir.join(format!("n{i}.log")),
                out: run_dir.join(format!("n{i}.out")),
                child: None,
            })
            .collect();
        // From here on, Drop cleans up whatever happens.
        let cluster = LxdCluster {
            kind,
            run_dir,
            home,
            members,
            clustered: layout != Layout::Standalone,
            ca,
            cluster_cert_pem: String::new(),
            admin,
            startup: Duration::ZERO,
        };
        std::fs::create_dir_all(kind.conf_dir(&cluster.home))
            .with_context(|| format!("creating {}", cluster.home.display()))?;
        std::fs::write(cluster.run_dir.join("kind"), kind.name()).context("writing the kind file")?;
        for i in 0..n {
            let dir = &cluster.members[i].dir;
            std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        if cluster.ca.is_some() {
            cluster.seed_pki()?;
        }
        Ok(cluster)
    }

    /// Which server this cluster runs.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// `environment.server_version` as the server reports it (`5.0.2`, `6.0.4`).
    pub fn server_version(&self) -> Result<String> {
        let info = self.query("GET", "/1.0", None)?;
        info.pointer("/environment/server_version")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| anyhow!("GET /1.0 carries no environment.server_version: {info}"))
    }

    /// `"127.X.Y.i:8443"` of member `i` (0-based).
    pub fn endpoint(&self, i: usize) -> String {
        format!("{}:{PORT}", self.members[i].addr)
    }

    /// Every member's endpoint, in order.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// `["node1", "node2", ...]`.
    pub fn member_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn is_clustered(&self) -> bool {
        self.clustered
    }

    /// The certificate every member presents (`cluster.crt`; `server.crt` when standalone).
    /// In PKI mode it is issued by [`ca`](Self::ca), which is not it.
    pub fn cluster_cert_pem(&self) -> &str {
        &self.cluster_cert_pem
    }

    /// The CA of a cluster started in PKI mode ([`start_pki`](Self::start_pki)); `None` otherwise.
    pub fn ca(&self) -> Option<&Ca> {
        self.ca.as_ref()
    }

    /// An ECDSA P-384 client identity (CN `testbed-admin`) trusted by the cluster; in PKI mode
    /// issued by the CA.
    pub fn admin(&self) -> &Pem {
        &self.admin
    }

    /// How long [`start`](Self::start) took, from allocation to every member `Online`.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Whether member `i`'s daemon (as started by this fixture) is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// `LXD_DIR` (`INCUS_DIR`) of member `i`.
    pub fn lxd_dir(&self, i: usize) -> &Path {
        &self.members[i].dir
    }

    /// The daemon's log file of member `i`.
    pub fn log_path(&self, i: usize) -> &Path {
        &self.members[i].log
    }

    /// Stop member `i` cleanly (`lxd shutdown` / `incus admin shutdown`, then SIGTERM/SIGKILL if
    /// it hangs). Returns once
    /// the process has exited; the others see it `Offline` only after ~11 s (use
    /// [`wait_member_status`](Self::wait_member_status)).
    pub fn stop_member(&mut self, i: usize) -> Result<()> {
        ensure!(self.members[i].child.is_some(), "{} is not running", self.members[i].name);
        let shutdown = self.admin_cmd(i, &["shutdown", "--timeout", "30"], None);
        let m = &mut self.members[i];
        let Some(mut child) = m.child.take() else { bail!("{} is not running", m.name) };
        let exited = wait_child(&mut child, Duration::from_secs(15));
        if !exited {
            proc::signal(child.id(), libc::SIGTERM);
            if !wait_child(&mut child, Duration::from_secs(10)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        proc::unmount_under(&m.dir);
        if let Err(e) = shutdown {
            eprintln!("testbed: the clean shutdown of {} failed ({e:#}); stopped it by signal", m.name);
        }
        Ok(())
    }

    /// Simulate a crash of member `i`: SIGKILL, no clean shutdown. Its tmpfs mounts are removed
    /// so that [`start_member`](Self::start_member) can restart it from the same `LXD_DIR`.
    pub fn kill_member(&mut self, i: usize) -> Result<()> {
        let m = &mut self.members[i];
        let Some(mut child) = m.child.take() else { bail!("{} is not running", m.name) };
        let _ = child.kill();
        child.wait().with_context(|| format!("reaping the daemon of {}", m.name))?;
        proc::unmount_under(&m.dir);
        Ok(())
    }

    /// PID of member `i`'s daemon, when running.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// Restart member `i` from the same `LXD_DIR` and wait until the other members see it
    /// `Online`.
    pub fn start_member(&mut self, i: usize) -> Result<()> {
        ensure!(self.members[i].child.is_none(), "{} is already running", self.members[i].name);
        self.spawn_daemon(i)?;
        self.wait_ready(i)?;
        if self.clustered {
            self.wait_member_status(i, "Online", ONLINE_TIMEOUT)?;
        }
        Ok(())
    }

    /// Restart several stopped members at once and wait until all are `Online`. Needed after
    /// a full outage: a clustered member is not ready before a quorum of database members
    /// runs, so [`start_member`](Self::start_member) on the first of them alone would time out.
    pub fn start_members(&mut self, which: &[usize]) -> Result<()> {
        for &i in which {
            ensure!(self.members[i].child.is_none(), "{} is already running", self.members[i].name);
        }
        for &i in which {
            self.spawn_daemon(i)?;
        }
        for &i in which {
            self.wait_ready(i)?;
        }
        if self.clustered {
            for &i in which {
                self.wait_member_status(i, "Online", ONLINE_TIMEOUT)?;
            }
        }
        Ok(())
    }

    /// Poll until member `i`'s `status` (as seen by another running member, when there is one)
    /// equals `status` (`Online`, `Offline`, `Evacuated`...).
    pub fn wait_member_status(&self, i: usize, status: &str, timeout: Duration) -> Result<()> {
        let name = &self.members[i].name;
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            let observer =
                self.live_members().into_iter().find(|&j| j != i).or_else(|| self.members[i].child.as_ref().map(|_| i));
            if let Some(j) = observer {
                match self.query_on(j, "GET", &format!("/1.0/cluster/members/{name}"), None) {
                    Ok(v) => {
                        let s = v.get("status").and_then(Value::as_str).unwrap_or("").to_string();
                        if s == status {
                            return Ok(());
                        }
                        last = format!("{s} ({})", v.get("message").and_then(Value::as_str).unwrap_or(""));
                    }
                    Err(e) => last = format!("{e:#}"),
                }
            } else {
                last = "no member is running".into();
            }
            if Instant::now() >= deadline {
                bail!("{name} did not become {status} within {timeout:?}; last seen: {last}\n{}", self.diagnostics(i));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `GET /1.0/cluster/members?recursion=1`.
    pub fn members(&self) -> Result<Vec<Value>> {
        as_array(self.query("GET", "/1.0/cluster/members?recursion=1", None)?)
    }

    /// `GET /1.0/certificates?recursion=1`: the cluster-wide trust store.
    pub fn trust_list(&self) -> Result<Vec<Value>> {
        as_array(self.query("GET", "/1.0/certificates?recursion=1", None)?)
    }

    /// Trust a client certificate as an operator would (`lxc config trust add FILE --name
    /// NAME`, `incus config trust add-certificate FILE --name NAME`). Returns its fingerprint.
    pub fn trust_add(&self, name: &str, cert_pem: &str) -> Result<String> {
        let fp = certs::fingerprint_pem(cert_pem).context("trust_add: not a PEM certificate")?;
        let file = self.home.join(format!("trust-{fp}.crt"));
        std::fs::write(&file, cert_pem).with_context(|| format!("writing {}", file.display()))?;
        let file_arg = file.to_string_lossy().into_owned();
        let result = self.lxc(&self.kind.trust_add_args(&file_arg, name));
        let _ = std::fs::remove_file(&file);
        result?;
        Ok(fp)
    }

    /// Remove a trust entry as an operator would (`lxc|incus config trust remove FINGERPRINT`).
    pub fn trust_remove(&self, fingerprint: &str) -> Result<()> {
        self.lxc(&["config", "trust", "remove", fingerprint]).map(|_| ())
    }

    /// Any API call, as admin over the unix socket of the first running member (`lxc query`,
    /// `incus query`).
    /// Returns the response's `metadata` (`Null` when empty).
    pub fn query(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        self.on_any_member(|i| self.query_on(i, method, path, body))
    }

    /// [`query`](Self::query) on member `i`.
    pub fn query_on(&self, i: usize, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let data = body.map(Value::to_string);
        let mut args = vec!["query", "-X", method];
        if let Some(d) = &data {
            args.extend(["--data", d.as_str()]);
        }
        args.push(path);
        let out = self.lxc_on(i, &args, None)?;
        if out.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&out).with_context(|| format!("`lxc query {path}` printed non-JSON: {out}"))
    }

    /// Run the client (`lxc ARGS` or `incus ARGS`) against the first running member; returns
    /// stdout.
    pub fn lxc(&self, args: &[&str]) -> Result<String> {
        self.on_any_member(|i| self.lxc_on(i, args, None))
    }

    /// Run the client against member `i` (its unix socket, `LXD_DIR`/`INCUS_DIR` set); returns
    /// stdout.
    pub fn lxc_on(&self, i: usize, args: &[&str], stdin: Option<&str>) -> Result<String> {
        self.tool(i, self.kind.client(), &[], args, stdin)
    }

    /// Run a daemon admin command (`lxd ARGS`, `incus admin ARGS`: `waitready`,
    /// `init --preseed`, `shutdown`) with member `i`'s directory.
    fn admin_cmd(&self, i: usize, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let (tool, lead) = self.kind.admin();
        self.tool(i, tool, lead, args, stdin)
    }

    fn tool(&self, i: usize, tool: &str, lead: &[&str], args: &[&str], stdin: Option<&str>) -> Result<String> {
        let m = &self.members[i];
        let mut cmd = Command::new(tool);
        cmd.args(lead)
            .args(args)
            .env(self.kind.dir_var(), &m.dir)
            .env("HOME", &self.home)
            .env(self.kind.conf_var(), self.kind.conf_dir(&self.home));
        let shown = lead.iter().chain(args).copied().collect::<Vec<&str>>().join(" ");
        let out = proc::run(&mut cmd, stdin, CMD_TIMEOUT).with_context(|| format!("`{tool} {shown}` on {}", m.name))?;
        if !out.status.success() {
            bail!(
                "`{tool} {}` on {} failed ({}): {}",
                shown,
                m.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8(out.stdout).with_context(|| format!("`{tool}` printed non-UTF-8"))
    }

    fn live_members(&self) -> Vec<usize> {
        (0..self.members.len()).filter(|&i| self.members[i].child.is_some()).collect()
    }

    /// Try `f` on each running member in turn, moving on only when the member's socket cannot
    /// be reached (so a real API error is never retried elsewhere).
    fn on_any_member<T>(&self, f: impl Fn(usize) -> Result<T>) -> Result<T> {
        let mut last = anyhow!("no member of the cluster is running");
        for i in self.live_members() {
            match f(i) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let text = format!("{e:#}");
                    let unreachable =
                        text.contains("unix.socket") && (text.contains("connect") || text.contains("no such file"));
                    if !unreachable {
                        return Err(e);
                    }
                    last = e;
                }
            }
        }
        Err(last)
    }

    fn spawn_daemon(&mut self, i: usize) -> Result<()> {
        let home = self.home.clone();
        let kind = self.kind;
        let daemon =
            kind.daemon().ok_or_else(|| anyhow!("the {kind} daemon is not installed; {}", kind.install_hint()))?;
        let m = &mut self.members[i];
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.out)
            .with_context(|| format!("opening {}", m.out.display()))?;
        let err = out.try_clone().context("duplicating a file handle")?;
        let mut cmd = Command::new(&daemon);
        cmd.arg("--group")
            .arg("root")
            .arg("--logfile")
            .arg(&m.log)
            .env(kind.dir_var(), &m.dir)
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: setsid() is async-signal-safe; it makes the daemon a session leader so it does
        // not get the terminal's signals (Ctrl-C on `cargo test`); Drop still ends it.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().with_context(|| format!("spawning {} for {}", daemon.display(), m.name))?;
        let pid = child.id();
        let start = proc::start_time(pid).unwrap_or(0);
        m.child = Some(child);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.run_dir.join("daemons"))
            .context("opening the daemons file")?;
        writeln!(f, "{pid} {start} {}", m.name).context("recording a daemon PID")?;
        Ok(())
    }

    fn wait_ready(&mut self, i: usize) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let m = &mut self.members[i];
            if let Some(Ok(Some(status))) = m.child.as_mut().map(Child::try_wait) {
                m.child = None;
                let name = m.name.clone();
                let daemon = self.kind.daemon_name();
                bail!("{daemon} for {name} exited during start-up ({status})\n{}", self.diagnostics(i));
            }
            if self.admin_cmd(i, &["waitready", "--timeout", "2"], None).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let daemon = self.kind.daemon_name();
                bail!(
                    "{daemon} for {} was not ready after {READY_TIMEOUT:?}\n{}",
                    self.members[i].name,
                    self.diagnostics(i)
                );
            }
        }
    }

    fn bootstrap(&self) -> Result<()> {
        let m = &self.members[0];
        let mut preseed = json!({
            "config": {"core.https_address": format!("{}:{PORT}", m.addr)},
            "storage_pools": [{"name": "default", "driver": "dir"}],
            "profiles": [{"name": "default",
                          "devices": {"root": {"path": "/", "pool": "default", "type": "disk"}}}],
        });
        if self.clustered {
            preseed["cluster"] = json!({"server_name": m.name, "enabled": true});
        }
        // Preseed is YAML; JSON is valid YAML.
        self.admin_cmd(0, &["init", "--preseed"], Some(&preseed.to_string()))
            .map_err(|e| anyhow!("{e:#}\n{}", self.diagnostics(0)))
            .context("bootstrapping the first member")?;
        if self.clustered {
            // Not in the preseed (Incus is driven the same way): LXD 5.0.2 answers any PUT of
            // cluster.offline_threshold on a server that is not clustered yet with a dropped
            // connection (EOF), and the preseed's config is applied before clustering is enabled.
            let threshold = OFFLINE_THRESHOLD_SECS.to_string();
            self.lxc_on(0, &["config", "set", "cluster.offline_threshold", &threshold], None)?;
        }
        Ok(())
    }

    fn join(&self, i: usize) -> Result<()> {
        let m = &self.members[i];
        let token = self.lxc_on(0, &["cluster", "add", &m.name, "--quiet"], None).context("creating a join token")?;
        let preseed = json!({"cluster": {
            "enabled": true,
            "server_address": format!("{}:{PORT}", m.addr),
            "cluster_token": token.trim(),
            "member_config": [{"entity": "storage-pool", "name": "default", "key": "source", "value": ""}],
        }});
        self.admin_cmd(i, &["init", "--preseed"], Some(&preseed.to_string()))
            .map_err(|e| anyhow!("{e:#}\n{}\n{}", self.diagnostics(i), self.diagnostics(0)))
            .with_context(|| format!("joining {} to the cluster", m.name))?;
        Ok(())
    }

    /// LXD's PKI mode as its documentation sets it up (canonical/lxd `doc/authentication.md`,
    /// "Using a PKI system": the CA as `server.ca` and a server certificate it issued in place
    /// of the generated one), written before a daemon first starts: at its first start LXD
    /// generates a self-signed `server.crt` where none is, and reads `server.ca` only at start
    /// (`lxd/daemon.go` `init`: `util.LoadCert`, `shared.KeyPairAndCA`).
    ///
    /// - Every member's server certificate is CA-issued: a member in PKI mode names the CA as
    ///   the only issuer in its TLS certificate request (`lxd/util/net.go` `ServerTLSConfig`
    ///   sets `ClientCAs`), and LXD's Go client then withholds a certificate another issuer
    ///   made (Go's `crypto/tls` sends none that the request does not accept). Members talk to
    ///   each other with their server certificates, so a self-signed one cannot join: `Failed
    ///   to update cluster trust: Failed getting existing certificate: not authorized` (5.0.2).
    /// - Joiners also get `cluster.ca -> server.ca`. Bootstrap makes that link itself and
    ///   refuses one left over (`lxd/cluster/membership.go` `Bootstrap`,
    ///   `membershipCheckNoLeftoverClusterCert`), but a join writes only `cluster.crt` and
    ///   `cluster.key` (`lxd/api_cluster.go` `clusterPutJoin`: `util.WriteCert` with no CA), and
    ///   a member reads its CA as `cluster.ca` once it has a `cluster.crt` (`util.LoadCert`):
    ///   without the link a joined member asks for no issuer and is not in PKI mode.
    fn seed_pki(&self) -> Result<()> {
        let ca = self.ca.as_ref().ok_or_else(|| anyhow!("not a PKI cluster"))?;
        for (i, m) in self.members.iter().enumerate() {
            let server = ca.issue_server(&format!("root@{}", m.name), &[m.addr.to_string()])?;
            let files =
                [("server.ca", &ca.pem.cert_pem), ("server.crt", &server.cert_pem), ("server.key", &server.key_pem)];
            for (file, pem) in files {
                let path = m.dir.join(file);
                std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
            }
            if i > 0 && self.clustered {
                let link = m.dir.join("cluster.ca");
                std::os::unix::fs::symlink("server.ca", &link)
                    .with_context(|| format!("linking {}", link.display()))?;
            }
        }
        Ok(())
    }

    /// Bootstrap generates a self-signed `cluster.crt` whatever `server.ca` says, and cannot
    /// start from one put there before (`membershipCheckNoLeftoverClusterCert`). The cluster
    /// certificate becomes CA-issued the way an operator replaces it, `lxc cluster
    /// update-certificate` (`PUT /1.0/cluster/certificate`): every member writes it and reloads
    /// it together with its `cluster.ca` (`lxd/api_cluster.go` `clusterCertificatePut`).
    fn install_cluster_cert(&self) -> Result<()> {
        let ca = self.ca.as_ref().ok_or_else(|| anyhow!("not a PKI cluster"))?;
        let sans: Vec<String> = self.members.iter().map(|m| m.addr.to_string()).collect();
        let cert = ca.issue_server("testbed-cluster", &sans)?;
        let body = json!({"cluster_certificate": cert.cert_pem, "cluster_certificate_key": cert.key_pem});
        self.query_on(0, "PUT", "/1.0/cluster/certificate", Some(&body))
            .context("installing the CA-issued cluster certificate")?;
        Ok(())
    }

    /// Tails of member `i`'s daemon log and output, for error messages.
    fn diagnostics(&self, i: usize) -> String {
        let m = &self.members[i];
        format!(
            "--- tail of {} ---\n{}\n--- tail of {} (daemon stdout/stderr) ---\n{}",
            m.log.display(),
            proc::tail(&m.log, 20),
            m.out.display(),
            proc::tail(&m.out, 20)
        )
    }
}

impl Drop for LxdCluster {
    fn drop(&mut self) {
        // SIGTERM everyone at once (a clean stop of each daemon; sequential `lxd shutdown` of the
        // last member would wait ~10 s for a lost quorum), then reap, then SIGKILL stragglers.
        for m in &self.members {
            if let Some(child) = &m.child {
                proc::signal(child.id(), libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let left = deadline.saturating_duration_since(Instant::now());
                if !wait_child(&mut child, left) {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        proc::unmount_under(&self.run_dir);
        if let Err(e) = std::fs::remove_dir_all(&self.run_dir) {
            eprintln!("testbed: could not remove {}: {e}", self.run_dir.display());
        }
    }
}

/// What [`LxdCluster::start_inner`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Standalone,
    Cluster,
    /// A cluster in LXD's PKI mode.
    PkiCluster,
}

fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) => {}
            Err(_) => return false,
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn as_array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        other => bail!("expected a JSON array, got {other}"),
    }
}

fn base_dir() -> PathBuf {
    std::env::temp_dir().join("lxd-testbed")
}

/// Reserve a run dir named `127.X.Y` (X from a random byte, never 0; Y from our PID, random on
/// retries) whose addresses 127.X.Y.1..=n are free on port 8443, and record ourselves as owner.
fn allocate_run_dir(n: usize) -> Result<(PathBuf, u8, u8)> {
    let base = base_dir();
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let pid = std::process::id();
    let me = proc::start_time(pid).unwrap_or(0);
    for attempt in 0..64u32 {
        let r = crate::random_u64();
        let x = 1 + (r % 254) as u8;
        let y = if attempt < 8 { (pid % 256) as u8 } else { (r >> 8) as u8 };
        let free = (1..=n).all(|i| TcpListener::bind((Ipv4Addr::new(127, x, y, i as u8), PORT)).is_ok());
        if !free {
            continue;
        }
        let dir = base.join(format!("127.{x}.{y}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                let mut f = File::create(dir.join("owner")).context("writing the owner file")?;
                writeln!(f, "{pid} {me}").context("writing the owner file")?;
                return Ok((dir, x, y));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!("could not find free loopback addresses for {n} members in 64 attempts")
}

/// Remove the runs of earlier test processes that died without cleaning up: stop their LXD or
/// Incus daemons (only those recorded in the run's `daemons` file, or whose `LXD_DIR` /
/// `INCUS_DIR` lies in the run dir), unmount what they left, delete the directory. Runs whose
/// owner is alive are left alone.
pub fn remove_stale_runs() -> Result<()> {
    let base = base_dir();
    let Ok(entries) = std::fs::read_dir(&base) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("127.") {
            continue;
        }
        let dir = entry.path();
        let owner = std::fs::read_to_string(dir.join("owner")).ok();
        let owner_alive = match owner.as_deref().map(parse_pid_start) {
            Some(Some((pid, start))) => proc::alive(pid, start),
            // No (readable) owner file: the owner may be between create_dir and writing it.
            _ => entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().map(|age| age < Duration::from_secs(300)).unwrap_or(true))
                .unwrap_or(true),
        };
        if owner_alive {
            continue;
        }
        let mut daemons: Vec<(u32, u64)> = std::fs::read_to_string(dir.join("daemons"))
            .unwrap_or_default()
            .lines()
            .filter_map(parse_pid_start)
            .filter(|&(pid, start)| proc::alive(pid, start) && is_daemon_in(pid, &dir))
            .collect();
        daemons.extend(daemons_in(&dir));
        daemons.sort();
        daemons.dedup();
        for &(pid, _) in &daemons {
            proc::signal(pid, libc::SIGTERM);
        }
        for &(pid, start) in &daemons {
            proc::terminate(pid, start, Duration::from_secs(10));
        }
        proc::unmount_under(&dir);
        // Two cleanups can meet at one stale run (tests start clusters in parallel): whoever
        // removes it second finds it gone, which is the outcome both wanted.
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing stale run {}", dir.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_pid_start(line: &str) -> Option<(u32, u64)> {
    let mut it = line.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Whether `pid` is an `lxd` (`incusd`) process whose `LXD_DIR` (`INCUS_DIR`) is inside `dir`.
/// Both kinds are checked whatever the run's `kind` file says: it may not have been written.
fn is_daemon_in(pid: u32, dir: &Path) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    ServerKind::ALL.iter().any(|kind| {
        let name = kind.daemon_name().as_bytes();
        let is_daemon = argv0 == name || (argv0.ends_with(name) && argv0[..argv0.len() - name.len()].ends_with(b"/"));
        let prefix = format!("{}={}/", kind.dir_var(), dir.display());
        is_daemon && environ.split(|&b| b == 0).any(|var| var.starts_with(prefix.as_bytes()))
    })
}

/// Every live daemon process whose directory is inside `dir` (catches a daemon that was spawned
/// but not yet recorded when its owner died).
fn daemons_in(dir: &Path) -> Vec<(u32, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| is_daemon_in(pid, dir))
        .filter_map(|pid| Some((pid, proc::start_time(pid)?)))
        .collect()
}
