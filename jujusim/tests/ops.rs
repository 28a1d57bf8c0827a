//! Proof against a real client: the Python `ops` framework runs unchanged on the simulator.
//!
//! `tests/ops-charm` is a small ops charm; it is run with ops installed from PyPI into
//! `jujusim/target-ops/<name>` (gitignored): a recent ops 3.x (JSON on `relation-set --file -`)
//! and an ops 2.x (YAML). The install happens on first use with
//! `python3 -m pip install --target`; if python3/pip/the network is unavailable the test
//! fails with the pip output, unless `JUJUSIM_SKIP_OPS=1` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::json;

fn ops_dir(name: &str, spec: &str) -> Option<PathBuf> {
    if std::env::var_os("JUJUSIM_SKIP_OPS").is_some() {
        return None;
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target-ops");
    let dir = base.join(name);
    let marker = dir.join(".installed");
    if marker.exists() {
        return Some(dir);
    }
    // Serialise concurrent installs (the two tests may run in parallel).
    std::fs::create_dir_all(&base).unwrap();
    let lock = std::fs::File::create(base.join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    if marker.exists() {
        return Some(dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new("/usr/bin/python3")
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
        .arg(&dir)
        .arg(spec)
        .output()
        .expect("running /usr/bin/python3 -m pip");
    assert!(
        out.status.success(),
        "pip install {spec} failed (set JUJUSIM_SKIP_OPS=1 to skip):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&marker, spec).unwrap();
    Some(dir)
}

/// Copies tests/ops-charm into `tmp` with `venv` pointing at the ops install.
fn ops_charm(tmp: &TempDir, ops: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ops-charm");
    let dst = tmp.path().join("ops-charm");
    let status = Command::new("cp").arg("-a").arg(&src).arg(&dst).status().unwrap();
    assert!(status.success());
    std::os::unix::fs::symlink(ops, dst.join("venv")).unwrap();
    dst
}

const PROVIDER: &str = "provides:\n  api:\n    interface: lxd\n";

fn run_ops_probe(name: &str, spec: &str, expect_json_stdin: bool) {
    let Some(ops) = ops_dir(name, spec) else {
        return;
    };
    let tmp = TempDir::new(name);
    let mut sim = new_sim(&tmp);
    let charm = ops_charm(&tmp, &ops);

    // Deploy: install, peer-relation-created, leader-elected/leader-settings-changed,
    // config-changed, start; the two units then meet on the peer relation.
    sim.deploy("probe", &charm, 2).unwrap();
    sim.assert_no_failed_hooks().unwrap();
    let (st, msg) = sim.unit_status("probe/0").unwrap();
    assert_eq!(st, "active");
    assert!(msg.starts_with("hi x1 ratio=None hooks="), "{msg}");
    assert_eq!(sim.app_status("probe").unwrap(), ("active".into(), "leader here".into()));
    assert_eq!(sim.app_version("probe").unwrap(), "1.2.3");
    // StoredState went through state-get/state-set (use_juju_for_storage=True).
    assert!(!sim.unit_state("probe/0").unwrap().is_empty());
    let calls = sim.tool_calls().unwrap();
    for tool in ["state-get", "state-set", "config-get", "is-leader", "status-set", "relation-set", "juju-log"] {
        assert!(calls.iter().any(|c| c.tool == tool), "ops never called {tool}");
    }
    assert!(
        calls.iter().all(|c| c.exit_code == 0),
        "a tool call failed: {:?}",
        calls.iter().find(|c| c.exit_code != 0)
    );
    assert!(sim.logs().unwrap().iter().any(|l| l.message.contains("handled")));

    // The peer app databag: the leader wrote it, the other unit read it.
    assert_eq!(sim.relation_app_data(0, "probe").unwrap()["leader"], "probe/0");
    sim.update_status("probe").unwrap();
    assert_eq!(sim.relation_data(0, "probe/1").unwrap()["leader-seen"], "probe/0");

    // Config: typed values reach ops.
    sim.set_config(
        "probe",
        &[("greeting", Some(json!("hey"))), ("count", Some(json!(5))), ("ratio", Some(json!(0.25)))],
    )
    .unwrap();
    let (_, msg) = sim.unit_status("probe/1").unwrap();
    assert!(msg.starts_with("hey x5 ratio=0.25 hooks="), "{msg}");
    sim.set_config("probe", &[("loud", Some(json!(true)))]).unwrap();
    assert!(sim.unit_status("probe/1").unwrap().1.starts_with("HEY X5"));

    // Relations: unit and app databags both ways, through a bash provider.
    let prov = CharmBuilder::new(tmp.path(), "prov", PROVIDER)
        .on("api-relation-joined", "relation-set token=tok-$JUJU_UNIT_NAME; [ \"$(is-leader)\" = True ] && relation-set --app app-token=apptok; true\n");
    sim.deploy("prov", prov.path(), 1).unwrap();
    let rel = sim.relate("prov:api", "probe:lxd").unwrap();
    sim.assert_no_failed_hooks().unwrap();
    for u in ["probe/0", "probe/1"] {
        let d = sim.relation_data(rel, u).unwrap();
        assert_eq!(d["hello"], u);
        assert_eq!(d["multi"], "line1\nline2: with colon\n");
        assert_eq!(d["echo-token"], "tok-prov/0");
        assert_eq!(d["echo-app-token"], "apptok");
        assert_eq!(d["members"], "prov/0");
        assert_eq!(d["remote-address"], "127.10.0.3");
    }
    assert_eq!(sim.relation_app_data(rel, "probe").unwrap()["app-key"], r#"{"units": 1}"#);
    // ops sent relation data through `relation-set --file -` in its own format.
    let set = sim
        .tool_calls()
        .unwrap()
        .into_iter()
        .find(|c| c.tool == "relation-set" && c.stdin.as_deref().unwrap_or("").contains("hello"))
        .unwrap();
    let stdin = set.stdin.unwrap();
    assert_eq!(stdin.trim_start().starts_with('{'), expect_json_stdin, "relation-set stdin: {stdin}");
    assert!(set.args.contains(&"--file".to_string()) && set.args.contains(&"-".to_string()), "{:?}", set.args);

    // A change on the remote side reaches ops' relation-changed.
    sim.write_relation_data(rel, "prov/0", "token", Some("tok2")).unwrap();
    assert_eq!(sim.relation_data(rel, "probe/1").unwrap()["echo-token"], "tok2");
    sim.write_relation_data(rel, "prov", "app-token", Some("apptok2")).unwrap();
    assert_eq!(sim.relation_data(rel, "probe/0").unwrap()["echo-app-token"], "apptok2");

    // Actions: params with defaults, results (nested), logs, failure.
    let r = sim.run_action("probe/1", "set-value", json!({"value": "abc"})).unwrap();
    assert_eq!(r.status, "completed", "{r:?}");
    assert_eq!(r.results, json!({"got": "abc", "extra": "x", "nested": {"a": "b"}}));
    assert_eq!(r.logs, vec!["logging from the action"]);
    assert_eq!(sim.relation_data(0, "probe/1").unwrap()["value"], "abc");
    let r = sim.run_action("probe/0", "fail-me", json!({})).unwrap();
    assert_eq!((r.status.as_str(), r.message.as_deref()), ("failed", Some("nope")));

    // Unrelate: departed (the departing unit is gone from relation.units), then broken.
    sim.unrelate(rel).unwrap();
    sim.assert_no_failed_hooks().unwrap();
    assert_eq!(sim.unit_status("probe/0").unwrap(), ("blocked".into(), "no lxd; departed=prov/0".into()));

    // Leadership moves.
    sim.set_leader("probe/1").unwrap();
    sim.assert_no_failed_hooks().unwrap();
    assert_eq!(sim.relation_app_data(0, "probe").unwrap()["leader"], "probe/1");
    sim.remove_unit("probe/0").unwrap();
    sim.assert_no_failed_hooks().unwrap();
    assert!(sim.tool_calls().unwrap().iter().all(|c| c.exit_code == 0));
}

#[test]
fn ops_3_runs_unchanged() {
    run_ops_probe("ops3", "ops==3.9.0", true);
}

#[test]
fn ops_2_runs_unchanged() {
    run_ops_probe("ops2", "ops==2.17.1", false);
}
