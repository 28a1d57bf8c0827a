//! What a correct charm must do, computed from the world's truth without the charm's code:
//! which certificates the requirers ask for, which of them LXD holds as configured, what a
//! published databag must say, who owns a trust entry. Shared by the in-memory model and the
//! soak; each world supplies its own identity and server certificates.
#![allow(dead_code)]

use crate::history::{Action, Projects, Sent, Special};
use lxd_integrator::certs;
use lxd_integrator::lxd::{TrustEntry, TrustKind};
use lxd_integrator::relation::Databag;
use std::collections::{BTreeMap, BTreeSet};

pub const INTEGRATOR: &str = "lxd-integrator";

/// A certificate: its PEM and fingerprint.
#[derive(Clone)]
pub struct Cert {
    pub pem: String,
    pub fingerprint: String,
}

impl Cert {
    pub fn from_pem(pem: &str) -> Cert {
        let der = certs::pem_blocks(pem).ok().and_then(|b| b.into_iter().next()).map(|b| b.der).unwrap_or_default();
        Cert { pem: pem.to_string(), fingerprint: certs::fingerprint(&der) }
    }
}

/// The certificates of one world no requirer may ask for: the integrator's credential
/// certificates (one per rotation, cycling) and LXD's server certificate.
pub struct Specials {
    pub identities: Vec<Cert>,
    pub server: Cert,
}

impl Specials {
    pub fn cert(&self, s: Special) -> &Cert {
        match s {
            Special::Identity(n) => &self.identities[n % self.identities.len()],
            Special::Server => &self.server,
        }
    }

    pub fn identity(&self, rotation: usize) -> &Cert {
        &self.identities[rotation % self.identities.len()]
    }

    /// What the charm must never add or remove for a requirer while credential `rotation` is
    /// the one in use.
    pub fn protected(&self, rotation: usize) -> BTreeSet<String> {
        [self.identity(rotation).fingerprint.clone(), self.server.fingerprint.clone()].into()
    }

    pub fn render(&self, sent: &Sent) -> Option<String> {
        sent.render(|s| self.cert(s).pem.clone())
    }

    /// The keys an `lxd-https` requirer writes for `sent`.
    pub fn render_https(&self, sent: &Sent) -> [(&'static str, Option<String>); 3] {
        sent.render_https(|s| self.cert(s).pem.clone())
    }
}

/// What a trust entry grants, or what a request wants: `None` unrestricted, else restricted
/// to these projects.
pub type Grant = Option<BTreeSet<String>>;

pub fn grant_of(entry: &TrustEntry) -> Grant {
    entry.restricted.then(|| entry.projects.iter().cloned().collect())
}

fn grant_of_projects(projects: Projects) -> Grant {
    projects.set().map(|s| s.into_iter().map(String::from).collect())
}

pub fn show(grant: &Grant) -> String {
    match grant {
        None => "unrestricted".into(),
        Some(p) => format!("{:?}", p.iter().collect::<Vec<_>>()),
    }
}

/// Whether an entry granting `entry` covers a request wanting `want`: an unrestricted entry
/// covers everything; one restricted to P covers a request whose projects are all in P, and
/// never one that would be unrestricted.
pub fn covers(entry: &Grant, want: &Grant) -> bool {
    match (entry, want) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(have), Some(want)) => want.is_subset(have),
    }
}

/// A list of projects as the charm reads one (`trust-projects`, an `https` requirer's
/// `projects`): split on `,`, blanks around names ignored, duplicates folded, order kept.
pub fn ordered(raw: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    raw.split(',').map(str::trim).filter(|p| !p.is_empty() && seen.insert(p.to_string())).map(String::from).collect()
}

/// One request: a member asking for a certificate, and the projects it wants, in the order
/// asked (`None`: what `trust-projects` says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Req {
    pub member: String,
    pub fp: String,
    pub projects: Option<Vec<String>>,
    /// What it wants: its projects, else `trust-projects` (`None`: unrestricted).
    pub want: Grant,
}

/// What one relation asks for: its requests in the order the charm reads them (on `api` the
/// units' databags by name, then the application's; on `https` the application's first), and
/// per fingerprint the members asking and what its first request there wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asks {
    pub https: bool,
    pub requests: Vec<Req>,
    pub members: BTreeMap<String, BTreeSet<String>>,
    pub want: BTreeMap<String, Grant>,
}

impl Asks {
    pub fn fps(&self) -> impl Iterator<Item = &String> {
        self.members.keys()
    }
}

/// What the members of one relation ask for: on `api` every valid certificate in what they
/// send, wanted as `trust-projects` says; on `https` the one certificate each sends, wanted as
/// its `projects` says within `trust-projects` (or as `trust-projects` says when it names
/// none; not at all when nothing asked is within it). Protected certificates are never asked.
pub fn asked<'a>(
    https: bool,
    members: impl IntoIterator<Item = (&'a str, &'a Sent)>,
    specials: &Specials,
    protected: &BTreeSet<String>,
    projects: Projects,
) -> Asks {
    let mut members: Vec<(&str, &Sent)> = members.into_iter().collect();
    // As the charm reads them: on `api` the units by name, then the application; on `https`
    // the application first.
    members.sort_by_key(|(m, _)| (m.contains('/') == https, m.to_string()));
    let configured = grant_of_projects(projects);
    let mut out = Asks { https, ..Asks::default() };
    for (member, sent) in members {
        let (fps, asked): (Vec<String>, Option<Vec<String>>) = if https {
            let fp = match sent.special {
                Some(s) => Some(specials.cert(s).fingerprint.clone()),
                None => sent.https_pool().map(String::from),
            };
            let asked = match sent.projects.value() {
                None => None,
                Some(raw) => {
                    let granted: Vec<String> = ordered(raw)
                        .into_iter()
                        .filter(|p| configured.as_ref().is_none_or(|c| c.contains(p)))
                        .collect();
                    if granted.is_empty() {
                        // Nothing left to grant: the certificate is not trusted at all.
                        continue;
                    }
                    Some(granted)
                }
            };
            (fp.into_iter().collect(), asked)
        } else {
            let special = sent.readable_special().map(|s| specials.cert(s).fingerprint.clone());
            (sent.valid_pool().map(String::from).chain(special).collect(), None)
        };
        let want: Grant = asked.as_ref().map_or_else(|| configured.clone(), |a| Some(a.iter().cloned().collect()));
        for fp in fps.into_iter().filter(|fp| !protected.contains(fp)) {
            if out.requests.iter().any(|r| r.member == member && r.fp == fp) {
                continue;
            }
            out.want.entry(fp.clone()).or_insert_with(|| want.clone());
            out.members.entry(fp.clone()).or_default().insert(member.to_string());
            out.requests.push(Req { member: member.to_string(), fp, projects: asked.clone(), want: want.clone() });
        }
    }
    out
}

/// Who owns a trust entry by its name, as README documents it: its endpoint, relation id and
/// member (`req0/1`, or `req0` for the application databag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub https: bool,
    pub rel: u32,
    pub member: String,
}

/// `juju.<model-uuid>.lxd-integrator.<relation-id>.<remote-app>.<unit-number|app>` (`api`) or
/// `juju.<model-uuid>.lxd-integrator.https.<relation-id>.<remote-app>.<unit-number|app>`
/// → its owner. Anything else is not this application's.
pub fn owner(uuid: &str, name: &str) -> Option<Owner> {
    let rest = name.strip_prefix(&format!("juju.{uuid}.{INTEGRATOR}."))?;
    let parts: Vec<&str> = rest.split('.').collect();
    let (https, rel, app, unit) = match parts.as_slice() {
        [rel, app, unit] => (false, *rel, *app, *unit),
        ["https", rel, app, unit] => (true, *rel, *app, *unit),
        _ => return None,
    };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0')))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let rel = number(rel)?;
    if app.is_empty() || !app.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let member = if unit == "app" { app.to_string() } else { format!("{app}/{}", number(unit)?) };
    Some(Owner { https, rel, member })
}

/// The owner of an entry, if it is a client entry this application owns.
pub fn owner_of(uuid: &str, entry: &TrustEntry) -> Option<Owner> {
    (entry.kind == TrustKind::Client).then(|| owner(uuid, &entry.name)).flatten()
}

pub fn owned<'a>(uuid: &'a str, store: &'a [TrustEntry]) -> impl Iterator<Item = &'a TrustEntry> {
    store.iter().filter(move |e| owner_of(uuid, e).is_some())
}

/// What the owning relation of an entry wants for `fp`, if that relation (same endpoint, same
/// id) is among `relations` and asks for it.
pub fn owner_wants<'a>(owner: &Owner, fp: &str, relations: &'a BTreeMap<u32, Asks>) -> Option<&'a Grant> {
    relations.get(&owner.rel).filter(|a| a.https == owner.https).and_then(|a| a.want.get(fp))
}

/// Whether an entry grants exactly what `trust-projects` asks.
pub fn as_configured(entry: &TrustEntry, projects: Projects) -> bool {
    grant_of(entry) == grant_of_projects(projects)
}

/// What the charm counts as granting each certificate it decides about, as a unit decides
/// from its view (`plan::not_covered`): an entry of ours with its owning relation and its grant
/// once the pass's plan applies (re-restricted to what its owner asks; as it is when its owner
/// no longer asks and it is removed); a certificate LXD does not hold yet, the first relation
/// asking for it (relations by id) and what that one wants, as the leader adds it (unless the
/// credential may not change trust at all: `plans` false); `None` for a foreign entry.
pub fn grants(
    uuid: &str,
    store: &[TrustEntry],
    relations: &BTreeMap<u32, Asks>,
    protected: &BTreeSet<String>,
    plans: bool,
) -> BTreeMap<String, Option<(Owner, Grant)>> {
    let mut out = BTreeMap::new();
    for e in store {
        let Some(o) = owner_of(uuid, e) else {
            out.insert(e.fingerprint.clone(), None);
            continue;
        };
        let grant = match owner_wants(&o, &e.fingerprint, relations) {
            Some(want) if plans && !protected.contains(&e.fingerprint) => want.clone(),
            _ => grant_of(e),
        };
        out.insert(e.fingerprint.clone(), Some((o, grant)));
    }
    if plans {
        for (rel, asks) in relations {
            for r in &asks.requests {
                if !out.contains_key(&r.fp) && !store.iter().any(|e| e.fingerprint == r.fp) {
                    let o = Owner { https: asks.https, rel: *rel, member: r.member.clone() };
                    out.insert(r.fp.clone(), Some((o, asks.want[&r.fp].clone())));
                }
            }
        }
    }
    out
}

/// Certificates LXD holds only under a foreign entry that is not the grant asked, as the charm
/// judges it: by the first request for the certificate (relations by id), which a foreign entry
/// grants when it asks for nothing restricted, or is restricted to exactly its projects.
pub fn foreign_not_as_asked(uuid: &str, store: &[TrustEntry], relations: &BTreeMap<u32, Asks>) -> BTreeSet<String> {
    store
        .iter()
        .filter(|e| owner_of(uuid, e).is_none())
        .filter(|e| {
            let first = relations.values().find_map(|a| a.want.get(&e.fingerprint));
            first.is_some_and(|want| want.is_some() && *want != grant_of(e))
        })
        .map(|e| e.fingerprint.clone())
        .collect()
}

/// On one relation, what it is told: the certificates claimed (LXD holds them, under the
/// relation's own entry, under another relation's entry whose grant covers one of its requests
/// for it, or under a foreign entry that is the grant asked); those refused as held by another
/// application (a request of it that another relation's grant does not cover); and, on
/// `https`, the project to use.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Told {
    pub claimed: BTreeSet<String>,
    pub refused: BTreeSet<String>,
    pub project: Option<String>,
}

pub struct Judge<'a> {
    pub uuid: &'a str,
    /// LXD's trust store once the hook ended.
    pub held: &'a [TrustEntry],
    pub grants: &'a BTreeMap<String, Option<(Owner, Grant)>>,
    pub foreign_refused: &'a BTreeSet<String>,
    pub projects: Projects,
}

pub fn told(j: &Judge, rel: u32, asks: Option<&Asks>) -> Told {
    let mut out = Told::default();
    let Some(asks) = asks else { return out };
    let held = |fp: &str| j.held.iter().any(|e| e.fingerprint == fp) && !j.foreign_refused.contains(fp);
    let mut first_claimed = None;
    for r in &asks.requests {
        let covered = match j.grants.get(&r.fp) {
            Some(Some((o, grant))) if !(o.rel == rel && o.https == asks.https) => {
                let covered = covers(grant, &r.want);
                if !covered {
                    out.refused.insert(r.fp.clone());
                }
                covered
            }
            _ => true,
        };
        if covered && held(&r.fp) {
            out.claimed.insert(r.fp.clone());
            first_claimed.get_or_insert(r);
        }
    }
    if asks.https {
        let ceiling = j.projects.value();
        out.project = first_claimed.and_then(|r| match &r.projects {
            Some(p) => p.first().cloned(),
            None => ordered(ceiling).into_iter().next(),
        });
    }
    out
}

/// What one published databag says: its members (name, endpoint), the fingerprints each
/// member lists, and the fingerprints of `registered_certificates`.
#[derive(Debug, PartialEq, Eq)]
pub struct Published {
    pub nodes: BTreeSet<(String, String)>,
    pub node_fps: BTreeSet<String>,
    pub registered: BTreeSet<String>,
}

/// Reads a databag the charm wrote; says what is malformed.
pub fn published(bag: &BTreeMap<String, String>) -> Result<Published, String> {
    if bag.get("version").map(String::as_str) != Some("1.0") {
        return Err(format!("version is {:?}", bag.get("version")));
    }
    let nodes: Vec<serde_json::Value> =
        serde_json::from_str(bag.get("nodes").map_or("", String::as_str)).map_err(|e| format!("nodes: {e}"))?;
    let mut out = Published { nodes: BTreeSet::new(), node_fps: BTreeSet::new(), registered: BTreeSet::new() };
    let mut lists = BTreeSet::new();
    for n in &nodes {
        let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
        out.nodes.insert((s("name"), s("endpoint")));
        let fps: Vec<String> = n["trusted_certs_fp"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        lists.insert(fps.clone());
        out.node_fps.extend(fps);
    }
    if lists.len() > 1 {
        return Err(format!("members list different fingerprints: {lists:?}"));
    }
    let pems: Vec<String> = serde_json::from_str(bag.get("registered_certificates").map_or("", String::as_str))
        .map_err(|e| format!("registered_certificates: {e}"))?;
    for pem in pems {
        let der = certs::pem_blocks(&pem)
            .ok()
            .and_then(|b| b.into_iter().next())
            .map(|b| b.der)
            .ok_or("a registered certificate is not PEM")?;
        if certs::to_pem(&der) != pem {
            return Err("a registered certificate is not in canonical PEM".into());
        }
        out.registered.insert(certs::fingerprint(&der));
    }
    Ok(out)
}

/// The fingerprints a databag lists in `refused` as held by another application (none when
/// the key is absent); says what is malformed.
pub fn refused_held(bag: &BTreeMap<String, String>) -> Result<BTreeSet<String>, String> {
    let Some(raw) = bag.get("refused") else { return Ok(BTreeSet::new()) };
    let list: Vec<serde_json::Value> = serde_json::from_str(raw).map_err(|e| format!("refused: {e}"))?;
    let mut out = BTreeSet::new();
    for item in &list {
        let (Some(fp), Some(reason)) = (item["fingerprint"].as_str(), item["reason"].as_str()) else {
            return Err(format!("refused: an item is not {{fingerprint, reason}}: {item}"));
        };
        if reason == "held-by-another-application" {
            out.insert(fp.to_string());
        }
    }
    Ok(out)
}

/// What one databag must say on its relation.
pub struct Expected<'a> {
    pub https: bool,
    /// The application's databag (on `api` it stays without a provider key).
    pub app: bool,
    /// The members the charm saw online, when the world knows them.
    pub nodes: Option<&'a BTreeSet<(String, String)>>,
    pub told: &'a Told,
    /// LXD's server certificate, as `lxd-https` publishes it.
    pub server: &'a str,
}

/// The keys the provider writes on `api`.
const API_KEYS: [&str; 6] =
    ["version", "nodes", "registered_certificates", "server_certificate", "server_certificate_fingerprint", "refused"];

/// Checks a databag against what it must say. On `api`, the application's holds none of the
/// provider's keys; a unit's exactly `nodes` (when known), and exactly what is claimed both as
/// `registered_certificates` and in every member's `trusted_certs_fp`. On `https` (both
/// databags): `version`, `certificate` (the server's), `certificate_fingerprint`, `addresses`
/// (exactly the nodes, when known) and `project` (when the grant used is restricted) when some
/// certificate is claimed, none of them otherwise. On both, a unit's `refused` lists as held by
/// another application exactly what is refused so.
pub fn check_bag(bag: &BTreeMap<String, String>, want: &Expected) -> Result<(), String> {
    if want.app && !want.https {
        return match API_KEYS.iter().find(|k| bag.contains_key(**k)) {
            Some(k) => Err(format!("the application databag holds {k:?}: on api it stays empty")),
            None => Ok(()),
        };
    }
    let refused = refused_held(bag)?;
    if refused != want.told.refused {
        return Err(format!(
            "refused as held by another application {}, want {}",
            short(&refused),
            short(&want.told.refused)
        ));
    }
    if want.https {
        return check_https_bag(bag, want);
    }
    let (nodes, fps) = (want.nodes, &want.told.claimed);
    let p = published(bag)?;
    let node_fps = if p.nodes.is_empty() { BTreeSet::new() } else { fps.clone() };
    if nodes.is_some_and(|n| n != &p.nodes) || p.nodes.is_empty() || p.registered != *fps || p.node_fps != node_fps {
        return Err(format!(
            "published {:?} with {} / registered {}, want {:?} with {}",
            p.nodes,
            short(&p.node_fps),
            short(&p.registered),
            nodes,
            short(fps)
        ));
    }
    Ok(())
}

/// `host:port` of a member URL, as `addresses` lists it.
pub fn authority(url: &str) -> String {
    url.trim_start_matches("https://").trim_end_matches('/').to_string()
}

/// The members an `lxd-https` databag lists in `addresses`.
pub fn addresses(bag: &BTreeMap<String, String>) -> BTreeSet<String> {
    bag.get("addresses").map(|a| a.split(',').filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
}

fn check_https_bag(bag: &BTreeMap<String, String>, want: &Expected) -> Result<(), String> {
    const KEYS: [&str; 5] = ["version", "certificate", "certificate_fingerprint", "addresses", "project"];
    let claimed = &want.told.claimed;
    if claimed.is_empty() {
        return match KEYS.iter().find(|k| bag.contains_key(**k)) {
            Some(k) => Err(format!("publishes {k:?} though no certificate asked for there is claimed")),
            None => Ok(()),
        };
    }
    if bag.get("version").map(String::as_str) != Some("1.0") {
        return Err(format!("version is {:?}, with {} claimed", bag.get("version"), short(claimed)));
    }
    if bag.get("certificate_fingerprint").map(String::as_str) != Some(want.server) {
        return Err(format!("certificate_fingerprint is {:?}, not the server's", bag.get("certificate_fingerprint")));
    }
    let pem_fp = bag
        .get("certificate")
        .and_then(|pem| certs::pem_blocks(pem).ok())
        .and_then(|b| b.into_iter().next())
        .map(|b| certs::fingerprint(&b.der));
    if pem_fp.as_deref() != Some(want.server) {
        return Err("certificate is not the server's".into());
    }
    let listed = addresses(bag);
    let nodes: Option<BTreeSet<String>> = want.nodes.map(|n| n.iter().map(|(_, url)| authority(url)).collect());
    if listed.is_empty() || nodes.is_some_and(|n| n != listed) {
        return Err(format!("addresses {listed:?}, want {:?}", want.nodes));
    }
    if bag.get("project") != want.told.project.as_ref() {
        return Err(format!("project is {:?}, want {:?}", bag.get("project"), want.told.project));
    }
    Ok(())
}

/// Fingerprints as pool names (`cert#3`) where they are pool certificates, else short.
pub fn short(fps: &BTreeSet<String>) -> String {
    let names: Vec<String> = fps.iter().map(|fp| name_of(fp)).collect();
    format!("[{}]", names.join(", "))
}

pub fn name_of(fp: &str) -> String {
    match crate::scenario::POOL.iter().position(|c| c.fingerprint == fp) {
        Some(i) => format!("cert#{i}"),
        None => certs::short_fp(fp).to_string(),
    }
}

// --- After every hook.

/// What one hook did, as a world can tell it.
pub struct HookFacts<'a> {
    pub uuid: &'a str,
    pub leader: bool,
    /// Juju is removing the unit.
    pub dying: bool,
    pub store_before: &'a [TrustEntry],
    pub store_after: &'a [TrustEntry],
    /// Write requests the hook sent LXD (a world that cannot count them: whether the store
    /// changed).
    pub lxd_writes: usize,
    /// What the unit's view asks for, per relation (the breaking relation left out).
    pub asked: &'a BTreeMap<u32, Asks>,
    /// The certificates of the credential the hook used, and LXD's server certificate.
    pub protected: &'a BTreeSet<String>,
    /// The fingerprint of the credential the hook used.
    pub identity: &'a str,
    /// The fingerprint of LXD's server certificate.
    pub server: &'a str,
    pub projects: Projects,
    /// The action it was (`None`: a hook).
    pub action: Option<Action>,
    /// The integrator databags the hook changed: (relation, unit or application, the bag).
    pub written: Vec<(u32, &'a str, &'a Databag)>,
    /// No LXD member could be reached during the hook.
    pub lxd_down: bool,
    /// The members the charm must have seen online, when the world knows them (real LXD
    /// reports a crashed member online for a while).
    pub nodes: Option<&'a BTreeSet<(String, String)>>,
}

/// The requesters an old charm made `entry` for, by its name (`adoption.rs`, judged here
/// apart): charm-lxd's `juju-relation-<app>` for an `https` request from that application
/// (its databag or a unit's), `juju-relation-<app>/<n>` for that unit's own; the Python
/// charm's name, the certificate's CN, unrestricted, for an `api` request. Nothing for any
/// other name, nor for another integrator's `juju.…`.
pub fn made_for(entry: &TrustEntry, asked: &BTreeMap<u32, Asks>) -> Vec<Owner> {
    if entry.kind != TrustKind::Client || entry.name.starts_with("juju.") {
        return Vec::new();
    }
    let fp = entry.fingerprint.as_str();
    let cn = crate::scenario::POOL.iter().position(|c| c.fingerprint == fp).map(|i| format!("requirer-{i}"));
    let mut out = Vec::new();
    for (rel, asks) in asked {
        for r in asks.requests.iter().filter(|r| r.fp == fp) {
            let app = r.member.split('/').next().unwrap_or_default();
            let by_charm_lxd = entry
                .name
                .strip_prefix("juju-relation-")
                .is_some_and(|m| asks.https && (m == app || (r.member.contains('/') && m == r.member)));
            let by_python = !asks.https && !entry.restricted && cn.as_deref() == Some(entry.name.as_str());
            if by_charm_lxd || by_python {
                out.push(Owner { https: asks.https, rel: *rel, member: r.member.clone() });
            }
        }
    }
    out
}

/// `adopt`: LXD changes only by renames, each of an entry an old charm made for a requester
/// the unit's view has, to this charm's name for that requester, projects untouched; every
/// other entry, an operator's for a requested certificate included, stays exactly as it was.
fn check_adopt(
    f: &HookFacts,
    before: &BTreeMap<&str, &TrustEntry>,
    after: &BTreeMap<&str, &TrustEntry>,
) -> Result<(), String> {
    if f.lxd_writes > 0 && (!f.leader || f.dying || f.action == Some(Action::Adopt { dry_run: true })) {
        return Err(format!("adopt wrote to LXD where it must not: {}", store_diff(f.store_before, f.store_after)));
    }
    if before.len() != after.len() || before.keys().any(|fp| !after.contains_key(fp)) {
        return Err(format!("adopt added or removed entries: {}", store_diff(f.store_before, f.store_after)));
    }
    for (fp, old) in before {
        let new = after[fp];
        if old == &new {
            continue;
        }
        let renamed_only = TrustEntry { name: old.name.clone(), ..new.clone() } == **old;
        let owner = owner_of(f.uuid, new);
        let made_for = made_for(old, f.asked);
        if !renamed_only || owner_of(f.uuid, old).is_some() || !owner.as_ref().is_some_and(|o| made_for.contains(o)) {
            return Err(format!(
                "adopt changed {:?} ({}) to {:?} {}: only an entry an old charm made is renamed, for a requester it was made for ({})",
                old.name,
                name_of(fp),
                new.name,
                show(&grant_of(new)),
                if made_for.is_empty() {
                    "none here".to_string()
                } else {
                    made_for
                        .iter()
                        .map(|o| format!("{} on relation {}", o.member, o.rel))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
        }
    }
    Ok(())
}

/// The relations of `asked` other than the owner's that ask for `fp`, for messages.
fn others_asking(asked: &BTreeMap<u32, Asks>, owner: Option<&Owner>, fp: &str) -> String {
    let others: Vec<String> = asked
        .iter()
        .filter(|(rel, a)| owner.is_none_or(|o| o.rel != **rel) && a.members.contains_key(fp))
        .map(|(rel, a)| format!("relation {rel} wanting {}", show(&a.want[fp])))
        .collect();
    if others.is_empty() { "none".into() } else { others.join(", ") }
}

/// The guarantees every hook keeps: no entry the application does not own changes, an
/// operator's entry for a requested certificate included; a credential LXD holds restricted
/// writes nothing; only a leader that is not being removed writes to LXD; nothing is added
/// that the unit's view does not ask for (never a protected certificate), each entry added as
/// its owning relation asks; no entry of ours changes name, nor projects but to what its
/// owning relation asks (never because of a requirer that does not own it), nor is removed
/// while its owning relation still asks for it (never a protected one); every databag written
/// says exactly what LXD held and was claimed or refused on that relation, and none changes
/// while LXD is down.
pub fn check_hook(f: &HookFacts) -> Result<(), String> {
    let before: BTreeMap<&str, &TrustEntry> = f.store_before.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    let after: BTreeMap<&str, &TrustEntry> = f.store_after.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    match f.action {
        Some(a) if !a.writes() => {
            if f.lxd_writes > 0 || !f.written.is_empty() {
                return Err(format!(
                    "{} changed LXD ({}) or relation data ({} databags)",
                    a.name(),
                    store_diff(f.store_before, f.store_after),
                    f.written.len()
                ));
            }
            return Ok(());
        }
        Some(Action::Adopt { .. }) => return check_adopt(f, &before, &after),
        _ => {}
    }
    for e in f.store_before.iter().filter(|e| owner_of(f.uuid, e).is_none()) {
        if after.get(e.fingerprint.as_str()) != Some(&e) {
            let asking = others_asking(f.asked, None, &e.fingerprint);
            return Err(format!(
                "changed or removed {:?} ({}), which is not ours (asked for by: {asking}): now {}",
                e.name,
                name_of(&e.fingerprint),
                after.get(e.fingerprint.as_str()).map_or("gone".into(), |a| format!(
                    "{:?} {}",
                    a.name,
                    show(&grant_of(a))
                ))
            ));
        }
    }
    if f.lxd_writes > 0 && credential_restricted(f.store_before, f.identity) {
        return Err(format!(
            "wrote to LXD {} time(s) with a credential LXD holds restricted (LXD refuses it any trust change): {}",
            f.lxd_writes,
            store_diff(f.store_before, f.store_after)
        ));
    }
    if f.lxd_writes > 0 && (!f.leader || f.dying) {
        let who = if f.dying { "a unit being removed" } else { "a non-leader" };
        return Err(format!(
            "{who} wrote to LXD {} time(s): {}",
            f.lxd_writes,
            store_diff(f.store_before, f.store_after)
        ));
    }
    for (fp, e) in &after {
        match before.get(fp) {
            None => {
                let Some(o) = owner_of(f.uuid, e) else {
                    return Err(format!("added {:?}, which is not named as ours", e.name));
                };
                if f.protected.contains(*fp) {
                    return Err(format!("added {} for a requirer, a certificate nobody may ask for", name_of(fp)));
                }
                let rel = f.asked.get(&o.rel).filter(|a| a.https == o.https);
                if !rel.and_then(|a| a.members.get(*fp)).is_some_and(|m| m.contains(&o.member)) {
                    return Err(format!(
                        "added {} as {:?}, which {} on relation {} does not ask for",
                        name_of(fp),
                        e.name,
                        o.member,
                        o.rel
                    ));
                }
                let want = &rel.expect("asked").want[*fp];
                if grant_of(e) != *want {
                    return Err(format!(
                        "added {} as {:?} {}, not as its relation {} asks ({}); others asking: {}",
                        name_of(fp),
                        e.name,
                        show(&grant_of(e)),
                        o.rel,
                        show(want),
                        others_asking(f.asked, Some(&o), fp)
                    ));
                }
            }
            Some(old) if old != e => {
                if old.name != e.name {
                    return Err(format!("renamed {:?} to {:?}", old.name, e.name));
                }
                // Ours (a foreign entry that changed was reported above).
                let o = owner_of(f.uuid, e).expect("ours");
                let want = owner_wants(&o, fp, f.asked);
                if want != Some(&grant_of(e)) {
                    return Err(format!(
                        "re-restricted {} ({:?}) from {} to {}, though its owner, relation {}, asks {}: changed by a requirer that does not own it ({})",
                        name_of(fp),
                        e.name,
                        show(&grant_of(old)),
                        show(&grant_of(e)),
                        o.rel,
                        want.map_or("nothing".into(), show),
                        others_asking(f.asked, Some(&o), fp)
                    ));
                }
            }
            Some(_) => {}
        }
    }
    for (fp, e) in before.iter().filter(|(fp, _)| !after.contains_key(*fp)) {
        if f.protected.contains(*fp) {
            return Err(format!("removed {:?}, {} (the charm's own credential or the server's)", e.name, name_of(fp)));
        }
        if let Some(o) = owner_of(f.uuid, e).filter(|o| owner_wants(o, fp, f.asked).is_some()) {
            return Err(format!(
                "removed {:?} ({}), which its owner, relation {}, still asks for",
                e.name,
                name_of(fp),
                o.rel
            ));
        }
    }
    let plans = !credential_restricted(f.store_before, f.identity);
    let grants = grants(f.uuid, f.store_before, f.asked, f.protected, plans);
    let foreign_refused = foreign_not_as_asked(f.uuid, f.store_before, f.asked);
    let judge = Judge {
        uuid: f.uuid,
        held: f.store_after,
        grants: &grants,
        foreign_refused: &foreign_refused,
        projects: f.projects,
    };
    for (rel, member, bag) in &f.written {
        if f.lxd_down {
            return Err(format!("changed its {member} databag on relation {rel} while LXD was down"));
        }
        let asks = f.asked.get(rel);
        let told = told(&judge, *rel, asks);
        let want = Expected {
            https: asks.is_some_and(|a| a.https),
            app: !member.contains('/'),
            nodes: f.nodes,
            told: &told,
            server: f.server,
        };
        check_bag(bag, &want).map_err(|e| format!("its {member} databag on relation {rel}: {e}"))?;
    }
    Ok(())
}

// --- After a quiet period.

/// The world once every hook has run and every unit has run update-status twice.
pub struct Settled<'a> {
    pub uuid: &'a str,
    pub store: &'a [TrustEntry],
    pub projects: Projects,
    pub protected: &'a BTreeSet<String>,
    /// The fingerprint of the credential in use.
    pub identity: &'a str,
    /// The fingerprint of LXD's server certificate.
    pub server: &'a str,
    /// Trusted (`juju trust`) and LXD trusts the credential's certificate.
    pub can_act: bool,
    /// Per live relation, what its live members ask for.
    pub asked: &'a BTreeMap<u32, Asks>,
    /// Every integrator databag on every live relation: (whose, relation, bag).
    pub bags: &'a [(String, u32, Databag)],
    pub nodes: Option<&'a BTreeSet<(String, String)>>,
    /// Every integrator unit's workload status: (unit, status, message).
    pub statuses: Vec<(String, String, String)>,
    pub leader: Option<String>,
    /// The projects the cluster has.
    pub cluster_projects: &'a BTreeSet<&'a str>,
}

/// True when the charm could act and did: every certificate a live relation asks for is held
/// by LXD, under someone else's entry or under one of ours; each entry of ours is owned by a
/// live relation that asks for its certificate and grants what that relation asks, whoever
/// else asks (an entry holding the charm's own credential excepted: it stays as it is); every
/// databag says exactly what is claimed and refused on its relation; every unit is active (the
/// leader blocked when LXD refused a change for a project it lacks). False when it cannot act
/// and every unit says so (blocked): not trusted, its credential not in LXD's trust store, or
/// its credential held by an entry restricted to projects. The last happens when a requirer
/// asked for the certificate the credential was later rotated to and the charm trusted it
/// restricted: LXD refuses a restricted caller any trust change, and the charm never widens or
/// removes an entry that holds its own credential (that could lock it out, and widening would
/// grant a requirer's entry more than it asked), so it says the credential must be trusted
/// unrestricted (each hook meanwhile writes nothing to LXD: `check_hook`).
pub fn check_settled(s: &Settled) -> Result<bool, String> {
    if !s.can_act {
        return match s.statuses.iter().find(|(_, st, _)| st != "blocked") {
            Some((unit, st, _)) => Err(format!("{unit} is {st}, not blocked, though it cannot act")),
            None => Ok(false),
        };
    }
    if credential_restricted(s.store, s.identity) {
        return match s.statuses.iter().find(|(_, st, msg)| st != "blocked" || !says_credential_restricted(msg)) {
            Some((unit, st, msg)) => Err(format!(
                "{unit} is {st} {msg:?}, not blocked saying the credential is restricted, though LXD holds its credential restricted"
            )),
            None => Ok(false),
        };
    }
    let exists = |g: &Grant| g.as_ref().is_none_or(|p| p.iter().all(|p| s.cluster_projects.contains(p.as_str())));
    let by_fp: BTreeMap<&str, &TrustEntry> = s.store.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    // LXD refused the leader a change: an add or a re-restriction naming a project it lacks.
    let mut refused_by_lxd = false;
    for e in owned(s.uuid, s.store) {
        let fp = e.fingerprint.as_str();
        // An entry of ours that holds the charm's own credential (a requirer asked for it
        // before the credential was rotated to it) stays, asked for or not, and as it is.
        if s.protected.contains(fp) {
            continue;
        }
        let o = owner_of(s.uuid, e).expect("ours");
        let Some(want) = owner_wants(&o, fp, s.asked) else {
            return Err(format!(
                "{:?} ({}) outlived its owner's request: relation {} does not ask for it (others asking: {})",
                e.name,
                name_of(fp),
                o.rel,
                others_asking(s.asked, Some(&o), fp)
            ));
        };
        if grant_of(e) != *want {
            if exists(want) {
                return Err(format!(
                    "{:?} ({}) is {}, not as its owner, relation {}, asks ({}); others asking: {}",
                    e.name,
                    name_of(fp),
                    show(&grant_of(e)),
                    o.rel,
                    show(want),
                    others_asking(s.asked, Some(&o), fp)
                ));
            }
            refused_by_lxd = true;
        }
    }
    for (rel, asks) in s.asked {
        for (fp, want) in &asks.want {
            if by_fp.contains_key(fp.as_str()) {
                continue;
            }
            // Not in LXD: only because LXD refused to add it for a project it lacks.
            let wants: Vec<&Grant> = s.asked.values().filter_map(|a| a.want.get(fp)).collect();
            if wants.iter().all(|w| exists(w)) {
                return Err(format!(
                    "{} is asked for on relation {rel} ({}) and held by no entry",
                    name_of(fp),
                    show(want)
                ));
            }
            refused_by_lxd = true;
        }
    }
    let grants = grants(s.uuid, s.store, s.asked, s.protected, true);
    let foreign_refused = foreign_not_as_asked(s.uuid, s.store, s.asked);
    let judge =
        Judge { uuid: s.uuid, held: s.store, grants: &grants, foreign_refused: &foreign_refused, projects: s.projects };
    for (whose, rel, bag) in s.bags {
        let asks = s.asked.get(rel);
        let told = told(&judge, *rel, asks);
        let want = Expected {
            https: asks.is_some_and(|a| a.https),
            app: whose == "the application",
            nodes: s.nodes,
            told: &told,
            server: s.server,
        };
        check_bag(bag, &want).map_err(|e| format!("{whose} on relation {rel}: {e}"))?;
    }
    // A missing project is refused to the leader when it tries to add or re-restrict an entry,
    // and only then; the others trust what LXD holds and say so.
    for (unit, st, msg) in &s.statuses {
        let expected = if refused_by_lxd && Some(unit) == s.leader.as_ref() { "blocked" } else { "active" };
        if st != expected {
            return Err(format!("{unit} is {st} {msg:?}, not {expected}"));
        }
    }
    Ok(true)
}

/// Whether the trust entry holding the credential `identity` is restricted to projects: LXD then
/// refuses the charm any change to its trust store.
pub fn credential_restricted(store: &[TrustEntry], identity: &str) -> bool {
    store.iter().any(|e| e.fingerprint == identity && e.restricted)
}

/// A status message that says the credential is restricted and must be trusted unrestricted.
pub fn says_credential_restricted(message: &str) -> bool {
    message.contains("credential is restricted") && message.contains("unrestricted")
}

/// The entries added, removed and changed between two stores, in a few words.
pub fn store_diff(before: &[TrustEntry], after: &[TrustEntry]) -> String {
    let mut out = Vec::new();
    for e in after.iter().filter(|e| !before.iter().any(|b| b.fingerprint == e.fingerprint)) {
        out.push(format!(
            "+{} as {:?}{}",
            name_of(&e.fingerprint),
            e.name,
            if e.restricted { format!(" in {:?}", e.projects) } else { String::new() }
        ));
    }
    for e in before.iter().filter(|e| !after.iter().any(|a| a.fingerprint == e.fingerprint)) {
        out.push(format!("-{} ({:?})", name_of(&e.fingerprint), e.name));
    }
    for e in after.iter() {
        let Some(b) = before.iter().find(|b| b.fingerprint == e.fingerprint && b != &e) else { continue };
        if b.name != e.name {
            out.push(format!("~{} renamed {:?} to {:?}", name_of(&e.fingerprint), b.name, e.name));
        }
        if b.restricted != e.restricted || b.projects != e.projects {
            out.push(format!("~{} now {:?}", name_of(&e.fingerprint), e.projects));
        }
    }
    out.join(", ")
}
