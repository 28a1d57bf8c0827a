//! The in-memory world a history runs in: a small Juju model that owns the shared truth
//! (integrator units and their hook queues, leadership, config and trust, relations, the
//! requirers and what they send, every databag of both sides) and an in-memory LXD.
//!
//! Before a hook runs on a unit, the model builds that unit's view (`memory::Agent`: its
//! relations and the remote units it has joined, their databags, its own databags, its state,
//! whether it leads); after the hook it copies back what the unit wrote (its unit databag, the
//! application databag if it leads, its state) when the hook succeeded, and its status
//! whatever happened, as Juju commits a hook's writes only when it exits 0. Events follow
//! Juju's rules as `jujusim` does: a unit's queue runs in order; `-relation-joined` adds the
//! remote unit to the unit's view and comes before `-relation-changed`; `-relation-departed`
//! removes it before the hook runs, and `-relation-broken` comes last; a data change queues
//! `-relation-changed` on every unit that has joined the writer; there is at most one leader,
//! and a new one runs `leader-elected`.
//!
//! Every hook is checked as it ends (`check_hook`); `quiet` ends a history and checks that the
//! charm converged.

use crate::history::{self, *};
use crate::oracle::*;
use crate::scenario::{MARKER, POOL, RELATION_KEY, key_secret};
use lxd_integrator::dispatch::{HookContext, RECONCILE_HOOKS};
use lxd_integrator::hook_tools::Juju;
use lxd_integrator::lxd::{TrustEntry, TrustKind};
use lxd_integrator::memory::{Agent, Cluster, MemoryConnector, cloud_credential};
use lxd_integrator::ownership::Interface;
use lxd_integrator::reconcile::{self, Mode};
use lxd_integrator::relation::Databag;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

pub const UUID: &str = "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc";
/// The operator's own entry for a certificate a requirer asks for (`cert#4`, `req2`'s).
pub const OPERATOR_ENTRY: &str = "ops-admin";
const OTHER_UUID: &str = "11111111-1c2b-4f5e-8a9b-123456789abc";
pub const NODES: [&str; MEMBERS] = ["https://127.0.0.1:8443", "https://127.0.0.2:8443", "https://127.0.0.3:8443"];

/// The integrator's credential certificates (one per rotation, cycling) and LXD's server
/// certificate: real certificates, so a requirer can send them.
pub static SPECIALS: LazyLock<Specials> = LazyLock::new(|| Specials {
    identities: IDENTITIES.iter().map(|(cert, _)| Cert::from_pem(cert)).collect(),
    server: Cert::from_pem(&self_signed("lxd-cluster", true).0),
});

/// The integrator's credentials, certificate and matching key (the charm refuses a key that
/// does not belong to its certificate, as the TLS client would).
static IDENTITIES: LazyLock<Vec<(String, String)>> =
    LazyLock::new(|| (0..3).map(|i| self_signed(&format!("lxd-integrator-identity-{i}"), false)).collect());

/// A self-signed certificate and its private key, both PEM.
fn self_signed(cn: &str, ca: bool) -> (String, String) {
    let made = if ca { testbed::certs::ca_cert(cn).map(|ca| ca.pem) } else { testbed::certs::client_cert(cn) };
    let made = made.expect("certificate");
    (made.cert_pem, made.key_pem)
}

/// What must never appear in anything the charm sends: the marker in every piece of garbage,
/// the secret part of a real key a requirer pasted, and that of every credential key.
pub fn secrets() -> Vec<String> {
    let mut out = vec![MARKER.to_string(), key_secret(&RELATION_KEY)];
    out.extend(IDENTITIES.iter().map(|(_, key)| key_secret(key)));
    out
}

fn unit_name(n: u32) -> String {
    format!("{INTEGRATOR}/{n}")
}

/// One event in a unit's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    /// `install`, `relation-joined`, ...: relation hooks without the endpoint.
    kind: &'static str,
    relation: Option<u32>,
    remote: Option<String>,
    departing: Option<String>,
    /// An action the operator runs on the unit (between two hooks, as Juju serialises them).
    action: Option<Action>,
}

impl Event {
    fn simple(kind: &'static str) -> Event {
        Event { kind, relation: None, remote: None, departing: None, action: None }
    }

    fn rel(kind: &'static str, relation: u32, remote: Option<&str>) -> Event {
        Event { kind, relation: Some(relation), remote: remote.map(String::from), departing: None, action: None }
    }

    fn action(action: Action) -> Event {
        Event { action: Some(action), ..Event::simple("action") }
    }

    fn departed(relation: u32, remote: &str, departing: &str) -> Event {
        Event { departing: Some(departing.to_string()), ..Event::rel("relation-departed", relation, Some(remote)) }
    }

    /// The hook's name, relation hooks prefixed with the endpoint of their relation.
    fn hook(&self, endpoint: &str) -> String {
        match (self.action, self.relation) {
            (Some(a), _) => format!("action {}", a.name()),
            (None, Some(_)) => format!("{endpoint}-{}", self.kind),
            (None, None) => self.kind.to_string(),
        }
    }
}

struct Unit {
    state: BTreeMap<String, String>,
    status: (String, String),
    /// `juju remove-unit` ran: its teardown is queued, and it must leave LXD alone.
    dying: bool,
    queue: VecDeque<Event>,
}

/// A requirer unit in a relation, and whether it is still there (one that left stays
/// readable to the integrator units that have not yet run its `-relation-departed`).
struct RemoteUnit {
    sent: Sent,
    live: bool,
}

struct Relation {
    app: usize,
    /// `juju remove-relation` ran: departed/broken are queued.
    dying: bool,
    /// Integrator units in the relation → the requirer units each has joined.
    scope: BTreeMap<u32, BTreeSet<String>>,
    remote: BTreeMap<String, RemoteUnit>,
    remote_app: Sent,
    /// The integrator's databags: each unit's, and the application's.
    ours: BTreeMap<u32, Databag>,
    our_app: Databag,
}

/// A requirer application: what each unit and the application send.
#[derive(Clone)]
struct Requirer {
    units: BTreeMap<u32, Sent>,
    next: u32,
    app: Sent,
}

/// What one hook did, for the checks.
struct Ran {
    unit: String,
    hook: String,
    leader: bool,
    dying: bool,
    result: Result<(), String>,
    agent: Agent,
    ours_before: BTreeMap<(u32, String), Databag>,
    store_before: Vec<TrustEntry>,
    store_after: Vec<TrustEntry>,
    writes: usize,
    /// The members that answered during the hook, as the charm publishes them.
    up: BTreeSet<(String, String)>,
    /// What the unit's view asks for, per relation (the breaking relation left out).
    asked: BTreeMap<u32, Asks>,
    protected: BTreeSet<String>,
    /// The fingerprint of the credential the hook used.
    identity: String,
    /// The action it was, if it was one.
    action: Option<Action>,
}

/// `update-status` rounds in a quiet period before the charm must have converged. The leader's
/// first full pass removes what nobody asks for any more; when that was an entry its owner
/// withdrew while another relation still asks, that request is new and the leader's next pass
/// (the second round: an `update-status` after a pass that changed something runs the full pass)
/// adds it under its own name; a follower that ran its second round before the leader's sees
/// that in its third.
pub const QUIET_ROUNDS: usize = 3;

pub struct World {
    units: BTreeMap<u32, Unit>,
    next_unit: u32,
    leader: Option<u32>,
    relations: BTreeMap<u32, Relation>,
    next_relation: u32,
    requirers: Vec<Requirer>,
    projects: Projects,
    trusted: bool,
    rotation: usize,
    cluster: Arc<Mutex<Cluster>>,
    /// What happened, step by step and hook by hook, for a failing history's report.
    pub log: Vec<String>,
    /// What the history did, for the figures.
    pub tally: Tally,
    /// Hook-tool calls that write (relation, state, status, log) and LXD writes, since the
    /// last `quiet_round`: what a steady round must not have.
    writes_seen: Vec<String>,
}

fn lock(cluster: &Mutex<Cluster>) -> MutexGuard<'_, Cluster> {
    cluster.lock().unwrap_or_else(PoisonError::into_inner)
}

impl World {
    /// Two integrator units, trusted, related to `req0`, `gw0` and `req1` in that order (their
    /// hooks queued); three `api` requirer applications (two with a unit sending certificates,
    /// one with only its application databag) and two `https` ones (one with a unit asking for
    /// `cert#2` in `default`, which `req1`, related after it, asks for unrestricted; one with
    /// only its application databag, sending `cert#0`, `req0`'s); a 3-member cluster
    /// whose trust store holds the integrator's identity, LXD's own `server` entry, another
    /// model's integrator entry, another integrator application's, a name that only looks like
    /// ours, an operator's own unrestricted entry for `cert#4`, which `req2` asks for, and two
    /// entries the old charms left for `adopt` to take: the Python charm's for `cert#5`, named
    /// by its CN, which `req1` asks for, and charm-lxd's `juju-relation-gw1` for `cert#3`,
    /// which nobody asks for yet.
    pub fn new() -> World {
        let mut w = World::bare();
        w.log = vec!["deployed: lxd-integrator (trusted, 2 units) related to req0, gw0 and req1, in that order; req0/0 sends [cert#0], gw0/0 (https) sends cert#2 asking for projects \"default\", req1/0 sends [cert#2, cert#5], req2 (no units) sends [cert#4] in its application databag, gw1 (https, no units) sends cert#0 in its application databag; the operator trusts cert#4 unrestricted as \"ops-admin\"; the Python charm left cert#5 as \"requirer-5\", charm-lxd cert#3 as \"juju-relation-gw1\"".into()];
        for (name, c) in [(OPERATOR_ENTRY.to_string(), 4), (Legacy::Cn.name(5), 5), (Legacy::CharmLxdApp(1).name(3), 3)]
        {
            lock(&w.cluster).store.push(TrustEntry {
                name,
                fingerprint: POOL[c].fingerprint.clone(),
                kind: TrustKind::Client,
                ..TrustEntry::default()
            });
        }
        w.add_unit();
        w.relate(0);
        w.relate(3);
        w.relate(1);
        w
    }

    /// As `new`, with one integrator unit and no relation.
    pub fn bare() -> World {
        let mut cluster = Cluster::new(&NODES);
        cluster.trust_from_store = true;
        cluster.projects = Some(["default".to_string(), "p1".to_string()].into());
        let client = |name: String, fingerprint: &str, restricted: bool| TrustEntry {
            name,
            fingerprint: fingerprint.to_string(),
            kind: TrustKind::Client,
            restricted,
            projects: if restricted { vec!["default".into()] } else { vec![] },
        };
        cluster.store = vec![
            client("integrator-identity-0".into(), &SPECIALS.identity(0).fingerprint, false),
            TrustEntry {
                name: "node2".into(),
                fingerprint: "ab".repeat(32),
                kind: TrustKind::Server,
                ..TrustEntry::default()
            },
            client(format!("juju.{OTHER_UUID}.{INTEGRATOR}.1.req0.0"), &POOL[1].fingerprint, false),
            client(format!("juju.{UUID}.{INTEGRATOR}-b.2.req1.app"), &POOL[6].fingerprint, true),
            client(format!("juju.{UUID}.{INTEGRATOR}.x.req0.0"), &"cd".repeat(32), false),
        ];
        let requirer = |units: &[(u32, Sent)], app: Sent| Requirer {
            units: units.iter().cloned().collect(),
            next: units.len() as u32,
            app,
        };
        let mut w = World {
            units: BTreeMap::new(),
            next_unit: 0,
            leader: None,
            relations: BTreeMap::new(),
            next_relation: 1,
            requirers: vec![
                requirer(&[(0, Sent::certs(&[0]))], Sent::absent()),
                requirer(&[(0, Sent::certs(&[2, 5]))], Sent::absent()),
                requirer(&[], Sent::certs(&[4])),
                requirer(&[(0, Sent::certs(&[2]).asking(Ask::Default))], Sent::absent()),
                requirer(&[], Sent::certs(&[0])),
            ],
            projects: Projects::Unset,
            trusted: true,
            rotation: 0,
            cluster: cluster.shared(),
            log: vec!["deployed: lxd-integrator (trusted, 1 unit), no relation; req0/0 sends [cert#0], req1/0 sends [cert#2, cert#5], req2 (no units) sends [cert#4] in its application databag".into()],
            tally: Tally::default(),
            writes_seen: Vec::new(),
        };
        w.add_unit();
        w
    }

    /// LXD's trust entry for `fingerprint`, if it holds one.
    pub fn entry(&self, fingerprint: &str) -> Option<TrustEntry> {
        lock(&self.cluster).store.iter().find(|e| e.fingerprint == fingerprint).cloned()
    }

    // --- Steps.

    pub fn step(&mut self, step: &Step) -> Result<(), String> {
        self.log.push(format!("▶ {}", say(step)));
        match step {
            Step::AddUnit => self.add_unit(),
            Step::RemoveUnit(k) => self.remove_unit(*k),
            Step::MoveLeader(k) => self.move_leader(*k),
            Step::Relate(a) => self.relate(*a),
            Step::Unrelate(k) => self.unrelate(*k),
            Step::AddRequirerUnit(a, sent) => self.add_requirer_unit(*a, sent),
            Step::RemoveRequirerUnit(a, k) => self.remove_requirer_unit(*a, *k),
            Step::Send(a, member, sent) => self.send(*a, *member, sent),
            Step::SetProjects(p) => {
                if *p != self.projects {
                    self.projects = *p;
                    self.for_live_units("config-changed");
                }
            }
            Step::Trust(t) => {
                if *t != self.trusted {
                    self.trusted = *t;
                    self.for_live_units("config-changed");
                }
            }
            Step::RotateCredential => {
                self.rotation += 1;
                let identity = SPECIALS.identity(self.rotation);
                let mut c = lock(&self.cluster);
                if !c.store.iter().any(|e| e.fingerprint == identity.fingerprint) {
                    let name = format!("integrator-identity-{}", self.rotation);
                    c.store.push(TrustEntry {
                        name,
                        fingerprint: identity.fingerprint.clone(),
                        ..TrustEntry::default()
                    });
                }
            }
            Step::Member(i, up) => {
                lock(&self.cluster).up.insert(NODES[i % MEMBERS].to_string(), *up);
            }
            Step::Outage(down) => {
                for up in lock(&self.cluster).up.values_mut() {
                    *up = !down;
                }
            }
            Step::OperatorAdd(c, restricted) => self.operator_add(*c, *restricted),
            Step::OperatorDelete(k) => self.operator_delete(*k),
            Step::LegacyAdd(c, legacy, restricted) => self.legacy_add(*c, *legacy, *restricted),
            Step::Action(k, action) => {
                if let Some(n) = self.pick_live(*k) {
                    let ev = Event::action(*action);
                    let ran = self.run_hook(n, &ev);
                    return self.check_hook(&ran).map_err(|e| format!("{} {}: {e}", ran.unit, ran.hook));
                }
            }
            Step::UpdateStatus(k) => {
                if let Some(n) = self.pick_live(*k) {
                    self.queue(n, Event::simple("update-status"));
                }
            }
            Step::Hook(k) => {
                let busy: Vec<u32> = self.units.iter().filter(|(_, u)| !u.queue.is_empty()).map(|(n, _)| *n).collect();
                if busy.is_empty() {
                    self.log.push("  (none queued)".into());
                } else {
                    return self.run_next(busy[k % busy.len()]);
                }
            }
            Step::Settle => return self.settle(),
        }
        Ok(())
    }

    /// The `k`-th live unit (not being removed), by number.
    fn pick_live(&self, k: usize) -> Option<u32> {
        let live: Vec<u32> = self.units.iter().filter(|(_, u)| !u.dying).map(|(n, _)| *n).collect();
        (!live.is_empty()).then(|| live[k % live.len()])
    }

    fn live_relation(&self, app: usize) -> Option<u32> {
        self.relations.iter().find(|(_, r)| r.app == app && !r.dying).map(|(id, _)| *id)
    }

    /// Queues `ev` on unit `n`; a `-relation-changed` or `update-status` already waiting is
    /// not queued twice (Juju coalesces them).
    fn queue(&mut self, n: u32, ev: Event) {
        let Some(u) = self.units.get_mut(&n) else { return };
        if matches!(ev.kind, "relation-changed" | "update-status") && u.queue.contains(&ev) {
            return;
        }
        u.queue.push_back(ev);
    }

    fn for_live_units(&mut self, kind: &'static str) {
        let live: Vec<u32> = self.units.iter().filter(|(_, u)| !u.dying).map(|(n, _)| *n).collect();
        for n in live {
            self.queue(n, Event::simple(kind));
        }
    }

    fn add_unit(&mut self) {
        if self.units.values().filter(|u| !u.dying).count() >= MAX_UNITS {
            return;
        }
        let n = self.next_unit;
        self.next_unit += 1;
        self.units.insert(
            n,
            Unit {
                state: BTreeMap::new(),
                status: ("maintenance".into(), String::new()),
                dying: false,
                queue: VecDeque::new(),
            },
        );
        self.log.push(format!("  → {}", unit_name(n)));
        self.queue(n, Event::simple("install"));
        let live: Vec<u32> = self.relations.iter().filter(|(_, r)| !r.dying).map(|(id, _)| *id).collect();
        for id in &live {
            if let Some(r) = self.relations.get_mut(id) {
                r.scope.insert(n, BTreeSet::new());
            }
            self.queue(n, Event::rel("relation-created", *id, None));
        }
        if self.leader.is_none() {
            self.leader = Some(n);
            self.queue(n, Event::simple("leader-elected"));
        } else {
            self.queue(n, Event::simple("leader-settings-changed"));
        }
        self.queue(n, Event::simple("config-changed"));
        self.queue(n, Event::simple("start"));
        for id in live {
            let remotes: Vec<String> =
                self.relations[&id].remote.iter().filter(|(_, r)| r.live).map(|(name, _)| name.clone()).collect();
            for remote in remotes {
                self.queue(n, Event::rel("relation-joined", id, Some(&remote)));
                self.queue(n, Event::rel("relation-changed", id, Some(&remote)));
            }
        }
    }

    fn remove_unit(&mut self, k: usize) {
        if self.units.values().filter(|u| !u.dying).count() <= 1 {
            return;
        }
        let Some(n) = self.pick_live(k) else { return };
        self.log.push(format!("  → {}", unit_name(n)));
        let mut teardown = Vec::new();
        for (id, r) in &self.relations {
            let Some(joined) = r.scope.get(&n) else { continue };
            for remote in joined {
                teardown.push(Event::departed(*id, remote, &unit_name(n)));
            }
            teardown.push(Event::rel("relation-broken", *id, None));
        }
        teardown.push(Event::simple("stop"));
        teardown.push(Event::simple("remove"));
        if let Some(u) = self.units.get_mut(&n) {
            u.dying = true;
            // As jujusim does (and `--force` would): what was queued before is dropped.
            u.queue = teardown.into();
        }
    }

    fn move_leader(&mut self, k: usize) {
        let Some(n) = self.pick_live(k) else { return };
        if self.leader == Some(n) {
            return;
        }
        self.log.push(format!("  → {}", unit_name(n)));
        let old = self.leader.replace(n);
        self.queue(n, Event::simple("leader-elected"));
        if let Some(old) = old.filter(|o| self.units.get(o).is_some_and(|u| !u.dying)) {
            self.queue(old, Event::simple("leader-settings-changed"));
        }
    }

    fn relate(&mut self, app: usize) {
        let app = app % REQUIRERS;
        if self.live_relation(app).is_some() {
            return;
        }
        let id = self.next_relation;
        self.next_relation += 1;
        self.log.push(format!("  → relation {id}"));
        let req = &self.requirers[app];
        let remote: BTreeMap<String, RemoteUnit> = req
            .units
            .iter()
            .map(|(k, sent)| (format!("{}/{k}", requirer(app)), RemoteUnit { sent: sent.clone(), live: true }))
            .collect();
        let ours: Vec<u32> = self.units.iter().filter(|(_, u)| !u.dying).map(|(n, _)| *n).collect();
        let relation = Relation {
            app,
            dying: false,
            scope: ours.iter().map(|n| (*n, BTreeSet::new())).collect(),
            remote,
            remote_app: req.app.clone(),
            ours: BTreeMap::new(),
            our_app: Databag::new(),
        };
        let remotes: Vec<String> = relation.remote.keys().cloned().collect();
        self.relations.insert(id, relation);
        for n in &ours {
            self.queue(*n, Event::rel("relation-created", id, None));
        }
        for n in ours {
            for remote in &remotes {
                self.queue(n, Event::rel("relation-joined", id, Some(remote)));
                self.queue(n, Event::rel("relation-changed", id, Some(remote)));
            }
        }
    }

    fn unrelate(&mut self, k: usize) {
        let live: Vec<u32> = self.relations.iter().filter(|(_, r)| !r.dying).map(|(id, _)| *id).collect();
        if live.is_empty() {
            return;
        }
        let id = live[k % live.len()];
        self.log.push(format!("  → relation {id}"));
        let Some(r) = self.relations.get_mut(&id) else { return };
        r.dying = true;
        let scope = r.scope.clone();
        for u in self.units.values_mut() {
            u.queue.retain(|e| e.relation != Some(id));
        }
        for (n, joined) in scope {
            for remote in joined {
                self.queue(n, Event::departed(id, &remote, &remote));
            }
            self.queue(n, Event::rel("relation-broken", id, None));
        }
        self.forget_relation_if_done(id);
    }

    fn add_requirer_unit(&mut self, app: usize, sent: &Sent) {
        let app = app % REQUIRERS;
        let req = &mut self.requirers[app];
        if req.units.len() >= MAX_REQUIRER_UNITS {
            return;
        }
        let k = req.next;
        req.next += 1;
        req.units.insert(k, sent.clone());
        let name = format!("{}/{k}", requirer(app));
        self.log.push(format!("  → {name}"));
        let Some(id) = self.live_relation(app) else { return };
        let Some(r) = self.relations.get_mut(&id) else { return };
        r.remote.insert(name.clone(), RemoteUnit { sent: sent.clone(), live: true });
        let ours: Vec<u32> = r.scope.keys().copied().collect();
        for n in ours {
            self.queue(n, Event::rel("relation-joined", id, Some(&name)));
            self.queue(n, Event::rel("relation-changed", id, Some(&name)));
        }
    }

    fn remove_requirer_unit(&mut self, app: usize, k: usize) {
        let app = app % REQUIRERS;
        let units: Vec<u32> = self.requirers[app].units.keys().copied().collect();
        if units.is_empty() {
            return;
        }
        let k = units[k % units.len()];
        self.requirers[app].units.remove(&k);
        let name = format!("{}/{k}", requirer(app));
        self.log.push(format!("  → {name}"));
        let Some(id) = self.live_relation(app) else { return };
        let Some(r) = self.relations.get_mut(&id) else { return };
        if let Some(remote) = r.remote.get_mut(&name) {
            remote.live = false;
        }
        let seen: Vec<u32> = r.scope.iter().filter(|(_, joined)| joined.contains(&name)).map(|(n, _)| *n).collect();
        for n in seen {
            self.queue(n, Event::departed(id, &name, &name));
        }
        self.forget_departed(id);
    }

    fn send(&mut self, app: usize, member: Member, sent: &Sent) {
        let app = app % REQUIRERS;
        let req = &mut self.requirers[app];
        let who = match member {
            Member::App => {
                req.app = sent.clone();
                None
            }
            Member::Unit(k) => {
                let units: Vec<u32> = req.units.keys().copied().collect();
                if units.is_empty() {
                    return;
                }
                let k = units[k % units.len()];
                req.units.insert(k, sent.clone());
                Some(format!("{}/{k}", requirer(app)))
            }
        };
        self.log.push(format!("  → {}", who.clone().unwrap_or_else(|| requirer(app))));
        let Some(id) = self.live_relation(app) else { return };
        let Some(r) = self.relations.get_mut(&id) else { return };
        let targets: Vec<u32> = match &who {
            Some(unit) => {
                if let Some(remote) = r.remote.get_mut(unit) {
                    remote.sent = sent.clone();
                }
                r.scope.iter().filter(|(_, joined)| joined.contains(unit)).map(|(n, _)| *n).collect()
            }
            None => {
                r.remote_app = sent.clone();
                r.scope.keys().copied().collect()
            }
        };
        for n in targets {
            self.queue(n, Event::rel("relation-changed", id, who.as_deref()));
        }
    }

    fn operator_add(&mut self, c: usize, restricted: bool) {
        let mut cluster = lock(&self.cluster);
        let cert = &POOL[c % POOL.len()];
        if !cluster.up.values().any(|up| *up) || cluster.store.iter().any(|e| e.fingerprint == cert.fingerprint) {
            return;
        }
        cluster.store.push(TrustEntry {
            name: format!("operator-cert{}", c % POOL.len()),
            fingerprint: cert.fingerprint.clone(),
            kind: TrustKind::Client,
            restricted,
            projects: if restricted { vec!["default".into()] } else { vec![] },
        });
    }

    fn legacy_add(&mut self, c: usize, legacy: Legacy, restricted: bool) {
        let mut cluster = lock(&self.cluster);
        let cert = &POOL[c % POOL.len()];
        if !cluster.up.values().any(|up| *up) || cluster.store.iter().any(|e| e.fingerprint == cert.fingerprint) {
            return;
        }
        cluster.store.push(TrustEntry {
            name: legacy.name(c % POOL.len()),
            fingerprint: cert.fingerprint.clone(),
            kind: TrustKind::Client,
            restricted,
            projects: if restricted { vec!["default".into()] } else { vec![] },
        });
    }

    fn operator_delete(&mut self, k: usize) {
        let mut cluster = lock(&self.cluster);
        if !cluster.up.values().any(|up| *up) || cluster.store.is_empty() {
            return;
        }
        let k = k % cluster.store.len();
        let gone = cluster.store.remove(k);
        drop(cluster);
        self.log.push(format!("  → {} ({})", gone.name, name_of(&gone.fingerprint)));
    }

    /// A requirer unit that left is forgotten once no integrator unit still sees it.
    fn forget_departed(&mut self, id: u32) {
        let Some(r) = self.relations.get_mut(&id) else { return };
        let seen: BTreeSet<&String> = r.scope.values().flatten().collect();
        let gone: Vec<String> =
            r.remote.iter().filter(|(name, u)| !u.live && !seen.contains(name)).map(|(name, _)| name.clone()).collect();
        for name in gone {
            r.remote.remove(&name);
        }
    }

    /// A removed relation is gone once every integrator unit has run its `-relation-broken`.
    fn forget_relation_if_done(&mut self, id: u32) {
        if self.relations.get(&id).is_some_and(|r| r.dying && r.scope.is_empty()) {
            self.relations.remove(&id);
        }
    }

    // --- Hooks.

    pub fn settle(&mut self) -> Result<(), String> {
        // Round robin over the units with hooks queued: each gets its turn, as concurrent
        // unit agents would. Bounded: no hook of the integrator queues another, so a model
        // that does not settle is a bug of the model.
        let mut last = 0;
        for _ in 0..100_000 {
            let busy: Vec<u32> = self.units.iter().filter(|(_, u)| !u.queue.is_empty()).map(|(n, _)| *n).collect();
            let Some(n) = busy.iter().copied().find(|n| *n > last).or(busy.first().copied()) else { return Ok(()) };
            last = n;
            self.run_next(n)?;
        }
        Err("the model never settled".into())
    }

    /// Runs the next queued event of unit `n`, if Juju would still run it, and checks what
    /// the hook did.
    fn run_next(&mut self, n: u32) -> Result<(), String> {
        let Some(ev) = self.units.get_mut(&n).and_then(|u| u.queue.pop_front()) else { return Ok(()) };
        if !self.prepare(n, &ev) {
            return Ok(());
        }
        let ran = self.run_hook(n, &ev);
        let result = self.check_hook(&ran);
        self.after_hook(n, &ev);
        result.map_err(|e| format!("{} {}: {e}", ran.unit, ran.hook))
    }

    /// Applies what Juju changes before a relation hook runs; false when the hook no longer
    /// applies (the relation or the remote unit is gone), as jujusim skips it.
    fn prepare(&mut self, n: u32, ev: &Event) -> bool {
        let Some(id) = ev.relation else { return true };
        let Some(r) = self.relations.get_mut(&id) else { return false };
        if !r.scope.contains_key(&n) {
            return false;
        }
        let remote_live = ev.remote.as_ref().is_some_and(|x| r.remote.get(x).is_some_and(|u| u.live));
        let joined = |r: &Relation| ev.remote.as_ref().is_some_and(|x| r.scope.get(&n).is_some_and(|j| j.contains(x)));
        match ev.kind {
            "relation-joined" => {
                if r.dying || !remote_live {
                    return false;
                }
                if let (Some(j), Some(remote)) = (r.scope.get_mut(&n), &ev.remote) {
                    j.insert(remote.clone());
                }
            }
            "relation-changed" if ev.remote.is_some() => return joined(r),
            "relation-changed" => return !r.dying,
            "relation-departed" => {
                if let (Some(j), Some(remote)) = (r.scope.get_mut(&n), &ev.remote) {
                    j.remove(remote);
                }
            }
            _ => {}
        }
        true
    }

    fn credential(&self) -> serde_json::Value {
        let mut credential = cloud_credential(NODES[0]);
        let attrs = &mut credential["credential"]["attrs"];
        attrs["client-cert"] = SPECIALS.identity(self.rotation).pem.clone().into();
        attrs["client-key"] = IDENTITIES[self.rotation % IDENTITIES.len()].1.clone().into();
        attrs["server-cert"] = SPECIALS.server.pem.clone().into();
        credential
    }

    fn remote_bag(app: usize, member: &str, sent: &Sent) -> Databag {
        let mut bag = Databag::new();
        if let Some((_, k)) = member.split_once('/') {
            bag.insert("private-address".into(), format!("10.1.{app}.{k}"));
        }
        if is_https(app) {
            for (key, value) in sent.render_https(|s| SPECIALS.cert(s).pem.clone()) {
                bag.extend(value.map(|v| (key.to_string(), v)));
            }
        } else if let Some(v) = SPECIALS.render(sent) {
            bag.insert("client_certificates".into(), v);
        }
        bag
    }

    /// Unit `n`'s view: what its hook tools answer.
    fn agent(&self, n: u32) -> Agent {
        let unit = &self.units[&n];
        let mut agent = Agent {
            unit: unit_name(n),
            trusted: self.trusted,
            dying: unit.dying,
            credential: self.credential(),
            config: [("trust-projects".to_string(), serde_json::Value::from(self.projects.value()))].into(),
            leader: self.leader == Some(n),
            state: unit.state.clone(),
            status: unit.status.clone(),
            ..Agent::default()
        };
        for (id, r) in &self.relations {
            let Some(joined) = r.scope.get(&n) else { continue };
            let interface = if is_https(r.app) { Interface::LxdHttps } else { Interface::Lxd };
            let remote = agent.relate_on(interface, *id, &requirer(r.app));
            for name in joined {
                if let Some(u) = r.remote.get(name) {
                    remote.units.insert(name.clone(), World::remote_bag(r.app, name, &u.sent));
                }
            }
            remote.app_bag = World::remote_bag(r.app, &requirer(r.app), &r.remote_app);
            agent.ours.insert((*id, unit_name(n)), r.ours.get(&n).cloned().unwrap_or_default());
            agent.ours.insert((*id, INTEGRATOR.to_string()), r.our_app.clone());
        }
        agent
    }

    /// What unit `n`'s view asks for on each relation, `breaking` left out.
    fn asked_in_view(&self, n: u32, breaking: Option<u32>, protected: &BTreeSet<String>) -> BTreeMap<u32, Asks> {
        let mut out = BTreeMap::new();
        for (id, r) in self.relations.iter().filter(|(id, _)| Some(**id) != breaking) {
            let Some(joined) = r.scope.get(&n) else { continue };
            let app = requirer(r.app);
            let members = joined
                .iter()
                .filter_map(|name| r.remote.get(name).map(|u| (name.as_str(), &u.sent)))
                .chain([(app.as_str(), &r.remote_app)]);
            out.insert(*id, asked(is_https(r.app), members, &SPECIALS, protected, self.projects));
        }
        out
    }

    fn up_nodes(&self) -> BTreeSet<(String, String)> {
        lock(&self.cluster)
            .up
            .iter()
            .enumerate()
            .filter(|(_, (_, up))| **up)
            .map(|(i, (url, _))| (format!("node{}", i + 1), url.clone()))
            .collect()
    }

    fn run_hook(&mut self, n: u32, ev: &Event) -> Ran {
        self.tally.hooks += 1;
        let endpoint = ev.relation.and_then(|id| self.relations.get(&id)).map_or("api", |r| history::endpoint(r.app));
        let hook = ev.hook(endpoint);
        let ctx = HookContext {
            name: ev.action.map_or_else(|| hook.clone(), |a| a.name().to_string()),
            is_action: ev.action.is_some(),
            unit: unit_name(n),
            model_uuid: UUID.into(),
            relation_id: ev.relation,
            remote_app: ev.relation.and_then(|id| self.relations.get(&id)).map(|r| requirer(r.app)),
            remote_unit: ev.remote.clone(),
            departing_unit: ev.departing.clone(),
        };
        let mut agent = self.agent(n);
        let ours_before = agent.ours.clone();
        let protected = SPECIALS.protected(self.rotation);
        let breaking = if ev.kind == "relation-broken" { ev.relation } else { None };
        let asked = self.asked_in_view(n, breaking, &protected);
        let up = self.up_nodes();
        let (store_before, writes_before) = {
            let c = lock(&self.cluster);
            (c.store.clone(), c.writes)
        };
        let result = if let Some(action) = ev.action {
            let params: BTreeMap<String, serde_json::Value> =
                serde_json::from_value(action.params()).unwrap_or_default();
            agent.start_action(params);
            let connector = MemoryConnector(self.cluster.clone());
            lxd_integrator::actions::run(&ctx, &mut Juju::new(&mut agent), &connector).map_err(|e| format!("{e:#}"))
        } else if RECONCILE_HOOKS.contains(&hook.as_str()) {
            let connector = MemoryConnector(self.cluster.clone());
            reconcile::run(&ctx, &mut Juju::new(&mut agent), &connector, Mode::HOOK)
                .map(drop)
                .map_err(|e| e.to_string())
        } else {
            // `stop` and `remove` do nothing, as dispatch has it.
            Ok(())
        };
        let (store_after, writes) = {
            let c = lock(&self.cluster);
            (c.store.clone(), c.writes - writes_before)
        };
        let leader = self.leader == Some(n);
        let dying = self.units.get(&n).is_some_and(|u| u.dying);
        // Juju commits relation data and state only when the hook succeeds; the status is
        // set at once.
        if let Some(u) = self.units.get_mut(&n) {
            u.status = agent.status.clone();
            if result.is_ok() {
                u.state = agent.state.clone();
            }
        }
        if result.is_ok() {
            for ((id, member), bag) in &agent.ours {
                let Some(r) = self.relations.get_mut(id) else { continue };
                if *member == unit_name(n) {
                    r.ours.insert(n, bag.clone());
                } else if leader {
                    r.our_app = bag.clone();
                }
            }
        }
        for c in &agent.calls {
            if matches!(
                c.tool.as_str(),
                "relation-set" | "state-set" | "status-set" | "juju-log" | "application-version-set"
            ) {
                self.writes_seen.push(format!("{} {hook}: {c:?}", unit_name(n)));
            }
        }
        if writes > 0 {
            self.writes_seen.push(format!("{} {hook}: {writes} LXD write(s)", unit_name(n)));
        }
        let shown = match (&ev.remote, &ev.departing) {
            (_, Some(d)) => format!(" ({}, departing {d})", ev.relation.unwrap_or_default()),
            (Some(r), None) => format!(" ({}, {r})", ev.relation.unwrap_or_default()),
            (None, None) => ev.relation.map(|id| format!(" ({id})")).unwrap_or_default(),
        };
        let changes = store_diff(&store_before, &store_after);
        self.tally.count(&store_before, &store_after, &up);
        if ev.action.is_some() {
            self.tally.actions += 1;
            self.tally.adopted += store_after
                .iter()
                .filter(|e| store_before.iter().any(|b| b.fingerprint == e.fingerprint && b.name != e.name))
                .count();
        }
        let mut asking: BTreeMap<&String, usize> = BTreeMap::new();
        for fp in asked.values().flat_map(Asks::fps) {
            *asking.entry(fp).or_default() += 1;
        }
        self.tally.hooks_shared += usize::from(asking.values().any(|n| *n > 1));
        let grants = grants(UUID, &store_before, &asked, &protected, true);
        let foreign_refused = foreign_not_as_asked(UUID, &store_before, &asked);
        let judge = Judge {
            uuid: UUID,
            held: &store_after,
            grants: &grants,
            foreign_refused: &foreign_refused,
            projects: self.projects,
        };
        self.tally.hooks_refusing +=
            usize::from(asked.iter().any(|(rel, a)| !told(&judge, *rel, Some(a)).refused.is_empty()));
        self.tally.told_held_by_another += agent
            .ours
            .iter()
            .filter(|(key, bag)| ours_before.get(*key) != Some(*bag))
            .filter(|(_, bag)| refused_held(bag).is_ok_and(|r| !r.is_empty()))
            .count();
        self.log.push(format!(
            "    {}{} {hook}{shown}: {} {:?}{}",
            unit_name(n),
            if leader { "*" } else { "" },
            agent.status.0,
            agent.status.1,
            if changes.is_empty() { String::new() } else { format!("; LXD: {changes}") }
        ));
        Ran {
            unit: unit_name(n),
            hook,
            leader,
            dying,
            result,
            agent,
            ours_before,
            store_before,
            store_after,
            writes,
            up,
            asked,
            protected,
            identity: SPECIALS.identity(self.rotation).fingerprint.clone(),
            action: ev.action,
        }
    }

    /// What Juju does once a hook has run: membership and life-cycle bookkeeping.
    fn after_hook(&mut self, n: u32, ev: &Event) {
        match (ev.kind, ev.relation) {
            ("relation-departed", Some(id)) => self.forget_departed(id),
            ("relation-broken", Some(id)) => {
                if let Some(r) = self.relations.get_mut(&id) {
                    r.scope.remove(&n);
                    r.ours.remove(&n);
                }
                self.forget_relation_if_done(id);
            }
            ("remove", None) if self.units.get(&n).is_some_and(|u| u.dying) => {
                self.units.remove(&n);
                // Whatever teardown it did not get to (a relation removed meanwhile queues its
                // broken after `remove`), it is in no relation any more.
                let ids: Vec<u32> = self.relations.keys().copied().collect();
                for id in ids {
                    if let Some(r) = self.relations.get_mut(&id) {
                        r.scope.remove(&n);
                        r.ours.remove(&n);
                    }
                    self.forget_departed(id);
                    self.forget_relation_if_done(id);
                }
                if self.leader == Some(n) {
                    // The lowest-numbered unit left leads, as jujusim elects.
                    self.leader = self.units.iter().find(|(_, u)| !u.dying).map(|(m, _)| *m);
                    if let Some(m) = self.leader {
                        self.log.push(format!("  (leadership passes to {})", unit_name(m)));
                        self.queue(m, Event::simple("leader-elected"));
                    }
                }
            }
            _ => {}
        }
    }

    // --- The invariants after every hook.

    fn check_hook(&self, ran: &Ran) -> Result<(), String> {
        ran.result.as_ref().map_err(|e| format!("the hook failed: {e}"))?;
        if let Some(call) = ran.agent.refused().next() {
            return Err(format!("a call a real unit would refuse: {call:?}"));
        }
        for secret in secrets() {
            if let Some(call) = ran.agent.calls_containing(&secret).next() {
                return Err(format!("{} sent {secret:?}", call.tool));
            }
        }
        let written: Vec<(u32, &str, &Databag)> = ran
            .agent
            .ours
            .iter()
            .filter(|(key, bag)| ran.ours_before.get(*key) != Some(*bag))
            .map(|((rel, member), bag)| (*rel, member.as_str(), bag))
            .collect();
        check_hook(&HookFacts {
            uuid: UUID,
            leader: ran.leader,
            dying: ran.dying,
            store_before: &ran.store_before,
            store_after: &ran.store_after,
            lxd_writes: ran.writes,
            asked: &ran.asked,
            protected: &ran.protected,
            identity: &ran.identity,
            server: &SPECIALS.server.fingerprint,
            projects: self.projects,
            action: ran.action,
            written,
            lxd_down: ran.up.is_empty(),
            nodes: Some(&ran.up),
        })
    }

    // --- The quiet period.

    /// LXD comes back, every queued hook runs, then `update-status` on every unit, `QUIET_ROUNDS`
    /// times; the charm must then have converged, and one more round must write nothing. A world the
    /// charm cannot act in (trust removed, its identity deleted from LXD or held restricted)
    /// must then have it blocked; its credentials are then restored and it must converge as
    /// well.
    pub fn quiet(&mut self) -> Result<(), String> {
        self.log.push(
            "▶ quiet period: every LXD member starts, every queued hook runs, then update-status three times on every unit"
                .into(),
        );
        self.step(&Step::Outage(false))?;
        self.settle()?;
        for _ in 0..QUIET_ROUNDS {
            self.quiet_round()?;
        }
        if self.converged()? {
            if !self.projects.exist() {
                // The leader retries what LXD refused on every pass: no round is steady.
                return Ok(());
            }
            self.writes_seen.clear();
            self.log.push("▶ and once more: a steady round writes nothing".into());
            self.quiet_round()?;
            if !self.writes_seen.is_empty() {
                return Err(format!("a steady update-status wrote: {:?}", self.writes_seen));
            }
            return Ok(());
        }
        self.log
            .push("▶ the credentials are restored: juju trust, and the identity trusted by LXD, unrestricted".into());
        let identity = SPECIALS.identity(self.rotation);
        {
            let mut c = lock(&self.cluster);
            match c.store.iter_mut().find(|e| e.fingerprint == identity.fingerprint) {
                // What the blocked status asks of the operator: `lxc config trust edit`.
                Some(e) if e.restricted => {
                    e.restricted = false;
                    e.projects.clear();
                }
                Some(_) => {}
                None => c.store.push(TrustEntry {
                    name: "integrator-identity-restored".into(),
                    fingerprint: identity.fingerprint.clone(),
                    ..TrustEntry::default()
                }),
            }
        }
        self.step(&Step::Trust(true))?;
        self.settle()?;
        for _ in 0..QUIET_ROUNDS {
            self.quiet_round()?;
        }
        if self.converged()? { Ok(()) } else { Err("restored credentials, yet the charm cannot act".into()) }
    }

    fn quiet_round(&mut self) -> Result<(), String> {
        self.for_live_units("update-status");
        self.settle()
    }

    /// Checks the settled world: true when the charm could act (and did as it must), false
    /// when its credentials keep it from acting (and it says so).
    fn converged(&self) -> Result<bool, String> {
        if let Some(id) = self.relations.iter().find(|(_, r)| r.dying).map(|(id, _)| id) {
            return Err(format!("relation {id} is still being removed after every hook ran"));
        }
        let store = lock(&self.cluster).store.clone();
        let identity = &SPECIALS.identity(self.rotation).fingerprint;
        let protected = SPECIALS.protected(self.rotation);
        let mut asked_by = BTreeMap::new();
        let mut bags = Vec::new();
        for (id, r) in &self.relations {
            let app = requirer(r.app);
            let members = r
                .remote
                .iter()
                .filter(|(_, u)| u.live)
                .map(|(name, u)| (name.as_str(), &u.sent))
                .chain([(app.as_str(), &r.remote_app)]);
            asked_by.insert(*id, asked(is_https(r.app), members, &SPECIALS, &protected, self.projects));
            for n in self.units.keys() {
                bags.push((unit_name(*n), *id, r.ours.get(n).cloned().unwrap_or_default()));
            }
            bags.push(("the application".to_string(), *id, r.our_app.clone()));
        }
        check_settled(&Settled {
            uuid: UUID,
            store: &store,
            projects: self.projects,
            protected: &protected,
            identity,
            server: &SPECIALS.server.fingerprint,
            cluster_projects: &["default", "p1"].into(),
            can_act: self.trusted && store.iter().any(|e| &e.fingerprint == identity),
            asked: &asked_by,
            bags: &bags,
            nodes: Some(&self.up_nodes()),
            statuses: self.units.iter().map(|(n, u)| (unit_name(*n), u.status.0.clone(), u.status.1.clone())).collect(),
            leader: self.leader.map(unit_name),
        })
    }
}

/// Steps of the history and hooks run; entries the hooks added, removed and re-restricted; hooks run while
/// LXD was wholly or partly down.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub steps: usize,
    pub hooks: usize,
    pub added: usize,
    pub removed: usize,
    pub restricted: usize,
    pub hooks_lxd_down: usize,
    pub hooks_member_down: usize,
    /// Hooks whose unit saw one certificate asked for on more than one relation.
    pub hooks_shared: usize,
    /// Databags written that refused a certificate as held by another application.
    pub told_held_by_another: usize,
    /// Hooks whose unit had to refuse some relation a certificate as held by another.
    pub hooks_refusing: usize,
    /// Actions run (among the hooks), and entries `adopt` renamed.
    pub actions: usize,
    pub adopted: usize,
}

impl Tally {
    fn count(&mut self, before: &[TrustEntry], after: &[TrustEntry], up: &BTreeSet<(String, String)>) {
        let has = |store: &[TrustEntry], e: &TrustEntry| store.iter().any(|x| x.fingerprint == e.fingerprint);
        self.added += after.iter().filter(|e| !has(before, e)).count();
        self.removed += before.iter().filter(|e| !has(after, e)).count();
        self.restricted += after
            .iter()
            .filter(|e| before.iter().any(|b| b.fingerprint == e.fingerprint && b.projects != e.projects))
            .count();
        match up.len() {
            0 => self.hooks_lxd_down += 1,
            n if n < MEMBERS => self.hooks_member_down += 1,
            _ => {}
        }
    }

    pub fn add(&mut self, other: &Tally) {
        self.steps += other.steps;
        self.hooks += other.hooks;
        self.added += other.added;
        self.removed += other.removed;
        self.restricted += other.restricted;
        self.hooks_lxd_down += other.hooks_lxd_down;
        self.hooks_member_down += other.hooks_member_down;
        self.hooks_shared += other.hooks_shared;
        self.told_held_by_another += other.told_held_by_another;
        self.hooks_refusing += other.hooks_refusing;
        self.actions += other.actions;
        self.adopted += other.adopted;
    }
}
