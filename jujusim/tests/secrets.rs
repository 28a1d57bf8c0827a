//! User secrets (Juju >= 3.3) as a consumer charm sees them: `secret-get` and its revision
//! tracking, `secret-info-get`, the `secret-changed` hook, grants and revokes, config options
//! of type `secret`, and what a Juju 2.9 agent has instead (nothing).

mod common;

use common::*;
use jujusim::{JUJU_2_9, Sim};
use serde_json::json;

const CONFIG: &str = "options:\n  creds:\n    type: secret\n    description: a user secret\n";

/// Runs `cmd` (a shell command line) in a probe and returns "stdout|stderr|rc" (stderr left out
/// when empty).
fn run(sim: &mut Sim, unit: &str, cmd: &str) -> String {
    let script = format!(
        "{cmd} >/tmp/.o.$$ 2>/tmp/.e.$$; rc=$?; if [ -s /tmp/.e.$$ ]; then printf '%s|%s|%s' \"$(cat /tmp/.o.$$)\" \"$(cat /tmp/.e.$$)\" $rc; else printf '%s|%s' \"$(cat /tmp/.o.$$)\" $rc; fi; rm -f /tmp/.o.$$ /tmp/.e.$$\n"
    );
    let h = probe(sim, unit, &script);
    assert_eq!(h.exit_code, 0, "probe failed: {h:?}");
    h.stdout
}

/// A consumer charm `app` (2 units) that logs every secret-changed with what it reads then.
fn setup(tmp: &TempDir) -> Sim {
    let mut sim = new_sim(tmp);
    let c = CharmBuilder::new(tmp.path(), "app", PROVIDER_META).config(CONFIG).on(
        "secret-changed",
        "echo \"$JUJU_SECRET_ID|$JUJU_SECRET_LABEL|${JUJU_SECRET_REVISION-unset}|$(secret-get \"$JUJU_SECRET_ID\" password)\" >> \"$JUJU_CHARM_DIR/changed.log\"\n",
    );
    sim.deploy("app", c.path(), 2).unwrap();
    sim
}

fn changed(sim: &Sim, unit: &str) -> Vec<String> {
    let p = sim.unit_dir(unit).unwrap().join("changed.log");
    std::fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect()
}

fn id_of(uri: &str) -> &str {
    uri.strip_prefix("secret:").unwrap()
}

#[test]
fn secret_get_answers_with_jujus_texts_and_exit_codes() {
    let tmp = TempDir::new("secret-get");
    let mut sim = setup(&tmp);
    let uri = sim.add_secret("db", &[("password", "s3cret!"), ("user", "admin")]).unwrap();
    assert!(uri.starts_with("secret:") && uri.len() == 27, "{uri}");
    let u = "app/0";
    // Usage errors (Init): rc 2.
    assert_eq!(run(&mut sim, u, "secret-get"), "|ERROR require either a secret URI or label|2");
    assert_eq!(run(&mut sim, u, "secret-get nope"), "|ERROR secret URI \"nope\" not valid|2");
    assert_eq!(
        run(&mut sim, u, &format!("secret-get {uri} --peek --refresh")),
        "|ERROR specify one of --peek or --refresh but not both|2"
    );
    assert_eq!(run(&mut sim, u, &format!("secret-get {uri} a b")), "|ERROR unrecognized args: [\"b\"]|2");
    assert_eq!(
        run(&mut sim, u, &format!("secret-get {uri} --format=smart")),
        "|ERROR invalid value \"smart\" for option --format: unknown format \"smart\"|2"
    );
    // Not granted, then a secret that does not exist: rc 1.
    assert_eq!(run(&mut sim, u, &format!("secret-get {uri}")), "|ERROR permission denied|1");
    let missing = "secret:d0mbcnvmp25c77cd1arg";
    assert_eq!(run(&mut sim, u, &format!("secret-get {missing}")), format!("|ERROR secret \"{missing}\" not found|1"));
    assert_eq!(
        run(&mut sim, u, "secret-get d0mbcnvmp25c77cd1arg"),
        format!("|ERROR secret \"{missing}\" not found|1"),
        "a bare ID is a URI too"
    );
    // Granted to the application: every unit reads it. yaml by default, json on request.
    sim.grant_secret(&uri, "app").unwrap();
    assert_eq!(run(&mut sim, u, &format!("secret-get {uri}")), "password: s3cret!\nuser: admin|0");
    assert_eq!(
        run(&mut sim, "app/1", &format!("secret-get {uri} --format=json")),
        "{\"password\":\"s3cret!\",\"user\":\"admin\"}|0"
    );
    assert_eq!(run(&mut sim, u, &format!("secret-get {} user", id_of(&uri))), "admin|0");
    assert_eq!(run(&mut sim, u, &format!("secret-get {uri} password#base64")), "czNjcmV0IQ==|0");
    assert_eq!(run(&mut sim, u, &format!("secret-get {uri} token")), "|ERROR secret key value \"token\" not found|1");
    // Nothing of the content is recorded: the tool record holds argv and stderr only.
    let calls = sim.tool_calls().unwrap();
    assert!(
        calls.iter().any(|c| c.tool == "secret-get")
            && !calls.iter().any(|c| c.stderr.contains("s3cret") || c.args.iter().any(|a| a.contains("s3cret")))
    );
    // The controller keeps values base64, as Juju does.
    let s = sim.secret("db").unwrap();
    assert_eq!(s.revisions[0]["password"], "czNjcmV0IQ==");
    assert_eq!(s.consumers.keys().cloned().collect::<Vec<_>>(), ["app/0", "app/1"]);
}

#[test]
fn a_unit_tracks_a_revision_until_it_refreshes_and_new_revisions_run_secret_changed() {
    let tmp = TempDir::new("secret-revisions");
    let mut sim = setup(&tmp);
    let uri = sim.add_secret("db", &[("password", "one")]).unwrap();
    sim.grant_secret(&uri, "app").unwrap();
    // Only app/0 reads it, under its own label: it alone is a consumer.
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri} password --label db-creds")), "one|0");
    sim.update_secret("db", &[("password", "two")]).unwrap();
    sim.assert_no_failed_hooks().unwrap();
    // secret-changed: URI and label, no revision; a plain get still answers the tracked one.
    assert_eq!(changed(&sim, "app/0"), [format!("{uri}|db-creds|unset|one")]);
    assert!(changed(&sim, "app/1").is_empty(), "app/1 never read it");
    assert_eq!(run(&mut sim, "app/0", "secret-get --label db-creds"), "password: one|0");
    // As in Juju, the first argument is always the URI, even with --label.
    assert_eq!(
        run(&mut sim, "app/0", "secret-get --label db-creds password"),
        "|ERROR secret URI \"password\" not valid|2"
    );
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri} password --peek")), "two|0");
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri} password")), "one|0", "--peek does not move");
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri} password --refresh")), "two|0");
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri} password")), "two|0", "--refresh does");
    assert_eq!(run(&mut sim, "app/0", "secret-get --label other"), "|ERROR consumer label \"other\" not found|1");
    // One hook per new revision, about the newest.
    sim.update_secret(&uri, &[("password", "three")]).unwrap();
    assert_eq!(changed(&sim, "app/0").len(), 2);
    let hooks: Vec<String> =
        sim.hooks().unwrap().into_iter().filter(|h| h.hook == "secret-changed").map(|h| h.unit).collect();
    assert_eq!(hooks, ["app/0", "app/0"]);
    let c = &sim.secret(&uri).unwrap().consumers["app/0"];
    assert_eq!((c.current, c.notified, c.label.as_str()), (2, 3, "db-creds"));
}

#[test]
fn revoke_and_remove_take_effect_at_the_next_read_without_a_hook() {
    let tmp = TempDir::new("secret-revoke");
    let mut sim = setup(&tmp);
    let uri = sim.add_secret("db", &[("password", "one")]).unwrap();
    sim.grant_secret(&uri, "app").unwrap();
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri} password")), "one|0");
    let before = sim.hooks().unwrap().len();
    sim.revoke_secret(&uri, "app").unwrap();
    assert_eq!(sim.hooks().unwrap().len(), before, "no hook on revoke");
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri}")), "|ERROR permission denied|1");
    // The consumer record stays: an update still runs secret-changed, which is then denied.
    sim.update_secret(&uri, &[("password", "two")]).unwrap();
    assert_eq!(changed(&sim, "app/0"), [format!("{uri}||unset|")]);
    sim.grant_secret(&uri, "app").unwrap();
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri} password --refresh")), "two|0");
    let before = sim.hooks().unwrap().len();
    sim.remove_secret("db").unwrap();
    assert_eq!(sim.hooks().unwrap().len(), before, "no hook on remove");
    assert_eq!(run(&mut sim, "app/0", &format!("secret-get {uri}")), format!("|ERROR secret \"{uri}\" not found|1"));
    assert!(sim.secret(&uri).is_err());
}

#[test]
fn secret_info_get_knows_only_owned_secrets() {
    let tmp = TempDir::new("secret-info");
    let mut sim = setup(&tmp);
    let uri = sim.add_secret("db", &[("password", "one")]).unwrap();
    sim.grant_secret(&uri, "app").unwrap();
    let id = id_of(&uri).to_string();
    // A user secret belongs to the model, never to the consumer: not found, granted or not.
    assert_eq!(
        run(&mut sim, "app/0", &format!("secret-info-get {uri}")),
        format!("|ERROR secret \"{id}\" not found|1")
    );
    assert_eq!(run(&mut sim, "app/0", "secret-info-get --label db"), "|ERROR secret \"db\" not found|1");
    assert_eq!(run(&mut sim, "app/0", "secret-info-get"), "|ERROR require either a secret URI or label|2");
    assert_eq!(
        run(&mut sim, "app/0", &format!("secret-info-get {uri} --label x")),
        "|ERROR specify either a secret URI or label but not both|2"
    );
}

#[test]
fn the_operator_side_checks_names_keys_and_applications() {
    let tmp = TempDir::new("secret-operator");
    let mut sim = setup(&tmp);
    assert!(sim.add_secret("Bad", &[("password", "x")]).unwrap_err().to_string().contains("not valid"));
    assert_eq!(sim.add_secret("db", &[("pw", "x")]).unwrap_err().to_string(), "key \"pw\" not valid");
    assert_eq!(sim.add_secret("db", &[]).unwrap_err().to_string(), "missing secret value");
    sim.add_secret("db", &[("password", "x")]).unwrap();
    assert!(sim.add_secret("db", &[("password", "y")]).is_err(), "names are unique");
    assert!(sim.grant_secret("db", "nope").is_err());
    assert!(sim.update_secret("other", &[("password", "y")]).is_err());
}

#[test]
fn config_options_of_type_secret_hold_a_secret_uri() {
    let tmp = TempDir::new("secret-config");
    let mut sim = setup(&tmp);
    let uri = sim.add_secret("db", &[("password", "x")]).unwrap();
    sim.set_config("app", &[("creds", Some(json!(uri)))]).unwrap();
    assert_eq!(sim.config("app").unwrap()["creds"], json!(uri));
    assert_eq!(run(&mut sim, "app/0", "config-get creds"), format!("{uri}|0"));
    let err = sim.set_config("app", &[("creds", Some(json!("not-a-uri")))]).unwrap_err();
    assert!(err.to_string().contains("expected secret"), "{err}");
    sim.set_config("app", &[("creds", Some(json!("")))]).unwrap();
}

#[test]
fn a_juju_2_9_agent_has_no_secrets_and_refuses_secret_options() {
    let tmp = TempDir::new("secret-29");
    let mut sim = new_sim(&tmp);
    sim.set_juju_version(JUJU_2_9).unwrap();
    let with_secret = CharmBuilder::new(tmp.path(), "app", PROVIDER_META).config(CONFIG);
    let err = sim.deploy("app", with_secret.path(), 1).unwrap_err();
    assert_eq!(err.to_string(), "invalid config: option \"creds\" has unknown type \"secret\"");
    let plain = CharmBuilder::new(tmp.path(), "plain", PROVIDER_META).config("options:\n  creds:\n    type: string\n");
    sim.deploy("plain", plain.path(), 1).unwrap();
    let out = run(&mut sim, "plain/0", "secret-get secret:d0mbcnvmp25c77cd1arg");
    assert!(out.ends_with("|127") && out.contains("secret-get"), "not on PATH: {out}");
    assert!(sim.add_secret("db", &[("password", "x")]).unwrap_err().to_string().contains("3.3"));
    // Back to 3.x: the tools are there again.
    sim.set_juju_version(jujusim::JUJU_3).unwrap();
    assert_eq!(
        run(&mut sim, "plain/0", "secret-get secret:d0mbcnvmp25c77cd1arg"),
        "|ERROR secret \"secret:d0mbcnvmp25c77cd1arg\" not found|1"
    );
}
