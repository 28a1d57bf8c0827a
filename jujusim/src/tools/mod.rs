//! The hook tools. `jujusim` (the binary) is a multi-call program: invoked as `relation-get`
//! (through a symlink in the tools dir) or as `jujusim relation-get ...`, it sends the call,
//! with `JUJU_CONTEXT_ID`, to the agent behind `JUJU_AGENT_SOCKET_ADDRESS` (see `agent`), which
//! runs the tool against the model and hook context the driver lent it, one call at a time.
//!
//! Exit codes and messages follow Juju's `cmd.Main`: usage/flag errors (raised while parsing
//! or in `Init`) exit 2, run-time errors exit 1, both printed as `ERROR <message>` on stderr.
//!
//! Here: what a tool sees ([`Env`]) and the dispatch; every tool's flags are one table in
//! `args`; the tools themselves sit in one module per family (`relation`, `state`, ...).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bags::{self, Bag};

mod action;
mod args;
mod config;
mod entry;
mod goal;
mod input;
mod leader;
mod log;
mod network;
mod relation;
mod secret;
mod state;
mod status;

pub use self::config::effective_config;
pub use self::entry::{main_entry, serve};

use self::action::{action_fail, action_get, action_log, action_set};
use self::args::{Opts, Parsed};
use self::config::{config_get, credential_get};
use self::goal::goal_state;
use self::leader::{is_leader, leader_get, leader_set};
use self::log::juju_log;
use self::network::{network_get, unit_get};
use self::relation::{relation_get, relation_ids, relation_list, relation_set};
use self::secret::{secret_get, secret_info_get};
use self::state::{state_delete, state_get, state_set};
use self::status::{application_version_set, status_get, status_set};
use crate::flags::{check_empty, go_quote};
use crate::format::{self, Format, Out};
use crate::model::{self, Databag, HookContext, Model, Paths};

/// The tools this simulator implements (each gets a symlink in the tools dir).
pub const TOOLS: &[&str] = &[
    "relation-get",
    "relation-set",
    "relation-ids",
    "relation-list",
    "config-get",
    "credential-get",
    "status-set",
    "status-get",
    "juju-log",
    "is-leader",
    "leader-get",
    "leader-set",
    "state-get",
    "state-set",
    "state-delete",
    "action-get",
    "action-set",
    "action-fail",
    "action-log",
    "application-version-set",
    "network-get",
    "unit-get",
    "secret-get",
    "secret-info-get",
    "goal-state",
];

/// The secret tools: a Juju 2.9 agent has none of them (they came with Juju 3.0), so they
/// are left out of its tools dir.
pub const SECRET_TOOLS: &[&str] = &["secret-get", "secret-info-get"];

/// One line of `records/tool-calls.jsonl`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ToolCall {
    pub unit: String,
    pub context_id: String,
    pub hook: String,
    pub tool: String,
    pub args: Vec<String>,
    pub exit_code: i32,
    pub duration_us: u64,
    pub stderr: String,
    /// What the tool read from stdin (`--file -`), first 64 KiB.
    #[serde(default)]
    pub stdin: Option<String>,
}

/// One line of `records/logs.jsonl` (juju-log).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct LogLine {
    pub unit: String,
    pub context_id: String,
    pub hook: String,
    pub level: String,
    /// The message as given to juju-log.
    pub message: String,
    /// `endpoint:id: ` in relation hooks, as Juju prefixes the logged line.
    pub prefix: String,
}

/// A tool failure: exit code and message (printed as `ERROR <message>`).
#[derive(Debug)]
pub struct ToolError {
    pub code: i32,
    pub message: String,
}

fn usage(msg: impl Into<String>) -> ToolError {
    ToolError { code: 2, message: msg.into() }
}

fn fail(msg: impl Into<String>) -> ToolError {
    ToolError { code: 1, message: msg.into() }
}

/// Everything a tool can see and touch.
pub struct Env {
    pub paths: Paths,
    pub model: Model,
    pub ctx: HookContext,
    pub model_dirty: bool,
    pub ctx_dirty: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub cwd: PathBuf,
    pub logs: Vec<LogLine>,
    pub stdin: Option<Box<dyn Read>>,
    /// A copy of what was read from stdin, for the record.
    pub stdin_seen: Option<Vec<u8>>,
}

impl Env {
    fn unit(&self) -> &model::Unit {
        &self.model.units[&self.ctx.unit]
    }
    /// A committed databag (empty when it does not exist).
    fn committed(&self, bag: Bag) -> Result<Databag, ToolError> {
        bags::read_or_empty(&self.paths, bag).map_err(|e| fail(e.to_string()))
    }
    fn app_name(&self) -> String {
        model::unit_app(&self.ctx.unit).to_string()
    }
    fn is_leader(&self) -> bool {
        self.model.apps.get(&self.app_name()).and_then(|a| a.leader.as_deref()) == Some(self.ctx.unit.as_str())
    }
    /// Relations this unit is in scope of (what the context knows).
    fn relation_ids(&self) -> Vec<u32> {
        self.model.relations.values().filter(|r| r.scope.contains_key(&self.ctx.unit)).map(|r| r.id).collect()
    }
    fn relation_known(&self, id: u32) -> bool {
        self.model.relations.get(&id).is_some_and(|r| r.scope.contains_key(&self.ctx.unit))
    }
    fn hook_relation(&self) -> Option<u32> {
        self.ctx.relation_id.filter(|id| self.relation_known(*id))
    }
    fn read_stdin(&mut self) -> Result<Vec<u8>, ToolError> {
        let mut buf = Vec::new();
        if let Some(r) = self.stdin.as_mut() {
            r.read_to_end(&mut buf).map_err(|e| fail(format!("read /dev/stdin: {e}")))?;
        }
        self.stdin_seen = Some(buf.clone());
        Ok(buf)
    }
    /// `cmd.FileVar.Read`: `-` is stdin, other paths are relative to the cwd.
    fn read_file_var(&mut self, path: &str) -> Result<Vec<u8>, ToolError> {
        if path == "-" {
            return self.read_stdin();
        }
        let p = if Path::new(path).is_absolute() { PathBuf::from(path) } else { self.cwd.join(path) };
        std::fs::read(&p).map_err(|e| {
            let reason = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                _ => e.to_string(),
            };
            fail(format!("open {}: {reason}", p.display()))
        })
    }
}

/// `--format` and `-o/--output`.
struct OutOpts {
    format: Format,
    path: Option<String>,
}

impl OutOpts {
    /// What the command line asked for, `default` when it named no format.
    fn of(o: &Opts, default: Format) -> Self {
        OutOpts { format: o.format(default), path: o.text("output") }
    }
    fn write(&self, env: &mut Env, out: Out) -> Result<(), ToolError> {
        let bytes = format::render(self.format, &out);
        match &self.path {
            None => env.stdout.extend_from_slice(&bytes),
            Some(p) => {
                let path = if Path::new(p).is_absolute() { PathBuf::from(p) } else { env.cwd.join(p) };
                std::fs::write(&path, bytes).map_err(|e| fail(format!("open {}: {e}", path.display())))?;
            }
        }
        Ok(())
    }
}

type ToolResult = Result<(), ToolError>;

/// The optional `key` argument of the getters: `-` (or none) means every key; nothing may
/// follow it.
fn key_arg(args: &[String]) -> Result<String, ToolError> {
    let Some(first) = args.first() else { return Ok(String::new()) };
    check_empty(&args[1..]).map_err(usage)?;
    Ok(if first == "-" { String::new() } else { first.clone() })
}

/// A databag as a getter prints it: every key when `key` is empty, else that key's value
/// (nothing when it is not set).
fn bag_out(bag: Databag, key: &str) -> Out {
    if key.is_empty() {
        return Out::Any(Value::Object(bag.into_iter().map(|(k, v)| (k, Value::String(v))).collect()));
    }
    bag.get(key).map_or(Out::Nil, |v| Out::Str(v.clone()))
}

/// Runs one tool against an already loaded environment.
pub fn run_tool(env: &mut Env, tool: &str, argv: &[String]) -> ToolResult {
    let table = args::flags_of(tool).ok_or_else(|| fail(format!("unknown command {}", go_quote(tool))))?;
    let known = env.relation_ids();
    let o = match args::parse(tool, table, argv, &known).map_err(usage)? {
        Parsed::Opts(o) => o,
        Parsed::Help(text) => {
            env.stdout.extend_from_slice(text.as_bytes());
            return Ok(());
        }
    };
    match tool {
        "relation-get" => relation_get(env, o),
        "relation-set" => relation_set(env, o),
        "relation-ids" => relation_ids(env, o),
        "relation-list" => relation_list(env, o),
        "config-get" => config_get(env, o),
        "credential-get" => credential_get(env, o),
        "status-set" => status_set(env, o),
        "status-get" => status_get(env, o),
        "juju-log" => juju_log(env, o),
        "is-leader" => is_leader(env, o),
        "leader-get" => leader_get(env, o),
        "leader-set" => leader_set(env, o),
        "state-get" => state_get(env, o),
        "state-set" => state_set(env, o),
        "state-delete" => state_delete(env, o),
        "action-get" => action_get(env, o),
        "action-set" => action_set(env, o),
        "action-fail" => action_fail(env, o),
        "action-log" => action_log(env, o),
        "application-version-set" => application_version_set(env, o),
        "network-get" => network_get(env, o),
        "unit-get" => unit_get(env, o),
        "secret-get" => secret_get(env, o),
        "secret-info-get" => secret_info_get(env, o),
        "goal-state" => goal_state(env, o),
        other => Err(fail(format!("unknown command {}", go_quote(other)))),
    }
}
