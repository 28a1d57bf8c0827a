//! `status-set`, `status-get` and `application-version-set`: immediate writes.

use serde_json::Value;

use crate::flags::{check_empty, go_quote};
use crate::format::{Format, Out};
use crate::model;

use super::args::Opts;
use super::{Env, OutOpts, ToolResult, fail, usage};

const VALID_STATUS: [&str; 4] = ["maintenance", "blocked", "waiting", "active"];

pub(super) fn status_set(env: &mut Env, o: Opts) -> ToolResult {
    let application = o.on("application");
    let args = o.args;
    if args.is_empty() {
        return Err(usage("invalid args, require <status> [message]"));
    }
    if !VALID_STATUS.contains(&args[0].as_str()) {
        return Err(usage(format!(
            "invalid status {}, expected one of [{}]",
            go_quote(&args[0]),
            VALID_STATUS.join(" ")
        )));
    }
    let message = if args.len() > 1 {
        check_empty(&args[2..]).map_err(usage)?;
        args[1].clone()
    } else {
        String::new()
    };
    let status = model::Status::new(&args[0], &message);
    if application {
        if !env.is_leader() {
            return Err(fail("this unit is not the leader"));
        }
        let app = env.app_name();
        env.model.apps.get_mut(&app).unwrap().status = status;
    } else {
        let u = env.model.units.get_mut(&env.ctx.unit).unwrap();
        u.status = status;
        u.status_set_by_charm = true;
    }
    env.model_dirty = true;
    Ok(())
}

fn status_details(s: &model::Status, include_data: bool) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("status".into(), Value::String(s.status.clone()));
    if include_data {
        m.insert("status-data".into(), Value::Object(Default::default()));
        m.insert("message".into(), Value::String(s.message.clone()));
    }
    Value::Object(m)
}

pub(super) fn status_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let (include, application) = (o.on("include-data"), o.on("application"));
    let args = o.args;
    check_empty(&args).map_err(usage)?;
    if application {
        if !env.is_leader() {
            return Err(fail("finding application status: this unit is not the leader"));
        }
        let app = env.app_name();
        let a = &env.model.apps[&app];
        if !include && out.format == Format::Smart {
            let s = a.status.status.clone();
            return out.write(env, Out::Str(s));
        }
        let mut details = status_details(&a.status, include);
        let units: serde_json::Map<String, Value> = env
            .model
            .units
            .values()
            .filter(|u| u.app == app)
            .map(|u| (u.name.clone(), status_details(&u.status, include)))
            .collect();
        details.as_object_mut().unwrap().insert("units".into(), Value::Object(units));
        let mut top = serde_json::Map::new();
        top.insert("application-status".into(), details);
        return out.write(env, Out::Any(Value::Object(top)));
    }
    let s = env.unit().status.clone();
    if !include && out.format == Format::Smart {
        return out.write(env, Out::Str(s.status));
    }
    out.write(env, Out::Any(status_details(&s, include)))
}

pub(super) fn application_version_set(env: &mut Env, o: Opts) -> ToolResult {
    let args = o.args;
    if args.is_empty() {
        return Err(usage("no version specified"));
    }
    check_empty(&args[1..]).map_err(usage)?;
    let u = env.model.units.get_mut(&env.ctx.unit).unwrap();
    u.workload_version = args[0].clone();
    env.model_dirty = true;
    Ok(())
}
