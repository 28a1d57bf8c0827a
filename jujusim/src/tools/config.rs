//! `config-get` and `credential-get`.

use serde_json::Value;

use crate::flags::{check_empty, go_quote};
use crate::format::{Format, Out};
use crate::model::Model;

use super::args::Opts;
use super::{Env, OutOpts, ToolResult, fail, usage};

/// The application's config as `config-get` sees it (unset options without default → null).
pub fn effective_config(model: &Model, app: &str) -> serde_json::Map<String, Value> {
    let a = &model.apps[app];
    let mut out = serde_json::Map::new();
    for (name, opt) in &a.meta.config {
        let v = a.config.get(name).cloned().or_else(|| opt.default.clone()).unwrap_or(Value::Null);
        out.insert(name.clone(), v);
    }
    out
}

pub(super) fn config_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let all = o.on("all");
    let args = o.args;
    let mut key = String::new();
    if !args.is_empty() {
        key = args[0].clone();
        if !key.is_empty() && all {
            return Err(usage(format!("cannot use argument --all together with key {}", go_quote(&key))));
        }
        check_empty(&args[1..]).map_err(usage)?;
    }
    let mut settings = effective_config(&env.model, &env.app_name());
    let value = if key.is_empty() {
        if !all {
            settings.retain(|_, v| !v.is_null());
        }
        Out::Any(Value::Object(settings))
    } else {
        match settings.remove(&key) {
            Some(Value::Null) | None => Out::Nil,
            Some(Value::String(s)) => Out::Str(s),
            Some(Value::Bool(b)) => Out::Bool(b),
            Some(v) => Out::Any(v),
        }
    };
    out.write(env, value)
}

pub(super) fn credential_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    check_empty(&args).map_err(usage)?;
    if !env.model.apps[&env.app_name()].trusted {
        return Err(fail("cannot access cloud credentials: permission denied"));
    }
    let spec =
        env.model.cloud_spec.clone().ok_or_else(|| fail("cannot access cloud credentials: cloud spec not found"))?;
    out.write(env, Out::Any(spec))
}
