//! The leader's changes to LXD, in batches, each write started only while the pass is inside
//! its deadline and this unit is known to lead: within `limits::LEADERSHIP_WINDOW` of an
//! `is-leader` that answered true.

use crate::certs::short_fp;
use crate::hook_tools::{Juju, LogLevel, ToolError};
use crate::limits;
use crate::lxd::{AddOutcome, Lxd, LxdError, NewTrustEntry, TrustEntry};
use crate::ownership::Owner;
use crate::plan::Plan;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Changes per batch: enough to keep the client's parallel connections busy. A batch on a slow
/// LXD is cut off where the leader's window closes; the rest follows after `is-leader`.
const BATCH: usize = 64;

/// What kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Add,
    Remove,
    Restrict,
}

/// One change made (or, in a dry run, planned) to LXD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub(crate) kind: ChangeKind,
    pub(crate) fingerprint: String,
    pub(crate) owner: Owner,
    pub error: Option<String>,
    /// An add LXD answered with "already there".
    pub(crate) already_present: bool,
}

/// Whether the pass may still write to LXD: inside its deadline, and leading. `is-leader`
/// guarantees leadership for 30 s from the call; no write starts more than
/// `limits::LEADERSHIP_WINDOW` after the last true answer, and an answer older than
/// `limits::LEADERSHIP_RECHECK_AFTER` is asked again before the next batch.
pub(crate) struct WriteGuard {
    started: Instant,
    /// Just before the last `is-leader` that answered true.
    confirmed: Instant,
    deadline: Duration,
    window: Duration,
    recheck_after: Duration,
    /// Ask again at the next check, however recent the answer.
    stale: bool,
}

/// Why writing stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Deadline,
    LostLeadership,
}

impl WriteGuard {
    /// `started`: when the pass began; `confirmed`: just before `is-leader` answered true.
    pub(crate) fn new(started: Instant, confirmed: Instant) -> WriteGuard {
        WriteGuard {
            started,
            confirmed,
            deadline: limits::PASS_DEADLINE,
            window: limits::LEADERSHIP_WINDOW,
            recheck_after: limits::LEADERSHIP_RECHECK_AFTER,
            stale: false,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_deadline(mut self, deadline: Duration) -> WriteGuard {
        self.deadline = deadline;
        self
    }

    /// The same rules on a shorter clock, so a test can run many windows.
    #[cfg(test)]
    pub(crate) fn with_window(mut self, window: Duration, recheck_after: Duration) -> WriteGuard {
        self.window = window;
        self.recheck_after = recheck_after;
        self
    }

    /// Before writing: stops past the pass deadline, asks `is-leader` again when the last
    /// answer is old, and otherwise says until when writes may start.
    fn check(&mut self, juju: &mut Juju) -> Result<Result<Instant, Stop>, ToolError> {
        if self.started.elapsed() >= self.deadline {
            return Ok(Err(Stop::Deadline));
        }
        if self.stale || self.confirmed.elapsed() >= self.recheck_after {
            let asked = Instant::now();
            if !juju.is_leader()? {
                return Ok(Err(Stop::LostLeadership));
            }
            self.confirmed = asked;
            self.stale = false;
        }
        Ok(Ok((self.confirmed + self.window).min(self.started + self.deadline)))
    }

    /// A batch started nothing (`is-leader` answered too slowly for its window): the next
    /// check asks again, so the loop over batches always moves on or stops.
    fn expire(&mut self) {
        self.stale = true;
    }
}

/// What the leader did to LXD.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) changes: Vec<Change>,
    /// Changes not started: the pass ran out of time or leadership. The next hook does them.
    pub(crate) deferred: usize,
    pub(crate) stopped: Option<Stop>,
    /// A configured project LXD does not have, named from LXD's refusal.
    pub(crate) unknown_project: Option<String>,
    /// `changes` is the plan, not what was done.
    pub(crate) planned_only: bool,
}

impl Applied {
    /// A dry run: the plan as changes, none made.
    pub(crate) fn planned(plan: &Plan) -> Applied {
        let change = |kind, fingerprint: &str, owner: &Owner| Change::new(kind, fingerprint, owner.clone(), None, None);
        let add = plan.add.iter().map(|a| change(ChangeKind::Add, &a.fingerprint, &a.owner));
        let rm = plan.remove.iter().map(|r| change(ChangeKind::Remove, &r.fingerprint, &r.owner));
        let rs = plan.restrict.iter().map(|r| change(ChangeKind::Restrict, &r.fingerprint, &r.owner));
        Applied { changes: add.chain(rm).chain(rs).collect(), planned_only: true, ..Applied::default() }
    }

    /// The changes LXD confirmed: none in a dry run.
    pub(crate) fn confirmed(&self) -> &[Change] {
        if self.planned_only { &[] } else { &self.changes }
    }
}

/// Adds, then removes (so a rotating client always has one trusted certificate), then
/// re-restricts. `projects` is `trust-projects` and `store` the trust store as observed, to
/// name a configured project LXD does not have.
pub(crate) fn apply(
    juju: &mut Juju,
    lxd: &mut dyn Lxd,
    plan: &Plan,
    projects: Option<&[String]>,
    store: &[TrustEntry],
    guard: &mut WriteGuard,
) -> Result<Applied, ToolError> {
    let total = plan.add.len() + plan.remove.len() + plan.restrict.len();
    let mut run = Run { juju, lxd, guard, projects, applied: Applied::default(), errors: Vec::new() };
    // Each stage runs only if the one before was not stopped (deadline, leadership).
    let _finished = run.adds(plan)? && run.removes(plan)? && run.restricts(plan)?;
    let Run { juju, mut applied, errors, .. } = run;
    applied.deferred = total - applied.changes.len();
    applied.unknown_project = errors.iter().find_map(|e| unknown_project(e, projects, store));
    log(juju, &applied)?;
    Ok(applied)
}

/// One application of a plan: what was done so far, and what may stop it.
struct Run<'a, 'j> {
    juju: &'a mut Juju<'j>,
    lxd: &'a mut dyn Lxd,
    guard: &'a mut WriteGuard,
    projects: Option<&'a [String]>,
    applied: Applied,
    /// Failures of changes restricting to `trust-projects`: only those can blame the option.
    /// A missing project a requirer asked for is that requirer's failed change, in the log.
    errors: Vec<LxdError>,
}

impl Run<'_, '_> {
    /// Until when writes may start, or `None` (with the reason recorded) when they may not.
    fn may_go_on(&mut self) -> Result<Option<Instant>, ToolError> {
        match self.guard.check(self.juju)? {
            Ok(until) => Ok(Some(until)),
            Err(stop) => {
                self.applied.stopped = Some(stop);
                Ok(None)
            }
        }
    }

    /// `started` of the `asked` changes of a batch were started: the rest go into the next one.
    fn started(&mut self, asked: usize, started: usize) -> usize {
        if started == 0 && asked > 0 {
            self.guard.expire();
        }
        started.min(asked)
    }

    fn configured(&self, projects: &Option<Vec<String>>) -> bool {
        projects.is_some() && projects.as_deref() == self.projects
    }

    fn adds(&mut self, plan: &Plan) -> Result<bool, ToolError> {
        let mut rest = plan.add.as_slice();
        while !rest.is_empty() {
            let Some(until) = self.may_go_on()? else { return Ok(false) };
            let plans = &rest[..rest.len().min(BATCH)];
            let batch: Vec<NewTrustEntry> = plans
                .iter()
                .map(|a| NewTrustEntry { name: a.name.clone(), der: a.der.clone(), projects: a.projects.clone() })
                .collect();
            let results = self.lxd.add_trust_all(&batch, until);
            rest = &rest[self.started(plans.len(), results.len())..];
            for (add, result) in plans.iter().zip(results) {
                let outcome = result.as_ref().ok().copied();
                let change =
                    Change::new(ChangeKind::Add, &add.fingerprint, add.owner.clone(), result.as_ref().err(), outcome);
                self.applied.changes.push(change);
                if self.configured(&add.projects) {
                    self.errors.extend(result.err());
                }
            }
        }
        Ok(true)
    }

    fn removes(&mut self, plan: &Plan) -> Result<bool, ToolError> {
        let mut rest = plan.remove.as_slice();
        while !rest.is_empty() {
            let Some(until) = self.may_go_on()? else { return Ok(false) };
            let plans = &rest[..rest.len().min(BATCH)];
            let batch: Vec<String> = plans.iter().map(|r| r.fingerprint.clone()).collect();
            let results = self.lxd.remove_trust_all(&batch, until);
            rest = &rest[self.started(plans.len(), results.len())..];
            for (rm, result) in plans.iter().zip(results) {
                let change =
                    Change::new(ChangeKind::Remove, &rm.fingerprint, rm.owner.clone(), result.as_ref().err(), None);
                self.applied.changes.push(change);
            }
        }
        Ok(true)
    }

    fn restricts(&mut self, plan: &Plan) -> Result<bool, ToolError> {
        let mut rest = plan.restrict.as_slice();
        while let Some((r, later)) = rest.split_first() {
            let Some(until) = self.may_go_on()? else { return Ok(false) };
            if self.started(1, usize::from(Instant::now() < until)) == 0 {
                continue;
            }
            rest = later;
            let result = self.lxd.restrict_trust(&r.fingerprint, r.projects.as_deref());
            let change =
                Change::new(ChangeKind::Restrict, &r.fingerprint, r.owner.clone(), result.as_ref().err(), None);
            self.applied.changes.push(change);
            if self.configured(&r.projects) {
                self.errors.extend(result.err());
            }
        }
        Ok(true)
    }
}

/// Few `juju-log` calls per level: each is a round trip to the agent, and each is bounded.
fn log(juju: &mut Juju, applied: &Applied) -> Result<(), ToolError> {
    let (failed, done): (Vec<&Change>, Vec<&Change>) = applied.changes.iter().partition(|c| c.error.is_some());
    let mut failed: Vec<String> = failed.iter().map(|c| c.log_line()).collect();
    if let Some(refusal) = &applied.unknown_project {
        failed.push(format!("trust: {refusal}"));
    }
    let mut done: Vec<String> = done.iter().map(|c| c.log_line()).collect();
    if let Some(stop) = applied.stopped {
        let why = match stop {
            Stop::Deadline => "the pass reached its deadline",
            Stop::LostLeadership => "this unit is no longer the leader",
        };
        done.push(format!("trust: {} changes left for a later hook: {why}", applied.deferred));
    }
    juju.log_lines(LogLevel::Info, &done)?;
    juju.log_lines(LogLevel::Error, &failed)
}

impl Change {
    fn new(
        kind: ChangeKind,
        fingerprint: &str,
        owner: Owner,
        error: Option<&LxdError>,
        outcome: Option<AddOutcome>,
    ) -> Change {
        Change {
            kind,
            fingerprint: fingerprint.to_string(),
            owner,
            error: error.map(|e| e.to_string()),
            already_present: outcome == Some(AddOutcome::AlreadyPresent),
        }
    }

    fn log_line(&self) -> String {
        let verb = match (self.kind, self.error.is_some(), self.already_present) {
            (ChangeKind::Add, false, false) => "added",
            (ChangeKind::Add, false, true) => "already present",
            (ChangeKind::Add, true, _) => "failed to add",
            (ChangeKind::Remove, false, _) => "removed",
            (ChangeKind::Remove, true, _) => "failed to remove",
            (ChangeKind::Restrict, false, _) => "updated restrictions of",
            (ChangeKind::Restrict, true, _) => "failed to update",
        };
        match &self.error {
            Some(e) => format!("trust: {verb} {} for {}: {e}", short_fp(&self.fingerprint), self.owner),
            None => format!("trust: {verb} {} for {}", short_fp(&self.fingerprint), self.owner),
        }
    }
}

/// LXD answers an add or a re-restriction naming a missing project with 404 `Project not
/// found`, without saying which. The refusal names the configured projects not known to exist
/// (`default`, and any an entry is restricted to), so the operator sees what to create or unset.
pub(crate) fn unknown_project(error: &LxdError, projects: Option<&[String]>, store: &[TrustEntry]) -> Option<String> {
    let LxdError::Api { status: 404, message, .. } = error else { return None };
    if !message.to_ascii_lowercase().contains("project") {
        return None;
    }
    let existing: BTreeSet<&str> =
        store.iter().flat_map(|e| e.projects.iter().map(String::as_str)).chain(["default"]).collect();
    let configured = projects.unwrap_or_default();
    let mut suspects: Vec<&str> = configured.iter().map(String::as_str).filter(|p| !existing.contains(p)).collect();
    if suspects.is_empty() {
        suspects = configured.iter().map(String::as_str).collect();
    }
    let places: Vec<usize> =
        configured.iter().enumerate().filter(|(_, p)| suspects.contains(&p.as_str())).map(|(i, _)| i + 1).collect();
    Some(crate::status::unknown_project(&places, configured.len(), message))
}

#[cfg(test)]
mod window_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lxd::TrustEntry;
    use crate::memory::Agent;

    fn not_found() -> LxdError {
        LxdError::Api {
            method: "PATCH".into(),
            path: "/1.0/certificates/x".into(),
            status: 404,
            message: "Project not found".into(),
        }
    }

    fn store_with_projects(projects: &[&str]) -> Vec<TrustEntry> {
        vec![TrustEntry { projects: projects.iter().map(|p| p.to_string()).collect(), ..Default::default() }]
    }

    fn refusal_for(error: &LxdError, configured: &[&str], existing: &[&str]) -> Option<String> {
        let configured: Vec<String> = configured.iter().map(|p| p.to_string()).collect();
        unknown_project(error, Some(&configured), &store_with_projects(existing))
    }

    fn ago(secs: u64) -> Instant {
        Instant::now().checked_sub(Duration::from_secs(secs)).unwrap_or_else(Instant::now)
    }

    #[test]
    fn a_pass_past_its_deadline_starts_no_change() {
        let mut agent = Agent::leader();
        let mut guard = WriteGuard::new(Instant::now(), Instant::now()).with_deadline(Duration::ZERO);
        assert_eq!(guard.check(&mut Juju::new(&mut agent)).expect("no tool fails"), Err(Stop::Deadline));
        assert!(agent.calls.is_empty());
    }

    #[test]
    fn a_late_pass_asks_for_leadership_again_before_writing() {
        let mut deposed = Agent { leader: false, ..Agent::leader() };
        let mut guard = WriteGuard::new(ago(20), ago(20));
        assert_eq!(guard.check(&mut Juju::new(&mut deposed)).expect("asked"), Err(Stop::LostLeadership));
        let mut agent = Agent::leader();
        let mut guard = WriteGuard::new(ago(20), ago(20));
        assert!(guard.check(&mut Juju::new(&mut agent)).expect("asked").is_ok());
        assert!(guard.check(&mut Juju::new(&mut agent)).expect("not asked again").is_ok(), "confirmed just now");
        assert_eq!(agent.calls.len(), 1);
    }

    #[test]
    fn a_fresh_pass_trusts_the_leadership_it_just_read() {
        let mut agent = Agent::leader();
        let mut guard = WriteGuard::new(Instant::now(), Instant::now());
        let until = guard.check(&mut Juju::new(&mut agent)).expect("no call").expect("may write");
        assert!(until <= Instant::now() + limits::LEADERSHIP_WINDOW, "writes may start for one window");
        assert!(agent.calls.is_empty());
    }

    #[test]
    fn the_unknown_project_is_named_by_its_place_never_by_its_value() {
        let r = refusal_for(&not_found(), &["default", "p1", "nope"], &["p1"]);
        assert_eq!(
            r.as_deref(),
            Some("trust-projects names a project LXD does not have: entry 3 of 3 (Project not found)")
        );
        let r = refusal_for(&not_found(), &["a", "b"], &[]);
        assert_eq!(
            r.as_deref(),
            Some("trust-projects names a project LXD does not have: one of entries 1, 2 of 2 (Project not found)")
        );
        let r = refusal_for(&not_found(), &["p1", "-----BEGIN PRIVATE KEY----- MIIE"], &["p1"]).expect("refused");
        assert!(!r.contains("PRIVATE") && r.contains("entry 2 of 2"), "{r}");
    }

    #[test]
    fn other_failures_are_no_project_refusal() {
        let other = LxdError::Api {
            method: "POST".into(),
            path: "/1.0/certificates".into(),
            status: 404,
            message: "not found".into(),
        };
        assert_eq!(refusal_for(&other, &["p"], &[]), None);
        let forbidden = LxdError::Api {
            method: "POST".into(),
            path: "/1.0/certificates".into(),
            status: 400,
            message: "Project x is bad".into(),
        };
        assert_eq!(refusal_for(&forbidden, &["p"], &[]), None);
    }
}
