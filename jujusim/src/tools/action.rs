//! `action-get`, `action-set`, `action-fail`, `action-log`: only while an action runs.

use serde_json::Value;

use crate::flags::{check_empty, go_quote};
use crate::format::{Format, Out};

use super::args::Opts;
use super::{Env, OutOpts, ToolError, ToolResult, fail, usage};

fn not_in_action() -> ToolError {
    fail("not running an action")
}

pub(super) fn action_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    let mut keys: Vec<String> = Vec::new();
    if !args.is_empty() {
        check_empty(&args[1..]).map_err(usage)?;
        keys = args[0].split('.').map(String::from).collect();
    }
    let params = env.ctx.action.as_ref().ok_or_else(not_in_action)?.params.clone();
    let answer = if keys.is_empty() {
        match params {
            Value::Null => Value::Object(Default::default()),
            p => p,
        }
    } else {
        let mut cur = &params;
        let mut found = true;
        for k in &keys {
            match cur.get(k) {
                Some(v) => cur = v,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if found { cur.clone() } else { Value::Null }
    };
    let o = match answer {
        Value::Null => Out::Nil,
        Value::String(s) => Out::Str(s),
        Value::Bool(b) => Out::Bool(b),
        v => Out::Any(v),
    };
    out.write(env, o)
}

fn valid_action_key(k: &str) -> bool {
    let b = k.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty() && alnum(&b[0]) && alnum(&b[b.len() - 1]) && b.iter().all(|c| alnum(c) || *c == b'-')
}

const RESERVED_ACTION_KEYS: [&str; 4] = ["stdout", "stdout-encoding", "stderr", "stderr-encoding"];

pub(super) fn action_set(env: &mut Env, o: Opts) -> ToolResult {
    let args = o.args;
    let mut pairs: Vec<(Vec<String>, String)> = Vec::new();
    for arg in &args {
        let (k, v) = arg
            .split_once('=')
            .ok_or_else(|| usage(format!("argument {} must be of the form key...=value", go_quote(arg))))?;
        let keys: Vec<String> = k.split('.').map(String::from).collect();
        for key in &keys {
            if !valid_action_key(key) {
                return Err(usage(format!(
                    "key {} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods",
                    go_quote(key)
                )));
            }
            if RESERVED_ACTION_KEYS.contains(&key.as_str()) {
                return Err(usage(format!("cannot set reserved action key \"{key}\"")));
            }
        }
        pairs.push((keys, v.to_string()));
    }
    let action = env.ctx.action.as_mut().ok_or_else(not_in_action)?;
    for (keys, value) in pairs {
        let mut cur = &mut action.results;
        for k in &keys[..keys.len() - 1] {
            let entry = cur.entry(k.clone()).or_insert_with(|| Value::Object(Default::default()));
            if !entry.is_object() {
                *entry = Value::Object(Default::default());
            }
            cur = entry.as_object_mut().unwrap();
        }
        cur.insert(keys[keys.len() - 1].clone(), Value::String(value));
    }
    env.ctx_dirty = true;
    Ok(())
}

pub(super) fn action_fail(env: &mut Env, o: Opts) -> ToolResult {
    let args = o.args;
    let message = if args.is_empty() {
        "action failed without reason given, check action for errors".to_string()
    } else {
        check_empty(&args[1..]).map_err(usage)?;
        args[0].clone()
    };
    let action = env.ctx.action.as_mut().ok_or_else(not_in_action)?;
    action.message = Some(message);
    action.failed = true;
    env.ctx_dirty = true;
    Ok(())
}

pub(super) fn action_log(env: &mut Env, o: Opts) -> ToolResult {
    let args = o.args;
    if args.is_empty() {
        return Err(usage("no message specified"));
    }
    let action = env.ctx.action.as_mut().ok_or_else(not_in_action)?;
    action.logs.push(args.join(" "));
    env.ctx_dirty = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_keys() {
        assert!(valid_action_key("a"));
        assert!(valid_action_key("a-b"));
        assert!(valid_action_key("1x"));
        assert!(!valid_action_key("A"));
        assert!(!valid_action_key("-a"));
        assert!(!valid_action_key("a-"));
        assert!(!valid_action_key("a_b"));
        assert!(!valid_action_key(""));
    }
}
