//! Running a charm process: the environment Juju gives a hook, and the process itself (its
//! output, exit code and timeout).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::agent::Lease;
use crate::model::{HookContext, Model, ModelLock};

use super::store::Cached;
use super::{AGENT_PATH, Sim};

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The outcome of running a charm process.
pub(super) struct ProcOutcome {
    pub(super) ran: bool,
    pub(super) exit_code: i32,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) error: Option<String>,
    pub(super) duration: Duration,
}

impl Sim {
    pub(super) fn base_env(
        &self,
        m: &Model,
        ctx: &HookContext,
        charm_dir: &Path,
        hook_name: &str,
    ) -> BTreeMap<String, String> {
        let u = &m.units[&ctx.unit];
        let dir = charm_dir.display().to_string();
        let mut v = BTreeMap::new();
        let mut set = |k: &str, val: String| {
            v.insert(k.to_string(), val);
        };
        set("CHARM_DIR", dir.clone());
        set("JUJU_CHARM_DIR", dir);
        set("JUJU_CONTEXT_ID", ctx.id.clone());
        set("JUJU_HOOK_NAME", hook_name.into());
        set("JUJU_AGENT_SOCKET_ADDRESS", self.paths.socket().display().to_string());
        set("JUJU_AGENT_SOCKET_NETWORK", "unix".into());
        set("JUJU_UNIT_NAME", ctx.unit.clone());
        set("JUJU_MODEL_UUID", m.uuid.clone());
        set("JUJU_MODEL_NAME", m.name.clone());
        set("JUJU_API_ADDRESSES", "127.0.0.1:17070".into());
        set("JUJU_SLA", "unsupported".into());
        set("JUJU_MACHINE_ID", u.machine.clone());
        set("JUJU_PRINCIPAL_UNIT", String::new());
        set("JUJU_AVAILABILITY_ZONE", String::new());
        set("JUJU_VERSION", m.juju_version.clone());
        set("CLOUD_API_VERSION", String::new());
        set("JUJU_CHARM_HTTP_PROXY", String::new());
        set("JUJU_CHARM_HTTPS_PROXY", String::new());
        set("JUJU_CHARM_FTP_PROXY", String::new());
        set("JUJU_CHARM_NO_PROXY", "127.0.0.1,localhost,::1".into());
        set("APT_LISTCHANGES_FRONTEND", "none".into());
        set("DEBIAN_FRONTEND", "noninteractive".into());
        set("LANG", "C.UTF-8".into());
        set("TERM", "tmux-256color".into());
        set("PATH", format!("{}:{AGENT_PATH}", self.paths.tools().display()));
        for (k, val) in &self.extra_env {
            v.insert(k.clone(), val.clone());
        }
        v
    }

    /// Runs `dispatch` (if present and executable) or `<dir>/<name>` in the hook context `ctx`;
    /// returns the outcome and the context as the process left it (its staged writes, an
    /// action's results).
    pub(super) fn run_process(
        &self,
        charm_dir: &Path,
        dir: &str,
        name: &str,
        vars: &BTreeMap<String, String>,
        ctx: HookContext,
    ) -> (ProcOutcome, HookContext) {
        match self.model_to_lend() {
            Err(e) => (not_run(Instant::now(), Some(format!("cannot lend the model: {e}")), 1), ctx),
            Ok(mut cached) => {
                let model = std::mem::take(&mut cached.model);
                self.agent.lend(Lease { model, ctx, model_changed: false });
                let outcome = self.spawn_charm(charm_dir, dir, name, vars);
                let lease = self.agent.take_back().expect("the model was lent for this process");
                cached.model = lease.model;
                cached.dirty |= lease.model_changed;
                *self.cache.borrow_mut() = Some(cached);
                (outcome, lease.ctx)
            }
        }
    }

    /// The cached model, taken out of the cache for the agent, which serves the tools from it
    /// while the process runs; the cache stays empty until it comes back, so nothing can read
    /// a model that is not there.
    fn model_to_lend(&self) -> anyhow::Result<Cached> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        Ok(self.cache.borrow_mut().take().expect("refreshed"))
    }

    /// Starts the charm process and waits for it (or why it could not run).
    fn spawn_charm(&self, charm_dir: &Path, dir: &str, name: &str, vars: &BTreeMap<String, String>) -> ProcOutcome {
        let start = Instant::now();
        let dispatch = charm_dir.join("dispatch");
        let program = if is_executable(&dispatch) { dispatch } else { charm_dir.join(dir).join(name) };
        let skip = |error: Option<String>, code: i32| not_run(start, error, code);
        if !charm_dir.join("metadata.yaml").is_file() {
            return skip(Some("charm missing from disk".into()), 1);
        }
        match std::fs::symlink_metadata(&program) {
            Err(_) => return skip(None, 0),
            Ok(_) if !program.exists() => return skip(None, 0),
            Ok(_) if !is_executable(&program) => {
                return skip(Some(format!("fork/exec {}: permission denied", program.display())), 126);
            }
            Ok(_) => {}
        }
        let mut cmd = Command::new(&program);
        cmd.env_clear()
            .envs(vars)
            .current_dir(charm_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so a timeout kills the hook's children too.
            .process_group(0);
        let child = match spawn_past_busy_text(&mut cmd) {
            Ok(c) => c,
            Err(e) => return skip(Some(format!("fork/exec {}: {e}", program.display())), 126),
        };
        let (status, stdout, stderr, timed_out) = wait_for(child, self.hook_timeout);
        use std::os::unix::process::ExitStatusExt;
        let exit_code = match status {
            Some(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
            None => -1,
        };
        ProcOutcome {
            ran: true,
            exit_code,
            stdout,
            stderr,
            error: if timed_out { Some(format!("hook timed out after {:?}", self.hook_timeout)) } else { None },
            duration: start.elapsed(),
        }
    }
}

/// Spawns `cmd`, again while the kernel says its file is open for writing (ETXTBSY).
///
/// In a process with many threads (a test harness running simulators side by side), one
/// thread may be writing a charm file (a unit's copy of `dispatch`) when another forks: the
/// child holds the write descriptor until its own exec closes it, and an exec of that file
/// meanwhile fails with "Text file busy" although the file was complete and closed by its
/// writer. Under Juju a charm is unpacked long before its hooks run, so a hook never meets
/// this; neither should one here. A file that stays busy still fails, after about a second.
fn spawn_past_busy_text(cmd: &mut Command) -> std::io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut wait = Duration::from_millis(5);
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && wait < Duration::from_secs(1) => {
                std::thread::sleep(wait);
                wait *= 2;
            }
            other => return other,
        }
    }
}

/// A process that did not run: skipped (no error) or refused.
fn not_run(start: Instant, error: Option<String>, code: i32) -> ProcOutcome {
    ProcOutcome {
        ran: false,
        exit_code: code,
        stdout: String::new(),
        stderr: String::new(),
        error,
        duration: start.elapsed(),
    }
}

/// Reads the child's output and waits for it, killing its process group after `timeout`:
/// its exit status (when it could be had), stdout, stderr, and whether it timed out.
fn wait_for(mut child: Child, timeout: Duration) -> (Option<ExitStatus>, String, String, bool) {
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());
    // Wait in a thread so the common case costs no polling; kill on timeout.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let s = child.wait();
        let _ = tx.send(());
        s
    });
    let mut timed_out = false;
    if rx.recv_timeout(timeout).is_err() {
        timed_out = true;
        let _ = Command::new("kill").arg("-9").arg("--").arg(format!("-{pid}")).status();
    }
    let status = waiter.join().ok().and_then(|r| r.ok());
    let text = |t: JoinHandle<Vec<u8>>| String::from_utf8_lossy(&t.join().unwrap_or_default()).into_owned();
    (status, text(out), text(err), timed_out)
}

/// Drains a pipe on its own thread, so a child filling one pipe never blocks on the other.
fn read_all(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = pipe.read_to_end(&mut b);
        b
    })
}
