//! The requirers' charm library (lib/charms/lxd_integrator/v0/lxd.py) used by a real ops charm:
//! the test requirer, given its own key (`use-identity`), connects to every published node
//! on `lxd_ready`, pinning the server certificate the integrator published.

use crate::bed::{Bed, I0, INTEGRATOR, MEMBERS, REQUIRER, World, unit};
use crate::faults::{common_name, mitm};
use anyhow::{Context, Result, anyhow, ensure};
use jujusim::RelationId;
use serde_json::json;
use std::collections::BTreeMap;
use testbed::certs::{self, Pem};

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        (
            "r1_every_requirer_unit_reaches_every_node_pinning_the_published_certificate",
            r1_every_unit_reaches_every_node,
        ),
        ("r2_the_librarys_pinned_context_refuses_a_man_in_the_middle_on_a_rewritten_endpoint", r2_man_in_the_middle),
        (
            "r3_lxd_ready_fires_once_when_trusted_in_unit_and_application_mode_and_a_refused_certificate_says_why",
            r3_ready_once_and_refusals,
        ),
    ]
}

/// `unit` becomes a library-based requirer with `identity` as its own LXD client key.
fn use_identity(w: &mut World, unit: &str, identity: &Pem) -> Result<()> {
    use_identity_in(w, unit, identity, false)
}

/// `use_identity`, sending the certificate in the application databag when `app`.
fn use_identity_in(w: &mut World, unit: &str, identity: &Pem, app: bool) -> Result<()> {
    let params = json!({"cert": identity.cert_pem, "key": identity.key_pem, "app": app});
    let r = w.sim.run_action(unit, "use-identity", params)?;
    ensure!(r.status == "completed", "use-identity on {unit}: {r:?}");
    ensure!(r.results["fingerprint"] == json!(identity.fingerprint), "{r:?}");
    Ok(())
}

/// The `probe` action's answer: node name → `trusted` or why it failed.
fn probe(w: &mut World, unit: &str, via: Option<&str>) -> Result<(bool, BTreeMap<String, String>)> {
    let r = w.sim.run_action(unit, "probe", json!({"via": via.unwrap_or("")}))?;
    ensure!(r.status == "completed", "probe on {unit}: {r:?}");
    let results = r.results["results"].as_str().ok_or_else(|| anyhow!("no results: {r:?}"))?;
    Ok((r.results["pinned"] == json!("true"), serde_json::from_str(results).context("probe results")?))
}

/// The integrator publishes LXD's cluster certificate, canonical, with its fingerprint.
fn published_pin(w: &World, rel: RelationId) -> Result<()> {
    let cluster = w.bed.cluster.cluster_cert_pem();
    let want_fp = certs::fingerprint_pem(cluster)?;
    let unit_bag = w.payload(rel, I0)?;
    let pem = unit_bag.get("server_certificate").ok_or_else(|| anyhow!("no server_certificate published"))?;
    ensure!(certs::fingerprint_pem(pem)? == want_fp, "the published certificate is not the cluster's");
    ensure!(!pem.contains('\r') && pem.ends_with("-----END CERTIFICATE-----\n"), "canonical PEM");
    ensure!(unit_bag.get("server_certificate_fingerprint") == Some(&want_fp));
    ensure!(w.sim.relation_app_data(rel, INTEGRATOR)?.is_empty(), "api: unit databags only");
    Ok(())
}

/// Deploys, relates `units` requirer units and gives each its own identity.
fn setup(w: &mut World, units: u32) -> Result<(RelationId, Vec<Pem>)> {
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(units)?;
    let rel = w.relate()?;
    let mut identities = Vec::new();
    for n in 0..units {
        let identity = certs::client_cert(&format!("library-requirer-{n}"))?;
        use_identity(w, &unit(REQUIRER, n), &identity)?;
        identities.push(identity);
    }
    Ok((rel, identities))
}

fn r1_every_unit_reaches_every_node(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("library")?;
    let (rel, identities) = setup(&mut w, 2)?;
    ensure!(w.owned_fps()? == identities.iter().map(|p| p.fingerprint.clone()).collect(), "{:?}", w.owned());
    published_pin(&w, rel)?;
    for n in 0..2 {
        let u = unit(REQUIRER, n);
        // lxd_ready fired and the charm's own connections, made then, all said `trusted`.
        let (status, message) = w.status(&u)?;
        ensure!(
            status == "active" && message.ends_with(&format!("reached={MEMBERS}/{MEMBERS}")),
            "{u}: {status}: {message}"
        );
        let (pinned, results) = probe(&mut w, &u, None)?;
        ensure!(pinned && results.len() == MEMBERS, "{u}: {results:?}");
        ensure!(results.values().all(|v| v == "trusted"), "{u}: {results:?}");
    }
    w.check()
}

fn r2_man_in_the_middle(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("library-mitm")?;
    setup(&mut w, 1)?;
    let u = unit(REQUIRER, 0);
    // Control: every node dialled at one real member's address: same cluster certificate,
    // so the pin holds and the rewrite itself is not what fails.
    let member = w.bed.cluster.endpoint(1).to_string();
    let (_, results) = probe(&mut w, &u, Some(&member))?;
    ensure!(results.len() == MEMBERS && results.values().all(|v| v == "trusted"), "control via {member}: {results:?}");

    let cn = common_name(w.bed.cluster.cluster_cert_pem())?;
    let impostors = [
        ("a fresh self-signed certificate", certs::server_cert("impostor", &[])?),
        ("the cluster certificate's CN with another key", certs::same_cn_other_keys(&cn, 1)?.remove(0)),
    ];
    for (what, identity) in impostors {
        let mitm = mitm(&identity)?;
        let (pinned, results) = probe(&mut w, &u, Some(&mitm.addr.to_string()))?;
        ensure!(pinned, "the provider's pin is used");
        ensure!(results.len() == MEMBERS, "{what}: {results:?}");
        for (node, outcome) in &results {
            ensure!(
                outcome.contains("SSLCertVerificationError") && outcome.contains("CERTIFICATE_VERIFY_FAILED"),
                "{what}: {node}: {outcome}"
            );
        }
        let log = mitm.settled();
        ensure!(log.connections >= MEMBERS, "{what}: the requirer never dialled it: {log:?}");
        ensure!(log.handshakes_ok == 0 && log.app_bytes == 0, "{what}: it got a handshake or a request: {log:?}");
        eprintln!("r2: {what}: refused on {} connections, 0 handshakes, 0 bytes", log.connections);
    }
    // What lxd_ready found is untouched: the real nodes still answer.
    let (status, message) = w.status(&u)?;
    ensure!(status == "active" && message.ends_with(&format!("reached={MEMBERS}/{MEMBERS}")), "{status}: {message}");
    w.check()
}

/// What the library tells the requirer charm now (`lib-state`: a pure read).
fn lib_state(w: &mut World, unit: &str) -> Result<BTreeMap<String, String>> {
    let r = w.sim.run_action(unit, "lib-state", json!({}))?;
    ensure!(r.status == "completed", "lib-state on {unit}: {r:?}");
    let map = r.results.as_object().ok_or_else(|| anyhow!("lib-state: no results"))?;
    Ok(map.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
}

/// `lxd_ready` fired `times` times on `unit` so far, and it is ready (or not) now.
fn ready_after(w: &mut World, unit: &str, times: u32, ready: bool) -> Result<BTreeMap<String, String>> {
    let state = lib_state(w, unit)?;
    ensure!(state.get("ready-events") == Some(&times.to_string()), "{unit}: {state:?}");
    ensure!(state.get("ready") == Some(&ready.to_string()), "{unit}: {state:?}");
    Ok(state)
}

fn r3_ready_once_and_refusals(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("library-ready")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(2)?;
    let (leader, other) = (unit(REQUIRER, 0), unit(REQUIRER, 1));
    // Unit mode: the certificate is set before any relation; nothing is ready, nothing fired.
    let first = certs::client_cert("library-unit-mode")?;
    use_identity(&mut w, &leader, &first)?;
    ready_after(&mut w, &leader, 0, false)?;
    w.relate()?;
    ensure!(w.owned_fps()?.contains(&first.fingerprint), "{:?}", w.owned());
    ready_after(&mut w, &leader, 1, true)?;
    // Nothing new on either side: no second lxd_ready.
    w.update_status()?;
    w.sim.update_status(REQUIRER)?;
    ready_after(&mut w, &leader, 1, true)?;
    // Application mode: the leader sends a new certificate in the application databag; ready
    // again (once) when LXD trusts it, and the unit-mode certificate is withdrawn.
    let second = certs::client_cert("library-app-mode")?;
    use_identity_in(&mut w, &leader, &second, true)?;
    let owned = w.owned_fps()?;
    ensure!(owned.contains(&second.fingerprint) && !owned.contains(&first.fingerprint), "{:?}", w.owned());
    ready_after(&mut w, &leader, 2, true)?;
    // A certificate the provider refuses: never ready, and the charm is told why.
    let expired = certs::CertSpec::client("library-expired").between_years(2000, 2001).self_signed()?;
    use_identity(&mut w, &other, &expired)?;
    let state = ready_after(&mut w, &other, 0, false)?;
    let refused: BTreeMap<String, String> = serde_json::from_str(&state["refused"]).context("refused")?;
    ensure!(refused.get(&expired.fingerprint).map(String::as_str) == Some("expired"), "{state:?}");
    ensure!(state.get("reason").is_some_and(|r| r.contains("expired")), "{state:?}");
    w.check()
}
