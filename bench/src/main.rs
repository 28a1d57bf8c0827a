//! `make bench`: how fast a hook of lxd-integrator is, how it grows, and how close it is to the
//! limit (the same LXD requests made by a raw HTTP/1.1 client on one kept-alive TLS connection,
//! plus the same hook-tool calls made by a shell loop). See docs/benchmarks.md.
//!
//! Usage: bench --binary PATH [--quick | --with-1000] [--doc PATH]

mod monitor;
mod plot;
mod profile;
mod pure;
mod raw;

use anyhow::{Context, Result, bail, ensure};
use jujusim::{CopyMode, HookRecord, RelationId, Sim, ToolCall};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testbed::LxdCluster;
use testbed::certs::{self, Pem};

const APP: &str = "lxd-integrator";
const UNIT: &str = "lxd-integrator/0";
const REQ: &str = "req";
const MEMBER: usize = 0;
/// Requests the charm keeps in flight for long lists (`MAX_IN_FLIGHT` in src/lxd/client.rs).
const CHARM_IN_FLIGHT: usize = 4;
/// Certificates at the end of the pool that no world trusts: the one a unit swaps its own
/// for (one unit's change), and the one the raw limit adds and deletes.
const SPARES: usize = 2;

/// The worlds of requirer units, one certificate each. The largest is built last, after
/// every other LXD measure (its thousand trust entries would slow every request made after
/// it), and left related: the cluster's teardown takes its entries.
fn unit_counts(quick: bool) -> Vec<u32> {
    if quick { vec![1, 10] } else { vec![1, 10, 100, 1000] }
}

/// Worlds this large take fewer runs per row: each run of a full pass is a thousand
/// relation-get processes, and its `sh` replay as many again.
const LARGE_WORLD: u32 = 1000;

struct Opts {
    quick: bool,
    /// Also the N=1,000 point (LXD 5.0 makes each add/delete cost O(store size); ~25 min here).
    with_1000: bool,
    binary: PathBuf,
    doc: Option<PathBuf>,
}

fn parse_args() -> Result<Opts> {
    let mut quick = false;
    let mut with_1000 = false;
    let mut binary = None;
    let mut doc = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--with-1000" => with_1000 = true,
            "--binary" => binary = args.next().map(PathBuf::from),
            "--doc" => doc = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!(
                    "bench --binary target/<musl>/release/lxd-integrator [--quick | --with-1000] [--doc docs/benchmarks.md]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    let binary = binary.context("--binary PATH (the static release build, `make build`) is required")?;
    Ok(Opts { quick, with_1000, binary, doc })
}

/// median, min, max
fn stat(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 };
    (med, s[0], s[n - 1])
}

fn fmt_stat(v: &[f64], prec: usize) -> String {
    let (m, lo, hi) = stat(v);
    if v.is_empty() {
        return "–".into();
    }
    if v.len() == 1 {
        return format!("{m:.prec$}");
    }
    format!("{m:.prec$} ({lo:.prec$}–{hi:.prec$})")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One measured hook.
struct Sample {
    wall_ms: f64,
    calls: Vec<ToolCall>,
}

/// One action of a measured cycle; it runs the measured hook once.
type Step<'a> = dyn FnMut(&mut Sim) -> Result<()> + 'a;

/// Everything measured for one row of the table.
#[derive(Default)]
struct Row {
    name: String,
    wall: Vec<f64>,
    tools: Vec<f64>,
    /// Sum of the hook-tool calls' own durations (as the simulator records them).
    tool_ms: Vec<f64>,
    rel_gets: Vec<f64>,
    tool_names: String,
    lxd_reqs: Vec<f64>,
    rss_kib: Vec<f64>,
    /// The limit: raw LXD requests, and the same tool calls through sh.
    raw_lxd: Vec<f64>,
    /// How many connections the raw limit used (the faster way for this row).
    raw_conns: usize,
    sh_tools: Vec<f64>,
}

impl Row {
    fn new(name: &str) -> Row {
        Row { name: name.into(), ..Default::default() }
    }
    fn limit(&self) -> f64 {
        stat(&self.raw_lxd).0 + stat(&self.sh_tools).0
    }
    fn ratio(&self) -> f64 {
        stat(&self.wall).0 / self.limit()
    }
}

struct Bench {
    opts: Opts,
    cluster: LxdCluster,
    work: PathBuf,
    charm_dir: PathBuf,
    req_dir: PathBuf,
    identity: Pem,
    tls: Arc<rustls::ClientConfig>,
    pool: Vec<Pem>,
    proxy: monitor::Proxy,
    rss_file: PathBuf,
    model_uuids: Vec<String>,
    /// Models whose trust entries are left to the throwaway cluster's teardown (the largest
    /// world of requirer units: deleting its entries one by one would cost LXD 5.0 minutes).
    left_to_teardown: Vec<String>,
    replays: usize,
    /// The steady hook's timelines, for "where the time goes".
    profiles: Vec<profile::Profile>,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("bench: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let opts = parse_args()?;
    let binary = std::fs::canonicalize(&opts.binary).with_context(|| format!("{}", opts.binary.display()))?;
    let binary_size = std::fs::metadata(&binary)?.len();
    let t_all = Instant::now();
    let work = std::env::temp_dir().join(format!("lxd-integrator-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let charm_dir = work.join("charm");
    xtask::assemble_charm_dir(&binary, &charm_dir).context("assembling the charm")?;
    let req_dir = work.join("req-charm");
    write_requirer(&req_dir)?;

    eprintln!("bench: starting a 3-member LXD cluster");
    let cluster = LxdCluster::start(3).context("starting the LXD cluster")?;
    eprintln!("bench: cluster up in {:.1?}", cluster.startup_time());
    let identity = certs::client_cert("bench-integrator")?;
    cluster.trust_add("bench-integrator", &identity.cert_pem)?;
    let tls = raw::config(&identity.cert_pem, &identity.key_pem, certs::pem_to_der(cluster.cluster_cert_pem())?)?;
    let member_dir = cluster.lxd_dir(MEMBER).to_path_buf();
    let proxy = monitor::Proxy::start(
        &std::fs::read_to_string(member_dir.join("cluster.crt"))?,
        &std::fs::read_to_string(member_dir.join("cluster.key"))?,
        cluster.endpoint(MEMBER),
        tls.clone(),
    )?;
    let max_n = if opts.quick {
        10
    } else if opts.with_1000 {
        1000
    } else {
        100
    };
    // One certificate per requirer unit of the largest world, and the spares (`SPARES`).
    let pool_size = max_n.max(*unit_counts(opts.quick).last().unwrap_or(&0) as usize) + SPARES;
    let t = Instant::now();
    let pool: Vec<Pem> =
        (0..pool_size).map(|i| certs::client_cert(&format!("bench-client-{i}"))).collect::<Result<_>>()?;
    eprintln!("bench: {} client certificates generated in {:.1?}", pool.len(), t.elapsed());
    let rss_file = work.join("rss.txt");
    let mut b = Bench {
        opts,
        cluster,
        work: work.clone(),
        charm_dir,
        req_dir,
        identity,
        tls,
        pool,
        proxy,
        rss_file,
        model_uuids: Vec::new(),
        left_to_teardown: Vec::new(),
        replays: 0,
        profiles: Vec::new(),
    };
    let result = b.run(binary_size, t_all);
    let cleanup = b.cleanup();
    drop(b);
    let _ = std::fs::remove_dir_all(&work);
    result.and(cleanup)
}

fn write_requirer(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("metadata.yaml"),
        "name: bench-requirer\nsummary: no-op requirer for benchmarks\ndescription: every hook does nothing\nrequires:\n  lxd:\n    interface: lxd\n",
    )?;
    let d = dir.join("dispatch");
    std::fs::write(&d, "#!/bin/sh\nexit 0\n")?;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The number of requirer units a row's world holds (`... 100 unit(s) ...`).
fn units_in(name: &str) -> Option<u32> {
    let (head, _) = name.split_once(" unit(s)")?;
    head.rsplit(' ').next()?.parse().ok()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Bench {
    fn reps(&self) -> usize {
        if self.opts.quick { 3 } else { 5 }
    }
    fn steady_reps(&self) -> usize {
        if self.opts.quick { 9 } else { 15 }
    }
    fn instrumented_reps(&self) -> usize {
        if self.opts.quick { 1 } else { 3 }
    }

    fn cloud_spec(&self, endpoint: &str) -> serde_json::Value {
        json!({
            "type": "lxd", "name": "localhost", "region": "localhost",
            "endpoint": format!("https://{endpoint}"),
            "credential": {"auth-type": "certificate", "attrs": {
                "client-cert": self.identity.cert_pem,
                "client-key": self.identity.key_pem,
                "server-cert": self.cluster.cluster_cert_pem(),
            }},
            "is-controller-cloud": false
        })
    }

    /// The integrator related to `req_units` requirer units, each sending its own certificate
    /// from the pool when `with_certs`, and LXD trusting them all.
    ///
    /// The integrator is trusted last: until then each of its hooks ends at `credential-get`,
    /// and `juju trust` runs one pass that reads every databag and adds every certificate.
    /// Related while trusted, each unit's `-joined` and `-changed` would be a full pass over
    /// the units already there, N²/2 `relation-get` processes (half a million at N=1,000)
    /// to reach the same model; the rows measure that model, not the road to it.
    fn new_world(&mut self, name: &str, req_units: u32, with_certs: bool) -> Result<(Sim, RelationId)> {
        let t = Instant::now();
        let root = self.work.join(name);
        let mut sim = Sim::new(&root, name)?;
        sim.set_copy_mode(CopyMode::HardLink);
        sim.set_hook_timeout(Duration::from_secs(900));
        self.model_uuids.push(sim.model_uuid());
        sim.set_cloud_spec(self.cloud_spec(&self.cluster.endpoint(MEMBER)))?;
        sim.deploy(APP, &self.charm_dir, 1)?;
        sim.deploy(REQ, &self.req_dir, req_units)?;
        let rel = sim.relate(&format!("{APP}:api"), &format!("{REQ}:lxd"))?;
        let related = t.elapsed();
        if with_certs {
            for i in 0..req_units as usize {
                let j = self.cert_json(i..i + 1);
                sim.write_relation_data(rel, &format!("{REQ}/{i}"), "client_certificates", Some(&j))?;
            }
        }
        let sent = t.elapsed();
        sim.trust(APP, true)?;
        sim.assert_no_failed_hooks()?;
        let st = sim.unit_status(UNIT)?;
        ensure!(st.0 == "active", "integrator not active after relating: {st:?}");
        eprintln!(
            "bench: world {name}: {req_units} unit(s) deployed and related in {:.1?}, certificates sent in {:.1?}, trusted in {:.1?}",
            related,
            sent - related,
            t.elapsed() - sent
        );
        Ok((sim, rel))
    }

    /// Runs `act`, which must run `hook` on the integrator unit; returns that hook's record and
    /// its tool calls.
    fn measured(&mut self, sim: &mut Sim, hook: &str, act: impl FnOnce(&mut Sim) -> Result<()>) -> Result<Sample> {
        let before = sim.hooks()?.len();
        let tools_path = sim.root().join("records/tool-calls.jsonl");
        let off = std::fs::metadata(&tools_path).map(|m| m.len()).unwrap_or(0);
        act(sim)?;
        let hooks: Vec<HookRecord> = sim.hooks()?.split_off(before);
        let failed: Vec<String> = hooks
            .iter()
            .filter(|h| h.failed())
            .map(|h| format!("{} {}: {}", h.unit, h.hook, h.stderr.trim()))
            .collect();
        ensure!(failed.is_empty(), "hooks failed: {failed:?}");
        let mine: Vec<&HookRecord> = hooks.iter().filter(|h| h.unit == UNIT && h.hook == hook && h.ran).collect();
        ensure!(
            mine.len() == 1,
            "expected one {hook} on {UNIT}, got {} (hooks: {:?})",
            mine.len(),
            hooks.iter().map(|h| format!("{} {}", h.unit, h.hook)).collect::<Vec<_>>()
        );
        let rec = mine[0];
        let mut f = std::fs::File::open(&tools_path)?;
        f.seek(std::io::SeekFrom::Start(off))?;
        let mut calls = Vec::new();
        for line in std::io::BufReader::new(f).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let c: ToolCall = serde_json::from_str(&line)?;
            if c.context_id == rec.context_id {
                calls.push(c);
            }
        }
        Ok(Sample { wall_ms: rec.duration_ms, calls })
    }

    /// Runs a cycle of steps (each: a row and the action that runs `hook` once) `reps` times
    /// plain (wall time, tool calls, and the sh replay of those calls), then `ireps` times
    /// instrumented (LXD requests through the counting proxy, RSS through the tool shims).
    /// `after` runs after each measured action and each replay, outside what is counted.
    #[allow(clippy::too_many_arguments)]
    fn measure_cycle(
        &mut self,
        sim: &mut Sim,
        rows: &mut [Row],
        hook: &str,
        steps: &mut [&mut Step<'_>],
        replay_trigger: &mut dyn FnMut(&mut Sim, usize) -> Result<()>,
        after: &mut dyn FnMut(&mut Sim) -> Result<()>,
        rel: RelationId,
        (reps, ireps): (usize, usize),
    ) -> Result<()> {
        for _ in 0..reps {
            for (row, act) in rows.iter_mut().zip(steps.iter_mut()) {
                let s = self.measured(sim, hook, &mut **act)?;
                after(sim)?;
                row.wall.push(s.wall_ms);
                row.tools.push(s.calls.len() as f64);
                row.tool_ms.push(s.calls.iter().map(|c| c.duration_us as f64 / 1000.0).sum());
                row.rel_gets.push(s.calls.iter().filter(|c| c.tool == "relation-get").count() as f64);
                if row.tool_names.is_empty() {
                    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
                    for c in &s.calls {
                        *by.entry(c.tool.as_str()).or_default() += 1;
                    }
                    row.tool_names = by.iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(", ");
                }
                // The same tool calls through sh, in a hook of the same kind.
                let r = self.replay(sim, hook, &s.calls, rel, &mut *replay_trigger)?;
                after(sim)?;
                row.sh_tools.push(r);
            }
        }
        for _ in 0..ireps {
            for (row, act) in rows.iter_mut().zip(steps.iter_mut()) {
                sim.set_cloud_spec(self.cloud_spec(&self.proxy.addr))?;
                wrap_tools(sim, &self.rss_file, true)?;
                let _ = std::fs::remove_file(&self.rss_file);
                let c0 = self.proxy.count();
                let res = self.measured(sim, hook, &mut **act);
                let c1 = self.proxy.count();
                wrap_tools(sim, &self.rss_file, false)?;
                sim.set_cloud_spec(self.cloud_spec(&self.cluster.endpoint(MEMBER)))?;
                res?;
                after(sim)?;
                row.lxd_reqs.push((c1 - c0) as f64);
                let text = std::fs::read_to_string(&self.rss_file).unwrap_or_default();
                let peak = text.lines().filter_map(|l| l.trim().parse::<f64>().ok()).fold(0.0, f64::max);
                row.rss_kib.push(peak);
            }
        }
        Ok(())
    }

    /// Replaces the unit's dispatch by a shell script making `calls` (same argv, same stdin),
    /// fires a hook of the same kind, and returns its wall time.
    fn replay(
        &mut self,
        sim: &mut Sim,
        hook: &str,
        calls: &[ToolCall],
        rel: RelationId,
        trigger: &mut dyn FnMut(&mut Sim, usize) -> Result<()>,
    ) -> Result<f64> {
        self.replays += 1;
        let dir = self.work.join(format!("replay-{}", self.replays));
        std::fs::create_dir_all(&dir)?;
        let mut script = String::from("#!/bin/sh\nexec >/dev/null 2>&1\n");
        for (i, c) in calls.iter().enumerate() {
            let argv: Vec<String> =
                std::iter::once(c.tool.as_str()).chain(c.args.iter().map(String::as_str)).map(shell_quote).collect();
            let input = match &c.stdin {
                Some(s) if s.len() >= 60 * 1024 => {
                    // Recorded stdin is cut at 64 KiB: rebuild it from what the call committed.
                    let p = dir.join(format!("stdin-{i}"));
                    std::fs::write(&p, full_stdin(sim, c, rel)?)?;
                    p
                }
                Some(s) => {
                    let p = dir.join(format!("stdin-{i}"));
                    std::fs::write(&p, s)?;
                    p
                }
                None => PathBuf::from("/dev/null"),
            };
            writeln!(script, "{} < {}", argv.join(" "), shell_quote(&input.to_string_lossy()))?;
        }
        script.push_str("exit 0\n");
        let unit_dir = sim.unit_dir(UNIT)?;
        let dispatch = unit_dir.join("dispatch");
        let saved = unit_dir.join("dispatch.bench-orig");
        std::fs::rename(&dispatch, &saved)?;
        std::fs::write(&dispatch, script)?;
        std::fs::set_permissions(&dispatch, std::fs::Permissions::from_mode(0o755))?;
        let n = self.replays;
        let res = self.measured(sim, hook, |s| trigger(s, n));
        std::fs::rename(&saved, &dispatch)?;
        let _ = std::fs::remove_dir_all(&dir);
        let s = res?;
        ensure!(s.calls.len() == calls.len(), "replay made {} tool calls, the hook {}", s.calls.len(), calls.len());
        ensure!(
            s.calls.iter().all(|c| c.exit_code == 0) || calls.iter().any(|c| c.exit_code != 0),
            "a replayed tool call failed"
        );
        Ok(s.wall_ms)
    }

    fn raw_conn(&self) -> Result<raw::Conn> {
        raw::Conn::open(&self.tls, &self.cluster.endpoint(MEMBER))
    }

    /// The raw limit of adding then removing `n` certificates with `k` connections:
    /// (add ms, remove ms). Each pass opens its connections as a hook does, observes on the
    /// first (`GET /1.0`, members, trust store), then spreads the changes over all `k`.
    fn raw_changes(&self, n: usize, k: usize) -> Result<(f64, f64)> {
        let certs: Vec<(String, String, String)> = self.pool[..n]
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("bench-raw-{i}"), p.cert_base64(), p.fingerprint.clone()))
            .collect();
        let add = self.raw_spread(&certs, k, |c, (name, b64, _)| raw::add(c, name, b64))?;
        let remove = self.raw_spread(&certs, k, |c, (_, _, fp)| raw::remove(c, fp))?;
        Ok((add, remove))
    }

    /// ms to observe, then run `op` over `items` with `k` connections at once (the first one
    /// reused, the others opened by their own thread: a full handshake each, as in the charm).
    fn raw_spread<T: Sync>(
        &self,
        items: &[T],
        k: usize,
        op: impl Fn(&mut raw::Conn, &T) -> Result<()> + Sync,
    ) -> Result<f64> {
        let t = Instant::now();
        let mut first = self.raw_conn()?;
        raw::observe(&mut first)?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = |c: &mut raw::Conn| -> Result<()> {
            while let Some(item) = items.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                op(c, item)?;
            }
            Ok(())
        };
        std::thread::scope(|s| -> Result<()> {
            let others: Vec<_> = (1..k).map(|_| s.spawn(|| work(&mut self.raw_conn()?))).collect();
            work(&mut first)?;
            for h in others {
                h.join().map_err(|_| anyhow::anyhow!("thread panicked"))??;
            }
            Ok(())
        })?;
        Ok(ms(t.elapsed()))
    }

    fn raw_observe(&self) -> Result<f64> {
        let t = Instant::now();
        let mut c = self.raw_conn()?;
        raw::observe(&mut c)?;
        Ok(ms(t.elapsed()))
    }

    /// The raw limit of one unit swapping its certificate: observe, add one entry, delete one,
    /// on the one connection the charm uses for a short list (the spare that no world trusts,
    /// added and deleted again, so the store keeps its size).
    fn raw_change(&self) -> Result<f64> {
        let spare = &self.pool[self.pool.len() - 1];
        let b64 = spare.cert_base64();
        let t = Instant::now();
        let mut c = self.raw_conn()?;
        raw::observe(&mut c)?;
        raw::add(&mut c, "bench-raw-change", &b64)?;
        raw::remove(&mut c, &spare.fingerprint)?;
        Ok(ms(t.elapsed()))
    }

    /// Runs (plain, instrumented) per row of a world of `u` units: fewer from [`LARGE_WORLD`] on.
    fn counts_for(&self, u: u32) -> (usize, usize) {
        if u >= LARGE_WORLD { (3, 1) } else { (self.reps(), self.instrumented_reps()) }
    }

    /// The rows of a world of `u` requirer units with one certificate each: the steady
    /// `update-status`, a change that asks nothing new (an address), one unit swapping its
    /// certificate, and one unit joining. The `last` world is left related: the cluster's
    /// teardown takes its entries (deleting a thousand, one by one, would take LXD 5.0 minutes).
    fn unit_rows(&mut self, u: u32, last: bool) -> Result<Vec<Row>> {
        eprintln!(
            "bench: {u} requirer unit(s): steady update-status, a quiet change, one unit's change, one unit joining"
        );
        let (mut sim, rel) = self.new_world(&format!("units-{u}"), u, true)?;
        let counts = self.counts_for(u);
        let t = Instant::now();
        let mut rows = vec![self.steady_row(&mut sim, rel, u, counts)?];
        if u == 1 || u == 100 {
            let title = format!("update-status, steady, {u} unit(s) × 1 cert");
            self.profiles.push(profile::record(&mut sim, UNIT, "update-status", counts.0.max(5), &title)?);
        }
        rows.push(self.quiet_row(&mut sim, rel, u, counts)?);
        rows.push(self.change_row(&mut sim, rel, u, counts)?);
        rows.push(self.join_row(&mut sim, rel, u, counts)?);
        eprintln!("bench: {u} requirer unit(s): rows measured in {:.1?}", t.elapsed());
        if last {
            self.left_to_teardown.push(sim.model_uuid());
        } else {
            sim.unrelate(rel)?;
        }
        sim.assert_no_failed_hooks()?;
        Ok(rows)
    }

    fn raw_observes(&self, row: &mut Row, runs: usize) -> Result<()> {
        for _ in 0..runs {
            row.raw_lxd.push(self.raw_observe()?);
        }
        Ok(())
    }

    fn steady_row(&mut self, sim: &mut Sim, rel: RelationId, u: u32, counts: (usize, usize)) -> Result<Row> {
        // The steady hook is cheap and its ratio is the one with a target (<= 1.0x): more runs,
        // so that a burst of load on the shared machine does not make the median.
        let counts = (counts.0.max(self.steady_reps()), counts.1);
        let mut row = [Row::new(&format!("update-status, steady, {u} unit(s) × 1 cert"))];
        self.measure_cycle(
            sim,
            &mut row,
            "update-status",
            &mut [&mut |s: &mut Sim| s.run_hook(UNIT, "update-status")],
            &mut |s, _| s.run_hook(UNIT, "update-status"),
            &mut |_| Ok(()),
            rel,
            counts,
        )?;
        let [mut row] = row;
        self.raw_observes(&mut row, counts.0)?;
        Ok(row)
    }

    /// Juju rewriting one unit's address: a change hook with nothing new to ask.
    fn quiet_row(&mut self, sim: &mut Sim, rel: RelationId, u: u32, counts: (usize, usize)) -> Result<Row> {
        sim.run_hook(UNIT, "update-status")?;
        let mut quiet = [Row::new(&format!("api-relation-changed, quiet (address), {u} unit(s) × 1 cert"))];
        // Each write a new address, so each fires a change hook; the measured writes and the
        // replays' triggers draw from two networks and never repeat each other.
        let move_unit = |s: &mut Sim, net: u8, k: usize| {
            let address = format!("10.{net}.{}.{}", k / 250, k % 250);
            s.write_relation_data(rel, &format!("{REQ}/0"), "ingress-address", Some(&address))
        };
        let mut moves = 0usize;
        self.measure_cycle(
            sim,
            &mut quiet,
            "api-relation-changed",
            &mut [&mut |s: &mut Sim| {
                moves += 1;
                move_unit(s, 66, moves)
            }],
            &mut |s, k| move_unit(s, 77, k),
            &mut |_| Ok(()),
            rel,
            counts,
        )?;
        let [mut quiet] = quiet;
        self.raw_observes(&mut quiet, counts.0)?;
        Ok(quiet)
    }

    /// One unit swaps its certificate for another: a full pass over every databag, one entry
    /// deleted and one added.
    fn change_row(&mut self, sim: &mut Sim, rel: RelationId, u: u32, counts: (usize, usize)) -> Result<Row> {
        let unit0 = format!("{REQ}/0");
        let spare = &self.pool[self.pool.len() - 2];
        let certs = [self.cert_json(0..1), serde_json::to_string(&[spare.cert_pem.as_str()])?];
        let mut row = [Row::new(&format!("api-relation-changed, one unit's new cert, {u} unit(s) × 1 cert"))];
        let mut swaps = 0usize;
        self.measure_cycle(
            sim,
            &mut row,
            "api-relation-changed",
            &mut [&mut |s: &mut Sim| {
                swaps += 1;
                s.write_relation_data(rel, &unit0, "client_certificates", Some(&certs[swaps % 2]))
            }],
            &mut |s, k| s.write_relation_data(rel, &unit0, "bench-replay", Some(&k.to_string())),
            &mut |_| Ok(()),
            rel,
            counts,
        )?;
        let [mut row] = row;
        for _ in 0..counts.0 {
            row.raw_lxd.push(self.raw_change()?);
        }
        Ok(row)
    }

    /// A requirer unit joins (before it sends anything): a full pass over every databag, no
    /// change to LXD. The unit is removed again after each join, out of what is measured, so
    /// every join meets the same `u` units.
    fn join_row(&mut self, sim: &mut Sim, rel: RelationId, u: u32, counts: (usize, usize)) -> Result<Row> {
        let mut row = [Row::new(&format!("api-relation-joined, one unit joins {u} unit(s) × 1 cert"))];
        let joined: std::cell::RefCell<Option<String>> = Default::default();
        let join = |s: &mut Sim| -> Result<()> {
            *joined.borrow_mut() = Some(s.add_unit(REQ)?);
            Ok(())
        };
        self.measure_cycle(
            sim,
            &mut row,
            "api-relation-joined",
            &mut [&mut |s: &mut Sim| join(s)],
            &mut |s, _| join(s),
            &mut |s| joined.borrow_mut().take().map_or(Ok(()), |unit| s.remove_unit(&unit)),
            rel,
            counts,
        )?;
        let [mut row] = row;
        for _ in 0..counts.0 {
            row.raw_lxd.push(self.raw_observe()?);
        }
        Ok(row)
    }

    fn cert_json(&self, range: std::ops::Range<usize>) -> String {
        serde_json::to_string(&self.pool[range].iter().map(|p| p.cert_pem.as_str()).collect::<Vec<_>>()).unwrap()
    }

    fn run(&mut self, binary_size: u64, t_all: Instant) -> Result<()> {
        let mut rows: Vec<Row> = Vec::new();
        let ns: Vec<usize> = if self.opts.quick {
            vec![1, 10]
        } else if self.opts.with_1000 {
            vec![1, 10, 100, 1000]
        } else {
            vec![1, 10, 100]
        };
        let us = unit_counts(self.opts.quick);
        let (small, large) = us.split_at(us.len().saturating_sub(1));

        // --- U requirer units, one certificate each: the steady hook and the three changes.
        for &u in small {
            rows.extend(self.unit_rows(u, false)?);
        }

        // --- relation-changed adding / removing N certificates from one unit.
        let par_n = if self.opts.quick { 10 } else { 100 };
        let mut par: Vec<(usize, Vec<f64>)> = Vec::new();
        let (mut sim, rel) = self.new_world("certs", 1, false)?;
        let unit0 = format!("{REQ}/0");
        for &n in &ns {
            eprintln!("bench: api-relation-changed adding/removing {n} certificate(s)");
            let json_n = self.cert_json(0..n);
            let mut pair = [
                Row::new(&format!("api-relation-changed, add {n}")),
                Row::new(&format!("api-relation-changed, remove {n}")),
            ];
            let mut replay_trigger =
                |s: &mut Sim, k: usize| s.write_relation_data(rel, &unit0, "bench-replay", Some(&k.to_string()));
            // Each cycle: send N (the add row), withdraw them (the remove row).
            let counts = if n >= 1000 {
                (1, 1)
            } else if n >= 100 {
                (3, 1)
            } else {
                (self.reps(), self.instrumented_reps())
            };
            self.measure_cycle(
                &mut sim,
                &mut pair,
                "api-relation-changed",
                &mut [
                    &mut |s: &mut Sim| s.write_relation_data(rel, &unit0, "client_certificates", Some(&json_n)),
                    &mut |s: &mut Sim| s.write_relation_data(rel, &unit0, "client_certificates", None),
                ],
                &mut replay_trigger,
                &mut |_| Ok(()),
                rel,
                counts,
            )?;
            let [mut add, mut rm] = pair;
            sim.assert_no_failed_hooks()?;
            let raw_reps = if n >= 1000 {
                1
            } else if n >= 100 {
                3
            } else {
                self.reps()
            };
            // The limit is whichever way LXD serves faster: one kept-alive connection, or
            // as many at once as the charm uses for long lists.
            let mut by_k: Vec<(usize, Vec<f64>, Vec<f64>)> = Vec::new();
            for k in [1, CHARM_IN_FLIGHT] {
                let (mut a, mut r) = (Vec::new(), Vec::new());
                for _ in 0..raw_reps {
                    let (x, y) = self.raw_changes(n, k)?;
                    a.push(x);
                    r.push(y);
                }
                by_k.push((k, a, r));
            }
            for (row, pick) in [(&mut add, 1usize), (&mut rm, 2)] {
                let best = by_k
                    .iter()
                    .min_by(|x, y| {
                        let (mx, my) =
                            if pick == 1 { (stat(&x.1).0, stat(&y.1).0) } else { (stat(&x.2).0, stat(&y.2).0) };
                        mx.total_cmp(&my)
                    })
                    .context("no raw runs")?;
                row.raw_lxd = if pick == 1 { best.1.clone() } else { best.2.clone() };
                row.raw_conns = best.0;
            }
            if n == par_n {
                for (k, a, _) in &by_k {
                    par.push((*k, a.clone()));
                }
            }
            rows.push(add);
            rows.push(rm);
        }
        sim.unrelate(rel)?;
        sim.assert_no_failed_hooks()?;

        // --- one connection vs bounded parallel requests: 1 and the charm's number came with
        // the N=par_n row; 8 for comparison.
        eprintln!("bench: raw adds, one connection vs parallel");
        let mut v = Vec::new();
        for _ in 0..(if self.opts.quick { 1 } else { 2 }) {
            v.push(self.raw_changes(par_n, 8)?.0);
        }
        par.push((8, v));

        // --- the largest world last; its rows join the others of their kind.
        for &u in large {
            let at = rows.iter().rposition(|r| units_in(&r.name).is_some()).map_or(0, |i| i + 1);
            let new = self.unit_rows(u, true)?;
            rows.splice(at..at, new);
        }

        // --- cold start.
        eprintln!("bench: cold start");
        let (cold, baseline) = self.cold_start()?;

        // --- the charm's own steps, in process.
        let pure_ns: Vec<usize> = if self.opts.quick { vec![10, 100] } else { vec![100, 1000, 10000] };
        eprintln!("bench: the charm's pure steps at N = {pure_ns:?}");
        let most = pure_ns.iter().copied().max().unwrap_or(0);
        let mut pems: Vec<String> = self.pool.iter().map(|p| p.cert_pem.clone()).take(most).collect();
        while pems.len() < most {
            pems.push(certs::client_cert_p256(&format!("bench-pure-{}", pems.len()))?.cert_pem);
        }
        let pure: Vec<pure::Steps> = pure_ns.iter().map(|&n| pure::measure(&pems, n, 5)).collect::<Result<_>>()?;

        let report = render(self, &rows, &par, par_n, &cold, &baseline, &pure, binary_size, t_all.elapsed());
        println!("{report}");
        if let Some(doc) = &self.opts.doc {
            write_doc(doc, &report)?;
            eprintln!("bench: wrote {}", doc.display());
            let dir = doc.parent().unwrap_or(Path::new("."));
            for (name, chart) in [(UNITS_SVG, units_chart(&rows)), (CERTS_SVG, certs_chart(&rows))] {
                std::fs::write(dir.join(name), plot::svg(&chart))?;
                eprintln!("bench: wrote {}", dir.join(name).display());
            }
        }
        Ok(())
    }

    /// Spawn → first hook-tool exec, for the charm binary and (baseline) for the tool alone.
    fn cold_start(&self) -> Result<(Vec<f64>, Vec<f64>)> {
        let dir = self.work.join("cold");
        std::fs::create_dir_all(&dir)?;
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes())?;
        // SAFETY: plain libc call with a valid NUL-terminated path.
        ensure!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0, "mkfifo failed");
        let tool = dir.join("credential-get");
        std::fs::write(
            &tool,
            format!(
                "#!/bin/sh\necho x > {}\necho 'ERROR permission denied' >&2\nexit 1\n",
                shell_quote(&fifo.to_string_lossy())
            ),
        )?;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755))?;
        let dispatch = self.charm_dir.join("dispatch");
        let mut cold = Vec::new();
        let mut base = Vec::new();
        let n = if self.opts.quick { 10 } else { 30 };
        for i in 0..2 * n {
            let charm = i % 2 == 0;
            let f2 = fifo.clone();
            let reader = std::thread::spawn(move || -> Result<Instant> {
                let mut f = std::fs::File::open(&f2)?;
                let mut b = [0u8; 1];
                f.read_exact(&mut b)?;
                let t = Instant::now();
                let mut rest = Vec::new();
                f.read_to_end(&mut rest)?;
                Ok(t)
            });
            std::thread::sleep(Duration::from_millis(5));
            let mut cmd = if charm { std::process::Command::new(&dispatch) } else { std::process::Command::new(&tool) };
            cmd.env_clear()
                .env("PATH", &dir)
                .env("JUJU_DISPATCH_PATH", "hooks/update-status")
                .env("JUJU_UNIT_NAME", UNIT)
                .env("JUJU_MODEL_UUID", "00000000-0000-4000-8000-000000000000")
                .env("JUJU_CONTEXT_ID", "cold:1")
                .env("CHARM_DIR", &self.charm_dir)
                .current_dir(&self.charm_dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let t0 = Instant::now();
            let mut child = cmd.spawn()?;
            let t1 = reader.join().map_err(|_| anyhow::anyhow!("reader panicked"))??;
            child.wait()?;
            let d = ms(t1.duration_since(t0));
            if charm { cold.push(d) } else { base.push(d) }
        }
        Ok((cold, base))
    }

    /// Removes every trust entry the bench added (charm-made ones of every model, raw ones,
    /// and the integrator identity), but those of the models left to the cluster's teardown.
    fn cleanup(&mut self) -> Result<()> {
        let mut c = self.raw_conn()?;
        let (mut removed, mut left) = (0, 0);
        for (name, fp) in raw::list(&mut c)? {
            if self.left_to_teardown.iter().any(|u| name.contains(u.as_str())) {
                left += 1;
                continue;
            }
            let ours = name.starts_with("bench-raw-")
                || name.starts_with("bench-par-")
                || self.model_uuids.iter().any(|u| name.contains(u.as_str()));
            if ours {
                raw::remove(&mut c, &fp)?;
                removed += 1;
            }
        }
        drop(c);
        self.cluster.trust_remove(&self.identity.fingerprint)?;
        let leftover: Vec<String> = self
            .cluster
            .trust_list()?
            .iter()
            .filter_map(|e| e["name"].as_str().map(String::from))
            .filter(|n| n.starts_with("bench-") || self.model_uuids.iter().any(|u| n.contains(u.as_str())))
            .filter(|n| !self.left_to_teardown.iter().any(|u| n.contains(u.as_str())))
            .collect();
        ensure!(leftover.is_empty(), "trust entries left behind: {leftover:?}");
        eprintln!(
            "bench: cleanup removed {removed} leftover trust entr(ies) and the bench identity; none of ours remain \
             but the {left} of the last world, which go with the cluster"
        );
        Ok(())
    }
}

/// Rebuilds a relation-set/state-set input the record truncated, from what was committed.
fn full_stdin(sim: &Sim, c: &ToolCall, rel: RelationId) -> Result<String> {
    let bag: BTreeMap<String, String> = match c.tool.as_str() {
        "relation-set" if c.args.iter().any(|a| a == "--app") => sim.relation_app_data(rel, APP)?.into_iter().collect(),
        "relation-set" => sim
            .relation_data(rel, UNIT)?
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "private-address" | "ingress-address" | "egress-subnets"))
            .collect(),
        "state-set" => sim.unit_state(UNIT)?.into_iter().collect(),
        other => bail!("cannot rebuild the stdin of {other}"),
    };
    Ok(serde_json::to_string(&bag)?)
}

/// Puts (or takes away) a shell shim before every hook tool that appends the caller's (the
/// charm's) VmHWM to `file`, then execs the real tool.
fn wrap_tools(sim: &Sim, file: &Path, on: bool) -> Result<()> {
    let tools = sim.root().join("tools");
    // The real tools move to a subdirectory under their own names: jujusim is a multi-call
    // binary that picks the tool from argv[0]'s basename.
    let real_dir = tools.join(".bench-real");
    std::fs::create_dir_all(&real_dir)?;
    for e in std::fs::read_dir(if on { &tools } else { &real_dir })? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let (p, real) = (tools.join(&name), real_dir.join(&name));
        if on {
            std::fs::rename(&p, &real)?;
            let script = format!(
                "#!/bin/sh\nwhile read -r k v _; do [ \"$k\" = VmHWM: ] && echo \"$v\" >> {f}; done < /proc/$PPID/status\nexec {real} \"$@\"\n",
                f = shell_quote(&file.to_string_lossy()),
                real = shell_quote(&real.to_string_lossy()),
            );
            std::fs::write(&p, script)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        } else {
            std::fs::remove_file(&p)?;
            std::fs::rename(&real, &p)?;
        }
    }
    Ok(())
}

fn sh(cmd: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    format!(
        "- date: {}\n- nproc: {}\n- CPU: {}\n- kernel: {}\n- LXD: {} (3-member cluster on loopback, `testbed::LxdCluster`)\n",
        sh("date -u +%Y-%m-%dT%H:%M:%SZ"),
        sh("nproc"),
        cpu,
        sh("uname -srm"),
        sh("lxd --version"),
    )
}

fn yes(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}

#[allow(clippy::too_many_arguments)]
fn render(
    b: &Bench,
    rows: &[Row],
    par: &[(usize, Vec<f64>)],
    par_n: usize,
    cold: &[f64],
    base: &[f64],
    pure: &[pure::Steps],
    size: u64,
    took: Duration,
) -> String {
    let mut o = String::new();
    let reps = b.reps();
    let ireps = b.instrumented_reps();
    let steady = b.steady_reps();
    let _ = writeln!(o, "### Machine\n\n{}", machine());
    let _ = writeln!(
        o,
        "Run: `make bench{}` ({:.0} s). Times in ms, median (min–max) of {reps} runs ({steady} for the steady `update-status`, 3 for N=100 and for the other rows at {LARGE_WORLD} units, 1 for N=1000); LXD requests and peak RSS from {ireps} separate instrumented run(s) (1 for N≥100 and for {LARGE_WORLD} units). The machine runs the 3 LXD members, the simulator and the bench together (load average when this was written: {}): compare ratios, not milliseconds.\n",
        if b.opts.quick {
            " BENCH_ARGS=--quick"
        } else if b.opts.with_1000 {
            " BENCH_ARGS=--with-1000"
        } else {
            ""
        },
        took.as_secs_f64(),
        load_average()
    );
    let _ = writeln!(o, "### Per hook\n");
    let _ = writeln!(
        o,
        "| hook | wall ms | limit ms (raw LXD + sh tools) | ratio | hook-tool calls (relation-get) | ms inside tools | LXD requests | peak RSS MiB |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let rss: Vec<f64> = r.rss_kib.iter().map(|k| k / 1024.0).collect();
        let _ = writeln!(
            o,
            "| {} | {} | {:.1} = {}{} + {} | {:.2}× | {} ({}) | {} | {} | {} |",
            r.name,
            fmt_stat(&r.wall, 1),
            r.limit(),
            fmt_stat(&r.raw_lxd, 1),
            if r.raw_conns > 1 { format!(" [{} conns]", r.raw_conns) } else { String::new() },
            fmt_stat(&r.sh_tools, 1),
            r.ratio(),
            fmt_stat(&r.tools, 0),
            fmt_stat(&r.rel_gets, 0),
            fmt_stat(&r.tool_ms, 1),
            fmt_stat(&r.lxd_reqs, 0),
            fmt_stat(&rss, 1),
        );
    }
    if b.opts.doc.is_some() {
        let _ = writeln!(
            o,
            "\n![Hook wall time against requirer units]({UNITS_SVG})\n\n![Hook wall time against certificates changed]({CERTS_SVG})"
        );
    }
    let _ = writeln!(o, "\nTool calls by tool:\n");
    for r in rows {
        let _ = writeln!(o, "- {}: {}", r.name, r.tool_names);
    }

    // Marginal costs.
    let med = |name: &str, f: fn(&Row) -> f64| rows.iter().find(|r| r.name == name).map(f);
    let wall = |r: &Row| stat(&r.wall).0;
    let rawl = |r: &Row| stat(&r.raw_lxd).0;
    let _ = writeln!(o, "\n### Where a steady update-status spends its time\n");
    for p in &b.profiles {
        let _ = writeln!(o, "{}", p.render());
    }
    let _ = writeln!(o, "\n### Growth (marginal cost, ms)\n");
    let _ = writeln!(o, "| step | charm | raw LXD |\n|---|---|---|");
    let ns: Vec<usize> = rows
        .iter()
        .filter_map(|r| r.name.strip_prefix("api-relation-changed, add ").and_then(|n| n.parse().ok()))
        .collect();
    for verb in ["add", "remove"] {
        for w in ns.windows(2) {
            let (a, z) = (w[0], w[1]);
            let ra = format!("api-relation-changed, {verb} {a}");
            let rz = format!("api-relation-changed, {verb} {z}");
            if let (Some(ca), Some(cz), Some(la), Some(lz)) =
                (med(&ra, wall), med(&rz, wall), med(&ra, rawl), med(&rz, rawl))
            {
                let d = (z - a) as f64;
                let _ = writeln!(o, "| per cert, {verb} {a}→{z} | {:.2} | {:.2} |", (cz - ca) / d, (lz - la) / d);
            }
        }
    }
    for family in unit_families(rows) {
        let points: Vec<(u32, &Row)> = rows.iter().filter_map(|r| in_family(r, &family).map(|u| (u, r))).collect();
        for w in points.windows(2) {
            let ((a, ra), (z, rz)) = (w[0], w[1]);
            let d = f64::from(z - a);
            let _ = writeln!(
                o,
                "| per requirer unit, {family} {a}→{z} units | {:.2} | {:.2} |",
                (wall(rz) - wall(ra)) / d,
                (rawl(rz) - rawl(ra)) / d
            );
        }
    }

    let _ = writeln!(o, "\n### {par_n} raw adds: one connection vs bounded parallel connections\n");
    let _ = writeln!(o, "| connections | ms | per add ms |\n|---|---|---|");
    for (k, v) in par {
        let _ = writeln!(o, "| {k} | {} | {:.2} |", fmt_stat(v, 1), stat(v).0 / par_n as f64);
    }
    let best = par.iter().min_by(|a, b| stat(&a.1).0.partial_cmp(&stat(&b.1).0).unwrap());
    if let (Some(best), Some(one)) = (best, par.first()) {
        let _ = writeln!(
            o,
            "\nFastest: {} connection(s), {:.2}× the time of one kept-alive connection.",
            best.0,
            stat(&best.1).0 / stat(&one.1).0
        );
    }

    let _ = writeln!(o, "\n### The charm's own work (its pure steps in process: no hook tools, no LXD)\n");
    let _ = writeln!(
        o,
        "N requirer units with one certificate each; LXD holds half of them and N/2 entries of departed units.\n"
    );
    let _ = writeln!(
        o,
        "| N | read certificates ms | plan ms | payload ms | total ms | per certificate µs |\n|---|---|---|---|---|---|"
    );
    for p in pure {
        let _ = writeln!(
            o,
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
            p.n,
            p.collect_ms,
            p.plan_ms,
            p.payload_ms,
            p.total_ms(),
            p.total_ms() * 1000.0 / p.n as f64
        );
    }

    let (cm, _, _) = stat(cold);
    let (bm, _, _) = stat(base);
    let _ = writeln!(o, "\n### Binary\n");
    let _ = writeln!(o, "| measure | value |\n|---|---|");
    let _ = writeln!(o, "| static musl binary size | {size} bytes ({:.2} MiB) |", size as f64 / 1048576.0);
    let _ = writeln!(o, "| spawn → first hook-tool exec (charm) | {} ms |", fmt_stat(cold, 2));
    let _ = writeln!(o, "| spawn → same point, the fake tool run directly (baseline) | {} ms |", fmt_stat(base, 2));
    let _ = writeln!(o, "| cold start of the binary (difference of medians) | {:.2} ms |", cm - bm);

    // Targets.
    let _ = writeln!(o, "\n### Targets\n");
    let _ = writeln!(o, "| target | measured | met |\n|---|---|---|");
    let steady: Vec<&Row> = rows.iter().filter(|r| r.name.starts_with("update-status")).collect();
    for r in &steady {
        let req = stat(&r.lxd_reqs).2;
        let _ = writeln!(o, "| {}: ≤ 3 LXD requests | {req:.0} | {} |", r.name, yes(req <= 3.0));
    }
    // The wall-time target is for the steady hook itself (one requirer unit); every further
    // unit adds its one relation-get, a process the agent runs (see the growth table).
    if let Some(r) = steady.first() {
        let w = stat(&r.wall).0;
        let _ =
            writeln!(o, "| {}: < 25 ms wall | {w:.1} ms ({:.2}× the limit) | {} |", r.name, r.ratio(), yes(w < 25.0));
    }
    if let (Some(first), Some(last)) = (steady.first(), steady.last())
        && first.name != last.name
    {
        let u = |r: &Row| {
            r.name
                .strip_prefix("update-status, steady, ")
                .and_then(|s| s.split(' ').next())
                .and_then(|u| u.parse::<f64>().ok())
                .unwrap_or(1.0)
        };
        let (u1, u2) = (u(first), u(last));
        let (t1, t2) = (stat(&first.tools).0, stat(&last.tools).0);
        let (g1, g2) = (stat(&first.rel_gets).0, stat(&last.rel_gets).0);
        // A quiet update-status reads no databag: its cost does not grow with the units.
        let _ = writeln!(
            o,
            "| steady update-status: ≤ 12 tool calls and ≤ 3 LXD requests for any number of units | {t1:.0} calls at U={u1:.0}, {t2:.0} at U={u2:.0} (relation-get: {g1:.0} and {g2:.0}) | {} |",
            yes(t1 <= 12.0 && t2 <= 12.0 && g2 <= g1)
        );
    }
    for n in [100usize, 1000] {
        if let Some(r) = rows.iter().find(|r| r.name == format!("api-relation-changed, add {n}")) {
            let lxd_only = stat(&r.wall).0 / stat(&r.raw_lxd).0;
            let _ = writeln!(
                o,
                "| add {n}: ≤ 1.2× the limit | {:.2}× (vs raw LXD alone {lxd_only:.2}×) | {} |",
                r.ratio(),
                yes(r.ratio() <= 1.2)
            );
        }
    }
    if let (Some(small), Some(large)) = (pure.first(), pure.last())
        && small.n < large.n
    {
        let per = |p: &pure::Steps| p.total_ms() / p.n as f64;
        let growth = per(large) / per(small);
        let _ = writeln!(
            o,
            "| no quadratic step: the charm's own cost per certificate at N={} within 2× of N={} | {growth:.2}× | {} |",
            large.n,
            small.n,
            yes(growth <= 2.0)
        );
    }
    let peak = rows.iter().flat_map(|r| r.rss_kib.iter().copied()).fold(0.0, f64::max) / 1024.0;
    let _ = writeln!(o, "| peak RSS < 16 MiB (max over all hooks) | {peak:.1} MiB | {} |", yes(peak < 16.0));
    let _ = writeln!(
        o,
        "| binary < 8 MiB | {:.2} MiB | {} |",
        size as f64 / 1048576.0,
        yes((size as f64) < 8.0 * 1048576.0)
    );
    o
}

/// The plots, written beside the report (`--doc`).
const UNITS_SVG: &str = "bench-units.svg";
const CERTS_SVG: &str = "bench-certs.svg";

/// The kinds of row measured in every world of requirer units, in the table's order
/// ("update-status, steady", ...).
fn unit_families(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if let Some(u) = units_in(&r.name)
            && let Some((family, _)) = r.name.split_once(&format!(" {u} unit(s)"))
        {
            let family = family.trim_end_matches(',').to_string();
            if !out.contains(&family) {
                out.push(family);
            }
        }
    }
    out
}

/// The units of `r`'s world when it is a row of `family`.
fn in_family(r: &Row, family: &str) -> Option<u32> {
    let u = units_in(&r.name)?;
    let (f, _) = r.name.split_once(&format!(" {u} unit(s)"))?;
    (f.trim_end_matches(',') == family).then_some(u)
}

/// The charm's series (median, min, max of the wall time) and its limit's, dashed.
fn charm_and_limit(name: &str, color: &'static str, points: &[(f64, &Row)]) -> [plot::Series; 2] {
    let (charm, limit) = points
        .iter()
        .map(|(x, r)| {
            let (m, lo, hi) = stat(&r.wall);
            ((*x, m, lo, hi), (*x, r.limit(), r.limit(), r.limit()))
        })
        .unzip();
    [
        plot::Series { name: name.to_string(), color, dashed: false, points: charm },
        plot::Series { name: "… its limit".into(), color, dashed: true, points: limit },
    ]
}

const PLOT_NOTE: &str = "Solid: the charm (median, bar: min–max). Dashed: the limit (raw LXD + the same tool calls from sh). 2 vCPUs, shared.";

fn units_chart(rows: &[Row]) -> plot::Chart {
    let mut series = Vec::new();
    for (i, family) in unit_families(rows).iter().enumerate() {
        let points: Vec<(f64, &Row)> =
            rows.iter().filter_map(|r| in_family(r, family).map(|u| (f64::from(u), r))).collect();
        let name = family.split_once(", ").map_or(family.as_str(), |(_, what)| what);
        let hook = family.split_once(", ").map_or("", |(h, _)| h).trim_start_matches("api-relation-");
        series.extend(charm_and_limit(&format!("{hook}: {name}"), plot::COLORS[i % plot::COLORS.len()], &points));
    }
    plot::Chart {
        title: "Hook wall time against requirer units (one certificate each)".into(),
        x_label: "requirer units in the relation".into(),
        y_label: "hook wall time, ms".into(),
        note: PLOT_NOTE.into(),
        series,
    }
}

fn certs_chart(rows: &[Row]) -> plot::Chart {
    let mut series = Vec::new();
    for (i, verb) in ["add", "remove"].into_iter().enumerate() {
        let prefix = format!("api-relation-changed, {verb} ");
        let points: Vec<(f64, &Row)> =
            rows.iter().filter_map(|r| r.name.strip_prefix(&prefix)?.parse::<f64>().ok().map(|n| (n, r))).collect();
        series.extend(charm_and_limit(&format!("{verb} N certificates"), plot::COLORS[i], &points));
    }
    plot::Chart {
        title: "Hook wall time against certificates changed in one hook (one unit)".into(),
        x_label: "certificates added or removed (N)".into(),
        y_label: "hook wall time, ms".into(),
        note: PLOT_NOTE.into(),
        series,
    }
}

const BEGIN: &str = "<!-- bench:begin (generated by `make bench`; text outside these markers is kept) -->";
const END: &str = "<!-- bench:end -->";

fn write_doc(path: &Path, report: &str) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let body = format!("{BEGIN}\n\n{report}\n{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(z)) if z > a => format!("{}{}{}", &old[..a], body, &old[z + END.len()..]),
        _ => format!("# Benchmarks\n\n{body}\n"),
    };
    std::fs::write(path, new)?;
    Ok(())
}
