//! `goal-state`.

use serde_json::Value;

use crate::flags::check_empty;
use crate::format::{Format, Out};
use crate::model;

use super::args::Opts;
use super::{Env, OutOpts, ToolResult, usage};

/// `goal-state [--format yaml|json]`: every unit of this application with its workload
/// status, or `dying` once it is being removed (as Juju's `goalStateUnits` has it), and per
/// endpoint the remote applications (`joined`, or `dying` while the relation is removed) and
/// their units. Juju's `since` times are left out.
pub(super) fn goal_state(env: &mut Env, o: Opts) -> ToolResult {
    let mut out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    check_empty(&args).map_err(usage)?;
    if out.format == Format::Smart {
        // goal-state formats as yaml unless told json.
        out.format = Format::Yaml;
    }
    let app = env.app_name();
    let goal = |u: &model::Unit| {
        let status = if u.dying { "dying" } else { u.status.status.as_str() };
        serde_json::json!({ "status": status })
    };
    let units: serde_json::Map<String, Value> =
        env.model.units.values().filter(|u| u.app == app).map(|u| (u.name.clone(), goal(u))).collect();
    let mut relations = serde_json::Map::new();
    for r in env.model.relations.values().filter(|r| !r.is_peer()) {
        let (Some(local), Some(remote)) = (r.local_endpoint(&app), r.remote_app(&app)) else { continue };
        let entry = relations.entry(local.endpoint.clone()).or_insert_with(|| Value::Object(Default::default()));
        let Value::Object(entry) = entry else { continue };
        let status = if r.dying { "dying" } else { "joined" };
        entry.insert(remote.to_string(), serde_json::json!({ "status": status }));
        for u in env.model.units.values().filter(|u| u.app == remote) {
            entry.insert(u.name.clone(), goal(u));
        }
    }
    let value = serde_json::json!({ "units": units, "relations": relations });
    out.write(env, Out::Any(value))
}
