//! Deploying applications, adding and removing units, and each unit's copy of the charm.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, anyhow, bail};

use crate::bags::{self, Bag};
use crate::charm;
use crate::model::{self, App, Databag, Event, Model, RelEndpoint, Relation, Status, Unit};

use super::commit::drop_relations;
use super::queue::{departed_event, push_event, queue_relation_removal, rel_event};
use super::relations::unit_addresses;
use super::{Sim, accepts_secret_options};

/// How each unit gets its copy of the charm directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    /// Copy every file (default; like Juju unpacking the charm per unit).
    Copy,
    /// Hard-link regular files (fast for many units; the charm must not modify its own
    /// shipped files in place).
    HardLink,
}

/// A loopback address for machine `n` (the simulator never connects to it).
fn machine_address(n: u32) -> String {
    format!("127.10.{}.{}", n / 250, n % 250 + 1)
}

fn copy_tree(src: &Path, dst: &Path, mode: CopyMode) -> anyhow::Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("mkdir {}", dst.display()))?;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if ft.is_symlink() {
            let target = std::fs::read_link(&from)?;
            std::os::unix::fs::symlink(&target, &to).with_context(|| format!("symlink {}", to.display()))?;
        } else if ft.is_dir() {
            copy_tree(&from, &to, mode)?;
            let perms = std::fs::metadata(&from)?.permissions();
            std::fs::set_permissions(&to, perms)?;
        } else {
            match mode {
                CopyMode::HardLink => {
                    if std::fs::hard_link(&from, &to).is_err() {
                        std::fs::copy(&from, &to)?;
                    }
                }
                CopyMode::Copy => {
                    std::fs::copy(&from, &to).with_context(|| format!("copy {}", from.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// joined + changed both ways between a new unit and every remote unit already in scope of
/// relation `id` (every other unit, in a peer relation).
fn queue_meetings(m: &mut Model, id: u32, name: &str) {
    let app = model::unit_app(name);
    let r = &m.relations[&id];
    let remote_app = r.remote_app(app).unwrap().to_string();
    let others: Vec<String> =
        r.scope.keys().filter(|u| *u != name && (r.is_peer() || model::unit_app(u) != app)).cloned().collect();
    for o in others {
        push_event(m, rel_event(name, "relation-joined", id, Some(&o), &remote_app, 0));
        push_event(m, rel_event(name, "relation-changed", id, Some(&o), &remote_app, 0));
        push_event(m, rel_event(&o, "relation-joined", id, Some(name), app, 0));
        push_event(m, rel_event(&o, "relation-changed", id, Some(name), app, 0));
    }
}

impl Sim {
    /// Deploys `charm_dir` as application `app` with `units` units and runs their
    /// install → (relation-created) → leader-elected / leader-settings-changed →
    /// config-changed → start hooks.
    pub fn deploy(&mut self, app: &str, charm_dir: impl AsRef<Path>, units: u32) -> anyhow::Result<Vec<String>> {
        let charm_dir =
            charm_dir.as_ref().canonicalize().with_context(|| format!("charm dir {}", charm_dir.as_ref().display()))?;
        if !model::is_valid_application(app) {
            bail!("invalid application name {app:?}");
        }
        let meta = charm::read_charm(&charm_dir)?;
        self.write(|m| {
            if !accepts_secret_options(&m.juju_version)
                && let Some((name, _)) = meta.config.iter().find(|(_, o)| o.ty == "secret")
            {
                bail!("invalid config: option {name:?} has unknown type \"secret\"");
            }
            if m.apps.contains_key(app) {
                bail!("application {app:?} already exists");
            }
            m.apps.insert(
                app.into(),
                App {
                    name: app.into(),
                    charm_src: charm_dir.clone(),
                    meta: meta.clone(),
                    trusted: false,
                    config: BTreeMap::new(),
                    leader: None,
                    leader_settings: Databag::new(),
                    status: Status::new("unknown", ""),
                    next_unit: 0,
                },
            );
            for (ep, spec) in meta.endpoints.iter().filter(|(_, s)| s.role == "peer") {
                let id = m.next_relation_id;
                m.next_relation_id += 1;
                m.relations.insert(
                    id,
                    Relation {
                        id,
                        endpoints: vec![RelEndpoint {
                            app: app.into(),
                            endpoint: ep.clone(),
                            interface: spec.interface.clone(),
                            role: "peer".into(),
                        }],
                        ..Default::default()
                    },
                );
            }
            Ok(())
        })?;
        let mut out = Vec::new();
        for _ in 0..units {
            out.push(self.add_unit_queued(app)?);
        }
        self.settle()?;
        Ok(out)
    }

    /// Adds a unit to `app` and runs its hooks (and the remote sides' joined/changed).
    pub fn add_unit(&mut self, app: &str) -> anyhow::Result<String> {
        let u = self.add_unit_queued(app)?;
        self.settle()?;
        Ok(u)
    }

    fn add_unit_queued(&mut self, app: &str) -> anyhow::Result<String> {
        let (name, charm_src, dir) = self.write(|m| {
            let a = m.apps.get_mut(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
            let n = a.next_unit;
            a.next_unit += 1;
            let name = format!("{app}/{n}");
            let dir = self.paths.units().join(format!("{app}-{n}")).join("charm");
            Ok((name, a.charm_src.clone(), dir))
        })?;
        copy_tree(&charm_src, &dir, self.copy_mode)?;
        self.write(|m| {
            let machine = m.next_machine;
            m.next_machine += 1;
            let address = machine_address(machine);
            m.units.insert(
                name.clone(),
                Unit {
                    name: name.clone(),
                    app: app.into(),
                    machine: machine.to_string(),
                    address: address.clone(),
                    charm_dir: dir.clone(),
                    status: Status::new("maintenance", "installing charm software"),
                    status_set_by_charm: false,
                    workload_version: String::new(),
                    error: None,
                    state: Databag::new(),
                    started: false,
                    dying: false,
                },
            );
            push_event(m, Event::simple(&name, "install"));
            let rel_ids: Vec<u32> =
                m.relations.values().filter(|r| r.involves(app) && !r.dying).map(|r| r.id).collect();
            for id in &rel_ids {
                let r = m.relations.get_mut(id).unwrap();
                r.scope.insert(name.clone(), BTreeSet::new());
                bags::write(&self.paths, Bag::Unit(*id, &name), &unit_addresses(&address))?;
                let remote_app = r.remote_app(app).unwrap().to_string();
                push_event(m, rel_event(&name, "relation-created", *id, None, &remote_app, 0));
            }
            let a = m.apps.get_mut(app).unwrap();
            if a.leader.is_none() {
                a.leader = Some(name.clone());
                push_event(m, Event::simple(&name, "leader-elected"));
            } else {
                push_event(m, Event::simple(&name, "leader-settings-changed"));
            }
            push_event(m, Event::simple(&name, "config-changed"));
            push_event(m, Event::simple(&name, "start"));
            for id in &rel_ids {
                queue_meetings(m, *id, &name);
            }
            Ok(())
        })?;
        Ok(name)
    }

    /// Removes a unit: it leaves its relations (remote units see relation-departed; the unit
    /// runs relation-departed per remote unit, then relation-broken), then stop and remove.
    /// A removed leader is replaced by the lowest-numbered remaining unit (leader-elected).
    pub fn remove_unit(&mut self, unit: &str) -> anyhow::Result<()> {
        self.write(|m| {
            let u = m.units.get_mut(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
            u.dying = true;
            // Like `--force` for a unit stuck in error: its pending hooks are dropped.
            u.error = None;
            m.queue.retain(|e| e.unit != unit);
            let app = model::unit_app(unit).to_string();
            let rel_ids: Vec<u32> = m.relations.values().filter(|r| r.scope.contains_key(unit)).map(|r| r.id).collect();
            for id in rel_ids {
                let r = &m.relations[&id];
                let remote_app = r.remote_app(&app).unwrap().to_string();
                let watchers: Vec<String> = r
                    .scope
                    .iter()
                    .filter(|(v, seen)| *v != unit && seen.contains(unit))
                    .map(|(v, _)| v.clone())
                    .collect();
                let members: Vec<String> = r.scope[unit].iter().cloned().collect();
                for v in watchers {
                    m.queue.push(departed_event(&v, id, unit, &app, unit));
                }
                for mem in members {
                    m.queue.push(departed_event(unit, id, &mem, &remote_app, unit));
                }
                m.queue.push(rel_event(unit, "relation-broken", id, None, &remote_app, 0));
            }
            m.queue.push(Event::simple(unit, "stop"));
            m.queue.push(Event::simple(unit, "remove"));
            Ok(())
        })?;
        self.settle()
    }

    /// Removes an application: its relations are removed (departed/broken on both sides),
    /// then every unit runs stop and remove.
    pub fn remove_application(&mut self, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.apps.contains_key(app) {
                bail!("application {app:?} not found");
            }
            let rel_ids: Vec<u32> =
                m.relations.values().filter(|r| r.involves(app) && !r.dying).map(|r| r.id).collect();
            for id in rel_ids {
                queue_relation_removal(m, id);
            }
            let units: Vec<String> = m.units.values().filter(|u| u.app == app).map(|u| u.name.clone()).collect();
            for u in &units {
                let unit = m.units.get_mut(u).unwrap();
                unit.dying = true;
                unit.error = None;
                m.queue.push(Event::simple(u, "stop"));
                m.queue.push(Event::simple(u, "remove"));
            }
            Ok(())
        })?;
        self.settle()?;
        self.write(|m| {
            m.apps.remove(app);
            bags::remove(&self.paths, Bag::Leader(app))?;
            for u in m.units.values().filter(|u| u.app == app) {
                bags::remove(&self.paths, Bag::State(&u.name))?;
            }
            m.units.retain(|_, u| u.app != app);
            for s in m.secrets.values_mut() {
                s.grants.remove(app);
                s.consumers.retain(|u, _| model::unit_app(u) != app);
            }
            m.queue.retain(|e| model::unit_app(&e.unit) != app);
            drop_relations(&self.paths, m, |r| r.involves(app))
        })?;
        self.flush()
    }
}
