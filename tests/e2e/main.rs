//! End-to-end scenarios: the real charm binary, hook by hook, through the Juju hook-tool
//! simulator, against real 3-member clusters on loopback addresses: LXD 5.0 and Incus 6.0.
//!
//! Every scenario that uses a real server runs against both, as `lxd::<name>` and
//! `incus::<name>`. Each kind runs in its own child process of this harness (started with
//! `LXD_INTEGRATOR_E2E_SERVER=lxd|incus` and the same arguments), both at once, so the two
//! suites share the machine's cores instead of queueing. Within one kind the cluster is started
//! once (a few seconds) and shared; its scenarios run one at a time because some stop members.
//! If a server cannot start, every scenario of that kind fails: there is no silent skip.
//!
//! Filters work as with any libtest harness: `-- s6` runs s6 on both kinds, `-- incus::` only
//! the Incus suite, `-- lxd::s6_` one scenario on LXD. Scenarios that talk to a fake server only
//! (see [`FAKE_SERVER_ONLY`], and `newer`: LXD 5.21/6.9 and Incus 6.0.6 played from their
//! source) run once, in the LXD suite.

mod bed;
mod existing;
mod fake_lxd;
mod faults;
mod https;
mod juju29;
mod newer;
mod operator;
mod packed;
mod proxy;
mod requirer_lib;
mod scenarios;
mod secrets;
mod servers;
mod upgrade;
mod volume;

use bed::Bed;
use libtest_mimic::{Arguments, Failed, Trial};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Instant;
use testbed::ServerKind;

static BED: Mutex<Option<Result<Bed, String>>> = Mutex::new(None);

type Scenario = fn(&mut Bed) -> anyhow::Result<()>;

/// Set by the parent for each child: the one kind of server that child runs against.
const SERVER_VAR: &str = "LXD_INTEGRATOR_E2E_SERVER";

/// Scenarios whose charm talks only to a fake LXD (an old or broken server a real cluster
/// cannot be); the real cluster only trusts their identity. Running them twice proves nothing.
const FAKE_SERVER_ONLY: &[&str] = &[
    "o4_trust_projects_on_an_lxd_without_certificate_project_adds_nothing",
    "f5_an_answer_trickled_for_ever_ends_each_hook_at_the_request_deadline",
];

fn trial(kind: ServerKind, name: &'static str, scenario: Scenario) -> Trial {
    Trial::test(format!("{kind}::{name}"), move || {
        let mut guard = BED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bed = guard.get_or_insert_with(|| Bed::start(kind).map_err(|e| format!("{e:#}")));
        match bed {
            Ok(bed) => scenario(bed).map_err(|e| Failed::from(format!("{e:#}"))),
            Err(e) => Err(Failed::from(format!("test bed did not start: {e}"))),
        }
    })
}

fn main() -> ExitCode {
    match std::env::var(SERVER_VAR) {
        Ok(name) => match ServerKind::parse(&name) {
            Ok(kind) => run_suite(kind),
            Err(e) => {
                eprintln!("e2e: {SERVER_VAR}: {e:#}");
                ExitCode::FAILURE
            }
        },
        Err(_) => run_all_kinds(),
    }
}

/// One kind's suite, in this process: libtest-mimic over its scenarios, one at a time.
fn run_suite(kind: ServerKind) -> ExitCode {
    let mut args = Arguments::from_args();
    // One cluster, one scenario at a time.
    args.test_threads = Some(1);
    let scenarios = [
        scenarios::all(),
        operator::all(),
        faults::all(),
        packed::all(),
        upgrade::all(),
        juju29::all(),
        servers::all(),
        secrets::all(),
        https::all(),
        existing::all(),
    ];
    let real =
        scenarios.into_iter().flatten().filter(|(name, _)| kind == ServerKind::Lxd || !FAKE_SERVER_ONLY.contains(name));
    // The requirer library's and the large-input scenarios prove the charm, not the server: once.
    let once =
        [requirer_lib::all(), volume::all(), newer::all()].into_iter().flatten().filter(|_| kind == ServerKind::Lxd);
    let trials = real.chain(once).map(|(name, f)| trial(kind, name, f)).collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // Stop the daemons before exiting: statics are never dropped.
    drop(BED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
    if conclusion.has_failed() { ExitCode::from(101) } else { ExitCode::SUCCESS }
}

/// The counts of one libtest summary line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    measured: u64,
    filtered_out: u64,
}

impl Counts {
    /// `test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 5 filtered out; finished
    /// in 1.00s`, as libtest-mimic prints it.
    fn parse(line: &str) -> Option<Counts> {
        let rest = line.trim().strip_prefix("test result: ")?;
        let (_, rest) = rest.split_once(". ")?;
        let mut c = Counts::default();
        for part in rest.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => c.passed = n,
                "failed" => c.failed = n,
                "ignored" => c.ignored = n,
                "measured" => c.measured = n,
                "filtered" => c.filtered_out = n,
                _ => {}
            }
        }
        Some(c)
    }

    fn add(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.ignored += o.ignored;
        self.measured += o.measured;
        self.filtered_out += o.filtered_out;
    }
}

/// Runs each kind's suite in a child process, all at once, copying their output line by line
/// with the kind in front, and ends with one libtest summary line over both.
fn run_all_kinds() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("e2e: cannot find this harness' own binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    // `--list` prints names only; sequential keeps the two lists apart.
    if args.iter().any(|a| a == "--list") {
        let mut ok = true;
        for kind in ServerKind::ALL {
            let status = Command::new(&exe).args(&args).env(SERVER_VAR, kind.name()).status();
            ok &= status.is_ok_and(|s| s.success());
        }
        return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let started = Instant::now();
    let stdout = std::sync::Arc::new(Mutex::new(std::io::stdout()));
    let mut children = Vec::new();
    for kind in ServerKind::ALL {
        let spawned = Command::new(&exe)
            .args(&args)
            .env(SERVER_VAR, kind.name())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                eprintln!("e2e: cannot start the {kind} suite: {e}");
                return ExitCode::FAILURE;
            }
        };
        let out = child.stdout.take().map(|o| copy_lines(kind, o, stdout.clone()));
        let err = child.stderr.take().map(|e| copy_lines(kind, e, stdout.clone()));
        children.push((kind, child, out, err));
    }
    let mut total = Counts::default();
    let mut failed_kinds = Vec::new();
    for (kind, mut child, out, err) in children {
        let status = child.wait();
        let counts = out.and_then(|h| h.join().ok()).flatten();
        let _ = err.map(|h| h.join());
        let ok = status.as_ref().is_ok_and(|s| s.success());
        match counts {
            Some(c) => total.add(c),
            // A child that died before its summary counts as one failure, never as a pass.
            None => total.failed += 1,
        }
        if !ok || counts.is_none() {
            failed_kinds.push(format!("{kind} ({})", status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())));
        }
    }
    let verdict = if failed_kinds.is_empty() { "ok" } else { "FAILED" };
    let mut out = stdout.lock().unwrap_or_else(|p| p.into_inner());
    if !failed_kinds.is_empty() {
        let _ = writeln!(out, "\ne2e: failed suites: {}", failed_kinds.join(", "));
    }
    let _ = writeln!(
        out,
        "\ntest result: {verdict}. {} passed; {} failed; {} ignored; {} measured; {} filtered out; finished in {:.2}s",
        total.passed,
        total.failed,
        total.ignored,
        total.measured,
        total.filtered_out,
        started.elapsed().as_secs_f64()
    );
    let _ = out.flush();
    if failed_kinds.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(101) }
}

/// Copies `from` line by line to our stdout as `[kind] line`; returns the counts of the last
/// libtest summary line seen.
fn copy_lines(
    kind: ServerKind,
    from: impl Read + Send + 'static,
    to: std::sync::Arc<Mutex<std::io::Stdout>>,
) -> std::thread::JoinHandle<Option<Counts>> {
    std::thread::spawn(move || {
        let mut counts = None;
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            if let Some(c) = Counts::parse(&line) {
                counts = Some(c);
            }
            let mut out = to.lock().unwrap_or_else(|p| p.into_inner());
            let _ = writeln!(out, "[{kind}] {line}");
            let _ = out.flush();
        }
        counts
    })
}
