//! Hook-tool behaviour (argv parsing, formats, error texts, exit codes, permissions),
//! exercised from real bash hooks running under the driver.

mod common;

use common::*;
use serde_json::json;

const CONFIG: &str = r#"options:
  name:
    type: string
    default: hello
  count:
    type: int
    default: 3
  ratio:
    type: float
    default: 0.5
  enabled:
    type: boolean
    default: false
  unset:
    type: string
    description: no default
"#;

fn setup(tmp: &TempDir) -> jujusim::Sim {
    let mut sim = new_sim(tmp);
    let p = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META).config(CONFIG);
    let r = CharmBuilder::new(tmp.path(), "req", REQUIRER_META);
    sim.deploy("prov", p.path(), 2).unwrap();
    sim.deploy("req", r.path(), 1).unwrap();
    sim
}

/// Runs `cmd` (a shell command line) in a probe and returns "stdout|stderr|rc".
fn run(sim: &mut jujusim::Sim, unit: &str, cmd: &str) -> String {
    let script = format!(
        "{cmd} >/tmp/.o.$$ 2>/tmp/.e.$$; rc=$?; if [ -s /tmp/.e.$$ ]; then printf '%s|%s|%s' \"$(cat /tmp/.o.$$)\" \"$(cat /tmp/.e.$$)\" $rc; else printf '%s|%s' \"$(cat /tmp/.o.$$)\" $rc; fi; rm -f /tmp/.o.$$ /tmp/.e.$$\n"
    );
    let h = probe(sim, unit, &script);
    assert_eq!(h.exit_code, 0, "probe failed: {h:?}");
    h.stdout
}

#[test]
fn usage_errors_exit_2_with_go_texts() {
    let tmp = TempDir::new("usage");
    let mut sim = setup(&tmp);
    let u = "prov/0";
    assert_eq!(run(&mut sim, u, "is-leader --bogus"), "|ERROR option provided but not defined: --bogus|2");
    assert_eq!(run(&mut sim, u, "is-leader -x"), "|ERROR option provided but not defined: -x|2");
    assert_eq!(run(&mut sim, u, "is-leader a"), "|ERROR unrecognized args: [\"a\"]|2");
    assert_eq!(run(&mut sim, u, "is-leader a 'b c'"), "|ERROR unrecognized args: [\"a\" \"b c\"]|2");
    assert_eq!(run(&mut sim, u, "is-leader --format"), "|ERROR option needs an argument: --format|2");
    assert_eq!(
        run(&mut sim, u, "is-leader --format=xml"),
        "|ERROR invalid value \"xml\" for option --format: unknown format \"xml\"|2"
    );
    assert_eq!(run(&mut sim, u, "relation-get"), "|ERROR no relation id specified|2");
    assert_eq!(run(&mut sim, u, "relation-list"), "|ERROR no relation id specified|2");
    assert_eq!(run(&mut sim, u, "relation-set a=b"), "|ERROR no relation id specified|2");
    assert_eq!(run(&mut sim, u, "relation-ids"), "|ERROR no endpoint name specified|2");
    assert_eq!(
        run(&mut sim, u, "relation-get -r 7 - req/0"),
        "|ERROR invalid value \"7\" for option -r: relation not found|2"
    );
    assert_eq!(
        run(&mut sim, u, "relation-get -r api:x - req/0"),
        "|ERROR invalid value \"api:x\" for option -r: invalid relation id|2"
    );
    assert_eq!(run(&mut sim, u, "juju-log"), "|ERROR no message specified|2");
    assert_eq!(
        run(&mut sim, u, "status-set bogus"),
        "|ERROR invalid status \"bogus\", expected one of [maintenance blocked waiting active]|2"
    );
    assert_eq!(run(&mut sim, u, "status-set"), "|ERROR invalid args, require <status> [message]|2");
    assert_eq!(run(&mut sim, u, "status-set active a b"), "|ERROR unrecognized args: [\"b\"]|2");
    assert_eq!(
        run(&mut sim, u, "config-get --all name"),
        "|ERROR cannot use argument --all together with key \"name\"|2"
    );
    assert_eq!(
        run(&mut sim, u, "action-set Bad=1"),
        "|ERROR key \"Bad\" must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods|2"
    );
    assert_eq!(run(&mut sim, u, "action-set stdout=1"), "|ERROR cannot set reserved action key \"stdout\"|2");
    assert_eq!(run(&mut sim, u, "action-set foo"), "|ERROR argument \"foo\" must be of the form key...=value|2");
    assert_eq!(run(&mut sim, u, "state-get a b"), "|ERROR unrecognized args: [\"b\"]|2");
    assert_eq!(run(&mut sim, u, "leader-set foo"), "|ERROR expected \"key=value\", got \"foo\"|2");
    assert_eq!(run(&mut sim, u, "application-version-set"), "|ERROR no version specified|2");
    // --help is not an error.
    assert!(run(&mut sim, u, "is-leader --help").ends_with("|0"));
}

#[test]
fn run_errors_exit_1() {
    let tmp = TempDir::new("runerr");
    let mut sim = setup(&tmp);
    assert_eq!(
        run(&mut sim, "prov/0", "credential-get"),
        "|ERROR cannot access cloud credentials: permission denied|1"
    );
    assert_eq!(run(&mut sim, "prov/0", "state-get --strict nope"), "|ERROR \"nope\" not found|1");
    assert_eq!(run(&mut sim, "prov/0", "action-get"), "|ERROR not running an action|1");
    assert_eq!(run(&mut sim, "prov/0", "action-set a=b"), "|ERROR not running an action|1");
    assert_eq!(run(&mut sim, "prov/0", "action-fail"), "|ERROR not running an action|1");
    assert_eq!(run(&mut sim, "prov/0", "action-log x"), "|ERROR not running an action|1");
    assert_eq!(run(&mut sim, "prov/1", "status-set --application active"), "|ERROR this unit is not the leader|1");
    assert_eq!(
        run(&mut sim, "prov/1", "leader-set a=b"),
        "|ERROR cannot write leadership settings: cannot write settings: not the leader|1"
    );
    assert_eq!(run(&mut sim, "prov/0", "network-get nope"), "|ERROR no network config found for binding \"nope\"|1");
    sim.assert_no_failed_hooks().unwrap();
}

#[test]
fn formats_and_bool_forms() {
    let tmp = TempDir::new("formats");
    let mut sim = setup(&tmp);
    assert_eq!(run(&mut sim, "prov/0", "is-leader"), "True|0");
    assert_eq!(run(&mut sim, "prov/1", "is-leader"), "False|0");
    assert_eq!(run(&mut sim, "prov/0", "is-leader --format=json"), "true|0");
    assert_eq!(run(&mut sim, "prov/0", "is-leader --format yaml"), "true|0");
    assert_eq!(run(&mut sim, "prov/0", "config-get name"), "hello|0");
    assert_eq!(run(&mut sim, "prov/0", "config-get count --format=json"), "3|0");
    assert_eq!(run(&mut sim, "prov/0", "config-get count"), "3|0");
    assert_eq!(run(&mut sim, "prov/0", "config-get enabled"), "False|0");
    assert_eq!(run(&mut sim, "prov/0", "config-get missing --format=json"), "null|0");
    assert_eq!(run(&mut sim, "prov/0", "config-get missing"), "|0");
    assert_eq!(
        run(&mut sim, "prov/0", "config-get --format=json"),
        r#"{"count":3,"enabled":false,"name":"hello","ratio":0.5}|0"#
    );
    assert_eq!(
        run(&mut sim, "prov/0", "config-get --all --format=json"),
        r#"{"count":3,"enabled":false,"name":"hello","ratio":0.5,"unset":null}|0"#
    );
    assert_eq!(
        run(&mut sim, "prov/0", "config-get -a --format=json unset"),
        "|ERROR cannot use argument --all together with key \"unset\"|2"
    );
    assert_eq!(run(&mut sim, "prov/0", "config-get"), "count: 3\nenabled: false\nname: hello\nratio: 0.5|0");
    // Bool flag forms and interspersed flags / `--`.
    assert_eq!(run(&mut sim, "prov/0", "status-set --application=False maintenance -- 'doing x'"), "|0");
    assert_eq!(sim.unit_status("prov/0").unwrap(), ("maintenance".into(), "doing x".into()));
    assert_eq!(run(&mut sim, "prov/0", "status-set active --application=True 'all good'"), "|0");
    assert_eq!(sim.app_status("prov").unwrap(), ("active".into(), "all good".into()));
    assert_eq!(run(&mut sim, "prov/0", "status-set --application=1 blocked -- --looks-like-a-flag"), "|0");
    assert_eq!(sim.app_status("prov").unwrap(), ("blocked".into(), "--looks-like-a-flag".into()));
    assert_eq!(run(&mut sim, "prov/0", "status-set --application=0 active"), "|0");
    assert_eq!(sim.unit_status("prov/0").unwrap(), ("active".into(), "".into()));
    assert_eq!(run(&mut sim, "prov/0", "status-get"), "active|0");
    assert_eq!(
        run(&mut sim, "prov/0", "status-get --include-data --format=json"),
        r#"{"message":"","status":"active","status-data":{}}|0"#
    );
    assert_eq!(run(&mut sim, "prov/0", "status-get --format=json"), r#"{"status":"active"}|0"#);
    // The multi-call form.
    assert_eq!(
        run(&mut sim, "prov/0", "\"$(readlink -f \"$(command -v is-leader)\")\" is-leader --format=json"),
        "true|0"
    );
    assert_eq!(run(&mut sim, "prov/0", "unit-get private-address"), "127.10.0.1|0");
    assert_eq!(run(&mut sim, "prov/0", "network-get api --ingress-address"), "127.10.0.1|0");
    assert_eq!(run(&mut sim, "prov/0", "network-get api --format=json --egress-subnets"), r#"["127.10.0.1/32"]|0"#);
    sim.assert_no_failed_hooks().unwrap();
}

#[test]
fn juju_log_records_levels() {
    let tmp = TempDir::new("log");
    let mut sim = setup(&tmp);
    run(
        &mut sim,
        "prov/0",
        "juju-log --log-level DEBUG -- hello world; juju-log -l warning warn; juju-log a b c; juju-log --debug d; juju-log -l nonsense x",
    );
    let logs = sim.logs().unwrap();
    let got: Vec<(String, String)> = logs.iter().map(|l| (l.level.clone(), l.message.clone())).collect();
    assert_eq!(
        got,
        vec![
            ("DEBUG".into(), "hello world".into()),
            ("WARNING".into(), "warn".into()),
            ("INFO".into(), "a b c".into()),
            ("DEBUG".into(), "d".into()),
            ("WARNING".into(), "Specified log level of \"nonsense\" is not valid".into()),
            ("INFO".into(), "x".into()),
        ]
    );
    assert!(logs.iter().all(|l| l.unit == "prov/0" && l.hook == "update-status"));
    let calls = sim.tool_calls().unwrap();
    let last = calls.last().unwrap();
    assert_eq!(last.tool, "juju-log");
    assert_eq!(last.args, vec!["-l", "nonsense", "x"]);
    assert_eq!(last.exit_code, 0);
}

#[test]
fn credential_get_trust_and_absence() {
    let tmp = TempDir::new("cred");
    let mut sim = setup(&tmp);
    let spec = json!({"type": "lxd", "name": "localhost", "endpoint": "https://127.0.0.1:8443",
        "credential": {"auth-type": "certificate", "attrs": {"client-cert": "<c>", "client-key": "k", "server-cert": "s"}},
        "is-controller-cloud": true});
    sim.set_cloud_spec(spec).unwrap();
    let before = sim.hooks().unwrap().len();
    sim.trust("prov", true).unwrap();
    let fired: Vec<String> = sim.hooks().unwrap()[before..].iter().map(|h| format!("{} {}", h.unit, h.hook)).collect();
    assert_eq!(fired, vec!["prov/0 config-changed", "prov/1 config-changed"]);
    assert_eq!(
        run(&mut sim, "prov/0", "credential-get --format=json"),
        r#"{"credential":{"attrs":{"client-cert":"\u003cc\u003e","client-key":"k","server-cert":"s"},"auth-type":"certificate"},"endpoint":"https://127.0.0.1:8443","is-controller-cloud":true,"name":"localhost","type":"lxd"}|0"#
    );
    // Trusting again changes nothing and fires nothing.
    let before = sim.hooks().unwrap().len();
    sim.trust("prov", true).unwrap();
    assert_eq!(sim.hooks().unwrap().len(), before);
    sim.set_credential_get_available(false).unwrap();
    let out = run(&mut sim, "prov/0", "credential-get --format=json");
    assert!(out.ends_with("|127"), "{out}");
    sim.set_credential_get_available(true).unwrap();
    assert!(run(&mut sim, "prov/0", "credential-get --format=json").ends_with("|0"));
}

#[test]
fn config_set_and_reset_fire_config_changed() {
    let tmp = TempDir::new("config");
    let mut sim = setup(&tmp);
    let before = sim.hooks().unwrap().len();
    sim.set_config("prov", &[("name", Some(json!("world"))), ("unset", Some(json!("x")))]).unwrap();
    assert_eq!(sim.hooks().unwrap().len(), before + 2);
    assert_eq!(run(&mut sim, "prov/0", "config-get name"), "world|0");
    assert_eq!(run(&mut sim, "prov/0", "config-get unset"), "x|0");
    sim.set_config("prov", &[("unset", None), ("name", None)]).unwrap();
    assert_eq!(run(&mut sim, "prov/0", "config-get name"), "hello|0");
    assert_eq!(run(&mut sim, "prov/0", "config-get unset --format=json"), "null|0");
    assert!(sim.set_config("prov", &[("count", Some(json!("many")))]).is_err());
    assert!(sim.set_config("prov", &[("nope", Some(json!("x")))]).is_err());
    sim.set_config("prov", &[("ratio", Some(json!(2)))]).unwrap();
    assert_eq!(run(&mut sim, "prov/0", "config-get ratio --format=json"), "2|0");
}

#[test]
fn state_tools() {
    let tmp = TempDir::new("state");
    let mut sim = setup(&tmp);
    assert_eq!(run(&mut sim, "prov/0", "state-get --format=json"), "null|0");
    assert_eq!(
        run(&mut sim, "prov/0", "state-set a=1 b= 'c=x y'; state-get --format=json"),
        r#"{"a":"1","b":"","c":"x y"}|0"#
    );
    assert_eq!(sim.unit_state("prov/0").unwrap().len(), 3);
    assert_eq!(run(&mut sim, "prov/0", "state-get a"), "1|0");
    assert_eq!(run(&mut sim, "prov/0", "state-get nope --format=json"), "\"\"|0");
    assert_eq!(
        run(&mut sim, "prov/0", "state-delete a; state-delete nope; state-get --format=json"),
        r#"{"b":"","c":"x y"}|0"#
    );
    assert_eq!(
        run(&mut sim, "prov/0", "printf 'k: v\\nb: from-file\\n' | state-set --file - b=cli; state-get --format=json"),
        r#"{"b":"cli","c":"x y","k":"v"}|0"#
    );
    let long_key = "k".repeat(257);
    assert_eq!(
        run(&mut sim, "prov/0", &format!("state-set {long_key}=v")),
        "|ERROR max allowed key length (256) exceeded|1"
    );
    assert_eq!(
        run(&mut sim, "prov/0", "state-set big=$(head -c 65537 /dev/zero | tr '\\0' x)"),
        "|ERROR max allowed value length (65536) exceeded|1"
    );
    // Another unit's state is its own.
    assert_eq!(run(&mut sim, "prov/1", "state-get --format=json"), "null|0");
}

#[test]
fn leader_settings() {
    let tmp = TempDir::new("leader");
    let mut sim = setup(&tmp);
    let before = sim.hooks().unwrap().len();
    assert_eq!(run(&mut sim, "prov/0", "leader-set a=1 b=2; leader-get --format=json"), r#"{"a":"1","b":"2"}|0"#);
    let fired: Vec<String> = sim.hooks().unwrap()[before..].iter().map(|h| format!("{} {}", h.unit, h.hook)).collect();
    assert_eq!(fired, vec!["prov/0 update-status", "prov/1 leader-settings-changed"]);
    assert_eq!(run(&mut sim, "prov/1", "leader-get a"), "1|0");
    assert_eq!(run(&mut sim, "prov/1", "leader-get nope --format=json"), "null|0");
    // Immediate: survives a failing hook.
    run(&mut sim, "prov/0", "leader-set a=; exit 0");
    assert_eq!(sim.leader_settings("prov").unwrap().get("a"), None);
}

#[test]
fn goal_state_lists_the_units_and_relations_and_shows_a_unit_being_removed_as_dying() {
    let tmp = TempDir::new("goal");
    let at_stop = tmp.path().join("goal-at-stop.json");
    let p = CharmBuilder::new(tmp.path(), "prov", PROVIDER_META)
        .on("stop", &format!("goal-state --format=json > {}\n", at_stop.display()));
    let r = CharmBuilder::new(tmp.path(), "req", REQUIRER_META);
    let mut sim = new_sim(&tmp);
    sim.deploy("prov", p.path(), 2).unwrap();
    sim.deploy("req", r.path(), 1).unwrap();
    sim.relate("prov:api", "req:lxd").unwrap();
    let out = run(&mut sim, "prov/0", "goal-state --format=json");
    let (json, rc) = out.rsplit_once('|').unwrap();
    assert_eq!(rc, "0");
    let goal: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(goal["units"]["prov/0"]["status"], "unknown");
    assert_eq!(goal["units"]["prov/1"]["status"], "unknown");
    assert_eq!(goal["relations"]["api"]["req"]["status"], "joined");
    assert_eq!(goal["relations"]["api"]["req/0"]["status"], "unknown");
    assert!(run(&mut sim, "prov/0", "goal-state").starts_with("relations:"), "yaml unless told json");
    sim.remove_unit("prov/1").unwrap();
    let goal: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&at_stop).unwrap()).unwrap();
    assert_eq!(goal["units"]["prov/1"]["status"], "dying", "{goal}");
    assert_eq!(goal["units"]["prov/0"]["status"], "unknown");
}

#[test]
fn stdin_is_read_by_the_tool_that_asks_for_it_and_its_errors_are_the_tools() {
    let tmp = TempDir::new("stdin");
    let mut sim = setup(&tmp);
    // A tool that reads no stdin leaves it to the next command.
    assert_eq!(
        run(&mut sim, "prov/0", "printf 'k: v\\n' | { is-leader; state-set --file -; }; state-get k"),
        "True\nv|0"
    );
    assert_eq!(
        run(&mut sim, "prov/0", "state-set --file - < /"),
        "|ERROR read /dev/stdin: Is a directory (os error 21)|1"
    );
}

#[test]
fn a_tool_called_once_its_hook_is_over_is_told_the_context_is_unknown() {
    let tmp = TempDir::new("late");
    let mut sim = setup(&tmp);
    let out = tmp.path().join("late.txt");
    // Detached, so the hook ends first: its context is gone when the tool runs.
    let script = format!(
        "ctx=$JUJU_CONTEXT_ID; setsid sh -c 'sleep 0.3; is-leader; echo \"rc=$? ctx=$0\"' \"$ctx\" > {o}.tmp 2>&1 < /dev/null & \n",
        o = out.display()
    );
    let h = probe(&mut sim, "prov/0", &script);
    assert_eq!(h.exit_code, 0);
    let tmp_out = out.with_extension("txt.tmp");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let t = std::fs::read_to_string(&tmp_out).unwrap_or_default();
        if t.contains("rc=") || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(text, format!("ERROR bad request: unknown context \"{}\"\nrc=1 ctx={}\n", h.context_id, h.context_id));
}
