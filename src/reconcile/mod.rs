//! The one pass every hook runs, as typed stages:
//! `inputs` (read once) → `observe` LXD → `decide` (pure) → `apply` (leader only) → `publish`
//! → status.
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
use crate::interfaces;
use crate::lxd::{Connector, LxdError, Member, ServerInfo, TrustEntry};
use crate::ownership::{Interface, Owner};
use crate::plan::Plan;
use crate::refusal::{Reason, RefusedCert};
use crate::relation;
use crate::requests::{Bounds, MemberProblems, MemberRead, Protected, Request, Requests};
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

pub use apply::ChangeKind;
use apply::{Applied, WriteGuard};
use decide::{Decision, Outcome};
pub use decide::{EXT_ACCESS_MANAGEMENT, EXT_CERTIFICATE_PROJECT, NEEDED_ENTITLEMENTS, TrustAccess, is_published};
use inputs::{Inputs, Relations};
use observe::{NotObserved, Observed};
use state::Cache;

/// What the caller wants from this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// Change LXD (still only on the leader).
    pub apply: bool,
    /// Write relation data, status and the state cache.
    pub publish: bool,
}

impl Mode {
    pub const HOOK: Mode = Mode { apply: true, publish: true };
    pub const DRY_RUN: Mode = Mode { apply: false, publish: false };
}

/// One change made (or, in a dry run, planned) to LXD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub fingerprint: String,
    pub owner: Owner,
    pub error: Option<String>,
    /// An add LXD answered with "already there".
    pub already_present: bool,
}

/// Why a pass could not use LXD.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PassError {
    #[error(transparent)]
    Credentials(#[from] CredentialProblem),
    #[error(transparent)]
    Lxd(#[from] LxdError),
}

/// What a pass found and did, built from its stages; actions report from it.
#[derive(Debug, Default)]
pub struct Report {
    pub leader: bool,
    pub credentials: Option<Credentials>,
    pub endpoint_used: Option<Endpoint>,
    pub server: Option<ServerInfo>,
    pub members: Vec<Member>,
    pub store: Vec<TrustEntry>,
    pub requests: Vec<Request>,
    pub problems: Vec<MemberProblems>,
    /// Certificates refused for the requirer that asked, as each is told (`refused`).
    pub refused: Vec<RefusedCert>,
    pub plan: Plan,
    pub changes: Vec<Change>,
    /// Fingerprints LXD holds after the pass, as far as the pass may claim them.
    pub held: BTreeSet<String>,
    /// Whether the credential may manage LXD's trust store.
    pub access: Option<TrustAccess>,
    pub refusal: Option<String>,
    /// Trusted certificates left out of the relation data, which would have outgrown its bound.
    pub withheld: usize,
    /// Planned changes left for a later hook (deadline or leadership).
    pub deferred: usize,
    pub status: Option<Status>,
    pub error: Option<PassError>,
}

/// Runs the pass: inputs → observe LXD (while the relations are read) → decide → apply
/// (leader only) → publish → status. Expected faults (no credentials, LXD down, bad relation
/// data) end in a status, not an error; an `Err` means a hook tool itself failed, and Juju
/// should retry the hook.
pub fn run(ctx: &HookContext, juju: &mut Juju, connector: &dyn Connector, mode: Mode) -> Result<Report, ToolError> {
    let started = Instant::now();
    let mut inputs = inputs::read(ctx, juju)?;
    if let Some(note) = inputs.note.take() {
        inputs.cache.log_once(juju, state::LOGGED_NOTE, LogLevel::Info, &[note])?;
    }
    let creds = match &inputs.credentials {
        Ok(creds) => creds.clone(),
        Err(problem) => return without_credentials(juju, mode, inputs.cache, problem.clone()),
    };
    let protected = protected(&creds);
    // LXD is observed on its own thread as soon as the credentials are known, while leadership
    // and the relations are read: a hook costs the longer of the two, not their sum.
    let known = inputs.cache.known_endpoints();
    let (observed, relations) = match may_be_quiet(ctx, mode) {
        Some(hook) => {
            let (observed, quick) = std::thread::scope(|s| {
                let observer = s.spawn(|| observe::observe(&creds, &known, connector));
                let quick = read_quick(juju, &hook, &inputs.cache);
                (observer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), quick)
            });
            let (leadership, asks_the_same) = quick?;
            if asks_the_same && let Ok(seen) = &observed {
                let world = world(&creds, &inputs, leadership.leader, &leadership.relation_ids, seen);
                if quiet::may_skip(inputs.cache.steady().as_ref(), &quiet::digest(&world), certs::now_unix()) {
                    return Ok(Report { leader: leadership.leader, credentials: Some(creds), ..Report::default() });
                }
            }
            (observed, inputs::read_databags(ctx, juju, leadership, mode.publish, inputs.leaving, &protected))
        }
        None => std::thread::scope(|s| {
            let observer = s.spawn(|| observe::observe(&creds, &known, connector));
            let relations = inputs::read_relations(ctx, juju, mode.publish, inputs.leaving, &protected);
            (observer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), relations)
        }),
    };
    let relations = relations?;
    let asked = collect(&relations.asked, &inputs.config, observed.as_ref().ok().map(|o| &o.server));
    let problem_lines: Vec<String> = asked.problems.iter().map(|p| p.to_string()).collect();
    inputs.cache.log_once(juju, state::LOGGED_PROBLEMS, LogLevel::Warning, &problem_lines)?;
    let report = Report {
        leader: relations.leader,
        credentials: Some(creds),
        requests: asked.requests,
        problems: asked.problems,
        refused: asked.refused,
        ..Report::default()
    };
    let read = Read { inputs, relations, report, protected, started };
    match observed {
        Ok(observed) => with_lxd(ctx, juju, mode, read, observed),
        Err(not) => without_lxd(juju, mode, read.inputs.cache, read.report, not),
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
    inputs: &'a Inputs,
    leader: bool,
    relation_ids: &'a [(Interface, u32)],
    observed: &'a Observed,
) -> quiet::World<'a> {
    quiet::World {
        creds,
        config: &inputs.config,
        leader,
        leaving: inputs.leaving,
        relation_ids,
        server: &observed.server,
        members: &observed.members,
        store: &observed.store,
        identity: observed.identity.as_ref(),
    }
}

/// All the pass read from Juju, and the report so far.
struct Read {
    inputs: Inputs,
    relations: Relations,
    report: Report,
    protected: Protected,
    started: Instant,
}

/// The pass once LXD answered: decide, apply, publish, status.
fn with_lxd(
    ctx: &HookContext,
    juju: &mut Juju,
    mode: Mode,
    read: Read,
    mut observed: Observed,
) -> Result<Report, ToolError> {
    let Read { mut inputs, relations, mut report, protected, started } = read;
    inputs.cache.log_once(juju, state::LOGGED_LXD, LogLevel::Warning, &observed.problems)?;
    let (access, decision) = decide_pass(ctx, &inputs, &relations, &report, &protected, &observed);
    let leadership = (started, relations.leadership_asked);
    let applied = apply_stage(juju, mode, &decision, &mut observed, leadership)?;
    let held = decide::held_after(&observed.store, applied.confirmed(), &decision.held_elsewhere);
    let answering = observed.lxd.endpoint().clone();
    let online = published_members(&observed.members, &answering);
    report.refused.extend(refused_by_pass(&decision, &applied, &report.requests));
    let claimed = claimable(&report.requests, &decision.held_by_other);
    let withheld = if mode.publish {
        publish::lxd_facts(juju, &mut inputs.cache, &observed.members, &observed.server)?;
        let seen = Seen { online: &online, claimed: &claimed, held: &held, server: &observed.server };
        publish_relations(juju, &inputs, &relations, &report, &seen, decision.writer)?
    } else {
        0
    };
    let refusal = decision.refusal.clone().or(applied.unknown_project.clone());
    let status = decide::status(&Outcome {
        decision: &decision,
        members: &observed.members,
        published: online.len(),
        requests: &claimed,
        problems: &report.problems,
        held: &held,
        changes: applied.confirmed(),
        deferred: applied.deferred,
        withheld,
        refusal: refusal.as_deref(),
        refused: &report.refused,
        leaving: inputs.leaving,
    });
    let status = status::naming_credential(status, report.credentials.as_ref());
    if mode == Mode::HOOK {
        remember_steady(&mut inputs, &relations, &observed, &report, &decision, &applied);
    }
    publish::finish(juju, mode, &mut inputs.cache, &status)?;
    Ok(Report {
        endpoint_used: Some(answering),
        server: Some(observed.server),
        members: observed.members,
        store: observed.store,
        plan: decision.plan,
        changes: applied.changes,
        held,
        access: Some(access),
        refusal,
        withheld,
        deferred: applied.deferred,
        status: Some(status),
        ..report
    })
}

/// The leader changes LXD (unless this is a dry run); anyone else only plans. `leadership`:
/// when the pass started, and when `is-leader` last said yes.
fn apply_stage(
    juju: &mut Juju,
    mode: Mode,
    decision: &Decision,
    observed: &mut Observed,
    leadership: (Instant, Instant),
) -> Result<Applied, ToolError> {
    if !(decision.writer && mode.apply) {
        return Ok(Applied::planned(&decision.plan));
    }
    let mut guard = WriteGuard::new(leadership.0, leadership.1);
    let projects = decision.projects.as_deref();
    apply::apply(juju, observed.lxd.as_mut(), &decision.plan, projects, &observed.store, &mut guard)
}

/// What the pass found that requirers are told.
struct Seen<'a> {
    online: &'a relation::OnlineMembers,
    /// The requests that may be claimed for their requirer.
    claimed: &'a [Request],
    held: &'a BTreeSet<String>,
    server: &'a ServerInfo,
}

/// Writes every relation's payload: the members, what LXD holds, the pin this pass connected
/// with (requirers authenticate LXD with it), what LXD presents, and what was refused.
fn publish_relations(
    juju: &mut Juju,
    inputs: &Inputs,
    relations: &Relations,
    report: &Report,
    seen: &Seen,
    writer: bool,
) -> Result<usize, ToolError> {
    let pin = report.credentials.as_ref().and_then(|c| relation::ServerPin::from_pinned(&c.tls.server_cert_pem));
    let presented = seen.server.certificate.as_deref().map(relation::ServerPin::of_der);
    let what = publish::Publication {
        online: seen.online,
        requests: seen.claimed,
        held: seen.held,
        pin: pin.as_ref(),
        presented: presented.as_ref(),
        refused: &report.refused,
        trust_projects: inputs.config.trust_projects.as_deref(),
    };
    publish::relation_data(juju, relations, &what, writer)
}

/// What this pass itself refused to requirers: certificates held for another relation, and
/// adds LXD answered with an error (told to every relation that asked).
fn refused_by_pass(decision: &Decision, applied: &Applied, requests: &[Request]) -> Vec<RefusedCert> {
    let failed: BTreeSet<&str> = applied
        .confirmed()
        .iter()
        .filter(|c| c.kind == ChangeKind::Add && c.error.is_some())
        .map(|c| c.fingerprint.as_str())
        .collect();
    let rejected = requests.iter().filter(|r| failed.contains(r.cert.fingerprint.as_str())).map(|r| RefusedCert {
        owner: r.owner.clone(),
        fingerprint: r.cert.fingerprint.clone(),
        reason: Reason::RejectedByLxd,
        not_before: None,
    });
    decision.held_by_other.iter().cloned().chain(rejected).collect()
}

/// The requests that may be claimed trusted for their requirer: all but those held for another.
fn claimable(requests: &[Request], held_by_other: &[RefusedCert]) -> Vec<Request> {
    let not: BTreeSet<(&Owner, &str)> = held_by_other.iter().map(|r| (&r.owner, r.fingerprint.as_str())).collect();
    requests.iter().filter(|r| !not.contains(&(&r.owner, r.cert.fingerprint.as_str()))).cloned().collect()
}

/// The members requirers are told about, as (name, URL).
fn published_members(members: &[Member], answering: &Endpoint) -> relation::OnlineMembers {
    members.iter().filter(|m| is_published(m, answering)).map(|m| (m.name.clone(), m.url.clone())).collect()
}

/// The pure step: may this credential manage trust, and what should change.
fn decide_pass(
    ctx: &HookContext,
    inputs: &Inputs,
    relations: &Relations,
    report: &Report,
    protected: &Protected,
    observed: &Observed,
) -> (TrustAccess, Decision) {
    let own = report.credentials.as_ref().map(own_fingerprint).unwrap_or_default();
    let access = decide::trust_access(&observed.server, observed.identity.as_ref(), &observed.store, &own);
    let decided = decide::decide(
        &ctx.scope(),
        &inputs.config,
        &observed.server,
        &observed.store,
        &report.requests,
        protected,
        relations.leader,
        inputs.leaving,
    );
    let decision = decide::within(&access, decided);
    let decision = decide::with_tenancy(&ctx.scope(), &inputs.config, &observed.store, &report.requests, decision);
    (access, decision)
}

/// Leaves, for the next `update-status` and change hooks, what this pass saw if it was steady.
fn remember_steady(
    inputs: &mut Inputs,
    relations: &Relations,
    observed: &Observed,
    report: &Report,
    decision: &Decision,
    applied: &Applied,
) {
    let steady = steady(inputs, relations, observed, report, decision, applied);
    if steady.is_some() {
        inputs.cache.remember_requests(relations.digests.clone());
    }
    inputs.cache.remember_steady(steady.as_ref());
}

/// What a full pass leaves for the next `update-status` to compare with, when it found nothing
/// to change (a pass that changed LXD is followed by a full one, which then sees the result).
fn steady(
    inputs: &Inputs,
    relations: &Relations,
    observed: &Observed,
    report: &Report,
    decision: &Decision,
    applied: &Applied,
) -> Option<quiet::Steady> {
    let creds = report.credentials.as_ref()?;
    let requests = &report.requests;
    let settled =
        applied.confirmed().is_empty() && applied.deferred == 0 && (decision.plan.is_empty() || !decision.writer);
    if !settled {
        return None;
    }
    let relation_ids: Vec<(Interface, u32)> = relations.views.iter().map(|v| (v.interface, v.id)).collect();
    let world = world(creds, inputs, relations.leader, &relation_ids, observed);
    // The quiet path wakes for the first expiry, and for the first refused certificate that
    // becomes valid: a requirer whose clock runs ahead is trusted by the next update-status.
    let expiries = requests.iter().map(|r| r.cert.not_after);
    let starts = report.refused.iter().filter_map(|r| r.not_before);
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
    publish::finish(juju, mode, &mut cache, &status)?;
    Ok(Report { leader: juju.is_leader()?, status: Some(status), error: Some(problem.into()), ..Report::default() })
}

/// LXD could not be used: say so, and leave LXD and the relation data as they are (an outage
/// never removes an entry nor withdraws a fingerprint).
fn without_lxd(
    juju: &mut Juju,
    mode: Mode,
    mut cache: Cache,
    mut report: Report,
    not: NotObserved,
) -> Result<Report, ToolError> {
    let status = status::naming_credential(status::connection(&not.error, not.tried), report.credentials.as_ref());
    // Not steady either: when LXD answers again, the full pass restores the status.
    cache.remember_steady(None);
    // Logged when the status it leads to is new, not every five minutes.
    if !cache.is_last_status(&status) {
        let level = if status.kind == status::Kind::Blocked { LogLevel::Error } else { LogLevel::Warning };
        juju.log(level, &not.error.to_string())?;
    }
    publish::finish(juju, mode, &mut cache, &status)?;
    report.status = Some(status);
    report.error = Some(not.error.into());
    Ok(report)
}

/// The fingerprint of the credential's own client certificate (its first PEM block).
fn own_fingerprint(creds: &Credentials) -> String {
    certs::pem_blocks(&creds.tls.client_cert_pem)
        .ok()
        .and_then(|blocks| blocks.first().map(|b| certs::fingerprint(&b.der)))
        .unwrap_or_default()
}

/// What requirers ask for on both endpoints, in relation order (the first request for a
/// certificate names its entry and sets its projects), and what was wrong with it. `server`
/// is what LXD said this pass, if it answered: an `lxd-https` requirer's projects can only be
/// granted where LXD can restrict an entry.
fn collect(asked: &[MemberRead], config: &Config, server: Option<&ServerInfo>) -> Requests {
    let bounds = Bounds {
        ceiling: config.trust_projects.as_deref(),
        cannot_restrict: server.is_some_and(|s| !s.api_extensions.iter().any(|e| e == EXT_CERTIFICATE_PROJECT)),
    };
    interfaces::settle(asked, &bounds)
}

/// The certificates no requirer may have trusted or withdrawn on its behalf: the integrator's
/// own credential (removing it would lock the charm out) and the server's certificate.
fn protected(creds: &Credentials) -> Protected {
    let mut out = Protected::default();
    let named = [
        (&creds.tls.client_cert_pem, "the integrator's own credential certificate"),
        (&creds.tls.server_cert_pem, "the LXD server's certificate"),
    ];
    for (pem, what) in named {
        for block in certs::pem_blocks(pem).unwrap_or_default() {
            out.fingerprints.insert(certs::fingerprint(&block.der), what);
        }
    }
    out
}

#[cfg(test)]
mod https_tests;
#[cfg(test)]
mod tenancy_tests;
#[cfg(test)]
mod tests;
