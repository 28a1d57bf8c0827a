//! The soak's world: the packed charm in `jujusim`, against a real LXD cluster from `testbed`.
//! The same steps as the in-memory model (`tests/model/history.rs`), done to the simulator
//! and the cluster; the same checks (`tests/model/oracle.rs`) after every hook, through the
//! simulator's hook observer (actions, which it does not observe, as each ends), and after
//! every quiet period. An `lxd-https` requirer's keys are written one at a time, as the
//! simulator commits one per call, and each hook is judged on the databag as it then was.
//!
//! What the real world cannot follow: `Hook` and `Settle` steps do nothing (the simulator runs
//! every hook as it is queued); a second member is not stopped while one is down (the cluster
//! would lose its quorum and hang rather than refuse), only all at once; the operator never
//! deletes LXD's `server` entries or the test bed's own admin entry; an old charm's entry named
//! `juju-relation-<unit>` is not made where LXD refuses a `/` in a name (5.21.3+, 6.2+). Which members the charm
//! saw online is not checked hook by hook (LXD reports a killed member online until its
//! heartbeat times out), only at the end of each quiet period, once every member is back.

use crate::history::*;
use crate::oracle::*;
use crate::scenario::{MARKER, POOL, RELATION_KEY, key_secret};
use anyhow::{Context, Result, anyhow};
use jujusim::model::Model;
use jujusim::{HookRecord, RelationId, Sim};
use lxd_integrator::lxd::{TrustEntry, TrustKind};
use lxd_integrator::relation::Databag;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;
use testbed::LxdCluster;
use testbed::certs::Pem;

/// What the runner and the hook observer share.
struct Shared {
    uuid: String,
    specials: Specials,
    /// The trust store as the last hook (or the runner) left it.
    store: Vec<TrustEntry>,
    /// The integrator's databags as last seen: (relation, unit or application) → bag.
    bags: BTreeMap<(u32, String), Databag>,
    /// What each requirer member has written on each relation.
    written: BTreeMap<(u32, String), Sent>,
    protected: BTreeSet<String>,
    /// The fingerprint of the credential in use.
    identity: String,
    /// The fingerprint of LXD's (cluster) server certificate.
    server: String,
    projects: Projects,
    /// Every LXD member is down.
    lxd_down: bool,
    hooks: usize,
    /// Entries the hooks added and removed, and databags they wrote (each one checked).
    added: usize,
    removed: usize,
    bags_checked: usize,
    log: Vec<String>,
    violations: Vec<String>,
}

pub struct Soak {
    sim: Sim,
    cluster: Rc<RefCell<LxdCluster>>,
    shared: Rc<RefCell<Shared>>,
    identities: Vec<Pem>,
    rotation: usize,
    trusted: bool,
    /// What each requirer member sends (units `req0/1`, applications `req0`).
    sends: BTreeMap<String, Sent>,
    down: BTreeSet<usize>,
    /// Tool-call records already scanned for secrets.
    scanned: usize,
    pub faults: usize,
    pub applied: usize,
    /// Quiet periods whose third round still rewrote a unit's state cache or status.
    pub restless: usize,
}

fn entry(v: &Value) -> TrustEntry {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    TrustEntry {
        name: s("name"),
        fingerprint: s("fingerprint"),
        kind: s("type").as_str().into(),
        restricted: v["restricted"].as_bool().unwrap_or(false),
        projects: v["projects"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_str().map(String::from)).collect())
            .unwrap_or_default(),
    }
}

/// The trust store, in fingerprint order (so two reads of an unchanged store are equal).
fn store(cluster: &LxdCluster) -> Result<Vec<TrustEntry>> {
    let mut entries: Vec<TrustEntry> = cluster.trust_list()?.iter().map(entry).collect();
    entries.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    Ok(entries)
}

const REQUIRER_META: &str = "name: requirer\nsummary: a requirer with no hooks\ndescription: its data is written by the soak\nrequires:\n  lxd:\n    interface: lxd\n";
/// An `lxd-https` requirer, as charm-lxd's `https-client` relates.
const HTTPS_REQUIRER_META: &str = "name: https-requirer\nsummary: an lxd-https requirer with no hooks\ndescription: its data is written by the soak\nrequires:\n  https:\n    interface: lxd-https\n";

/// `update-status` rounds in a quiet period, as in the in-memory model (`tests/model/world.rs`,
/// which says why three).
const QUIET_ROUNDS: usize = 3;

/// The keys the integrator writes on a relation of `https` or `api`.
fn provider_keys(https: bool) -> &'static [&'static str] {
    if https {
        &["version", "certificate", "certificate_fingerprint", "addresses", "project", "refused"]
    } else {
        &[
            "version",
            "nodes",
            "registered_certificates",
            "server_certificate",
            "server_certificate_fingerprint",
            "refused",
        ]
    }
}

/// Whether a requirer member (`gw0/1`, `gw0`) is of an `lxd-https` application.
fn requirer_app_is_https(member: &str) -> bool {
    let app = member.split('/').next().unwrap_or_default();
    (0..REQUIRERS).any(|a| requirer(a) == app && is_https(a))
}

/// Whether relation `r` is on the integrator's `https` endpoint.
fn on_https(r: &jujusim::model::Relation) -> bool {
    r.local_endpoint(INTEGRATOR).is_some_and(|e| e.endpoint == "https")
}

impl Soak {
    /// Two integrator units (trusted) related to `req0`, `gw0` (on `https`) and `req1`, as the
    /// in-memory model starts; `req2` and `gw1` with no units send from their application
    /// databags. The trust store holds the integrator's identity, another model's integrator
    /// entry, another integrator application's, an operator's own entry for `cert#4`, which
    /// `req2` asks for, and the old charms' entries for `cert#5` (CN-named, `req1` asks for it)
    /// and `cert#3` (`juju-relation-gw1`), besides the test bed's own.
    pub fn start(work: &Path, charm_dir: &Path, cluster: LxdCluster) -> Result<Soak> {
        cluster.lxc(&["project", "create", "p1"]).context("creating project p1")?;
        let identities: Vec<Pem> =
            (0..3).map(|i| testbed::certs::client_cert(&format!("soak-integrator-{i}"))).collect::<Result<_>>()?;
        let specials = Specials {
            identities: identities.iter().map(|p| Cert::from_pem(&p.cert_pem)).collect(),
            server: Cert::from_pem(cluster.cluster_cert_pem()),
        };
        let requirer = work.join("requirer");
        std::fs::create_dir_all(&requirer)?;
        std::fs::write(requirer.join("metadata.yaml"), REQUIRER_META)?;
        let https_requirer = work.join("https-requirer");
        std::fs::create_dir_all(&https_requirer)?;
        std::fs::write(https_requirer.join("metadata.yaml"), HTTPS_REQUIRER_META)?;
        let sim = Sim::new(work.join("sim"), "soak")?;
        let uuid = sim.model_uuid();
        cluster.trust_add("integrator-identity-0", &identities[0].cert_pem)?;
        cluster.trust_add(&format!("juju.11111111-1c2b-4f5e-8a9b-123456789abc.{INTEGRATOR}.1.req0.0"), &POOL[1].pem)?;
        operator_add(&cluster, &format!("juju.{uuid}.{INTEGRATOR}-b.2.req1.app"), &POOL[6].pem, true)?;
        operator_add(&cluster, "ops-admin", &POOL[4].pem, false)?;
        operator_add(&cluster, &Legacy::Cn.name(5), &POOL[5].pem, false)?;
        operator_add(&cluster, &Legacy::CharmLxdApp(1).name(3), &POOL[3].pem, false)?;
        let shared = Shared {
            uuid,
            protected: specials.protected(0),
            identity: specials.identity(0).fingerprint.clone(),
            server: specials.server.fingerprint.clone(),
            specials,
            store: store(&cluster)?,
            bags: BTreeMap::new(),
            written: BTreeMap::new(),
            projects: Projects::Unset,
            lxd_down: false,
            hooks: 0,
            added: 0,
            removed: 0,
            bags_checked: 0,
            log: Vec::new(),
            violations: Vec::new(),
        };
        let mut soak = Soak {
            sim,
            cluster: Rc::new(RefCell::new(cluster)),
            shared: Rc::new(RefCell::new(shared)),
            identities,
            rotation: 0,
            trusted: true,
            sends: BTreeMap::new(),
            down: BTreeSet::new(),
            scanned: 0,
            faults: 0,
            applied: 0,
            restless: 0,
        };
        soak.observe();
        soak.sim.set_cloud_spec(soak.cloud_spec())?;
        soak.sim.deploy(INTEGRATOR, charm_dir, 2)?;
        soak.sim.trust(INTEGRATOR, true)?;
        soak.sends.insert("req0/0".into(), Sent::certs(&[0]));
        soak.sends.insert("req1/0".into(), Sent::certs(&[2, 5]));
        soak.sends.insert("req2".into(), Sent::certs(&[4]));
        soak.sends.insert("gw0/0".into(), Sent::certs(&[2]).asking(Ask::Default));
        soak.sends.insert("gw1".into(), Sent::certs(&[0]));
        soak.sim.deploy("req0", &requirer, 1)?;
        soak.sim.deploy("req1", &requirer, 1)?;
        soak.sim.deploy("req2", &requirer, 0)?;
        soak.sim.deploy("gw0", &https_requirer, 1)?;
        soak.sim.deploy("gw1", &https_requirer, 0)?;
        soak.relate(0)?;
        soak.relate(3)?;
        soak.relate(1)?;
        Ok(soak)
    }

    pub fn hooks(&self) -> usize {
        self.shared.borrow().hooks
    }

    /// Entries the hooks added, removed, and the databags they wrote.
    pub fn work(&self) -> (usize, usize, usize) {
        let sh = self.shared.borrow();
        (sh.added, sh.removed, sh.bags_checked)
    }

    pub fn violations(&self) -> Vec<String> {
        self.shared.borrow().violations.clone()
    }

    /// The narration so far, and a fresh one from here.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.shared.borrow_mut().log)
    }

    fn say(&self, line: String) {
        self.shared.borrow_mut().log.push(line);
    }

    fn cloud_spec(&self) -> Value {
        let cluster = self.cluster.borrow();
        let identity = &self.identities[self.rotation % self.identities.len()];
        json!({
            "type": "lxd", "name": "localhost", "region": "localhost",
            "endpoint": format!("https://{}", cluster.endpoint(0)),
            "credential": {"auth-type": "certificate", "attrs": {
                "client-cert": identity.cert_pem, "client-key": identity.key_pem, "server-cert": cluster.cluster_cert_pem(),
            }},
        })
    }

    /// Checks every integrator hook as it ends (see `oracle::check_hook`).
    fn observe(&mut self) {
        let cluster = self.cluster.clone();
        let shared = self.shared.clone();
        self.sim.set_hook_observer(move |record, model| {
            observed(&mut shared.borrow_mut(), &cluster.borrow(), record, model, None);
        });
    }

    // --- Steps.

    /// Does `step`; false when the real world cannot or need not follow it.
    pub fn step(&mut self, step: &Step) -> Result<bool> {
        self.say(format!("▶ {}", say(step)));
        let done = match step {
            Step::AddUnit => {
                if self.live_units()?.len() >= MAX_UNITS {
                    return Ok(false);
                }
                let unit = self.sim.add_unit(INTEGRATOR)?;
                self.say(format!("  → {unit}"));
                true
            }
            Step::RemoveUnit(k) => {
                let live = self.live_units()?;
                if live.len() <= 1 {
                    return Ok(false);
                }
                let unit = &live[k % live.len()];
                self.say(format!("  → {unit}"));
                self.sim.remove_unit(unit)?;
                true
            }
            Step::MoveLeader(k) => {
                let live = self.live_units()?;
                let unit = &live[k % live.len()];
                self.sim.set_leader(unit)?;
                true
            }
            Step::Relate(a) => {
                if self.live_relation(*a)?.is_some() {
                    return Ok(false);
                }
                self.relate(*a)?;
                true
            }
            Step::Unrelate(k) => {
                let rels = self.sim.relation_ids(INTEGRATOR)?;
                if rels.is_empty() {
                    return Ok(false);
                }
                self.sim.unrelate(rels[k % rels.len()])?;
                true
            }
            Step::AddRequirerUnit(a, sent) => {
                let app = requirer(*a);
                if self.sim.units(&app)?.len() >= MAX_REQUIRER_UNITS {
                    return Ok(false);
                }
                let unit = self.sim.add_unit(&app)?;
                self.say(format!("  → {unit}"));
                self.sends.insert(unit.clone(), sent.clone());
                if let Some(rel) = self.live_relation(*a)? {
                    self.write(rel, &unit)?;
                }
                true
            }
            Step::RemoveRequirerUnit(a, k) => {
                let units = self.sim.units(&requirer(*a))?;
                if units.is_empty() {
                    return Ok(false);
                }
                let unit = &units[k % units.len()];
                self.say(format!("  → {unit}"));
                self.sim.remove_unit(unit)?;
                true
            }
            Step::Send(a, member, sent) => {
                let app = requirer(*a);
                let who = match member {
                    Member::App => app.clone(),
                    Member::Unit(k) => {
                        let units = self.sim.units(&app)?;
                        if units.is_empty() {
                            return Ok(false);
                        }
                        units[k % units.len()].clone()
                    }
                };
                self.say(format!("  → {who}"));
                self.sends.insert(who.clone(), sent.clone());
                if let Some(rel) = self.live_relation(*a)? {
                    self.write(rel, &who)?;
                }
                true
            }
            Step::SetProjects(p) => {
                self.shared.borrow_mut().projects = *p;
                self.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(p.value())))])?;
                true
            }
            Step::Trust(t) => {
                self.trusted = *t;
                self.sim.trust(INTEGRATOR, *t)?;
                true
            }
            Step::RotateCredential => {
                self.rotation += 1;
                let identity = self.identities[self.rotation % self.identities.len()].clone();
                if self.down.len() < MEMBERS && !self.in_store(&identity.fingerprint)? {
                    self.cluster
                        .borrow()
                        .trust_add(&format!("integrator-identity-{}", self.rotation), &identity.cert_pem)?;
                    self.refresh_store()?;
                }
                let (protected, identity) = {
                    let sh = self.shared.borrow();
                    (sh.specials.protected(self.rotation), sh.specials.identity(self.rotation).fingerprint.clone())
                };
                let mut sh = self.shared.borrow_mut();
                (sh.protected, sh.identity) = (protected, identity);
                drop(sh);
                self.sim.set_cloud_spec(self.cloud_spec())?;
                true
            }
            Step::Member(i, up) => self.member(*i % MEMBERS, *up)?,
            Step::Outage(down) => self.outage(*down)?,
            Step::OperatorAdd(c, restricted) => {
                let cert = &POOL[c % POOL.len()];
                if self.down.len() == MEMBERS || self.in_store(&cert.fingerprint)? {
                    return Ok(false);
                }
                operator_add(
                    &self.cluster.borrow(),
                    &format!("operator-cert{}", c % POOL.len()),
                    &cert.pem,
                    *restricted,
                )?;
                self.refresh_store()?;
                true
            }
            Step::LegacyAdd(c, legacy, restricted) => {
                let cert = &POOL[c % POOL.len()];
                if self.down.len() == MEMBERS || self.in_store(&cert.fingerprint)? {
                    return Ok(false);
                }
                let name = legacy.name(c % POOL.len());
                if let Err(e) = operator_add(&self.cluster.borrow(), &name, &cert.pem, *restricted) {
                    // LXD 5.21.3+ and 6.2+ refuse a `/` in a name (`juju-relation-<unit>`).
                    self.say(format!("  (not followed: LXD refused the name {name:?}: {e:#})"));
                    return Ok(false);
                }
                self.refresh_store()?;
                true
            }
            Step::Action(k, action) => {
                let live = self.live_units()?;
                let unit = live[k % live.len()].clone();
                self.sim.run_action(&unit, action.name(), action.params())?;
                let record = self
                    .sim
                    .hooks()?
                    .into_iter()
                    .rev()
                    .find(|h| h.unit == unit && h.kind == "action")
                    .context("the action's record")?;
                let model = self.sim.model()?;
                observed(&mut self.shared.borrow_mut(), &self.cluster.borrow(), &record, &model, Some(*action));
                true
            }
            Step::OperatorDelete(k) => {
                if self.down.len() == MEMBERS {
                    return Ok(false);
                }
                let deletable: Vec<TrustEntry> = self
                    .shared
                    .borrow()
                    .store
                    .iter()
                    .filter(|e| e.kind == TrustKind::Client && e.name != "testbed-admin")
                    .cloned()
                    .collect();
                if deletable.is_empty() {
                    return Ok(false);
                }
                let gone = &deletable[k % deletable.len()];
                self.say(format!("  → {} ({})", gone.name, name_of(&gone.fingerprint)));
                self.cluster.borrow().trust_remove(&gone.fingerprint)?;
                self.refresh_store()?;
                true
            }
            Step::UpdateStatus(k) => {
                let live = self.live_units()?;
                self.sim.run_hook(&live[k % live.len()], "update-status")?;
                true
            }
            Step::Hook(_) | Step::Settle => false,
        };
        if done {
            self.applied += 1;
        }
        Ok(done)
    }

    fn live_units(&self) -> Result<Vec<String>> {
        let model = self.sim.model()?;
        Ok(self.sim.units(INTEGRATOR)?.into_iter().filter(|u| model.units.get(u).is_some_and(|u| !u.dying)).collect())
    }

    fn live_relation(&self, app: usize) -> Result<Option<RelationId>> {
        let model = self.sim.model()?;
        Ok(self
            .sim
            .relation_ids(&requirer(app))?
            .into_iter()
            .find(|id| model.relations.get(id).is_some_and(|r| r.endpoints.iter().any(|e| e.app == INTEGRATOR))))
    }

    /// `juju relate`, then every member of the requirer writes what it sends (as a requirer
    /// does from its first relation hook).
    fn relate(&mut self, app: usize) -> Result<()> {
        let name = requirer(app);
        let theirs = if is_https(app) { "https" } else { "lxd" };
        let rel = self.sim.relate(&format!("{INTEGRATOR}:{}", endpoint(app)), &format!("{name}:{theirs}"))?;
        self.say(format!("  → relation {rel}"));
        for unit in self.sim.units(&name)? {
            self.write(rel, &unit)?;
        }
        self.write(rel, &name)
    }

    /// `member` writes what it sends on `rel` (`relation-changed` follows on the integrator).
    /// An `lxd-https` requirer writes one key at a time (the simulator commits one per call):
    /// `version` first when it starts speaking, then `certificate`, then `projects`, and
    /// `version` last when it stops; what each hook in between sees is recorded as it is.
    fn write(&mut self, rel: RelationId, member: &str) -> Result<()> {
        let sent = self.sends.get(member).cloned().unwrap_or_else(Sent::absent);
        let https = requirer_app_is_https(member);
        if !https {
            let value = self.shared.borrow().specials.render(&sent);
            self.shared.borrow_mut().written.insert((rel, member.to_string()), sent);
            return self.sim.write_relation_data(rel, member, "client_certificates", value.as_deref());
        }
        let old = self.shared.borrow().written.get(&(rel, member.to_string())).cloned().unwrap_or_else(Sent::absent);
        let render = |s: &Sent| self.shared.borrow().specials.render_https(s);
        let (was, now) = (render(&old), render(&sent));
        let key = |keys: &[(&'static str, Option<String>); 3], k: &str| {
            keys.iter().find(|(name, _)| *name == k).and_then(|(_, v)| v.clone())
        };
        let speaks = key(&now, "version").is_some();
        let mut state = old.clone();
        let mut steps: Vec<(&str, Sent)> = Vec::new();
        if speaks {
            steps.push(("version", state.clone()));
        }
        state = Sent { value: sent.value.clone(), special: sent.special, ..state };
        steps.push(("certificate", state.clone()));
        steps.push(("projects", sent.clone()));
        if !speaks {
            steps.push(("version", sent.clone()));
        }
        for (k, after) in steps {
            let value = key(&now, k);
            if key(&was, k) == value {
                continue;
            }
            self.shared.borrow_mut().written.insert((rel, member.to_string()), after);
            self.sim.write_relation_data(rel, member, k, value.as_deref())?;
        }
        self.shared.borrow_mut().written.insert((rel, member.to_string()), sent);
        Ok(())
    }

    fn in_store(&self, fp: &str) -> Result<bool> {
        Ok(store(&self.cluster.borrow())?.iter().any(|e| e.fingerprint == fp))
    }

    /// The runner changed LXD itself: that is the new baseline for the next hook.
    fn refresh_store(&self) -> Result<()> {
        let now = store(&self.cluster.borrow())?;
        self.shared.borrow_mut().store = now;
        Ok(())
    }

    fn member(&mut self, i: usize, up: bool) -> Result<bool> {
        let running = !self.down.contains(&i);
        if up == running {
            return Ok(false);
        }
        if !up && !self.down.is_empty() {
            self.say("  (not followed: a second member down would cost the cluster its quorum)".into());
            return Ok(false);
        }
        if up && self.down.len() == MEMBERS {
            self.say("  (not followed: a member alone cannot start without a quorum)".into());
            return Ok(false);
        }
        if up {
            self.cluster.borrow_mut().start_member(i)?;
            self.down.remove(&i);
        } else {
            self.cluster.borrow_mut().kill_member(i)?;
            self.down.insert(i);
            self.faults += 1;
        }
        Ok(true)
    }

    fn outage(&mut self, down: bool) -> Result<bool> {
        if down {
            let running: Vec<usize> = (0..MEMBERS).filter(|i| !self.down.contains(i)).collect();
            if running.is_empty() {
                return Ok(false);
            }
            for i in running {
                self.cluster.borrow_mut().kill_member(i)?;
                self.down.insert(i);
            }
            self.faults += 1;
            self.shared.borrow_mut().lxd_down = true;
        } else {
            if self.down.is_empty() {
                return Ok(false);
            }
            let stopped: Vec<usize> = self.down.iter().copied().collect();
            self.cluster.borrow_mut().start_members(&stopped)?;
            self.down.clear();
            self.shared.borrow_mut().lxd_down = false;
        }
        Ok(true)
    }

    // --- The quiet period.

    /// Every member starts and is seen online, then update-status on every unit, as many rounds
    /// as the in-memory model's quiet period (`QUIET_ROUNDS`, and why): the
    /// charm must have converged (or, if it cannot act, say so and converge once its
    /// credentials are restored), and a third round must write nothing.
    pub fn quiet(&mut self) -> Result<()> {
        self.say("▶ quiet period: every LXD member starts, then update-status three times on every unit".into());
        self.outage(false)?;
        {
            let cluster = self.cluster.borrow();
            for i in 0..MEMBERS {
                cluster.wait_member_status(i, "Online", Duration::from_secs(90))?;
            }
        }
        for _ in 0..QUIET_ROUNDS {
            self.sim.update_status(INTEGRATOR)?;
        }
        if self.settled()? {
            if self.shared.borrow().projects.exist() {
                let calls = self.sim.tool_calls()?.len();
                let before = store(&self.cluster.borrow())?;
                self.say("▶ and once more: a steady round writes nothing".into());
                self.sim.update_status(INTEGRATOR)?;
                // Relation data and LXD must stay as they are. The unit may still rewrite its
                // state cache or status: unlike the in-memory one, a real cluster can change
                // what the quiet path digests (a member's state just after a restart).
                let calls = &self.sim.tool_calls()?[calls..];
                let writes: Vec<String> = calls
                    .iter()
                    .filter(|c| c.unit.starts_with(INTEGRATOR) && c.tool == "relation-set")
                    .map(|c| {
                        format!(
                            "{} {}: {} {:?} {}",
                            c.unit,
                            c.hook,
                            c.tool,
                            c.args,
                            c.stdin.as_deref().unwrap_or_default()
                        )
                    })
                    .collect();
                if !writes.is_empty() || store(&self.cluster.borrow())? != before {
                    self.violation(format!("a steady update-status wrote: {writes:?}"));
                }
                if calls
                    .iter()
                    .any(|c| c.unit.starts_with(INTEGRATOR) && matches!(c.tool.as_str(), "state-set" | "status-set"))
                {
                    self.restless += 1;
                }
            }
            return self.scan_for_secrets();
        }
        self.say("▶ the credentials are restored: juju trust, and the identity trusted by LXD, unrestricted".into());
        let identity = self.identities[self.rotation % self.identities.len()].clone();
        let held = store(&self.cluster.borrow())?.into_iter().find(|e| e.fingerprint == identity.fingerprint);
        match held {
            // What the blocked status asks of the operator: `lxc config trust edit`.
            Some(e) if e.restricted => {
                let path = format!("/1.0/certificates/{}", identity.fingerprint);
                let body = json!({"restricted": false, "projects": []});
                self.cluster
                    .borrow()
                    .query("PATCH", &path, Some(&body))
                    .context("trusting the credential unrestricted")?;
                self.refresh_store()?;
            }
            Some(_) => {}
            None => {
                self.cluster.borrow().trust_add("integrator-identity-restored", &identity.cert_pem)?;
                self.refresh_store()?;
            }
        }
        self.trusted = true;
        self.sim.trust(INTEGRATOR, true)?;
        for _ in 0..QUIET_ROUNDS {
            self.sim.update_status(INTEGRATOR)?;
        }
        if !self.settled()? {
            self.violation("restored credentials, yet the charm cannot act".into());
        }
        self.scan_for_secrets()
    }

    fn violation(&self, v: String) {
        let mut sh = self.shared.borrow_mut();
        sh.log.push(format!("✗ {v}"));
        sh.violations.push(v);
    }

    /// `oracle::check_settled` over what the simulator and LXD hold now.
    fn settled(&mut self) -> Result<bool> {
        let model = self.sim.model()?;
        let store = store(&self.cluster.borrow())?;
        self.shared.borrow_mut().store = store.clone();
        let sh = self.shared.borrow();
        let identity = &self.identities[self.rotation % self.identities.len()].fingerprint;
        let mut asked_by = BTreeMap::new();
        let mut bags = Vec::new();
        let units = self.sim.units(INTEGRATOR)?;
        for (id, r) in model.relations.iter().filter(|(_, r)| r.endpoints.iter().any(|e| e.app == INTEGRATOR)) {
            let Some(app) = r.remote_app(INTEGRATOR) else { continue };
            let members: Vec<(String, Sent)> = r
                .scope
                .keys()
                .filter(|u| u.starts_with(&format!("{app}/")))
                .cloned()
                .chain([app.to_string()])
                .map(|m| (m.clone(), sh.written.get(&(*id, m)).cloned().unwrap_or_else(Sent::absent)))
                .collect();
            asked_by.insert(
                *id,
                asked(
                    on_https(r),
                    members.iter().map(|(m, s)| (m.as_str(), s)),
                    &sh.specials,
                    &sh.protected,
                    sh.projects,
                ),
            );
            for unit in &units {
                bags.push((unit.clone(), *id, r.unit_data.get(unit).cloned().unwrap_or_default()));
            }
            bags.push(("the application".into(), *id, r.app_data.get(INTEGRATOR).cloned().unwrap_or_default()));
        }
        let statuses = units
            .iter()
            .map(|u| {
                let (status, message) = self.sim.unit_status(u)?;
                Ok((u.clone(), status, message))
            })
            .collect::<Result<Vec<_>>>()?;
        let settled = check_settled(&Settled {
            uuid: &sh.uuid,
            store: &store,
            projects: sh.projects,
            protected: &sh.protected,
            identity,
            server: &sh.server,
            cluster_projects: &["default", "p1"].into(),
            can_act: self.trusted && store.iter().any(|e| &e.fingerprint == identity),
            asked: &asked_by,
            bags: &bags,
            nodes: None,
            statuses,
            leader: self.sim.leader(INTEGRATOR)?,
        });
        drop(sh);
        match settled {
            Ok(true) => {
                let https: BTreeSet<u32> = asked_by.iter().filter(|(_, a)| a.https).map(|(id, _)| *id).collect();
                self.check_members(&bags, &https)?;
                Ok(true)
            }
            Ok(false) => Ok(false),
            Err(v) => {
                self.violation(v);
                Ok(true)
            }
        }
    }

    /// Once every member is back and online, every published databag lists them all.
    /// (On `api` the application's databag is empty; on `https` a databag lists `addresses` only
    /// when something is claimed there.)
    fn check_members(&self, bags: &[(String, u32, Databag)], https: &BTreeSet<u32>) -> Result<()> {
        let cluster = self.cluster.borrow();
        let online: BTreeSet<(String, String)> = cluster
            .members()?
            .iter()
            .filter(|m| m["status"] == "Online")
            .map(|m| {
                (
                    m["server_name"].as_str().unwrap_or_default().to_string(),
                    m["url"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        for (whose, rel, bag) in bags {
            if https.contains(rel) {
                let listed = addresses(bag);
                let want: BTreeSet<String> = online.iter().map(|(_, url)| authority(url)).collect();
                if !listed.is_empty() && listed != want && online.len() == MEMBERS {
                    self.violation(format!("{whose} on relation {rel} lists {listed:?}, LXD has {want:?} online"));
                }
                continue;
            }
            if whose == "the application" {
                continue;
            }
            match published(bag) {
                Ok(p) if p.nodes != online && online.len() == MEMBERS => self
                    .violation(format!("{whose} on relation {rel} publishes {:?}, LXD has {online:?} online", p.nodes)),
                Ok(_) => {}
                Err(e) => self.violation(format!("{whose} on relation {rel}: {e}")),
            }
        }
        Ok(())
    }

    /// No marker, no pasted key, no part of an identity's key in anything the charm wrote:
    /// tool calls (arguments and stdin), hook output, logs, statuses.
    fn scan_for_secrets(&mut self) -> Result<()> {
        let mut needles = vec![MARKER.to_string(), key_secret(&RELATION_KEY)];
        for identity in &self.identities {
            let body: String = identity.key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
            needles.push(body[body.len().saturating_sub(40)..].to_string());
        }
        let calls = self.sim.tool_calls()?;
        for c in calls[self.scanned..].iter().filter(|c| c.unit.starts_with(INTEGRATOR)) {
            let text = format!("{:?} {}", c.args, c.stdin.as_deref().unwrap_or_default());
            if let Some(n) = needles.iter().find(|n| text.contains(n.as_str())) {
                self.violation(format!("{} {}: {} carried {n:?}", c.unit, c.hook, c.tool));
            }
        }
        self.scanned = calls.len();
        for h in self.sim.hooks()?.iter().filter(|h| h.unit.starts_with(INTEGRATOR)) {
            if let Some(n) = needles.iter().find(|n| h.stdout.contains(n.as_str()) || h.stderr.contains(n.as_str())) {
                self.violation(format!("{} {}: its output carried {n:?}", h.unit, h.hook));
            }
        }
        Ok(())
    }
}

/// Adds `pem` to the trust store as an operator would, restricted to `default` or not.
fn operator_add(cluster: &LxdCluster, name: &str, pem: &str, restricted: bool) -> Result<()> {
    if !restricted {
        return cluster.trust_add(name, pem).map(drop);
    }
    use base64::Engine as _;
    let der = lxd_integrator::certs::pem_blocks(pem)
        .map_err(|e| anyhow!("{e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no PEM"))?
        .der;
    let body = json!({"type": "client", "name": name, "certificate": base64::engine::general_purpose::STANDARD.encode(der), "restricted": true, "projects": ["default"]});
    cluster.query("POST", "/1.0/certificates", Some(&body)).map(drop)
}

/// One integrator hook (or action) as it ends: checked, narrated, and what it left is the
/// baseline for the next.
fn observed(sh: &mut Shared, cluster: &LxdCluster, record: &HookRecord, model: &Model, action: Option<Action>) {
    if !record.unit.starts_with(&format!("{INTEGRATOR}/")) {
        return;
    }
    sh.hooks += 1;
    let after = if sh.lxd_down { Ok(sh.store.clone()) } else { store(cluster) };
    let mut changes = String::new();
    let verdict = after.map_err(|e| format!("cannot read LXD's trust store: {e:#}")).and_then(|after| {
        changes = store_diff(&sh.store, &after);
        let verdict = check(sh, record, model, &after, action);
        let has = |store: &[TrustEntry], e: &TrustEntry| store.iter().any(|x| x.fingerprint == e.fingerprint);
        sh.added += after.iter().filter(|e| !has(&sh.store, e)).count();
        sh.removed += sh.store.iter().filter(|e| !has(&after, e)).count();
        sh.store = after;
        verdict
    });
    let (status, message) =
        model.units.get(&record.unit).map(|u| (u.status.status.clone(), u.status.message.clone())).unwrap_or_default();
    let what = if action.is_some() { format!("action {}", record.hook) } else { record.hook.clone() };
    let changes = if changes.is_empty() { changes } else { format!("; LXD: {changes}") };
    sh.log.push(format!("    {} {what}: {status} {message:?}{changes}", record.unit));
    // What the hook wrote is the new baseline, whatever the verdict.
    for (id, r) in &model.relations {
        for (member, bag) in r
            .unit_data
            .iter()
            .filter(|(u, _)| u.starts_with(&format!("{INTEGRATOR}/")))
            .chain(r.app_data.get_key_value(INTEGRATOR))
        {
            sh.bags.insert((*id, member.clone()), bag.clone());
        }
    }
    if let Err(v) = verdict {
        let line = format!("{} {what}: {v}", record.unit);
        sh.log.push(format!("✗ {line}"));
        sh.violations.push(line);
    }
}

/// The checks of one hook: it succeeded, and `oracle::check_hook` holds over what it did.
fn check(
    sh: &mut Shared,
    record: &HookRecord,
    model: &Model,
    after: &[TrustEntry],
    action: Option<Action>,
) -> Result<(), String> {
    if record.failed() {
        return Err(format!(
            "the hook failed (exit {}): {} {}",
            record.exit_code,
            record.error.as_deref().unwrap_or_default(),
            record.stderr.trim()
        ));
    }
    let unit = model.units.get(&record.unit);
    // The unit's view as it ends the hook: Juju updates membership before a hook, and takes a
    // unit out of a relation only after its -relation-broken.
    let mut asked_view = BTreeMap::new();
    for (id, r) in &model.relations {
        let Some(joined) = r.scope.get(&record.unit) else { continue };
        let Some(app) = r.remote_app(INTEGRATOR) else { continue };
        if record.hook == "api-relation-broken" && record.relation_id == Some(*id) {
            continue;
        }
        let members: Vec<(String, Sent)> = joined
            .iter()
            .cloned()
            .chain([app.to_string()])
            .map(|m| (m.clone(), sh.written.get(&(*id, m)).cloned().unwrap_or_else(Sent::absent)))
            .collect();
        asked_view.insert(
            *id,
            asked(on_https(r), members.iter().map(|(m, s)| (m.as_str(), s)), &sh.specials, &sh.protected, sh.projects),
        );
    }
    // The integrator's databags whose provider keys the hook changed.
    let mut written = Vec::new();
    for (id, r) in &model.relations {
        let keys = provider_keys(on_https(r));
        let provided = |bag: Option<&Databag>| -> Vec<(String, String)> {
            bag.into_iter()
                .flatten()
                .filter(|(k, _)| keys.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        let own = r.unit_data.get_key_value(&record.unit).into_iter().chain(r.app_data.get_key_value(INTEGRATOR));
        for (member, bag) in own {
            if provided(sh.bags.get(&(*id, member.clone()))) != provided(Some(bag)) {
                written.push((*id, member.as_str(), bag));
            }
        }
    }
    sh.bags_checked += written.len();
    check_hook(&HookFacts {
        uuid: &sh.uuid,
        leader: model.apps.get(INTEGRATOR).and_then(|a| a.leader.as_deref()) == Some(record.unit.as_str()),
        dying: unit.is_none_or(|u| u.dying),
        store_before: &sh.store,
        store_after: after,
        lxd_writes: usize::from(sh.store != after),
        asked: &asked_view,
        protected: &sh.protected,
        identity: &sh.identity,
        server: &sh.server,
        projects: sh.projects,
        action,
        written,
        lxd_down: sh.lxd_down,
        nodes: None,
    })
}
