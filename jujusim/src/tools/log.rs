//! `juju-log`: lines recorded with the level and prefix Juju gives them.

use crate::flags::go_quote;

use super::args::Opts;
use super::{Env, LogLine, ToolResult, usage};

fn parse_log_level(s: &str) -> Option<&'static str> {
    match s.trim().to_uppercase().as_str() {
        "TRACE" => Some("TRACE"),
        "DEBUG" => Some("DEBUG"),
        "INFO" => Some("INFO"),
        "WARN" | "WARNING" => Some("WARNING"),
        "ERROR" => Some("ERROR"),
        "CRITICAL" => Some("CRITICAL"),
        _ => None,
    }
}

pub(super) fn juju_log(env: &mut Env, o: Opts) -> ToolResult {
    let debug = o.on("debug");
    let level = o.text("level").unwrap_or_else(|| "INFO".into());
    let format_flag = o.text("format").unwrap_or_default();
    let args = o.args;
    if args.is_empty() {
        return Err(usage("no message specified"));
    }
    if !format_flag.is_empty() {
        env.stderr.extend_from_slice(b"--format flag deprecated for command \"juju-log\"");
    }
    let message = args.join(" ");
    let prefix = env
        .hook_relation()
        .map(|id| format!("{}: ", env.model.relations[&id].fake_id(&env.app_name())))
        .unwrap_or_default();
    let lvl = if debug {
        "DEBUG"
    } else if level.is_empty() {
        "INFO"
    } else {
        match parse_log_level(&level) {
            Some(l) => l,
            None => {
                env.logs.push(LogLine {
                    unit: env.ctx.unit.clone(),
                    context_id: env.ctx.id.clone(),
                    hook: env.ctx.hook_name.clone(),
                    level: "WARNING".into(),
                    message: format!("Specified log level of {} is not valid", go_quote(&level)),
                    prefix: String::new(),
                });
                "INFO"
            }
        }
    };
    env.logs.push(LogLine {
        unit: env.ctx.unit.clone(),
        context_id: env.ctx.id.clone(),
        hook: env.ctx.hook_name.clone(),
        level: lvl.into(),
        message,
        prefix,
    });
    Ok(())
}
