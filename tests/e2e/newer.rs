//! Servers that cannot run here, played by the fake with answers copied from their source:
//! LXD 6.9 (name, password and projects rules, duplicates held by identities), LXD 5.21.3 with a
//! fine-grained identity that may not create identities, and an Incus 6.0.6 cluster with members
//! in maintenance. Each checks what the charm sent, not only what it shows.

use crate::bed::{Bed, I0, INTEGRATOR, REQUIRER, World, unit};
use crate::fake_lxd::{Era, FakeLxd, INCUS_6_0_EXTENSIONS, LXD_5_21_EXTENSIONS, LXD_6_9_EXTENSIONS, Request};
use crate::operator::{act, get};
use anyhow::{Result, ensure};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use testbed::certs;

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        ("n1_lxd_6_9_gets_only_requests_it_accepts_and_identity_held_certificates_count_as_trusted", n1_lxd_6_9),
        (
            "n2_lxd_5_21_identity_without_can_create_identities_blocks_naming_it_and_writes_nothing",
            n2_lxd_5_21_without_rights,
        ),
        ("n3_incus_6_0_6_members_evacuating_or_restoring_are_listed_not_published", n3_incus_maintenance),
    ]
}

/// The first request the server refused, if any (a 403 counts: every write here is allowed).
/// 409 is the duplicate answer, which the charm expects for a certificate trusted elsewhere.
fn refused(fake: &FakeLxd) -> Option<Request> {
    fake.requests().into_iter().find(|r| r.status >= 400 && r.status != 409 && !(r.method == "GET" && r.status == 404))
}

fn conflicts(fake: &FakeLxd) -> usize {
    fake.requests().iter().filter(|r| r.status == 409).count()
}

fn writes(fake: &FakeLxd) -> Vec<Request> {
    fake.requests().into_iter().filter(|r| r.method != "GET").collect()
}

fn deploy_on(w: &mut World, fake: &FakeLxd) -> Result<()> {
    w.deploy_integrator(1, false)?;
    let spec = fake.cloud_spec(&w.identity);
    w.sim.set_cloud_spec(spec)?;
    w.deploy_requirer(1)?;
    Ok(())
}

fn names(fake: &FakeLxd) -> BTreeSet<String> {
    fake.store().iter().filter_map(|e| e["name"].as_str().map(String::from)).collect()
}

fn n1_lxd_6_9(bed: &mut Bed) -> Result<()> {
    let fake = FakeLxd::start_as(Era::Lxd6_9, "6.9", LXD_6_9_EXTENSIONS, &[])?;
    fake.set_identity(json!({"type": "Client certificate (unrestricted)", "authentication_method": "tls", "name": "juju", "fine_grained": false, "effective_permissions": []}));
    // Entries an operator made before 5.21.3 (or on a server that never checked): names 6.9
    // would refuse today. The charm must leave them exactly as they are.
    let hyphen = certs::client_cert("op-hyphen")?;
    let slash = certs::client_cert("op-slash")?;
    fake.seed("-legacy", &hyphen.cert_pem, false)?;
    fake.seed("ops/team", &slash.cert_pem, true)?;
    let mut w = bed.world("lxd-6-9")?;
    deploy_on(&mut w, &fake)?;
    let rel = w.relate()?;
    let a = certs::client_cert("n1-a")?;
    let held = certs::client_cert("n1-held")?;
    fake.hold_as_identity(&held.cert_pem)?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem, &held.cert_pem, &slash.cert_pem])?;
    w.sim.trust(INTEGRATOR, true)?;

    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message.starts_with("1/1 members online, 3 clients trusted"), "{status}: {message}");
    let registered: BTreeSet<String> = w.registered(rel, I0)?.into_iter().collect();
    let want: BTreeSet<String> = [&a, &held, &slash].iter().map(|c| c.cert_pem.clone()).collect();
    ensure!(registered == want, "a certificate a fine-grained identity holds counts as trusted: {registered:?}");
    let info: Vec<String> = w.sim.logs()?.into_iter().filter(|l| l.unit == I0).map(|l| l.message).collect();
    ensure!(info.iter().any(|l| l.contains("already present")), "the 409 was logged as already present: {info:#?}");
    ensure!(conflicts(&fake) >= 1, "the identity-held certificate was offered and answered 409");

    // trust-projects on and off: restricted adds and PATCHes both ways, all accepted.
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!("default")))])?;
    let entry = fake.store().into_iter().find(|e| e["fingerprint"] == json!(a.fingerprint));
    ensure!(
        entry.as_ref().is_some_and(|e| e["restricted"] == json!(true) && e["projects"] == json!(["default"])),
        "{entry:?}"
    );
    w.sim.set_config(INTEGRATOR, &[("trust-projects", None)])?;
    let entry = fake.store().into_iter().find(|e| e["fingerprint"] == json!(a.fingerprint));
    ensure!(entry.as_ref().is_some_and(|e| e["restricted"] == json!(false)), "{entry:?}");

    // Nothing LXD 6.9 refuses was ever sent; every POST body is one it accepts.
    ensure!(refused(&fake).is_none(), "LXD 6.9 refused {:?}", refused(&fake));
    for r in writes(&fake).iter().filter(|r| r.method == "POST") {
        let body: Value = serde_json::from_str(&r.body)?;
        ensure!(body.get("password").is_none(), "a password was sent: {body}");
        ensure!(
            body.get("projects").is_none() || body["restricted"] == json!(true),
            "projects without restricted: {body}"
        );
        let name = body["name"].as_str().unwrap_or("");
        ensure!(lxd_integrator::ownership::lxd_accepts_name(name), "name {name:?}");
    }
    // The operator's odd entries are untouched, and not taken for ours.
    ensure!(names(&fake).is_superset(&["-legacy".to_string(), "ops/team".to_string()].into()), "{:?}", names(&fake));
    let r = act(&mut w, I0, "list-trusted-clients", json!({}))?;
    ensure!(get(&r, "count")? == "1" && get(&r, "held-elsewhere.count")? == "1", "{r:#?}");
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(get(&r, "server")? == "lxd" && get(&r, "server-version")? == "6.9", "{r:#?}");
    ensure!(get(&r, "can-manage-trust")? == "yes" && get(&r, "missing-extensions")? == "none", "{r:#?}");

    // Unrelated: our entry goes, the operator's stay.
    w.sim.unrelate(rel)?;
    ensure!(!fake.store().iter().any(|e| e["fingerprint"] == json!(a.fingerprint)), "our entry was removed");
    ensure!(names(&fake).is_superset(&["-legacy".to_string(), "ops/team".to_string()].into()), "{:?}", names(&fake));
    ensure!(refused(&fake).is_none(), "LXD 6.9 refused {:?}", refused(&fake));
    w.check()
}

/// A fine-grained TLS identity (5.21.3+: `Client certificate`, no `fine_grained` field in 5.21)
/// with these server entitlements.
fn fine_grained(entitlements: &[&str]) -> Value {
    let perms: Vec<Value> =
        entitlements.iter().map(|e| json!({"entity_type": "server", "url": "/1.0", "entitlement": e})).collect();
    json!({"authentication_method": "tls", "type": "Client certificate", "id": "ab", "name": "juju", "groups": ["viewers"],
           "effective_groups": ["viewers"], "effective_permissions": perms})
}

fn n2_lxd_5_21_without_rights(bed: &mut Bed) -> Result<()> {
    let fake = FakeLxd::start_as(Era::Lxd5_21, "5.21.3", LXD_5_21_EXTENSIONS, &[])?;
    fake.set_identity(fine_grained(&["viewer", "can_view_identities"]));
    let mut w = bed.world("lxd-5-21")?;
    deploy_on(&mut w, &fake)?;
    let rel = w.relate()?;
    let a = certs::client_cert("n2-a")?;
    let held = certs::client_cert("n2-held")?;
    fake.hold_as_identity(&held.cert_pem)?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem, &held.cert_pem])?;
    w.sim.trust(INTEGRATOR, true)?;
    w.update_status()?;

    let want =
        "LXD identity lacks can_create_identities, can_edit_identities, can_delete_identities on server; grant them";
    let (status, message) = w.status(I0)?;
    ensure!(status == "blocked" && message == want, "{status}: {message}");
    ensure!(writes(&fake).is_empty(), "nothing is sent to be refused: {:?}", writes(&fake));
    ensure!(fake.requests().iter().any(|r| r.path == "/1.0/auth/identities/current"), "the identity was read");
    ensure!(w.registered(rel, I0)?.is_empty(), "nothing claimed");
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(get(&r, "can-manage-trust")? == "no" && get(&r, "server-version")? == "5.21.3", "{r:#?}");
    ensure!(
        get(&r, "missing-permissions")? == "can_create_identities,can_edit_identities,can_delete_identities",
        "{r:#?}"
    );
    ensure!(get(&r, "trusted")? == "yes", "trusted, as LXD says of any authenticated identity: {r:#?}");
    let r = act(&mut w, I0, "list-trusted-clients", json!({}))?;
    ensure!(get(&r, "missing.count")? == "2" && get(&r, "missing.0.reason")? == want, "{r:#?}");
    ensure!(writes(&fake).is_empty(), "still no write after the actions");

    // Granted through a group: the next update-status sees it, adds `a`, counts `held`.
    fake.set_identity(fine_grained(&["viewer", "permission_manager"]));
    w.update_status()?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message.starts_with("1/1 members online, 2 clients trusted"), "{status}: {message}");
    ensure!(
        w.registered(rel, I0)?.len() == 2,
        "the identity-held certificate counts (409 `This \"identity\" entry already exists`)"
    );
    ensure!(conflicts(&fake) >= 1, "the identity-held certificate was offered and answered 409");
    ensure!(refused(&fake).is_none(), "{:?}", refused(&fake));
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(get(&r, "can-manage-trust")? == "yes", "{r:#?}");
    w.check()
}

fn n3_incus_maintenance(bed: &mut Bed) -> Result<()> {
    let members = [
        ("node1", "Online"),
        ("node2", "Evacuating"),
        ("node3", "Restoring"),
        ("node4", "Evacuated"),
        ("node5", "Rebalancing"),
    ];
    let fake = FakeLxd::start_as(Era::Incus6_0_6, "6.0.6", INCUS_6_0_EXTENSIONS, &members)?;
    // Incus never checked names: an operator's entry with a slash is normal there.
    let op = certs::client_cert("incus-op")?;
    fake.seed("team/ops", &op.cert_pem, false)?;
    let mut w = bed.world("incus-6-0-6")?;
    deploy_on(&mut w, &fake)?;
    let rel = w.relate()?;
    let a = certs::client_cert("n3-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    w.sim.trust(INTEGRATOR, true)?;

    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message.starts_with("1/5 members online, 1 client trusted"), "{status}: {message}");
    ensure!(
        w.node_names(rel, I0)? == ["node1".to_string()].into(),
        "only the online member is published: {:?}",
        w.node_names(rel, I0)
    );
    let r = act(&mut w, I0, "list-nodes", json!({}))?;
    ensure!(get(&r, "count")? == "5", "{r:#?}");
    for (i, (name, status)) in members.iter().enumerate() {
        let k = |f: &str| format!("nodes.{i}.{f}");
        ensure!(get(&r, &k("name"))? == *name && get(&r, &k("status"))? == *status, "{r:#?}");
        let published = if *status == "Online" { "yes" } else { "no" };
        ensure!(get(&r, &k("published"))? == published, "{name} {status}: {r:#?}");
    }
    ensure!(get(&r, "nodes.1.message")? == "Unavailable due to maintenance", "{r:#?}");
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(get(&r, "server")? == "incus" && get(&r, "server-version")? == "6.0.6", "{r:#?}");
    ensure!(get(&r, "can-manage-trust")? == "unknown", "its own entry is not in the fake's store: {r:#?}");
    ensure!(
        !fake.requests().iter().any(|r| r.path.starts_with("/1.0/auth/")),
        "Incus has no identities API; none asked"
    );
    ensure!(names(&fake).contains("team/ops"), "{:?}", names(&fake));
    ensure!(refused(&fake).is_none(), "{:?}", refused(&fake));
    w.check()
}
