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

/// Requirer applications (`req0`, `req1`, `req2`), each related at most once at a time.
pub const REQUIRERS: usize = 3;
/// Live units of the integrator, at most.
pub const MAX_UNITS: usize = 3;
/// Live units of one requirer, at most.
pub const MAX_REQUIRER_UNITS: usize = 3;
/// LXD members; member 0 is the one the credential names.
pub const MEMBERS: usize = 3;

pub fn requirer(app: usize) -> String {
    format!("req{}", app % REQUIRERS)
}

/// A certificate that is not in the shared pool: the integrator's own credential certificate
/// (the one of rotation `n`) or LXD's server certificate. A requirer that sends one must get
/// neither added nor removed for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Identity(usize),
    Server,
}

/// What one requirer member puts in `client_certificates`: pool certificates and garbage
/// (`Value`), and maybe a certificate nobody may ask for.
#[derive(Clone, PartialEq, Eq)]
pub struct Sent {
    pub value: Value,
    pub special: Option<Special>,
}

impl Sent {
    pub fn certs(certs: &[usize]) -> Sent {
        Sent { value: Value::List(certs.iter().map(|c| crate::scenario::Item::Cert(*c)).collect()), special: None }
    }

    pub fn absent() -> Sent {
        Sent { value: Value::Absent, special: None }
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

/// One thing that happens: to Juju, to LXD, or a hook that runs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Step {
    /// `juju add-unit lxd-integrator`.
    AddUnit,
    /// `juju remove-unit` of the `k`-th live integrator unit (never the last one).
    RemoveUnit(usize),
    /// Leadership moves to the `k`-th live integrator unit.
    MoveLeader(usize),
    /// `juju relate lxd-integrator:api req<a>` (when not related already).
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

/// Mostly pool certificates and a little garbage (the property test's small values); now and
/// then a certificate nobody may ask for.
pub fn sent() -> impl Strategy<Value = Sent> {
    (small_value(), prop::option::weighted(0.1, special())).prop_map(|(value, special)| Sent { value, special })
}

fn member() -> impl Strategy<Value = Member> {
    prop_oneof![4 => (0..MAX_REQUIRER_UNITS).prop_map(Member::Unit), 1 => Just(Member::App)]
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
        2 => projects().prop_map(Step::SetProjects),
        1 => any::<bool>().prop_map(Step::Trust),
        1 => Just(Step::RotateCredential),
        2 => ((0..MEMBERS), any::<bool>()).prop_map(|(i, up)| Step::Member(i, up)),
        1 => any::<bool>().prop_map(Step::Outage),
        2 => ((0..POOL_SIZE), any::<bool>()).prop_map(|(c, r)| Step::OperatorAdd(c, r)),
        2 => (0..8usize).prop_map(Step::OperatorDelete),
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
            (v, None) => write!(f, "{v:?}"),
            (v, Some(s)) => write!(f, "{v:?} + {s:?}"),
        }
    }
}

/// A step as the operator or Juju would say it, for narrations.
pub fn say(step: &Step) -> String {
    match step {
        Step::AddUnit => "juju add-unit lxd-integrator".into(),
        Step::RemoveUnit(k) => format!("juju remove-unit (live integrator unit #{k})"),
        Step::MoveLeader(k) => format!("leadership moves (to live integrator unit #{k})"),
        Step::Relate(a) => format!("juju relate lxd-integrator:api {}", requirer(*a)),
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
        Step::UpdateStatus(k) => format!("update-status is queued (live integrator unit #{k})"),
        Step::Hook(k) => format!("the next hook runs (integrator unit #{k} with hooks queued)"),
        Step::Settle => "every queued hook runs".into(),
    }
}
