//! Relating and unrelating applications, and the relation data a test reads or forces.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail};

use crate::bags::{self, Bag};
use crate::charm::CharmMeta;
use crate::model::{self, Databag, Model, RelEndpoint, Relation};

use super::queue::{push_event, queue_app_data_changed, queue_relation_removal, queue_unit_data_changed, rel_event};
use super::{RelationId, Sim};

/// Where an `app:endpoint` spec may omit the endpoint.
fn split_endpoint(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((a, e)) => (a, Some(e)),
        None => (spec, None),
    }
}

pub(super) fn unit_addresses(address: &str) -> Databag {
    let mut bag = Databag::new();
    bag.insert("private-address".into(), address.into());
    bag.insert("ingress-address".into(), address.into());
    bag.insert("egress-subnets".into(), format!("{address}/32"));
    bag
}

fn relation_exists(m: &Model, rel: RelationId) -> anyhow::Result<()> {
    m.relations.get(&rel).map(drop).ok_or_else(|| anyhow!("relation {rel} not found"))
}

/// Juju refuses a relation that exists already, or one past an endpoint's `limit`.
fn check_relatable(m: &Model, ea: &RelEndpoint, eb: &RelEndpoint) -> anyhow::Result<()> {
    if m.relations.values().any(|r| {
        !r.dying
            && r.endpoints.len() == 2
            && r.endpoints.iter().any(|e| e.app == ea.app && e.endpoint == ea.endpoint)
            && r.endpoints.iter().any(|e| e.app == eb.app && e.endpoint == eb.endpoint)
    }) {
        bail!("relation {}:{} {}:{} already exists", ea.app, ea.endpoint, eb.app, eb.endpoint);
    }
    for e in [ea, eb] {
        let Some(limit) = m.apps[&e.app].meta.endpoints[&e.endpoint].limit else { continue };
        let count = m
            .relations
            .values()
            .filter(|r| !r.dying && r.endpoints.iter().any(|x| x.app == e.app && x.endpoint == e.endpoint))
            .count() as u64;
        if count >= limit {
            bail!(
                "establishing a new relation for {}:{} would exceed its maximum relation limit of {limit}",
                e.app,
                e.endpoint
            );
        }
    }
    Ok(())
}

/// (name, address) of every unit of `app` not being removed.
fn live_units(m: &Model, app: &str) -> Vec<(String, String)> {
    m.units.values().filter(|u| u.app == app && !u.dying).map(|u| (u.name.clone(), u.address.clone())).collect()
}

fn resolve_endpoints(m: &Model, a: &str, b: &str) -> anyhow::Result<(RelEndpoint, RelEndpoint)> {
    let (app_a, ep_a) = split_endpoint(a);
    let (app_b, ep_b) = split_endpoint(b);
    let meta_a: &CharmMeta = &m.apps.get(app_a).ok_or_else(|| anyhow!("application {app_a:?} not found"))?.meta;
    let meta_b: &CharmMeta = &m.apps.get(app_b).ok_or_else(|| anyhow!("application {app_b:?} not found"))?.meta;
    let mut candidates = Vec::new();
    for (na, sa) in &meta_a.endpoints {
        if ep_a.is_some_and(|e| e != na) {
            continue;
        }
        for (nb, sb) in &meta_b.endpoints {
            if ep_b.is_some_and(|e| e != nb) {
                continue;
            }
            let roles_ok =
                (sa.role == "provider" && sb.role == "requirer") || (sa.role == "requirer" && sb.role == "provider");
            if roles_ok && sa.interface == sb.interface {
                candidates.push((
                    RelEndpoint {
                        app: app_a.into(),
                        endpoint: na.clone(),
                        interface: sa.interface.clone(),
                        role: sa.role.clone(),
                    },
                    RelEndpoint {
                        app: app_b.into(),
                        endpoint: nb.clone(),
                        interface: sb.interface.clone(),
                        role: sb.role.clone(),
                    },
                ));
            }
        }
    }
    match candidates.len() {
        0 => bail!("no relations found between {a:?} and {b:?}"),
        1 => Ok(candidates.pop().unwrap()),
        _ => bail!("ambiguous relation: {a:?} {b:?} could refer to several endpoint pairs"),
    }
}

impl Sim {
    /// Relates two endpoints (`app:endpoint`, or `app` when the match is unambiguous):
    /// relation-created on every unit of both sides, then joined + changed per remote unit.
    pub fn relate(&mut self, a: &str, b: &str) -> anyhow::Result<RelationId> {
        let id = self.write(|m| {
            let (ea, eb) = resolve_endpoints(m, a, b)?;
            check_relatable(m, &ea, &eb)?;
            let id = m.next_relation_id;
            m.next_relation_id += 1;
            let (units_a, units_b) = (live_units(m, &ea.app), live_units(m, &eb.app));
            let mut rel = Relation { id, endpoints: vec![ea.clone(), eb.clone()], ..Default::default() };
            for (u, addr) in units_a.iter().chain(units_b.iter()) {
                rel.scope.insert(u.clone(), BTreeSet::new());
                bags::write(&self.paths, Bag::Unit(id, u), &unit_addresses(addr))?;
            }
            m.relations.insert(id, rel);
            // Every unit of each side sees relation-created, then joined + changed per unit
            // of the other side.
            let sides = [(&units_a, &units_b, &eb.app), (&units_b, &units_a, &ea.app)];
            for (mine, _, their_app) in sides {
                for (u, _) in mine {
                    push_event(m, rel_event(u, "relation-created", id, None, their_app, 0));
                }
            }
            for (mine, theirs, their_app) in sides {
                for (u, _) in mine {
                    for (v, _) in theirs {
                        push_event(m, rel_event(u, "relation-joined", id, Some(v), their_app, 0));
                        push_event(m, rel_event(u, "relation-changed", id, Some(v), their_app, 0));
                    }
                }
            }
            Ok(id)
        })?;
        self.settle()?;
        Ok(id)
    }

    /// Removes a relation: each unit runs relation-departed once per remote unit it knows,
    /// then relation-broken.
    pub fn unrelate(&mut self, rel: RelationId) -> anyhow::Result<()> {
        self.write(|m| {
            let r = m.relations.get(&rel).ok_or_else(|| anyhow!("relation {rel} not found"))?;
            if r.dying {
                bail!("relation {rel} is already being removed");
            }
            queue_relation_removal(m, rel);
            Ok(())
        })?;
        self.settle()
    }

    /// Writes (or with `None` deletes) a key in a databag as if `member` (a unit, or an
    /// application name for its app databag) had committed it, bypassing every check, and
    /// fires relation-changed on the other side. For garbage/robustness tests.
    pub fn write_relation_data(
        &mut self,
        rel: RelationId,
        member: &str,
        key: &str,
        value: Option<&str>,
    ) -> anyhow::Result<()> {
        self.write(|m| {
            let r = m.relations.get(&rel).ok_or_else(|| anyhow!("relation {rel} not found"))?;
            let is_unit = member.contains('/');
            if !r.involves(if is_unit { model::unit_app(member) } else { member }) {
                bail!("{member} is not in relation {rel}");
            }
            let name = if is_unit { Bag::Unit(rel, member) } else { Bag::App(rel, member) };
            let mut bag = bags::read_or_empty(&self.paths, name)?;
            match value {
                Some(v) => bag.insert(key.into(), v.into()),
                None => bag.remove(key),
            };
            bags::write(&self.paths, name, &bag)?;
            if is_unit {
                queue_unit_data_changed(m, rel, member, 0);
            } else {
                queue_app_data_changed(m, rel, member, None, 0);
            }
            Ok(())
        })?;
        self.settle()
    }

    /// The committed unit databag of `unit` in `rel` (includes Juju's address keys).
    pub fn relation_data(&self, rel: RelationId, unit: &str) -> anyhow::Result<Databag> {
        self.read_bag(|m| relation_exists(m, rel), Bag::Unit(rel, unit))
    }

    /// The committed application databag of `app` in `rel`.
    pub fn relation_app_data(&self, rel: RelationId, app: &str) -> anyhow::Result<Databag> {
        self.read_bag(|m| relation_exists(m, rel), Bag::App(rel, app))
    }

    /// Ids of the live relations of `app` (on any endpoint), ascending.
    pub fn relation_ids(&self, app: &str) -> anyhow::Result<Vec<RelationId>> {
        let m = self.read()?;
        Ok(m.relations.values().filter(|r| r.involves(app) && !r.dying).map(|r| r.id).collect())
    }

    /// The remote units `unit` currently sees in `rel` (what relation-list prints).
    pub fn relation_units(&self, rel: RelationId, unit: &str) -> anyhow::Result<Vec<String>> {
        let m = self.read()?;
        let r = m.relations.get(&rel).ok_or_else(|| anyhow!("relation {rel} not found"))?;
        Ok(r.scope.get(unit).map(|s| s.iter().cloned().collect()).unwrap_or_default())
    }
}
