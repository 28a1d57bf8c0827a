//! The `https` endpoint (interface `lxd-https`) against the real cluster, with a real ops
//! requirer shaped like charm-lxd's `examples/https-client` (unit databag only) and, in mode
//! `both` with `projects`, like canonical/charmed-openshell's gateway
//! (tests/https-requirer-charm).

use crate::bed::{Bed, I0, INTEGRATOR, MEMBERS, REQUIRER, World, unit};
use crate::operator::{act, get};
use anyhow::{Context, Result, anyhow, bail, ensure};
use jujusim::RelationId;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::LazyLock;
use testbed::certs::{self, Pem};

/// The https requirer's application name.
const GW: &str = "gw";

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        (
            "h1_an_https_client_shaped_requirer_gets_an_entry_per_unit_reaches_every_address_pinned_and_is_cleaned_up",
            h1_https_client,
        ),
        ("h2_a_gateway_shaped_requirer_writing_both_bags_gets_one_entry_restricted_to_its_projects", h2_gateway),
        ("h3_an_api_and_an_https_relation_side_by_side_never_disturb_each_other", h3_side_by_side),
        ("h4_a_project_outside_trust_projects_is_refused_and_named_never_widened", h4_outside_trust_projects),
    ]
}

static PROVIDER_SCHEMA: LazyLock<Result<jsonschema::Validator, String>> = LazyLock::new(|| {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/schemas/https-provider.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    jsonschema::validator_for(&doc).map_err(|e| e.to_string())
});

/// An integrator databag on an `https` relation against docs/schemas/https-provider.json, and
/// what the schema cannot say: the fingerprint is the certificate's.
pub fn validate_provider(bag: &BTreeMap<String, String>) -> Result<()> {
    let schema = PROVIDER_SCHEMA.as_ref().map_err(|e| anyhow!("docs/schemas/https-provider.json: {e}"))?;
    let instance = serde_json::to_value(bag)?;
    if let Err(e) = schema.validate(&instance) {
        bail!("https payload violates docs/schemas/https-provider.json: {e}\n{instance:#}");
    }
    if let (Some(pem), Some(fp)) = (bag.get("certificate"), bag.get("certificate_fingerprint")) {
        ensure!(&certs::fingerprint_pem(pem)? == fp, "certificate_fingerprint is not certificate's");
    }
    Ok(())
}

/// tests/https-requirer-charm, its ops linked in.
pub(crate) fn requirer_dir() -> Result<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/https-requirer-charm");
    let setup = std::process::Command::new("sh").arg(dir.join("setup.sh")).current_dir(&dir).status()?;
    ensure!(setup.success(), "tests/https-requirer-charm/setup.sh failed: {setup}");
    Ok(dir)
}

/// Deploys `units` units of the https requirer (with `config`) and relates it to `https`.
fn relate_https(w: &mut World, units: u32, config: &[(&str, &str)]) -> Result<RelationId> {
    let dir = requirer_dir()?;
    w.sim.deploy(GW, &dir, units)?;
    let changes: Vec<(&str, Option<Value>)> = config.iter().map(|(k, v)| (*k, Some(json!(v)))).collect();
    if !changes.is_empty() {
        w.sim.set_config(GW, &changes)?;
    }
    w.sim.relate(&format!("{INTEGRATOR}:https"), &format!("{GW}:https"))
}

/// An action on a requirer unit: its results, as strings.
pub(crate) fn req_action(w: &mut World, unit: &str, name: &str, params: Value) -> Result<BTreeMap<String, String>> {
    let r = w.sim.run_action(unit, name, params)?;
    ensure!(r.status == "completed", "{name} on {unit}: {} {:?} {}", r.status, r.message, r.stderr);
    let map = r.results.as_object().ok_or_else(|| anyhow!("{name}: no results"))?;
    Ok(map.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
}

fn fingerprint_of(w: &mut World, unit: &str) -> Result<String> {
    Ok(get(&req_action(w, unit, "get-identity", json!({}))?, "fingerprint")?.to_string())
}

/// The https entries this world's integrator owns: name → (fingerprint, restricted, projects).
/// An entry as LXD holds it: its name, whether it is restricted, and to which projects.
type Held = (String, bool, BTreeSet<String>);

fn https_entries(w: &World) -> Result<BTreeMap<String, Held>> {
    let marker = format!("juju.{}.{INTEGRATOR}.https.", w.sim.model_uuid());
    let mut out = BTreeMap::new();
    for e in w.bed.cluster.trust_list()? {
        let Some(name) = e["name"].as_str().filter(|n| n.starts_with(&marker)) else { continue };
        let projects =
            e["projects"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(String::from)).collect();
        out.insert(
            name.to_string(),
            (e["fingerprint"].as_str().unwrap_or("").to_string(), e["restricted"] == json!(true), projects),
        );
    }
    Ok(out)
}

fn entry_name(w: &World, rel: RelationId, member: &str) -> String {
    format!("juju.{}.{INTEGRATOR}.https.{rel}.{GW}.{member}", w.sim.model_uuid())
}

/// The integrator's payload on `rel`, in its unit and application databags: the same, valid,
/// naming every member and the cluster certificate.
fn published(w: &World, rel: RelationId) -> Result<BTreeMap<String, String>> {
    let unit_bag: BTreeMap<String, String> = w.sim.relation_data(rel, I0)?.into_iter().collect();
    let app_bag: BTreeMap<String, String> = w.sim.relation_app_data(rel, INTEGRATOR)?.into_iter().collect();
    validate_provider(&unit_bag)?;
    validate_provider(&app_bag)?;
    for key in ["version", "certificate", "certificate_fingerprint", "addresses"] {
        ensure!(
            unit_bag.contains_key(key) && unit_bag.get(key) == app_bag.get(key),
            "{key}: unit {unit_bag:?} app {app_bag:?}"
        );
    }
    let addresses: BTreeSet<String> = unit_bag["addresses"].split(',').map(String::from).collect();
    ensure!(addresses == w.bed.cluster.endpoints().into_iter().collect(), "addresses {addresses:?}");
    ensure!(
        unit_bag["certificate_fingerprint"] == certs::fingerprint_pem(w.bed.cluster.cluster_cert_pem())?,
        "the cluster certificate"
    );
    Ok(unit_bag)
}

/// Every published address, dialled by `unit` with its own key and the published certificate
/// as the only trust anchor, answers `auth: trusted`.
fn reaches_every_address(w: &mut World, unit: &str) -> Result<()> {
    let r = req_action(w, unit, "probe", json!({}))?;
    ensure!(get(&r, "fingerprint-matches")? == "true", "{r:?}");
    let results: BTreeMap<String, String> = serde_json::from_str(get(&r, "results")?).context("probe results")?;
    ensure!(results.len() == MEMBERS && results.values().all(|v| v == "trusted"), "{unit}: {results:?}");
    Ok(())
}

fn h1_https_client(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("https-client")?;
    w.deploy_integrator(1, true)?;
    let rel = relate_https(&mut w, 2, &[])?;
    let fps = [fingerprint_of(&mut w, "gw/0")?, fingerprint_of(&mut w, "gw/1")?];
    let entries = https_entries(&w)?;
    let want: BTreeMap<String, (String, bool, BTreeSet<String>)> =
        (0..2).map(|n| (entry_name(&w, rel, &n.to_string()), (fps[n].clone(), false, BTreeSet::new()))).collect();
    ensure!(entries == want, "one unrestricted entry per unit: {entries:#?}");
    ensure!(entries.keys().all(|n| !n.contains('/')), "valid on LXD 5.21.3+/6.2+");
    published(&w, rel)?;
    for u in ["gw/0", "gw/1"] {
        let (status, message) = w.status(u)?;
        ensure!(
            status == "active" && message == format!("addresses={MEMBERS} from={INTEGRATOR}"),
            "{u}: {status}: {message}"
        );
        reaches_every_address(&mut w, u)?;
    }
    let (_, message) = w.status(I0)?;
    ensure!(message == format!("{MEMBERS}/{MEMBERS} members online, 2 clients trusted"), "{message}");

    // Rotation: the new certificate in, the old one out, and the new key reaches every node.
    let rotated = get(&req_action(&mut w, "gw/1", "rotate", json!({}))?, "fingerprint")?.to_string();
    let held: BTreeSet<String> = https_entries(&w)?.into_values().map(|(fp, ..)| fp).collect();
    ensure!(held == [fps[0].clone(), rotated].into(), "{held:?}");
    reaches_every_address(&mut w, "gw/1")?;

    // A unit removed: its entry goes, the other stays.
    w.sim.remove_unit("gw/1")?;
    let entries = https_entries(&w)?;
    ensure!(entries.keys().cloned().collect::<Vec<_>>() == [entry_name(&w, rel, "0")], "{entries:#?}");
    reaches_every_address(&mut w, "gw/0")?;

    // The relation removed: everything it asked for goes.
    w.sim.unrelate(rel)?;
    ensure!(https_entries(&w)?.is_empty(), "{:#?}", https_entries(&w)?);
    w.check()
}

const SANDBOXES: &str = "h-sandboxes";
const OUTSIDE: &str = "h-outside";

/// Runs `scenario` with LXD projects `SANDBOXES` and `OUTSIDE`, deleted afterwards.
fn with_projects(bed: &mut Bed, scenario: fn(&mut Bed) -> Result<()>) -> Result<()> {
    for p in [SANDBOXES, OUTSIDE] {
        bed.cluster.lxc(&["project", "create", p])?;
    }
    let result = scenario(bed);
    for p in [SANDBOXES, OUTSIDE] {
        let deleted = bed.cluster.lxc(&["project", "delete", p]);
        if result.is_ok() {
            deleted.with_context(|| format!("deleting project {p}"))?;
        }
    }
    result
}

fn h2_gateway(bed: &mut Bed) -> Result<()> {
    with_projects(bed, h2_inner)
}

fn h2_inner(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("https-gateway")?;
    w.deploy_integrator(1, true)?;
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(format!("default, {SANDBOXES}"))))])?;
    let rel = relate_https(&mut w, 2, &[("mode", "both"), ("projects", SANDBOXES)])?;
    // One identity for the whole application, as the gateway keeps it in a peer secret.
    let shared: Pem = certs::client_cert("openshell-gateway")?;
    for u in ["gw/0", "gw/1"] {
        req_action(&mut w, u, "use-identity", json!({"cert": shared.cert_pem, "key": shared.key_pem}))?;
    }
    let sent = w.sim.relation_app_data(rel, GW)?;
    ensure!(
        sent.get("projects").map(String::as_str) == Some(SANDBOXES)
            && sent.get("version").map(String::as_str) == Some("1.0"),
        "{sent:?}"
    );
    let entries = https_entries(&w)?;
    let want: BTreeMap<String, (String, bool, BTreeSet<String>)> =
        [(entry_name(&w, rel, "app"), (shared.fingerprint.clone(), true, [SANDBOXES.to_string()].into()))].into();
    ensure!(entries == want, "one entry, named for the application, restricted as asked: {entries:#?}");
    published(&w, rel)?;
    for u in ["gw/0", "gw/1"] {
        reaches_every_address(&mut w, u)?;
    }
    let r = act(&mut w, I0, "list-trusted-clients", json!({}))?;
    ensure!(
        get(&r, "count")? == "1" && get(&r, "clients.0.endpoint")? == "https" && get(&r, "clients.0.unit")? == GW,
        "{r:#?}"
    );
    ensure!(get(&r, "clients.0.projects")? == SANDBOXES && get(&r, "clients.0.restricted")? == "yes", "{r:#?}");

    // It stops asking for projects: trust-projects applies.
    w.sim.set_config(GW, &[("projects", Some(json!("")))])?;
    let (_, restricted, projects) = https_entries(&w)?.into_values().next().context("entry kept")?;
    ensure!(restricted && projects == ["default".to_string(), SANDBOXES.to_string()].into(), "{projects:?}");
    w.check()
}

fn h3_side_by_side(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("https-and-api")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    let api = w.relate()?;
    let ams = certs::client_cert("ams-like")?;
    w.send(&unit(REQUIRER, 0), &[&ams.cert_pem])?;
    let https = relate_https(&mut w, 1, &[])?;
    let gw = fingerprint_of(&mut w, "gw/0")?;
    ensure!(w.owned_fps()? == [ams.fingerprint.clone(), gw.clone()].into(), "{:?}", w.owned());
    let fps_on = |w: &World| -> Result<BTreeSet<String>> {
        Ok(w.nodes(api, I0)?
            .iter()
            .flat_map(|n| n["trusted_certs_fp"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f.as_str().map(String::from))
            .collect())
    };
    ensure!(fps_on(&w)? == [ams.fingerprint.clone()].into(), "the api relation claims only its own");
    let api_before = w.payload(api, I0)?;
    let https_before = published(&w, https)?;
    reaches_every_address(&mut w, "gw/0")?;

    // The https relation goes: the api one is untouched.
    w.sim.unrelate(https)?;
    ensure!(w.owned_fps()? == [ams.fingerprint.clone()].into(), "{:?}", w.owned());
    ensure!(w.payload(api, I0)? == api_before, "api payload unchanged");
    // Back, then the api relation goes: the https one is untouched.
    let https = w.sim.relate(&format!("{INTEGRATOR}:https"), &format!("{GW}:https"))?;
    ensure!(w.owned_fps()? == [ams.fingerprint.clone(), gw.clone()].into(), "{:?}", w.owned());
    w.sim.unrelate(api)?;
    ensure!(w.owned_fps()? == [gw].into(), "{:?}", w.owned());
    ensure!(published(&w, https)? == https_before, "https payload unchanged");
    reaches_every_address(&mut w, "gw/0")?;
    let (_, message) = w.status(I0)?;
    ensure!(message == format!("{MEMBERS}/{MEMBERS} members online, 1 client trusted"), "{message}");
    w.check()
}

fn h4_outside_trust_projects(bed: &mut Bed) -> Result<()> {
    with_projects(bed, h4_inner)
}

fn h4_inner(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("https-outside")?;
    w.deploy_integrator(1, true)?;
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(SANDBOXES)))])?;
    let rel = relate_https(&mut w, 1, &[("projects", &format!("{SANDBOXES},{OUTSIDE}"))])?;
    let fp = fingerprint_of(&mut w, "gw/0")?;
    // Granted what is inside, refused and named what is not.
    let entries = https_entries(&w)?;
    ensure!(
        entries.get(&entry_name(&w, rel, "0")) == Some(&(fp.clone(), true, [SANDBOXES.to_string()].into())),
        "{entries:#?}"
    );
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message.ends_with("; projects refused for gw/0"), "{status}: {message}");
    let named = format!("gw/0 (relation https:{rel}): projects: {OUTSIDE} not in trust-projects, refused");
    ensure!(
        w.sim.logs()?.iter().any(|l| l.unit == I0 && l.message.lines().any(|m| m == named)),
        "no {named:?} in the log"
    );
    let r = act(&mut w, I0, "list-trusted-clients", json!({}))?;
    ensure!(get(&r, "invalid.0.endpoint")? == "https" && get(&r, "invalid.0.reason")?.contains(OUTSIDE), "{r:#?}");
    reaches_every_address(&mut w, "gw/0")?;

    // Only outside: nothing left to grant, so not trusted at all, and nothing published.
    w.sim.set_config(GW, &[("projects", Some(json!(OUTSIDE)))])?;
    ensure!(https_entries(&w)?.is_empty(), "{:#?}", https_entries(&w)?);
    ensure!(!w.sim.relation_data(rel, I0)?.contains_key("addresses"), "withdrawn");
    // Only why is left, in both databags: the requirer is told, never in silence.
    let app_bag: BTreeMap<String, String> = w.sim.relation_app_data(rel, INTEGRATOR)?.into_iter().collect();
    ensure!(app_bag.keys().collect::<Vec<_>>() == ["refused"], "withdrawn from the application databag: {app_bag:?}");
    validate_provider(&app_bag)?;
    ensure!(app_bag["refused"].contains("\"reason\":\"projects-outside-ceiling\""), "{app_bag:?}");
    ensure!(w.status("gw/0")?.0 == "waiting", "the requirer sees nothing to connect to");

    // The operator widens trust-projects: granted, published again.
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(format!("{SANDBOXES},{OUTSIDE}"))))])?;
    let entries = https_entries(&w)?;
    ensure!(entries.get(&entry_name(&w, rel, "0")) == Some(&(fp, true, [OUTSIDE.to_string()].into())), "{entries:#?}");
    published(&w, rel)?;
    ensure!(!w.status(I0)?.1.contains("projects refused"), "{:?}", w.status(I0)?);
    w.check()
}
