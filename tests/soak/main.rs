//! The soak (`make soak`; not part of `make test`): the in-memory model's generated histories
//! against the real thing. The packed `.charm`, unpacked, runs hook by hook through `jujusim`
//! against a real 3-member LXD cluster from `testbed`, members killed and restarted included.
//! Every integrator hook is checked as it ends, with the model's own invariants
//! (`tests/model/oracle.rs`), and every history of `HISTORY` steps ends with a quiet period
//! and the model's convergence check.
//!
//!     LXD_INTEGRATOR_CHARM=build/lxd-integrator_amd64.charm JUJUSIM_BIN=target/debug/jujusim \
//!       SOAK_STEPS=2000 [SOAK_SEED=n] cargo test --test soak
//!
//! It prints its progress after every history and, at the end: steps, hooks, faults
//! injected, invariant violations (must be 0) and the seed, which replays the same histories
//! (with the generator of the same revision). On a violation it prints that history as it ran,
//! hook by hook, and stops (`SOAK_VERBOSE=1` prints every history).
//!
//! `SOAK_SEED=regressions` replays instead, one after another, each with its quiet period, the
//! named histories of `history::regressions` (the in-memory model replays them too): a seed
//! stops replaying the same histories once the generator changes, a history does not.

#[path = "../model/history.rs"]
mod history;
#[path = "../model/oracle.rs"]
mod oracle;
#[path = "../reconcile_property/scenario.rs"]
mod scenario;
#[path = "../reconcile_property/strategies.rs"]
mod strategies;
mod world;

use anyhow::{Context, Result, bail, ensure};
use history::regressions;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use testbed::LxdCluster;
use world::Soak;

/// Steps between two quiet periods: as long as the in-memory model's longest histories.
const HISTORY: usize = 60;

/// Where the histories come from.
enum Source {
    Seed(u64),
    Regressions,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            Ok(Some(v.trim().parse().with_context(|| format!("{name}={v:?} is not a number"))?))
        }
        _ => Ok(None),
    }
}

/// True when no invariant was broken.
fn run() -> Result<bool> {
    let steps = env_number("SOAK_STEPS")?.unwrap_or(1000) as usize;
    let source = if std::env::var("SOAK_SEED").is_ok_and(|s| s.trim() == "regressions") {
        Source::Regressions
    } else {
        Source::Seed(match env_number("SOAK_SEED")? {
            Some(seed) => seed,
            None => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1),
        })
    };
    let charm = PathBuf::from(
        std::env::var_os("LXD_INTEGRATOR_CHARM")
            .context("set LXD_INTEGRATOR_CHARM to the packed .charm (make charm)")?,
    );
    ensure!(charm.is_file(), "{} does not exist (make charm)", charm.display());
    let work = std::env::temp_dir().join(format!("lxd-integrator-soak-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = soak(&charm, &work, steps, source);
    if std::env::var_os("SOAK_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn soak(charm: &std::path::Path, work: &std::path::Path, steps: usize, source: Source) -> Result<bool> {
    let dir = work.join("charm");
    let out = Command::new("unzip").arg("-q").arg(charm).arg("-d").arg(&dir).output().context("running unzip")?;
    if !out.status.success() {
        bail!("unzip {}: {}", charm.display(), String::from_utf8_lossy(&out.stderr));
    }
    let (seed, mut replays) = match source {
        Source::Seed(seed) => (seed, None),
        Source::Regressions => (0, Some(regressions().into_iter())),
    };
    let said = match &replays {
        None => format!("seed {seed}, {steps} steps in histories of up to {HISTORY}"),
        Some(r) => format!("{} named regression histories", r.len()),
    };
    eprintln!("soak: {said}, {}", charm.display());
    let cluster = LxdCluster::start(history::MEMBERS).context("starting the LXD cluster")?;
    let started = Instant::now();
    let mut soak = Soak::start(work, &dir, cluster)?;
    let mut runner = TestRunner::new(Config { rng_seed: RngSeed::Fixed(seed), ..Config::default() });
    let strategy = history::history(HISTORY);
    let (mut done, mut histories) = (0, 0);
    while (replays.is_some() || done < steps) && soak.violations().is_empty() {
        let history = match replays.as_mut() {
            None => strategy.new_tree(&mut runner).map_err(|e| anyhow::anyhow!("generating a history: {e}"))?.current(),
            Some(r) => match r.next() {
                Some((what, history)) => {
                    eprintln!("soak: regression: {what}");
                    history
                }
                None => break,
            },
        };
        for step in &history {
            soak.step(step).with_context(|| format!("carrying out: {}", history::say(step)))?;
            done += 1;
        }
        soak.quiet()?;
        histories += 1;
        let log = soak.take_log();
        if !soak.violations().is_empty() || std::env::var_os("SOAK_VERBOSE").is_some() {
            eprintln!("history {histories} as it ran:\n{}", log.join("\n"));
        }
        eprintln!(
            "soak: {histories} histories, {done} steps ({} followed), {} hooks, {} faults, {} violations, {:.1} min",
            soak.applied,
            soak.hooks(),
            soak.faults,
            soak.violations().len(),
            started.elapsed().as_secs_f64() / 60.0
        );
    }
    let violations = soak.violations();
    let (added, removed, bags) = soak.work();
    println!(
        "soak: {done} steps ({} followed by the real world) in {histories} histories, {} hooks, {} faults injected, {} invariant violations, {}, {:.1} min; the hooks added {added} and removed {removed} entries and wrote {bags} databags, each checked",
        soak.applied,
        soak.hooks(),
        soak.faults,
        violations.len(),
        if replays.is_some() { "named regressions".to_string() } else { format!("seed {seed}") },
        started.elapsed().as_secs_f64() / 60.0
    );
    println!(
        "soak: {} of {histories} steady rounds still rewrote a unit's state cache or status (not a violation)",
        soak.restless
    );
    for v in &violations {
        println!("  ✗ {v}");
    }
    Ok(violations.is_empty())
}
