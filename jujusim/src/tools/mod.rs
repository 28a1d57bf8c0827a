//! The hook tools. `jujusim` (the binary) is a multi-call program: invoked as `relation-get`
//! (through a symlink in the tools dir) or as `jujusim relation-get ...`, it finds the
//! simulator root from `JUJU_AGENT_SOCKET_ADDRESS`, the running hook from `JUJU_CONTEXT_ID`,
//! and runs the tool under the model lock.
//!
//! Exit codes and messages follow Juju's `cmd.Main`: usage/flag errors (raised while parsing
//! or in `Init`) exit 2, run-time errors exit 1, both printed as `ERROR <message>` on stderr.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bags::{self, Bag};
mod args;

use self::args::{Opts, Parsed};
use crate::flags::{check_empty, go_quote};
use crate::format::{self, Format, Out};
use crate::model::{self, Databag, HookContext, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES, Model, ModelLock, Paths};

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

/// `keyvalues.Parse(args, allowEmptyValues=true)`.
fn parse_key_values(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for kv in args {
        let (k, v) = match kv.split_once('=') {
            Some(p) => p,
            None => return Err(format!("expected \"key=value\", got {}", go_quote(kv))),
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(format!("expected \"key=value\", got \"{k}={v}\""));
        }
        if out.contains_key(k) {
            return Err(format!("key {} specified more than once", go_quote(k)));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Reads a `--file` for relation-set/state-set: a YAML (or JSON) map whose scalar values are
/// taken as strings (Go yaml.v2 into `map[string]string`); null → "" (which deletes).
fn parse_settings_file(data: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = String::from_utf8_lossy(data);
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let y: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| format!("yaml: {e}"))?;
    let mut out = BTreeMap::new();
    match y {
        serde_norway::Value::Null => {}
        serde_norway::Value::Mapping(m) => {
            for (k, v) in m {
                let key = crate::charm::yaml_scalar_text(&k);
                let val = match &v {
                    serde_norway::Value::Sequence(_) => {
                        return Err("yaml: unmarshal errors:\n  cannot unmarshal !!seq into string".into());
                    }
                    serde_norway::Value::Mapping(_) => {
                        return Err("yaml: unmarshal errors:\n  cannot unmarshal !!map into string".into());
                    }
                    other => crate::charm::yaml_scalar_text(other),
                };
                out.insert(key, val);
            }
        }
        other => {
            let tag = match other {
                serde_norway::Value::Sequence(_) => "!!seq",
                serde_norway::Value::String(_) => "!!str",
                serde_norway::Value::Number(_) => "!!int",
                serde_norway::Value::Bool(_) => "!!bool",
                _ => "value",
            };
            return Err(format!("yaml: unmarshal errors:\n  cannot unmarshal {tag} into map[string]string"));
        }
    }
    Ok(out)
}

type ToolResult = Result<(), ToolError>;

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

// ---------------------------------------------------------------------------------------
// relation-*

fn relation_get(env: &mut Env, o: Opts) -> ToolResult {
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
    let value = if key.is_empty() {
        Out::Any(Value::Object(settings.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
    } else {
        match settings.get(&key) {
            Some(v) => Out::Str(v.clone()),
            None => Out::Nil,
        }
    };
    out.write(env, value)
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

fn relation_set(env: &mut Env, o: Opts) -> ToolResult {
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

fn relation_ids(env: &mut Env, o: Opts) -> ToolResult {
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

fn relation_list(env: &mut Env, o: Opts) -> ToolResult {
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

// ---------------------------------------------------------------------------------------
// config, credentials, status, log, leadership

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

fn config_get(env: &mut Env, o: Opts) -> ToolResult {
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

fn credential_get(env: &mut Env, o: Opts) -> ToolResult {
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

const VALID_STATUS: [&str; 4] = ["maintenance", "blocked", "waiting", "active"];

fn status_set(env: &mut Env, o: Opts) -> ToolResult {
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

fn status_get(env: &mut Env, o: Opts) -> ToolResult {
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

fn juju_log(env: &mut Env, o: Opts) -> ToolResult {
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

fn is_leader(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    check_empty(&args).map_err(usage)?;
    let l = env.is_leader();
    out.write(env, Out::Bool(l))
}

fn leader_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    let mut key = String::new();
    if !args.is_empty() {
        key = args[0].clone();
        if key == "-" {
            key.clear();
        }
        check_empty(&args[1..]).map_err(usage)?;
    }
    let settings = env.committed(Bag::Leader(&env.app_name()))?;
    let v = if key.is_empty() {
        Out::Any(Value::Object(settings.into_iter().map(|(k, v)| (k, Value::String(v))).collect()))
    } else {
        match settings.get(&key) {
            Some(v) => Out::Str(v.clone()),
            None => Out::Nil,
        }
    };
    out.write(env, v)
}

fn leader_set(env: &mut Env, o: Opts) -> ToolResult {
    let args = o.args;
    let settings = parse_key_values(&args).map_err(usage)?;
    if !env.is_leader() {
        return Err(fail("cannot write leadership settings: cannot write settings: not the leader"));
    }
    let app = env.app_name();
    let mut bag = env.committed(Bag::Leader(&app))?;
    for (k, v) in settings {
        if v.is_empty() {
            bag.remove(&k);
        } else {
            bag.insert(k, v);
        }
    }
    // Immediate, not staged: Juju writes leader settings at once (the driver tells the
    // minions once the hook is over).
    bags::write(&env.paths, Bag::Leader(&app), &bag).map_err(|e| fail(e.to_string()))
}

// ---------------------------------------------------------------------------------------
// state-*

fn current_state(env: &Env) -> Result<Databag, ToolError> {
    match &env.ctx.staged_state {
        Some(staged) => Ok(staged.clone()),
        None => env.committed(Bag::State(&env.ctx.unit)),
    }
}

fn state_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let strict = o.on("strict");
    let args = o.args;
    let mut key = String::new();
    if !args.is_empty() {
        key = args[0].clone();
        if key == "-" {
            key.clear();
        }
        check_empty(&args[1..]).map_err(usage)?;
    }
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

fn state_set(env: &mut Env, o: Opts) -> ToolResult {
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

fn state_delete(env: &mut Env, o: Opts) -> ToolResult {
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

// ---------------------------------------------------------------------------------------
// action-*

fn not_in_action() -> ToolError {
    fail("not running an action")
}

fn action_get(env: &mut Env, o: Opts) -> ToolResult {
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

fn action_set(env: &mut Env, o: Opts) -> ToolResult {
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

fn action_fail(env: &mut Env, o: Opts) -> ToolResult {
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

fn action_log(env: &mut Env, o: Opts) -> ToolResult {
    let args = o.args;
    if args.is_empty() {
        return Err(usage("no message specified"));
    }
    let action = env.ctx.action.as_mut().ok_or_else(not_in_action)?;
    action.logs.push(args.join(" "));
    env.ctx_dirty = true;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// misc

fn application_version_set(env: &mut Env, o: Opts) -> ToolResult {
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

fn unit_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    if args.is_empty() {
        return Err(usage("no setting specified"));
    }
    if args[0] != "private-address" && args[0] != "public-address" {
        return Err(usage(format!("unknown setting {}", go_quote(&args[0]))));
    }
    check_empty(&args[1..]).map_err(usage)?;
    let addr = env.unit().address.clone();
    out.write(env, Out::Str(addr))
}

/// `goal-state [--format yaml|json]`: every unit of this application with its workload
/// status, or `dying` once it is being removed (as Juju's `goalStateUnits` has it), and per
/// endpoint the remote applications (`joined`, or `dying` while the relation is removed) and
/// their units. Juju's `since` times are left out.
fn goal_state(env: &mut Env, o: Opts) -> ToolResult {
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

fn network_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let sel = o.selected();
    let args = o.args;
    if args.is_empty() {
        return Err(usage("no arguments specified"));
    }
    let binding = args[0].clone();
    check_empty(&args[1..]).map_err(usage)?;
    let app = &env.model.apps[&env.app_name()];
    if !app.meta.endpoints.contains_key(&binding) && !app.meta.extra_bindings.contains(&binding) {
        return Err(fail(format!("no network config found for binding {}", go_quote(&binding))));
    }
    let addr = env.unit().address.clone();
    let cidr = format!("{}/32", addr);
    let info = serde_json::json!({
        "bind-addresses": [{
            "mac-address": "",
            "interface-name": "eth0",
            "addresses": [{"hostname": "", "value": addr, "cidr": cidr, "address": addr}],
            "macaddress": "",
            "interfacename": "eth0",
        }],
        "egress-subnets": [cidr],
        "ingress-addresses": [addr],
    });
    let value = match sel.as_slice() {
        [] => Out::Any(info),
        [one] => single_network_value(one, &addr, &cidr),
        many => {
            let mut m = serde_json::Map::new();
            for k in many {
                let v = match single_network_value(k, &addr, &cidr) {
                    Out::Str(s) => Value::String(s),
                    Out::StrList(l) => Value::Array(l.into_iter().map(Value::String).collect()),
                    _ => Value::Null,
                };
                m.insert(k.to_string(), v);
            }
            Out::Any(Value::Object(m))
        }
    };
    out.write(env, value)
}

fn single_network_value(k: &str, addr: &str, cidr: &str) -> Out {
    match k {
        "egress-subnets" => Out::StrList(vec![cidr.to_string()]),
        "ingress-address" => Out::Str(addr.to_string()),
        _ => Out::Str(addr.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// secret-*: a consumer's view of user secrets (Juju >= 3.3)

/// The secret a `secret-*` command names: the URI in its first argument, if any (one of a URI
/// and `--label` is required), and the arguments after it.
fn secret_target<'a>(
    args: &'a [String],
    label: &str,
) -> Result<(Option<crate::secrets::Uri>, &'a [String]), ToolError> {
    let uri = match args.first() {
        Some(first) => Some(
            crate::secrets::Uri::parse(first)
                .ok_or_else(|| usage(format!("secret URI {} not valid", go_quote(first))))?,
        ),
        None => None,
    };
    if uri.is_none() && label.is_empty() {
        return Err(usage("require either a secret URI or label"));
    }
    Ok((uri, args.get(1..).unwrap_or_default()))
}

/// `secret-get <ID> [key[#base64]] [--label L] [--peek|--refresh] [--format yaml|json]`
/// (juju/juju `internal/worker/uniter/runner/jujuc/secret-get.go`; the revision rules of
/// `apiserver/facades/agent/secretsmanager/secrets.go` `getSecretContent` and
/// `getConsumedRevision`).
fn secret_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Yaml);
    let label = o.text("label").unwrap_or_default();
    let (peek, refresh) = (o.on("peek"), o.on("refresh"));
    let args = o.args;
    // Init
    let (uri, rest) = secret_target(&args, &label)?;
    if peek && refresh {
        return Err(usage("specify one of --peek or --refresh but not both"));
    }
    let key = rest.first().cloned();
    if !rest.is_empty() {
        check_empty(&rest[1..]).map_err(usage)?;
    }
    // Run: which secret. A consumer's own label stands for the URI it was saved with.
    let unit = env.ctx.unit.clone();
    let uri = match uri {
        Some(u) => u,
        None => {
            let found = env.model.secrets.values().find(|s| s.consumers.get(&unit).is_some_and(|c| c.label == label));
            match found {
                Some(s) => crate::secrets::Uri { source: None, id: s.id.clone() },
                None => return Err(fail(format!("consumer label {} not found", go_quote(&label)))),
            }
        }
    };
    // Cross-model secrets are not modelled: a URI naming another model finds nothing.
    let model_uuid = env.model.uuid.clone();
    let not_found = || fail(format!("secret {} not found", go_quote(&uri.display())));
    if !uri.is_local(&model_uuid) {
        return Err(not_found());
    }
    let app = env.app_name();
    let secret = env.model.secrets.get_mut(&uri.id).ok_or_else(not_found)?;
    if !secret.grants.contains(&app) {
        return Err(fail("permission denied"));
    }
    let latest = secret.latest();
    let known = secret.consumers.get(&unit).cloned();
    // The first read makes the unit a consumer that tracks the latest revision.
    let refresh = refresh || known.is_none();
    let mut consumer =
        known.unwrap_or(model::SecretConsumer { current: latest, label: String::new(), notified: latest });
    let revision = if refresh || peek { latest } else { consumer.current };
    if refresh {
        consumer.current = latest;
    }
    // Saved on --refresh (and first read) or when a label comes with the URI.
    if refresh || !label.is_empty() {
        if !label.is_empty() {
            consumer.label = label;
        }
        secret.consumers.insert(unit, consumer);
        env.model_dirty = true;
    }
    let content = secret.revisions.get(revision.saturating_sub(1) as usize).cloned().ok_or_else(not_found)?;
    let value = match key {
        None => Out::Any(Value::Object(
            crate::secrets::decode_content(&content).into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
        )),
        Some(k) => {
            // `KeyValue`: `key#base64` gives the stored (encoded) value.
            let (name, raw) = match k.strip_suffix("#base64") {
                Some(n) => (n.to_string(), true),
                None => (k.clone(), false),
            };
            let encoded =
                content.get(&name).ok_or_else(|| fail(format!("secret key value {} not found", go_quote(&name))))?;
            if raw {
                Out::Str(encoded.clone())
            } else {
                let bytes = crate::secrets::b64_decode(encoded).unwrap_or_default();
                Out::Str(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
    };
    out.write(env, value)
}

/// `secret-info-get <ID> | --label L`: the metadata of a secret this unit or its application
/// owns (`jujuc/secret-info-get.go`, which looks only in `SecretMetadata`, the owned
/// secrets). A user secret is owned by the model, so a consumer always gets "not found".
fn secret_info_get(_env: &mut Env, o: Opts) -> ToolResult {
    let label = o.text("label").unwrap_or_default();
    let args = o.args;
    let (uri, rest) = secret_target(&args, &label)?;
    if uri.is_some() && !label.is_empty() {
        return Err(usage("specify either a secret URI or label but not both"));
    }
    check_empty(rest).map_err(usage)?;
    let want = uri.map(|u| u.id).unwrap_or(label);
    Err(fail(format!("secret {} not found", go_quote(&want))))
}

// ---------------------------------------------------------------------------------------
// entry point of the binary

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        let kv = parse_key_values(&["a=1".into(), " b = 2 ".into(), "c=".into(), "d=x=y".into()]).unwrap();
        assert_eq!(kv["a"], "1");
        assert_eq!(kv["b"], "2");
        assert_eq!(kv["c"], "");
        assert_eq!(kv["d"], "x=y");
        assert_eq!(parse_key_values(&["foo".into()]).unwrap_err(), r#"expected "key=value", got "foo""#);
        assert_eq!(parse_key_values(&["=x".into()]).unwrap_err(), r#"expected "key=value", got "=x""#);
        assert_eq!(parse_key_values(&["a=1".into(), "a=2".into()]).unwrap_err(), r#"key "a" specified more than once"#);
    }

    #[test]
    fn settings_file_yaml_and_json() {
        let y = parse_settings_file(b"a: b\nc: '1'\nn: 5\nz: null\n").unwrap();
        assert_eq!(y["a"], "b");
        assert_eq!(y["c"], "1");
        assert_eq!(y["n"], "5");
        assert_eq!(y["z"], "");
        let j = parse_settings_file(br#"{"a": "multi\nline", "b": ""}"#).unwrap();
        assert_eq!(j["a"], "multi\nline");
        assert_eq!(j["b"], "");
        assert!(parse_settings_file(b"a: [1, 2]").is_err());
        assert!(parse_settings_file(b"- a").is_err());
        assert!(parse_settings_file(b"").unwrap().is_empty());
    }

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
