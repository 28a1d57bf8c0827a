//! What an operator looks at: statuses, versions, units, leader settings, charm state.

use std::path::PathBuf;

use anyhow::anyhow;

use crate::bags::Bag;
use crate::model::{self, Databag, Event, Model};

use super::Sim;

impl Sim {
    /// The application's leader unit.
    pub fn leader(&self, app: &str) -> anyhow::Result<Option<String>> {
        Ok(self.read()?.apps.get(app).ok_or_else(|| anyhow!("application {app:?} not found"))?.leader.clone())
    }

    /// Leader settings (leader-get) of an application.
    pub fn leader_settings(&self, app: &str) -> anyhow::Result<Databag> {
        let exists = |m: &Model| m.apps.get(app).map(drop).ok_or_else(|| anyhow!("application {app:?} not found"));
        self.read_bag(exists, Bag::Leader(app))
    }

    /// `(status, message)` of a unit: `("error", "hook failed: \"x\"")` while in a hook
    /// error, else its workload status.
    pub fn unit_status(&self, unit: &str) -> anyhow::Result<(String, String)> {
        let m = self.read()?;
        let u = m.units.get(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
        if let Some(e) = &u.error {
            return Ok(("error".into(), e.message.clone()));
        }
        Ok((u.status.status.clone(), u.status.message.clone()))
    }

    /// `(status, message)` set with `status-set --application`.
    pub fn app_status(&self, app: &str) -> anyhow::Result<(String, String)> {
        let m = self.read()?;
        let a = m.apps.get(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
        Ok((a.status.status.clone(), a.status.message.clone()))
    }

    /// The workload version set with application-version-set (by the leader, or else by
    /// any unit, as `juju status` shows it).
    pub fn app_version(&self, app: &str) -> anyhow::Result<String> {
        let m = self.read()?;
        let a = m.apps.get(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
        if let Some(l) = a.leader.as_ref().and_then(|l| m.units.get(l))
            && !l.workload_version.is_empty()
        {
            return Ok(l.workload_version.clone());
        }
        Ok(m.units
            .values()
            .filter(|u| u.app == app)
            .map(|u| u.workload_version.clone())
            .find(|v| !v.is_empty())
            .unwrap_or_default())
    }

    /// The unit's charm directory (its cwd and `JUJU_CHARM_DIR`).
    pub fn unit_dir(&self, unit: &str) -> anyhow::Result<PathBuf> {
        let m = self.read()?;
        Ok(m.units.get(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?.charm_dir.clone())
    }

    /// Units of an application, in name order.
    pub fn units(&self, app: &str) -> anyhow::Result<Vec<String>> {
        let m = self.read()?;
        let mut v: Vec<(u32, String)> =
            m.units.values().filter(|u| u.app == app).map(|u| (model::unit_number(&u.name), u.name.clone())).collect();
        v.sort();
        Ok(v.into_iter().map(|(_, n)| n).collect())
    }

    /// Committed charm state (state-get) of a unit.
    pub fn unit_state(&self, unit: &str) -> anyhow::Result<Databag> {
        self.read_bag(
            |m| m.units.get(unit).map(drop).ok_or_else(|| anyhow!("unit {unit:?} not found")),
            Bag::State(unit),
        )
    }

    /// Hooks still waiting to run (only units in error hold any after a call returns).
    pub fn pending_hooks(&self) -> anyhow::Result<Vec<Event>> {
        Ok(self.read()?.queue)
    }
}
