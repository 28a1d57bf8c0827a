//! Running actions (`juju run`), with Juju's parameter validation.

use anyhow::{anyhow, bail};
use serde_json::{Map, Value};

use crate::charm;
use crate::model::{self, ActionContext, HookContext, Model};

use super::commit::commit;
use super::process::ProcOutcome;
use super::records::{ActionResult, HookRecord};
use super::{Agent, Sim};

/// Applies actions.yaml defaults and checks required/unknown/typed params.
fn apply_action_params(spec: &charm::ActionSpec, params: Value) -> anyhow::Result<Value> {
    let mut p = match params {
        Value::Null => serde_json::Map::new(),
        Value::Object(o) => o,
        other => bail!("action params must be a map, got {other}"),
    };
    for (name, schema) in &spec.params {
        if !p.contains_key(name)
            && let Some(d) = schema.get("default")
        {
            p.insert(name.clone(), d.clone());
        }
    }
    for r in &spec.required {
        if !p.contains_key(r) {
            bail!(
                "validation failed: (root) : \"{r}\" property is missing and required, given {}",
                Value::Object(p.clone())
            );
        }
    }
    for (k, v) in &p {
        match spec.params.get(k) {
            None if !spec.additional_properties => {
                bail!("validation failed: (root) : additional property \"{k}\" is not allowed")
            }
            None => {}
            Some(schema) => {
                if let Some(t) = schema.get("type").and_then(Value::as_str) {
                    let ok = match t {
                        "string" => v.is_string(),
                        "integer" => v.is_i64() || v.is_u64(),
                        "number" => v.is_number(),
                        "boolean" => v.is_boolean(),
                        "object" => v.is_object(),
                        "array" => v.is_array(),
                        "null" => v.is_null(),
                        _ => true,
                    };
                    if !ok {
                        bail!("validation failed: {k} : invalid type. Expected: {t}, given: {v}");
                    }
                }
            }
        }
    }
    Ok(Value::Object(p))
}

impl Sim {
    /// Runs an action (defaults from actions.yaml applied) and waits for it.
    pub fn run_action(&mut self, unit: &str, name: &str, params: Value) -> anyhow::Result<ActionResult> {
        let (ctx, charm_dir, mut vars) = self.write(|m| {
            let u = m.units.get(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
            let a = &m.apps[&u.app];
            let spec =
                a.meta.actions.get(name).ok_or_else(|| anyhow!("action {name:?} not defined on unit {unit:?}"))?;
            let params = apply_action_params(spec, params)?;
            let charm_dir = u.charm_dir.clone();
            let id = m.next_action_id;
            m.next_action_id += 1;
            let ctx = HookContext {
                id: format!("{unit}-{name}-{}", crate::random::random_hex(8)),
                unit: unit.into(),
                hook_name: name.into(),
                action: Some(ActionContext { id: id.to_string(), name: name.into(), params, ..Default::default() }),
                ..Default::default()
            };
            let vars = self.base_env(m, &ctx, &charm_dir, "");
            Ok((ctx, charm_dir, vars))
        })?;
        let action_id = ctx.action.as_ref().unwrap().id.clone();
        vars.insert("JUJU_DISPATCH_PATH".into(), format!("actions/{name}"));
        vars.insert("JUJU_ACTION_NAME".into(), name.into());
        vars.insert("JUJU_ACTION_UUID".into(), action_id.clone());
        vars.insert("JUJU_ACTION_TAG".into(), format!("action-{action_id}"));
        let (outcome, ctx) = self.run_process(&charm_dir, "actions", name, &vars, ctx);
        let (result, record) = self.write(|m| self.finish_action(m, ctx, &outcome))?;
        model::append_record(&self.paths.hook_records(), &record)?;
        model::append_record(&self.paths.action_records(), &result)?;
        self.settle()?;
        Ok(result)
    }

    /// Commits an action that exited 0 and says how it ended.
    fn finish_action(
        &self,
        m: &mut Model,
        ctx: HookContext,
        outcome: &ProcOutcome,
    ) -> anyhow::Result<(ActionResult, HookRecord)> {
        let act = ctx.action.clone().unwrap();
        let (unit, name) = (&ctx.unit, &ctx.hook_name);
        let mut error = outcome.error.clone();
        if !outcome.ran && error.is_none() {
            error = Some(format!("action {name:?} not implemented on unit {unit:?}"));
        }
        let ok = outcome.exit_code == 0 && error.is_none();
        if ok && let Err(e) = commit(&self.paths, m, &ctx, 0) {
            error = Some(e.to_string());
        }
        let failed = !ok || error.is_some() || act.failed;
        let message = if let Some(e) = &error {
            Some(e.clone())
        } else if outcome.exit_code != 0 {
            act.message.clone().or(Some(format!("exit status {}", outcome.exit_code)))
        } else {
            act.message.clone()
        };
        let result = ActionResult {
            id: act.id.clone(),
            unit: unit.clone(),
            name: name.clone(),
            status: if failed { "failed".into() } else { "completed".into() },
            results: Value::Object(action_results(&act, outcome, Agent::of(&m.juju_version))),
            message,
            logs: act.logs.clone(),
            exit_code: outcome.exit_code,
            stdout: outcome.stdout.clone(),
            stderr: outcome.stderr.clone(),
        };
        Ok((result, HookRecord::of("action", &ctx, outcome, error)))
    }
}

/// What the charm set with `action-set`, and what the agent adds to it.
fn action_results(act: &ActionContext, outcome: &ProcOutcome, agent: Option<Agent>) -> Map<String, Value> {
    let mut results = act.results.clone();
    if outcome.ran && agent == Some(Agent::Juju29) {
        // Juju 2.9's runner adds the process's exit code and output to every action's
        // results, capitalised, after the charm's own (worker/uniter/runner/runner.go,
        // runCharmProcessOnLocal -> updateActionResults; "TODO(juju3) - use lower
        // case here": Juju 3 names them return-code/stdout/stderr). Not when no
        // process ran. Output that is not UTF-8 (base64 and "StdoutEncoding" in Juju)
        // is kept here as read, lossily.
        results.insert("Code".into(), Value::String(outcome.exit_code.to_string()));
        for (key, text) in [("Stdout", &outcome.stdout), ("Stderr", &outcome.stderr)] {
            if !text.is_empty() {
                results.insert(key.into(), Value::String(text.clone()));
            }
        }
    }
    results
}
