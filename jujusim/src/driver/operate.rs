//! What an operator does besides deploying and relating: config, trust, leadership, hooks
//! on demand, `juju refresh`, `juju resolved`.

use anyhow::{anyhow, bail};
use serde_json::Value;

use crate::charm;
use crate::model::{self, Event};
use crate::tools;

use super::Sim;
use super::commit::after_hook_bookkeeping;
use super::queue::{push_event, queue_for_app};

impl Sim {
    /// Sets (`Some`) or resets (`None`) config options, type-checked against config.yaml;
    /// fires config-changed on every unit when the effective config changed.
    pub fn set_config(&mut self, app: &str, changes: &[(&str, Option<Value>)]) -> anyhow::Result<()> {
        self.write(|m| {
            let before = tools::effective_config(m, app);
            let a = m.apps.get_mut(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
            for (k, v) in changes {
                let opt = a.meta.config.get(*k).ok_or_else(|| anyhow!("unknown option {k:?}"))?;
                match v {
                    None => {
                        a.config.remove(*k);
                    }
                    Some(v) => {
                        let v = charm::coerce_config(&opt.ty, v).map_err(|e| anyhow!("option {k:?}: {e}"))?;
                        a.config.insert(k.to_string(), v);
                    }
                }
            }
            if tools::effective_config(m, app) != before {
                queue_for_app(m, app, "config-changed");
            }
            Ok(())
        })?;
        self.settle()
    }

    /// The application's effective config (as `config-get --all` shows it).
    pub fn config(&self, app: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
        let m = self.read()?;
        if !m.apps.contains_key(app) {
            bail!("application {app:?} not found");
        }
        Ok(tools::effective_config(&m, app))
    }

    /// `juju trust app` / `juju trust app --remove`: fires config-changed when it changes.
    pub fn trust(&mut self, app: &str, trusted: bool) -> anyhow::Result<()> {
        self.write(|m| {
            let a = m.apps.get_mut(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
            if a.trusted != trusted {
                a.trusted = trusted;
                queue_for_app(m, app, "config-changed");
            }
            Ok(())
        })?;
        self.settle()
    }

    /// Makes `unit` the leader of its application: it runs leader-elected; the deposed
    /// leader runs leader-settings-changed.
    pub fn set_leader(&mut self, unit: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.units.contains_key(unit) {
                bail!("unit {unit:?} not found");
            }
            let app = model::unit_app(unit).to_string();
            let a = m.apps.get_mut(&app).unwrap();
            if a.leader.as_deref() == Some(unit) {
                return Ok(());
            }
            let old = a.leader.replace(unit.to_string());
            push_event(m, Event::simple(unit, "leader-elected"));
            if let Some(old) = old
                && m.units.contains_key(&old)
            {
                push_event(m, Event::simple(&old, "leader-settings-changed"));
            }
            Ok(())
        })?;
        self.settle()
    }

    /// Runs update-status on every unit of `app`.
    pub fn update_status(&mut self, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.apps.contains_key(app) {
                bail!("application {app:?} not found");
            }
            queue_for_app(m, app, "update-status");
            Ok(())
        })?;
        self.settle()
    }

    /// Runs a non-relation hook (`update-status`, `upgrade-charm`, ...) on one unit.
    pub fn run_hook(&mut self, unit: &str, hook: &str) -> anyhow::Result<()> {
        if hook.contains("relation-") {
            bail!("run_hook runs non-relation hooks; use relate/unrelate/write_relation_data");
        }
        self.write(|m| {
            if !m.units.contains_key(unit) {
                bail!("unit {unit:?} not found");
            }
            m.queue.push(Event::simple(unit, hook));
            Ok(())
        })?;
        self.settle()
    }

    /// Simulates `juju refresh`: upgrade-charm → config-changed → start on every unit.
    /// (The unit charm dirs are not re-copied; change files in `unit_dir` if needed.)
    pub fn upgrade_charm(&mut self, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.apps.contains_key(app) {
                bail!("application {app:?} not found");
            }
            queue_for_app(m, app, "upgrade-charm");
            queue_for_app(m, app, "config-changed");
            queue_for_app(m, app, "start");
            Ok(())
        })?;
        self.settle()
    }

    // -----------------------------------------------------------------------------------
    // errors

    /// `juju resolved`: retries the failed hook, then carries on with the unit's queue.
    pub fn resolve(&mut self, unit: &str) -> anyhow::Result<()> {
        self.write(|m| {
            let u = m.units.get_mut(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
            let e = u.error.take().ok_or_else(|| anyhow!("unit {unit:?} is not in an error state"))?;
            m.queue.insert(0, e.event);
            Ok(())
        })?;
        self.settle()
    }

    /// `juju resolved --no-retry`: skips the failed hook.
    pub fn resolve_no_retry(&mut self, unit: &str) -> anyhow::Result<()> {
        self.write(|m| {
            let u = m.units.get_mut(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
            let e = u.error.take().ok_or_else(|| anyhow!("unit {unit:?} is not in an error state"))?;
            after_hook_bookkeeping(&self.paths, m, &e.event, true)?;
            Ok(())
        })?;
        self.settle()
    }
}
