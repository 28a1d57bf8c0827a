//! The in-memory unit agent and LXD, for tests, fuzzing and property checks; never used by the
//! binary. They are the one model of each world: a test that needs a unit agent or an LXD uses
//! these, or a front over them, never a stand-in of its own.
//!
//! `Agent` answers the hook tools the way a real unit does, limits included: an argument too
//! long for `execve` fails as `E2BIG` before the tool runs, a databag or the unit state grown
//! past what the controller stores fails the call. Every call the charm makes is kept, argv
//! and stdin whole, so a test can measure what the charm wrote and look for what it must never
//! repeat. What a healthy agent would not say is injected into it, not scripted beside it:
//! `Agent::answer_next` (one answer for the next call of a tool), `Agent::answer_always` (every
//! call of a tool answered so: the fuzz targets' arbitrary output) and `Agent::missing` (tools
//! an older Juju lacks). jujusim, the process-level simulator, holds the same rules (argv shapes,
//! Juju's limits, error texts and exit codes; `jujusim/README.md` says which tests hold each).
//!
//! `Cluster` is an LXD: its trust store (each entry with its certificate), the certificates
//! fine-grained identities hold, the caller's identity, and members that can be taken down one
//! by one. It trusts the charm by a flag or, as LXD does, by the charm's certificate being in
//! the store, and counts every write so a test can tell who wrote. What LXD decides about its
//! trust store is in `Cluster`'s methods, which both of its fronts call: `MemoryLxd` (behind
//! `MemoryConnector`) in process, and the HTTPS fake LXD of `tests/e2e/fake_lxd.rs`, which adds
//! only how a given server version words its answers over HTTP.

use crate::certs;
use crate::credentials::TlsCredentials;
use crate::endpoint::Endpoint;
use crate::hook_tools::{HookTools, ToolError, ToolOutput, parse_relation_id};
use crate::limits;
use crate::lxd::{
    AddOutcome, Connection, Connector, Identity, Lxd, LxdError, Member, NewTrustEntry, ServerInfo, ServerKind,
    TrustEntry, TrustKind,
};
use crate::ownership::Interface;
use crate::reconcile::EXT_CERTIFICATE_PROJECT;
use crate::relation::Databag;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Linux's `E2BIG` ("Argument list too long"): what `Command::spawn` returns when `execve`
/// refuses the argv, so the charm sees exactly what a real unit would show it.
const E2BIG: i32 = 7;

/// The application on the other side of one relation, as this unit sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Remote {
    /// The endpoint of ours the relation is on (`api` unless made with `relate_on`).
    pub interface: Interface,
    pub app: String,
    /// Unit name (`req/0`) → its databag.
    pub units: BTreeMap<String, Databag>,
    pub app_bag: Databag,
}

/// The action being run, when the charm runs as one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Action {
    pub params: BTreeMap<String, serde_json::Value>,
    /// `action-set` results, keyed as given (`nodes.0.name`).
    pub results: BTreeMap<String, String>,
    /// The message of `action-fail`, once called.
    pub failed: Option<String>,
}

/// A user secret as the agent answers `secret-get` for it (juju/juju
/// `apiserver/facades/agent/secretsmanager/secrets.go`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secret {
    /// The content of each revision, oldest first (revision n is `revisions[n - 1]`).
    pub revisions: Vec<BTreeMap<String, String>>,
    /// Granted to this unit's application (`juju grant-secret`).
    pub granted: bool,
    /// The revision this unit tracks, once it read the secret.
    pub tracked: Option<usize>,
}

/// One hook-tool call exactly as the charm made it.
#[derive(Clone, PartialEq, Eq)]
pub struct Call {
    pub tool: String,
    pub args: Vec<String>,
    pub stdin: Option<Vec<u8>>,
    /// Which limit of a real unit refused this call, if one did.
    pub refused: Option<String>,
}

impl Call {
    /// Bytes the charm handed over: every argv string with its NUL, and stdin.
    pub fn bytes(&self) -> usize {
        argv_bytes(&self.tool, &self.args) + self.stdin.as_ref().map_or(0, Vec::len)
    }

    /// Whether `needle` occurs in any argument or in stdin.
    pub fn contains(&self, needle: &str) -> bool {
        self.args.iter().any(|a| a.contains(needle)) || self.stdin.as_deref().is_some_and(|s| contains(s, needle))
    }
}

/// Short, whatever the call carried: a failing test prints calls, and one may be megabytes.
impl fmt::Debug for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.tool)?;
        for a in &self.args {
            write!(f, " {:?}", Excerpt(a.as_bytes()))?;
        }
        if let Some(s) = &self.stdin {
            write!(f, " <stdin {:?}>", Excerpt(s))?;
        }
        if let Some(r) = &self.refused {
            write!(f, " [refused: {r}]")?;
        }
        Ok(())
    }
}

/// The start of a value and its length, for messages.
pub struct Excerpt<'a>(pub &'a [u8]);

impl fmt::Debug for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 60;
        let text = String::from_utf8_lossy(&self.0[..self.0.len().min(SHOWN)]);
        if self.0.len() <= SHOWN { write!(f, "{text:?}") } else { write!(f, "{text:?}…({} bytes)", self.0.len()) }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    // `str::contains` is std's substring search, built optimised even in a debug test build:
    // what the charm sends may be tens of megabytes when it misbehaves.
    match std::str::from_utf8(haystack) {
        Ok(text) => text.contains(needle),
        Err(_) => needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle.as_bytes()),
    }
}

/// What `execve` counts against its limits: each string and its terminating NUL.
fn argv_bytes(tool: &str, args: &[String]) -> usize {
    tool.len() + 1 + args.iter().map(|a| a.len() + 1).sum::<usize>()
}

/// What Juju counts against a databag's or the unit state's limit.
fn map_bytes(map: &BTreeMap<String, String>) -> usize {
    map.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// A unit agent in memory: the answers of a real one, its limits, and a record of every call.
pub struct Agent {
    /// This unit (`lxd-integrator/0`); its application is the part before the `/`.
    pub unit: String,
    /// Whether `juju trust` was granted, so `credential-get` answers `credential`.
    pub trusted: bool,
    /// Juju is removing this unit: `goal-state` shows it `dying`.
    pub dying: bool,
    /// What `credential-get` answers when trusted.
    pub credential: serde_json::Value,
    pub config: BTreeMap<String, serde_json::Value>,
    pub leader: bool,
    pub state: BTreeMap<String, String>,
    /// Relation id of each relation (any endpoint) → the application on the other side.
    pub remote: BTreeMap<u32, Remote>,
    /// (relation id, this unit or its application) → what the charm published there.
    pub ours: BTreeMap<(u32, String), Databag>,
    /// The unit's workload status: (status, message).
    pub status: (String, String),
    pub app_status: Option<(String, String)>,
    /// Every `juju-log` message, in order.
    pub logs: Vec<String>,
    pub version: Option<String>,
    /// Set while the charm runs as an action.
    pub action: Option<Action>,
    /// Every call, refused ones included.
    pub calls: Vec<Call>,
    /// User secrets by ID (the part after `secret:`).
    pub secrets: BTreeMap<String, Secret>,
    /// Tools this agent does not have, as an older Juju lacks them (`secret-get` before 3.0,
    /// `goal-state` before 2.4): calling one fails to spawn, as a tool not on `PATH` does
    /// (`ToolError::Missing`).
    pub missing: BTreeSet<String>,
    /// Answers given instead of the model's, each to the next call of its tool, in order
    /// (`answer_next`). Public so that tests can still build an agent field by field.
    pub injected: Vec<(String, ToolOutput)>,
    /// Answers given instead of the model's to every call of their tool (`answer_always`).
    pub fixed: BTreeMap<String, ToolOutput>,
}

impl Default for Agent {
    fn default() -> Agent {
        Agent {
            unit: "lxd-integrator/0".into(),
            trusted: false,
            dying: false,
            credential: cloud_credential("127.0.0.1"),
            config: BTreeMap::new(),
            leader: false,
            state: BTreeMap::new(),
            remote: BTreeMap::new(),
            ours: BTreeMap::new(),
            status: (String::new(), String::new()),
            app_status: None,
            logs: Vec::new(),
            version: None,
            action: None,
            calls: Vec::new(),
            secrets: BTreeMap::new(),
            missing: BTreeSet::new(),
            injected: Vec::new(),
            fixed: BTreeMap::new(),
        }
    }
}

/// A throwaway credential for the in-memory LXD, made once with `openssl req -x509 -newkey ec`
/// (valid to 2100): real PEM, so the pass builds its TLS client as it would against a server.
/// It has never been trusted by any real LXD.
pub const MEMORY_CLIENT_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBjzCCATWgAwIBAgIUdxloi0wnPois7pyA7fUPkBxts6UwCgYIKoZIzj0EAwIw\nHDEaMBgGA1UEAwwRbWVtb3J5LWNyZWRlbnRpYWwwIBcNMjYxMTI4MTkwMDAwWhgP\nMjEwMDEwMzExOTAwMDBaMBwxGjAYBgNVBAMMEW1lbW9yeS1jcmVkZW50aWFsMFkw\nEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESU94xL5HT985x56XjBo+o0KsbKk9FFvg\nnKJ62OXOQVjC0Ff3amWnvBC0zjadf+d4oAWp/znKJllzylCwNnbQTKNTMFEwHQYD\nVR0OBBYEFAXojs5oUJglmlvQlHZNLQDX0zQGMB8GA1UdIwQYMBaAFAXojs5oUJgl\nmlvQlHZNLQDX0zQGMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIh\nAMJ3Omh4Uv0eTmRzRZ9XJUw+USszmhbyaF+0IqQ7UcPcAiBdug05YWh7l+ViCK9c\n8Gs7L8d0FmW3KU8A7d7cXiYcUA==\n-----END CERTIFICATE-----\n";
pub const MEMORY_CLIENT_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgFKBWOOMq/iqNC3nK\nuRX5CTErh+Es7uxVNzxiFI7HUXyhRANCAARJT3jEvkdP3znHnpeMGj6jQqxsqT0U\nW+CconrY5c5BWMLQV/dqZae8ELTONp1/53igBan/OcomWXPKULA2dtBM\n-----END PRIVATE KEY-----\n";
pub const MEMORY_SERVER_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBhjCCAS2gAwIBAgIUXMx+rMjSX+LGMCQ2pFeGXxsW6/UwCgYIKoZIzj0EAwIw\nGDEWMBQGA1UEAwwNbWVtb3J5LXNlcnZlcjAgFw0yNjExMjgxOTAwMDBaGA8yMTAw\nMTAzMTE5MDAwMFowGDEWMBQGA1UEAwwNbWVtb3J5LXNlcnZlcjBZMBMGByqGSM49\nAgEGCCqGSM49AwEHA0IABBvLtng6QWv6KkgMB7p+DBrOzronGSsL2Iqpc005TY2p\nrksSwbHznCThB3fqQZCSR6UkMT3ScvN8xu0OKhwyHxCjUzBRMB0GA1UdDgQWBBQs\nQjK38h30ya9vyHuxmQnlDjAy0zAfBgNVHSMEGDAWgBQsQjK38h30ya9vyHuxmQnl\nDjAy0zAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIA3+Cx8dcpyR\nclDdwJUKULT3jOW1RWV510ZexirYjPUGAiAfbw2YJOZIPSfwkxwJ71TF6gTEQPcA\njI52smoEiP6oRw==\n-----END CERTIFICATE-----\n";

/// An LXD certificate credential as `credential-get` shows it, for `endpoint`.
pub fn cloud_credential(endpoint: &str) -> serde_json::Value {
    serde_json::json!({"type": "lxd", "name": "localhost", "endpoint": endpoint, "credential": {"auth-type": "certificate",
        "attrs": {"client-cert": MEMORY_CLIENT_CERT, "client-key": MEMORY_CLIENT_KEY, "server-cert": MEMORY_SERVER_CERT}}})
}

impl Agent {
    /// A trusted leader: the usual starting point.
    pub fn leader() -> Agent {
        Agent { trusted: true, leader: true, ..Agent::default() }
    }

    pub fn app(&self) -> &str {
        self.unit.split('/').next().unwrap_or(&self.unit)
    }

    /// Relation `rel` on `api` with application `app`, created empty if new.
    pub fn relate(&mut self, rel: u32, app: &str) -> &mut Remote {
        self.relate_on(Interface::Lxd, rel, app)
    }

    /// Relation `rel` on the endpoint of `interface` with application `app`, created empty if new.
    pub fn relate_on(&mut self, interface: Interface, rel: u32, app: &str) -> &mut Remote {
        self.remote.entry(rel).or_insert_with(|| Remote { interface, app: app.into(), ..Remote::default() })
    }

    /// The next call of `tool` gets `output` instead of what the model would answer, and
    /// changes nothing: a fault injected into this one agent (a controller that drops the
    /// connection, an answer a newer Juju might give), never a second model of it. The call is
    /// recorded in `calls` like any other, and the kernel's argv limits still come first.
    pub fn answer_next(&mut self, tool: &str, output: ToolOutput) {
        self.injected.push((tool.to_string(), output));
    }

    /// Every call of `tool` gets `output` instead of what the model would answer: a tool that
    /// prints whatever it prints, as the fuzz targets hand arbitrary bytes to the charm's
    /// decoders. Injected answers (`answer_next`) still come first.
    pub fn answer_always(&mut self, tool: &str, output: ToolOutput) {
        self.fixed.insert(tool.to_string(), output);
    }

    /// Starts running an action with `params`.
    pub fn start_action(&mut self, params: BTreeMap<String, serde_json::Value>) {
        self.action = Some(Action { params, ..Action::default() });
    }

    /// A user secret `id` (20 characters of `0-9a-v`) granted to this application, at
    /// revision 1; returns its URI, `secret:<id>`.
    pub fn add_secret(&mut self, id: &str, content: &[(&str, &str)]) -> String {
        let revision = content.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.secrets.insert(id.into(), Secret { revisions: vec![revision], granted: true, tracked: None });
        format!("secret:{id}")
    }

    /// A new revision of secret `id` holding exactly `content`.
    pub fn update_secret(&mut self, id: &str, content: &[(&str, &str)]) {
        if let Some(s) = self.secrets.get_mut(id) {
            s.revisions.push(content.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        }
    }

    /// `secret-get <uri> [key] [--peek|--refresh]`, as a consumer sees it: not found, then not
    /// granted, then the tracked revision (the first read tracks the latest).
    fn secret_get(&mut self, args: &Args) -> Result<ToolOutput, ToolError> {
        let uri = args.positional.first().map_or("", String::as_str);
        let id = uri.strip_prefix("secret:").unwrap_or(uri);
        let id = id.rsplit('/').next().unwrap_or(id);
        let Some(secret) = self.secrets.get_mut(id) else {
            return fail(1, &format!("secret \"secret:{id}\" not found"));
        };
        if !secret.granted {
            return fail(1, "permission denied");
        }
        let latest = secret.revisions.len();
        let refresh = args.has("--refresh") || secret.tracked.is_none();
        let revision = if refresh || args.has("--peek") { latest } else { secret.tracked.unwrap_or(latest) };
        if refresh {
            secret.tracked = Some(latest);
        }
        let content = secret.revisions.get(revision.saturating_sub(1)).cloned().unwrap_or_default();
        match args.positional.get(1) {
            Some(key) => match content.get(key) {
                Some(v) => ok_json(v),
                None => fail(1, &format!("secret key value {key:?} not found")),
            },
            None => ok_json(&content),
        }
    }

    /// What this unit published on relation `rel` (its application's bag with `app`).
    pub fn published(&self, rel: u32, app: bool) -> Databag {
        let member = if app { self.app().to_string() } else { self.unit.clone() };
        self.ours.get(&(rel, member)).cloned().unwrap_or_default()
    }

    /// All bytes the charm handed to hook tools so far.
    pub fn bytes_sent(&self) -> usize {
        self.calls.iter().map(Call::bytes).sum()
    }

    /// Calls a real unit would have refused for a limit.
    pub fn refused(&self) -> impl Iterator<Item = &Call> {
        self.calls.iter().filter(|c| c.refused.is_some())
    }

    /// Calls that handed `needle` over, in an argument or on stdin.
    pub fn calls_containing<'a>(&'a self, needle: &'a str) -> impl Iterator<Item = &'a Call> {
        self.calls.iter().filter(move |c| c.contains(needle))
    }

    fn refuse(&mut self, why: String) {
        if let Some(call) = self.calls.last_mut() {
            call.refused = Some(why);
        }
    }

    fn limit_failure(&mut self, why: String) -> Result<ToolOutput, ToolError> {
        let out = fail(1, &why);
        self.refuse(why);
        out
    }

    fn relation(&self, rel: &str) -> Result<(u32, &Remote), ToolOutput> {
        let found = parse_relation_id(rel).and_then(|id| self.remote.get(&id).map(|r| (id, r)));
        found.ok_or_else(|| failed(2, &format!("invalid value {rel:?} for option -r: relation not found")))
    }

    fn dispatch(&mut self, tool: &str, args: &Args, stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError> {
        if self.missing.contains(tool) {
            return Err(ToolError::Missing(tool.to_string()));
        }
        if let Some(at) = self.injected.iter().position(|(t, _)| t == tool) {
            return Ok(self.injected.remove(at).1);
        }
        if let Some(output) = self.fixed.get(tool) {
            return Ok(output.clone());
        }
        match tool {
            "credential-get" if self.trusted => ok_json(&self.credential),
            "credential-get" => fail(1, "cannot access cloud credentials: permission denied"),
            "secret-get" => self.secret_get(args),
            "config-get" => match args.positional.first() {
                Some(key) => ok_json(self.config.get(key).unwrap_or(&serde_json::Value::Null)),
                None => ok_json(&self.config),
            },
            "is-leader" => ok_json(&self.leader),
            "goal-state" => self.goal_state(),
            "state-get" => match args.positional.first().filter(|k| *k != "-") {
                Some(key) => ok_json(self.state.get(key).map_or("", String::as_str)),
                None if self.state.is_empty() => ok_json(&serde_json::Value::Null),
                None => ok_json(&self.state),
            },
            "state-set" => self.state_set(args, stdin),
            "state-delete" => {
                if let Some(key) = args.positional.first() {
                    self.state.remove(key);
                }
                ok("")
            }
            "relation-ids" => self.relation_ids(args),
            "relation-list" => self.relation_list(args),
            "relation-get" => self.relation_get(args),
            "relation-set" => self.relation_set(args, stdin),
            "status-set" => self.status_set(args),
            "juju-log" => {
                if args.positional.is_empty() {
                    return fail(2, "no message specified");
                }
                self.logs.push(args.positional.join(" "));
                ok("")
            }
            "application-version-set" => {
                self.version = args.positional.first().cloned();
                ok("")
            }
            "action-get" => self.action_get(args),
            "action-set" => self.action_set(args),
            "action-fail" => self.action_fail(args),
            other => Err(ToolError::Missing(other.to_string())),
        }
    }

    /// This unit only: the agent knows no other.
    fn goal_state(&self) -> Result<ToolOutput, ToolError> {
        let status = if self.dying {
            "dying"
        } else if self.status.0.is_empty() {
            "waiting"
        } else {
            self.status.0.as_str()
        };
        ok_json(
            &serde_json::json!({"units": {&self.unit: {"status": status, "since": "2026-01-01 00:00:00Z"}}, "relations": {}}),
        )
    }

    fn relation_ids(&self, args: &Args) -> Result<ToolOutput, ToolError> {
        let Some(endpoint) = args.positional.first() else { return fail(2, "no endpoint name specified") };
        let ids: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, r)| r.interface.endpoint() == endpoint)
            .map(|(id, _)| format!("{endpoint}:{id}"))
            .collect();
        ok_json(&ids)
    }

    fn relation_list(&self, args: &Args) -> Result<ToolOutput, ToolError> {
        let (_, remote) = match self.relation(args.flag("-r").unwrap_or("")) {
            Ok(found) => found,
            Err(out) => return Ok(out),
        };
        if args.has("--app") { ok_json(&remote.app) } else { ok_json(&remote.units.keys().collect::<Vec<_>>()) }
    }

    fn action_get(&self, args: &Args) -> Result<ToolOutput, ToolError> {
        match &self.action {
            Some(action) => match args.positional.first() {
                Some(key) => ok_json(action.params.get(key).unwrap_or(&serde_json::Value::Null)),
                None => ok_json(&action.params),
            },
            None => fail(1, "not running an action"),
        }
    }

    fn action_fail(&mut self, args: &Args) -> Result<ToolOutput, ToolError> {
        match &mut self.action {
            Some(action) => {
                action.failed = Some(args.positional.first().cloned().unwrap_or_default());
                ok("")
            }
            None => fail(1, "not running an action"),
        }
    }

    fn relation_get(&self, args: &Args) -> Result<ToolOutput, ToolError> {
        let (rel, remote) = match self.relation(args.flag("-r").unwrap_or("")) {
            Ok(found) => found,
            Err(out) => return Ok(out),
        };
        let key = args.positional.first().map_or("-", String::as_str);
        let member = args.positional.get(1).map_or("", String::as_str);
        let bag = if member == remote.app {
            remote.app_bag.clone()
        } else if let Some(bag) = remote.units.get(member) {
            bag.clone()
        } else if member == self.app() && !self.leader {
            return fail(1, "permission denied");
        } else if member == self.unit || member == self.app() {
            self.ours.get(&(rel, member.to_string())).cloned().unwrap_or_default()
        } else {
            return fail(1, &format!("cannot read settings for unit {member:?} in relation {rel}: unit not found"));
        };
        if key == "-" { ok_json(&bag) } else { ok_json(&bag.get(key)) }
    }

    /// Settings from `--file -` (JSON, which is YAML too) and `key=value` pairs after it.
    fn settings(args: &Args, stdin: Option<&[u8]>) -> Result<BTreeMap<String, String>, ToolOutput> {
        let mut pairs = BTreeMap::new();
        if let Some(file) = args.flag("--file") {
            if file != "-" {
                return Err(failed(1, &format!("open {file}: no such file or directory")));
            }
            let parsed: Option<BTreeMap<String, String>> = serde_json::from_slice(stdin.unwrap_or_default())
                .map_err(|e| failed(1, &format!("cannot parse settings: {e}")))?;
            pairs.extend(parsed.unwrap_or_default());
        }
        for pair in &args.positional {
            let (k, v) =
                pair.split_once('=').ok_or_else(|| failed(2, &format!("expected \"key=value\", got {pair:?}")))?;
            pairs.insert(k.to_string(), v.to_string());
        }
        Ok(pairs)
    }

    fn relation_set(&mut self, args: &Args, stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError> {
        let rel = match self.relation(args.flag("-r").unwrap_or("")) {
            Ok((rel, _)) => rel,
            Err(out) => return Ok(out),
        };
        let app = args.has("--app");
        if app && !self.leader {
            return fail(1, "cannot write relation settings");
        }
        let pairs = match Agent::settings(args, stdin) {
            Ok(p) => p,
            Err(out) => return Ok(out),
        };
        let member = if app { self.app().to_string() } else { self.unit.clone() };
        let mut bag = self.ours.get(&(rel, member.clone())).cloned().unwrap_or_default();
        for (k, v) in pairs {
            if v.is_empty() {
                bag.remove(&k);
            } else {
                bag.insert(k, v);
            }
        }
        if map_bytes(&bag) > limits::DATABAG_BYTES {
            return self.limit_failure(format!(
                "cannot write relation settings for relation {rel}: settings exceed the {} byte limit",
                limits::DATABAG_BYTES
            ));
        }
        self.ours.insert((rel, member), bag);
        ok("")
    }

    fn state_set(&mut self, args: &Args, stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError> {
        let pairs = match Agent::settings(args, stdin) {
            Ok(p) => p,
            Err(out) => return Ok(out),
        };
        let mut state = self.state.clone();
        for (k, v) in pairs {
            if k.len() > limits::STATE_KEY_BYTES {
                return self.limit_failure(format!("max allowed key length ({}) exceeded", limits::STATE_KEY_BYTES));
            }
            if v.len() > limits::STATE_VALUE_BYTES {
                return self
                    .limit_failure(format!("max allowed value length ({}) exceeded", limits::STATE_VALUE_BYTES));
            }
            state.insert(k, v);
        }
        if map_bytes(&state) > limits::UNIT_STATE_BYTES {
            return self.limit_failure(format!("max allowed charm state size ({}) exceeded", limits::UNIT_STATE_BYTES));
        }
        self.state = state;
        ok("")
    }

    fn status_set(&mut self, args: &Args) -> Result<ToolOutput, ToolError> {
        let application = args.bool_flag("--application");
        let Some(status) = args.positional.first() else {
            return fail(2, "invalid args, require <status> [message] [data]");
        };
        if !["maintenance", "blocked", "waiting", "active"].contains(&status.as_str()) {
            return fail(
                2,
                &format!("invalid status {status:?}, expected one of [maintenance blocked waiting active]"),
            );
        }
        let message = args.positional.get(1).cloned().unwrap_or_default();
        if application {
            if !self.leader {
                return fail(1, "this unit is not the leader");
            }
            self.app_status = Some((status.clone(), message));
        } else {
            self.status = (status.clone(), message);
        }
        ok("")
    }

    fn action_set(&mut self, args: &Args) -> Result<ToolOutput, ToolError> {
        let Some(action) = &mut self.action else { return fail(1, "not running an action") };
        let mut pairs = Vec::new();
        for arg in &args.positional {
            let Some((key, value)) = arg.split_once('=') else {
                return fail(2, &format!("argument {arg:?} must be of the form key...=value"));
            };
            if let Some(bad) = key.split('.').find(|k| !valid_action_key(k)) {
                return fail(
                    2,
                    &format!(
                        "key {bad:?} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods"
                    ),
                );
            }
            if let Some(reserved) =
                key.split('.').find(|k| ["stdout", "stdout-encoding", "stderr", "stderr-encoding"].contains(k))
            {
                return fail(2, &format!("cannot set reserved action key \"{reserved}\""));
            }
            pairs.push((key.to_string(), value.to_string()));
        }
        action.results.extend(pairs);
        ok("")
    }
}

fn valid_action_key(k: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = k.as_bytes();
    b.first().is_some_and(|c| alnum(*c))
        && b.last().is_some_and(|c| alnum(*c))
        && b.iter().all(|c| alnum(*c) || *c == b'-')
}

impl HookTools for Agent {
    fn run(&mut self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError> {
        let argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.calls.push(Call {
            tool: tool.to_string(),
            args: argv.clone(),
            stdin: stdin.map(<[u8]>::to_vec),
            refused: None,
        });
        // Linux checks before the tool ever runs: the call fails as a spawn, not as an exit code.
        let too_long = argv.iter().map(String::len).max().filter(|n| *n > limits::ARG_MAX_BYTES);
        let total = argv_bytes(tool, &argv);
        let refusal = match too_long {
            Some(n) => Some(format!("E2BIG: one argument of {n} bytes (limit {})", limits::ARG_MAX_BYTES)),
            None if total > limits::ARGV_TOTAL_BYTES => {
                Some(format!("E2BIG: argv of {total} bytes (limit {})", limits::ARGV_TOTAL_BYTES))
            }
            None => None,
        };
        if let Some(why) = refusal {
            self.refuse(why);
            return Err(ToolError::Io { tool: tool.to_string(), source: std::io::Error::from_raw_os_error(E2BIG) });
        }
        self.dispatch(tool, &Args::parse(&argv), stdin)
    }
}

/// A hook tool's command line: flags (`-r 3`, `--format=json`, `--app`) and positionals.
#[derive(Debug, Default)]
struct Args {
    flags: BTreeMap<String, String>,
    positional: Vec<String>,
}

/// Flags that take a value as the next argument when not written `--flag=value`.
const VALUE_FLAGS: &[&str] = &["-r", "--relation", "--file", "--format", "-l", "--log-level"];

impl Args {
    fn parse(argv: &[String]) -> Args {
        let mut out = Args::default();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            if a == "--" {
                out.positional.extend(it.by_ref().cloned());
                break;
            }
            if !a.starts_with('-') || a == "-" {
                out.positional.push(a.clone());
                continue;
            }
            let (name, value) = match a.split_once('=') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None if VALUE_FLAGS.contains(&a.as_str()) => (a.clone(), it.next().cloned().unwrap_or_default()),
                None => (a.clone(), "true".to_string()),
            };
            let name = match name.as_str() {
                "--relation" => "-r".to_string(),
                "-l" => "--log-level".to_string(),
                _ => name,
            };
            out.flags.insert(name, value);
        }
        out
    }

    fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    fn has(&self, name: &str) -> bool {
        self.flags.contains_key(name)
    }

    /// `--application`, `--application=true`, `=True`, `=1`; `=false` and friends are off.
    fn bool_flag(&self, name: &str) -> bool {
        self.flag(name).is_some_and(|v| matches!(v, "true" | "True" | "1"))
    }
}

/// A tool's failure as Juju prints it: `ERROR <error>` on stderr, exit `code`; what the model
/// answers, and what a test injects where a healthy agent would not fail.
pub fn failed(code: i32, error: &str) -> ToolOutput {
    ToolOutput { code, stdout: vec![], stderr: format!("ERROR {error}\n").into_bytes() }
}

/// A tool's success: `stdout`, exit 0.
pub fn printed(stdout: impl Into<Vec<u8>>) -> ToolOutput {
    ToolOutput { code: 0, stdout: stdout.into(), stderr: vec![] }
}

fn fail(code: i32, error: &str) -> Result<ToolOutput, ToolError> {
    Ok(failed(code, error))
}

fn ok(stdout: &str) -> Result<ToolOutput, ToolError> {
    Ok(printed(stdout))
}

/// `--format=json` output: JSON and a newline, as Juju prints it.
fn ok_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<ToolOutput, ToolError> {
    let mut stdout = serde_json::to_vec(value)
        .map_err(|e| ToolError::Output { tool: "memory agent".into(), detail: e.to_string() })?;
    stdout.push(b'\n');
    Ok(printed(stdout))
}

/// An LXD cluster in memory: members, the trust store, and faults to inject.
///
/// What the server decides about its trust store (who may change it, what it accepts, what a
/// duplicate is) lives in the methods `add`, `remove`, `patch` and `allows`, so both fronts
/// over it, `MemoryLxd` in process and the HTTPS fake of `tests/e2e`, keep one set of rules
/// and only word the answers their own way.
#[derive(Debug, Default)]
pub struct Cluster {
    /// Member endpoint URL → reachable.
    pub up: BTreeMap<String, bool>,
    /// Whether the charm's client certificate is trusted (unless `trust_from_store`).
    pub trusted: bool,
    /// Trust the client as real LXD does: when its certificate's fingerprint is in `store`,
    /// whoever put it there, or a fine-grained identity holds it. `trusted` is then not used.
    pub trust_from_store: bool,
    pub store: Vec<TrustEntry>,
    /// Fingerprint → DER of the certificate an entry was made from: LXD keeps it with the
    /// entry and lists it (`certificate`). Entries pushed onto `store` directly have none.
    pub certificates: BTreeMap<String, Vec<u8>>,
    /// Fingerprints that fine-grained identities hold (LXD 5.21+): trusted, yet not listed
    /// in `store`, and a conflict when added again.
    pub held_by_identities: BTreeSet<String>,
    pub extensions: Vec<String>,
    /// Projects that exist; `None`: any project named exists.
    pub projects: Option<BTreeSet<String>>,
    /// Requests served (or refused for an unreachable member).
    pub requests: usize,
    /// Requests that would change the trust store (add, remove, restrict, rename), counted
    /// whether or not they reached a member: a unit that must not write must not even try.
    pub writes: usize,
    /// Endpoint URLs that answer `GET /1.0`, then drop the connection.
    pub drop_after_server: BTreeSet<String>,
    /// The cluster database says every member is offline (seen while it re-elects a leader).
    pub all_reported_offline: bool,
    /// What `GET /1.0/auth/identities/current` answers; `None`: 404, as a server without
    /// `access_management` does. It also decides which trust-store changes are allowed.
    pub identity: Option<Identity>,
}

/// What the cluster made of a certificate it was asked to trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    /// An entry of the store already has its fingerprint.
    InStore,
    /// A fine-grained identity holds it: LXD 5.21+ refuses it as a conflict all the same.
    HeldByIdentity,
}

/// Why the cluster refused a change to its trust store; each front words it as its server
/// would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The current identity lacks the entitlement (LXD's authorizer).
    Forbidden,
    /// Not a certificate LXD can parse, and why.
    BadCertificate(String),
    /// A project named does not exist.
    NoSuchProject,
    /// No entry has that fingerprint.
    NotFound,
}

/// The fields a `PATCH /1.0/certificates/<fingerprint>` sets; the others stay as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    pub name: Option<String>,
    pub restricted: Option<bool>,
    pub projects: Option<Vec<String>>,
}

impl Cluster {
    /// A healthy cluster of `members` (endpoint URLs) that trusts the charm and has the
    /// extensions the charm uses.
    pub fn new(members: &[&str]) -> Cluster {
        Cluster {
            up: members.iter().map(|m| (m.to_string(), true)).collect(),
            trusted: true,
            extensions: vec!["clustering".into(), EXT_CERTIFICATE_PROJECT.into()],
            ..Cluster::default()
        }
    }

    /// Shared with the connections the charm opens.
    pub fn shared(self) -> Arc<Mutex<Cluster>> {
        Arc::new(Mutex::new(self))
    }

    pub fn fingerprints(&self) -> BTreeSet<String> {
        self.store.iter().map(|e| e.fingerprint.clone()).collect()
    }

    /// Whether a client presenting the certificate `fingerprint` is trusted.
    fn trusts(&self, fingerprint: Option<&str>) -> bool {
        if !self.trust_from_store {
            return self.trusted;
        }
        fingerprint
            .is_some_and(|fp| self.store.iter().any(|e| e.fingerprint == fp) || self.held_by_identities.contains(fp))
    }

    /// Whether the current identity may do `entitlement` on the server, as LXD's authorizer
    /// decides for a TLS identity (`lxd/auth/drivers/openfga_model.openfga`: `admin` and
    /// `permission_manager` imply the identity entitlements; an unrestricted certificate may
    /// do anything, a restricted one nothing server-wide). No identity: a server without
    /// fine-grained authorization, where a trusted client may.
    pub fn allows(&self, entitlement: &str) -> bool {
        let Some(id) = &self.identity else { return true };
        match id.kind.as_str() {
            "Client certificate (unrestricted)" => true,
            "Client certificate (restricted)" => false,
            _ => id.permissions.iter().any(|p| {
                p.entity_type == "server"
                    && [entitlement, "admin", "permission_manager"].contains(&p.entitlement.as_str())
            }),
        }
    }

    /// An entry as an operator or an older server left it, whatever its name: no rule
    /// applies and no write is counted. Returns its fingerprint.
    pub fn seed(&mut self, name: &str, der: &[u8], projects: Option<Vec<String>>) -> String {
        let fingerprint = certs::fingerprint(der);
        self.insert(name, &fingerprint, der, projects.is_some(), projects.unwrap_or_default());
        fingerprint
    }

    /// A `client` entry and the certificate it was made from, as LXD stores them.
    fn insert(&mut self, name: &str, fingerprint: &str, der: &[u8], restricted: bool, projects: Vec<String>) {
        let kind = TrustKind::Client;
        self.store.push(TrustEntry { name: name.into(), fingerprint: fingerprint.into(), kind, restricted, projects });
        self.certificates.insert(fingerprint.into(), der.to_vec());
    }

    /// `POST /1.0/certificates` of a `client` entry, checked in LXD's order: the caller's
    /// entitlement, the certificate, the projects, then whether it is already trusted.
    pub fn add(&mut self, name: &str, der: &[u8], restricted: bool, projects: &[String]) -> Result<Added, Refused> {
        if !self.allows("can_create_identities") {
            return Err(Refused::Forbidden);
        }
        // LXD parses what it is given; it does not care whether it is a CA or a leaf.
        certs::inspect_der(der).map_err(|why| Refused::BadCertificate(why.to_string()))?;
        self.check_projects(projects)?;
        let fingerprint = certs::fingerprint(der);
        if self.store.iter().any(|x| x.fingerprint == fingerprint) {
            return Ok(Added::InStore);
        }
        if self.held_by_identities.contains(&fingerprint) {
            return Ok(Added::HeldByIdentity);
        }
        self.insert(name, &fingerprint, der, restricted, projects.to_vec());
        Ok(Added::Added)
    }

    /// `DELETE /1.0/certificates/<fingerprint>`.
    pub fn remove(&mut self, fingerprint: &str) -> Result<(), Refused> {
        if !self.allows("can_delete_identities") {
            return Err(Refused::Forbidden);
        }
        let before = self.store.len();
        self.store.retain(|x| x.fingerprint != fingerprint);
        if self.store.len() == before {
            return Err(Refused::NotFound);
        }
        self.certificates.remove(fingerprint);
        Ok(())
    }

    /// `PATCH /1.0/certificates/<fingerprint>`: LXD decodes the patch over the stored entry,
    /// so what it does not name stays as it is.
    pub fn patch(&mut self, fingerprint: &str, patch: &Patch) -> Result<(), Refused> {
        if !self.allows("can_edit_identities") {
            return Err(Refused::Forbidden);
        }
        if !self.store.iter().any(|x| x.fingerprint == fingerprint) {
            return Err(Refused::NotFound);
        }
        self.check_projects(patch.projects.as_deref().unwrap_or_default())?;
        for x in self.store.iter_mut().filter(|x| x.fingerprint == fingerprint) {
            if let Some(name) = &patch.name {
                x.name.clone_from(name);
            }
            if let Some(restricted) = patch.restricted {
                x.restricted = restricted;
            }
            if let Some(projects) = &patch.projects {
                x.projects.clone_from(projects);
            }
        }
        Ok(())
    }

    fn check_projects(&self, projects: &[String]) -> Result<(), Refused> {
        match &self.projects {
            Some(known) if projects.iter().any(|p| !known.contains(p)) => Err(Refused::NoSuchProject),
            _ => Ok(()),
        }
    }
}

/// The current identity as `GET /1.0/auth/identities/current` shows it (`IdentityInfo` in
/// canonical/lxd `shared/api/auth.go`), for a front that serves the model over HTTP.
pub fn identity_info(identity: &Identity) -> serde_json::Value {
    let permissions: Vec<serde_json::Value> = identity
        .permissions
        .iter()
        .map(|p| serde_json::json!({"entity_type": p.entity_type, "url": p.url, "entitlement": p.entitlement}))
        .collect();
    let mut info = serde_json::json!({"type": identity.kind, "authentication_method": "tls", "name": identity.name,
        "effective_permissions": permissions});
    if let Some(fine_grained) = identity.fine_grained {
        info["fine_grained"] = serde_json::json!(fine_grained);
    }
    info
}

fn lock(cluster: &Mutex<Cluster>) -> MutexGuard<'_, Cluster> {
    // A test that panicked while holding the lock already failed; its state is still readable.
    cluster.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection to a member of a `Cluster`.
pub struct MemoryLxd {
    ep: Endpoint,
    cluster: Arc<Mutex<Cluster>>,
    /// Fingerprint of the client certificate the connection presents, if it is one.
    client: Option<String>,
}

impl MemoryLxd {
    fn hit(&self) -> Result<MutexGuard<'_, Cluster>, LxdError> {
        let mut c = lock(&self.cluster);
        c.requests += 1;
        if !c.up.get(&self.ep.url()).copied().unwrap_or(false) {
            return Err(LxdError::Unreachable { endpoint: self.ep.url(), detail: "connection refused".into() });
        }
        Ok(c)
    }

    fn write(&self) -> Result<MutexGuard<'_, Cluster>, LxdError> {
        lock(&self.cluster).writes += 1;
        self.hit()
    }

    /// The cluster's refusal as the HTTPS client reports LXD's answer to it: a 403 is
    /// `Untrusted`, the rest are API errors with LXD's texts.
    fn refusal(&self, refused: Refused, method: &str, path: &str) -> LxdError {
        let (status, message) = match refused {
            Refused::Forbidden => return LxdError::Untrusted { endpoint: self.ep.url() },
            Refused::BadCertificate(why) => (400, why),
            Refused::NoSuchProject => (404, "Project not found".to_string()),
            Refused::NotFound => (404, "Certificate not found".to_string()),
        };
        LxdError::Api { method: method.into(), path: path.into(), status, message }
    }
}

impl Lxd for MemoryLxd {
    fn endpoint(&self) -> &Endpoint {
        &self.ep
    }

    fn server(&mut self) -> Result<ServerInfo, LxdError> {
        let c = self.hit()?;
        Ok(ServerInfo {
            trusted: c.trusts(self.client.as_deref()),
            api_extensions: c.extensions.clone(),
            kind: ServerKind::Lxd,
            server_name: "node1".into(),
            server_version: "5.0.2".into(),
            clustered: true,
            certificate: None,
            addresses: vec![],
        })
    }

    fn members(&mut self) -> Result<Vec<Member>, LxdError> {
        let c = self.hit()?;
        if c.drop_after_server.contains(&self.ep.url()) {
            return Err(LxdError::Unreachable { endpoint: self.ep.url(), detail: "connection closed".into() });
        }
        Ok(c.up
            .iter()
            .enumerate()
            .map(|(i, (url, up))| Member {
                name: format!("node{}", i + 1),
                url: url.clone(),
                status: if *up && !c.all_reported_offline { "Online".into() } else { "Offline".into() },
                message: String::new(),
            })
            .collect())
    }

    fn trust_store(&mut self) -> Result<Vec<TrustEntry>, LxdError> {
        Ok(self.hit()?.store.clone())
    }

    fn current_identity(&mut self) -> Result<Identity, LxdError> {
        let c = self.hit()?;
        c.identity.clone().ok_or_else(|| LxdError::Api {
            method: "GET".into(),
            path: "/1.0/auth/identities/current".into(),
            status: 404,
            message: "not found".into(),
        })
    }

    fn add_trust(&mut self, e: &NewTrustEntry) -> Result<AddOutcome, LxdError> {
        let added = self.write()?.add(&e.name, &e.der, e.projects.is_some(), e.projects.as_deref().unwrap_or_default());
        match added {
            Ok(Added::Added) => Ok(AddOutcome::Added),
            // The client reads every duplicate answer (400, 409, 500 by version) as this.
            Ok(Added::InStore | Added::HeldByIdentity) => Ok(AddOutcome::AlreadyPresent),
            Err(refused) => Err(self.refusal(refused, "POST", "/1.0/certificates")),
        }
    }

    fn remove_trust(&mut self, fp: &str) -> Result<(), LxdError> {
        match self.write()?.remove(fp) {
            // The client takes a 404 for an entry already gone as success.
            Ok(()) | Err(Refused::NotFound) => Ok(()),
            Err(refused) => Err(self.refusal(refused, "DELETE", &format!("/1.0/certificates/{fp}"))),
        }
    }

    fn restrict_trust(&mut self, fp: &str, projects: Option<&[String]>) -> Result<(), LxdError> {
        let patch = Patch {
            name: None,
            restricted: Some(projects.is_some()),
            projects: Some(projects.map(<[String]>::to_vec).unwrap_or_default()),
        };
        let patched = self.write()?.patch(fp, &patch);
        patched.map_err(|refused| self.refusal(refused, "PATCH", &format!("/1.0/certificates/{fp}")))
    }

    fn rename_trust(&mut self, fp: &str, name: &str) -> Result<(), LxdError> {
        let patch = Patch { name: Some(name.into()), ..Patch::default() };
        let patched = self.write()?.patch(fp, &patch);
        patched.map_err(|refused| self.refusal(refused, "PATCH", &format!("/1.0/certificates/{fp}")))
    }
}

/// Opens `MemoryLxd` connections to the shared `Cluster`: any credentials connect; whether
/// LXD trusts them is `Cluster::trusted`, or their certificate in the store.
pub struct MemoryConnector(pub Arc<Mutex<Cluster>>);

impl Connector for MemoryConnector {
    fn connect(&self, endpoint: &Endpoint, tls: &TlsCredentials) -> Result<Connection, LxdError> {
        let client =
            certs::pem_blocks(&tls.client_cert_pem).ok().and_then(|b| b.first().map(|b| certs::fingerprint(&b.der)));
        Ok(Box::new(MemoryLxd { ep: endpoint.clone(), cluster: self.0.clone(), client }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook_tools::Juju;

    // The agent is driven through `HookTools::run` directly: `Juju` itself cuts what it sends,
    // so only a raw call can show the limits the agent holds.
    #[test]
    fn an_argument_over_the_kernel_limit_fails_to_spawn_with_e2big() {
        let mut agent = Agent::leader();
        let long = "x".repeat(limits::ARG_MAX_BYTES + 1);
        let err = agent.run("juju-log", &["--log-level", "INFO", "--", &long], None).expect_err("E2BIG");
        let ToolError::Io { tool, source } = err else { panic!("not an I/O error: {err:?}") };
        assert_eq!(tool, "juju-log");
        assert_eq!(source.kind(), std::io::ErrorKind::ArgumentListTooLong);
        assert_eq!(agent.refused().count(), 1);
        assert!(agent.logs.is_empty(), "the tool never ran");
        agent.run("juju-log", &["--log-level", "INFO", "--", &long[1..]], None).expect("fits");
    }

    #[test]
    fn many_arguments_over_the_total_fail_too() {
        let mut agent = Agent::leader();
        agent.start_action(BTreeMap::new());
        let args: Vec<String> = (0..40).map(|i| format!("k{i}={}", "v".repeat(64 * 1024))).collect();
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = agent.run("action-set", &argv, None).expect_err("E2BIG");
        assert!(matches!(err, ToolError::Io { .. }), "{err:?}");
        assert!(agent.action.as_ref().is_some_and(|a| a.results.is_empty()));
    }

    #[test]
    fn the_charm_cuts_what_would_not_fit() {
        let mut agent = Agent::leader();
        Juju::new(&mut agent)
            .log(crate::hook_tools::LogLevel::Info, &"x".repeat(limits::ARG_MAX_BYTES + 1))
            .expect("cut to fit");
        assert_eq!(agent.refused().count(), 0);
    }

    #[test]
    fn a_databag_over_16_mib_is_refused_like_juju_does() {
        let mut agent = Agent::leader();
        agent.relate(3, "req");
        let big: Databag = [("a".to_string(), "x".repeat(limits::DATABAG_BYTES))].into();
        let err = Juju::new(&mut agent).relation_set(3, true, &big).expect_err("too big");
        assert_eq!(
            err.to_string(),
            format!(
                "hook tool relation-set failed (exit 1): ERROR cannot write relation settings for relation 3: settings exceed the {} byte limit",
                limits::DATABAG_BYTES
            )
        );
        assert!(agent.published(3, true).is_empty());
        let fits: Databag = [("a".to_string(), "x".repeat(limits::DATABAG_BYTES - 1))].into();
        Juju::new(&mut agent).relation_set(3, true, &fits).expect("fits");
    }

    #[test]
    fn unit_state_has_juju_limits() {
        let mut agent = Agent::leader();
        let key: BTreeMap<String, String> = [("k".repeat(limits::STATE_KEY_BYTES + 1), "v".into())].into();
        assert!(Juju::new(&mut agent).state_set(&key).is_err());
        let value: BTreeMap<String, String> = [("k".into(), "v".repeat(limits::STATE_VALUE_BYTES + 1))].into();
        assert!(Juju::new(&mut agent).state_set(&value).is_err());
        for i in 0..limits::UNIT_STATE_BYTES / limits::STATE_VALUE_BYTES {
            let one: BTreeMap<String, String> = [(format!("k{i}"), "v".repeat(limits::STATE_VALUE_BYTES - 8))].into();
            Juju::new(&mut agent).state_set(&one).expect("fits");
        }
        let over: BTreeMap<String, String> = [("last".into(), "v".repeat(limits::STATE_VALUE_BYTES))].into();
        assert!(Juju::new(&mut agent).state_set(&over).is_err());
        assert_eq!(agent.refused().count(), 3);
    }

    #[test]
    fn what_the_charm_sends_is_recorded_and_searchable() {
        let mut agent = Agent::leader();
        let mut juju = Juju::new(&mut agent);
        juju.status_set(&crate::status::Status { kind: crate::status::Kind::Active, message: "all good".into() })
            .expect("status");
        juju.log(crate::hook_tools::LogLevel::Warning, "needle in a log").expect("log");
        assert_eq!(agent.status, ("active".into(), "all good".into()));
        assert_eq!(agent.logs, ["needle in a log"]);
        assert_eq!(agent.calls_containing("needle").count(), 1);
        assert!(agent.bytes_sent() > "all good".len() + "needle in a log".len());
    }

    #[test]
    fn secrets_answer_like_a_consumer_unit() {
        let mut agent = Agent::leader();
        let uri = agent.add_secret("cn3q8gvmp25c7bt7nqkg", &[("client-key", "one")]);
        let get = |agent: &mut Agent, args: &[&str]| {
            let mut argv = vec![uri.as_str()];
            argv.extend(args);
            let out = agent.run("secret-get", &argv, None).expect("runs");
            (
                out.code,
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            )
        };
        assert_eq!(get(&mut agent, &["client-key"]).1, "\"one\"");
        agent.update_secret("cn3q8gvmp25c7bt7nqkg", &[("client-key", "two")]);
        assert_eq!(get(&mut agent, &["client-key"]).1, "\"one\"", "the tracked revision");
        assert_eq!(get(&mut agent, &["client-key", "--peek"]).1, "\"two\"");
        assert_eq!(get(&mut agent, &["--refresh"]).1, "{\"client-key\":\"two\"}");
        assert_eq!(get(&mut agent, &["nope"]), (1, String::new(), "ERROR secret key value \"nope\" not found".into()));
        agent.secrets.values_mut().for_each(|s| s.granted = false);
        assert_eq!(get(&mut agent, &[]).2, "ERROR permission denied");
        agent.secrets.clear();
        assert_eq!(get(&mut agent, &[]).2, format!("ERROR secret \"{uri}\" not found"));
        agent.missing.insert("secret-get".into());
        assert!(matches!(agent.run("secret-get", &[&uri], None), Err(ToolError::Missing(_))));
    }

    #[test]
    fn lxd_can_trust_the_client_by_its_certificate_in_the_store_and_counts_every_write() {
        let identity = crate::certs::test_certs::self_signed("integrator");
        let tls = TlsCredentials {
            client_cert_pem: identity.cert_pem.clone(),
            client_key_pem: "K".into(),
            server_cert_pem: "S".into(),
        };
        let mut cluster = Cluster::new(&["https://127.0.0.1:8443"]);
        cluster.trust_from_store = true;
        let cluster = cluster.shared();
        let ep = Endpoint::parse("https://127.0.0.1:8443").expect("url");
        let mut lxd = MemoryConnector(cluster.clone()).connect(&ep, &tls).expect("connects");
        assert!(!lxd.server().expect("answers").trusted, "not in the store yet");
        let entry = NewTrustEntry { name: "operator".into(), der: identity.der.clone(), projects: None };
        assert_eq!(lxd.add_trust(&entry).expect("added"), AddOutcome::Added);
        assert!(lxd.server().expect("answers").trusted);
        lxd.remove_trust(&certs::fingerprint(&identity.der)).expect("removed");
        assert!(!lxd.server().expect("answers").trusted);
        lock(&cluster).up.insert(ep.url(), false);
        assert!(lxd.restrict_trust("fp", None).is_err(), "down");
        assert_eq!(lock(&cluster).writes, 3, "the refused write counts too");
    }

    #[test]
    fn an_injected_answer_is_given_once_recorded_and_changes_nothing() {
        let mut agent = Agent::leader();
        agent.relate(3, "req");
        agent.answer_next("relation-set", failed(1, "connection refused"));
        let bag: Databag = [("a".to_string(), "b".to_string())].into();
        let err = Juju::new(&mut agent).relation_set(3, true, &bag).expect_err("injected");
        assert_eq!(err.to_string(), "hook tool relation-set failed (exit 1): ERROR connection refused");
        assert!(agent.published(3, true).is_empty(), "the model was not asked");
        Juju::new(&mut agent).relation_set(3, true, &bag).expect("the model answers again");
        assert_eq!(agent.published(3, true), bag);
        assert_eq!(agent.calls.len(), 2);
        agent.missing.insert("is-leader".into());
        assert!(matches!(agent.run("is-leader", &["--format=json"], None), Err(ToolError::Missing(_))));
    }

    #[test]
    fn a_fixed_answer_is_given_to_every_call_after_any_injected_one() {
        let mut agent = Agent::leader();
        agent.answer_always("is-leader", printed("false"));
        agent.answer_next("is-leader", printed("true"));
        let answers: Vec<bool> = (0..3).map(|_| Juju::new(&mut agent).is_leader().expect("answered")).collect();
        assert_eq!(answers, [true, false, false], "the injected answer first, then the fixed one");
        assert!(agent.leader, "the model was not asked");
        assert_eq!(agent.calls.len(), 3);
    }

    // jujusim, the process-level simulator, keeps its own copy of these: both agents must
    // refuse the same calls.
    #[test]
    fn the_agent_and_jujusim_hold_the_same_juju_limits() {
        assert_eq!(limits::DATABAG_BYTES, jujusim::model::MAX_DATABAG_BYTES);
        assert_eq!(limits::STATE_KEY_BYTES, jujusim::model::MAX_STATE_KEY_BYTES);
        assert_eq!(limits::STATE_VALUE_BYTES, jujusim::model::MAX_STATE_VALUE_BYTES);
    }

    #[test]
    fn the_cluster_keeps_lxd_s_trust_store_rules_for_every_front() {
        let a = crate::certs::test_certs::self_signed("a");
        let fp = certs::fingerprint(&a.der);
        let mut c = Cluster::new(&["https://127.0.0.1:8443"]);
        c.held_by_identities.insert(fp.clone());
        assert_eq!(c.add("a", &a.der, false, &[]), Ok(Added::HeldByIdentity));
        c.held_by_identities.clear();
        assert_eq!(c.add("a", &a.der, false, &[]), Ok(Added::Added));
        assert_eq!(c.add("again", &a.der, false, &[]), Ok(Added::InStore));
        assert_eq!(c.certificates.get(&fp), Some(&a.der), "kept with its entry");
        assert!(matches!(c.add("junk", b"not DER", false, &[]), Err(Refused::BadCertificate(_))));
        c.projects = Some(["default".to_string()].into());
        let elsewhere = Patch { restricted: Some(true), projects: Some(vec!["nope".into()]), ..Patch::default() };
        assert_eq!(c.patch(&fp, &elsewhere), Err(Refused::NoSuchProject));
        assert_eq!(c.patch(&"0".repeat(64), &Patch::default()), Err(Refused::NotFound));
        let may = |entitlement: &str| crate::cluster::Permission {
            entity_type: "server".into(),
            url: "/1.0".into(),
            entitlement: entitlement.into(),
        };
        c.identity = Some(Identity {
            kind: "Client certificate".into(),
            permissions: vec![may("can_edit_identities")],
            ..Identity::default()
        });
        assert_eq!(c.patch(&fp, &Patch { name: Some("b".into()), ..Patch::default() }), Ok(()));
        assert_eq!(c.store[0].name, "b");
        assert!(!c.store[0].restricted, "a patch changes only what it names");
        assert_eq!(c.remove(&fp), Err(Refused::Forbidden));
        c.identity = None;
        assert_eq!(c.remove(&fp), Ok(()));
        assert_eq!(c.remove(&fp), Err(Refused::NotFound));
        assert!(c.certificates.is_empty());
    }

    #[test]
    fn actions_get_their_params_and_keep_results() {
        let mut agent = Agent::leader();
        assert!(Juju::new(&mut agent).action_get().is_err(), "not running an action");
        agent.start_action([("dry-run".to_string(), serde_json::json!(true))].into());
        let mut juju = Juju::new(&mut agent);
        assert_eq!(juju.action_get().expect("params")["dry-run"], serde_json::json!(true));
        juju.action_set(&[("nodes.0.name".into(), "node1".into())]).expect("set");
        assert!(juju.action_set(&[("Bad_Key".into(), "x".into())]).is_err());
        juju.action_fail("nope").expect("fail");
        let action = agent.action.expect("action");
        assert_eq!(action.results["nodes.0.name"], "node1");
        assert_eq!(action.failed.as_deref(), Some("nope"));
    }
}
