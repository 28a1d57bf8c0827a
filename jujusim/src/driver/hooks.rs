//! The hook loop: pops the next runnable event, prepares it as the uniter does, runs it and
//! settles its outcome.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;

use crate::bags::{self, Bag};
use crate::model::{self, Databag, Event, HookContext, Model, Relation, UnitError};

use super::Sim;
use super::commit::{after_hook_bookkeeping, commit};
use super::process::ProcOutcome;
use super::records::HookRecord;

/// A popped event made ready to run: its context is saved and its environment built.
struct Prepared {
    ev: Event,
    ctx: HookContext,
    charm_dir: PathBuf,
    app: String,
    /// Leader settings before the hook: `leader-set` is immediate, so a change tells the
    /// minions even when the hook fails.
    leader_before: Databag,
    vars: BTreeMap<String, String>,
}

/// What the queue holds next.
enum Next {
    /// Nothing runnable: every remaining event waits for a unit in error.
    Idle,
    /// An event that no longer applies (its unit, relation or secret is gone).
    Skipped,
    Hook(Box<Prepared>),
}

impl Sim {
    /// Runs queued hooks until only units in error hold any.
    pub(super) fn settle(&mut self) -> anyhow::Result<()> {
        let r = (|| {
            while self.run_next()? {}
            Ok(())
        })();
        self.flush()?;
        r
    }

    /// Runs the next runnable queued hook; false when there is none.
    fn run_next(&mut self) -> anyhow::Result<bool> {
        let p = match self.write(|m| self.prepare_next(m))? {
            Next::Idle => return Ok(false),
            Next::Skipped => return Ok(true),
            Next::Hook(p) => p,
        };
        let (outcome, ctx) = self.run_process(&p.charm_dir, "hooks", &p.ctx.hook_name, &p.vars, p.ctx.clone());
        let record = self.write(|m| self.finish_hook(m, &p, ctx, &outcome))?;
        model::append_record(&self.paths.hook_records(), &record)?;
        if let Some(observe) = self.observer.as_mut()
            && let Some(c) = self.cache.borrow().as_ref()
        {
            let mut snapshot = c.model.clone();
            bags::fill(&self.paths, &mut snapshot)?;
            observe(&record, &snapshot);
        }
        Ok(true)
    }

    /// Pops the next event of a unit not in error and prepares it: the membership changes
    /// Juju applies before the hook, the context file, the environment.
    fn prepare_next(&self, m: &mut Model) -> anyhow::Result<Next> {
        let idx = m.queue.iter().position(|e| m.units.get(&e.unit).is_some_and(|u| u.error.is_none()));
        let Some(idx) = idx else {
            // Drop events of units that no longer exist.
            m.queue.retain(|e| m.units.contains_key(&e.unit));
            return Ok(Next::Idle);
        };
        let ev = m.queue.remove(idx);
        if ev.depth > self.max_rounds {
            bail!(
                "relation data never settled: still firing {} on {} after {} rounds of relation-changed",
                ev.kind,
                ev.unit,
                self.max_rounds
            );
        }
        let Some(u) = m.units.get(&ev.unit) else { return Ok(Next::Skipped) };
        let (charm_dir, app) = (u.charm_dir.clone(), u.app.clone());
        let mut hook_name = ev.kind.clone();
        let mut relation = None;
        if let Some(id) = ev.relation_id {
            let Some(r) = m.relations.get_mut(&id) else { return Ok(Next::Skipped) };
            let Some(ep) = enter_relation_hook(r, &ev, &app) else { return Ok(Next::Skipped) };
            hook_name = format!("{ep}-{}", ev.kind);
            relation = Some((ep, id));
        }
        let ctx = HookContext {
            id: format!("{}-{}-{}", ev.unit, hook_name, crate::random::random_hex(8)),
            unit: ev.unit.clone(),
            hook_name: hook_name.clone(),
            relation_id: ev.relation_id,
            remote_unit: ev.remote_unit.clone(),
            remote_app: ev.remote_app.clone(),
            departing_unit: ev.departing_unit.clone(),
            ..Default::default()
        };
        let leader_before = bags::read_or_empty(&self.paths, Bag::Leader(&app))?;
        let mut vars = self.base_env(m, &ctx, &charm_dir, &hook_name);
        let secret = match &ev.secret {
            Some((id, _)) => {
                let Some(s) = m.secrets.get(id) else { return Ok(Next::Skipped) };
                Some((id.clone(), s.consumers.get(&ev.unit).map(|c| c.label.clone()).unwrap_or_default()))
            }
            None => None,
        };
        hook_vars(&mut vars, &ev, &ctx, relation, secret);
        Ok(Next::Hook(Box::new(Prepared { ev, ctx, charm_dir, app, leader_before, vars })))
    }

    /// Commits a hook that exited 0, or puts its unit in error, and records it.
    fn finish_hook(
        &self,
        m: &mut Model,
        p: &Prepared,
        ctx: HookContext,
        outcome: &ProcOutcome,
    ) -> anyhow::Result<HookRecord> {
        let ev = &p.ev;
        let mut error = outcome.error.clone();
        let ok = outcome.exit_code == 0 && error.is_none();
        if ok && let Err(e) = commit(&self.paths, m, &ctx, ev.depth + 1) {
            error = Some(e.to_string());
        }
        if m.apps.contains_key(&p.app) && bags::read_or_empty(&self.paths, Bag::Leader(&p.app))? != p.leader_before {
            tell_minions(m, &p.app, ev);
        }
        if !ok || error.is_some() {
            if let Some(u) = m.units.get_mut(&ev.unit) {
                u.error = Some(UnitError { message: format!("hook failed: \"{}\"", ctx.hook_name), event: ev.clone() });
            }
        } else {
            after_hook_bookkeeping(&self.paths, m, ev, true)?;
        }
        Ok(HookRecord::of("hook", &ctx, outcome, error))
    }
}

/// Applies the membership change Juju makes before a relation hook, and returns the unit's
/// endpoint; `None` when the hook no longer applies (the unit left, the remote unit is gone).
fn enter_relation_hook(r: &mut Relation, ev: &Event, app: &str) -> Option<String> {
    if !r.scope.contains_key(&ev.unit) {
        return None;
    }
    let ep = r.local_endpoint(app).unwrap().endpoint.clone();
    match ev.kind.as_str() {
        "relation-joined" => {
            let remote = ev.remote_unit.clone().unwrap();
            if r.dying || !r.scope.contains_key(&remote) {
                return None;
            }
            r.scope.get_mut(&ev.unit).unwrap().insert(remote);
        }
        "relation-changed" => {
            if let Some(remote) = &ev.remote_unit {
                if !r.scope[&ev.unit].contains(remote) {
                    return None;
                }
            } else if r.dying {
                return None;
            }
        }
        "relation-departed" => {
            let remote = ev.remote_unit.clone().unwrap();
            r.scope.get_mut(&ev.unit).unwrap().remove(&remote);
        }
        _ => {}
    }
    Some(ep)
}

/// The variables a hook has beyond every hook's: the dispatch path, the relation's, the
/// secret's.
fn hook_vars(
    vars: &mut BTreeMap<String, String>,
    ev: &Event,
    ctx: &HookContext,
    relation: Option<(String, u32)>,
    secret: Option<(String, String)>,
) {
    vars.insert("JUJU_DISPATCH_PATH".into(), format!("hooks/{}", ctx.hook_name));
    if let Some((id, label)) = secret {
        // Secret hooks: the URI and the consumer's label; secret-changed carries no
        // revision (canonical/operator docs, "Secrets": only secret-expired, -rotate and
        // -remove set JUJU_SECRET_REVISION).
        vars.insert("JUJU_SECRET_ID".into(), format!("secret:{id}"));
        vars.insert("JUJU_SECRET_LABEL".into(), label);
    }
    if let Some((ep, id)) = relation {
        vars.insert("JUJU_RELATION_ID".into(), format!("{ep}:{id}"));
        vars.insert("JUJU_RELATION".into(), ep);
        vars.insert("JUJU_REMOTE_UNIT".into(), ev.remote_unit.clone().unwrap_or_default());
        vars.insert("JUJU_REMOTE_APP".into(), ev.remote_app.clone().unwrap_or_default());
        if let Some(d) = &ev.departing_unit {
            vars.insert("JUJU_DEPARTING_UNIT".into(), d.clone());
        }
    }
}

/// `leader-settings-changed` for every other live unit of `app`, once each.
fn tell_minions(m: &mut Model, app: &str, ev: &Event) {
    let minions: Vec<String> =
        m.units.values().filter(|u| u.app == app && u.name != ev.unit && !u.dying).map(|u| u.name.clone()).collect();
    for mu in minions {
        let mut e = Event::simple(&mu, "leader-settings-changed");
        e.depth = ev.depth + 1;
        if !m.queue.iter().any(|q| q.same_as(&e)) {
            m.queue.push(e);
        }
    }
}
