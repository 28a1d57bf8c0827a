//! Pure: from what was read and observed, the plan, who may write, what counts as held, which
//! members are published and the status. Unit-tested over plain data.

use super::Change;
use super::apply::ChangeKind;
use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::interfaces;
use crate::lxd::{Member, MemberStatus, ServerInfo, TrustEntry};
use crate::ownership::{Interface, Scope};
use crate::plan::{self, HeldElsewhere, Plan};
use crate::refusal::{Reason, RefusedCert};
use crate::requests::{MemberProblems, Protected, Request};
use crate::status::{self, InputProblem, Status, Summary};
use std::collections::BTreeSet;

pub use crate::access::{
    EXT_ACCESS_MANAGEMENT, EXT_CERTIFICATE_PROJECT, NEEDED_ENTITLEMENTS, TrustAccess, trust_access,
};

/// What the pass decided before touching LXD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The leader, unless it is leaving: the only unit that changes LXD.
    pub writer: bool,
    pub plan: Plan,
    /// `trust-projects`: what an entry is restricted to when its request names no projects, and
    /// the ceiling of what one may name.
    pub projects: Option<Vec<String>>,
    /// Why nothing may be added at all, for the status.
    pub refusal: Option<String>,
    pub held_elsewhere: HeldElsewhere,
    /// Requests for certificates held under another relation's entry that does not grant what
    /// they ask: not claimed for them, and they are told.
    pub held_by_other: Vec<RefusedCert>,
    /// Of those, how many the `adopt` action would take over: the status points to it then.
    pub adoptable: usize,
}

/// `protected`: certificates no requirer may have added or removed on its behalf (see
/// `requests::Protected`).
#[allow(clippy::too_many_arguments)]
pub fn decide(
    scope: &Scope,
    config: &Config,
    server: &ServerInfo,
    store: &[TrustEntry],
    requests: &[Request],
    protected: &Protected,
    leader: bool,
    leaving: bool,
) -> Decision {
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
    Decision {
        writer: leader && !leaving,
        plan,
        projects,
        refusal,
        held_elsewhere,
        adoptable,
        held_by_other: Vec::new(),
    }
}

/// The decision as far as the credential's rights allow: one that may not manage trust plans
/// nothing (every change would come back 403, which reads as "not trusted") and says what it
/// lacks instead, before any other refusal.
pub fn within(access: &TrustAccess, decision: Decision) -> Decision {
    match status::cannot_manage_trust(access) {
        Some(refusal) => Decision { plan: Plan::default(), refusal: Some(refusal), ..decision },
        None => decision,
    }
}

/// The decision with the requests it may not claim for their requirer (`plan::not_covered`),
/// judged on the plan as it stands once every refusal has trimmed it.
pub fn with_tenancy(
    scope: &Scope,
    config: &Config,
    store: &[TrustEntry],
    requests: &[Request],
    decision: Decision,
) -> Decision {
    let not_covered = plan::not_covered(scope, requests, store, &decision.plan, config.trust_projects.as_deref());
    let held_by_other = not_covered
        .into_iter()
        .map(|r| RefusedCert {
            owner: r.owner.clone(),
            fingerprint: r.cert.fingerprint.clone(),
            reason: Reason::HeldByAnotherApplication,
            not_before: None,
        })
        .collect();
    Decision { held_by_other, ..decision }
}

/// The fingerprints the pass may claim LXD holds: the store as read, with the changes LXD
/// confirmed, less certificates held only by someone else's entry that is not the grant
/// `trust-projects` asks for.
pub fn held_after(store: &[TrustEntry], changes: &[Change], elsewhere: &HeldElsewhere) -> BTreeSet<String> {
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

/// Whether requirers are told about `member`: it is `Online`, or it is reported `Offline` but
/// is the one that just answered every read. A busy or re-electing cluster can briefly report
/// every member offline; listing the one serving us keeps requirers from seeing an empty
/// cluster that is in fact up. Every other status is a state the operator or the cluster chose
/// and is not published even for the member answering: `Evacuated`, `Blocked`, `Broken`,
/// Incus 6.0.6+'s `Evacuating` and `Restoring` (`internal/server/db/node.go` in lxc/incus),
/// and whatever a later version adds.
pub fn is_published(member: &Member, answering: &Endpoint) -> bool {
    match member.status {
        MemberStatus::Online => true,
        MemberStatus::Offline => Endpoint::parse(&member.url).is_ok_and(|e| &e == answering),
        _ => false,
    }
}

/// What the pass ends with, once LXD was observed.
pub struct Outcome<'a> {
    pub decision: &'a Decision,
    pub members: &'a [Member],
    pub published: usize,
    pub requests: &'a [Request],
    pub problems: &'a [MemberProblems],
    pub held: &'a BTreeSet<String>,
    pub changes: &'a [Change],
    pub deferred: usize,
    pub withheld: usize,
    pub refusal: Option<&'a str>,
    /// Every certificate refused for a requirer, as it is told.
    pub refused: &'a [RefusedCert],
    pub leaving: bool,
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
fn distinct(refused: &[RefusedCert], reason: Reason) -> usize {
    let pairs: BTreeSet<(Interface, u32, &str)> = refused
        .iter()
        .filter(|r| r.reason == reason)
        .map(|r| (r.owner.interface, r.owner.relation_id, r.fingerprint.as_str()))
        .collect();
    pairs.len()
}

pub fn status(o: &Outcome) -> Status {
    if o.leaving {
        return status::leaving();
    }
    let trusted: BTreeSet<&String> =
        o.requests.iter().map(|r| &r.cert.fingerprint).filter(|fp| o.held.contains(*fp)).collect();
    status::ready(&Summary {
        leader: o.decision.writer,
        online: o.published,
        members: o.members.len(),
        trusted: trusted.len(),
        input_problems: input_problems(o.problems),
        failed_changes: o.changes.iter().filter(|c| c.error.is_some()).count(),
        deferred: o.deferred,
        withheld: o.withheld,
        held_elsewhere: o.decision.held_elsewhere.count,
        held_by_other: distinct(o.refused, Reason::HeldByAnotherApplication),
        not_yet_valid: distinct(o.refused, Reason::NotYetValid),
        adoptable: o.decision.adoptable,
        refusal: o.refusal.map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
            decide(&scope(), &Config::default(), &server(&[]), &[], &[], &Protected::default(), leader, leaving).writer
        };
        assert!(d(true, false));
        assert!(!d(true, true) && !d(false, false) && !d(false, true));
    }

    #[test]
    fn without_certificate_project_trust_projects_adds_nothing_and_says_why() {
        let config = Config { trust_projects: Some(vec!["p".into()]), ..Default::default() };
        let reqs = [request("a")];
        let d = decide(&scope(), &config, &server(&[]), &[], &reqs, &Protected::default(), true, false);
        assert!(d.plan.add.is_empty());
        assert_eq!(d.refusal.as_deref(), Some(status::LACKS_CERTIFICATE_PROJECT));
        let d = decide(
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
        let d = decide(&scope(), &config, &server(&[EXT_CERTIFICATE_PROJECT]), &store, &[], &protected, true, false);
        assert!(d.plan.is_empty(), "{:?}", d.plan);
        let d = decide(
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
                decide(
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
            decide(&scope(), &config, &server(&[]), &store, &reqs, &Protected::default(), true, false),
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
