//! Pure: from what the pass read (`Inputs`) and observed (`Observed`), the one `Decision`:
//! what to change, who may change it, what requirers and Juju are told, and the status as far
//! as it does not depend on how the changes go. Once they went, `outcome` folds LXD's answers
//! in and `status` completes the status. Unit-tested over plain data.

use super::apply::{Applied, Change, ChangeKind};
use super::inputs::Inputs;
use super::observe::Observed;
use crate::certs;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::endpoint::Endpoint;
use crate::interfaces;
use crate::lxd::{Member, MemberStatus, ServerInfo, TrustEntry};
use crate::ownership::{Interface, Owner, Scope};
use crate::plan::{self, HeldElsewhere, Plan};
use crate::refusal::{Reason, RefusedCert};
use crate::relation::{OnlineMembers, ServerPin};
use crate::requests::{Bounds, MemberProblems, Protected, Request, Requests};
use crate::status::{self, InputProblem, Status, Summary};
use std::collections::BTreeSet;

use crate::access::{EXT_CERTIFICATE_PROJECT, TrustAccess, trust_access};

/// What the pass decided, from what it read and observed alone.
#[derive(Debug)]
pub(crate) struct Decision {
    /// Whether the credential may manage LXD's trust store.
    pub(crate) access: TrustAccess,
    pub(crate) trust: Trust,
    /// What requirers asked, settled against `trust-projects` and what LXD can restrict.
    pub(crate) asked: Requests,
    pub(crate) told: Told,
    pub(crate) basis: StatusBasis,
}

/// The trust store as it should be, and what may be claimed of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Trust {
    /// The leader, unless it is leaving: the only unit that changes LXD.
    pub(crate) writer: bool,
    pub(crate) plan: Plan,
    /// `trust-projects`: what an entry is restricted to when its request names no projects, and
    /// the ceiling of what one may name.
    pub(crate) projects: Option<Vec<String>>,
    /// Why nothing may be added at all, for the status.
    pub(crate) refusal: Option<String>,
    pub(crate) held_elsewhere: HeldElsewhere,
    /// Requests for certificates held under another relation's entry that does not grant what
    /// they ask: not claimed for them, and they are told.
    pub(crate) held_by_other: Vec<RefusedCert>,
    /// Of those, how many the `adopt` action would take over: the status points to it then.
    pub(crate) adoptable: usize,
}

/// What requirers and Juju are told that does not depend on LXD's answers to the changes.
#[derive(Debug)]
pub(crate) struct Told {
    /// The members requirers are told about, as (name, URL).
    pub(crate) online: OnlineMembers,
    /// The requests that may be claimed trusted for their requirer: all but those held for
    /// another.
    pub(crate) claimed: Vec<Request>,
    /// The pin this pass connected with: requirers authenticate LXD with it.
    pub(crate) pin: Option<ServerPin>,
    /// What LXD presents, when it said.
    pub(crate) presented: Option<ServerPin>,
    /// Every member's URL, for the next hook to fail over to.
    pub(crate) member_urls: Vec<String>,
    /// LXD's version, for `juju status`.
    pub(crate) version: String,
}

/// The status as far as it is known before LXD is changed: `status` completes it.
#[derive(Debug)]
pub(crate) enum StatusBasis {
    Leaving,
    /// Its counts of what apply and publish do (`trusted`, `failed_changes`, `deferred`,
    /// `withheld`) are left at zero, and its `refusal` is the decision's alone.
    Ready(Summary),
}

/// LXD's answers to the changes, folded into the decision: what the pass may claim.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Fingerprints LXD holds after the pass, as far as the pass may claim them.
    pub(crate) held: BTreeSet<String>,
    /// Every certificate refused for the requirer that asked, as each is told (`refused`): the
    /// decision's, and adds LXD answered with an error.
    pub(crate) refused: Vec<RefusedCert>,
    /// Why nothing may be added: the decision's reason, or a configured project LXD lacks.
    pub(crate) refusal: Option<String>,
    /// Changes LXD refused (details in the log).
    pub(crate) failed: usize,
    /// Planned changes left for a later hook (deadline or leadership).
    pub(crate) deferred: usize,
}

/// The pass's decision: run once, on what it read and observed.
pub(crate) fn decide(inputs: &Inputs, observed: &Observed) -> Decision {
    let asked = asked(inputs, Some(&observed.server));
    let own = own_fingerprint(&inputs.creds);
    let access = trust_access(&observed.server, observed.identity.as_ref(), &observed.store, &own);
    let (scope, config, store) = (&inputs.scope, &inputs.config, observed.store.as_slice());
    let leader = inputs.relations.leader;
    let planned =
        trust(scope, config, &observed.server, store, &asked.requests, &inputs.protected, leader, inputs.leaving);
    let trust = with_tenancy(scope, config, store, &asked.requests, within(&access, planned));
    let told = told(&inputs.creds, observed, &asked.requests, &trust.held_by_other);
    let basis = basis(inputs.leaving, observed, &asked, &trust, &told);
    Decision { access, trust, asked, told, basis }
}

/// What requirers ask for on both endpoints, in relation order (the first request for a
/// certificate names its entry and sets its projects), and what was wrong with it. `server`
/// is what LXD said this pass, if it answered: an `lxd-https` requirer's projects can only be
/// granted where LXD can restrict an entry.
pub(crate) fn asked(inputs: &Inputs, server: Option<&ServerInfo>) -> Requests {
    let bounds = Bounds {
        ceiling: inputs.config.trust_projects.as_deref(),
        cannot_restrict: server.is_some_and(|s| !s.has_extension(EXT_CERTIFICATE_PROJECT)),
    };
    interfaces::settle(&inputs.relations.asked, &bounds)
}

/// The fingerprint of the credential's own client certificate (its first PEM block).
fn own_fingerprint(creds: &Credentials) -> String {
    certs::pem_blocks(&creds.tls.client_cert_pem)
        .ok()
        .and_then(|blocks| blocks.first().map(|b| certs::fingerprint(&b.der)))
        .unwrap_or_default()
}

/// `protected`: certificates no requirer may have added or removed on its behalf (see
/// `requests::Protected`).
#[allow(clippy::too_many_arguments)]
fn trust(
    scope: &Scope,
    config: &Config,
    server: &ServerInfo,
    store: &[TrustEntry],
    requests: &[Request],
    protected: &Protected,
    leader: bool,
    leaving: bool,
) -> Trust {
    let projects = config.trust_projects.clone();
    let mut plan = plan::plan(scope, requests, store, projects.as_deref());
    // Never asked for, yet never removed or re-restricted either, even under an entry of ours
    // (a requirer once asked for the certificate the credential was later rotated to):
    // removing or restricting the charm's own credential would lock it out of LXD.
    plan.remove.retain(|r| !protected.fingerprints.contains_key(&r.fingerprint));
    plan.restrict.retain(|r| !protected.fingerprints.contains_key(&r.fingerprint));
    let mut refusal = None;
    if projects.is_some() && !server.has_extension(EXT_CERTIFICATE_PROJECT) {
        // LXD 4.0 would store the certificate unrestricted: never grant more than asked.
        refusal = Some(status::LACKS_CERTIFICATE_PROJECT.to_string());
        plan.add.clear();
        plan.restrict.clear();
    }
    let held_elsewhere = plan::held_elsewhere(scope, requests, store, projects.as_deref());
    let adoptable = crate::adoption::adoptable(scope, requests, store);
    Trust { writer: leader && !leaving, plan, projects, refusal, held_elsewhere, adoptable, held_by_other: Vec::new() }
}

/// The decision as far as the credential's rights allow: one that may not manage trust plans
/// nothing (every change would come back 403, which reads as "not trusted") and says what it
/// lacks instead, before any other refusal.
fn within(access: &TrustAccess, trust: Trust) -> Trust {
    match status::cannot_manage_trust(access) {
        Some(refusal) => Trust { plan: Plan::default(), refusal: Some(refusal), ..trust },
        None => trust,
    }
}

/// The decision with the requests it may not claim for their requirer (`plan::not_covered`),
/// judged on the plan as it stands once every refusal has trimmed it.
fn with_tenancy(scope: &Scope, config: &Config, store: &[TrustEntry], requests: &[Request], trust: Trust) -> Trust {
    let not_covered = plan::not_covered(scope, requests, store, &trust.plan, config.trust_projects.as_deref());
    let held_by_other = not_covered.into_iter().map(|r| refused(r, Reason::HeldByAnotherApplication)).collect();
    Trust { held_by_other, ..trust }
}

fn refused(request: &Request, reason: Reason) -> RefusedCert {
    RefusedCert {
        owner: request.owner.clone(),
        fingerprint: request.cert.fingerprint.clone(),
        reason,
        not_before: None,
    }
}

/// What requirers and Juju are told before any change: the members, what may be claimed for
/// whom, the pin, what LXD presents, and what the unit remembers of LXD.
fn told(creds: &Credentials, observed: &Observed, requests: &[Request], held_by_other: &[RefusedCert]) -> Told {
    let members = &observed.members;
    let online =
        members.iter().filter(|m| is_published(m, &observed.endpoint)).map(|m| (m.name.clone(), m.url.clone()));
    let server = &observed.server;
    let version = if server.server_version.is_empty() { "unknown" } else { server.server_version.as_str() };
    Told {
        online: online.collect(),
        claimed: claimable(requests, held_by_other),
        pin: ServerPin::from_pinned(&creds.tls.server_cert_pem),
        presented: server.certificate.as_deref().map(ServerPin::of_der),
        member_urls: members.iter().map(|m| m.url.clone()).collect(),
        version: version.to_string(),
    }
}

/// The requests that may be claimed trusted for their requirer: all but those held for another.
fn claimable(requests: &[Request], held_by_other: &[RefusedCert]) -> Vec<Request> {
    let not: BTreeSet<(&Owner, &str)> = held_by_other.iter().map(|r| (&r.owner, r.fingerprint.as_str())).collect();
    requests.iter().filter(|r| !not.contains(&(&r.owner, r.cert.fingerprint.as_str()))).cloned().collect()
}

/// The status's words that no change can alter. Certificates refused for another holder or
/// for starting later are the intake's and the decision's alone: LXD's answers add only
/// `RejectedByLxd`, which the status counts as failed changes.
fn basis(leaving: bool, observed: &Observed, asked: &Requests, trust: &Trust, told: &Told) -> StatusBasis {
    if leaving {
        return StatusBasis::Leaving;
    }
    let refused = || asked.refused.iter().chain(&trust.held_by_other);
    StatusBasis::Ready(Summary {
        leader: trust.writer,
        online: told.online.len(),
        members: observed.members.len(),
        input_problems: input_problems(&asked.problems),
        held_elsewhere: trust.held_elsewhere.count,
        held_by_other: distinct(refused(), Reason::HeldByAnotherApplication),
        not_yet_valid: distinct(refused(), Reason::NotYetValid),
        adoptable: trust.adoptable,
        refusal: trust.refusal.clone(),
        ..Summary::default()
    })
}

/// LXD's answers to the changes folded into `decision`: what LXD holds as far as the pass may
/// claim it, and what requirers are refused. `store` is the trust store as observed.
pub(crate) fn outcome(decision: &Decision, store: &[TrustEntry], applied: &Applied) -> Outcome {
    let confirmed = applied.confirmed();
    let mut refused = decision.asked.refused.clone();
    refused.extend(decision.trust.held_by_other.iter().cloned());
    refused.extend(rejected(confirmed, &decision.asked.requests));
    Outcome {
        held: held_after(store, confirmed, &decision.trust.held_elsewhere),
        refused,
        refusal: decision.trust.refusal.clone().or_else(|| applied.unknown_project.clone()),
        failed: confirmed.iter().filter(|c| c.error.is_some()).count(),
        deferred: applied.deferred,
    }
}

/// Adds LXD answered with an error, refused to every relation that asked for the certificate.
fn rejected(confirmed: &[Change], requests: &[Request]) -> Vec<RefusedCert> {
    let failed: BTreeSet<&str> = confirmed
        .iter()
        .filter(|c| c.kind == ChangeKind::Add && c.error.is_some())
        .map(|c| c.fingerprint.as_str())
        .collect();
    requests
        .iter()
        .filter(|r| failed.contains(r.cert.fingerprint.as_str()))
        .map(|r| refused(r, Reason::RejectedByLxd))
        .collect()
}

/// The fingerprints the pass may claim LXD holds: the store as read, with the changes LXD
/// confirmed, less certificates held only by someone else's entry that is not the grant
/// `trust-projects` asks for.
fn held_after(store: &[TrustEntry], changes: &[Change], elsewhere: &HeldElsewhere) -> BTreeSet<String> {
    let mut held: BTreeSet<String> = store.iter().map(|e| e.fingerprint.clone()).collect();
    for c in changes.iter().filter(|c| c.error.is_none()) {
        match c.kind {
            ChangeKind::Add => held.insert(c.fingerprint.clone()),
            ChangeKind::Remove => held.remove(&c.fingerprint),
            ChangeKind::Restrict => false,
        };
    }
    for fp in &elsewhere.not_as_configured {
        held.remove(fp);
    }
    held
}

/// The status once the changes were made and the relation data written (`withheld`: items
/// that did not fit it).
pub(crate) fn status(decision: &Decision, outcome: &Outcome, withheld: usize) -> Status {
    let StatusBasis::Ready(basis) = &decision.basis else { return status::leaving() };
    let trusted: BTreeSet<&String> =
        decision.told.claimed.iter().map(|r| &r.cert.fingerprint).filter(|fp| outcome.held.contains(*fp)).collect();
    status::ready(&Summary {
        trusted: trusted.len(),
        failed_changes: outcome.failed,
        deferred: outcome.deferred,
        withheld,
        refusal: outcome.refusal.clone(),
        ..basis.clone()
    })
}

/// Whether requirers are told about `member`: it is `Online`, or it is reported `Offline` but
/// is the one that just answered every read. A busy or re-electing cluster can briefly report
/// every member offline; listing the one serving us keeps requirers from seeing an empty
/// cluster that is in fact up. Every other status is a state the operator or the cluster chose
/// and is not published even for the member answering: `Evacuated`, `Blocked`, `Broken`,
/// Incus 6.0.6+'s `Evacuating` and `Restoring` (`internal/server/db/node.go` in lxc/incus),
/// and whatever a later version adds.
pub(crate) fn is_published(member: &Member, answering: &Endpoint) -> bool {
    match member.status {
        MemberStatus::Online => true,
        MemberStatus::Offline => Endpoint::parse(&member.url).is_ok_and(|e| &e == answering),
        _ => false,
    }
}

/// Who sent what the status names, by kind, as the endpoints register them.
fn input_problems(problems: &[MemberProblems]) -> Vec<(InputProblem, Vec<String>)> {
    let mut out = Vec::new();
    for served in &interfaces::SERVED {
        for (keys, kind) in served.problems {
            let mut who: Vec<String> = problems
                .iter()
                .filter(|p| p.owner.interface == served.interface && keys.contains(&p.key))
                .map(|p| p.owner.member())
                .collect();
            who.dedup();
            out.push((*kind, who));
        }
    }
    out
}

/// How many (relation, certificate) pairs were refused for `reason`.
fn distinct<'a>(refused: impl Iterator<Item = &'a RefusedCert>, reason: Reason) -> usize {
    let pairs: BTreeSet<(Interface, u32, &str)> = refused
        .filter(|r| r.reason == reason)
        .map(|r| (r.owner.interface, r.owner.relation_id, r.fingerprint.as_str()))
        .collect();
    pairs.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{EXT_ACCESS_MANAGEMENT, NEEDED_ENTITLEMENTS};
    use crate::certs::{self, test_certs};
    use crate::lxd::{Identity, LxdError};
    use crate::ownership::Owner;

    fn scope() -> Scope {
        Scope { model_uuid: "m".into(), app: "lxd-integrator".into() }
    }

    fn request(cn: &str) -> Request {
        let made = test_certs::self_signed(cn);
        let cert = certs::parse_client_cert(&made.cert_pem, certs::now_unix()).expect("valid");
        Request {
            owner: Owner { relation_id: 1, remote_app: "req".into(), unit: Some(0), interface: Interface::Lxd },
            cert,
            projects: None,
        }
    }

    fn server(extensions: &[&str]) -> ServerInfo {
        ServerInfo { api_extensions: extensions.iter().map(|e| e.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn only_a_leader_that_stays_writes() {
        let d = |leader, leaving| {
            trust(&scope(), &Config::default(), &server(&[]), &[], &[], &Protected::default(), leader, leaving).writer
        };
        assert!(d(true, false));
        assert!(!d(true, true) && !d(false, false) && !d(false, true));
    }

    #[test]
    fn without_certificate_project_trust_projects_adds_nothing_and_says_why() {
        let config = Config { trust_projects: Some(vec!["p".into()]), ..Default::default() };
        let reqs = [request("a")];
        let d = trust(&scope(), &config, &server(&[]), &[], &reqs, &Protected::default(), true, false);
        assert!(d.plan.add.is_empty());
        assert_eq!(d.refusal.as_deref(), Some(status::LACKS_CERTIFICATE_PROJECT));
        let d = trust(
            &scope(),
            &config,
            &server(&[EXT_CERTIFICATE_PROJECT]),
            &[],
            &reqs,
            &Protected::default(),
            true,
            false,
        );
        assert_eq!((d.plan.add.len(), d.refusal), (1, None));
    }

    #[test]
    fn an_entry_of_ours_holding_the_charms_own_credential_is_never_removed_or_restricted() {
        let credential = test_certs::self_signed("integrator");
        let fp = certs::fingerprint(&credential.der);
        let owner = Owner { relation_id: 1, remote_app: "req".into(), unit: Some(0), interface: Default::default() };
        let store = [TrustEntry {
            name: scope().entry_name(&owner),
            fingerprint: fp.clone(),
            kind: "client".into(),
            ..Default::default()
        }];
        let protected = Protected { fingerprints: [(fp, "the integrator's own credential certificate")].into() };
        let config = Config { trust_projects: Some(vec!["p".into()]), ..Default::default() };
        let d = trust(&scope(), &config, &server(&[EXT_CERTIFICATE_PROJECT]), &store, &[], &protected, true, false);
        assert!(d.plan.is_empty(), "{:?}", d.plan);
        let d = trust(
            &scope(),
            &config,
            &server(&[EXT_CERTIFICATE_PROJECT]),
            &store,
            &[],
            &Protected::default(),
            true,
            false,
        );
        assert_eq!((d.plan.remove.len(), d.plan.restrict.len()), (1, 0), "any other certificate nobody asks for goes");
    }

    #[test]
    fn what_is_held_follows_what_lxd_confirmed() {
        let store = [
            TrustEntry { fingerprint: "kept".into(), ..Default::default() },
            TrustEntry { fingerprint: "gone".into(), ..Default::default() },
        ];
        let owner = Owner { relation_id: 1, remote_app: "req".into(), unit: Some(0), interface: Interface::Lxd };
        let change = |kind, fp: &str, error: Option<&str>| Change {
            kind,
            fingerprint: fp.into(),
            owner: owner.clone(),
            error: error.map(String::from),
            already_present: false,
        };
        let changes = [
            change(ChangeKind::Add, "new", None),
            change(ChangeKind::Add, "refused", Some("400")),
            change(ChangeKind::Remove, "gone", None),
        ];
        let elsewhere = HeldElsewhere { count: 1, not_as_configured: ["kept".to_string()].into() };
        assert_eq!(held_after(&store, &changes, &elsewhere), ["new".to_string()].into());
    }

    fn identity(kind: &str, fine_grained: Option<bool>, server_entitlements: &[&str]) -> Identity {
        let permissions = server_entitlements
            .iter()
            .map(|e| crate::lxd::Permission {
                entity_type: "server".into(),
                url: "/1.0".into(),
                entitlement: e.to_string(),
            })
            .collect();
        Identity { kind: kind.into(), name: "juju".into(), fine_grained, permissions }
    }

    fn access_of(id: Identity) -> TrustAccess {
        trust_access(&server(&[EXT_ACCESS_MANAGEMENT]), Some(&Ok(id)), &[], "ff")
    }

    #[test]
    fn with_access_management_the_current_identity_says_what_the_credential_may_do() {
        // Legacy certificates: unrestricted is an admin, restricted may change no trust.
        assert_eq!(access_of(identity("Client certificate (unrestricted)", None, &[])), TrustAccess::Full);
        assert_eq!(access_of(identity("Client certificate (restricted)", Some(false), &[])), TrustAccess::Restricted);
        // Fine-grained (5.21 has no `fine_grained` field: the type says it).
        for fine in [None, Some(true)] {
            let none = access_of(identity("Client certificate", fine, &[]));
            assert_eq!(none, TrustAccess::Missing(NEEDED_ENTITLEMENTS.to_vec()));
            let create_only = access_of(identity("Client certificate", fine, &["can_create_identities", "can_view"]));
            assert_eq!(create_only, TrustAccess::Missing(vec!["can_edit_identities", "can_delete_identities"]));
            assert_eq!(access_of(identity("Client certificate", fine, NEEDED_ENTITLEMENTS)), TrustAccess::Full);
            assert_eq!(access_of(identity("Client certificate", fine, &["permission_manager"])), TrustAccess::Full);
            assert_eq!(access_of(identity("OIDC client", fine, &["admin"])), TrustAccess::Full);
        }
        // The entitlement on something other than the server grants nothing server-wide.
        let mut on_project = identity("Client certificate", Some(true), &[]);
        on_project.permissions.push(crate::lxd::Permission {
            entity_type: "project".into(),
            url: "/1.0/projects/p".into(),
            entitlement: "admin".into(),
        });
        assert!(status::cannot_manage_trust(&access_of(on_project)).is_some());
        // A type this charm does not know, not marked fine-grained: LXD's answers will tell.
        assert!(matches!(access_of(identity("Quantum certificate", None, &[])), TrustAccess::Unknown(_)));
        let unreadable = Err(LxdError::Api {
            method: "GET".into(),
            path: "/1.0/auth/identities/current".into(),
            status: 500,
            message: "boom".into(),
        });
        assert!(matches!(
            trust_access(&server(&[EXT_ACCESS_MANAGEMENT]), Some(&unreadable), &[], "ff"),
            TrustAccess::Unknown(_)
        ));
    }

    #[test]
    fn without_access_management_the_credential_s_own_entry_says_it() {
        let own = |restricted| TrustEntry {
            fingerprint: "ff".into(),
            kind: "client".into(),
            restricted,
            ..Default::default()
        };
        let lxd50 = server(&[EXT_CERTIFICATE_PROJECT]);
        assert_eq!(trust_access(&lxd50, None, &[own(false)], "ff"), TrustAccess::Full);
        assert_eq!(trust_access(&lxd50, None, &[own(true)], "ff"), TrustAccess::Restricted);
        assert!(matches!(trust_access(&lxd50, None, &[own(true)], "ee"), TrustAccess::Unknown(_)), "not its entry");
    }

    #[test]
    fn a_credential_that_cannot_manage_trust_plans_nothing_and_says_what_it_lacks() {
        let reqs = [request("a")];
        let theirs = scope().entry_name(&Owner {
            relation_id: 9,
            remote_app: "gone".into(),
            unit: Some(0),
            interface: Default::default(),
        });
        let store =
            [TrustEntry { name: theirs, fingerprint: "aa".into(), kind: "client".into(), ..Default::default() }];
        // trust-projects on an LXD without certificate_project: the rights come first.
        let config = Config { trust_projects: Some(vec!["p".into()]), ..Default::default() };
        let d = |access: &TrustAccess| {
            within(
                access,
                trust(
                    &scope(),
                    &config,
                    &server(&[EXT_CERTIFICATE_PROJECT]),
                    &store,
                    &reqs,
                    &Protected::default(),
                    true,
                    false,
                ),
            )
        };
        let full = d(&TrustAccess::Full);
        assert_eq!((full.plan.add.len(), full.plan.remove.len(), full.refusal), (1, 1, None));
        let missing = d(&TrustAccess::Missing(vec!["can_create_identities"]));
        assert!(missing.plan.is_empty(), "{:?}", missing.plan);
        assert_eq!(missing.refusal.as_deref(), Some("LXD identity lacks can_create_identities on server; grant them"));
        assert!(missing.writer, "still the writer: it just has nothing it may do");
        let restricted = d(&TrustAccess::Restricted);
        assert!(restricted.plan.is_empty() && restricted.refusal.is_some_and(|r| r.contains("restricted")));
        let unknown = d(&TrustAccess::Unknown("?".into()));
        assert_eq!((unknown.plan.add.len(), unknown.refusal), (1, None), "unknown rights: try, and let LXD answer");
        let old = within(
            &TrustAccess::Restricted,
            trust(&scope(), &config, &server(&[]), &store, &reqs, &Protected::default(), true, false),
        );
        assert!(old.refusal.is_some_and(|r| r.contains("restricted")), "before the certificate_project refusal");
    }

    #[test]
    fn only_online_members_are_published_whatever_else_a_version_reports() {
        let answering = Endpoint::parse("https://10.0.0.1:8443").expect("url");
        let member = |status: &str| Member {
            name: "m".into(),
            url: "https://10.0.0.2:8443".into(),
            status: status.into(),
            message: String::new(),
        };
        assert!(is_published(&member("Online"), &answering));
        // Incus 6.0.6+ (`internal/server/db/node.go`), LXD's own, and a status yet to come.
        for status in [
            "Evacuating",
            "Restoring",
            "Evacuated",
            "Offline",
            "Blocked",
            "Broken",
            "Upgrading",
            "",
            "online",
            "ONLINE",
        ] {
            assert!(!is_published(&member(status), &answering), "{status:?}");
        }
    }

    #[test]
    fn the_answering_member_is_published_whatever_the_cluster_says() {
        let answering = Endpoint::parse("https://10.0.0.1:8443").expect("url");
        let member = |url: &str, status: &str| Member {
            name: "m".into(),
            url: url.into(),
            status: status.into(),
            message: String::new(),
        };
        assert!(is_published(&member("https://10.0.0.2:8443", "Online"), &answering));
        assert!(is_published(&member("https://10.0.0.1:8443", "Offline"), &answering));
        assert!(!is_published(&member("https://10.0.0.2:8443", "Offline"), &answering));
        assert!(!is_published(&member("https://10.0.0.2:8443", "Evacuated"), &answering));
        for chosen in ["Evacuated", "Evacuating", "Restoring", "Blocked", "Upgrading"] {
            assert!(!is_published(&member("https://10.0.0.1:8443", chosen), &answering), "{chosen} though answering");
        }
    }
}
