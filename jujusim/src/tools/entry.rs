//! The binary's entry point (which tool, which hook: one call sent to the agent) and the
//! agent's side of a call (the tool run against the model it holds).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::agent::{self, Lease, Reply, Request};
use crate::flags::go_quote;
use crate::model::{self, Paths};

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
    let started = agent::now();
    let socket = match std::env::var("JUJU_AGENT_SOCKET_ADDRESS") {
        Ok(s) if !s.is_empty() => PathBuf::from(s),
        _ => {
            eprintln!("ERROR JUJU_AGENT_SOCKET_ADDRESS not set");
            return 1;
        }
    };
    let req = Request {
        tool,
        args: argv,
        cwd: std::env::current_dir().unwrap_or_default(),
        context_id: std::env::var("JUJU_CONTEXT_ID").unwrap_or_default(),
        started,
    };
    match agent::call(&socket, &req, &mut std::io::stdin()) {
        Ok(reply) => {
            use std::io::Write;
            let _ = std::io::stdout().write_all(&reply.stdout);
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().write_all(&reply.stderr);
            reply.code
        }
        Err(e) => {
            eprintln!("ERROR cannot reach the unit agent at {}: {e}", socket.display());
            1
        }
    }
}

/// Runs one call against the model and context the driver lent the agent, and records it.
pub fn serve(paths: &Paths, lease: &mut Lease, req: &Request, stdin: Box<dyn Read>) -> Reply {
    match serve_recorded(paths, lease, req, stdin) {
        Ok(reply) => reply,
        Err(e) => Reply { stdout: Vec::new(), stderr: format!("ERROR {e}\n").into_bytes(), code: 1 },
    }
}

fn serve_recorded(paths: &Paths, lease: &mut Lease, req: &Request, stdin: Box<dyn Read>) -> anyhow::Result<Reply> {
    let mut env = Env {
        paths: paths.clone(),
        // Moved in and back out: the call works on the lent copy itself, never a clone of it.
        model: std::mem::take(&mut lease.model),
        ctx: std::mem::take(&mut lease.ctx),
        model_dirty: false,
        ctx_dirty: false,
        stdout: Vec::new(),
        stderr: Vec::new(),
        cwd: req.cwd.clone(),
        logs: Vec::new(),
        stdin: Some(stdin),
        stdin_seen: None,
    };
    let code = match run_tool(&mut env, &req.tool, &req.args) {
        Ok(()) => 0,
        Err(e) => {
            env.stderr.extend_from_slice(format!("ERROR {}\n", e.message).as_bytes());
            e.code
        }
    };
    lease.model = std::mem::take(&mut env.model);
    lease.ctx = std::mem::take(&mut env.ctx);
    // Every tool that changes the model marks it, so the mark tells whether the lease changed.
    lease.model_changed |= env.model_dirty;
    for l in &env.logs {
        model::append_record(&paths.log_records(), l)?;
    }
    let call = ToolCall {
        unit: lease.ctx.unit.clone(),
        context_id: lease.ctx.id.clone(),
        hook: lease.ctx.hook_name.clone(),
        tool: req.tool.clone(),
        args: req.args.clone(),
        exit_code: code,
        duration_us: agent::now().saturating_sub(req.started).as_micros() as u64,
        stderr: String::from_utf8_lossy(&env.stderr).into_owned(),
        stdin: env.stdin_seen.as_ref().map(|b| String::from_utf8_lossy(&b[..b.len().min(65536)]).into_owned()),
    };
    model::append_record(&paths.tool_records(), &call)?;
    Ok(Reply { stdout: env.stdout, stderr: env.stderr, code })
}
