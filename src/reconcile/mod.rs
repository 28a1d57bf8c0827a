//! The one pass every hook runs, as typed stages, each a value the next one takes:
//! `inputs::read` → `Inputs` (read once) and `observe` → `Observed` (what LXD said) →
//! `decide` → `Decision` (pure) → `apply` → `Applied` (leader only) → `decide::outcome` →
//! `Outcome` (pure: LXD's answers folded in) → `publish` → `decide::status`. The `Report` is
//! built from them at the end.
//!
//! It is idempotent and keeps no state that matters: LXD's trust store (entry names carry their
//! owner) and the relation databags are the record. The unit's state cache (`state`) only
//! saves hook-tool calls and repeated log lines.

use crate::certs;
use crate::config::Config;
use crate::context::{Hook, HookContext, RelationEvent};
use crate::credentials::{CredentialProblem, Credentials};
use crate::endpoint::Endpoint;
use crate::hook_tools::{Juju, LogLevel, ToolError};
use crate::lxd::{Connection, Connector, Lxd, LxdError, Member, ServerInfo, TrustEntry};
use crate::ownership::Interface;
use crate::refusal::RefusedCert;
use crate::requests::{MemberProblems, Request, Requests};
use crate::status::{self, Status};
use std::collections::BTreeSet;
use std::time::Instant;

mod apply;
mod decide;
mod inputs;
mod observe;
mod publish;
mod quiet;
mod state;

pub(crate) use crate::access::{EXT_CERTIFICATE_PROJECT, TrustAccess};
use apply::{Applied, WriteGuard};
pub(crate) use apply::{Change, ChangeKind};
pub(crate) use decide::is_published;
use decide::{Decision, Outcome};
use inputs::{Inputs, Start};
use observe::{NotObserved, Observed};
use state::Cache;

/// What the caller wants from this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Change LXD (still only on the leader).
    pub(crate) apply: bool,
    /// Write relation data, status and the state cache.
    pub(crate) publish: bool,
}

impl Mode {
    pub const HOOK: Mode = Mode { apply: true, publish: true };
    pub(crate) const DRY_RUN: Mode = Mode { apply: false, publish: false };
}

/// Why a pass could not use LXD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Credentials(#[from] CredentialProblem),
    #[error(transparent)]
    Lxd(#[from] LxdError),
}

/// What a pass found and did, built once it is over from its stages' values; actions report
/// from it.
#[derive(Debug, Default)]
pub struct Report {
    pub(crate) leader: bool,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) endpoint_used: Option<Endpoint>,
    pub(crate) server: Option<ServerInfo>,
    pub members: Vec<Member>,
    pub(crate) store: Vec<TrustEntry>,
    pub(crate) requests: Vec<Request>,
    pub(crate) problems: Vec<MemberProblems>,
    /// Certificates refused for the requirer that asked, as each is told (`refused`).
    pub(crate) refused: Vec<RefusedCert>,
    pub changes: Vec<Change>,
    /// Fingerprints LXD holds after the pass, as far as the pass may claim them.
    pub(crate) held: BTreeSet<String>,
    /// Whether the credential may manage LXD's trust store.
    pub(crate) access: Option<TrustAccess>,
    pub(crate) refusal: Option<String>,
    /// Planned changes left for a later hook (deadline or leadership).
    pub(crate) deferred: usize,
    pub status: Option<Status>,
    pub error: Option<PassError>,
}

/// Runs the pass: inputs → observe LXD (while the relations are read) → decide → apply
/// (leader only) → publish → status. Expected faults (no credentials, LXD down, bad relation
/// data) end in a status, not an error; an `Err` means a hook tool itself failed, and Juju
/// should retry the hook.
pub fn run(ctx: &HookContext, juju: &mut Juju, connector: &dyn Connector, mode: Mode) -> Result<Report, ToolError> {
    let started = Instant::now();
    let Start { credentials, note, config, mut cache, leaving } = inputs::read(ctx, juju)?;
    if let Some(note) = note {
        cache.log_once(juju, state::LOGGED_NOTE, LogLevel::Info, &[note])?;
    }
    let creds = match credentials {
        Ok(creds) => creds,
        Err(problem) => return without_credentials(juju, mode, cache, problem),
    };
    let protected = inputs::protected(&creds);
    // LXD is observed on its own thread as soon as the credentials are known, while leadership
    // and the relations are read: a hook costs the longer of the two, not their sum.
    let known = cache.known_endpoints();
    let (observed, relations) = match may_be_quiet(ctx, mode) {
        Some(hook) => {
            let (observed, quick) = std::thread::scope(|s| {
                let observer = s.spawn(|| observe::observe(&creds, &known, connector));
                let quick = read_quick(juju, &hook, &cache);
                (observer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), quick)
            });
            let (leadership, asks_the_same) = quick?;
            if asks_the_same && let Ok((seen, _)) = &observed {
                let world = world(&creds, &config, leaving, leadership.leader, &leadership.relation_ids, seen);
                if quiet::may_skip(cache.steady().as_ref(), &quiet::digest(&world), certs::now_unix()) {
                    return Ok(Report { leader: leadership.leader, credentials: Some(creds), ..Report::default() });
                }
            }
            (observed, inputs::read_databags(ctx, juju, leadership, mode.publish, leaving, &protected))
        }
        None => std::thread::scope(|s| {
            let observer = s.spawn(|| observe::observe(&creds, &known, connector));
            let relations = inputs::read_relations(ctx, juju, mode.publish, leaving, &protected);
            (observer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), relations)
        }),
    };
    let inputs = Inputs { scope: ctx.scope(), creds, protected, config, leaving, relations: relations? };
    match observed {
        Ok((observed, lxd)) => with_lxd(juju, mode, cache, inputs, observed, lxd, started),
        Err(not) => without_lxd(juju, mode, cache, inputs, not),
    }
}

/// A hook that may end without reading the relations (`quiet.rs`).
enum MayBeQuiet<'a> {
    UpdateStatus,
    /// `-relation-changed` for one remote unit: only its databag can have changed.
    UnitChanged {
        rel: u32,
        unit: &'a str,
    },
}

fn may_be_quiet(ctx: &HookContext, mode: Mode) -> Option<MayBeQuiet<'_>> {
    if mode != Mode::HOOK {
        return None;
    }
    if ctx.hook() == Some(Hook::UpdateStatus) {
        return Some(MayBeQuiet::UpdateStatus);
    }
    match (ctx.relation_id, ctx.remote_unit.as_deref()) {
        (Some(rel), Some(unit)) if ctx.is_relation_hook(RelationEvent::Changed) => {
            Some(MayBeQuiet::UnitChanged { rel, unit })
        }
        _ => None,
    }
}

/// Leadership and the relation ids, and whether the unit a change hook is about asks what the
/// last steady pass saw it ask.
fn read_quick(juju: &mut Juju, hook: &MayBeQuiet, cache: &Cache) -> Result<(inputs::Leadership, bool), ToolError> {
    let leadership = inputs::read_leadership(juju)?;
    let asks_the_same = match hook {
        MayBeQuiet::UpdateStatus => true,
        MayBeQuiet::UnitChanged { rel, unit } => cache.saw_request(&inputs::unit_request_digest(juju, *rel, unit)?),
    };
    Ok((leadership, asks_the_same))
}

/// Everything but the relation data that a pass depends on, for `quiet::digest`.
fn world<'a>(
    creds: &'a Credentials,
    config: &'a Config,
    leaving: bool,
    leader: bool,
    relation_ids: &'a [(Interface, u32)],
    observed: &'a Observed,
) -> quiet::World<'a> {
    quiet::World {
        creds,
        config,
        leader,
        leaving,
        relation_ids,
        server: &observed.server,
        members: &observed.members,
        store: &observed.store,
        identity: observed.identity.as_ref(),
    }
}

/// The pass once LXD answered: decide, apply, fold LXD's answers in, publish, status.
fn with_lxd(
    juju: &mut Juju,
    mode: Mode,
    mut cache: Cache,
    inputs: Inputs,
    observed: Observed,
    mut lxd: Connection,
    started: Instant,
) -> Result<Report, ToolError> {
    let decision = decide::decide(&inputs, &observed);
    log_problems(juju, &mut cache, &decision.asked)?;
    cache.log_once(juju, state::LOGGED_LXD, LogLevel::Warning, &observed.problems)?;
    let leadership = (started, inputs.relations.leadership_asked);
    let applied = apply_stage(juju, mode, &decision, lxd.as_mut(), &observed.store, leadership)?;
    let outcome = decide::outcome(&decision, &observed.store, &applied);
    let withheld =
        if mode.publish { publish::publish(juju, &mut cache, &inputs.relations, &decision, &outcome)? } else { 0 };
    let status = status::naming_credential(decide::status(&decision, &outcome, withheld), Some(&inputs.creds));
    if mode == Mode::HOOK {
        remember_steady(&mut cache, &inputs, &observed, &decision, &applied, &outcome);
    }
    publish::finish(juju, mode.publish, &mut cache, &status)?;
    Ok(Report::of_pass(inputs, observed, decision, applied, outcome, status))
}

/// What was wrong with what requirers sent, logged when it differs from what was logged last.
fn log_problems(juju: &mut Juju, cache: &mut Cache, asked: &Requests) -> Result<(), ToolError> {
    let lines: Vec<String> = asked.problems.iter().map(|p| p.to_string()).collect();
    cache.log_once(juju, state::LOGGED_PROBLEMS, LogLevel::Warning, &lines)
}

/// The leader changes LXD (unless this is a dry run); anyone else only plans. `store`: the
/// trust store as observed; `leadership`: when the pass started, and when `is-leader` last
/// said yes.
fn apply_stage(
    juju: &mut Juju,
    mode: Mode,
    decision: &Decision,
    lxd: &mut dyn Lxd,
    store: &[TrustEntry],
    leadership: (Instant, Instant),
) -> Result<Applied, ToolError> {
    let trust = &decision.trust;
    if !(trust.writer && mode.apply) {
        return Ok(Applied::planned(&trust.plan));
    }
    let mut guard = WriteGuard::new(leadership.0, leadership.1);
    apply::apply(juju, lxd, &trust.plan, trust.projects.as_deref(), store, &mut guard)
}

impl Report {
    /// What a pass that reached LXD found and did.
    fn of_pass(
        inputs: Inputs,
        observed: Observed,
        decision: Decision,
        applied: Applied,
        outcome: Outcome,
        status: Status,
    ) -> Report {
        Report {
            leader: inputs.relations.leader,
            credentials: Some(inputs.creds),
            endpoint_used: Some(observed.endpoint),
            server: Some(observed.server),
            members: observed.members,
            store: observed.store,
            requests: decision.asked.requests,
            problems: decision.asked.problems,
            refused: outcome.refused,
            changes: applied.changes,
            held: outcome.held,
            access: Some(decision.access),
            refusal: outcome.refusal,
            deferred: applied.deferred,
            status: Some(status),
            error: None,
        }
    }
}

/// Leaves, for the next `update-status` and change hooks, what this pass saw if it was steady.
fn remember_steady(
    cache: &mut Cache,
    inputs: &Inputs,
    observed: &Observed,
    decision: &Decision,
    applied: &Applied,
    outcome: &Outcome,
) {
    let steady = steady(inputs, observed, decision, applied, outcome);
    if steady.is_some() {
        cache.remember_requests(inputs.relations.digests.clone());
    }
    cache.remember_steady(steady.as_ref());
}

/// What a full pass leaves for the next `update-status` to compare with, when it found nothing
/// to change (a pass that changed LXD is followed by a full one, which then sees the result).
fn steady(
    inputs: &Inputs,
    observed: &Observed,
    decision: &Decision,
    applied: &Applied,
    outcome: &Outcome,
) -> Option<quiet::Steady> {
    let trust = &decision.trust;
    let settled = applied.confirmed().is_empty() && applied.deferred == 0 && (trust.plan.is_empty() || !trust.writer);
    if !settled {
        return None;
    }
    let relations = &inputs.relations;
    let relation_ids: Vec<(Interface, u32)> = relations.views.iter().map(|v| (v.interface, v.id)).collect();
    let world = world(&inputs.creds, &inputs.config, inputs.leaving, relations.leader, &relation_ids, observed);
    // The quiet path wakes for the first expiry, and for the first refused certificate that
    // becomes valid: a requirer whose clock runs ahead is trusted by the next update-status.
    let expiries = decision.asked.requests.iter().map(|r| r.cert.not_after);
    let starts = outcome.refused.iter().filter_map(|r| r.not_before);
    let first_expiry = expiries.chain(starts).min().unwrap_or(i64::MAX);
    Some(quiet::Steady { digest: quiet::digest(&world), at: certs::now_unix(), first_expiry })
}

/// No usable credentials: say so, touch nothing.
fn without_credentials(
    juju: &mut Juju,
    mode: Mode,
    mut cache: Cache,
    problem: CredentialProblem,
) -> Result<Report, ToolError> {
    let status = status::credentials(&problem);
    // Not steady: once the credential is usable again (a secret granted: no hook runs), the
    // next update-status must run in full and replace this status, not skip as unchanged.
    cache.remember_steady(None);
    publish::finish(juju, mode.publish, &mut cache, &status)?;
    Ok(Report { leader: juju.is_leader()?, status: Some(status), error: Some(problem.into()), ..Report::default() })
}

/// LXD could not be used: say so, and leave LXD and the relation data as they are (an outage
/// never removes an entry nor withdraws a fingerprint).
fn without_lxd(
    juju: &mut Juju,
    mode: Mode,
    mut cache: Cache,
    inputs: Inputs,
    not: NotObserved,
) -> Result<Report, ToolError> {
    let asked = decide::asked(&inputs, None);
    log_problems(juju, &mut cache, &asked)?;
    let status = status::naming_credential(status::connection(&not.error, not.tried), Some(&inputs.creds));
    // Not steady either: when LXD answers again, the full pass restores the status.
    cache.remember_steady(None);
    // Logged when the status it leads to is new, not every five minutes.
    if !cache.is_last_status(&status) {
        let level = if status.kind == status::Kind::Blocked { LogLevel::Error } else { LogLevel::Warning };
        juju.log(level, &not.error.to_string())?;
    }
    publish::finish(juju, mode.publish, &mut cache, &status)?;
    Ok(Report {
        leader: inputs.relations.leader,
        credentials: Some(inputs.creds),
        requests: asked.requests,
        problems: asked.problems,
        refused: asked.refused,
        status: Some(status),
        error: Some(not.error.into()),
        ..Report::default()
    })
}

#[cfg(test)]
mod https_tests;
#[cfg(test)]
mod tenancy_tests;
#[cfg(test)]
mod tests;
