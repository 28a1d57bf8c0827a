//! What both real servers do that the fakes only play: a member taken out for maintenance
//! (`cluster evacuate`), and a credential restricted to projects, on LXD 5.0 and Incus 6.0.

use crate::bed::{Bed, I0, MEMBERS, REQUIRER, unit};
use crate::operator::{act, get};
use anyhow::{Result, ensure};
use serde_json::json;
use std::time::Duration;
use testbed::certs;

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        ("m1_an_evacuated_member_is_listed_not_published_until_restored", m1_evacuated_member),
        ("m2_a_credential_restricted_to_projects_blocks_naming_it_and_writes_nothing", m2_restricted_credential),
    ]
}

fn m1_evacuated_member(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("evacuated")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("m1-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    let names = w.bed.cluster.member_names();
    // No instances, so evacuation is immediate; `--force` skips the prompt (both clients).
    w.bed.cluster.lxc(&["cluster", "evacuate", &names[2], "--force"])?;
    let result = evacuated_checks(&mut w, rel, &names);
    let restored = w.bed.cluster.lxc(&["cluster", "restore", &names[2], "--force"]);
    result?;
    restored?;
    w.update_until("node3 published again", Duration::from_secs(60), |w| Ok(w.node_names(rel, I0)?.len() == MEMBERS))?;
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into(), "nothing removed during maintenance");
    w.check()
}

fn evacuated_checks(w: &mut crate::bed::World, rel: jujusim::RelationId, names: &[String]) -> Result<()> {
    w.update_status()?;
    ensure!(!w.node_names(rel, I0)?.contains(&names[2]), "{:?}", w.node_names(rel, I0));
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && message.starts_with(&format!("{}/{MEMBERS} members online", MEMBERS - 1)),
        "{status}: {message}"
    );
    let r = act(w, I0, "list-nodes", json!({}))?;
    let i = (0..MEMBERS).find(|i| get(&r, &format!("nodes.{i}.name")).is_ok_and(|n| n == names[2]));
    let i = i.ok_or_else(|| anyhow::anyhow!("{} not listed: {r:#?}", names[2]))?;
    ensure!(get(&r, &format!("nodes.{i}.status"))? == "Evacuated", "{r:#?}");
    ensure!(get(&r, &format!("nodes.{i}.published"))? == "no", "{r:#?}");
    Ok(())
}

fn m2_restricted_credential(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("restricted-credential")?;
    let fp = w.identity.fingerprint.clone();
    let path = format!("/1.0/certificates/{fp}");
    w.bed.cluster.query("PATCH", &path, Some(&json!({"restricted": true, "projects": ["default"]})))?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("m2-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "blocked" && message.contains("restricted to projects"), "{status}: {message}");
    ensure!(w.owned()?.is_empty(), "nothing added: {:?}", w.owned());
    ensure!(w.registered(rel, I0)?.is_empty());
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(get(&r, "can-manage-trust")? == "no" && get(&r, "server")? == w.bed.cluster.kind().name(), "{r:#?}");
    // The operator lifts the restriction: the next hook trusts the certificate.
    w.bed.cluster.query("PATCH", &path, Some(&json!({"restricted": false, "projects": []})))?;
    w.update_status()?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message.ends_with("1 client trusted"), "{status}: {message}");
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into());
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(get(&r, "can-manage-trust")? == "yes", "{r:#?}");
    w.check()
}
