//! What a history is made of: Juju events and changes to the world, as small values that
//! shrink well and read as a scenario. Shared by the in-memory model (`tests/model.rs`) and
//! the soak against real LXD (`tests/soak/main.rs`).
//!
//! A step names what it acts on by position (the second live integrator unit, the first live
//! relation), taken modulo how many there are when it runs: any subsequence of a history is
//! itself a history, which is what lets proptest shrink one to the few steps that matter. A
//! step that finds nothing to act on (remove a unit when one is left, send from a requirer
//! with no units) does nothing.
#![allow(dead_code)]

use crate::scenario::{POOL, POOL_SIZE, Value};
use crate::strategies::small_value;
use proptest::prelude::*;
use std::fmt;

/// Requirer applications, each related at most once at a time: `req0`, `req1`, `req2` on
/// `api` (interface `lxd`), then `gw0`, `gw1` on `https` (interface `lxd-https`).
pub const REQUIRERS: usize = API_REQUIRERS + HTTPS_REQUIRERS;
pub const API_REQUIRERS: usize = 3;
pub const HTTPS_REQUIRERS: usize = 2;
/// Live units of the integrator, at most.
pub const MAX_UNITS: usize = 3;
/// Live units of one requirer, at most.
pub const MAX_REQUIRER_UNITS: usize = 3;
/// LXD members; member 0 is the one the credential names.
pub const MEMBERS: usize = 3;

pub fn requirer(app: usize) -> String {
    match app % REQUIRERS {
        a if a < API_REQUIRERS => format!("req{a}"),
        a => format!("gw{}", a - API_REQUIRERS),
    }
}

/// Whether requirer `app` speaks `lxd-https` (related on our `https` endpoint).
pub fn is_https(app: usize) -> bool {
    app % REQUIRERS >= API_REQUIRERS
}

/// Our endpoint requirer `app` relates to.
pub fn endpoint(app: usize) -> &'static str {
    if is_https(app) { "https" } else { "api" }
}

/// A certificate that is not in the shared pool: the integrator's own credential certificate
/// (the one of rotation `n`) or LXD's server certificate. A requirer that sends one must get
/// neither added nor removed for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Identity(usize),
    Server,
}

/// What an `lxd-https` requirer puts in `projects` (ignored on `api`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ask {
    /// No `projects`: `trust-projects` decides, as on `api`.
    None,
    Default,
    P1,
    /// `default` and `p1`, spelled with blanks and a duplicate.
    DefaultAndP1,
}

impl Ask {
    pub fn value(self) -> Option<&'static str> {
        match self {
            Ask::None => None,
            Ask::Default => Some("default"),
            Ask::P1 => Some("p1"),
            Ask::DefaultAndP1 => Some(" p1 , default,p1"),
        }
    }

    /// The projects asked for, as a set; `None`: none asked.
    pub fn set(self) -> Option<std::collections::BTreeSet<&'static str>> {
        match self {
            Ask::None => None,
            Ask::Default => Some(["default"].into()),
            Ask::P1 => Some(["p1"].into()),
            Ask::DefaultAndP1 => Some(["default", "p1"].into()),
        }
    }
}

/// What one requirer member sends. On `api`, `client_certificates`: pool certificates and
/// garbage (`Value`), and maybe a certificate nobody may ask for. On `https`, `version: "1.0"`,
/// `certificate`: the special certificate if there is one, else the first string of the
/// value (`Value::render_one`), and `projects` as `projects` says; nothing at all when the
/// value is absent and nothing else is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Sent {
    pub value: Value,
    pub special: Option<Special>,
    pub projects: Ask,
}

impl Sent {
    pub fn certs(certs: &[usize]) -> Sent {
        Sent {
            value: Value::List(certs.iter().map(|c| crate::scenario::Item::Cert(*c)).collect()),
            special: None,
            projects: Ask::None,
        }
    }

    pub fn absent() -> Sent {
        Sent { value: Value::Absent, special: None, projects: Ask::None }
    }

    /// The same, asking for `projects` (on `https`).
    pub fn asking(self, projects: Ask) -> Sent {
        Sent { projects, ..self }
    }

    /// The keys an `lxd-https` requirer writes for this, `None` for each key it leaves out.
    pub fn render_https(&self, special_pem: impl Fn(Special) -> String) -> [(&'static str, Option<String>); 3] {
        let certificate = match self.special {
            Some(special) => Some(special_pem(special)),
            None => self.value.render_one(0),
        };
        let projects = self.projects.value().map(String::from);
        let speaks = certificate.is_some() || projects.is_some();
        [("version", speaks.then(|| "1.0".to_string())), ("certificate", certificate), ("projects", projects)]
    }

    /// The pool certificate a correct charm finds in this on `https` (a special one is
    /// counted apart).
    pub fn https_pool(&self) -> Option<&'static str> {
        if self.special.is_some() {
            return None;
        }
        self.value.valid_one().map(|i| POOL[i].fingerprint.as_str())
    }

    /// The databag value, or `None` when the key is absent. `special_pem` gives the PEM of a
    /// special certificate (each world has its own identities).
    pub fn render(&self, special_pem: impl Fn(Special) -> String) -> Option<String> {
        let rendered = self.value.render(0);
        let Some(special) = self.special else { return rendered };
        let pem = serde_json::to_string(&special_pem(special)).unwrap_or_default();
        match (&self.value, rendered) {
            // Appended to the list, the same certificate among the others.
            (Value::List(items), Some(json)) if !items.is_empty() && json.len() > 2 => {
                Some(format!("{},{pem}]", &json[..json.len() - 1]))
            }
            (Value::List(_), _) | (Value::Absent, _) => Some(format!("[{pem}]")),
            // Not JSON stays not JSON: nothing in it counts.
            (Value::NotJson(_), json) => json,
        }
    }

    /// Pool certificates a correct charm finds in this value (specials are counted apart).
    pub fn valid_pool(&self) -> impl Iterator<Item = &'static str> {
        self.value.valid().into_iter().map(|i| POOL[i].fingerprint.as_str())
    }

    /// The special certificate it carries where a charm can read it.
    pub fn readable_special(&self) -> Option<Special> {
        self.special.filter(|_| !matches!(self.value, Value::NotJson(_)))
    }
}

/// Who in a requirer application sends: its `k`-th live unit, or the application (its leader,
/// in the application databag).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Member {
    Unit(usize),
    App,
}

/// `trust-projects` as an operator might set it. The cluster has projects `default` and `p1`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Projects {
    Unset,
    Default,
    DefaultAndP1,
    /// The same set as `DefaultAndP1`, spelled otherwise.
    P1AndDefaultSpaced,
    /// A project LXD does not have: every add is refused.
    Missing,
    DefaultAndMissing,
}

impl Projects {
    pub fn value(self) -> &'static str {
        match self {
            Projects::Unset => "",
            Projects::Default => "default",
            Projects::DefaultAndP1 => "default,p1",
            Projects::P1AndDefaultSpaced => " p1 , default,p1",
            Projects::Missing => "nope",
            Projects::DefaultAndMissing => "default,nope",
        }
    }

    /// The projects every added entry is restricted to, as a set; `None`: unrestricted.
    pub fn set(self) -> Option<std::collections::BTreeSet<&'static str>> {
        match self {
            Projects::Unset => None,
            Projects::Default => Some(["default"].into()),
            Projects::DefaultAndP1 | Projects::P1AndDefaultSpaced => Some(["default", "p1"].into()),
            Projects::Missing => Some(["nope"].into()),
            Projects::DefaultAndMissing => Some(["default", "nope"].into()),
        }
    }

    /// Names only projects the cluster has.
    pub fn exist(self) -> bool {
        !matches!(self, Projects::Missing | Projects::DefaultAndMissing)
    }
}

/// An action an operator runs (`juju run`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    Adopt { dry_run: bool },
    Reconcile { dry_run: bool },
    ListTrustedClients,
    ListNodes,
    CheckConnection,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Adopt { .. } => "adopt",
            Action::Reconcile { .. } => "reconcile",
            Action::ListTrustedClients => "list-trusted-clients",
            Action::ListNodes => "list-nodes",
            Action::CheckConnection => "check-connection",
        }
    }

    /// Its parameters, as `juju run` passes them (actions.yaml's defaults applied).
    pub fn params(self) -> serde_json::Value {
        match self {
            Action::Adopt { dry_run } | Action::Reconcile { dry_run } => serde_json::json!({"dry-run": dry_run}),
            _ => serde_json::json!({}),
        }
    }

    /// Whether it may change LXD or relation data at all: `adopt` and `reconcile` without a
    /// dry run (on the leader).
    pub fn writes(self) -> bool {
        matches!(self, Action::Adopt { dry_run: false } | Action::Reconcile { dry_run: false })
    }
}

/// A name an old charm gave a trust entry (`adoption.rs`): the Python charm's, the
/// certificate's CN; charm-lxd's, `juju-relation-<app>` or `juju-relation-<app>/<n>` of an
/// `https` requirer (`gw<h>`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Legacy {
    Cn,
    CharmLxdApp(usize),
    CharmLxdUnit(usize, usize),
}

impl Legacy {
    /// The entry's name for pool certificate `c` (whose CN is `requirer-<c>`).
    pub fn name(self, c: usize) -> String {
        match self {
            Legacy::Cn => format!("requirer-{c}"),
            Legacy::CharmLxdApp(h) => format!("juju-relation-{}", requirer(API_REQUIRERS + h % HTTPS_REQUIRERS)),
            Legacy::CharmLxdUnit(h, k) => {
                format!("juju-relation-{}/{k}", requirer(API_REQUIRERS + h % HTTPS_REQUIRERS))
            }
        }
    }
}

/// One thing that happens: to Juju, to LXD, or a hook that runs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Step {
    /// `juju add-unit lxd-integrator`.
    AddUnit,
    /// `juju remove-unit` of the `k`-th live integrator unit (never the last one).
    RemoveUnit(usize),
    /// Leadership moves to the `k`-th live integrator unit.
    MoveLeader(usize),
    /// `juju relate lxd-integrator:api req<a>` (`:https gw<a-3>`), when not related already.
    Relate(usize),
    /// `juju remove-relation` of the `k`-th live relation.
    Unrelate(usize),
    /// `juju add-unit req<a>`; the new unit sends `Sent` from its first hook.
    AddRequirerUnit(usize, Sent),
    /// `juju remove-unit` of the `k`-th unit of `req<a>`.
    RemoveRequirerUnit(usize, usize),
    /// A requirer member sets, rotates, withdraws or garbles what it sends.
    Send(usize, Member, Sent),
    /// `juju config lxd-integrator trust-projects=...`.
    SetProjects(Projects),
    /// `juju trust lxd-integrator` / `--remove`.
    Trust(bool),
    /// The cloud credential is rotated to a new certificate, which the operator first adds to
    /// LXD's trust store (under a name of their own).
    RotateCredential,
    /// LXD member `i` stops or starts (member 0 is the one the credential names).
    Member(usize, bool),
    /// Every LXD member stops, or they all start again.
    Outage(bool),
    /// The operator adds pool certificate `c` to the trust store by hand, maybe restricted to
    /// `default` (only when LXD does not hold it yet).
    OperatorAdd(usize, bool),
    /// The operator deletes the `k`-th trust entry by hand, whoever's it is.
    OperatorDelete(usize),
    /// An old charm left an entry for pool certificate `c` under a name of its own, maybe
    /// restricted to `default` (only when LXD does not hold it yet).
    LegacyAdd(usize, Legacy, bool),
    /// The operator runs an action on the `k`-th live integrator unit.
    Action(usize, Action),
    /// `update-status` is queued on the `k`-th live integrator unit.
    UpdateStatus(usize),
    /// The `k`-th integrator unit with hooks queued runs its next one: units run their queues
    /// concurrently, in any interleaving.
    Hook(usize),
    /// Every queued hook runs.
    Settle,
}

fn special() -> impl Strategy<Value = Special> {
    prop_oneof![(0..3usize).prop_map(Special::Identity), Just(Special::Server)]
}

fn ask() -> impl Strategy<Value = Ask> {
    prop_oneof![3 => Just(Ask::None), 2 => Just(Ask::Default), 1 => Just(Ask::P1), 1 => Just(Ask::DefaultAndP1)]
}

/// Mostly pool certificates and a little garbage (the property test's small values); now and
/// then a certificate nobody may ask for.
pub fn sent() -> impl Strategy<Value = Sent> {
    (small_value(), prop::option::weighted(0.1, special()), ask()).prop_map(|(value, special, projects)| Sent {
        value,
        special,
        projects,
    })
}

/// Certificates several applications send: those the usual start already has requirers send
/// (`cert#0`, `cert#2`, `cert#4`, `cert#5`: the last two held by an operator's entry and by
/// one the Python charm left), the one another integrator application's entry holds
/// (`cert#6`), the one charm-lxd left (`cert#3`), and one nobody sends at first (`cert#7`),
/// which goes to whichever relation asks first. Sent by another application, they make one
/// certificate asked for on several relations, of either endpoint, in whatever order they were
/// related.
pub const SHARED: [usize; 7] = [0, 2, 3, 4, 5, 6, 7];

/// One of the shared certificates alone, or that and another pool certificate (a rotation
/// from or to a shared one), asking for projects or not.
fn shared_sent() -> impl Strategy<Value = Sent> {
    let ask =
        prop_oneof![2 => Just(Ask::None), 2 => Just(Ask::Default), 1 => Just(Ask::P1), 1 => Just(Ask::DefaultAndP1)];
    (0..SHARED.len(), prop::option::weighted(0.3, 0..POOL_SIZE), ask).prop_map(|(c, other, projects)| {
        let mut certs = vec![SHARED[c]];
        certs.extend(other);
        Sent::certs(&certs).asking(projects)
    })
}

fn member() -> impl Strategy<Value = Member> {
    prop_oneof![4 => (0..MAX_REQUIRER_UNITS).prop_map(Member::Unit), 1 => Just(Member::App)]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => any::<bool>().prop_map(|dry_run| Action::Adopt { dry_run }),
        1 => any::<bool>().prop_map(|dry_run| Action::Reconcile { dry_run }),
        1 => Just(Action::ListTrustedClients),
        1 => Just(Action::ListNodes),
        1 => Just(Action::CheckConnection),
    ]
}

fn legacy() -> impl Strategy<Value = Legacy> {
    prop_oneof![
        2 => Just(Legacy::Cn),
        1 => (0..HTTPS_REQUIRERS).prop_map(Legacy::CharmLxdApp),
        1 => ((0..HTTPS_REQUIRERS), (0..MAX_REQUIRER_UNITS)).prop_map(|(h, k)| Legacy::CharmLxdUnit(h, k)),
    ]
}

fn projects() -> impl Strategy<Value = Projects> {
    prop_oneof![
        3 => Just(Projects::Unset),
        2 => Just(Projects::Default),
        1 => Just(Projects::DefaultAndP1),
        1 => Just(Projects::P1AndDefaultSpaced),
        1 => Just(Projects::Missing),
        1 => Just(Projects::DefaultAndMissing),
    ]
}

/// One step. About a quarter are single hooks, so world changes land between the hooks they
/// cause as often as after them.
pub fn step() -> impl Strategy<Value = Step> {
    let units = 0..MAX_UNITS;
    prop_oneof![
        2 => Just(Step::AddUnit),
        2 => units.clone().prop_map(Step::RemoveUnit),
        2 => units.clone().prop_map(Step::MoveLeader),
        3 => (0..REQUIRERS).prop_map(Step::Relate),
        2 => (0..REQUIRERS).prop_map(Step::Unrelate),
        3 => ((0..REQUIRERS), sent()).prop_map(|(a, s)| Step::AddRequirerUnit(a, s)),
        2 => ((0..REQUIRERS), (0..MAX_REQUIRER_UNITS)).prop_map(|(a, k)| Step::RemoveRequirerUnit(a, k)),
        10 => ((0..REQUIRERS), member(), sent()).prop_map(|(a, m, s)| Step::Send(a, m, s)),
        8 => ((0..REQUIRERS), member(), shared_sent()).prop_map(|(a, m, s)| Step::Send(a, m, s)),
        2 => projects().prop_map(Step::SetProjects),
        1 => any::<bool>().prop_map(Step::Trust),
        1 => Just(Step::RotateCredential),
        2 => ((0..MEMBERS), any::<bool>()).prop_map(|(i, up)| Step::Member(i, up)),
        1 => any::<bool>().prop_map(Step::Outage),
        2 => ((0..POOL_SIZE), any::<bool>()).prop_map(|(c, r)| Step::OperatorAdd(c, r)),
        2 => (0..8usize).prop_map(Step::OperatorDelete),
        2 => ((0..POOL_SIZE), legacy(), prop::bool::weighted(0.2)).prop_map(|(c, l, r)| Step::LegacyAdd(c, l, r)),
        2 => (units.clone(), action()).prop_map(|(k, a)| Step::Action(k, a)),
        4 => units.clone().prop_map(Step::UpdateStatus),
        20 => (0..MAX_UNITS).prop_map(Step::Hook),
        4 => Just(Step::Settle),
    ]
}

pub fn history(max_steps: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 1..=max_steps)
}

// --- Readable scenarios.

impl fmt::Debug for Special {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Special::Identity(n) => write!(f, "the integrator's credential certificate #{n}"),
            Special::Server => write!(f, "LXD's server certificate"),
        }
    }
}

impl fmt::Debug for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.value, self.special) {
            (v, None) => write!(f, "{v:?}")?,
            (v, Some(s)) => write!(f, "{v:?} + {s:?}")?,
        }
        match self.projects.value() {
            Some(p) => write!(f, " (projects {p:?} on https)"),
            None => Ok(()),
        }
    }
}

/// A step as the operator or Juju would say it, for narrations.
pub fn say(step: &Step) -> String {
    match step {
        Step::AddUnit => "juju add-unit lxd-integrator".into(),
        Step::RemoveUnit(k) => format!("juju remove-unit (live integrator unit #{k})"),
        Step::MoveLeader(k) => format!("leadership moves (to live integrator unit #{k})"),
        Step::Relate(a) => format!("juju relate lxd-integrator:{} {}", endpoint(*a), requirer(*a)),
        Step::Unrelate(k) => format!("juju remove-relation (live relation #{k})"),
        Step::AddRequirerUnit(a, s) => format!("juju add-unit {} (it sends {s:?})", requirer(*a)),
        Step::RemoveRequirerUnit(a, k) => format!("juju remove-unit (unit #{k} of {})", requirer(*a)),
        Step::Send(a, Member::App, s) => format!("{} (application databag) sends {s:?}", requirer(*a)),
        Step::Send(a, Member::Unit(k), s) => format!("{} unit #{k} sends {s:?}", requirer(*a)),
        Step::SetProjects(p) => format!("juju config lxd-integrator trust-projects={:?}", p.value()),
        Step::Trust(true) => "juju trust lxd-integrator".into(),
        Step::Trust(false) => "juju trust lxd-integrator --remove".into(),
        Step::RotateCredential => "the cloud credential is rotated (its new certificate added to LXD first)".into(),
        Step::Member(i, false) => format!("LXD member {} stops", i + 1),
        Step::Member(i, true) => format!("LXD member {} starts", i + 1),
        Step::Outage(true) => "every LXD member stops".into(),
        Step::Outage(false) => "every LXD member starts".into(),
        Step::OperatorAdd(c, r) => {
            format!("the operator trusts cert#{c} by hand{}", if *r { ", restricted to default" } else { "" })
        }
        Step::OperatorDelete(k) => format!("the operator deletes trust entry #{k} by hand"),
        Step::LegacyAdd(c, l, r) => format!(
            "an old charm left cert#{c} trusted as {:?}{}",
            l.name(*c),
            if *r { ", restricted to default" } else { "" }
        ),
        Step::Action(k, a) => format!("juju run {} {} (live integrator unit #{k})", a.name(), a.params()),
        Step::UpdateStatus(k) => format!("update-status is queued (live integrator unit #{k})"),
        Step::Hook(k) => format!("the next hook runs (integrator unit #{k} with hooks queued)"),
        Step::Settle => "every queued hook runs".into(),
    }
}

// --- Named histories.

/// Named histories, each from the usual start: what once broke a guarantee (minimal, as the
/// in-memory model shrank it) and what a guarantee is about, with what it shows. The model
/// test replays each from a fresh start; the soak (`SOAK_SEED=regressions`) one after another
/// against real LXD, so each begins by setting what it relies on.
pub fn regressions() -> Vec<(&'static str, Vec<Step>)> {
    let next_credential = Sent { special: Some(Special::Identity(1)), ..Sent::absent() };
    vec![
        (
            // `SOAK_SEED=1796611989967254184`, history 25 (the generator of 65310f2): the oracle
            // expected `active`; the charm is right to be blocked (the model's regression
            // `a_requirer_sends_the_next_credential_restricted_then_rotate_blocks_every_unit_until_trusted_unrestricted`).
            "trust-projects=default; a requirer sends the next credential's certificate, trusted restricted for it; the credential is rotated to it: every unit blocked, nothing written, until it is trusted unrestricted",
            vec![
                Step::SetProjects(Projects::Default),
                Step::Send(0, Member::Unit(0), next_credential),
                Step::Settle,
                Step::RotateCredential,
            ],
        ),
        (
            // One owner per certificate on real LXD (issue 25): gw1 relates first for cert#7 in p1;
            // req0 (unrestricted) and gw0 (default) asking for it change nothing and are refused
            // it; gw1 withdraws: its entry goes at once, and one of the others owns the next.
            "one certificate, three applications: the first owns it, the others are refused it, the owner's withdrawal removes it and the next request is added under its own name",
            vec![
                Step::SetProjects(Projects::Unset),
                Step::Send(4, Member::App, Sent::certs(&[7]).asking(Ask::P1)),
                Step::Relate(4),
                Step::Send(0, Member::Unit(0), Sent::certs(&[0, 7])),
                Step::Send(3, Member::Unit(0), Sent::certs(&[7]).asking(Ask::Default)),
                Step::UpdateStatus(0),
                Step::Send(4, Member::App, Sent::absent()),
                Step::UpdateStatus(0),
                Step::UpdateStatus(1),
            ],
        ),
        (
            // `adopt` after a refresh from the old charms (issue 25): the Python charm's
            // CN-named entry for req1's cert#5 and charm-lxd's `juju-relation-gw1` for gw1's
            // cert#3 are taken, the operator's `ops-admin` for req2's cert#4 is not.
            "adopt takes the old charms' entries for the requirers they were made for, never the operator's",
            vec![
                Step::SetProjects(Projects::Unset),
                Step::Relate(2),
                Step::Send(4, Member::App, Sent::certs(&[3])),
                Step::Relate(4),
                Step::Settle,
                Step::Action(0, Action::Adopt { dry_run: true }),
                Step::Action(0, Action::Adopt { dry_run: false }),
                Step::Settle,
                Step::Action(0, Action::ListTrustedClients),
            ],
        ),
    ]
}
