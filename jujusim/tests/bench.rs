//! What a hook-tool call costs with many large databags in the model (issue #11): N requirer
//! units each hold ~1 MiB of relation data, then one provider action reads every databag with
//! `relation-get` and writes its own with `relation-set`. Ignored by default (it measures, it
//! does not check); run it with
//! `JUJUSIM_BENCH_UNITS=100 cargo test -p jujusim --test bench -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use serde_json::json;

/// Only the action does anything: relation hooks would add tool calls the figures do not ask
/// about.
const DISPATCH: &str = r#"#!/bin/bash
set -eu
[ "$JUJU_DISPATCH_PATH" = actions/read-all ] || exit 0
rel=$(relation-ids api)
for u in $(relation-list -r "$rel"); do relation-get -r "$rel" - "$u" >/dev/null; done
relation-set -r "$rel" seen=yes
"#;

const MIB: usize = 1 << 20;

#[test]
#[ignore]
fn tool_calls_with_many_large_databags() {
    let units: u32 = std::env::var("JUJUSIM_BENCH_UNITS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let tmp = TempDir::new("bench");
    let mut sim = new_sim(&tmp);
    let p = CharmBuilder::new(tmp.path(), "prov", "provides:\n  api:\n    interface: lxd\n")
        .actions("read-all:\n  description: reads every databag\n");
    p.file("dispatch", DISPATCH, true);
    let r = CharmBuilder::new(tmp.path(), "req", REQUIRER_META);
    std::fs::remove_file(r.path().join("dispatch")).unwrap();
    sim.deploy("prov", p.path(), 1).unwrap();
    sim.deploy("req", r.path(), units).unwrap();
    let rel = sim.relate("prov:api", "req:lxd").unwrap();

    let t = Instant::now();
    for n in 0..units {
        sim.write_relation_data(rel, &format!("req/{n}"), "blob", Some(&"x".repeat(MIB))).unwrap();
    }
    let writes = t.elapsed();

    let t = Instant::now();
    let result = sim.run_action("prov/0", "read-all", json!({})).unwrap();
    let action = t.elapsed();
    assert_eq!(result.status, "completed", "{}", result.stderr);

    let calls = sim.tool_calls().unwrap();
    let mean_ms = |tool: &str| {
        let d: Vec<u64> =
            calls.iter().filter(|c| c.hook == "read-all" && c.tool == tool).map(|c| c.duration_us).collect();
        d.iter().sum::<u64>() as f64 / d.len().max(1) as f64 / 1000.0
    };
    eprintln!(
        "bench: {units} units × 1 MiB: {} write_relation_data in {:.2?} ({:.1} ms each); read-all action {:.2?}: \
         relation-get {:.2} ms, relation-set {:.2} ms, relation-list {:.2} ms each (in the tool)",
        units,
        writes,
        writes.as_secs_f64() * 1000.0 / units as f64,
        action,
        mean_ms("relation-get"),
        mean_ms("relation-set"),
        mean_ms("relation-list"),
    );
}

/// The provider of the scale scenario: every relation hook makes the calls a charm makes about
/// the unit the hook is for (its databag, the member list, a status); `update-status` reads
/// every databag, as a charm's full pass does.
const SCALE_DISPATCH: &str = r#"#!/bin/bash
set -eu
case "$JUJU_DISPATCH_PATH" in
  hooks/api-relation-joined|hooks/api-relation-changed)
    is-leader >/dev/null
    relation-list >/dev/null
    relation-get - "$JUJU_REMOTE_UNIT" >/dev/null
    status-set active "saw $JUJU_REMOTE_UNIT";;
  hooks/update-status)
    rel=$(relation-ids api)
    for u in $(relation-list -r "$rel"); do relation-get -r "$rel" - "$u" >/dev/null; done
    status-set active steady;;
esac
"#;

/// The scenario of the charm's 1,000-unit bench row, on the simulator alone: relate N
/// requirer units, each sends one certificate-sized value, then a steady `update-status`
/// that reads every databag, one unit's change and one unit joining. The simulator's cost
/// must grow with the work the charm asks for (hooks × tool calls), not with the model's size
/// on top of it.
#[test]
#[ignore]
fn a_relation_with_many_units() {
    let units: u32 = std::env::var("JUJUSIM_BENCH_UNITS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let tmp = TempDir::new("bench-scale");
    let mut sim = new_sim(&tmp);
    let p = CharmBuilder::new(tmp.path(), "prov", "provides:\n  api:\n    interface: lxd\n");
    p.file("dispatch", SCALE_DISPATCH, true);
    let r = CharmBuilder::new(tmp.path(), "req", REQUIRER_META);
    std::fs::remove_file(r.path().join("dispatch")).unwrap();
    sim.set_copy_mode(jujusim::CopyMode::HardLink);
    sim.deploy("prov", p.path(), 1).unwrap();
    let mut phases: Vec<(&str, std::time::Duration, usize)> = Vec::new();
    let mut timed = |sim: &mut jujusim::Sim, name: &'static str, f: &mut dyn FnMut(&mut jujusim::Sim)| {
        let (hooks, t) = (sim.hooks().unwrap().len(), Instant::now());
        f(sim);
        phases.push((name, t.elapsed(), sim.hooks().unwrap().len() - hooks));
    };
    timed(&mut sim, "deploy", &mut |s| {
        s.deploy("req", r.path(), units).unwrap();
    });
    let mut rel = 0;
    timed(&mut sim, "relate", &mut |s| rel = s.relate("prov:api", "req:lxd").unwrap());
    let cert = format!("[\"{}\"]", "c".repeat(1200));
    timed(&mut sim, "certs", &mut |s| {
        for n in 0..units {
            s.write_relation_data(rel, &format!("req/{n}"), "client_certificates", Some(&cert)).unwrap();
        }
    });
    timed(&mut sim, "update-status", &mut |s| s.run_hook("prov/0", "update-status").unwrap());
    timed(&mut sim, "one change", &mut |s| {
        s.write_relation_data(rel, "req/0", "client_certificates", Some("[]")).unwrap()
    });
    timed(&mut sim, "one join", &mut |s| {
        s.add_unit("req").unwrap();
    });
    sim.assert_no_failed_hooks().unwrap();
    let calls = sim.tool_calls().unwrap();
    let get_us: Vec<u64> =
        calls.iter().filter(|c| c.hook == "update-status" && c.tool == "relation-get").map(|c| c.duration_us).collect();
    let total: f64 = phases.iter().map(|p| p.1.as_secs_f64()).sum();
    let text: Vec<String> =
        phases.iter().map(|(n, d, h)| format!("{n} {:.2} s ({h} hooks)", d.as_secs_f64())).collect();
    eprintln!(
        "bench: a relation with {units} units: {}; total {total:.1} s, {} tool calls; relation-get in update-status {:.2} ms each (in the tool)",
        text.join(", "),
        calls.len(),
        get_us.iter().sum::<u64>() as f64 / get_us.len().max(1) as f64 / 1000.0,
    );
}
