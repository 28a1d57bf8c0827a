//! Desired trust versus LXD's trust store → the changes to make. Pure.
//!
//! Rules that keep operators and tenants safe:
//! - only `client` entries whose name says this application owns them are ever removed or
//!   re-restricted; everything else in the store is left exactly as it is;
//! - a certificate already in the store counts as present, whoever added it;
//! - one owner per certificate: the entry's name records the relation that asked first, and
//!   that relation alone (any of its units, or its application databag) decides the entry's
//!   projects and its lifetime. The entry goes when its owner stops asking, even while another
//!   relation still asks; that other request is then new, and the next full pass adds it under
//!   its own name (never in the same pass: a withdrawal, after a key compromise say, takes
//!   effect at once, and the other grant is a new, visible change);
//! - a relation asking for a certificate held under another relation's entry changes nothing
//!   about it, and is claimed trusted there only when that grant covers what it asked
//!   (`not_covered`).
//!
//! Restrictions are per certificate: the projects its request carries (an `lxd-https`
//! requirer's, already within `trust-projects`), or else `trust-projects` itself. A new entry
//! is named after the first request for it, in relation order.

use crate::cluster::{TrustEntry, TrustKind};
use crate::ownership::{Owner, Scope};
use crate::requests::Request;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub fingerprint: String,
    pub name: String,
    pub(crate) der: Vec<u8>,
    pub owner: Owner,
    /// `None`: unrestricted; `Some(list)`: restricted to `list`.
    pub(crate) projects: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remove {
    pub fingerprint: String,
    pub name: String,
    pub owner: Owner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restrict {
    pub fingerprint: String,
    pub(crate) owner: Owner,
    pub projects: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub add: Vec<Add>,
    pub remove: Vec<Remove>,
    pub restrict: Vec<Restrict>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty() && self.restrict.is_empty()
    }
}

/// `projects` is `trust-projects`: what a certificate whose request names no projects is
/// restricted to (`None`: unrestricted).
pub fn plan(scope: &Scope, requests: &[Request], store: &[TrustEntry], projects: Option<&[String]>) -> Plan {
    let by_fp: BTreeMap<&str, &TrustEntry> = store.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    let first = desired(requests, projects);
    let asking = by_fingerprint(requests);
    let mut plan = Plan::default();

    // Requests arrive ordered by relation and unit, so the first requester names the entry.
    let mut adding = BTreeSet::new();
    for req in requests {
        let fp = req.cert.fingerprint.as_str();
        if by_fp.contains_key(fp) || !adding.insert(fp) {
            continue;
        }
        plan.add.push(Add {
            fingerprint: fp.to_string(),
            name: scope.entry_name(&req.owner),
            der: req.cert.der.clone(),
            owner: req.owner.clone(),
            projects: first.get(fp).cloned().flatten(),
        });
    }

    for entry in store.iter().filter(|e| e.kind == TrustKind::Client) {
        let Some(owner) = scope.owner_of(&entry.name) else { continue };
        let asked = asking.get(entry.fingerprint.as_str()).map_or(&[][..], Vec::as_slice);
        match owners_want(asked, &owner, projects) {
            None => {
                plan.remove.push(Remove { fingerprint: entry.fingerprint.clone(), name: entry.name.clone(), owner })
            }
            Some(want) if !restrictions_match(entry, want.as_deref()) => {
                plan.restrict.push(Restrict { fingerprint: entry.fingerprint.clone(), owner, projects: want })
            }
            Some(_) => {}
        }
    }
    plan
}

/// Whether two requesters are one tenant: the same relation (an application's units and its
/// application databag share one grant).
pub fn same_relation(a: &Owner, b: &Owner) -> bool {
    a.interface == b.interface && a.relation_id == b.relation_id
}

/// Every request, by the fingerprint it asks for: an entry finds who asks for it at once, not by
/// scanning every request (10,000 units would make that quadratic).
fn by_fingerprint(requests: &[Request]) -> BTreeMap<&str, Vec<&Request>> {
    let mut out: BTreeMap<&str, Vec<&Request>> = BTreeMap::new();
    for r in requests {
        out.entry(r.cert.fingerprint.as_str()).or_default().push(r);
    }
    out
}

/// What the relation owning an entry asks for its certificate (`asked`: every request for it,
/// in order): the restriction of its first request for it; `None` when it no longer asks,
/// whoever else does.
fn owners_want(asked: &[&Request], owner: &Owner, projects: Option<&[String]>) -> Option<Option<Vec<String>>> {
    asked.iter().find(|r| same_relation(&r.owner, owner)).map(|r| wanted(r, projects))
}

/// The restriction one request asks for: its own projects, or `trust-projects`.
fn wanted(req: &Request, projects: Option<&[String]>) -> Option<Vec<String>> {
    req.projects.clone().or_else(|| projects.map(<[String]>::to_vec))
}

/// Every requested fingerprint with the restriction it should carry: its first request's
/// projects, or `trust-projects`.
pub(crate) fn desired<'r>(
    requests: &'r [Request],
    projects: Option<&[String]>,
) -> BTreeMap<&'r str, Option<Vec<String>>> {
    let mut out = BTreeMap::new();
    for req in requests {
        out.entry(req.cert.fingerprint.as_str()).or_insert_with(|| wanted(req, projects));
    }
    out
}

/// The requests this pass must not claim as trusted for their requirer: the certificate is held
/// (or about to be) under an entry of ours that another relation owns, and that entry's grant
/// does not cover what this request asks. An unrestricted grant covers any request; one
/// restricted to P covers a request restricted to projects all within P, never one that would
/// be unrestricted. The entry itself stays as its owner wants it.
pub(crate) fn not_covered<'r>(
    scope: &Scope,
    requests: &'r [Request],
    store: &[TrustEntry],
    plan: &Plan,
    projects: Option<&[String]>,
) -> Vec<&'r Request> {
    let grants = grants_after(scope, store, plan);
    requests
        .iter()
        .filter(|req| {
            grants.get(req.cert.fingerprint.as_str()).is_some_and(|(owner, grant)| {
                !same_relation(owner, &req.owner) && !covers(grant.as_deref(), wanted(req, projects).as_deref())
            })
        })
        .collect()
}

/// Each certificate under an entry of ours: its owner and grant (`None`: unrestricted) once
/// `plan` is applied. An entry planned for removal still counts until LXD confirms the removal:
/// what is claimed afterwards follows what LXD holds (`decide::held_after`).
fn grants_after<'a>(
    scope: &Scope,
    store: &'a [TrustEntry],
    plan: &'a Plan,
) -> BTreeMap<&'a str, (Owner, Option<Vec<String>>)> {
    let mut grants = BTreeMap::new();
    for entry in store.iter().filter(|e| e.kind == TrustKind::Client) {
        if let Some(owner) = scope.owner_of(&entry.name) {
            grants.insert(entry.fingerprint.as_str(), (owner, entry.restricted.then(|| entry.projects.clone())));
        }
    }
    for r in &plan.restrict {
        if let Some(slot) = grants.get_mut(r.fingerprint.as_str()) {
            slot.1 = r.projects.clone();
        }
    }
    for a in &plan.add {
        grants.insert(a.fingerprint.as_str(), (a.owner.clone(), a.projects.clone()));
    }
    grants
}

/// Whether a grant (`None`: unrestricted) gives at least what `want` asks.
fn covers(grant: Option<&[String]>, want: Option<&[String]>) -> bool {
    match (grant, want) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(have), Some(want)) => want.iter().all(|p| have.contains(p)),
    }
}

/// Requested certificates LXD trusts only under entries this application does not own
/// (an operator's, another integrator's). Such an entry is left alone; when the certificate
/// should be restricted (`trust-projects`, or the projects its requirer asked), it is a grant
/// as asked only when it is restricted to exactly those projects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HeldElsewhere {
    pub(crate) count: usize,
    /// Fingerprints whose foreign entry grants something other than the restriction wanted.
    pub(crate) not_as_configured: BTreeSet<String>,
}

pub(crate) fn held_elsewhere(
    scope: &Scope,
    requests: &[Request],
    store: &[TrustEntry],
    projects: Option<&[String]>,
) -> HeldElsewhere {
    let by_fp: BTreeMap<&str, &TrustEntry> = store.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    let mut out = HeldElsewhere::default();
    for (fp, want) in desired(requests, projects) {
        let Some(entry) = by_fp.get(fp).filter(|e| scope.owner_of(&e.name).is_none()) else { continue };
        out.count += 1;
        if want.is_some() && !restrictions_match(entry, want.as_deref()) {
            out.not_as_configured.insert(fp.to_string());
        }
    }
    out
}

fn restrictions_match(entry: &TrustEntry, projects: Option<&[String]>) -> bool {
    match projects {
        None => !entry.restricted,
        Some(want) => {
            let have: BTreeSet<&String> = entry.projects.iter().collect();
            let want: BTreeSet<&String> = want.iter().collect();
            entry.restricted && have == want
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{self, test_certs};
    use crate::config::parse_projects;
    use crate::ownership::Interface;

    fn scope() -> Scope {
        Scope { model_uuid: "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc".into(), app: "lxd-integrator".into() }
    }

    fn requests(units: &[(&str, &[&str])]) -> Vec<Request> {
        crate::requests::fixtures::requests_of(1, units)
    }

    fn entry(name: &str, fp: &str) -> TrustEntry {
        TrustEntry {
            name: name.into(),
            fingerprint: fp.into(),
            kind: "client".into(),
            restricted: false,
            projects: vec![],
        }
    }

    fn owner(unit: u32) -> Owner {
        Owner { relation_id: 1, remote_app: "req".into(), unit: Some(unit), interface: Interface::Lxd }
    }

    #[test]
    fn missing_certificates_are_added_under_an_owned_name() {
        let a = test_certs::self_signed("a");
        let reqs = requests(&[("req/0", &[&a.cert_pem])]);
        let plan = plan(&scope(), &reqs, &[], None);
        assert_eq!(plan.add.len(), 1);
        assert_eq!(plan.add[0].name, scope().entry_name(&owner(0)));
        assert_eq!(plan.add[0].der, a.der);
        assert!(plan.remove.is_empty() && plan.restrict.is_empty());
    }

    #[test]
    fn a_steady_state_plans_nothing() {
        let a = test_certs::self_signed("a");
        let reqs = requests(&[("req/0", &[&a.cert_pem])]);
        let store = [entry(&scope().entry_name(&owner(0)), &certs::fingerprint(&a.der))];
        assert!(plan(&scope(), &reqs, &store, None).is_empty());
    }

    #[test]
    fn rotation_removes_the_old_owned_entry_and_adds_the_new() {
        let old = test_certs::self_signed("old");
        let new = test_certs::self_signed("new");
        let reqs = requests(&[("req/0", &[&new.cert_pem])]);
        let store = [entry(&scope().entry_name(&owner(0)), &certs::fingerprint(&old.der))];
        let plan = plan(&scope(), &reqs, &store, None);
        assert_eq!(plan.add.iter().map(|a| a.fingerprint.clone()).collect::<Vec<_>>(), [certs::fingerprint(&new.der)]);
        assert_eq!(
            plan.remove.iter().map(|r| r.fingerprint.clone()).collect::<Vec<_>>(),
            [certs::fingerprint(&old.der)]
        );
    }

    #[test]
    fn entries_we_do_not_own_are_never_touched() {
        let other_integrator = Scope { app: "other".into(), ..scope() };
        let store = [
            entry("admin", "aa"),
            entry(&other_integrator.entry_name(&owner(0)), "bb"),
            TrustEntry { kind: "server".into(), ..entry(&scope().entry_name(&owner(0)), "cc") },
            entry("juju-relation-req/0", "dd"),
            // A `metrics` certificate (LXD and Incus), even under one of our names.
            TrustEntry { kind: "metrics".into(), ..entry(&scope().entry_name(&owner(1)), "ee") },
        ];
        let p = plan(&scope(), &[], &store, Some(&["default".to_string()]));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn a_certificate_someone_else_added_counts_as_present() {
        let a = test_certs::self_signed("a");
        let reqs = requests(&[("req/0", &[&a.cert_pem])]);
        let store = [entry("added-by-hand", &certs::fingerprint(&a.der))];
        assert!(plan(&scope(), &reqs, &store, None).is_empty());
    }

    #[test]
    fn a_certificate_two_units_send_is_added_once_and_kept_while_either_wants_it() {
        let shared = test_certs::self_signed("shared");
        let both = requests(&[("req/0", &[&shared.cert_pem]), ("req/1", &[&shared.cert_pem])]);
        let p = plan(&scope(), &both, &[], None);
        assert_eq!(p.add.len(), 1);
        assert_eq!(p.add[0].owner, owner(0));
        // req/0 departs; the entry named for it stays because req/1 still wants it.
        let store = [entry(&scope().entry_name(&owner(0)), &certs::fingerprint(&shared.der))];
        let only_second = requests(&[("req/1", &[&shared.cert_pem])]);
        assert!(plan(&scope(), &only_second, &store, None).is_empty());
    }

    #[test]
    fn orphans_of_a_lost_unit_or_relation_are_removed() {
        let store = [
            entry(&scope().entry_name(&owner(9)), "11"),
            entry(
                &scope().entry_name(&Owner {
                    relation_id: 42,
                    remote_app: "gone".into(),
                    unit: None,
                    interface: Interface::LxdHttps,
                }),
                "22",
            ),
        ];
        let p = plan(&scope(), &[], &store, None);
        assert_eq!(p.remove.iter().map(|r| r.fingerprint.as_str()).collect::<Vec<_>>(), ["11", "22"]);
    }

    #[test]
    fn restrictions_converge_in_both_directions() {
        let a = test_certs::self_signed("a");
        let reqs = requests(&[("req/0", &[&a.cert_pem])]);
        let fp = certs::fingerprint(&a.der);
        let name = scope().entry_name(&owner(0));
        let open = entry(&name, &fp);
        let projects = vec!["p1".to_string(), "p2".to_string()];
        let p = plan(&scope(), &reqs, std::slice::from_ref(&open), Some(&projects));
        assert_eq!(
            p.restrict,
            [Restrict { fingerprint: fp.clone(), owner: owner(0), projects: Some(projects.clone()) }]
        );
        let restricted = TrustEntry { restricted: true, projects: vec!["p2".into(), "p1".into()], ..open };
        assert!(
            plan(&scope(), &reqs, std::slice::from_ref(&restricted), Some(&projects)).is_empty(),
            "order does not matter"
        );
        let p = plan(&scope(), &reqs, &[restricted], None);
        assert_eq!(p.restrict, [Restrict { fingerprint: fp, owner: owner(0), projects: None }]);
    }

    fn asking(reqs: Vec<Request>, projects: &[&str]) -> Vec<Request> {
        let list: Vec<String> = projects.iter().map(|p| p.to_string()).collect();
        reqs.into_iter().map(|r| Request { projects: Some(list.clone()), ..r }).collect()
    }

    #[test]
    fn a_request_with_its_own_projects_is_restricted_to_them_beside_others_under_trust_projects() {
        let (a, b) = (test_certs::self_signed("a"), test_certs::self_signed("b"));
        let mut reqs = asking(requests(&[("req/0", &[&a.cert_pem])]), &["sandboxes"]);
        reqs.extend(requests(&[("req/1", &[&b.cert_pem])]));
        let ceiling = vec!["default".to_string(), "sandboxes".to_string()];
        let p = plan(&scope(), &reqs, &[], Some(&ceiling));
        let got: Vec<Option<Vec<String>>> = p.add.iter().map(|a| a.projects.clone()).collect();
        assert_eq!(got, [Some(vec!["sandboxes".to_string()]), Some(ceiling.clone())]);
        let p = plan(&scope(), &reqs, &[], None);
        assert_eq!(
            p.add.iter().map(|a| a.projects.clone()).collect::<Vec<_>>(),
            [Some(vec!["sandboxes".to_string()]), None]
        );
    }

    #[test]
    fn a_requirers_projects_converge_both_ways() {
        let a = test_certs::self_signed("a");
        let fp = certs::fingerprint(&a.der);
        let plain = requests(&[("req/0", &[&a.cert_pem])]);
        let restricted =
            TrustEntry { restricted: true, projects: vec!["p1".into()], ..entry(&scope().entry_name(&owner(0)), &fp) };
        // Asked for p2 now: re-restricted.
        let p = plan(&scope(), &asking(plain.clone(), &["p2"]), std::slice::from_ref(&restricted), None);
        assert_eq!(
            p.restrict,
            [Restrict { fingerprint: fp.clone(), owner: owner(0), projects: Some(vec!["p2".into()]) }]
        );
        // Stopped asking: what trust-projects says, here unrestricted.
        let p = plan(&scope(), &plain, std::slice::from_ref(&restricted), None);
        assert_eq!(p.restrict, [Restrict { fingerprint: fp.clone(), owner: owner(0), projects: None }]);
        // As asked: nothing to do.
        assert!(plan(&scope(), &asking(plain, &["p1"]), &[restricted], None).is_empty());
    }

    #[test]
    fn the_first_request_for_a_certificate_sets_its_restriction() {
        let a = test_certs::self_signed("a");
        let mut reqs = asking(requests(&[("req/0", &[&a.cert_pem])]), &["p1"]);
        reqs.extend(requests(&[("req/1", &[&a.cert_pem])]));
        let p = plan(&scope(), &reqs, &[], None);
        assert_eq!((p.add.len(), p.add[0].projects.clone()), (1, Some(vec!["p1".to_string()])));
    }

    #[test]
    fn a_foreign_entry_counts_as_held_only_when_it_grants_what_the_request_asks() {
        let a = test_certs::self_signed("a");
        let fp = certs::fingerprint(&a.der);
        let reqs = asking(requests(&[("req/0", &[&a.cert_pem])]), &["p1"]);
        let open = entry("operator", &fp);
        assert_eq!(
            held_elsewhere(&scope(), &reqs, std::slice::from_ref(&open), None).not_as_configured,
            [fp.clone()].into()
        );
        let as_asked = TrustEntry { restricted: true, projects: vec!["p1".into()], ..open };
        assert!(held_elsewhere(&scope(), &reqs, &[as_asked], None).not_as_configured.is_empty());
    }

    #[test]
    fn projects_option_parsing() {
        assert_eq!(parse_projects(""), None);
        assert_eq!(parse_projects(" , "), None);
        assert_eq!(parse_projects("a, b,a,,c "), Some(vec!["a".into(), "b".into(), "c".into()]));
    }
}
