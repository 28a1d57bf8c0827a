//! What a correct charm must do, computed from the world's truth without the charm's code:
//! which certificates the requirers ask for, which of them LXD holds as configured, what a
//! published databag must say, who owns a trust entry. Shared by the in-memory model and the
//! soak; each world supplies its own identity and server certificates.
#![allow(dead_code)]

use crate::history::{Projects, Sent, Special};
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
}

/// Fingerprint → the members (`req0/1`, or `req0` for the application databag) asking for it,
/// on one relation: every valid certificate in what they send, less the protected ones.
pub fn asked<'a>(
    members: impl IntoIterator<Item = (&'a str, &'a Sent)>,
    specials: &Specials,
    protected: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (member, sent) in members {
        let special = sent.readable_special().map(|s| specials.cert(s).fingerprint.clone());
        for fp in sent.valid_pool().map(String::from).chain(special) {
            if !protected.contains(&fp) {
                out.entry(fp).or_default().insert(member.to_string());
            }
        }
    }
    out
}

/// Who owns a trust entry by its name, as README documents it:
/// `juju.<model-uuid>.lxd-integrator.<relation-id>.<remote-app>.<unit-number|app>` → (relation
/// id, member). Anything else is not this application's.
pub fn owner(uuid: &str, name: &str) -> Option<(u32, String)> {
    let rest = name.strip_prefix(&format!("juju.{uuid}.{INTEGRATOR}."))?;
    let parts: Vec<&str> = rest.split('.').collect();
    let [rel, app, unit] = parts.as_slice() else { return None };
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0')))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let rel = number(rel)?;
    if app.is_empty() || !app.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return None;
    }
    let member = if *unit == "app" { app.to_string() } else { format!("{app}/{}", number(unit)?) };
    Some((rel, member))
}

pub fn owned<'a>(uuid: &'a str, store: &'a [TrustEntry]) -> impl Iterator<Item = &'a TrustEntry> {
    store.iter().filter(move |e| e.kind == TrustKind::Client && owner(uuid, &e.name).is_some())
}

/// Whether an entry grants exactly what `trust-projects` asks.
pub fn as_configured(entry: &TrustEntry, projects: Projects) -> bool {
    match projects.set() {
        None => !entry.restricted,
        Some(want) => entry.restricted && entry.projects.iter().map(String::as_str).collect::<BTreeSet<_>>() == want,
    }
}

/// The fingerprints LXD holds that the charm may claim: under its own entry whatever its
/// restrictions, or under someone else's entry that grants what `trust-projects` asks (any
/// entry, when it is unset).
pub fn claimable(uuid: &str, store: &[TrustEntry], projects: Projects) -> BTreeSet<String> {
    store
        .iter()
        .filter(|e| owner(uuid, &e.name).is_some() || projects.set().is_none() || as_configured(e, projects))
        .map(|e| e.fingerprint.clone())
        .collect()
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

/// Checks a databag against what it must say: exactly `nodes` (when the world knows which
/// members the charm saw online), and exactly `fps` both as `registered_certificates` and in
/// every member's `trusted_certs_fp`.
pub fn check_bag(
    bag: &BTreeMap<String, String>,
    nodes: Option<&BTreeSet<(String, String)>>,
    fps: &BTreeSet<String>,
) -> Result<(), String> {
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
    pub asked: &'a BTreeMap<u32, BTreeMap<String, BTreeSet<String>>>,
    /// The certificates of the credential the hook used, and LXD's server certificate.
    pub protected: &'a BTreeSet<String>,
    pub projects: Projects,
    /// The integrator databags the hook changed: (relation, unit or application, the bag).
    pub written: Vec<(u32, &'a str, &'a Databag)>,
    /// No LXD member could be reached during the hook.
    pub lxd_down: bool,
    /// The members the charm must have seen online, when the world knows them (real LXD
    /// reports a crashed member online for a while).
    pub nodes: Option<&'a BTreeSet<(String, String)>>,
}

/// The guarantees every hook keeps: no entry the application does not own changes; only a
/// leader that is not being removed writes to LXD; nothing is added that the unit's view does
/// not ask for (never a protected certificate), nothing removed that it still asks for (never
/// a protected one); entries are restricted as configured; every databag written says exactly
/// what LXD held and was asked for on that relation, and none changes while LXD is down.
pub fn check_hook(f: &HookFacts) -> Result<(), String> {
    let before: BTreeMap<&str, &TrustEntry> = f.store_before.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    let after: BTreeMap<&str, &TrustEntry> = f.store_after.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    let ours = |e: &TrustEntry| e.kind == TrustKind::Client && owner(f.uuid, &e.name).is_some();
    for e in f.store_before.iter().filter(|e| !ours(e)) {
        if after.get(e.fingerprint.as_str()) != Some(&e) {
            return Err(format!("changed or removed {:?}, which is not ours", e.name));
        }
    }
    if f.lxd_writes > 0 && (!f.leader || f.dying) {
        let who = if f.dying { "a unit being removed" } else { "a non-leader" };
        return Err(format!(
            "{who} wrote to LXD {} time(s): {}",
            f.lxd_writes,
            store_diff(f.store_before, f.store_after)
        ));
    }
    let everywhere: BTreeSet<&String> = f.asked.values().flat_map(|a| a.keys()).collect();
    for (fp, e) in &after {
        match before.get(fp) {
            None => {
                let Some((rel, member)) = owner(f.uuid, &e.name).filter(|_| ours(e)) else {
                    return Err(format!("added {:?}, which is not named as ours", e.name));
                };
                if f.protected.contains(*fp) {
                    return Err(format!("added {} for a requirer, a certificate nobody may ask for", name_of(fp)));
                }
                if !f.asked.get(&rel).and_then(|a| a.get(*fp)).is_some_and(|m| m.contains(&member)) {
                    return Err(format!(
                        "added {} as {:?}, which {member} on relation {rel} does not ask for",
                        name_of(fp),
                        e.name
                    ));
                }
                if !as_configured(e, f.projects) {
                    return Err(format!(
                        "added {} restricted to {:?}, not as trust-projects says",
                        name_of(fp),
                        e.projects
                    ));
                }
            }
            Some(old) if old != e => {
                if old.name != e.name {
                    return Err(format!("renamed {:?} to {:?}", old.name, e.name));
                }
                if !as_configured(e, f.projects) {
                    return Err(format!("re-restricted {:?} to {:?}, not as trust-projects says", e.name, e.projects));
                }
            }
            Some(_) => {}
        }
    }
    for (fp, e) in before.iter().filter(|(fp, _)| !after.contains_key(*fp)) {
        if f.protected.contains(*fp) {
            return Err(format!("removed {:?}, {} (the charm's own credential or the server's)", e.name, name_of(fp)));
        }
        if everywhere.contains(&fp.to_string()) {
            return Err(format!("removed {:?} ({}), which a live relation still asks for", e.name, name_of(fp)));
        }
    }
    let claimable = claimable(f.uuid, f.store_after, f.projects);
    for (rel, member, bag) in &f.written {
        if f.lxd_down {
            return Err(format!("changed its {member} databag on relation {rel} while LXD was down"));
        }
        let want: BTreeSet<String> = f
            .asked
            .get(rel)
            .map(|a| a.keys().filter(|fp| claimable.contains(*fp)).cloned().collect())
            .unwrap_or_default();
        check_bag(bag, f.nodes, &want).map_err(|e| format!("its {member} databag on relation {rel}: {e}"))?;
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
    /// Trusted (`juju trust`) and LXD trusts the credential's certificate.
    pub can_act: bool,
    /// Per live relation, what its live members ask for.
    pub asked: &'a BTreeMap<u32, BTreeSet<String>>,
    /// Every integrator databag on every live relation: (whose, relation, bag).
    pub bags: &'a [(String, u32, Databag)],
    pub nodes: Option<&'a BTreeSet<(String, String)>>,
    /// Every integrator unit's workload status.
    pub statuses: Vec<(String, String)>,
    pub leader: Option<String>,
}

/// True when the charm could act and did: LXD's entries of ours are exactly what the live
/// relations ask for (less what others' entries hold), restricted as configured, and every
/// databag says exactly what LXD holds; every unit is active (the leader blocked when a
/// configured project is missing). False when it cannot act and every unit says so (blocked).
pub fn check_settled(s: &Settled) -> Result<bool, String> {
    if !s.can_act {
        return match s.statuses.iter().find(|(_, st)| st != "blocked") {
            Some((unit, st)) => Err(format!("{unit} is {st}, not blocked, though it cannot act")),
            None => Ok(false),
        };
    }
    let everything: BTreeSet<String> = s.asked.values().flatten().cloned().collect();
    let foreign: BTreeSet<String> =
        s.store.iter().filter(|e| owner(s.uuid, &e.name).is_none()).map(|e| e.fingerprint.clone()).collect();
    let held: BTreeSet<String> = owned(s.uuid, s.store).map(|e| e.fingerprint.clone()).collect();
    // An entry of ours that holds the charm's own credential (a requirer asked for it before
    // the credential was rotated to it) stays, asked for or not, and as it is: restricted, it
    // would no longer let the charm manage the trust store.
    let kept: BTreeSet<String> = held.intersection(s.protected).cloned().collect();
    let want: BTreeSet<String> = everything.difference(&foreign).chain(&kept).cloned().collect();
    let everything: BTreeSet<String> = everything.union(&kept).cloned().collect();
    if s.projects.exist() && held != want {
        return Err(format!(
            "LXD's entries of ours hold {}, the live relations ask for {}",
            short(&held),
            short(&want)
        ));
    }
    if !held.is_subset(&everything) {
        return Err(format!(
            "LXD's entries of ours hold {}, more than the live relations ask for ({})",
            short(&held),
            short(&everything)
        ));
    }
    let unconfigured = |e: &&TrustEntry| !kept.contains(&e.fingerprint) && !as_configured(e, s.projects);
    if let Some(e) = owned(s.uuid, s.store).find(unconfigured).filter(|_| s.projects.exist()) {
        return Err(format!("{:?} is restricted to {:?}, not as trust-projects says", e.name, e.projects));
    }
    let claimable = claimable(s.uuid, s.store, s.projects);
    for (whose, rel, bag) in s.bags {
        let fps: BTreeSet<String> =
            s.asked.get(rel).map(|a| a.intersection(&claimable).cloned().collect()).unwrap_or_default();
        check_bag(bag, s.nodes, &fps).map_err(|e| format!("{whose} on relation {rel}: {e}"))?;
    }
    // A missing project is refused to the leader when it tries to add or re-restrict an entry,
    // and only then; the others trust what LXD holds and say so.
    let in_store: BTreeSet<String> = s.store.iter().map(|e| e.fingerprint.clone()).collect();
    let refused =
        !s.projects.exist() && (!want.is_subset(&in_store) || owned(s.uuid, s.store).any(|e| unconfigured(&e)));
    for (unit, st) in &s.statuses {
        let expected = if refused && Some(unit) == s.leader.as_ref() { "blocked" } else { "active" };
        if st != expected {
            return Err(format!("{unit} is {st}, not {expected}"));
        }
    }
    Ok(true)
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
    for e in after.iter().filter(|e| before.iter().any(|b| b.fingerprint == e.fingerprint && b != *e)) {
        out.push(format!("~{} now {:?}", name_of(&e.fingerprint), e.projects));
    }
    out.join(", ")
}
