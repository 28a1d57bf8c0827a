//! Driver behaviour: hook order and environment, relations (joined/changed/departed/broken
//! visibility, propagation), transactions, permissions, failures and resolve, actions.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::json;

fn hooks_of(sim: &jujusim::Sim, unit: &str) -> Vec<String> {
    sim.hooks().unwrap().into_iter().filter(|h| h.unit == unit).map(|h| h.hook).collect()
}

#[test]
fn deploy_order_and_exact_environment() {
    let tmp = TempDir::new("deploy");
    let mut sim = new_sim(&tmp);
    let c = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META).on(
        "install",
        "env | sort > \"$JUJU_CHARM_DIR/install.env\"; echo \"$0|$#|$(pwd)\" > \"$JUJU_CHARM_DIR/install.argv\"\n",
    );
    let units = sim.deploy("prov", c.path(), 2).unwrap();
    assert_eq!(units, vec!["prov/0", "prov/1"]);
    sim.assert_no_failed_hooks().unwrap();
    assert_eq!(
        events(&sim, "prov/0")[..5],
        [
            "install",
            "cluster-relation-created remote= app=prov departing= list=[] ids=[cluster:0 ]",
            "leader-elected",
            "config-changed",
            "start",
        ]
    );
    assert_eq!(events(&sim, "prov/1")[2], "leader-settings-changed");
    // Peers then meet each other.
    assert!(events(&sim, "prov/0").contains(
        &"cluster-relation-joined remote=prov/1 app=prov departing= list=[prov/1 ] ids=[cluster:0 ]".to_string()
    ));
    assert_eq!(sim.leader("prov").unwrap().as_deref(), Some("prov/0"));
    assert_eq!(sim.unit_status("prov/0").unwrap(), ("unknown".into(), "".into()));

    let dir = sim.unit_dir("prov/0").unwrap();
    let env = std::fs::read_to_string(dir.join("install.env")).unwrap();
    let keys: BTreeSet<&str> = env.lines().map(|l| l.split('=').next().unwrap()).collect();
    let expected: BTreeSet<&str> = [
        "APT_LISTCHANGES_FRONTEND",
        "CHARM_DIR",
        "CLOUD_API_VERSION",
        "DEBIAN_FRONTEND",
        "JUJU_AGENT_SOCKET_ADDRESS",
        "JUJU_AGENT_SOCKET_NETWORK",
        "JUJU_API_ADDRESSES",
        "JUJU_AVAILABILITY_ZONE",
        "JUJU_CHARM_DIR",
        "JUJU_CHARM_FTP_PROXY",
        "JUJU_CHARM_HTTPS_PROXY",
        "JUJU_CHARM_HTTP_PROXY",
        "JUJU_CHARM_NO_PROXY",
        "JUJU_CONTEXT_ID",
        "JUJU_DISPATCH_PATH",
        "JUJU_HOOK_NAME",
        "JUJU_MACHINE_ID",
        "JUJU_MODEL_NAME",
        "JUJU_MODEL_UUID",
        "JUJU_PRINCIPAL_UNIT",
        "JUJU_SLA",
        "JUJU_UNIT_NAME",
        "JUJU_VERSION",
        "LANG",
        "PATH",
        "TERM",
        // bash itself adds these three to `env`'s view:
        "PWD",
        "SHLVL",
        "_",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected, "{env}");
    assert!(env.contains("JUJU_DISPATCH_PATH=hooks/install\n"));
    assert!(env.contains("JUJU_HOOK_NAME=install\n"));
    assert!(env.contains("JUJU_UNIT_NAME=prov/0\n"));
    assert!(env.contains("JUJU_VERSION=3.6.4\n"));
    assert!(env.contains(&format!("JUJU_MODEL_UUID={}\n", sim.model_uuid())));
    assert!(env.contains(&format!(
        "PATH={}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n",
        sim.root().join("tools").display()
    )));
    assert!(env.contains(&format!("JUJU_CHARM_DIR={}\n", dir.display())));
    let argv = std::fs::read_to_string(dir.join("install.argv")).unwrap();
    assert_eq!(argv.trim(), format!("{}|0|{}", dir.join("dispatch").display(), dir.display()));
}

#[test]
fn plain_hooks_dir_missing_hooks_skipped_and_non_executable_fails() {
    let tmp = TempDir::new("hooksdir");
    let mut sim = new_sim(&tmp);
    let dir = tmp.path().join("plain");
    std::fs::create_dir_all(dir.join("hooks")).unwrap();
    std::fs::write(dir.join("metadata.yaml"), "name: plain\nsummary: s\ndescription: d\n").unwrap();
    let script = "#!/bin/bash\necho \"$(basename $0) $JUJU_DISPATCH_PATH\" >> \"$JUJU_CHARM_DIR/log\"\n";
    for h in ["install", "start"] {
        std::fs::write(dir.join("hooks").join(h), script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("hooks").join(h), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(dir.join("hooks/config-changed"), script).unwrap(); // not executable
    sim.deploy("plain", &dir, 1).unwrap();
    let log = std::fs::read_to_string(sim.unit_dir("plain/0").unwrap().join("log")).unwrap();
    assert_eq!(log, "install hooks/install\n");
    let failed = sim.failed_hooks().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].hook, "config-changed");
    assert_eq!(sim.unit_status("plain/0").unwrap(), ("error".into(), "hook failed: \"config-changed\"".into()));
    // leader-elected had no file: skipped silently, recorded as not run.
    let le = sim.hooks().unwrap().into_iter().find(|h| h.hook == "leader-elected").unwrap();
    assert!(!le.ran && !le.failed());
    // start waits behind the error until resolved.
    assert_eq!(sim.pending_hooks().unwrap().len(), 1);
    use std::os::unix::fs::PermissionsExt;
    let unit_hook = sim.unit_dir("plain/0").unwrap().join("hooks/config-changed");
    std::fs::set_permissions(&unit_hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    sim.resolve("plain/0").unwrap();
    let log = std::fs::read_to_string(sim.unit_dir("plain/0").unwrap().join("log")).unwrap();
    assert_eq!(log, "install hooks/install\nconfig-changed hooks/config-changed\nstart hooks/start\n");
    assert!(sim.pending_hooks().unwrap().is_empty());
}

fn related(
    tmp: &TempDir,
    prov_units: u32,
    req_units: u32,
    req_on: &[(&str, &str)],
    prov_on: &[(&str, &str)],
) -> (jujusim::Sim, u32) {
    let mut sim = new_sim(tmp);
    let mut p = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META);
    for (h, s) in prov_on {
        p = p.on(h, s);
    }
    let mut r = CharmBuilder::new(tmp.path(), "req", REQUIRER_META);
    for (h, s) in req_on {
        r = r.on(h, s);
    }
    sim.deploy("prov", p.path(), prov_units).unwrap();
    sim.deploy("req", r.path(), req_units).unwrap();
    let rel = sim.relate("prov:api", "req:lxd").unwrap();
    (sim, rel)
}

#[test]
fn relate_order_membership_and_defaults() {
    let tmp = TempDir::new("relate");
    let (mut sim, rel) = related(&tmp, 1, 2, &[], &[]);
    assert_eq!(rel, 1); // 0 is prov's peer relation
    sim.assert_no_failed_hooks().unwrap();
    let ev: Vec<String> = events(&sim, "prov/0").into_iter().filter(|l| l.starts_with("api-")).collect();
    assert_eq!(
        ev,
        vec![
            "api-relation-created remote= app=req departing= list=[] ids=[api:1 ]",
            "api-relation-joined remote=req/0 app=req departing= list=[req/0 ] ids=[api:1 ]",
            "api-relation-changed remote=req/0 app=req departing= list=[req/0 ] ids=[api:1 ]",
            "api-relation-joined remote=req/1 app=req departing= list=[req/0 req/1 ] ids=[api:1 ]",
            "api-relation-changed remote=req/1 app=req departing= list=[req/0 req/1 ] ids=[api:1 ]",
        ]
    );
    let out = probe(
        &mut sim,
        "prov/0",
        "relation-ids api --format=json; relation-list -r api:1 --format=json; relation-list -r 1 --app; relation-get -r api:1 --format=json - req/1; relation-get -r 1 private-address req/0; relation-get -r 1 nope req/0 --format=json",
    );
    assert_eq!(
        out.stdout,
        "[\"api:1\"]\n[\"req/0\",\"req/1\"]\nreq\n{\"egress-subnets\":\"127.10.0.3/32\",\"ingress-address\":\"127.10.0.3\",\"private-address\":\"127.10.0.3\"}\n127.10.0.2\nnull\n"
    );
    // Reading another app's unit by app name without --app is an Init error.
    let out = probe(&mut sim, "prov/0", "relation-get -r 1 - req; echo rc=$?");
    assert_eq!(out.stderr, "ERROR expected unit name, got application name \"req\"\n");
    assert_eq!(out.stdout, "rc=2\n");
    let out = probe(&mut sim, "prov/0", "relation-get -r 1 - 'Bad'; echo rc=$?");
    assert_eq!(out.stderr, "ERROR invalid unit name \"Bad\"\n");
    // Default member inside a relation hook: JUJU_REMOTE_UNIT.
    let dir = sim.unit_dir("req/0").unwrap();
    std::fs::write(dir.join("on-lxd-relation-changed.sh"), "relation-get - > \"$JUJU_CHARM_DIR/default.out\"; relation-get -r lxd:1 --format=json private-address >> \"$JUJU_CHARM_DIR/default.out\"\n").unwrap();
    sim.write_relation_data(rel, "prov/0", "k", Some("v")).unwrap();
    let got = std::fs::read_to_string(dir.join("default.out")).unwrap();
    assert_eq!(
        got,
        "egress-subnets: 127.10.0.1/32\ningress-address: 127.10.0.1\nk: v\nprivate-address: 127.10.0.1\n\"127.10.0.1\"\n"
    );
    // App databag change: relation-changed with no remote unit; the default member is the app.
    std::fs::write(
        dir.join("on-lxd-relation-changed.sh"),
        "relation-get --format=json > \"$JUJU_CHARM_DIR/default.out\"\n",
    )
    .unwrap();
    sim.write_relation_data(rel, "prov", "appkey", Some("appval")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("default.out")).unwrap(), "{\"appkey\":\"appval\"}\n");
    let last = sim.hooks().unwrap().into_iter().rev().find(|h| h.unit == "req/1").unwrap();
    assert_eq!(last.hook, "lxd-relation-changed");
    assert_eq!(last.remote_unit, None);
    assert_eq!(last.remote_app.as_deref(), Some("req").map(|_| "prov"));
    sim.assert_no_failed_hooks().unwrap();
}

#[test]
fn relation_changed_propagates_until_quiet() {
    let tmp = TempDir::new("propagate");
    // The requirer publishes its name on joined; the provider leader counts requirers in its
    // app databag; requirers copy that count into their unit databag (one more round).
    let req_on = [
        ("lxd-relation-joined", "relation-set name=\"$JUJU_UNIT_NAME\"\n"),
        (
            "lxd-relation-changed",
            "c=$(relation-get --app count prov); [ -n \"$c\" ] && relation-set seen=\"$c\"; true\n",
        ),
    ];
    let prov_on = [(
        "api-relation-changed",
        "if [ \"$(is-leader)\" = True ]; then n=0; for u in $(relation-list); do [ -n \"$(relation-get name $u)\" ] && n=$((n+1)); done; relation-set --app count=$n; fi\n",
    )];
    let (sim, rel) = related(&tmp, 1, 3, &req_on, &prov_on);
    sim.assert_no_failed_hooks().unwrap();
    assert_eq!(sim.relation_app_data(rel, "prov").unwrap()["count"], "3");
    for u in ["req/0", "req/1", "req/2"] {
        let d = sim.relation_data(rel, u).unwrap();
        assert_eq!(d["name"], u);
        assert_eq!(d["seen"], "3");
    }
    assert!(sim.pending_hooks().unwrap().is_empty());
}

#[test]
fn never_settling_relation_data_fails_loudly() {
    let tmp = TempDir::new("pingpong");
    let bump = "relation-set n=$(( $(relation-get n $JUJU_REMOTE_UNIT 2>/dev/null || echo 0) + 1 ))\n";
    let mut sim = new_sim(&tmp);
    let p = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META).on("api-relation-changed", bump);
    let r = CharmBuilder::new(tmp.path(), "req", REQUIRER_META).on("lxd-relation-changed", bump);
    sim.deploy("prov", p.path(), 1).unwrap();
    sim.deploy("req", r.path(), 1).unwrap();
    sim.set_max_rounds(20);
    let err = sim.relate("prov", "req").unwrap_err().to_string();
    assert!(err.contains("never settled"), "{err}");
}

#[test]
fn transactions_commit_on_success_discard_on_failure() {
    let tmp = TempDir::new("txn");
    let (mut sim, rel) = related(&tmp, 1, 1, &[], &[]);
    let h = probe(
        &mut sim,
        "req/0",
        "relation-set -r 1 a=1 b=2; state-set s=1; relation-get -r 1 --format=json - req/0 | tr -d '\\n'; echo; state-get s; relation-set -r 1 b=; relation-get -r 1 b req/0 --format=json; exit 3",
    );
    assert_eq!(h.exit_code, 3);
    assert_eq!(
        h.stdout,
        "{\"a\":\"1\",\"b\":\"2\",\"egress-subnets\":\"127.10.0.1/32\",\"ingress-address\":\"127.10.0.1\",\"private-address\":\"127.10.0.1\"}\n1\nnull\n"
            .replace("127.10.0.1", "127.10.0.2")
            .as_str()
    );
    assert!(!sim.relation_data(rel, "req/0").unwrap().contains_key("a"));
    assert!(sim.unit_state("req/0").unwrap().is_empty());
    assert_eq!(sim.unit_status("req/0").unwrap(), ("error".into(), "hook failed: \"update-status\"".into()));
    assert_eq!(sim.failed_hooks().unwrap().len(), 1);
    assert!(sim.assert_no_failed_hooks().is_err());
    // Retry succeeds: the probe file was removed, so update-status just logs.
    let before = sim.hooks().unwrap().len();
    std::fs::write(sim.unit_dir("req/0").unwrap().join("probe.sh"), "relation-set -r 1 a=1; state-set s=1\n").unwrap();
    sim.resolve("req/0").unwrap();
    assert_eq!(sim.hooks().unwrap().len(), before + 2); // update-status retry + prov's relation-changed
    assert_eq!(sim.relation_data(rel, "req/0").unwrap()["a"], "1");
    assert_eq!(sim.unit_state("req/0").unwrap()["s"], "1");
    assert_eq!(sim.unit_status("req/0").unwrap().0, "unknown");
    let last = sim.hooks().unwrap().pop().unwrap();
    assert_eq!(
        (last.unit.as_str(), last.hook.as_str(), last.remote_unit.as_deref()),
        ("prov/0", "api-relation-changed", Some("req/0"))
    );
}

#[test]
fn app_databag_permissions() {
    let tmp = TempDir::new("perm");
    let (mut sim, rel) = related(&tmp, 2, 1, &[], &[]);
    let h = probe(
        &mut sim,
        "prov/1",
        "relation-set -r 1 --app x=1; echo rc=$?; relation-get -r 1 --app - prov; echo rc=$?; relation-get -r 1 --app --format=json - req; echo rc=$?; relation-set -r 1 --app=false x=1; echo rc=$?",
    );
    assert_eq!(h.stdout, "rc=1\nrc=1\n{}\nrc=0\nrc=0\n");
    assert_eq!(h.stderr, "ERROR cannot write relation settings\nERROR permission denied\n");
    let h = probe(
        &mut sim,
        "prov/0",
        "relation-set -r 1 --app x=1 && relation-get -r 1 --app x prov && relation-get -r 1 x prov/0 --format=json",
    );
    assert_eq!(h.stdout, "1\nnull\n");
    assert_eq!(sim.relation_app_data(rel, "prov").unwrap()["x"], "1");
    // Peers: every unit may read the app databag; only the leader writes it.
    let h = probe(&mut sim, "prov/0", "relation-set -r 0 --app p=1");
    assert_eq!(h.exit_code, 0);
    let h =
        probe(&mut sim, "prov/1", "relation-get -r cluster:0 --app p prov; relation-get -r 0 - prov/0 --format=json");
    assert_eq!(
        h.stdout,
        "1\n{\"egress-subnets\":\"127.10.0.1/32\",\"ingress-address\":\"127.10.0.1\",\"private-address\":\"127.10.0.1\"}\n"
    );
    // Unrelated unit: denied.
    let h = probe(
        &mut sim,
        "req/0",
        "relation-get -r 1 - prov/1 >/dev/null; relation-get -r 1 - req/0 >/dev/null; relation-get -r 1 - other/0; true",
    );
    assert_eq!(h.stderr, "ERROR permission denied\n");
    // A new leader can write.
    sim.set_leader("prov/1").unwrap();
    let h = probe(&mut sim, "prov/1", "relation-set -r 1 --app x=2 && is-leader");
    assert_eq!(h.stdout, "True\n");
    assert_eq!(sim.relation_app_data(rel, "prov").unwrap()["x"], "2");
    sim.assert_no_failed_hooks().unwrap();
}

#[test]
fn relation_set_file_yaml_json_overrides_and_deletes() {
    let tmp = TempDir::new("file");
    let (mut sim, rel) = related(&tmp, 1, 1, &[], &[]);
    let h = probe(
        &mut sim,
        "req/0",
        "printf 'a: from-yaml\\nb: \"2\"\\nmulti: |\\n  line1\\n  line2\\n' | relation-set -r 1 --file - b=cli\n\
         printf '{\"c\": \"json\", \"a\": \"\"}' > f.json; relation-set -r 1 --file f.json\n\
         relation-set -r 1 --file=missing.yaml; echo rc=$?",
    );
    assert_eq!(h.stdout, "rc=1\n");
    assert!(h.stderr.starts_with("ERROR open "), "{}", h.stderr);
    assert!(h.stderr.ends_with("missing.yaml: no such file or directory\n"));
    let d = sim.relation_data(rel, "req/0").unwrap();
    assert_eq!(d.get("a"), None);
    assert_eq!(d["b"], "cli");
    assert_eq!(d["c"], "json");
    assert_eq!(d["multi"], "line1\nline2\n");
    let h = probe(&mut sim, "req/0", "relation-set -r 1 foo; echo rc=$?");
    assert_eq!(h.stderr, "ERROR expected \"key=value\", got \"foo\"\n");
    assert_eq!(h.stdout, "rc=2\n");
}

#[test]
fn oversized_databag_fails_the_hook_at_commit() {
    let tmp = TempDir::new("big");
    let (mut sim, rel) = related(&tmp, 1, 1, &[], &[]);
    let h = probe(
        &mut sim,
        "req/0",
        "head -c 17000000 /dev/zero | tr '\\0' x | sed 's/^/big: /' | relation-set -r 1 --file -",
    );
    assert_eq!(h.exit_code, 0);
    assert!(h.error.as_deref().unwrap_or_default().contains("byte limit"), "{h:?}");
    assert!(!sim.relation_data(rel, "req/0").unwrap().contains_key("big"));
    assert_eq!(sim.unit_status("req/0").unwrap().0, "error");
}

#[test]
fn unrelate_departed_and_broken_visibility() {
    let tmp = TempDir::new("unrelate");
    let (mut sim, rel) = related(&tmp, 1, 2, &[], &[]);
    sim.unrelate(rel).unwrap();
    sim.assert_no_failed_hooks().unwrap();
    let ev: Vec<String> = events(&sim, "prov/0")
        .into_iter()
        .filter(|l| l.starts_with("api-relation-departed") || l.starts_with("api-relation-broken"))
        .collect();
    assert_eq!(
        ev,
        vec![
            "api-relation-departed remote=req/0 app=req departing=req/0 list=[req/1 ] ids=[api:1 ]",
            "api-relation-departed remote=req/1 app=req departing=req/1 list=[] ids=[api:1 ]",
            "api-relation-broken remote= app=req departing= list=[] ids=[api:1 ]",
        ]
    );
    let ev: Vec<String> =
        events(&sim, "req/1").into_iter().filter(|l| l.contains("departed") || l.contains("broken")).collect();
    assert_eq!(
        ev,
        vec![
            "lxd-relation-departed remote=prov/0 app=prov departing=prov/0 list=[] ids=[lxd:1 ]",
            "lxd-relation-broken remote= app=prov departing= list=[] ids=[lxd:1 ]",
        ]
    );
    assert!(sim.relation_ids("prov").unwrap().iter().all(|r| *r != rel));
    let h = probe(&mut sim, "prov/0", "relation-ids api --format=json");
    assert_eq!(h.stdout, "[]\n");
    // Relating again gets a new id.
    let rel2 = sim.relate("req", "prov").unwrap();
    assert_eq!(rel2, 2);
}

#[test]
fn remove_unit_and_leader_reelection() {
    let tmp = TempDir::new("remove");
    let (mut sim, rel) = related(&tmp, 2, 1, &[], &[]);
    sim.remove_unit("prov/0").unwrap();
    sim.assert_no_failed_hooks().unwrap();
    let h = hooks_of(&sim, "prov/0");
    let tail: Vec<&str> = h.iter().map(String::as_str).rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
    assert_eq!(
        tail,
        vec![
            "cluster-relation-departed",
            "cluster-relation-broken",
            "api-relation-departed",
            "api-relation-broken",
            "stop",
            "remove"
        ]
    );
    assert!(events(&sim, "req/0").contains(
        &"lxd-relation-departed remote=prov/0 app=prov departing=prov/0 list=[prov/1 ] ids=[lxd:1 ]".to_string()
    ));
    assert_eq!(sim.leader("prov").unwrap().as_deref(), Some("prov/1"));
    assert_eq!(hooks_of(&sim, "prov/1").last().unwrap(), "leader-elected");
    assert_eq!(sim.relation_units(rel, "req/0").unwrap(), vec!["prov/1"]);
    assert!(sim.unit_status("prov/0").is_err());
    // Adding a unit joins it everywhere.
    let u = sim.add_unit("prov").unwrap();
    assert_eq!(u, "prov/2");
    assert_eq!(sim.relation_units(rel, "req/0").unwrap(), vec!["prov/1", "prov/2"]);
    assert_eq!(sim.relation_units(0, "prov/2").unwrap(), vec!["prov/1"]);
    sim.remove_application("req").unwrap();
    sim.assert_no_failed_hooks().unwrap();
    assert!(sim.relation_ids("prov").unwrap() == vec![0]);
    assert!(hooks_of(&sim, "prov/2").contains(&"api-relation-broken".to_string()));
}

#[test]
fn actions_params_results_and_failures() {
    let tmp = TempDir::new("actions");
    let mut sim = new_sim(&tmp);
    let c = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META).actions(
        "do-it:\n  params:\n    value:\n      type: string\n    mode:\n      type: string\n      default: fast\n    nested:\n      type: object\n  required: [value]\n  additionalProperties: false\nbreak:\n  description: fails\n",
    );
    c.file(
        "actions/do-it",
        "#!/bin/bash\naction-log starting\naction-set out.value=\"$(action-get value)\" out.mode=\"$(action-get mode)\" deep=\"$(action-get nested.k)\" hook=\"$JUJU_HOOK_NAME\" name=\"$JUJU_ACTION_NAME\" dp=\"$JUJU_DISPATCH_PATH\"\nrelation-set -r 0 from-action=1\n",
        true,
    );
    c.file("actions/break", "#!/bin/bash\nstate-set lost=1\nexit 4\n", true);
    // Plain hooks dir (no dispatch) so actions/<name> runs directly.
    std::fs::remove_file(c.path().join("dispatch")).unwrap();
    sim.deploy("prov", c.path(), 1).unwrap();
    let r = sim.run_action("prov/0", "do-it", json!({"value": "v1", "nested": {"k": "deepv"}})).unwrap();
    assert_eq!(r.status, "completed", "{r:?}");
    assert_eq!(
        r.results,
        json!({"out": {"value": "v1", "mode": "fast"}, "deep": "deepv", "hook": "", "name": "do-it", "dp": "actions/do-it"})
    );
    assert_eq!(r.logs, vec!["starting"]);
    assert_eq!(sim.relation_data(0, "prov/0").unwrap()["from-action"], "1");
    assert!(sim.run_action("prov/0", "do-it", json!({})).is_err()); // required missing
    assert!(sim.run_action("prov/0", "do-it", json!({"value": "x", "bogus": 1})).is_err());
    assert!(sim.run_action("prov/0", "nope", json!({})).is_err());
    let r = sim.run_action("prov/0", "break", json!({})).unwrap();
    assert_eq!(r.status, "failed");
    assert_eq!(r.message.as_deref(), Some("exit status 4"));
    assert!(sim.unit_state("prov/0").unwrap().is_empty()); // discarded
    assert_eq!(sim.unit_status("prov/0").unwrap().0, "unknown"); // actions don't error the unit
    std::fs::write(
        sim.unit_dir("prov/0").unwrap().join("actions/break"),
        "#!/bin/bash\nstate-set kept=1\naction-fail 'no good'\n",
    )
    .unwrap();
    let r = sim.run_action("prov/0", "break", json!({})).unwrap();
    assert_eq!((r.status.as_str(), r.message.as_deref()), ("failed", Some("no good")));
    assert_eq!(sim.unit_state("prov/0").unwrap()["kept"], "1"); // exit 0: committed
    std::fs::write(sim.unit_dir("prov/0").unwrap().join("actions/break"), "#!/bin/bash\naction-fail\n").unwrap();
    let r = sim.run_action("prov/0", "break", json!({})).unwrap();
    assert_eq!(r.message.as_deref(), Some("action failed without reason given, check action for errors"));
    assert_eq!(sim.actions().unwrap().len(), 4);
}

#[test]
fn hundred_remote_units() {
    // Plain hooks/ dirs with only the hooks that matter: hooks without a file cost nothing,
    // so this measures the simulator rather than bash.
    let tmp = TempDir::new("scale");
    let mut sim = new_sim(&tmp);
    let mk = |name: &str, meta: &str, hook: &str, body: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(dir.join("hooks")).unwrap();
        std::fs::write(dir.join("metadata.yaml"), format!("name: {name}\nsummary: s\ndescription: d\n{meta}")).unwrap();
        let p = dir.join("hooks").join(hook);
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    };
    let p = mk("prov", PROVIDER_META, "api-relation-changed", "relation-set --app members=$(relation-list | wc -l)\n");
    let r = mk("req", REQUIRER_META, "lxd-relation-joined", "relation-set hello=1\n");
    sim.deploy("prov", &p, 1).unwrap();
    sim.set_copy_mode(jujusim::CopyMode::HardLink);
    let t = std::time::Instant::now();
    sim.deploy("req", &r, 100).unwrap();
    let deploy_took = t.elapsed();
    let t = std::time::Instant::now();
    let rel = sim.relate("prov:api", "req:lxd").unwrap();
    let took = t.elapsed();
    sim.assert_no_failed_hooks().unwrap();
    assert_eq!(sim.relation_app_data(rel, "prov").unwrap()["members"], "100");
    assert_eq!(sim.relation_units(rel, "prov/0").unwrap().len(), 100);
    assert_eq!(sim.relation_data(rel, "req/99").unwrap()["hello"], "1");
    let ran = sim.hooks().unwrap().iter().filter(|h| h.ran).count();
    eprintln!("deploying 100 units took {deploy_took:?}; relating them took {took:?} ({ran} hook processes)");
    assert!(took.as_secs() < 60, "relating 100 units took {took:?}");
}

#[test]
fn hung_hook_is_killed_and_fails() {
    let tmp = TempDir::new("timeout");
    let mut sim = new_sim(&tmp);
    let c = CharmBuilder::new(tmp.path(), "slow", "").on("install", "sleep 30 & sleep 30\n");
    sim.set_hook_timeout(std::time::Duration::from_millis(500));
    let t = std::time::Instant::now();
    sim.deploy("slow", c.path(), 1).unwrap();
    assert!(t.elapsed().as_secs() < 10);
    let failed = sim.failed_hooks().unwrap();
    assert_eq!(failed[0].hook, "install");
    assert!(failed[0].error.as_deref().unwrap().contains("timed out"));
    assert_eq!(sim.unit_status("slow/0").unwrap().0, "error");
}

#[test]
fn a_hook_observer_sees_every_hook_and_the_relation_data_it_committed() {
    let tmp = TempDir::new("observer");
    let p = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META)
        .on("api-relation-changed", "relation-set seen=\"$JUJU_REMOTE_UNIT\"\n");
    let r = CharmBuilder::new(tmp.path(), "req", REQUIRER_META);
    let mut sim = new_sim(&tmp);
    sim.deploy("prov", p.path(), 1).unwrap();
    sim.deploy("req", r.path(), 1).unwrap();
    let before = sim.hooks().unwrap().len();
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    sim.set_hook_observer(move |record, model| {
        let committed = record
            .relation_id
            .and_then(|id| model.relations.get(&id))
            .and_then(|r| r.unit_data.get("prov/0"))
            .and_then(|b| b.get("seen").cloned());
        log.borrow_mut().push(format!("{} {} {}", record.unit, record.hook, committed.unwrap_or_default()));
    });
    sim.relate("prov:api", "req:lxd").unwrap();
    let seen = seen.borrow().clone();
    assert!(seen.contains(&"prov/0 api-relation-created ".to_string()), "{seen:?}");
    let changed = seen.iter().position(|h| h.starts_with("prov/0 api-relation-changed")).expect("changed ran");
    assert_eq!(seen[changed], "prov/0 api-relation-changed req/0", "the observer sees what the hook committed");
    assert_eq!(seen.len(), sim.hooks().unwrap().len() - before, "every hook since, and only those: {seen:?}");
}

#[test]
fn a_redeployed_application_starts_with_no_leader_settings_state_or_databags() {
    let tmp = TempDir::new("redeploy");
    let (mut sim, rel) = related(&tmp, 1, 1, &[], &[]);
    let h = probe(&mut sim, "req/0", "leader-set l=1 && state-set s=1 && relation-set -r 1 r=1");
    assert_eq!(h.exit_code, 0, "{}", h.stderr);
    assert_eq!(sim.leader_settings("req").unwrap()["l"], "1");
    assert_eq!(sim.model().unwrap().relations[&rel].unit_data["req/0"]["r"], "1", "a snapshot holds the databags");
    let charm = sim.model().unwrap().apps["req"].charm_src.clone();
    sim.remove_application("req").unwrap();
    assert!(!sim.root().join(format!("bags/relation-{rel}")).exists(), "the relation's databags went with it");
    sim.deploy("req", &charm, 1).unwrap();
    assert!(sim.leader_settings("req").unwrap().is_empty());
    assert!(sim.unit_state("req/0").unwrap().is_empty());
    let again = sim.relate("prov:api", "req:lxd").unwrap();
    assert!(!sim.relation_data(again, "req/0").unwrap().contains_key("r"));
    sim.assert_no_failed_hooks().unwrap();
}
