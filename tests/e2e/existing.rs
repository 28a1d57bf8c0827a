//! The requirers that exist, with the clients they really use (issue 27), against the packed
//! charm on the real cluster:
//!
//! - e1: the original charm's own integration-test requirer (tests/original-requirer-charm):
//!   reads only `event.relation.data[event.unit]`, checks its trust with pylxd from PyPI;
//! - e2: the OpenShell gateway's shape (tests/https-requirer-charm, `list-instances`): sends no
//!   `projects`, uses the published `project` (`default` when absent), pins
//!   `certificate_fingerprint` against the certificate the server presents;
//! - e3: certificates made on a clock a minute ahead, on `api` and `https` at once;
//! - e4: e2's gateway and the library requirer of `api` on a cluster of its own in LXD's PKI
//!   mode (`Bed::pki`): the charm pins the CA, every client is issued by the CA, `https`
//!   publishes what the server presents (the CA-issued cluster certificate) and `api` the CA it
//!   pins; a certificate the CA did not issue is added, and what the server then does with it
//!   differs by server.
//!
//! Every requirer hook must exit 0 (`World::check`).

use crate::bed::{Bed, I0, INTEGRATOR, MEMBERS, REQUIRER, World, unit};
use crate::operator::{act, get};
use anyhow::{Context, Result, anyhow, ensure};
use jujusim::RelationId;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testbed::ServerKind;
use testbed::certs::{self, Ca, CertSpec, Pem};

/// The original requirer's application and endpoint (its metadata names them so).
const TESTER: &str = "lxd-tester";
/// The https requirer's application.
const GW: &str = "gw";
/// The project the gateway is confined to.
const P1: &str = "p1";

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        (
            "e1_the_original_charms_test_requirer_reading_only_the_event_units_databag_is_trusted_by_pylxd_through_relate_rotation_removal_and_unrelate",
            e1_original_requirer,
        ),
        (
            "e2_a_gateway_shaped_requirer_lists_instances_in_the_published_project_pinning_the_presented_certificate",
            e2_gateway_project,
        ),
        (
            "e3_a_certificate_valid_from_a_minute_ahead_is_trusted_by_the_first_update_status_after_it_starts_on_api_and_https",
            e3_clock_ahead,
        ),
        (
            "e4_in_pki_mode_the_gateway_pins_the_presented_certificate_not_the_ca_and_follows_the_published_project",
            e4_pki_mode,
        ),
    ]
}

/// A test charm under tests/, its setup.sh run (idempotent).
fn charm_dir(name: &str) -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(name);
    let setup = std::process::Command::new("sh").arg(dir.join("setup.sh")).current_dir(&dir).status()?;
    ensure!(setup.success(), "tests/{name}/setup.sh failed: {setup}");
    Ok(dir)
}

/// The world deploys the packed artifact (`LXD_INTEGRATOR_CHARM`, else the test binary packed),
/// unzipped as Juju would.
fn use_packed(w: &mut World, name: &str) -> Result<()> {
    let charm = crate::packed::artifact(w.bed)?;
    w.charm_override = Some(crate::packed::unpack(w.bed, &charm, &format!("packed-{name}"))?);
    Ok(())
}

/// Every hook `app`'s units ran exited 0; returns how many ran.
fn hooks_of_app_passed(w: &World, app: &str) -> Result<usize> {
    let prefix = format!("{app}/");
    let hooks: Vec<_> =
        w.sim.hooks()?.into_iter().filter(|h| h.kind == "hook" && h.unit.starts_with(&prefix)).collect();
    let failed: Vec<String> = hooks
        .iter()
        .filter(|h| h.failed())
        .map(|h| {
            format!("{} {} (remote {:?}) exit {}: {}", h.unit, h.hook, h.remote_unit, h.exit_code, h.stderr.trim())
        })
        .collect();
    ensure!(failed.is_empty(), "{app} hooks failed:\n{}", failed.join("\n"));
    Ok(hooks.iter().filter(|h| h.ran).count())
}

/// `refused` in a databag, as (fingerprint, reason) pairs; empty when absent.
fn refused(bag: &BTreeMap<String, String>) -> Result<Vec<(String, String)>> {
    let Some(raw) = bag.get("refused") else { return Ok(Vec::new()) };
    let list: Vec<Value> = serde_json::from_str(raw).context("refused is not JSON")?;
    list.iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().map(String::from).ok_or_else(|| anyhow!("refused entry without {k}: {e}"));
            Ok((s("fingerprint")?, s("reason")?))
        })
        .collect()
}

fn unit_bag(w: &World, rel: RelationId) -> Result<BTreeMap<String, String>> {
    Ok(w.sim.relation_data(rel, I0)?.into_iter().collect())
}

fn app_bag(w: &World, rel: RelationId) -> Result<BTreeMap<String, String>> {
    Ok(w.sim.relation_app_data(rel, INTEGRATOR)?.into_iter().collect())
}

// --- e1: the original charm's integration-test requirer ---------------------------------------

/// `u`'s last pylxd check: every node, by its published endpoint, said `trusted`, with the
/// certificate `u` holds now. Returns that certificate's fingerprint.
fn pylxd_trusted_everywhere(w: &mut World, u: &str) -> Result<String> {
    let r = act(w, u, "get-result", json!({}))?;
    let results: BTreeMap<String, String> = serde_json::from_str(get(&r, "results")?).context("get-result results")?;
    let endpoints: BTreeSet<String> = w.bed.cluster.endpoints().iter().map(|e| format!("https://{e}")).collect();
    ensure!(
        results.keys().cloned().collect::<BTreeSet<_>>() == endpoints,
        "{u}: nodes {results:?}, want {endpoints:?}"
    );
    ensure!(results.values().all(|v| v == "trusted"), "{u}: pylxd says {results:#?}");
    let fp = get(&r, "fingerprint")?.to_string();
    ensure!(get(&r, "checked-fingerprint")? == fp, "{u}: last checked with another certificate: {r:?}");
    ensure!(w.status(u)? == ("active".into(), format!("trusted={MEMBERS}/{MEMBERS}")), "{u}: {:?}", w.status(u)?);
    Ok(fp)
}

fn e1_original_requirer(bed: &mut Bed) -> Result<()> {
    let dir = charm_dir("original-requirer-charm")?;
    let mut w = bed.world("original-requirer")?;
    use_packed(&mut w, "e1")?;
    // Two integrator units: the requirer hears relation-changed from the non-leader's unit
    // databag too, and makes a new certificate on each -joined (as the original does).
    w.deploy_integrator(2, true)?;
    w.sim.deploy(TESTER, &dir, 2)?;
    let rel = w.sim.relate(&format!("{INTEGRATOR}:api"), &format!("{TESTER}:client"))?;
    let t0 = unit(TESTER, 0);
    let t1 = unit(TESTER, 1);
    let fps = [pylxd_trusted_everywhere(&mut w, &t0)?, pylxd_trusted_everywhere(&mut w, &t1)?];
    ensure!(w.owned_fps()? == fps.iter().cloned().collect(), "{:?} vs {fps:?}", w.owned());
    ensure!(app_bag(&w, rel)?.is_empty(), "api: the application databag stays empty: {:?}", app_bag(&w, rel)?);
    let heard_from: BTreeSet<String> = w
        .sim
        .hooks()?
        .into_iter()
        .filter(|h| h.unit.starts_with(TESTER) && h.hook == "client-relation-changed")
        .filter_map(|h| h.remote_unit)
        .collect();
    ensure!(heard_from == [unit(INTEGRATOR, 0), unit(INTEGRATOR, 1)].into(), "{heard_from:?}");

    // Rotation on one unit: the new certificate is trusted everywhere, the old one leaves LXD.
    let rotated = get(&act(&mut w, &t1, "rotate", json!({}))?, "fingerprint")?.to_string();
    ensure!(rotated != fps[1], "rotate made a new certificate");
    ensure!(pylxd_trusted_everywhere(&mut w, &t1)? == rotated);
    let store = w.store_fps()?;
    ensure!(!store.contains(&fps[1]), "the rotated-away certificate is still in LXD");
    ensure!(w.owned_fps()? == [fps[0].clone(), rotated.clone()].into(), "{:?}", w.owned());
    ensure!(pylxd_trusted_everywhere(&mut w, &t0)? == fps[0]);

    // One unit removed: its certificate goes, the other unit is still trusted.
    w.sim.remove_unit(&t1)?;
    ensure!(!w.store_fps()?.contains(&rotated), "the removed unit's certificate is still in LXD");
    ensure!(w.owned_fps()? == [fps[0].clone()].into(), "{:?}", w.owned());
    ensure!(pylxd_trusted_everywhere(&mut w, &t0)? == fps[0]);

    // Unrelated: nothing of it stays.
    w.sim.unrelate(rel)?;
    ensure!(w.owned_fps()?.is_empty(), "{:?}", w.owned());
    ensure!(!w.store_fps()?.contains(&fps[0]));

    // The point: no change without a remote unit ever reached it, and no hook of it failed.
    let without_unit: Vec<String> = w
        .sim
        .hooks()?
        .into_iter()
        .filter(|h| h.unit.starts_with(TESTER) && h.hook == "client-relation-changed" && h.remote_unit.is_none())
        .map(|h| h.unit)
        .collect();
    ensure!(without_unit.is_empty(), "client-relation-changed without a remote unit on {without_unit:?}");
    let ran = hooks_of_app_passed(&w, TESTER)?;
    eprintln!("e1: {ran} {TESTER} hooks ran, every one exited 0");
    w.check()
}

// --- e2: the OpenShell gateway's shape -------------------------------------------------------

/// Deploys `units` units of the https requirer (with `config`), gives each `identity` if any,
/// and relates it to `https`.
fn relate_gw(w: &mut World, units: u32, config: &[(&str, &str)], identity: Option<&Pem>) -> Result<RelationId> {
    let dir = charm_dir("https-requirer-charm")?;
    w.sim.deploy(GW, &dir, units)?;
    let changes: Vec<(&str, Option<Value>)> = config.iter().map(|(k, v)| (*k, Some(json!(v)))).collect();
    if !changes.is_empty() {
        w.sim.set_config(GW, &changes)?;
    }
    if let Some(id) = identity {
        for n in 0..units {
            act(w, &unit(GW, n), "use-identity", json!({"cert": id.cert_pem, "key": id.key_pem}))?;
        }
    }
    w.sim.relate(&format!("{INTEGRATOR}:https"), &format!("{GW}:https"))
}

/// `list-instances` on `u`: the project it used and, per address, the parsed outcome.
fn list_instances(w: &mut World, u: &str, project: Option<&str>) -> Result<(String, BTreeMap<String, Value>)> {
    let r = act(w, u, "list-instances", json!({"project": project.unwrap_or("")}))?;
    let results: BTreeMap<String, Value> = serde_json::from_str(get(&r, "results")?).context("list-instances")?;
    let addresses: BTreeSet<String> = w.bed.cluster.endpoints().into_iter().collect();
    ensure!(results.keys().cloned().collect::<BTreeSet<_>>() == addresses, "{u}: addresses {results:?}");
    Ok((get(&r, "project")?.to_string(), results))
}

/// Every address presented the pinned certificate and answered `status` (and a list when 200).
fn every_address(results: &BTreeMap<String, Value>, pin: &str, status: u64) -> Result<()> {
    for (address, outcome) in results {
        ensure!(outcome["presented"] == json!(pin), "{address}: presented {outcome}, pinned {pin}");
        ensure!(outcome["status"] == json!(status), "{address}: want {status}: {outcome}");
        if status == 200 {
            ensure!(outcome["instances"].is_array(), "{address}: no list: {outcome}");
        }
    }
    Ok(())
}

/// Every address presented the pinned certificate and refused the listing: LXD answers 403;
/// Incus 6.0 answers 500 "User does not have permissions for project".
fn refused_everywhere(results: &BTreeMap<String, Value>, pin: &str) -> Result<()> {
    for (address, outcome) in results {
        ensure!(outcome["presented"] == json!(pin), "{address}: presented {outcome}, pinned {pin}");
        let error = outcome["error"].as_str().unwrap_or("");
        let refused = outcome["status"] == json!(403)
            || (outcome["status"] == json!(500) && error.contains("does not have permissions for project"));
        ensure!(refused && outcome.get("instances").is_none(), "{address}: not refused: {outcome}");
    }
    Ok(())
}

/// What the gateway reads (the application databag first) and the unit databag: the same
/// `project` (or none), and the certificate LXD presents.
fn published_project(w: &World, rel: RelationId) -> Result<(Option<String>, String)> {
    let (unit, app) = (unit_bag(w, rel)?, app_bag(w, rel)?);
    crate::https::validate_provider(&unit)?;
    crate::https::validate_provider(&app)?;
    ensure!(unit.get("project") == app.get("project"), "project: unit {unit:?} app {app:?}");
    let pin = app.get("certificate_fingerprint").cloned().ok_or_else(|| anyhow!("nothing published: {app:?}"))?;
    ensure!(pin == certs::fingerprint_pem(w.bed.cluster.cluster_cert_pem())?, "the cluster certificate");
    Ok((app.get("project").cloned(), pin))
}

fn e2_gateway_project(bed: &mut Bed) -> Result<()> {
    bed.cluster.lxc(&["project", "create", P1])?;
    let result = e2_inner(bed);
    let deleted = bed.cluster.lxc(&["project", "delete", P1]);
    if result.is_ok() {
        deleted.with_context(|| format!("deleting project {P1}"))?;
    }
    result
}

fn e2_inner(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("gateway-project")?;
    use_packed(&mut w, "e2")?;
    w.deploy_integrator(1, true)?;
    // Both bags, no `projects`, one identity for the application (the gateway's peer secret).
    let shared = certs::client_cert("openshell-gateway")?;
    let rel = relate_gw(&mut w, 2, &[("mode", "both")], Some(&shared))?;
    gateway_follows_the_published_project(&mut w, rel, &shared)?;
    let ran = hooks_of_app_passed(&w, GW)?;
    eprintln!("e2: {ran} {GW} hooks ran, every one exited 0");
    w.check()
}

/// The gateway's two units, sharing `shared`, on `rel`: unrestricted they list `default`;
/// under `trust-projects=p1` the published `project` takes them to p1 (and `default` is
/// refused); unrestricted again, `default` once more. Every listing is on every published
/// address, pinning the published `certificate_fingerprint`, which is what the server presents.
fn gateway_follows_the_published_project(w: &mut World, rel: RelationId, shared: &Pem) -> Result<()> {
    ensure!(!w.sim.relation_app_data(rel, GW)?.contains_key("projects"), "the gateway sends no projects");
    let gws = [unit(GW, 0), unit(GW, 1)];

    // Unrestricted: no `project`; it uses `default`.
    let (project, pin) = published_project(w, rel)?;
    ensure!(project.is_none(), "unrestricted, yet project {project:?}");
    for u in &gws {
        let (used, results) = list_instances(w, u, None)?;
        ensure!(used == "default", "{u}: {used}");
        every_address(&results, &pin, 200)?;
    }

    // trust-projects=p1: the entry is restricted to p1, `project` says so, and p1 is listed.
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(P1)))])?;
    let entry: Vec<Value> =
        w.bed.cluster.trust_list()?.into_iter().filter(|e| e["fingerprint"] == json!(shared.fingerprint)).collect();
    ensure!(
        entry.len() == 1 && entry[0]["restricted"] == json!(true) && entry[0]["projects"] == json!([P1]),
        "{entry:#?}"
    );
    let (project, pin) = published_project(w, rel)?;
    ensure!(project.as_deref() == Some(P1), "project {project:?}");
    for u in &gws {
        let (used, results) = list_instances(w, u, None)?;
        ensure!(used == P1, "{u}: {used}");
        every_address(&results, &pin, 200)?;
    }
    // Control: `default` is not granted, so a gateway that ignored `project` would be refused.
    let (_, results) = list_instances(w, &gws[0], Some("default"))?;
    refused_everywhere(&results, &pin)?;

    // Unrestricted again: `project` withdrawn, `default` works again.
    w.sim.set_config(INTEGRATOR, &[("trust-projects", None)])?;
    let (project, pin) = published_project(w, rel)?;
    ensure!(project.is_none(), "unrestricted again, yet project {project:?}");
    let (used, results) = list_instances(w, &gws[1], None)?;
    ensure!(used == "default");
    every_address(&results, &pin, 200)
}

// --- e3: a clock a minute ahead --------------------------------------------------------------

fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Both relations name their certificate `not-yet-valid` (https in both bags), LXD holds
/// neither, and the status counts them without calling them invalid.
fn both_waiting(w: &World, api: RelationId, https: RelationId, api_fp: &str, https_fp: &str) -> Result<()> {
    let want = |fp: &str| vec![(fp.to_string(), "not-yet-valid".to_string())];
    ensure!(refused(&unit_bag(w, api)?)? == want(api_fp), "api: {:?}", unit_bag(w, api)?);
    ensure!(refused(&unit_bag(w, https)?)? == want(https_fp), "https unit bag: {:?}", unit_bag(w, https)?);
    ensure!(refused(&app_bag(w, https)?)? == want(https_fp), "https app bag: {:?}", app_bag(w, https)?);
    let owned = w.owned_fps()?;
    ensure!(!owned.contains(api_fp) && !owned.contains(https_fp), "trusted before it starts: {owned:?}");
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && !message.contains("invalid") && message.contains("2 not valid yet, trusted once valid"),
        "{status}: {message}"
    );
    Ok(())
}

fn e3_clock_ahead(bed: &mut Bed) -> Result<()> {
    let https_dir = charm_dir("https-requirer-charm")?;
    let mut w = bed.world("clock-ahead")?;
    use_packed(&mut w, "e3")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    w.sim.deploy(GW, &https_dir, 1)?;
    // Made on a clock 60 s ahead; sent before relating, so they are each side's first.
    let specs = [CertSpec::client("ahead-api").starting_in(60), CertSpec::client("ahead-https").starting_in(60)];
    let not_before = specs.iter().map(|s| s.not_before.unix_timestamp()).max().unwrap_or_default();
    let made = Instant::now();
    let (api_cert, https_cert) = (specs[0].self_signed()?, specs[1].self_signed()?);
    w.send(&unit(REQUIRER, 0), &[&api_cert.cert_pem])?;
    act(&mut w, "gw/0", "use-identity", json!({"cert": https_cert.cert_pem, "key": https_cert.key_pem}))?;
    let api = w.relate()?;
    let https = w.sim.relate(&format!("{INTEGRATOR}:https"), &format!("{GW}:https"))?;
    ensure!(now_unix() < not_before, "the setup took {:?}: the certificates are valid already", made.elapsed());
    both_waiting(&w, api, https, &api_cert.fingerprint, &https_cert.fingerprint)?;
    ensure!(w.status("gw/0")?.0 == "waiting", "nothing to connect to yet");

    // update-status before notBefore changes nothing (LXD would refuse the add anyway).
    w.update_status()?;
    ensure!(now_unix() < not_before, "too slow: {:?} since the certificates were made", made.elapsed());
    both_waiting(&w, api, https, &api_cert.fingerprint, &https_cert.fingerprint)?;

    let wait = not_before + 2 - now_unix();
    eprintln!("e3: waiting {wait} s for notBefore (+2 s)");
    std::thread::sleep(Duration::from_secs(wait.max(0) as u64));
    // The first update-status after notBefore trusts both.
    w.update_status()?;
    let owned = w.owned_fps()?;
    ensure!(
        owned == [api_cert.fingerprint.clone(), https_cert.fingerprint.clone()].into(),
        "after one update-status: {owned:?}"
    );
    for (what, bag) in
        [("api", unit_bag(&w, api)?), ("https unit", unit_bag(&w, https)?), ("https app", app_bag(&w, https)?)]
    {
        ensure!(!bag.contains_key("refused"), "{what}: refused still there: {bag:?}");
    }
    let registered = w.registered(api, I0)?;
    ensure!(registered.len() == 1 && certs::fingerprint_pem(&registered[0])? == api_cert.fingerprint, "{registered:?}");
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && !message.contains("not valid yet"), "{status}: {message}");
    // The https requirer now reaches every address with the key it made ahead.
    let r = act(&mut w, "gw/0", "probe", json!({}))?;
    let results: BTreeMap<String, String> = serde_json::from_str(get(&r, "results")?)?;
    ensure!(results.len() == MEMBERS && results.values().all(|v| v == "trusted"), "{results:?}");
    w.check()
}

// --- e4: LXD's PKI mode ----------------------------------------------------------------------

fn e4_pki_mode(bed: &mut Bed) -> Result<()> {
    let mut pki = bed.pki()?;
    // The project goes with the cluster.
    pki.cluster.lxc(&["project", "create", P1])?;
    let mut w = pki.world("pki")?;
    use_packed(&mut w, "e4")?;
    w.deploy_integrator(1, true)?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message.starts_with("3/3 members online"), "pinning the CA: {status}: {message}");
    let ca = w.bed.cluster.ca().cloned().ok_or_else(|| anyhow!("a PKI cluster has a CA"))?;

    library_requirer_pins_the_ca(&mut w, &ca)?;
    let shared = ca.issue_client("openshell-gateway")?;
    let rel = relate_gw(&mut w, 2, &[("mode", "both")], Some(&shared))?;
    let (_, pin) = published_project(&w, rel)?;
    ensure!(pin != ca.pem.fingerprint, "https publishes what the server presents, not the CA the charm pins");
    gateway_follows_the_published_project(&mut w, rel, &shared)?;
    a_certificate_the_ca_did_not_issue(&mut w, rel, &pin)?;
    let complaints = integrator_complaints(&w)?;
    ensure!(complaints.is_empty(), "in PKI mode the integrator logged {complaints:#?}");
    let ran = hooks_of_app_passed(&w, GW)? + hooks_of_app_passed(&w, REQUIRER)?;
    eprintln!("e4: {ran} {GW} and {REQUIRER} hooks ran, every one exited 0");
    w.check()
}

/// `api` publishes the pin the charm uses, the CA, and a requirer built on the library, with
/// its own key issued by the CA, reaches every node pinning it (the chain is checked up to it).
fn library_requirer_pins_the_ca(w: &mut World, ca: &Ca) -> Result<()> {
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let identity = ca.issue_client("library-requirer")?;
    let r = act(w, &unit(REQUIRER, 0), "use-identity", json!({"cert": identity.cert_pem, "key": identity.key_pem}))?;
    ensure!(get(&r, "fingerprint")? == identity.fingerprint, "{r:?}");
    let bag = w.payload(rel, I0)?;
    let published = bag.get("server_certificate").ok_or_else(|| anyhow!("no server_certificate: {bag:?}"))?;
    ensure!(certs::fingerprint_pem(published)? == ca.pem.fingerprint, "api publishes the CA it pins");
    ensure!(bag.get("server_certificate_fingerprint") == Some(&ca.pem.fingerprint), "{bag:?}");
    let registered = w.registered(rel, I0)?.iter().map(|p| certs::fingerprint_pem(p)).collect::<Result<Vec<_>>>()?;
    ensure!(registered == [identity.fingerprint.clone()], "registered {registered:?}");
    let r = act(w, &unit(REQUIRER, 0), "probe", json!({}))?;
    let results: BTreeMap<String, String> = serde_json::from_str(get(&r, "results")?)?;
    ensure!(get(&r, "pinned")? == "true", "{r:?}");
    ensure!(results.len() == MEMBERS && results.values().all(|v| v == "trusted"), "{results:?}");
    Ok(())
}

/// WARNING and ERROR lines the integrator's units logged.
fn integrator_complaints(w: &World) -> Result<Vec<String>> {
    Ok(w.sim
        .logs()?
        .into_iter()
        .filter(|l| l.unit.starts_with(INTEGRATOR) && (l.level == "ERROR" || l.level == "WARNING"))
        .map(|l| format!("{} {}", l.level, l.message))
        .collect())
}

/// gw/1 makes its own self-signed certificate, as https-client does. Both servers accept it
/// into the trust store (LXD 5.0 and Incus 6.0 check no issuer on `POST /1.0/certificates`
/// with a body), so the charm trusts it as it would any other and reports nothing. What the
/// server then does with it differs: LXD 5.0.2 trusts it from a client that presents it
/// (`lxd/util/http.go` `CheckTrustState` looks in the store; only LXD's Go client would
/// withhold it); Incus 6.0 leaves entries its CA did not issue out of what it trusts
/// (`cmd/incusd/daemon.go` `getTrustedCertificates`), so that requirer is refused.
fn a_certificate_the_ca_did_not_issue(w: &mut World, rel: RelationId, pin: &str) -> Result<()> {
    let own = get(&act(w, &unit(GW, 1), "rotate", json!({}))?, "fingerprint")?.to_string();
    ensure!(w.owned_fps()?.contains(&own), "the charm added it: {:?}", w.owned());
    for (what, bag) in [("unit", unit_bag(w, rel)?), ("app", app_bag(w, rel)?)] {
        ensure!(refused(&bag)?.is_empty(), "{what} databag: nothing refused: {bag:?}");
    }
    let (used, results) = list_instances(w, &unit(GW, 1), None)?;
    ensure!(used == "default");
    let first = results.values().next().map(|o| format!("{} {}", o["status"], o["error"])).unwrap_or_default();
    eprintln!("e4: {} answers a certificate the CA did not issue with {first}", w.bed.cluster.kind());
    match w.bed.cluster.kind() {
        ServerKind::Lxd => every_address(&results, pin, 200),
        ServerKind::Incus => refused_everywhere(&results, pin),
    }
}
