//! The `lxd-https` interface on the `https` endpoint: what requirers send and what we publish,
//! as charm-lxd serves it, so that charms written against charm-lxd work with any LXD this
//! charm can reach (docs/interface-lxd-https.md). Pure functions over databag maps.
//!
//! Read at the source (canonical/charm-lxd `src/charm.py`, `_on_https_relation_changed`): a
//! requirer writes `version: "1.0"`, `certificate` (one PEM) and optionally `projects`
//! (comma-separated; given, the entry is restricted to them) in its application databag, its
//! unit databag, or both; charm-lxd reads the application's first. It answers `version`,
//! `certificate`, `certificate_fingerprint` and `addresses` (comma-joined `host:port`, the
//! `https://` of each member URL stripped). Its requirers read the application databag first,
//! then the units' (charm-lxd `examples/https-client/src/https-client.py`,
//! canonical/charmed-openshell `charms/openshell-gateway-k8s/src/charm.py` `_lxd_connection`).
//!
//! Where this charm differs, on purpose: every databag with `version == "1.0"` is read, not
//! only the first (a unit-only requirer gets one entry per unit; one that writes both bags the
//! same certificate gets one entry); entries are named by `ownership`, which every LXD accepts;
//! `trust-projects` bounds what `projects` may ask; and nothing is published on a relation
//! before LXD trusts a certificate requested on it, with the server certificate the pass
//! connected with.

use crate::bag_stream::Value;
use crate::config;
use crate::endpoint::Endpoint;
use crate::limits::{PROJECTS_BYTES, PUBLISHED_BYTES};
use crate::ownership::{Interface, Owner};
use crate::refusal::{KEY_REFUSED, Reason, RefusedCert};
use crate::relation::{Databag, OnlineMembers, Payload, RelationView, ServerPin, bag_bytes};
use crate::requests::{
    self, MemberIntake, MemberProblems, MemberReader, Protected, Request, Requests, Taking, thousands,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The only version of the interface there is; a databag saying anything else is ignored.
pub const VERSION: &str = "1.0";
pub const KEY_VERSION: &str = "version";
pub const KEY_CERTIFICATE: &str = "certificate";
pub const KEY_PROJECTS: &str = "projects";
pub(crate) const KEY_CERTIFICATE_FP: &str = "certificate_fingerprint";
pub(crate) const KEY_ADDRESSES: &str = "addresses";
/// The LXD project a restricted requirer should use (lxd-integrator-k8s's key, which the
/// OpenShell gateway reads; `default` when absent).
pub(crate) const KEY_PROJECT: &str = "project";
/// Every key the provider writes; one it no longer wants is deleted, any other is left alone.
pub(crate) const PROVIDER_KEYS: [&str; 6] =
    [KEY_VERSION, KEY_CERTIFICATE, KEY_CERTIFICATE_FP, KEY_ADDRESSES, KEY_PROJECT, KEY_REFUSED];

pub use crate::requests::Bounds;

/// Reads every `https` relation: the application's databag first (as charm-lxd does, so a
/// requirer writing both bags has its entry named for the application), then each unit's.
/// What is wrong is reported per member and key, never quoted.
pub fn collect(relations: &[RelationView], now: i64, protected: &Protected, bounds: Bounds) -> Requests {
    let taking = Taking { now, protected: Arc::new(protected.clone()) };
    requests::collect_views(relations, Interface::LxdHttps, true, intake, &taking, &bounds)
}

/// One `https` member's databag, read as it arrives: the certificate through the shared reader
/// at once, the version and the projects kept until LXD has said what it can restrict.
#[derive(Debug)]
struct HttpsIntake {
    owner: Owner,
    taking: Taking,
    /// It wrote a key of the interface: a databag with none has not spoken it (yet).
    spoke: bool,
    /// `version`, and whether it is the one served.
    version: Option<bool>,
    /// `certificate` as read; `None` when absent or blank.
    certificate: Option<Outcome>,
    projects: Asked,
}

type Outcome = (Vec<Request>, Option<MemberProblems>, Vec<RefusedCert>);

/// Starts reading one `https` member's databag.
pub(crate) fn intake(owner: Owner, taking: &Taking) -> Box<dyn MemberIntake> {
    Box::new(HttpsIntake {
        owner,
        taking: taking.clone(),
        spoke: false,
        version: None,
        certificate: None,
        projects: Asked::Nothing,
    })
}

impl MemberIntake for HttpsIntake {
    fn key(&mut self, key: &str, value: Value<'_>) {
        match key {
            KEY_VERSION => self.version = Some(value == Value::Text(VERSION)),
            KEY_CERTIFICATE => self.certificate = self.certificate(value),
            KEY_PROJECTS => self.projects = Asked::of(value),
            _ => return,
        }
        self.spoke = true;
    }

    /// The version, the certificate as read, the projects.
    fn settle(&self, bounds: &Bounds) -> Requests {
        let mut out = Requests::default();
        if !self.spoke {
            return out;
        }
        let problem = |key: &'static str, why: &str| MemberProblems {
            owner: self.owner.clone(),
            key,
            whole: Some(why.to_string()),
            entries: Vec::new(),
        };
        // The value is never repeated: only whether it is the one version served.
        let unusable = match self.version {
            Some(true) => None,
            Some(false) => Some("not \"1.0\", the version served; this databag is ignored"),
            None => Some("missing; this databag is ignored"),
        };
        if let Some(why) = unusable {
            out.problems.push(problem(KEY_VERSION, why));
            return out;
        }
        let Some((taken, problems, refused)) = self.certificate.clone() else {
            out.problems.push(problem(KEY_CERTIFICATE, "missing"));
            return out;
        };
        let asked = projects_of(&self.projects, *bounds);
        if let Some(why) = asked.refusal() {
            out.problems.push(problem(KEY_PROJECTS, &why));
        }
        out.problems.extend(problems);
        out.refused.extend(refused);
        grant(asked, taken, &mut out);
        out
    }
}

impl HttpsIntake {
    /// `certificate`, read at once through the shared reader; `None` when blank.
    fn certificate(&self, value: Value<'_>) -> Option<Outcome> {
        let mut reader =
            MemberReader::new(self.owner.clone(), KEY_CERTIFICATE, self.taking.now, &self.taking.protected);
        match value {
            Value::Text(raw) if raw.trim().is_empty() => return None,
            Value::Text(raw) => reader.read_one(raw),
            Value::TooLarge(len) => reader.too_large(len),
        }
        Some(reader.finish())
    }
}

/// The requests `taken` from a certificate, with the projects granted; or, where none may be
/// granted, each refused.
fn grant(asked: Projects, taken: Vec<Request>, out: &mut Requests) {
    let granted = match asked.grant {
        Grant::AsConfigured => None,
        Grant::Projects(list) => Some(list),
        Grant::Nothing => {
            let reason =
                if asked.outside.is_empty() { Reason::ProjectsRefused } else { Reason::ProjectsOutsideCeiling };
            let refused = taken.into_iter().map(|r| RefusedCert {
                owner: r.owner,
                fingerprint: r.cert.fingerprint,
                reason,
                not_before: None,
            });
            return out.refused.extend(refused);
        }
    };
    out.requests.extend(taken.into_iter().map(|r| Request { projects: granted.clone(), ..r }));
}

/// A requirer's `projects` as kept while its databag is read: never more than
/// `limits::PROJECTS_BYTES`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    /// Absent, or only blanks.
    Nothing,
    /// Over `PROJECTS_BYTES`: its length.
    TooLarge(usize),
    Names(String),
}

impl Asked {
    fn of(value: Value<'_>) -> Asked {
        match value {
            Value::Text(raw) if raw.trim().is_empty() => Asked::Nothing,
            Value::Text(raw) if raw.len() <= PROJECTS_BYTES => Asked::Names(raw.to_string()),
            Value::Text(raw) => Asked::TooLarge(raw.len()),
            Value::TooLarge(len) => Asked::TooLarge(len),
        }
    }
}

/// What a requirer's `projects` comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// It asked for none: `trust-projects` decides, as for an `lxd` requirer.
    AsConfigured,
    /// Restricted to these (never empty), all within `trust-projects` when it is set.
    Projects(Vec<String>),
    /// It asked for projects and none may be granted: its certificate is not trusted at all,
    /// never trusted wider than asked.
    Nothing,
}

/// `projects` against `trust-projects`, with what was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projects {
    pub grant: Grant,
    /// Plain project names outside `trust-projects`: safe to repeat.
    pub outside: Vec<String>,
    /// Names that are not project names: counted, never shown (a value may hold anything).
    pub(crate) not_names: usize,
    /// The value as a whole was refused (too large, or naming nothing).
    pub(crate) whole: Option<String>,
}

/// Comma-separated, blanks around names ignored, duplicates folded, order kept (charm-lxd
/// splits on `,` after deleting spaces). A value that is only blanks counts as absent; one
/// that is not blank but names no project, or names only what may not be granted, grants
/// nothing.
pub fn projects(raw: Option<&str>, bounds: Bounds) -> Projects {
    projects_of(&raw.map_or(Asked::Nothing, |raw| Asked::of(Value::Text(raw))), bounds)
}

/// `projects` as kept while the databag was read.
fn projects_of(asked: &Asked, bounds: Bounds) -> Projects {
    let mut out = Projects { grant: Grant::AsConfigured, outside: Vec::new(), not_names: 0, whole: None };
    let raw = match asked {
        Asked::Nothing => return out,
        Asked::TooLarge(len) => {
            out.whole =
                Some(format!("too large ({} bytes; at most {} are read)", thousands(*len), thousands(PROJECTS_BYTES)));
            out.grant = Grant::Nothing;
            return out;
        }
        Asked::Names(raw) => raw,
    };
    let mut seen = BTreeSet::new();
    let mut granted = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty() && seen.insert(*n)) {
        if !config::plain_project_name(name) {
            out.not_names += 1;
        } else if bounds.ceiling.is_some_and(|c| !c.iter().any(|p| p == name)) {
            out.outside.push(name.to_string());
        } else {
            granted.push(name.to_string());
        }
    }
    if seen.is_empty() {
        out.whole = Some("names no project".into());
    } else if bounds.cannot_restrict {
        out.whole =
            Some("LXD lacks the certificate_project extension, so no entry can be restricted to projects".into());
        granted.clear();
    }
    out.grant = if granted.is_empty() { Grant::Nothing } else { Grant::Projects(granted) };
    out
}

impl Projects {
    /// What to tell the operator, or `None` when all that was asked is granted.
    pub fn refusal(&self) -> Option<String> {
        let mut parts = Vec::new();
        parts.extend(self.whole.clone());
        if !self.outside.is_empty() {
            let shown: Vec<&str> = self.outside.iter().take(PROJECTS_SHOWN).map(String::as_str).collect();
            let more = self.outside.len().saturating_sub(PROJECTS_SHOWN);
            let more = if more > 0 { format!(" and {} more", thousands(more)) } else { String::new() };
            parts.push(format!("{}{more} not in trust-projects, refused", shown.join(", ")));
        }
        if self.not_names > 0 {
            parts.push(format!(
                "{} name{} not a project name, refused (not shown)",
                thousands(self.not_names),
                if self.not_names == 1 { " is" } else { "s are" }
            ));
        }
        if parts.is_empty() {
            return None;
        }
        if self.grant == Grant::Nothing {
            parts.push("nothing left to grant, so the certificate is not trusted".into());
        }
        Some(parts.join("; "))
    }
}

/// Refused project names listed one by one in a log line before the rest are counted.
const PROJECTS_SHOWN: usize = 8;

/// Whether LXD holds a certificate requested on relation `relation_id`: only then is the
/// connection published there, so a requirer reading `addresses` may expect to be trusted.
pub(crate) fn any_trusted(relation_id: u32, requests: &[Request], held: &BTreeSet<String>) -> bool {
    requests.iter().any(|r| {
        r.owner.relation_id == relation_id
            && r.owner.interface == Interface::LxdHttps
            && held.contains(&r.cert.fingerprint)
    })
}

/// The project an `https` relation's requirer should use: the first project its first trusted
/// request is restricted to (the one it asked for, or the first of `trust-projects` in the
/// operator's order when it asked for none); `None` when its grant is unrestricted or nothing it
/// asked is trusted.
pub(crate) fn project(
    relation_id: u32,
    requests: &[Request],
    held: &BTreeSet<String>,
    ceiling: Option<&[String]>,
) -> Option<String> {
    let first = requests.iter().find(|r| {
        r.owner.relation_id == relation_id
            && r.owner.interface == Interface::LxdHttps
            && held.contains(&r.cert.fingerprint)
    })?;
    first.projects.as_deref().or(ceiling)?.first().cloned()
}

/// What one `https` relation is told.
#[derive(Debug, Clone, Copy, Default)]
pub struct Served<'a> {
    /// What LXD presents (`environment.certificate`), else the pin the pass connected with;
    /// `None` when the pass connected with no pin.
    pub certificate: Option<&'a ServerPin>,
    /// LXD holds a certificate requested on the relation.
    pub trusted: bool,
    pub project: Option<&'a str>,
    /// The `refused` value for the relation, if any.
    pub refused: Option<&'a str>,
}

/// The provider's databag for one `https` relation: the connection keys only when the pass
/// connected with a pin and LXD trusts a certificate requested there (else they are withdrawn),
/// and `refused` whenever something requested there was refused. `addresses` lists the members
/// as `host:port`, IPv6 in brackets; members past what fits `PUBLISHED_BYTES` are counted in
/// `withheld`.
pub fn payload(members: &OnlineMembers, served: Served) -> Payload {
    let mut bag = Databag::new();
    if let Some(refused) = served.refused {
        bag.insert(KEY_REFUSED.into(), refused.to_string());
    }
    let (Some(pin), true) = (served.certificate, served.trusted) else {
        return Payload { bag, withheld: 0 };
    };
    let addresses: Vec<String> =
        members.iter().filter_map(|(_, url)| Endpoint::parse(url).ok()).map(|e| e.authority()).collect();
    bag.insert(KEY_VERSION.into(), VERSION.into());
    bag.insert(KEY_CERTIFICATE.into(), pin.pem.clone());
    bag.insert(KEY_CERTIFICATE_FP.into(), pin.fingerprint.clone());
    if let Some(project) = served.project {
        bag.insert(KEY_PROJECT.into(), project.to_string());
    }
    let room = PUBLISHED_BYTES.saturating_sub(bag_bytes(&bag) + KEY_ADDRESSES.len());
    let mut joined = String::new();
    let mut listed = 0;
    for address in &addresses {
        let extra = address.len() + usize::from(!joined.is_empty());
        if joined.len() + extra > room {
            break;
        }
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(address);
        listed += 1;
    }
    if joined.is_empty() {
        let refused_only = bag.into_iter().filter(|(k, _)| k == KEY_REFUSED).collect();
        return Payload { bag: refused_only, withheld: addresses.len() };
    }
    bag.insert(KEY_ADDRESSES.into(), joined);
    Payload { bag, withheld: addresses.len() - listed }
}

#[cfg(test)]
mod tests;
