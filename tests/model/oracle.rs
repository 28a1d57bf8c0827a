//! What a correct charm must do, computed from the world's truth without the charm's code:
//! which certificates the requirers ask for, which of them LXD holds as configured, what a
//! published databag must say, who owns a trust entry. Shared by the in-memory model and the
//! soak; each world supplies its own identity and server certificates.
#![allow(dead_code)]

use crate::history::{Projects, Sent, Special};
use lxd_integrator::certs;
use lxd_integrator::lxd::{TrustEntry, TrustKind};
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
pub fn asked<'a>(members: impl IntoIterator<Item = (&'a str, &'a Sent)>, specials: &Specials, protected: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
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
    let number = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))).then(|| s.parse::<u32>().ok()).flatten();
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
    let nodes: Vec<serde_json::Value> = serde_json::from_str(bag.get("nodes").map_or("", String::as_str)).map_err(|e| format!("nodes: {e}"))?;
    let mut out = Published { nodes: BTreeSet::new(), node_fps: BTreeSet::new(), registered: BTreeSet::new() };
    let mut lists = BTreeSet::new();
    for n in &nodes {
        let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
        out.nodes.insert((s("name"), s("endpoint")));
        let fps: Vec<String> = n["trusted_certs_fp"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
        lists.insert(fps.clone());
        out.node_fps.extend(fps);
    }
    if lists.len() > 1 {
        return Err(format!("members list different fingerprints: {lists:?}"));
    }
    let pems: Vec<String> = serde_json::from_str(bag.get("registered_certificates").map_or("", String::as_str)).map_err(|e| format!("registered_certificates: {e}"))?;
    for pem in pems {
        let der = certs::pem_blocks(&pem).ok().and_then(|b| b.into_iter().next()).map(|b| b.der).ok_or("a registered certificate is not PEM")?;
        if certs::to_pem(&der) != pem {
            return Err("a registered certificate is not in canonical PEM".into());
        }
        out.registered.insert(certs::fingerprint(&der));
    }
    Ok(out)
}

/// Checks a databag against what it must say: exactly `nodes`, and exactly `fps` both as
/// `registered_certificates` and in every member's `trusted_certs_fp` (or none when no member
/// is published).
pub fn check_bag(bag: &BTreeMap<String, String>, nodes: &BTreeSet<(String, String)>, fps: &BTreeSet<String>) -> Result<(), String> {
    let p = published(bag)?;
    let node_fps = if nodes.is_empty() { BTreeSet::new() } else { fps.clone() };
    if &p.nodes != nodes || p.registered != *fps || p.node_fps != node_fps {
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
