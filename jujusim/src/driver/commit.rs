//! What a finished hook changes in the model: its transaction (committed only when it exits
//! 0) and the uniter's bookkeeping.

use anyhow::bail;

use crate::bags::{self, Bag};
use crate::model::{self, Event, HookContext, MAX_DATABAG_BYTES, Model, Paths, Relation, Status};

use super::queue::{queue_app_data_changed, queue_unit_data_changed};

/// What happens in the model once a hook has completed (or been skipped).
pub(super) fn after_hook_bookkeeping(paths: &Paths, m: &mut Model, ev: &Event, _ok: bool) -> anyhow::Result<()> {
    match ev.kind.as_str() {
        "relation-created" => {
            if let Some(r) = ev.relation_id.and_then(|id| m.relations.get_mut(&id)) {
                r.created.insert(ev.unit.clone());
            }
        }
        "relation-departed" => {
            if let Some(r) = ev.relation_id.and_then(|id| m.relations.get_mut(&id))
                && let Some(s) = r.scope.get_mut(&ev.unit)
            {
                s.remove(ev.remote_unit.as_deref().unwrap_or_default());
            }
        }
        "relation-broken" => {
            if let Some(id) = ev.relation_id
                && let Some(r) = m.relations.get_mut(&id)
            {
                r.scope.remove(&ev.unit);
                r.created.remove(&ev.unit);
                if r.dying && r.scope.is_empty() {
                    m.relations.remove(&id);
                    bags::remove_relation(paths, id)?;
                }
            }
        }
        "secret-changed" => {
            // The uniter's CommitHook: it has told the charm about this revision.
            if let Some((id, rev)) = &ev.secret
                && let Some(c) = m.secrets.get_mut(id).and_then(|s| s.consumers.get_mut(&ev.unit))
            {
                c.notified = *rev;
            }
        }
        "start" => {
            if let Some(u) = m.units.get_mut(&ev.unit) {
                u.started = true;
                if !u.status_set_by_charm {
                    u.status = Status::new("unknown", "");
                }
            }
        }
        "remove" if m.units.get(&ev.unit).is_some_and(|u| u.dying) => forget_unit(paths, m, &ev.unit)?,
        _ => {}
    }
    Ok(())
}

/// A removed unit leaves the model, its relations and secrets; a removed leader is replaced
/// by the lowest-numbered remaining unit.
fn forget_unit(paths: &Paths, m: &mut Model, unit: &str) -> anyhow::Result<()> {
    m.units.remove(unit);
    bags::remove(paths, Bag::State(unit))?;
    for s in m.secrets.values_mut() {
        s.consumers.remove(unit);
    }
    for r in m.relations.values_mut() {
        r.scope.remove(unit);
        for s in r.scope.values_mut() {
            s.remove(unit);
        }
    }
    drop_relations(paths, m, |r| r.dying && r.scope.is_empty())?;
    let app = model::unit_app(unit).to_string();
    if let Some(a) = m.apps.get_mut(&app)
        && a.leader.as_deref() == Some(unit)
    {
        a.leader = None;
        let mut rest: Vec<(u32, String)> = m
            .units
            .values()
            .filter(|u| u.app == app && !u.dying)
            .map(|u| (model::unit_number(&u.name), u.name.clone()))
            .collect();
        rest.sort();
        if let Some((_, new)) = rest.into_iter().next() {
            m.apps.get_mut(&app).unwrap().leader = Some(new.clone());
            m.queue.push(Event::simple(&new, "leader-elected"));
        }
    }
    Ok(())
}

/// Removes the relations `gone` picks, with their databags.
pub(super) fn drop_relations(paths: &Paths, m: &mut Model, gone: impl Fn(&Relation) -> bool) -> anyhow::Result<()> {
    let ids: Vec<u32> = m.relations.values().filter(|r| gone(r)).map(|r| r.id).collect();
    for id in ids {
        m.relations.remove(&id);
        bags::remove_relation(paths, id)?;
    }
    Ok(())
}

/// Applies a successful hook's staged writes and queues relation-changed on the other side.
/// Only a databag the hook changed is written.
pub(super) fn commit(paths: &Paths, m: &mut Model, ctx: &HookContext, depth: u32) -> anyhow::Result<()> {
    let app = model::unit_app(&ctx.unit).to_string();
    for (id, bag) in ctx.staged_unit.iter().chain(ctx.staged_app.iter()) {
        if model::databag_size(bag) > MAX_DATABAG_BYTES {
            bail!(
                "cannot write relation settings for relation {id}: settings exceed the {} byte limit",
                MAX_DATABAG_BYTES
            );
        }
    }
    for (id, bag) in &ctx.staged_unit {
        if m.relations.contains_key(id) && bags::read(paths, Bag::Unit(*id, &ctx.unit))?.as_ref() != Some(bag) {
            bags::write(paths, Bag::Unit(*id, &ctx.unit), bag)?;
            queue_unit_data_changed(m, *id, &ctx.unit, depth);
        }
    }
    for (id, bag) in &ctx.staged_app {
        if m.relations.contains_key(id) && bags::read(paths, Bag::App(*id, &app))?.as_ref() != Some(bag) {
            bags::write(paths, Bag::App(*id, &app), bag)?;
            queue_app_data_changed(m, *id, &app, Some(&ctx.unit), depth);
        }
    }
    if let Some(state) = &ctx.staged_state
        && m.units.contains_key(&ctx.unit)
    {
        bags::write(paths, Bag::State(&ctx.unit), state)?;
    }
    Ok(())
}
