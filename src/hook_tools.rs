//! Juju's hook tools: one trait (the boundary), the process-running implementation, and typed
//! calls in the argv shapes Juju documents. Every call is a process plus a round trip to the
//! unit agent, so callers make as few as they can.

use crate::bag_stream::{self, Sink};
use crate::limits;
use crate::relation::Databag;
use crate::status::Status;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};

mod stream;

/// What one hook tool answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ToolOutput {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The tool is not on PATH (an older Juju, or not running under Juju at all).
    #[error("hook tool {0} is not available")]
    Missing(String),
    #[error("hook tool {tool} failed (exit {code}): {stderr}")]
    Failed { tool: String, code: i32, stderr: String },
    #[error("hook tool {tool} answered something unexpected: {detail}")]
    Output { tool: String, detail: String },
    #[error("cannot run hook tool {tool}: {source}")]
    Io { tool: String, source: std::io::Error },
}

/// One read-only hook-tool call (no stdin), for `HookTools::run_reads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub(crate) tool: &'static str,
    pub(crate) args: Vec<String>,
}

impl Read {
    fn new(tool: &'static str, args: &[&str]) -> Read {
        Read { tool, args: args.iter().map(|a| a.to_string()).collect() }
    }

    /// The arguments as `HookTools::run` takes them.
    pub(crate) fn argv(&self) -> Vec<&str> {
        self.args.iter().map(String::as_str).collect()
    }
}

pub trait HookTools {
    /// Runs `tool args...`, feeding `stdin` if given. A non-zero exit is an `Ok` with that code.
    fn run(&mut self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError>;

    /// Runs reads that do not depend on each other; answers come in the order asked. The unit
    /// agent runs one command at a time whatever the caller does, so doing them at once only
    /// overlaps the tools' process start-up, which is most of their cost. Writes never go
    /// through here: their order is part of what they mean.
    fn run_reads(&mut self, reads: &[Read]) -> Vec<Result<ToolOutput, ToolError>> {
        reads.iter().map(|r| self.run(r.tool, &r.argv(), None)).collect()
    }

    /// Runs reads as `run_reads` does, but hands each one's stdout to `each` as it arrives
    /// instead of collecting it: what `each` keeps is all that stays of the answer. Answers come
    /// in the order asked: `Ok` once `each` took the output of a tool that exited 0; a tool that
    /// failed is its error, whatever `each` made of its output (then ignore what it kept). This
    /// one takes whole answers from `run`, one at a time: an in-process agent holds them anyway.
    fn stream_reads(&mut self, reads: &[Read], each: &StreamFn) -> Vec<Result<(), ToolError>> {
        let mut answer = |i: usize, r: &Read| -> Result<(), ToolError> {
            let stdout = checked(r.tool, self.run(r.tool, &r.argv(), None)?)?;
            each(i, &mut stdout.as_slice())
        };
        reads.iter().enumerate().map(|(i, r)| answer(i, r)).collect()
    }
}

/// Takes one read's stdout as it arrives (`HookTools::stream_reads`): the read's index, and the
/// stream. Called from several threads at once, never twice for one read.
pub(crate) type StreamFn<'a> = dyn Fn(usize, &mut dyn BufRead) -> Result<(), ToolError> + Sync + 'a;

/// At most this many hook tools run at once: enough to hide process start-up, few enough not
/// to flood the agent (or a small machine) when a relation has hundreds of units.
const MAX_PARALLEL_READS: usize = 8;

/// Runs the real tools from PATH, as Juju provides them.
#[derive(Debug, Default)]
pub(crate) struct ProcessTools;

fn spawn_error(tool: &str, e: std::io::Error) -> ToolError {
    match e.kind() {
        std::io::ErrorKind::NotFound => ToolError::Missing(tool.to_string()),
        _ => ToolError::Io { tool: tool.to_string(), source: e },
    }
}

/// Starts one read; its answer is taken with `finish_read`.
fn spawn_read(read: &Read) -> Result<std::process::Child, ToolError> {
    crate::timeline::mark(read.tool);
    let mut cmd = Command::new(read.tool);
    cmd.args(&read.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().map_err(|e| spawn_error(read.tool, e))
}

fn finish_read(tool: &str, child: std::process::Child) -> Result<ToolOutput, ToolError> {
    // Both pipes at once (`wait_with_output` polls them), so neither can fill and stall the tool.
    let out = child.wait_with_output().map_err(|e| ToolError::Io { tool: tool.to_string(), source: e })?;
    crate::timeline::mark_of(tool, "done");
    Ok(ToolOutput { code: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: out.stderr })
}

fn run_process(tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError> {
    crate::timeline::mark(tool);
    let mut cmd = Command::new(tool);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().map_err(|e| spawn_error(tool, e))?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).map_err(|e| ToolError::Io { tool: tool.to_string(), source: e })?;
    }
    let out = child.wait_with_output().map_err(|e| ToolError::Io { tool: tool.to_string(), source: e })?;
    crate::timeline::mark_of(tool, "done");
    Ok(ToolOutput { code: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: out.stderr })
}

impl HookTools for ProcessTools {
    fn run(&mut self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError> {
        run_process(tool, args, stdin)
    }

    /// The tools are started from this thread, up to `MAX_PARALLEL_READS` at once, and their
    /// answers taken in order: they run at once as processes, and no thread waits for them
    /// (threads cost more than the few reads a hook makes). A tool whose answer outgrows its
    /// pipe waits for its turn; it holds nothing an earlier one waits for (see `stream`).
    fn run_reads(&mut self, reads: &[Read]) -> Vec<Result<ToolOutput, ToolError>> {
        let mut started = std::collections::VecDeque::new();
        let mut rest = reads.iter();
        let mut out = Vec::with_capacity(reads.len());
        loop {
            while started.len() < MAX_PARALLEL_READS
                && let Some(read) = rest.next()
            {
                started.push_back((read.tool, spawn_read(read)));
            }
            let Some((tool, child)) = started.pop_front() else { return out };
            out.push(child.and_then(|child| finish_read(tool, child)));
        }
    }

    /// Up to `MAX_PARALLEL_READS` tools at once, and at most about `stream::BYTES_IN_FLIGHT` of
    /// their output read and not yet done with: a read that would pass it waits (its tool
    /// blocks on a full pipe) until earlier reads are done.
    fn stream_reads(&mut self, reads: &[Read], each: &StreamFn) -> Vec<Result<(), ToolError>> {
        let budget = stream::Budget::new(stream::BYTES_IN_FLIGHT);
        let order: Vec<usize> = (0..reads.len()).collect();
        crate::parallel::map_bounded(&order, MAX_PARALLEL_READS, |&i| stream::run(i, &reads[i], &budget, each))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warning => "WARNING",
            LogLevel::Error => "ERROR",
        }
    }
}

pub(crate) use crate::credentials::SecretContent;
pub use crate::credentials::{CredentialAnswer, SecretAnswer};

/// What a pass reads before it can connect to LXD.
#[derive(Debug)]
pub struct ConnectionInputs {
    pub(crate) credentials: CredentialAnswer,
    pub(crate) config: BTreeMap<String, serde_json::Value>,
    /// The state cache: known member endpoints (for failover), whether this unit is leaving.
    pub(crate) state: BTreeMap<String, String>,
}

/// What a pass reads, while LXD answers, to find the relations and who may write.
#[derive(Debug)]
pub struct RelationInputs {
    pub leader: bool,
    /// The relation ids of each endpoint asked for, in the order asked.
    pub relation_ids: Vec<Vec<u32>>,
}

/// The argv of each read, in the shapes Juju documents.
mod reads {
    use super::Read;

    pub(crate) fn credential_get() -> Read {
        Read::new("credential-get", &["--format=json"])
    }
    pub(crate) fn config_get() -> Read {
        Read::new("config-get", &["--format=json"])
    }
    pub(crate) fn is_leader() -> Read {
        Read::new("is-leader", &["--format=json"])
    }
    pub(crate) fn state_get() -> Read {
        Read::new("state-get", &["--format=json"])
    }
    /// `secret-get <uri> --format=json [--refresh]`: every key of the revision this unit
    /// tracks, or with `--refresh` of the latest revision, which it tracks from then on
    /// (juju/juju `internal/worker/uniter/runner/jujuc/secret-get.go`).
    pub(crate) fn secret_get(uri: &str, refresh: bool) -> Read {
        let mut args = vec![uri, "--format=json"];
        if refresh {
            args.push("--refresh");
        }
        Read::new("secret-get", &args)
    }
    pub(crate) fn relation_ids(endpoint: &str) -> Read {
        Read::new("relation-ids", &[endpoint, "--format=json"])
    }
    pub(crate) fn relation_list(rel: u32) -> Read {
        Read::new("relation-list", &["-r", &rel.to_string(), "--format=json"])
    }
    pub(crate) fn relation_get(rel: u32, member: &str, app: bool) -> Read {
        let r = rel.to_string();
        let mut args = vec!["-r", r.as_str(), "--format=json"];
        if app {
            args.push("--app");
        }
        args.extend(["-", member]);
        Read::new("relation-get", &args)
    }
}

/// What each read's answer means.
mod decode {
    use super::{CredentialAnswer, SecretAnswer, SecretContent, ToolError, ToolOutput, checked, parse_relation_id};
    use std::collections::BTreeMap;

    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        tool: &str,
        out: Result<ToolOutput, ToolError>,
    ) -> Result<T, ToolError> {
        let stdout = checked(tool, out?)?;
        serde_json::from_slice(&stdout).map_err(|e| ToolError::Output { tool: tool.to_string(), detail: e.to_string() })
    }

    pub(crate) fn credentials(out: Result<ToolOutput, ToolError>) -> Result<CredentialAnswer, ToolError> {
        let out = match out {
            Err(ToolError::Missing(_)) => return Ok(CredentialAnswer::Unsupported),
            other => other?,
        };
        if out.code != 0 {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("permission denied") {
                return Ok(CredentialAnswer::NotTrusted);
            }
            return Err(ToolError::Failed {
                tool: "credential-get".into(),
                code: out.code,
                stderr: stderr.trim().to_string(),
            });
        }
        serde_json::from_slice(&out.stdout)
            .map(CredentialAnswer::Granted)
            .map_err(|e| ToolError::Output { tool: "credential-get".into(), detail: e.to_string() })
    }

    /// `secret-get`: the content, or why there is none that the operator can fix. Nothing it
    /// printed is ever quoted in an error: it may hold the key.
    pub(crate) fn secret(out: Result<ToolOutput, ToolError>) -> Result<SecretAnswer, ToolError> {
        let out = match out {
            Err(ToolError::Missing(_)) => return Ok(SecretAnswer::Unsupported),
            other => other?,
        };
        if out.code != 0 {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("permission denied") {
                return Ok(SecretAnswer::NotGranted);
            }
            if stderr.contains(" not found") {
                return Ok(SecretAnswer::NotFound);
            }
            return Err(ToolError::Failed {
                tool: "secret-get".into(),
                code: out.code,
                stderr: stderr.trim().to_string(),
            });
        }
        let unexpected =
            || ToolError::Output { tool: "secret-get".into(), detail: "not a JSON object of strings".into() };
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|_| unexpected())?;
        let serde_json::Value::Object(map) = value else { return Err(unexpected()) };
        let mut content = BTreeMap::new();
        for (k, v) in map {
            let serde_json::Value::String(v) = v else { return Err(unexpected()) };
            content.insert(k, v);
        }
        Ok(SecretAnswer::Content(SecretContent(content)))
    }

    /// A JSON object (or null) from `tool`.
    fn object(
        tool: &str,
        out: Result<ToolOutput, ToolError>,
    ) -> Result<BTreeMap<String, serde_json::Value>, ToolError> {
        let v: Option<BTreeMap<String, serde_json::Value>> = json(tool, out)?;
        Ok(v.unwrap_or_default())
    }

    pub(crate) fn config(out: Result<ToolOutput, ToolError>) -> Result<BTreeMap<String, serde_json::Value>, ToolError> {
        object("config-get", out)
    }

    pub(crate) fn action_params(
        out: Result<ToolOutput, ToolError>,
    ) -> Result<BTreeMap<String, serde_json::Value>, ToolError> {
        object("action-get", out)
    }

    pub(crate) fn leader(out: Result<ToolOutput, ToolError>) -> Result<bool, ToolError> {
        json("is-leader", out)
    }

    pub(crate) fn state(out: Result<ToolOutput, ToolError>) -> Result<BTreeMap<String, String>, ToolError> {
        let v: Option<BTreeMap<String, serde_json::Value>> = json("state-get", out)?;
        Ok(v.unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect())
    }

    pub(crate) fn relation_ids(out: Result<ToolOutput, ToolError>) -> Result<Vec<u32>, ToolError> {
        let ids: Option<Vec<String>> = json("relation-ids", out)?;
        Ok(ids.unwrap_or_default().iter().filter_map(|id| parse_relation_id(id)).collect())
    }

    pub(crate) fn units(out: Result<ToolOutput, ToolError>) -> Result<Vec<String>, ToolError> {
        let units: Option<Vec<String>> = json("relation-list", out)?;
        Ok(units.unwrap_or_default())
    }
}

/// `run_reads` answers every read; this only stands in if an implementation did not.
fn missing_answer() -> ToolError {
    ToolError::Output { tool: "hook tools".into(), detail: "no answer to a read".into() }
}

/// A tool's stdout, or its failure as an error.
fn checked(tool: &str, out: ToolOutput) -> Result<Vec<u8>, ToolError> {
    if out.code != 0 {
        return Err(ToolError::Failed {
            tool: tool.to_string(),
            code: out.code,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// Typed hook-tool calls over any `HookTools`.
pub struct Juju<'a> {
    tools: &'a mut dyn HookTools,
}

impl<'a> Juju<'a> {
    pub fn new(tools: &'a mut dyn HookTools) -> Self {
        Juju { tools }
    }

    fn call(&mut self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<Vec<u8>, ToolError> {
        checked(tool, self.tools.run(tool, args, stdin)?)
    }

    fn read<T>(
        &mut self,
        read: Read,
        decode: fn(Result<ToolOutput, ToolError>) -> Result<T, ToolError>,
    ) -> Result<T, ToolError> {
        decode(self.tools.run(read.tool, &read.argv(), None))
    }

    /// Runs `reads` at once and decodes every answer with `decode`.
    fn read_all<T>(
        &mut self,
        reads: &[Read],
        decode: fn(Result<ToolOutput, ToolError>) -> Result<T, ToolError>,
    ) -> Result<Vec<T>, ToolError> {
        self.tools.run_reads(reads).into_iter().map(decode).collect()
    }

    pub fn credential_get(&mut self) -> Result<CredentialAnswer, ToolError> {
        self.read(reads::credential_get(), decode::credentials)
    }

    /// Set options only (unset options without default are omitted by Juju).
    pub fn config_get(&mut self) -> Result<BTreeMap<String, serde_json::Value>, ToolError> {
        self.read(reads::config_get(), decode::config)
    }

    pub fn is_leader(&mut self) -> Result<bool, ToolError> {
        self.read(reads::is_leader(), decode::leader)
    }

    /// `["api:0", "api:3"]` → `[0, 3]`.
    pub fn relation_ids(&mut self, endpoint: &str) -> Result<Vec<u32>, ToolError> {
        self.read(reads::relation_ids(endpoint), decode::relation_ids)
    }

    pub fn relation_list(&mut self, rel: u32) -> Result<Vec<String>, ToolError> {
        self.read(reads::relation_list(rel), decode::units)
    }

    pub fn relation_list_app(&mut self, rel: u32) -> Result<Option<String>, ToolError> {
        let r = rel.to_string();
        let app: Option<String> = self
            .read(Read::new("relation-list", &["-r", &r, "--app", "--format=json"]), |out| {
                decode::json("relation-list", out)
            })?;
        Ok(app.filter(|a| !a.is_empty()))
    }

    /// The whole databag of `member` (a unit or, with `app`, an application).
    pub fn relation_get(&mut self, rel: u32, member: &str, app: bool) -> Result<Databag, ToolError> {
        let mut bags = self.relation_gets(&[(rel, member.to_string(), app)])?;
        bags.pop().ok_or_else(missing_answer)
    }

    /// The user secret at `uri` (`--refresh`: its latest revision, tracked from now on).
    pub fn secret_get(&mut self, uri: &str, refresh: bool) -> Result<SecretAnswer, ToolError> {
        self.read(reads::secret_get(uri, refresh), decode::secret)
    }

    /// Whether Juju is removing `unit`: `goal-state` (Juju >= 2.4) shows a unit whose life is
    /// dying as `dying`. Without `goal-state`, nothing is known: false.
    pub(crate) fn unit_dying(&mut self, unit: &str) -> Result<bool, ToolError> {
        #[derive(serde::Deserialize)]
        struct GoalState {
            #[serde(default)]
            units: Option<BTreeMap<String, UnitGoal>>,
        }
        #[derive(serde::Deserialize)]
        struct UnitGoal {
            #[serde(default)]
            status: String,
        }
        let out = match self.tools.run("goal-state", &["--format=json"], None) {
            Err(ToolError::Missing(_)) => return Ok(false),
            other => other,
        };
        let goal: Option<GoalState> = decode::json("goal-state", out)?;
        Ok(goal.and_then(|g| g.units).and_then(|mut units| units.remove(unit)).is_some_and(|u| u.status == "dying"))
    }

    /// Credentials, config and the state cache, read at once.
    pub fn connection_inputs(&mut self) -> Result<ConnectionInputs, ToolError> {
        let reads = [reads::credential_get(), reads::config_get(), reads::state_get()];
        let mut answers = self.tools.run_reads(&reads).into_iter();
        let mut next = || answers.next().unwrap_or_else(|| Err(missing_answer()));
        Ok(ConnectionInputs {
            credentials: decode::credentials(next())?,
            config: decode::config(next())?,
            state: decode::state(next())?,
        })
    }

    /// Leadership and the ids of each endpoint's relations, read at once.
    pub fn relation_inputs(&mut self, endpoints: &[&str]) -> Result<RelationInputs, ToolError> {
        let reads: Vec<Read> =
            std::iter::once(reads::is_leader()).chain(endpoints.iter().map(|e| reads::relation_ids(e))).collect();
        let mut answers = self.tools.run_reads(&reads).into_iter();
        let mut next = || answers.next().unwrap_or_else(|| Err(missing_answer()));
        let leader = decode::leader(next())?;
        let relation_ids = endpoints.iter().map(|_| decode::relation_ids(next())).collect::<Result<_, _>>()?;
        Ok(RelationInputs { leader, relation_ids })
    }

    /// The remote units of each relation in `rels`, read at once.
    pub(crate) fn relation_lists(&mut self, rels: &[u32]) -> Result<Vec<Vec<String>>, ToolError> {
        let reads: Vec<Read> = rels.iter().map(|r| reads::relation_list(*r)).collect();
        self.read_all(&reads, decode::units)
    }

    /// The databags of `(relation, member, is-app)`, read at once, each whole.
    pub fn relation_gets(&mut self, bags: &[(u32, String, bool)]) -> Result<Vec<Databag>, ToolError> {
        self.relation_gets_into(bags, vec![Databag::new(); bags.len()], usize::MAX)
    }

    /// The databags of `(relation, member, is-app)`, read at once, each one's keys handed to its
    /// sink (`sinks[i]` for `bags[i]`) as they arrive, values over `bound` by their length
    /// alone: no databag is ever held whole, and what the sinks keep is all that stays of it.
    /// Any read failing fails them all (the first in order is the error).
    pub(crate) fn relation_gets_into<S: Sink + Send>(
        &mut self,
        bags: &[(u32, String, bool)],
        sinks: Vec<S>,
        bound: usize,
    ) -> Result<Vec<S>, ToolError> {
        let reads: Vec<Read> = bags.iter().map(|(rel, member, app)| reads::relation_get(*rel, member, *app)).collect();
        let slots: Vec<Mutex<S>> = sinks.into_iter().map(Mutex::new).collect();
        let each = |i: usize, input: &mut dyn BufRead| -> Result<(), ToolError> {
            let slot = slots.get(i).ok_or_else(missing_answer)?;
            let mut sink = slot.lock().unwrap_or_else(PoisonError::into_inner);
            bag_stream::read(input, bound, &mut *sink)
                .map_err(|e| ToolError::Output { tool: "relation-get".into(), detail: e.to_string() })
        };
        let answers = self.tools.stream_reads(&reads, &each);
        if answers.len() != reads.len() {
            return Err(missing_answer());
        }
        answers.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(slots.into_iter().map(|s| s.into_inner().unwrap_or_else(PoisonError::into_inner)).collect())
    }

    /// Writes `pairs` in one call through `--file -`, so values may hold anything (newlines,
    /// `=`) and nothing secret lands on a command line. An empty value deletes the key.
    pub(crate) fn relation_set(&mut self, rel: u32, app: bool, pairs: &Databag) -> Result<(), ToolError> {
        let r = rel.to_string();
        let mut args = vec!["-r", r.as_str()];
        if app {
            args.push("--app");
        }
        args.extend(["--file", "-"]);
        let body = serde_json::to_vec(pairs)
            .map_err(|e| ToolError::Output { tool: "relation-set".into(), detail: e.to_string() })?;
        self.call("relation-set", &args, Some(&body)).map(drop)
    }

    /// The unit's workload status; the message is cut to `limits::STATUS_CHARS`.
    pub(crate) fn status_set(&mut self, status: &Status) -> Result<(), ToolError> {
        let message: String = status.message.chars().take(limits::STATUS_CHARS).collect();
        self.call("status-set", &[status.kind.as_str(), "--", &message], None).map(drop)
    }

    /// One `juju-log` call, its message cut to `limits::LOG_MESSAGE_BYTES`: a log line is an
    /// argv entry, and Linux refuses one over 128 KiB, failing the hook.
    pub(crate) fn log(&mut self, level: LogLevel, message: &str) -> Result<(), ToolError> {
        let message = limits::cut(message, limits::LOG_MESSAGE_BYTES);
        self.call("juju-log", &["--log-level", level.as_str(), "--", &message], None).map(drop)
    }

    /// Logs `lines` in as few calls as fit `limits::LOG_MESSAGE_BYTES` each, at most
    /// `limits::LOG_CALLS_PER_LIST` calls; lines past that are counted in the last call.
    pub(crate) fn log_lines(&mut self, level: LogLevel, lines: &[String]) -> Result<(), ToolError> {
        for message in pack_lines(lines, limits::LOG_MESSAGE_BYTES, limits::LOG_CALLS_PER_LIST) {
            self.log(level, &message)?;
        }
        Ok(())
    }

    pub fn state_get(&mut self) -> Result<BTreeMap<String, String>, ToolError> {
        self.read(reads::state_get(), decode::state)
    }

    pub(crate) fn state_set(&mut self, pairs: &BTreeMap<String, String>) -> Result<(), ToolError> {
        let body = serde_json::to_vec(pairs)
            .map_err(|e| ToolError::Output { tool: "state-set".into(), detail: e.to_string() })?;
        self.call("state-set", &["--file", "-"], Some(&body)).map(drop)
    }

    pub(crate) fn application_version_set(&mut self, version: &str) -> Result<(), ToolError> {
        self.call("application-version-set", &[version], None).map(drop)
    }

    pub fn action_get(&mut self) -> Result<BTreeMap<String, serde_json::Value>, ToolError> {
        self.read(Read::new("action-get", &["--format=json"]), decode::action_params)
    }

    /// `pairs` are `key=value` with keys already valid for Juju (lowercase, digits, `-`, `.`).
    /// Every value is cut to `limits::ACTION_VALUE_BYTES` and the results end, counted under
    /// `results-not-shown`, once they would pass `limits::ACTION_RESULTS_BYTES`: they are one argv.
    pub(crate) fn action_set(&mut self, pairs: &[(String, String)]) -> Result<(), ToolError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut args: Vec<String> = Vec::new();
        let mut total = 0;
        for (i, (k, v)) in pairs.iter().enumerate() {
            let arg = format!("{k}={}", limits::cut(v, limits::ACTION_VALUE_BYTES));
            if total + arg.len() > limits::ACTION_RESULTS_BYTES {
                args.push(format!("results-not-shown={}", pairs.len() - i));
                break;
            }
            total += arg.len();
            args.push(arg);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.call("action-set", &refs, None).map(drop)
    }

    pub(crate) fn action_fail(&mut self, message: &str) -> Result<(), ToolError> {
        self.call("action-fail", &[message], None).map(drop)
    }
}

/// Joins `lines` into messages of at most `max_bytes` (a longer line is cut), at most `calls`
/// of them; what does not fit is counted at the end of the last one.
fn pack_lines(lines: &[String], max_bytes: usize, calls: usize) -> Vec<String> {
    const MORE: usize = 48;
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, line) in lines.iter().enumerate() {
        let line = limits::cut(line, max_bytes - MORE);
        let fits = current.is_empty() || current.len() + 1 + line.len() <= max_bytes - MORE;
        if !fits {
            if out.len() + 1 == calls {
                current.push_str(&format!("\n… and {} more lines not logged", lines.len() - i));
                break;
            }
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `api:3` or `3` → 3 (Juju uses the number after the last `:`).
pub fn parse_relation_id(id: &str) -> Option<u32> {
    let n = id.rsplit(':').next()?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Agent, failed, printed};

    #[test]
    fn goal_state_tells_a_unit_being_removed() {
        let mut agent = Agent::leader();
        assert!(!Juju::new(&mut agent).unit_dying("lxd-integrator/0").expect("read"));
        agent.dying = true;
        assert!(Juju::new(&mut agent).unit_dying("lxd-integrator/0").expect("read"));
        // The agent shows its own unit only; Juju also lists its peers, alive or not.
        let goal = r#"{"units":{"lxd-integrator/0":{"status":"dying","since":"2026-01-01 00:00:00Z"},"lxd-integrator/1":{"status":"active"}},"relations":{}}"#;
        for (unit, dying) in [("lxd-integrator/0", true), ("lxd-integrator/1", false), ("lxd-integrator/2", false)] {
            agent.answer_next("goal-state", printed(goal));
            assert_eq!(Juju::new(&mut agent).unit_dying(unit).expect("read"), dying, "{unit}");
        }
        agent.answer_next("goal-state", failed(1, "connection refused"));
        assert!(
            Juju::new(&mut agent).unit_dying("lxd-integrator/0").is_err(),
            "a failing agent fails the hook, which Juju retries"
        );
        agent.missing.insert("goal-state".into());
        assert!(!Juju::new(&mut agent).unit_dying("lxd-integrator/0").expect("no goal-state: nothing known"));
    }

    #[test]
    fn relation_ids_accept_both_forms() {
        assert_eq!(parse_relation_id("api:3"), Some(3));
        assert_eq!(parse_relation_id("12"), Some(12));
        assert_eq!(parse_relation_id("api:x"), None);
        assert_eq!(parse_relation_id("api:+3"), None);
    }

    #[test]
    fn credential_get_distinguishes_untrusted_missing_and_granted() {
        let mut untrusted = Agent::default();
        assert!(matches!(Juju::new(&mut untrusted).credential_get(), Ok(CredentialAnswer::NotTrusted)));
        let mut trusted = Agent::leader();
        assert!(matches!(Juju::new(&mut trusted).credential_get(), Ok(CredentialAnswer::Granted(_))));
        trusted.answer_next("credential-get", failed(1, "connection refused"));
        assert!(matches!(Juju::new(&mut trusted).credential_get(), Err(ToolError::Failed { .. })));
        trusted.missing.insert("credential-get".into());
        assert!(matches!(Juju::new(&mut trusted).credential_get(), Ok(CredentialAnswer::Unsupported)));
    }

    #[test]
    fn secret_get_tells_content_from_what_the_operator_must_fix() {
        let id = "cn3q8gvmp25c7bt7nqkg";
        let mut agent = Agent::leader();
        let uri = agent.add_secret(id, &[("client-key", "KEY"), ("endpoint", "https://x")]);
        let got = Juju::new(&mut agent).secret_get(&uri, true);
        let Ok(SecretAnswer::Content(content)) = got else { panic!("{got:?}") };
        assert_eq!(content.0["client-key"], "KEY");
        assert_eq!(format!("{content:?}"), "{\"client-key\", \"endpoint\"}", "Debug names keys only");
        assert_eq!(agent.calls[0].args, [uri.as_str(), "--format=json", "--refresh"]);
        agent.secrets.values_mut().for_each(|s| s.granted = false);
        assert_eq!(Juju::new(&mut agent).secret_get(&uri, true).ok(), Some(SecretAnswer::NotGranted));
        agent.secrets.clear();
        assert_eq!(Juju::new(&mut agent).secret_get(&uri, true).ok(), Some(SecretAnswer::NotFound));
        agent.answer_next("secret-get", failed(1, "connection is shut down"));
        assert!(matches!(Juju::new(&mut agent).secret_get(&uri, true), Err(ToolError::Failed { .. })));
        // Output that is not a map of strings is refused without quoting it.
        agent.answer_next("secret-get", printed("{\"client-key\": 42, \"x\": \"KEY-MATERIAL\"}"));
        let Err(err) = Juju::new(&mut agent).secret_get(&uri, true) else { panic!("accepted") };
        assert!(!err.to_string().contains("KEY-MATERIAL") && !err.to_string().contains("42"), "{err}");
        agent.missing.insert("secret-get".into());
        assert_eq!(
            Juju::new(&mut agent).secret_get(&uri, true).ok(),
            Some(SecretAnswer::Unsupported),
            "no secret-get before Juju 3.0"
        );
    }

    #[test]
    fn relation_set_sends_values_on_stdin_not_argv() {
        let mut agent = Agent::leader();
        agent.relate(4, "req");
        let bag: Databag = [("nodes".to_string(), "[{\"a\":\"b=c\"}]".to_string())].into();
        Juju::new(&mut agent).relation_set(4, true, &bag).expect("set");
        let call = &agent.calls[0];
        assert_eq!(call.tool, "relation-set");
        assert_eq!(call.args, ["-r", "4", "--app", "--file", "-"]);
        assert_eq!(call.stdin.as_deref(), Some(&b"{\"nodes\":\"[{\\\"a\\\":\\\"b=c\\\"}]\"}"[..]));
        assert_eq!(agent.published(4, true), bag);
    }

    #[test]
    fn a_failing_action_get_is_named_as_itself() {
        let mut agent = Agent::leader();
        let err = Juju::new(&mut agent).action_get().expect_err("not running an action");
        assert_eq!(err.to_string(), "hook tool action-get failed (exit 1): ERROR not running an action");
    }

    #[test]
    fn long_lists_are_logged_in_a_few_bounded_calls() {
        let lines: Vec<String> = (0..100_000).map(|i| format!("problem number {i}")).collect();
        let packed = pack_lines(&lines, limits::LOG_MESSAGE_BYTES, limits::LOG_CALLS_PER_LIST);
        assert_eq!(packed.len(), limits::LOG_CALLS_PER_LIST);
        assert!(packed.iter().all(|m| m.len() <= limits::LOG_MESSAGE_BYTES));
        assert!(packed[3].ends_with("more lines not logged"), "{}", &packed[3][packed[3].len() - 60..]);
        let one_huge = vec!["x".repeat(1 << 20)];
        let packed = pack_lines(&one_huge, limits::LOG_MESSAGE_BYTES, limits::LOG_CALLS_PER_LIST);
        assert_eq!(packed.len(), 1);
        assert!(packed[0].len() <= limits::LOG_MESSAGE_BYTES);
        assert_eq!(pack_lines(&["a".into(), "b".into()], 100, 4), ["a\nb"]);
    }

    #[test]
    fn action_results_are_bounded_whatever_they_list() {
        let mut agent = Agent::leader();
        agent.start_action(BTreeMap::new());
        let pairs: Vec<(String, String)> = (0..10_000).map(|i| (format!("k.{i}"), "v".repeat(100))).collect();
        let mut pairs = pairs;
        pairs.insert(0, ("huge".into(), "y".repeat(1 << 20)));
        Juju::new(&mut agent).action_set(&pairs).expect("set");
        let args = &agent.calls[0].args;
        assert!(args.iter().all(|a| a.len() <= limits::ACTION_VALUE_BYTES + 8));
        assert!(args.iter().map(String::len).sum::<usize>() <= limits::ACTION_RESULTS_BYTES + 64);
        assert!(args.last().is_some_and(|a| a.starts_with("results-not-shown=")), "{:?}", args.last());
    }

    #[test]
    fn a_failing_tool_is_an_error_with_its_message() {
        let mut agent = Agent::leader();
        agent.answer_next("is-leader", failed(1, "boom"));
        let err = Juju::new(&mut agent).is_leader().expect_err("fails");
        assert_eq!(err.to_string(), "hook tool is-leader failed (exit 1): ERROR boom");
    }
}

#[cfg(test)]
mod process_tests {
    use super::*;

    #[test]
    fn parallel_reads_answer_in_the_order_asked() {
        let reads: Vec<Read> = (0..20).map(|i| Read { tool: "echo", args: vec![i.to_string()] }).collect();
        let answers = ProcessTools.run_reads(&reads);
        let got: Vec<String> = answers
            .into_iter()
            .map(|a| String::from_utf8_lossy(&a.expect("echo runs").stdout).trim().to_string())
            .collect();
        let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_missing_tool_fails_only_its_own_read() {
        let reads = [Read { tool: "echo", args: vec!["a".into()] }, Read { tool: "no-such-hook-tool", args: vec![] }];
        let answers = ProcessTools.run_reads(&reads);
        assert!(matches!(answers[0], Ok(ToolOutput { code: 0, .. })));
        assert!(matches!(answers[1], Err(ToolError::Missing(_))));
    }
}
