//! The scenarios of the test-bed issue, each asserting only what Juju and LXD can observe:
//! statuses, relation data, the trust store, exit codes and logs.

use crate::bed::{Bed, I0, INTEGRATOR, MEMBERS, REQUIRER, World, unit};
use anyhow::{Result, ensure};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use testbed::certs;

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        ("s1_without_trust_or_config_the_charm_blocks_asking_for_juju_trust", s1_without_trust_blocks),
        ("s2_trust_or_the_config_fallback_reaches_active", s2_trust_or_config_reaches_active),
        ("s3_two_requirer_units_get_their_certificates_trusted_and_published", s3_two_units_trusted_and_published),
        ("s4_rotation_replaces_the_entry_and_leaves_admin_entries_alone", s4_rotation),
        ("s5_removing_a_unit_then_the_relation_removes_their_entries", s5_unit_then_relation_removed),
        ("s6_a_failed_member_leaves_nodes_and_the_charm_fails_over", s6_member_failure_and_failover),
        ("s7_untrusted_or_wrong_credentials_block_naming_the_cause", s7_untrusted_or_wrong_credentials),
        ("s8_garbage_from_a_requirer_is_named_and_loses_nothing", s8_garbage_loses_nothing),
        ("s9_only_the_leader_writes_and_a_new_leader_carries_on", s9_leadership),
        ("s10_a_unit_changing_only_juju_keys_costs_one_databag_read", s10_quiet_change_hook),
    ]
}

fn s1_without_trust_blocks(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("no-trust")?;
    w.deploy_integrator(1, false)?;
    w.deploy_requirer(1)?;
    w.relate()?;
    w.update_status()?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message == "Missing credentials access; grant with: juju trust",
        "{status}: {message}"
    );
    let hooks = w.sim.hooks()?;
    ensure!(hooks.iter().filter(|h| h.unit == I0 && h.ran).count() >= 5, "hooks ran: {}", hooks.len());
    w.check()
}

fn s2_trust_or_config_reaches_active(bed: &mut Bed) -> Result<()> {
    {
        let mut w = bed.world("trust")?;
        w.deploy_integrator(1, false)?;
        ensure!(w.status(I0)?.0 == "blocked");
        w.sim.trust(INTEGRATOR, true)?;
        let (status, message) = w.status(I0)?;
        ensure!(
            status == "active" && message == format!("{MEMBERS}/{MEMBERS} members online, 0 clients trusted"),
            "{status}: {message}"
        );
        let version = w.bed.cluster.server_version()?;
        ensure!(w.sim.app_version(INTEGRATOR)? == version, "application version from the server: {version}");
        w.check()?;
    }
    let mut w = bed.world("config")?;
    w.sim.set_credential_get_available(false)?;
    w.deploy_integrator(1, false)?;
    let spec = w.cloud_spec();
    let attrs = &spec["credential"]["attrs"];
    // A partial config names exactly what is missing.
    w.sim.set_config(INTEGRATOR, &[("lxd_endpoint", Some(spec["endpoint"].clone()))])?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message == "config incomplete: set lxd_client_cert, lxd_client_key, lxd_server_cert",
        "{status}: {message}"
    );
    w.sim.set_config(
        INTEGRATOR,
        &[
            ("lxd_client_cert", Some(attrs["client-cert"].clone())),
            ("lxd_client_key", Some(attrs["client-key"].clone())),
            ("lxd_server_cert", Some(attrs["server-cert"].clone())),
        ],
    )?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "active", "{status}: {message}");
    w.check()
}

fn s3_two_units_trusted_and_published(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("two-units")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(2)?;
    let rel = w.relate()?;
    let a = certs::client_cert("req-0")?;
    let b = certs::client_cert("req-1")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    w.send(&unit(REQUIRER, 1), &[&b.cert_pem])?;
    let want: BTreeSet<String> = [a.fingerprint.clone(), b.fingerprint.clone()].into();
    ensure!(w.owned_fps()? == want, "trust store holds {:?}", w.owned());
    let nodes = w.nodes(rel, I0)?;
    ensure!(nodes.len() == MEMBERS, "{nodes:?}");
    let endpoints: BTreeSet<String> = nodes.iter().filter_map(|n| n["endpoint"].as_str().map(String::from)).collect();
    let cluster: BTreeSet<String> = w.bed.cluster.endpoints().iter().map(|e| format!("https://{e}")).collect();
    ensure!(endpoints == cluster, "{endpoints:?} vs {cluster:?}");
    for n in &nodes {
        let fps: BTreeSet<String> = n["trusted_certs_fp"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(String::from))
            .collect();
        ensure!(fps == want, "{n}");
    }
    let registered: BTreeSet<String> = w.registered(rel, I0)?.into_iter().collect();
    ensure!(registered == [a.cert_pem.clone(), b.cert_pem.clone()].into(), "registered_certificates");
    // As the original charm: unit databags only (its requirers do not survive an
    // application-databag change).
    ensure!(w.sim.relation_app_data(rel, INTEGRATOR)?.is_empty(), "api leaves the application databag empty");
    // The ops requirer read it back.
    let (status, message) = w.status(&unit(REQUIRER, 0))?;
    ensure!(status == "active" && message == format!("nodes={MEMBERS} registered=2"), "requirer: {status}: {message}");
    let (status, message) = w.status(I0)?;
    ensure!(message == format!("{MEMBERS}/{MEMBERS} members online, 2 clients trusted"), "{status}: {message}");
    w.check()
}

fn s4_rotation(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("rotation")?;
    let admin_extra = certs::client_cert("added-by-hand")?;
    let admin_fp = w.cluster().trust_add("operator-added", &admin_extra.cert_pem)?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let old = certs::client_cert("old")?;
    let new = certs::client_cert("new")?;
    w.send(&unit(REQUIRER, 0), &[&old.cert_pem])?;
    ensure!(w.owned_fps()? == [old.fingerprint.clone()].into());
    w.send(&unit(REQUIRER, 0), &[&new.cert_pem])?;
    ensure!(w.owned_fps()? == [new.fingerprint.clone()].into(), "{:?}", w.owned());
    ensure!(w.registered(rel, I0)? == std::slice::from_ref(&new.cert_pem));
    // The same certificate the operator trusted by hand is requested, then withdrawn.
    w.send(&unit(REQUIRER, 0), &[&new.cert_pem, &admin_extra.cert_pem])?;
    ensure!(w.registered(rel, I0)?.len() == 2, "a certificate already trusted counts as present");
    w.send(&unit(REQUIRER, 0), &[&new.cert_pem])?;
    w.update_status()?;
    let store = w.store_fps()?;
    ensure!(store.contains(&admin_fp), "the operator's entry is untouched");
    let entry = w.bed.cluster.trust_list()?.into_iter().find(|e| e["fingerprint"] == json!(admin_fp));
    ensure!(entry.is_some_and(|e| e["name"] == json!("operator-added")), "its name too");
    w.cluster().trust_remove(&admin_fp)?;
    w.check()
}

fn s5_unit_then_relation_removed(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("removal")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(2)?;
    let rel = w.relate()?;
    let a = certs::client_cert("a")?;
    let b = certs::client_cert("b")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    w.send(&unit(REQUIRER, 1), &[&b.cert_pem])?;
    ensure!(w.owned()?.len() == 2);
    w.sim.remove_unit(&unit(REQUIRER, 1))?;
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into(), "{:?}", w.owned());
    ensure!(w.registered(rel, I0)? == std::slice::from_ref(&a.cert_pem));
    w.sim.unrelate(rel)?;
    ensure!(w.owned()?.is_empty(), "{:?}", w.owned());
    ensure!(w.status(I0)?.0 == "active");
    w.check()
}

fn s6_member_failure_and_failover(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("failover")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    let names = w.bed.cluster.member_names();
    // A member that is not the configured endpoint fails, then comes back.
    w.cluster().stop_member(2)?;
    w.update_until("node3 unpublished", Duration::from_secs(60), |w| Ok(!w.node_names(rel, I0)?.contains(&names[2])))?;
    ensure!(w.node_names(rel, I0)?.len() == MEMBERS - 1);
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into(), "nothing removed during the outage");
    w.cluster().start_member(2)?;
    w.update_until("node3 published again", Duration::from_secs(60), |w| Ok(w.node_names(rel, I0)?.len() == MEMBERS))?;
    // The configured endpoint's member fails: the charm reaches LXD through another member.
    w.cluster().stop_member(0)?;
    w.update_until("node1 unpublished", Duration::from_secs(60), |w| Ok(!w.node_names(rel, I0)?.contains(&names[0])))?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && message.starts_with(&format!("{}/{MEMBERS} members online", MEMBERS - 1)),
        "{status}: {message}"
    );
    // A new certificate still gets trusted while the configured member is down.
    let b = certs::client_cert("b")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem, &b.cert_pem])?;
    ensure!(w.owned_fps()? == [a.fingerprint.clone(), b.fingerprint.clone()].into());
    let check = w.sim.run_action(I0, "check-connection", json!({}))?;
    let used = check.results["endpoint"].as_str().unwrap_or("").to_string();
    ensure!(used != format!("https://{}", w.bed.cluster.endpoint(0)), "check-connection used {used}");
    w.cluster().start_member(0)?;
    w.update_until("node1 back", Duration::from_secs(60), |w| Ok(w.node_names(rel, I0)?.len() == MEMBERS))?;
    w.check()
}

fn s7_untrusted_or_wrong_credentials(bed: &mut Bed) -> Result<()> {
    {
        let mut w = bed.world("untrusted")?;
        // An identity LXD has never seen.
        w.identity = certs::client_cert("stranger")?;
        w.deploy_integrator(1, true)?;
        let (status, message) = w.status(I0)?;
        ensure!(
            status == "blocked" && message.starts_with("client certificate not trusted by LXD at https://"),
            "{status}: {message}"
        );
        w.check()?;
    }
    let mut w = bed.world("wrong-server-cert")?;
    w.deploy_integrator(1, false)?;
    let mut spec = w.cloud_spec();
    spec["credential"]["attrs"]["server-cert"] = json!(certs::server_cert("impostor", &[])?.cert_pem);
    w.sim.set_cloud_spec(spec)?;
    w.deploy_requirer(1)?;
    w.relate()?;
    let a = certs::client_cert("a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    w.sim.trust(INTEGRATOR, true)?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "blocked" && message.contains("server certificate mismatch"), "{status}: {message}");
    ensure!(w.owned()?.is_empty(), "nothing was added through an unverified server");
    // Trust revoked and restored: the charm notices on the next hook, both ways.
    let good = w.cloud_spec();
    w.sim.set_cloud_spec(good)?;
    w.update_status()?;
    ensure!(w.status(I0)?.0 == "active" && w.owned()?.len() == 1, "{:?}", w.status(I0));
    let identity_fp = w.identity.fingerprint.clone();
    w.cluster().trust_remove(&identity_fp)?;
    w.update_status()?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "blocked" && message.starts_with("client certificate not trusted"), "{status}: {message}");
    let pem = w.identity.cert_pem.clone();
    w.cluster().trust_add("e2e-integrator-restored", &pem)?;
    w.update_status()?;
    ensure!(w.status(I0)?.0 == "active");
    w.check()
}

fn s8_garbage_loses_nothing(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("garbage")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(3)?;
    let rel = w.relate()?;
    let good = certs::client_cert("good")?;
    let also_good = certs::client_cert("also-good")?;
    w.send(&unit(REQUIRER, 0), &[&good.cert_pem])?;
    w.send(&unit(REQUIRER, 2), &[&also_good.cert_pem])?;
    let want: BTreeSet<String> = [good.fingerprint.clone(), also_good.fingerprint.clone()].into();
    ensure!(w.owned_fps()? == want);
    let key = certs::client_cert("leaky")?;
    for garbage in [
        "this is not json".to_string(),
        json!(["not a pem"]).to_string(),
        json!([key.key_pem]).to_string(),
        "[]".to_string(),
        json!({"cert": "x"}).to_string(),
    ] {
        w.send_raw(&unit(REQUIRER, 1), &garbage)?;
        ensure!(w.owned_fps()? == want, "after {garbage:.20}: {:?}", w.owned());
        ensure!(w.registered(rel, I0)?.len() == 2);
    }
    // Something bad while the good ones stay: one unit sends a good and a bad entry.
    w.send_raw(&unit(REQUIRER, 2), &json!([also_good.cert_pem, "junk"]).to_string())?;
    ensure!(w.owned_fps()? == want);
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && message.contains("invalid client_certificates from req/1, req/2"),
        "{status}: {message}"
    );
    let warnings: Vec<String> =
        w.sim.logs()?.into_iter().filter(|l| l.unit == I0 && l.level == "WARNING").map(|l| l.message).collect();
    ensure!(
        warnings.iter().any(|m| m.contains("req/2 (relation") && m.contains("1 not a PEM certificate ([1])")),
        "{warnings:?}"
    );
    ensure!(warnings.iter().any(|m| m.contains("a private key, not a certificate")), "{warnings:?}");
    ensure!(warnings.iter().any(|m| m.contains("not valid JSON")), "{warnings:?}");
    // The requirer fixes its data: the status heals by itself.
    w.send(&unit(REQUIRER, 1), &[])?;
    w.send(&unit(REQUIRER, 2), &[&also_good.cert_pem])?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && !message.contains("invalid"), "{status}: {message}");
    w.check()
}

fn s9_leadership(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("leadership")?;
    w.deploy_integrator(2, true)?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into());
    let i1 = unit(INTEGRATOR, 1);
    let (status, message) = w.status(&i1)?;
    ensure!(status == "active" && message.ends_with("leader manages trust"), "{status}: {message}");
    // Both units publish what LXD holds; only the leader changed LXD.
    ensure!(w.registered(rel, &i1)? == std::slice::from_ref(&a.cert_pem));
    let writers: BTreeSet<String> =
        w.sim.logs()?.into_iter().filter(|l| l.message.contains("trust: added")).map(|l| l.unit).collect();
    ensure!(writers == [I0.to_string()].into(), "writers: {writers:?}");
    // Leadership moves; the new leader rotates and cleans up, no duplicates, no losses.
    w.sim.set_leader(&i1)?;
    let b = certs::client_cert("b")?;
    w.send(&unit(REQUIRER, 0), &[&b.cert_pem])?;
    ensure!(w.owned_fps()? == [b.fingerprint.clone()].into(), "{:?}", w.owned());
    ensure!(w.owned()?.len() == 1, "no duplicate entries");
    let writers: BTreeSet<String> = w
        .sim
        .logs()?
        .into_iter()
        .filter(|l| l.message.contains("trust: added") || l.message.contains("trust: removed"))
        .map(|l| l.unit)
        .collect();
    ensure!(writers == [I0.to_string(), i1.clone()].into(), "writers: {writers:?}");
    // The old leader is removed; the survivor keeps everything.
    w.sim.remove_unit(I0)?;
    ensure!(w.owned_fps()? == [b.fingerprint.clone()].into(), "a departing unit removed nothing");
    w.update_status()?;
    ensure!(w.status(&i1)?.0 == "active");
    w.check()
}

/// Juju rewrites a unit's `ingress-address` (its machine moved): the change hook reads that one
/// databag and stops. A real change, or drift in LXD, still gets the full pass.
fn s10_quiet_change_hook(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("quiet-change")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(3)?;
    let rel = w.relate()?;
    let mut sent = Vec::new();
    for n in 0..3 {
        let c = certs::client_cert(&format!("req-{n}"))?;
        w.send(&unit(REQUIRER, n), &[&c.cert_pem])?;
        sent.push(c);
    }
    // Steady: the first update-status after the changes runs in full and remembers it.
    w.update_status()?;
    let relation_gets = |w: &World, from: usize| -> Result<usize> {
        let calls = w.sim.tool_calls()?;
        Ok(calls.iter().skip(from).filter(|c| c.unit == I0 && c.tool == "relation-get").count())
    };

    let from = w.sim.tool_calls()?.len();
    w.sim.write_relation_data(rel, &unit(REQUIRER, 1), "ingress-address", Some("10.99.0.1"))?;
    let reads = relation_gets(&w, from)?;
    ensure!(reads == 1, "a quiet change hook reads one databag, read {reads}");
    let all: BTreeSet<String> = sent.iter().map(|c| c.fingerprint.clone()).collect();
    ensure!(w.owned_fps()? == all, "{:?}", w.owned());

    // Drift in LXD meanwhile (an entry deleted by hand): the next change hook sees it and heals.
    w.cluster().trust_remove(&sent[2].fingerprint)?;
    let from = w.sim.tool_calls()?.len();
    w.sim.write_relation_data(rel, &unit(REQUIRER, 0), "ingress-address", Some("10.99.0.2"))?;
    ensure!(relation_gets(&w, from)? > 1, "full pass after drift");
    ensure!(w.owned_fps()? == all, "re-added: {:?}", w.owned());

    // A real change from the same unit: rotated.
    let rotated = certs::client_cert("req-1-rotated")?;
    w.send(&unit(REQUIRER, 1), &[&rotated.cert_pem])?;
    let want: BTreeSet<String> =
        [&sent[0].fingerprint, &rotated.fingerprint, &sent[2].fingerprint].into_iter().cloned().collect();
    ensure!(w.owned_fps()? == want, "{:?}", w.owned());
    ensure!(w.registered(rel, I0)?.len() == 3);
    w.check()
}
