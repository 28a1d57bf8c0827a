//! The binary's entry point: which tool, which model and hook, one call under the model lock.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::flags::go_quote;
use crate::model::{self, ModelLock, Paths};

use super::{Env, TOOLS, ToolCall, run_tool};

/// Runs the multi-call binary: returns the process exit code.
pub fn main_entry() -> i32 {
    let mut argv: Vec<String> = std::env::args().collect();
    let prog = argv.first().cloned().unwrap_or_default();
    let mut tool = Path::new(&prog).file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    argv.remove(0);
    if tool == "jujusim" || !TOOLS.contains(&tool.as_str()) {
        if argv.is_empty() {
            eprintln!("usage: jujusim <tool> [args...]\ntools: {}", TOOLS.join(" "));
            return 2;
        }
        tool = argv.remove(0);
        if !TOOLS.contains(&tool.as_str()) {
            eprintln!("ERROR unknown command {}", go_quote(&tool));
            return 2;
        }
    }
    let start = Instant::now();
    let socket = match std::env::var("JUJU_AGENT_SOCKET_ADDRESS") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => {
            eprintln!("ERROR JUJU_AGENT_SOCKET_ADDRESS not set");
            return 1;
        }
    };
    let root = socket.parent().map(Path::to_path_buf).unwrap_or_default();
    let context_id = std::env::var("JUJU_CONTEXT_ID").unwrap_or_default();
    let paths = Paths::new(root);
    match run_in_process(&paths, &context_id, &tool, &argv, start) {
        Ok((stdout, stderr, code)) => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&stdout);
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().write_all(&stderr);
            code
        }
        Err(e) => {
            eprintln!("ERROR {e}");
            1
        }
    }
}

fn run_in_process(
    paths: &Paths,
    context_id: &str,
    tool: &str,
    argv: &[String],
    start: Instant,
) -> anyhow::Result<(Vec<u8>, Vec<u8>, i32)> {
    let _lock = ModelLock::acquire(paths)?;
    let model = model::load_model(paths)?;
    let ctx = model::load_context(paths, context_id)
        .map_err(|_| anyhow::anyhow!("bad request: unknown context {}", go_quote(context_id)))?;
    let mut env = Env {
        paths: paths.clone(),
        model,
        ctx,
        model_dirty: false,
        ctx_dirty: false,
        stdout: Vec::new(),
        stderr: Vec::new(),
        cwd: std::env::current_dir().unwrap_or_default(),
        logs: Vec::new(),
        stdin: Some(Box::new(std::io::stdin())),
        stdin_seen: None,
    };
    let code = match run_tool(&mut env, tool, argv) {
        Ok(()) => 0,
        Err(e) => {
            env.stderr.extend_from_slice(format!("ERROR {}\n", e.message).as_bytes());
            e.code
        }
    };
    if env.model_dirty {
        model::save_model(paths, &env.model)?;
    }
    if env.ctx_dirty {
        model::save_context(paths, &env.ctx)?;
    }
    for l in &env.logs {
        model::append_record(&paths.log_records(), l)?;
    }
    let call = ToolCall {
        unit: env.ctx.unit.clone(),
        context_id: env.ctx.id.clone(),
        hook: env.ctx.hook_name.clone(),
        tool: tool.to_string(),
        args: argv.to_vec(),
        exit_code: code,
        duration_us: start.elapsed().as_micros() as u64,
        stderr: String::from_utf8_lossy(&env.stderr).into_owned(),
        stdin: env.stdin_seen.as_ref().map(|b| String::from_utf8_lossy(&b[..b.len().min(65536)]).into_owned()),
    };
    model::append_record(&paths.tool_records(), &call)?;
    Ok((env.stdout, env.stderr, code))
}
