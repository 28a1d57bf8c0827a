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
