//! Pure: from what was read and observed, the plan, who may write, what counts as held, which
//! members are published and the status. Unit-tested over plain data.

use super::Change;
use super::apply::ChangeKind;
use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::lxd::{Member, MemberStatus, ServerInfo, TrustEntry};
use crate::https;
use crate::ownership::{Interface, Scope};
use crate::relation::KEY_CLIENT_CERTS;
use crate::plan::{self, HeldElsewhere, Plan};
use crate::requests::{MemberProblems, Request};
use crate::status::{self, Status, Summary};
use std::collections::BTreeSet;

/// The LXD API extension that makes `restricted`/`projects` mean something.
pub const EXT_CERTIFICATE_PROJECT: &str = "certificate_project";

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
}

pub fn decide(scope: &Scope, config: &Config, server: &ServerInfo, store: &[TrustEntry], requests: &[Request], leader: bool, leaving: bool) -> Decision {
    let projects = config.trust_projects.clone();
    let mut plan = plan::plan(scope, requests, store, projects.as_deref());
    let mut refusal = None;
    if projects.is_some() && !server.api_extensions.iter().any(|e| e == EXT_CERTIFICATE_PROJECT) {
        // LXD 4.0 would store the certificate unrestricted: never grant more than asked.
        refusal = Some(status::LACKS_CERTIFICATE_PROJECT.to_string());
        plan.add.clear();
        plan.restrict.clear();
    }
    let held_elsewhere = plan::held_elsewhere(scope, requests, store, projects.as_deref());
    Decision { writer: leader && !leaving, plan, projects, refusal, held_elsewhere }
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

/// Whether requirers are told about `member`: it is online, or it is the one that just
/// answered every read. A busy or re-electing cluster can briefly report every member offline;
/// listing the one serving us keeps requirers from seeing an empty cluster that is in fact up.
pub fn is_published(member: &Member, answering: &Endpoint) -> bool {
    member.status == MemberStatus::Online || Endpoint::parse(&member.url).is_ok_and(|e| &e == answering)
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
    pub leaving: bool,
}

pub fn status(o: &Outcome) -> Status {
    if o.leaving {
        return status::leaving();
    }
    let from = |keys: &[&str], interface: Interface| {
        let mut who: Vec<String> = o.problems.iter().filter(|p| p.owner.interface == interface && keys.contains(&p.key)).map(|p| p.owner.member()).collect();
        who.dedup();
        who
    };
    let trusted: BTreeSet<&String> = o.requests.iter().map(|r| &r.cert.fingerprint).filter(|fp| o.held.contains(*fp)).collect();
    status::ready(&Summary {
        leader: o.decision.writer,
        online: o.published,
        members: o.members.len(),
        trusted: trusted.len(),
        bad_input_from: from(&[KEY_CLIENT_CERTS], Interface::Lxd),
        bad_https_from: from(&[https::KEY_VERSION, https::KEY_CERTIFICATE], Interface::LxdHttps),
        projects_refused_for: from(&[https::KEY_PROJECTS], Interface::LxdHttps),
        failed_changes: o.changes.iter().filter(|c| c.error.is_some()).count(),
        deferred: o.deferred,
        withheld: o.withheld,
        held_elsewhere: o.decision.held_elsewhere.count,
        refusal: o.refusal.map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{self, test_certs};
    use crate::ownership::Owner;

    fn scope() -> Scope {
        Scope { model_uuid: "m".into(), app: "lxd-integrator".into() }
    }

    fn request(cn: &str) -> Request {
        let made = test_certs::client(cn);
        let cert = certs::parse_client_cert(&made.cert_pem, certs::now_unix()).expect("valid");
        Request { owner: Owner { relation_id: 1, remote_app: "req".into(), unit: Some(0), interface: Interface::Lxd }, cert, projects: None }
    }

    fn server(extensions: &[&str]) -> ServerInfo {
        ServerInfo { api_extensions: extensions.iter().map(|e| e.to_string()).collect(), ..Default::default() }
    }

    #[test]
    fn only_a_leader_that_stays_writes() {
        let d = |leader, leaving| decide(&scope(), &Config::default(), &server(&[]), &[], &[], leader, leaving).writer;
        assert!(d(true, false));
        assert!(!d(true, true) && !d(false, false) && !d(false, true));
    }

    #[test]
    fn without_certificate_project_trust_projects_adds_nothing_and_says_why() {
        let config = Config { trust_projects: Some(vec!["p".into()]), ..Default::default() };
        let reqs = [request("a")];
        let d = decide(&scope(), &config, &server(&[]), &[], &reqs, true, false);
        assert!(d.plan.add.is_empty());
        assert_eq!(d.refusal.as_deref(), Some(status::LACKS_CERTIFICATE_PROJECT));
        let d = decide(&scope(), &config, &server(&[EXT_CERTIFICATE_PROJECT]), &[], &reqs, true, false);
        assert_eq!((d.plan.add.len(), d.refusal), (1, None));
    }

    #[test]
    fn what_is_held_follows_what_lxd_confirmed() {
        let store = [TrustEntry { fingerprint: "kept".into(), ..Default::default() }, TrustEntry { fingerprint: "gone".into(), ..Default::default() }];
        let owner = Owner { relation_id: 1, remote_app: "req".into(), unit: Some(0), interface: Interface::Lxd };
        let change = |kind, fp: &str, error: Option<&str>| Change { kind, fingerprint: fp.into(), owner: owner.clone(), error: error.map(String::from), already_present: false };
        let changes = [change(ChangeKind::Add, "new", None), change(ChangeKind::Add, "refused", Some("400")), change(ChangeKind::Remove, "gone", None)];
        let elsewhere = HeldElsewhere { count: 1, not_as_configured: ["kept".to_string()].into() };
        assert_eq!(held_after(&store, &changes, &elsewhere), ["new".to_string()].into());
    }

    #[test]
    fn the_answering_member_is_published_whatever_the_cluster_says() {
        let answering = Endpoint::parse("https://10.0.0.1:8443").expect("url");
        let member = |url: &str, status: &str| Member { name: "m".into(), url: url.into(), status: status.into(), message: String::new() };
        assert!(is_published(&member("https://10.0.0.2:8443", "Online"), &answering));
        assert!(is_published(&member("https://10.0.0.1:8443", "Offline"), &answering));
        assert!(!is_published(&member("https://10.0.0.2:8443", "Offline"), &answering));
        assert!(!is_published(&member("https://10.0.0.2:8443", "Evacuated"), &answering));
    }
}
