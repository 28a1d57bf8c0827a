//! What the simulator records of every hook, action, tool call and log line.

use anyhow::bail;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{self, HookContext};
use crate::tools::{LogLine, ToolCall};

use super::process::ProcOutcome;
use super::{RelationId, Sim};

/// One hook (or action) run, as recorded in `records/hooks.jsonl`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct HookRecord {
    pub unit: String,
    /// Full hook name (`api-relation-changed`), or the action name for actions.
    pub hook: String,
    /// `hook` or `action`.
    pub kind: String,
    pub context_id: String,
    pub relation_id: Option<RelationId>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
    /// False when the charm has no file for this hook (skipped silently, like Juju).
    pub ran: bool,
    pub exit_code: i32,
    pub duration_ms: f64,
    pub stdout: String,
    pub stderr: String,
    /// Why the hook counts as failed besides its exit code (exec failure, commit failure).
    pub error: Option<String>,
}

impl HookRecord {
    /// The record of a hook or action (`kind`) that ran in `ctx`.
    pub(super) fn of(kind: &str, ctx: &HookContext, outcome: &ProcOutcome, error: Option<String>) -> HookRecord {
        HookRecord {
            unit: ctx.unit.clone(),
            hook: ctx.hook_name.clone(),
            kind: kind.into(),
            context_id: ctx.id.clone(),
            relation_id: ctx.relation_id,
            remote_unit: ctx.remote_unit.clone(),
            remote_app: ctx.remote_app.clone(),
            departing_unit: ctx.departing_unit.clone(),
            ran: outcome.ran,
            exit_code: outcome.exit_code,
            duration_ms: outcome.duration.as_secs_f64() * 1000.0,
            stdout: outcome.stdout.clone(),
            stderr: outcome.stderr.clone(),
            error,
        }
    }

    /// True if the hook failed (non-zero exit, could not run, or its changes failed to commit).
    pub fn failed(&self) -> bool {
        self.exit_code != 0 || self.error.is_some()
    }
}

/// The outcome of `Sim::run_action`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ActionResult {
    pub id: String,
    pub unit: String,
    pub name: String,
    /// `completed` or `failed`.
    pub status: String,
    /// What the action set with `action-set` (nested maps of strings); from a Juju 2.9 agent
    /// also `Code`, `Stdout`, `Stderr`, which 2.9 adds to every action's results.
    pub results: Value,
    /// `action-fail`'s message, or `exit status N`.
    pub message: Option<String>,
    /// `action-log` lines.
    pub logs: Vec<String>,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Sim {
    /// Every hook and action run so far, in order.
    pub fn hooks(&self) -> anyhow::Result<Vec<HookRecord>> {
        model::read_records(&self.paths.hook_records())
    }
    /// The hooks that failed (failed actions are in `actions()`; they do not error the unit).
    pub fn failed_hooks(&self) -> anyhow::Result<Vec<HookRecord>> {
        Ok(self.hooks()?.into_iter().filter(|h| h.kind == "hook" && h.failed()).collect())
    }
    /// Errors unless every hook so far exited 0 (the message lists the failures).
    pub fn assert_no_failed_hooks(&self) -> anyhow::Result<()> {
        let failed = self.failed_hooks()?;
        if failed.is_empty() {
            return Ok(());
        }
        let mut msg = format!("{} hook(s) failed:\n", failed.len());
        for h in failed {
            msg.push_str(&format!(
                "--- {} {} exit {} {}\nstdout:\n{}\nstderr:\n{}\n",
                h.unit,
                h.hook,
                h.exit_code,
                h.error.unwrap_or_default(),
                h.stdout,
                h.stderr
            ));
        }
        bail!(msg)
    }
    /// Every hook-tool call so far.
    pub fn tool_calls(&self) -> anyhow::Result<Vec<ToolCall>> {
        model::read_records(&self.paths.tool_records())
    }
    /// Every juju-log line so far.
    pub fn logs(&self) -> anyhow::Result<Vec<LogLine>> {
        model::read_records(&self.paths.log_records())
    }
    /// Every action run so far.
    pub fn actions(&self) -> anyhow::Result<Vec<ActionResult>> {
        model::read_records(&self.paths.action_records())
    }
}
