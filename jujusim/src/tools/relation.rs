//! `relation-get`, `relation-set`, `relation-ids`, `relation-list`: Juju's read rules and
//! permissions, writes staged in the hook's context until it commits.

use std::collections::BTreeMap;

use crate::bags::{self, Bag};
use crate::flags::{check_empty, go_quote};
use crate::format::{Format, Out};
use crate::model::{self, Databag};

use super::args::Opts;
use super::input::{parse_key_values, parse_settings_file};
use super::{Env, OutOpts, ToolError, ToolResult, bag_out, fail, usage};

pub(super) fn relation_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let rel = o.relation().or_else(|| env.hook_relation());
    let mut app = o.on("app");
    let mut args = o.args;
    let rel = rel.ok_or_else(|| usage("no relation id specified"))?;
    let mut key = String::new();
    if !args.is_empty() {
        key = args.remove(0);
        if key == "-" {
            key.clear();
        }
    }
    // determineUnitOrAppName
    let target: String;
    if !args.is_empty() {
        let supplied = args.remove(0);
        if app {
            if model::is_valid_application(&supplied) {
                target = supplied;
            } else if model::is_valid_unit(&supplied) {
                target = model::unit_app(&supplied).to_string();
            } else {
                target = String::new();
            }
        } else {
            if !model::is_valid_unit(&supplied) {
                if model::is_valid_application(&supplied) {
                    return Err(usage(format!("expected unit name, got application name {}", go_quote(&supplied))));
                }
                return Err(usage(format!("invalid unit name {}", go_quote(&supplied))));
            }
            target = supplied;
        }
    } else if app {
        match env.ctx.remote_app.clone().filter(|s| !s.is_empty()) {
            Some(a) => target = a,
            None => return Err(usage("no unit or application specified")),
        }
    } else if let Some(u) = env.ctx.remote_unit.clone().filter(|s| !s.is_empty()) {
        target = u;
    } else if let Some(a) = env.ctx.remote_app.clone().filter(|s| !s.is_empty()) {
        target = a;
        app = true;
    } else {
        return Err(usage("no unit or application specified"));
    }
    check_empty(&args).map_err(usage)?;

    let settings = read_relation_settings(env, rel, &target, app)?;
    out.write(env, bag_out(settings, &key))
}

/// relation-get's read rules: own unit and (as leader) own app from the hook context
/// (staged writes visible); everything else as committed, with Juju's permission checks.
fn read_relation_settings(env: &Env, rel_id: u32, target: &str, app: bool) -> Result<Databag, ToolError> {
    let rel = &env.model.relations[&rel_id];
    let my_unit = env.ctx.unit.as_str();
    let my_app = env.app_name();
    if target == my_unit && !app {
        return match env.ctx.staged_unit.get(&rel_id) {
            Some(staged) => Ok(staged.clone()),
            None => env.committed(Bag::Unit(rel_id, my_unit)),
        };
    }
    if target == my_app && env.is_leader() {
        // Juju reads the local application settings here, whatever --app says.
        return match env.ctx.staged_app.get(&rel_id) {
            Some(staged) => Ok(staged.clone()),
            None => env.committed(Bag::App(rel_id, &my_app)),
        };
    }
    if app {
        if target == my_app && !rel.is_peer() {
            return Err(fail("permission denied"));
        }
        if !rel.involves(target) {
            return Err(fail("permission denied"));
        }
        return env.committed(Bag::App(rel_id, target));
    }
    // A unit's settings, read "from the controller".
    let target_app = model::unit_app(target);
    let allowed = if rel.is_peer() { target_app == my_app } else { target_app != my_app && rel.involves(target_app) };
    if !allowed {
        return Err(fail("permission denied"));
    }
    bags::read(&env.paths, Bag::Unit(rel_id, target))
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail("permission denied"))
}

pub(super) fn relation_set(env: &mut Env, o: Opts) -> ToolResult {
    let rel = o.relation().or_else(|| env.hook_relation());
    let app = o.on("app");
    let file = o.text("file");
    let format_flag = o.text("format").unwrap_or_default();
    let args = o.args;
    let rel = rel.ok_or_else(|| usage("no relation id specified"))?;
    let overrides = parse_key_values(&args).map_err(usage)?;
    if !format_flag.is_empty() {
        env.stderr.extend_from_slice(b"--format flag deprecated for command \"relation-set\"");
    }
    let mut settings = BTreeMap::new();
    if let Some(path) = file.filter(|p| !p.is_empty()) {
        let data = env.read_file_var(&path)?;
        settings = parse_settings_file(&data).map_err(fail)?;
    }
    settings.extend(overrides);

    if app && !env.is_leader() {
        return Err(fail("cannot write relation settings"));
    }
    let (my_app, my_unit) = (env.app_name(), env.ctx.unit.clone());
    let committed = if app { Bag::App(rel, &my_app) } else { Bag::Unit(rel, &my_unit) };
    let staged = if app { &env.ctx.staged_app } else { &env.ctx.staged_unit };
    // Copied on first write: later reads in this hook see the pending values.
    let base = if staged.contains_key(&rel) { Databag::new() } else { env.committed(committed)? };
    let staged = if app { &mut env.ctx.staged_app } else { &mut env.ctx.staged_unit };
    let bag = staged.entry(rel).or_insert(base);
    for (k, v) in settings {
        if v.is_empty() {
            bag.remove(&k);
        } else {
            bag.insert(k, v);
        }
    }
    env.ctx_dirty = true;
    Ok(())
}

pub(super) fn relation_ids(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let mut args = o.args;
    let my_app = env.app_name();
    let default_name =
        env.hook_relation().and_then(|id| env.model.relations[&id].local_endpoint(&my_app).map(|e| e.endpoint.clone()));
    let name = if !args.is_empty() {
        args.remove(0)
    } else {
        default_name.ok_or_else(|| usage("no endpoint name specified"))?
    };
    check_empty(&args).map_err(usage)?;
    let mut result: Vec<String> = env
        .relation_ids()
        .into_iter()
        .map(|id| &env.model.relations[&id])
        .filter(|r| r.local_endpoint(&my_app).is_some_and(|e| e.endpoint == name))
        .map(|r| r.fake_id(&my_app))
        .collect();
    result.sort();
    out.write(env, Out::StrList(result))
}

pub(super) fn relation_list(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let rel = o.relation().or_else(|| env.hook_relation());
    let app = o.on("app");
    let args = o.args;
    let rel = rel.ok_or_else(|| usage("no relation id specified"))?;
    check_empty(&args).map_err(usage)?;
    let r = &env.model.relations[&rel];
    if app {
        let remote = r.remote_app(&env.app_name()).unwrap_or_default().to_string();
        return out.write(env, Out::Str(remote));
    }
    let members: Vec<String> = r.scope.get(&env.ctx.unit).map(|s| s.iter().cloned().collect()).unwrap_or_default();
    out.write(env, Out::StrList(members))
}
