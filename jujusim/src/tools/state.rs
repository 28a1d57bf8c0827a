//! `state-get`, `state-set`, `state-delete`: charm state, staged until the hook commits.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::bags::Bag;
use crate::flags::{check_empty, go_quote};
use crate::format::{Format, Out};
use crate::model::{Databag, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES};

use super::args::Opts;
use super::input::{parse_key_values, parse_settings_file};
use super::{Env, OutOpts, ToolError, ToolResult, fail, key_arg, usage};

fn current_state(env: &Env) -> Result<Databag, ToolError> {
    match &env.ctx.staged_state {
        Some(staged) => Ok(staged.clone()),
        None => env.committed(Bag::State(&env.ctx.unit)),
    }
}

pub(super) fn state_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let strict = o.on("strict");
    let args = o.args;
    let key = key_arg(&args)?;
    let state = current_state(env)?;
    if key.is_empty() {
        if state.is_empty() {
            return out.write(env, Out::Nil);
        }
        return out
            .write(env, Out::Any(Value::Object(state.into_iter().map(|(k, v)| (k, Value::String(v))).collect())));
    }
    match state.get(&key) {
        Some(v) => out.write(env, Out::Str(v.clone())),
        None if strict => Err(fail(format!("{} not found", go_quote(&key)))),
        None => out.write(env, Out::Str(String::new())),
    }
}

pub(super) fn state_set(env: &mut Env, o: Opts) -> ToolResult {
    let file = o.text("file");
    let args = o.args;
    let overrides = parse_key_values(&args).map_err(usage)?;
    let mut values = BTreeMap::new();
    if let Some(path) = file.filter(|p| !p.is_empty()) {
        let data = env.read_file_var(&path)?;
        values = parse_settings_file(&data).map_err(fail)?;
    }
    values.extend(overrides);
    let mut state = current_state(env)?;
    for (k, v) in values {
        if k.len() > MAX_STATE_KEY_BYTES {
            return Err(fail(format!("max allowed key length ({MAX_STATE_KEY_BYTES}) exceeded")));
        }
        if v.len() > MAX_STATE_VALUE_BYTES {
            return Err(fail(format!("max allowed value length ({MAX_STATE_VALUE_BYTES}) exceeded")));
        }
        state.insert(k, v);
    }
    env.ctx.staged_state = Some(state);
    env.ctx_dirty = true;
    Ok(())
}

pub(super) fn state_delete(env: &mut Env, o: Opts) -> ToolResult {
    let args = o.args;
    if args.is_empty() {
        return Ok(());
    }
    check_empty(&args[1..]).map_err(usage)?;
    let key = &args[0];
    if key.is_empty() {
        return Ok(());
    }
    let mut state = current_state(env)?;
    state.remove(key);
    env.ctx.staged_state = Some(state);
    env.ctx_dirty = true;
    Ok(())
}
