//! A leader's whole reconcile pass, twice, over hostile relation data and config, on the
//! in-memory unit agent that refuses what a real unit refuses (`lxd_integrator::memory`).
//!
//! The same scenario and invariants as `tests/reconcile_property.rs` (shared through
//! `scenario.rs`), decoded from the fuzzer's bytes instead of drawn by proptest: relations,
//! units and what each sends (pool certificates, padded copies, garbage), the config (good
//! values, keys, passwords), and up to two large values. Sizes are smaller than the property
//! test's so one input runs well inside libFuzzer's 5-s timeout.
//!
//! Invariants: (a) every pass succeeds and no hook-tool call exceeds a real unit's limit,
//! (b) LXD trusts exactly the valid certificates sent, (c) what a pass sends is bounded by the
//! valid certificates, not the input, (d) nothing secret or garbage is repeated, (e) a second
//! pass writes nothing. The certificate pool is made afresh in each process, so a crash input
//! reproduces the same scenario with other certificates of the same kinds.
#![no_main]

#[path = "../../tests/reconcile_property/scenario.rs"]
mod scenario;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use scenario::*;

fn item(u: &mut Unstructured) -> Result<Item> {
    let cert = u.int_in_range(0..=POOL_SIZE - 1)?;
    Ok(match u.int_in_range(0..=7u8)? {
        0 => Item::Cert(cert),
        1 => Item::Padded { cert, pad: u.int_in_range(1..=256 * 1024)? },
        2 => Item::Copies { cert, copies: u.int_in_range(2..=20)?, pad: u.int_in_range(1..=16 * 1024)? },
        3 => Item::Numbers(u.int_in_range(1..=50_000)?),
        4 => Item::Strings(u.int_in_range(1..=5_000)?),
        5 => Item::FakePem(u.int_in_range(1..=300)?),
        6 => Item::Keys(u.int_in_range(1..=30)?),
        _ => Item::Huge(u.int_in_range(1..=MIB)?),
    })
}

fn value(u: &mut Unstructured) -> Result<Value> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => Value::Absent,
        1 | 2 => {
            let n = u.int_in_range(0..=3)?;
            Value::List((0..n).map(|_| item(u)).collect::<Result<_>>()?)
        }
        _ => Value::NotJson(u.int_in_range(1..=64 * 1024)?),
    })
}

fn setting(u: &mut Unstructured) -> Result<Setting> {
    Ok(*u.choose(&[Setting::Unset, Setting::Good, Setting::Key, Setting::Password])?)
}

fn config(u: &mut Unstructured) -> Result<CharmConfig> {
    Ok(CharmConfig {
        endpoint: setting(u)?,
        client_cert: setting(u)?,
        client_key: setting(u)?,
        server_cert: setting(u)?,
        projects: *u.choose(&[Projects::Unset, Projects::Empty, Projects::Default, Projects::Key, Projects::Password])?,
    })
}

fn scenario(u: &mut Unstructured) -> Result<Scenario> {
    let trusted = u.arbitrary()?;
    let config = config(u)?;
    let relations = (0..u.int_in_range(1..=MAX_RELATIONS)?)
        .map(|_| {
            let https = u.arbitrary()?;
            let app_bag = value(u)?;
            let units = (0..u.int_in_range(0..=MAX_UNITS)?).map(|_| value(u)).collect::<Result<_>>()?;
            Ok(Relation { https, app_bag, units })
        })
        .collect::<Result<_>>()?;
    let large = (0..u.int_in_range(0..=2)?)
        .map(|_| {
            Ok(Large {
                relation: u.int_in_range(0..=MAX_RELATIONS - 1)?,
                member: u.int_in_range(0..=MAX_UNITS)?,
                members: u.int_in_range(1..=MAX_UNITS)?,
                value: value(u)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Scenario { trusted, config, relations, large })
}

type Check<'a> = &'a dyn Fn(&Outcome) -> std::result::Result<(), String>;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = scenario(&mut Unstructured::new(data)) else { return };
    let checks: [(&str, Check); 5] = [
        ("(a) limits", &check_limits),
        ("(b) trusted", &|o| check_trusted(&s, o)),
        ("(c) output bound", &|o| check_output_bound(&s, o)),
        ("(d) no echo", &|o| check_no_echo(&s, o)),
        ("(e) idempotent", &check_idempotent),
    ];
    let mut out = s.start();
    for _ in 0..2 {
        out.pass();
        for (name, check) in &checks {
            if let Err(why) = check(&out) {
                panic!("{name}: {why}\nscenario:\n{s:?}");
            }
        }
    }
});
