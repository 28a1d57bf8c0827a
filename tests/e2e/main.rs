//! End-to-end scenarios: the real charm binary, hook by hook, through the Juju hook-tool
//! simulator, against a real 3-member LXD cluster on loopback addresses.
//!
//! The cluster is started once (a few seconds) and shared; scenarios run one at a time because
//! some stop members. If LXD cannot start, every scenario fails: there is no silent skip.

mod bed;
mod fake_lxd;
mod faults;
mod https;
mod juju29;
mod proxy;
mod operator;
mod packed;
mod requirer_lib;
mod scenarios;
mod upgrade;

use bed::Bed;
use libtest_mimic::{Arguments, Failed, Trial};
use std::sync::Mutex;

static BED: Mutex<Option<Result<Bed, String>>> = Mutex::new(None);

type Scenario = fn(&mut Bed) -> anyhow::Result<()>;

fn trial(name: &'static str, scenario: Scenario) -> Trial {
    Trial::test(name, move || {
        let mut guard = BED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bed = guard.get_or_insert_with(|| Bed::start().map_err(|e| format!("{e:#}")));
        match bed {
            Ok(bed) => scenario(bed).map_err(|e| Failed::from(format!("{e:#}"))),
            Err(e) => Err(Failed::from(format!("test bed did not start: {e}"))),
        }
    })
}

fn main() {
    let mut args = Arguments::from_args();
    // One cluster, one scenario at a time.
    args.test_threads = Some(1);
    let scenarios = [scenarios::all(), operator::all(), faults::all(), requirer_lib::all(), https::all(), packed::all(), upgrade::all(), juju29::all()];
    let trials = scenarios.into_iter().flatten().map(|(name, f)| trial(name, f)).collect();
    let conclusion = libtest_mimic::run(&args, trials);
    // Stop the daemons before exiting: statics are never dropped.
    drop(BED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
    conclusion.exit();
}
