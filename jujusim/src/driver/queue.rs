//! The hook queue: the events a change fires, in Juju's order, coalesced as Juju does.

use crate::model::{self, Event, Model};

pub(super) fn push_event(m: &mut Model, ev: Event) {
    if ev.kind == "relation-changed" && m.queue.iter().any(|q| q.same_as(&ev)) {
        return;
    }
    m.queue.push(ev);
}

pub(super) fn rel_event(
    unit: &str,
    kind: &str,
    rel: u32,
    remote_unit: Option<&str>,
    remote_app: &str,
    depth: u32,
) -> Event {
    Event {
        unit: unit.into(),
        kind: kind.into(),
        relation_id: Some(rel),
        remote_unit: remote_unit.map(String::from),
        remote_app: Some(remote_app.into()),
        departing_unit: None,
        depth,
        secret: None,
    }
}

pub(super) fn queue_unit_data_changed(m: &mut Model, rel: u32, writer: &str, depth: u32) {
    let Some(r) = m.relations.get(&rel) else {
        return;
    };
    let app = model::unit_app(writer).to_string();
    let targets: Vec<String> =
        r.scope.iter().filter(|(v, seen)| *v != writer && seen.contains(writer)).map(|(v, _)| v.clone()).collect();
    for v in targets {
        push_event(m, rel_event(&v, "relation-changed", rel, Some(writer), &app, depth));
    }
}

pub(super) fn queue_app_data_changed(m: &mut Model, rel: u32, app: &str, writer: Option<&str>, depth: u32) {
    let Some(r) = m.relations.get(&rel) else {
        return;
    };
    if r.dying {
        return;
    }
    let peer = r.is_peer();
    let targets: Vec<String> = r
        .scope
        .keys()
        .filter(|v| if peer { Some(v.as_str()) != writer } else { model::unit_app(v) != app })
        .cloned()
        .collect();
    for v in targets {
        push_event(m, rel_event(&v, "relation-changed", rel, None, app, depth));
    }
}

pub(super) fn queue_for_app(m: &mut Model, app: &str, kind: &str) {
    let units: Vec<String> = m.units.values().filter(|u| u.app == app && !u.dying).map(|u| u.name.clone()).collect();
    for u in units {
        push_event(m, Event::simple(&u, kind));
    }
}

/// relation-departed on `unit` for `member`, with `departing` (JUJU_DEPARTING_UNIT) the unit
/// that is going away: `member` itself, or `unit` when it is the one being removed.
pub(super) fn departed_event(unit: &str, rel: u32, member: &str, remote_app: &str, departing: &str) -> Event {
    let mut ev = rel_event(unit, "relation-departed", rel, Some(member), remote_app, 0);
    ev.departing_unit = Some(departing.into());
    ev
}

/// Queues relation-departed (per known remote unit) then relation-broken on every unit in
/// scope, and marks the relation dying.
pub(super) fn queue_relation_removal(m: &mut Model, rel: u32) {
    let r = m.relations.get_mut(&rel).unwrap();
    r.dying = true;
    let r = r.clone();
    m.queue.retain(|e| e.relation_id != Some(rel));
    for (u, seen) in &r.scope {
        let app = model::unit_app(u);
        let remote_app = r.remote_app(app).unwrap_or_default().to_string();
        for mem in seen {
            m.queue.push(departed_event(u, rel, mem, &remote_app, mem));
        }
        m.queue.push(rel_event(u, "relation-broken", rel, None, &remote_app, 0));
    }
}
