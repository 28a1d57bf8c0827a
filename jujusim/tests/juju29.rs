//! The simulator as a Juju 2.9 unit agent (`Sim::set_juju_version(JUJU_2_9)`): what differs
//! from the default 3.x agent, and that everything the lxd-integrator charm relies on is there.

mod common;

use std::collections::BTreeSet;

use common::*;
use jujusim::{Agent, JUJU_2_9, JUJU_3};
use serde_json::json;

/// The variables a hook gets, as `env` inside it shows them (bash adds PWD, SHLVL and `_`).
fn env_keys(env: &str) -> BTreeSet<String> {
    env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string())).collect()
}

#[test]
fn versions_name_their_agent_and_unmodelled_ones_are_refused() {
    assert_eq!(Agent::of(JUJU_2_9), Some(Agent::Juju29));
    assert_eq!(Agent::of("2.9.47.1"), Some(Agent::Juju29));
    assert_eq!(Agent::of(JUJU_3), Some(Agent::Juju3));
    assert_eq!(Agent::of("3.6-beta2"), Some(Agent::Juju3));
    for v in ["2.8.13", "2.10.0", "4.0.0", "3", "", "two.nine"] {
        assert_eq!(Agent::of(v), None, "{v}");
    }
    let tmp = TempDir::new("versions");
    let mut sim = new_sim(&tmp);
    assert_eq!(sim.agent().unwrap(), Agent::Juju3, "the default stays 3.x");
    let err = sim.set_juju_version("2.8.13").unwrap_err();
    assert!(err.to_string().contains("2.8.13"), "{err}");
    assert_eq!(sim.juju_version().unwrap(), JUJU_3, "a refused version changes nothing");
    sim.set_juju_version(JUJU_2_9).unwrap();
    assert_eq!(sim.agent().unwrap(), Agent::Juju29);
}

#[test]
fn hooks_and_actions_get_2_9s_environment() {
    let tmp = TempDir::new("env29");
    let c = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META)
        .on("install", "env | sort > \"$JUJU_CHARM_DIR/install.env\"\n")
        .on("show-env", "env | sort > \"$JUJU_CHARM_DIR/action.env\"\n")
        .actions("show-env:\n  description: dumps the environment\n");

    // The same charm under both agents: only JUJU_VERSION tells them apart.
    let mut envs = Vec::new();
    for version in [JUJU_3, JUJU_2_9] {
        let root = TempDir::new(&format!("env-{version}"));
        let mut sim = new_sim(&root);
        sim.set_juju_version(version).unwrap();
        sim.deploy("prov", c.path(), 1).unwrap();
        sim.assert_no_failed_hooks().unwrap();
        let dir = sim.unit_dir("prov/0").unwrap();
        let hook = std::fs::read_to_string(dir.join("install.env")).unwrap();
        assert!(hook.contains(&format!("JUJU_VERSION={version}\n")), "{hook}");
        // 2.8's HookVars already sets JUJU_HOOK_NAME; its runner sets JUJU_DISPATCH_PATH.
        assert!(
            hook.contains("JUJU_HOOK_NAME=install\n") && hook.contains("JUJU_DISPATCH_PATH=hooks/install\n"),
            "{hook}"
        );
        assert!(sim.run_action("prov/0", "show-env", json!({})).unwrap().status == "completed");
        let action = std::fs::read_to_string(dir.join("action.env")).unwrap();
        for var in [
            "JUJU_ACTION_NAME=show-env\n",
            "JUJU_ACTION_TAG=action-1\n",
            "JUJU_ACTION_UUID=1\n",
            "JUJU_HOOK_NAME=\n",
            "JUJU_DISPATCH_PATH=actions/show-env\n",
        ] {
            assert!(action.contains(var), "{var} missing under {version}:\n{action}");
        }
        envs.push((env_keys(&hook), env_keys(&action)));
    }
    assert_eq!(envs[0], envs[1], "2.9 and 3.x set the same variables");
}

#[test]
fn action_results_carry_2_9s_code_and_output() {
    let tmp = TempDir::new("results29");
    let c = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META)
        .actions("say:\n  description: talks\nbreak:\n  description: fails\nquiet:\n  description: silent\n");
    c.file("actions/say", "#!/bin/bash\necho hello\necho oops >&2\naction-set said=hello\n", true);
    c.file("actions/break", "#!/bin/bash\nexit 3\n", true);
    c.file("actions/quiet", "#!/bin/bash\naction-set k=v\n", true);
    std::fs::remove_file(c.path().join("dispatch")).unwrap();

    let mut sim = new_sim(&tmp);
    sim.set_juju_version(JUJU_2_9).unwrap();
    sim.deploy("prov", c.path(), 1).unwrap();
    let r = sim.run_action("prov/0", "say", json!({})).unwrap();
    assert_eq!(r.status, "completed");
    assert_eq!(r.results, json!({"said": "hello", "Code": "0", "Stdout": "hello\n", "Stderr": "oops\n"}));
    let r = sim.run_action("prov/0", "break", json!({})).unwrap();
    assert_eq!((r.status.as_str(), r.message.as_deref()), ("failed", Some("exit status 3")));
    assert_eq!(r.results, json!({"Code": "3"}));
    // Nothing printed: no Stdout/Stderr keys, only the code.
    assert_eq!(sim.run_action("prov/0", "quiet", json!({})).unwrap().results, json!({"k": "v", "Code": "0"}));
    // The default agent leaves the results as the charm set them.
    sim.set_juju_version(JUJU_3).unwrap();
    assert_eq!(sim.run_action("prov/0", "say", json!({})).unwrap().results, json!({"said": "hello"}));
}

/// Every hook tool the lxd-integrator charm calls (src/hook_tools.rs), in the argv shapes it
/// uses, answers under a 2.9 agent as under 3.x.
#[test]
fn every_tool_the_charm_calls_answers_under_2_9() {
    let tmp = TempDir::new("tools29");
    let mut sim = new_sim(&tmp);
    sim.set_juju_version(JUJU_2_9).unwrap();
    sim.set_cloud_spec(json!({"type": "lxd", "name": "localhost", "endpoint": "https://127.0.0.1:8443",
        "credential": {"auth-type": "certificate", "attrs": {"client-cert": "c", "client-key": "k", "server-cert": "s"}}}))
        .unwrap();
    let p = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META)
        .config("options:\n  lxd_endpoint:\n    type: string\n")
        .actions("go:\n  params:\n    dry-run:\n      type: boolean\n      default: false\n")
        .on("go", "action-set params=\"$(action-get --format=json)\"\naction-fail 'stop here'\n");
    let r = CharmBuilder::new(tmp.path(), "req", REQUIRER_META)
        .on("lxd-relation-joined", "relation-set client_certificates='[]'\n");
    sim.deploy("prov", p.path(), 1).unwrap();
    sim.deploy("req", r.path(), 1).unwrap();
    let rel = sim.relate("prov:api", "req:lxd").unwrap();

    let script = format!(
        r#"set -e
exec 2>&1
credential-get --format=json || true
config-get --format=json
is-leader --format=json
state-get --format=json
printf '{{"k":"v"}}' | state-set --file -
state-get --format=json
relation-ids api --format=json
relation-list -r {rel} --format=json
relation-list -r {rel} --app --format=json
relation-get -r {rel} --format=json - req/0
relation-get -r {rel} --format=json --app - req
printf '{{"version":"1.0"}}' | relation-set -r {rel} --file -
printf '{{"version":"1.0"}}' | relation-set -r {rel} --app --file -
status-set active -- 'all good'
juju-log --log-level INFO -- 'a line'
application-version-set 5.0.2
"#
    );
    let h = probe(&mut sim, "prov/0", &script);
    assert_eq!(h.exit_code, 0, "{h:?}");
    let lines: Vec<&str> = h.stdout.lines().collect();
    assert_eq!(lines[0], "ERROR cannot access cloud credentials: permission denied", "untrusted: {lines:?}");
    assert_eq!(
        &lines[1..8],
        ["{}", "true", "null", "{\"k\":\"v\"}", &format!("[\"api:{rel}\"]"), "[\"req/0\"]", "\"req\""]
    );
    let remote: serde_json::Value = serde_json::from_str(lines[8]).unwrap();
    assert_eq!(remote["client_certificates"], "[]", "{remote}");
    assert!(remote["private-address"].is_string(), "{remote}");
    assert_eq!(&lines[9..], ["{}"]);
    assert_eq!(sim.unit_status("prov/0").unwrap(), ("active".into(), "all good".into()));
    assert_eq!(sim.app_version("prov").unwrap(), "5.0.2");
    assert_eq!(sim.relation_app_data(rel, "prov").unwrap()["version"], "1.0");
    assert!(sim.logs().unwrap().iter().any(|l| l.message == "a line" && l.level == "INFO"));

    sim.trust("prov", true).unwrap();
    let h = probe(&mut sim, "prov/0", "credential-get --format=json\n");
    let spec: serde_json::Value = serde_json::from_str(&h.stdout).unwrap();
    assert_eq!(spec["credential"]["attrs"]["client-cert"], "c");

    let a = sim.run_action("prov/0", "go", json!({})).unwrap();
    assert_eq!((a.status.as_str(), a.message.as_deref()), ("failed", Some("stop here")));
    assert_eq!(a.results["params"], "{\"dry-run\":false}");
    assert_eq!(a.results["Code"], "0");
    sim.assert_no_failed_hooks().unwrap();
}
