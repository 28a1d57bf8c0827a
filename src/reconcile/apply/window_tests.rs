//! The leader's window against a slow LXD: the case (15 s per request, 64 changes per
//! batch over 4 connections, a 10 s window) on a clock 100 times faster.

use super::*;
use crate::endpoint::Endpoint;
use crate::hook_tools::{HookTools, ToolOutput};
use crate::lxd::{Identity, Member, ServerInfo};
use crate::memory::Agent;
use crate::ownership::Interface;
use crate::plan::{Add, Remove, Restrict};
use std::sync::{Mutex, PoisonError};

const WINDOW: Duration = Duration::from_millis(100);
const RECHECK_AFTER: Duration = Duration::from_millis(50);
const PER_WRITE: Duration = Duration::from_millis(150);
/// Between the window's check and the moment a test thread records its start, a loaded
/// machine may not run the thread; the charm's own bound is the check.
const SCHEDULING: Duration = Duration::from_millis(25);

/// An LXD taking `PER_WRITE` over every write, serving four at once as the HTTPS client does
/// (`start_before`, the same contract as `HttpLxd::spread`), and noting when each write started.
struct SlowLxd {
    ep: Endpoint,
    starts: Mutex<Vec<Instant>>,
}

impl SlowLxd {
    fn new() -> SlowLxd {
        SlowLxd { ep: Endpoint { host: "10.0.0.1".into(), port: 8443 }, starts: Mutex::new(Vec::new()) }
    }

    fn write(&self) {
        self.starts.lock().expect("no test thread panics").push(Instant::now());
        std::thread::sleep(PER_WRITE);
    }

    fn starts(&self) -> Vec<Instant> {
        self.starts.lock().expect("no test thread panics").clone()
    }
}

impl Lxd for SlowLxd {
    fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
    fn server(&mut self) -> Result<ServerInfo, LxdError> {
        Ok(ServerInfo::default())
    }
    fn members(&mut self) -> Result<Vec<Member>, LxdError> {
        Ok(Vec::new())
    }
    fn trust_store(&mut self) -> Result<Vec<TrustEntry>, LxdError> {
        Ok(Vec::new())
    }
    fn current_identity(&mut self) -> Result<Identity, LxdError> {
        Ok(Identity::default())
    }
    fn add_trust(&mut self, _: &NewTrustEntry) -> Result<AddOutcome, LxdError> {
        self.write();
        Ok(AddOutcome::Added)
    }
    fn remove_trust(&mut self, _: &str) -> Result<(), LxdError> {
        self.write();
        Ok(())
    }
    fn restrict_trust(&mut self, _: &str, _: Option<&[String]>) -> Result<(), LxdError> {
        self.write();
        Ok(())
    }
    fn rename_trust(&mut self, _: &str, _: &str) -> Result<(), LxdError> {
        self.write();
        Ok(())
    }
    fn add_trust_all(&mut self, entries: &[NewTrustEntry], until: Instant) -> Vec<Result<AddOutcome, LxdError>> {
        let me = &*self;
        start_before(entries, 4, until, |_| {
            me.write();
            Ok(AddOutcome::Added)
        })
    }
    fn remove_trust_all(&mut self, fingerprints: &[String], until: Instant) -> Vec<Result<(), LxdError>> {
        let me = &*self;
        start_before(fingerprints, 4, until, |_| {
            me.write();
            Ok(())
        })
    }
}

/// One `is-leader` call: just before it, just after it, and its answer.
#[derive(Debug, Clone, Copy)]
struct Answer {
    asked: Instant,
    answered: Instant,
    leader: bool,
}

/// The in-memory unit agent, with the time of every `is-leader` kept; it stops leading after
/// `lead_for` answers.
struct TimedAgent {
    agent: Agent,
    answers: Vec<Answer>,
    lead_for: usize,
}

impl TimedAgent {
    /// Leading, as the pass's own `is-leader` said at `confirmed`.
    fn leading(confirmed: Instant, lead_for: usize) -> TimedAgent {
        let answers = vec![Answer { asked: confirmed, answered: confirmed, leader: true }];
        TimedAgent { agent: Agent::leader(), answers, lead_for }
    }

    /// The last answer the unit had when a write started at `start`.
    fn last_answer_before(&self, start: Instant) -> Answer {
        *self.answers.iter().rev().find(|a| a.answered <= start).expect("the pass's own answer comes first")
    }
}

impl HookTools for TimedAgent {
    fn run(&mut self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError> {
        if tool == "is-leader" {
            self.agent.leader = self.answers.len() <= self.lead_for;
        }
        let asked = Instant::now();
        let out = self.agent.run(tool, args, stdin);
        if tool == "is-leader" {
            self.answers.push(Answer { asked, answered: Instant::now(), leader: self.agent.leader });
        }
        out
    }
}

fn owner() -> Owner {
    Owner { relation_id: 1, remote_app: "req".into(), unit: Some(0), interface: Interface::Lxd }
}

/// `adds` adds, `removes` removes, `restricts` re-restrictions.
fn plan(adds: usize, removes: usize, restricts: usize) -> Plan {
    let fp = |kind: u8, i: usize| format!("{kind:02x}{i:062x}");
    let add = (0..adds)
        .map(|i| Add { fingerprint: fp(1, i), name: format!("a{i}"), der: vec![1], owner: owner(), projects: None })
        .collect();
    let remove =
        (0..removes).map(|i| Remove { fingerprint: fp(2, i), name: format!("r{i}"), owner: owner() }).collect();
    let restrict = (0..restricts)
        .map(|i| Restrict { fingerprint: fp(3, i), owner: owner(), projects: Some(vec!["p".into()]) })
        .collect();
    Plan { add, remove, restrict }
}

fn apply_slowly(plan: &Plan, agent: &mut TimedAgent, guard: &mut WriteGuard) -> (Applied, Vec<Instant>) {
    let mut lxd = SlowLxd::new();
    let applied = apply(&mut Juju::new(agent), &mut lxd, plan, None, &[], guard).expect("no hook tool fails");
    (applied, lxd.starts())
}

#[test]
fn a_write_never_starts_more_than_the_window_after_the_last_is_leader_answer() {
    let started = Instant::now();
    let mut agent = TimedAgent::leading(started, usize::MAX);
    let mut guard = WriteGuard::new(started, started).with_window(WINDOW, RECHECK_AFTER);
    let plan = plan(24, 8, 2);
    let (applied, starts) = apply_slowly(&plan, &mut agent, &mut guard);

    assert_eq!((applied.changes.len(), applied.deferred, applied.stopped), (34, 0, None));
    assert_eq!(starts.len(), 34, "each change written once");
    for start in starts {
        let last = agent.last_answer_before(start);
        assert!(last.leader);
        let late = start.duration_since(last.asked);
        assert!(late <= WINDOW + SCHEDULING, "a write started {late:?} after the last is-leader answer");
    }
    // Each write outlasts the window: leadership was asked again inside batches, not only
    // between them (the adds are one batch).
    assert!(agent.answers.len() > 6, "{} answers", agent.answers.len());
}

#[test]
fn a_leader_that_loses_leadership_mid_batch_starts_no_write_after_the_answer() {
    let started = Instant::now();
    let mut agent = TimedAgent::leading(started, 2);
    let mut guard = WriteGuard::new(started, started).with_window(WINDOW, RECHECK_AFTER);
    let (applied, starts) = apply_slowly(&plan(40, 0, 0), &mut agent, &mut guard);

    assert_eq!(applied.stopped, Some(Stop::LostLeadership));
    assert_eq!(applied.deferred, 40 - starts.len());
    let lost = agent.answers.iter().find(|a| !a.leader).expect("asked until told").asked;
    assert!(starts.iter().all(|s| *s < lost), "no write starts once leadership is gone");
    assert!((4..40).contains(&starts.len()), "{} writes", starts.len());
}

#[test]
fn the_pass_deadline_ends_writing_inside_a_window() {
    let started = Instant::now();
    let mut agent = TimedAgent::leading(started, usize::MAX);
    let deadline = Duration::from_millis(200);
    let mut guard = WriteGuard::new(started, started)
        .with_window(Duration::from_secs(60), Duration::from_secs(30))
        .with_deadline(deadline);
    let (applied, starts) = apply_slowly(&plan(40, 0, 0), &mut agent, &mut guard);

    assert_eq!(applied.stopped, Some(Stop::Deadline));
    assert!(starts.iter().all(|s| s.duration_since(started) <= deadline + SCHEDULING));
    assert_eq!(applied.deferred, 40 - starts.len());
    assert_eq!(agent.answers.len(), 1, "a fresh answer is not asked again");
}

/// Applies `op` to `items` with up to `at_once` calls running, starting none at or after
/// `until`; the answers are those of the items started, which are always the first ones, in
/// order, as `HttpLxd::spread` promises: the parallel writers' half of "no write starts after
/// the leader's window".
fn start_before<T: Sync, R: Send>(items: &[T], at_once: usize, until: Instant, op: impl Fn(&T) -> R + Sync) -> Vec<R> {
    // The clock is read and the next item taken under one lock: once a worker finds the window
    // closed no later item starts, so what started is a prefix and the caller knows the rest.
    let next = Mutex::new(Some(0usize));
    let take = || {
        let mut next = next.lock().unwrap_or_else(PoisonError::into_inner);
        let i = (*next)?;
        let open = Instant::now() < until;
        let item = items.get(i).filter(|_| open);
        *next = item.map(|_| i + 1);
        item.map(|item| (i, item))
    };
    let run = || std::iter::from_fn(take).map(|(i, item)| (i, op(item))).collect::<Vec<_>>();
    let workers = items.len().min(at_once);
    if workers <= 1 {
        return run().into_iter().map(|(_, r)| r).collect();
    }
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(run)).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
