//! The one pass every hook runs:
//! credentials → connect → observe LXD → desired trust → apply (leader) → publish → status.
//!
//! It is idempotent and keeps no state that matters: LXD's trust store (entry names carry their
//! owner) and the relation databags are the record. The unit's state store only caches what
//! saves hook-tool calls (last status, known member endpoints, last logged problems).

use crate::certs;
use crate::credentials::{self, Credentials};
use crate::endpoint::Endpoint;
use crate::hook_tools::{ConnectionInputs, Juju, LogLevel, RelationInputs, ToolError};
use crate::lxd::{Connection, Connector, Lxd, LxdError, Member, ServerInfo, TrustEntry};
use crate::ownership::{Owner, Scope};
use crate::plan::{self, Plan};
use crate::relation::{self, Databag, RelationView};
use crate::requests::{self, MemberProblems, Protected, Request};
use crate::status::{self, Status, Summary};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

mod apply;
pub use apply::ChangeKind;
use apply::WriteGuard;

/// The config option that restricts every added entry to some LXD projects.
pub const OPT_TRUST_PROJECTS: &str = "trust-projects";
/// The LXD API extension that makes `restricted`/`projects` mean something.
pub const EXT_CERTIFICATE_PROJECT: &str = "certificate_project";

const STATE_STATUS: &str = "status";
const STATE_ENDPOINTS: &str = "known-endpoints";
const STATE_PROBLEMS: &str = "logged-problems";
const STATE_VERSION: &str = "app-version";
const STATE_LEAVING: &str = "leaving";

/// Who and where this hook runs, from Juju's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookContext {
    /// The hook name (`update-status`), or the action name for actions.
    pub name: String,
    pub is_action: bool,
    pub unit: String,
    pub model_uuid: String,
    pub relation_id: Option<u32>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
}

impl HookContext {
    pub fn app(&self) -> &str {
        self.unit.split('/').next().unwrap_or(&self.unit)
    }

    fn is_hook(&self, name: &str) -> bool {
        !self.is_action && self.name == name
    }
}

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

/// Everything a pass learned and did; actions report from it.
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
    pub plan: Plan,
    pub changes: Vec<Change>,
    /// Fingerprints LXD holds after the pass.
    pub in_store: BTreeSet<String>,
    pub refusal: Option<String>,
    /// Trusted certificates left out of the relation data, which would have outgrown its bound.
    pub withheld: usize,
    /// Planned changes left for a later hook (deadline or leadership).
    pub deferred: usize,
    pub status: Option<Status>,
    pub error: Option<String>,
}

/// Runs the pass. Expected faults (no credentials, LXD down, bad relation data) end in a status,
/// not an error; an `Err` means a hook tool itself failed, and Juju should retry the hook.
pub fn run(ctx: &HookContext, juju: &mut Juju, connector: &dyn Connector, mode: Mode) -> Result<Report, ToolError> {
    let started = Instant::now();
    let mut report = Report::default();
    let ConnectionInputs { credentials: answer, config, state } = juju.connection_inputs()?;
    let mut new_state = state.clone();

    // A unit being removed sees its own name as the departing unit; from then on it must not
    // act on LXD, or a departing leader would withdraw every certificate on its way out.
    let leaving = state.contains_key(STATE_LEAVING)
        || (ctx.is_hook("api-relation-departed") && ctx.departing_unit.as_deref() == Some(ctx.unit.as_str()));
    if leaving {
        new_state.insert(STATE_LEAVING.into(), "true".into());
    }

    let (creds, note) = credentials::resolve(&answer, &config);
    if let Some(note) = note {
        log_once(juju, &state, &mut new_state, "note", LogLevel::Info, &[note])?;
    }
    let creds = match creds.and_then(|c| credentials::check_validity(&c, certs::now_unix()).map(|()| c)) {
        Ok(c) => c,
        Err(problem) => {
            report.leader = juju.is_leader()?;
            let st = status::credentials(&problem);
            report.error = Some(problem.to_string());
            return finish(juju, mode, report, st, &state, new_state);
        }
    };
    report.credentials = Some(creds.clone());

    // LXD is observed on its own thread, started as soon as the credentials are known, while
    // leadership and the relations are read: a hook costs the longer of the two, not their sum.
    let known: Vec<String> = state.get(STATE_ENDPOINTS).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let leadership_asked = Instant::now();
    let (connected, read) = std::thread::scope(|s| {
        let observer = s.spawn(|| connect(&creds, &known, connector));
        let read = juju.relation_inputs(relation::ENDPOINT).and_then(|RelationInputs { leader, relation_ids }| {
            let own = OwnBags { unit: mode.publish, app: mode.publish && leader && !leaving };
            Ok((leader, read_relations(ctx, juju, &relation_ids, own)?))
        });
        (observer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), read)
    });
    let (leader, Relations { views: relations, ours }) = read?;
    let mut guard = WriteGuard::new(started, leadership_asked);
    report.leader = leader;
    let writer = leader && !leaving;
    let collected = requests::collect(&relations, certs::now_unix(), &protected(&creds));
    report.requests = collected.requests;
    report.problems = collected.problems;
    let problem_lines: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
    log_once(juju, &state, &mut new_state, STATE_PROBLEMS, LogLevel::Warning, &problem_lines)?;

    let (mut lxd, Observed { server, members, store }) = match connected {
        Ok(pair) => pair,
        Err((error, tried)) => {
            let st = status::connection(&error, tried);
            juju_log_change(juju, &state, &st, &error.to_string())?;
            report.error = Some(error.to_string());
            return finish(juju, mode, report, st, &state, new_state);
        }
    };
    report.endpoint_used = Some(lxd.endpoint().clone());
    report.server = Some(server.clone());
    report.members = members;
    report.store = store;

    let scope = Scope { model_uuid: ctx.model_uuid.clone(), app: ctx.app().to_string() };
    let projects = config.get(OPT_TRUST_PROJECTS).and_then(|v| v.as_str()).and_then(plan::parse_projects);
    let mut planned = plan::plan(&scope, &report.requests, &report.store, projects.as_deref());
    if projects.is_some() && !server.api_extensions.iter().any(|e| e == EXT_CERTIFICATE_PROJECT) {
        // LXD 4.0 would store the certificate unrestricted: never grant more than asked.
        report.refusal = Some(format!("LXD lacks {EXT_CERTIFICATE_PROJECT}; cannot honour trust-projects (unset it or upgrade LXD)"));
        planned.add.clear();
        planned.restrict.clear();
    }
    report.in_store = report.store.iter().map(|e| e.fingerprint.clone()).collect();
    if writer && mode.apply {
        let applied = apply::apply(juju, lxd.as_mut(), &planned, projects.as_deref(), &report.store, &mut guard)?;
        for c in applied.changes.iter().filter(|c| c.error.is_none()) {
            match c.kind {
                ChangeKind::Add => report.in_store.insert(c.fingerprint.clone()),
                ChangeKind::Remove => report.in_store.remove(&c.fingerprint),
                ChangeKind::Restrict => false,
            };
        }
        report.deferred = applied.deferred;
        report.refusal = report.refusal.take().or(applied.unknown_project);
        report.changes = applied.changes;
    } else {
        report.changes = planned_changes(&planned);
    }
    report.plan = planned;
    let elsewhere = plan::held_elsewhere(&scope, &report.requests, &report.store, projects.as_deref());
    for fp in &elsewhere.not_as_configured {
        report.in_store.remove(fp);
    }

    // The member that just answered every read is up, whatever the cluster database says of it
    // (a busy or re-electing cluster can briefly report every member offline); listing it
    // keeps requirers from seeing an empty cluster that is in fact serving them.
    let answering = lxd.endpoint().url();
    let online: relation::OnlineMembers = report
        .members
        .iter()
        .filter(|m| m.status == "Online" || Endpoint::parse(&m.url).map(|e| e.url()).as_deref() == Ok(answering.as_str()))
        .map(|m| (m.name.clone(), m.url.clone()))
        .collect();
    if mode.publish {
        // The pin this pass just connected with: requirers authenticate LXD with it.
        let pin = relation::ServerPin::from_pinned(&creds.tls.server_cert_pem);
        for rel in &relations {
            let payload = relation::payload(rel.id, &online, &report.requests, &report.in_store, pin.as_ref());
            report.withheld += payload.withheld;
            publish(juju, rel.id, false, ours.get(&(rel.id, false)), &payload.bag)?;
            if writer {
                publish(juju, rel.id, true, ours.get(&(rel.id, true)), &payload.bag)?;
            }
        }
        // Remember every member so the next hook can fail over if the configured one is down.
        let urls: Vec<&String> = report.members.iter().map(|m| &m.url).collect();
        new_state.insert(STATE_ENDPOINTS.into(), serde_json::to_string(&urls).unwrap_or_default());
        let version = if server.server_version.is_empty() { "unknown" } else { server.server_version.as_str() };
        if state.get(STATE_VERSION).map(String::as_str) != Some(version) {
            juju.application_version_set(version)?;
            new_state.insert(STATE_VERSION.into(), version.into());
        }
    }

    let mut bad_from: Vec<String> = report.problems.iter().map(|p| p.owner.member()).collect();
    bad_from.dedup();
    let summary = Summary {
        leader: writer,
        online: online.len(),
        members: report.members.len(),
        trusted: report.requests.iter().map(|r| &r.cert.fingerprint).filter(|fp| report.in_store.contains(*fp)).collect::<BTreeSet<_>>().len(),
        bad_input_from: bad_from,
        failed_changes: report.changes.iter().filter(|c| c.error.is_some()).count(),
        deferred: report.deferred,
        withheld: report.withheld,
        held_elsewhere: elsewhere.count,
        refusal: report.refusal.clone(),
    };
    let st = if leaving { Status { kind: status::Kind::Maintenance, message: "unit is leaving; LXD left as it is".into() } } else { status::ready(&summary) };
    finish(juju, mode, report, st, &state, new_state)
}

/// Which of this unit's own databags to read along with the remote ones (to diff before
/// publishing). Only the leader may read its application's bag.
#[derive(Debug, Clone, Copy)]
struct OwnBags {
    unit: bool,
    app: bool,
}

/// The live relations, and what this unit last published on them (relation id, is-app).
struct Relations {
    views: Vec<RelationView>,
    ours: BTreeMap<(u32, bool), Databag>,
}

/// Whose databag a read is for.
enum Bag {
    RemoteUnit(String),
    RemoteApp,
    Own { app: bool },
}

/// Reads every live `api` relation: the breaking one and departing units are left out. Reads
/// that do not depend on each other go out together: all unit lists, then all databags.
fn read_relations(ctx: &HookContext, juju: &mut Juju, ids: &[u32], own: OwnBags) -> Result<Relations, ToolError> {
    let breaking = if ctx.is_hook("api-relation-broken") { ctx.relation_id } else { None };
    let ids: Vec<u32> = ids.iter().copied().filter(|id| Some(*id) != breaking).collect();
    let lists = juju.relation_lists(&ids)?;
    let mut views = Vec::new();
    // Side by side: whose bag each read is for (relation index, whose), and the read itself.
    let mut whose: Vec<(usize, Bag)> = Vec::new();
    let mut reads: Vec<(u32, String, bool)> = Vec::new();
    for (i, (id, units)) in ids.into_iter().zip(lists).enumerate() {
        let units: Vec<String> = units.into_iter().filter(|u| ctx.departing_unit.as_deref() != Some(u.as_str())).collect();
        let remote_app = match units.first() {
            Some(u) => u.split('/').next().map(String::from),
            None if ctx.relation_id == Some(id) => ctx.remote_app.clone(),
            None => juju.relation_list_app(id)?,
        };
        for unit in units {
            whose.push((i, Bag::RemoteUnit(unit.clone())));
            reads.push((id, unit, false));
        }
        if let Some(app) = remote_app.as_ref().filter(|a| !a.is_empty()) {
            whose.push((i, Bag::RemoteApp));
            reads.push((id, app.clone(), true));
        }
        if own.unit {
            whose.push((i, Bag::Own { app: false }));
            reads.push((id, ctx.unit.clone(), false));
        }
        if own.app {
            whose.push((i, Bag::Own { app: true }));
            reads.push((id, ctx.app().to_string(), true));
        }
        views.push(RelationView { id, remote_app: remote_app.unwrap_or_default(), ..Default::default() });
    }
    let bags = juju.relation_gets(&reads)?;
    let mut ours = BTreeMap::new();
    for ((i, whose), bag) in whose.into_iter().zip(bags) {
        let Some(view) = views.get_mut(i) else { continue };
        match whose {
            Bag::RemoteUnit(unit) => {
                view.units.insert(unit, bag);
            }
            Bag::RemoteApp => view.app_data = bag,
            Bag::Own { app } => {
                ours.insert((view.id, app), bag);
            }
        }
    }
    Ok(Relations { views, ours })
}

/// What one member told us: the server, the members, the trust store.
struct Observed {
    server: ServerInfo,
    members: Vec<Member>,
    store: Vec<TrustEntry>,
}

/// Tries the configured endpoint, then every member seen before: all present the same cluster
/// certificate, so the pin holds for each. Only "unreachable" moves on to the next one; any
/// other answer is the truth about these credentials. A member counts as reachable only once
/// it has answered every read of the pass: one that answers `GET /1.0` and then drops (dies
/// mid-hook, a proxy cuts the connection) is skipped like one that never answered.
fn connect(creds: &Credentials, known: &[String], connector: &dyn Connector) -> Result<(Connection, Observed), (LxdError, usize)> {
    let mut candidates = vec![creds.endpoint.clone()];
    for url in known {
        if let Ok(ep) = Endpoint::parse(url) {
            if !candidates.contains(&ep) {
                candidates.push(ep);
            }
        }
    }
    let mut first_error = None;
    for (tried, ep) in candidates.iter().enumerate() {
        let attempt = connector.connect(ep, &creds.tls).and_then(|mut lxd| {
            let server = lxd.server()?;
            if !server.trusted {
                return Err(LxdError::Untrusted { endpoint: ep.url() });
            }
            let members = observe(lxd.as_mut(), &server)?;
            let store = lxd.trust_store()?;
            Ok((lxd, Observed { server, members, store }))
        });
        match attempt {
            Ok(pair) => return Ok(pair),
            Err(e @ LxdError::Unreachable { .. }) => {
                first_error.get_or_insert(e);
            }
            Err(e) => return Err((e, tried + 1)),
        }
    }
    let fallback = LxdError::Unreachable { endpoint: creds.endpoint.url(), detail: "no endpoint".into() };
    Err((first_error.unwrap_or(fallback), candidates.len()))
}

fn observe(lxd: &mut dyn Lxd, server: &ServerInfo) -> Result<Vec<Member>, LxdError> {
    if server.clustered {
        return lxd.members();
    }
    // A standalone server has no member list (LXD answers 500); it is its own only member.
    Ok(vec![Member { name: server.server_name.clone(), url: lxd.endpoint().url(), status: "Online".into(), message: String::new() }])
}

fn planned_changes(plan: &Plan) -> Vec<Change> {
    let change = |kind, fingerprint: &String, owner: &Owner| Change {
        kind,
        fingerprint: fingerprint.clone(),
        owner: owner.clone(),
        error: None,
        already_present: false,
    };
    let add = plan.add.iter().map(|a| change(ChangeKind::Add, &a.fingerprint, &a.owner));
    let rm = plan.remove.iter().map(|r| change(ChangeKind::Remove, &r.fingerprint, &r.owner));
    let rs = plan.restrict.iter().map(|r| change(ChangeKind::Restrict, &r.fingerprint, &r.owner));
    add.chain(rm).chain(rs).collect()
}

/// Writes only the keys that differ from what the databag held when the pass read it.
fn publish(juju: &mut Juju, rel: u32, app: bool, have: Option<&Databag>, want: &Databag) -> Result<(), ToolError> {
    let empty = Databag::new();
    let diff = relation::changed_keys(have.unwrap_or(&empty), want);
    if diff.is_empty() {
        return Ok(());
    }
    juju.relation_set(rel, app, &diff)
}

/// Logs `text` at `level` only when it differs from what was logged last time under `key`,
/// so a requirer's garbage is reported once, not every five minutes.
fn log_once(
    juju: &mut Juju,
    state: &BTreeMap<String, String>,
    new_state: &mut BTreeMap<String, String>,
    key: &str,
    level: LogLevel,
    lines: &[String],
) -> Result<(), ToolError> {
    let digest = if lines.is_empty() { String::new() } else { certs::fingerprint(lines.join("\n").as_bytes()) };
    if state.get(key).map(String::as_str).unwrap_or("") == digest {
        return Ok(());
    }
    juju.log_lines(level, lines)?;
    new_state.insert(key.into(), digest);
    Ok(())
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

/// Logs a failure when the status it leads to is new.
fn juju_log_change(juju: &mut Juju, state: &BTreeMap<String, String>, st: &Status, detail: &str) -> Result<(), ToolError> {
    if state.get(STATE_STATUS) != Some(&status_key(st)) {
        let level = if st.kind == status::Kind::Blocked { LogLevel::Error } else { LogLevel::Warning };
        juju.log(level, detail)?;
    }
    Ok(())
}

fn status_key(st: &Status) -> String {
    format!("{}:{}", st.kind.as_str(), st.message)
}

fn finish(
    juju: &mut Juju,
    mode: Mode,
    mut report: Report,
    st: Status,
    state: &BTreeMap<String, String>,
    mut new_state: BTreeMap<String, String>,
) -> Result<Report, ToolError> {
    if mode.publish {
        let key = status_key(&st);
        if state.get(STATE_STATUS) != Some(&key) {
            juju.status_set(st.kind.as_str(), &st.message)?;
            new_state.insert(STATE_STATUS.into(), key);
        }
        let changed: BTreeMap<String, String> = new_state.into_iter().filter(|(k, v)| state.get(k) != Some(v)).collect();
        if !changed.is_empty() {
            juju.state_set(&changed)?;
        }
    }
    report.status = Some(st);
    Ok(report)
}

#[cfg(test)]
mod tests;
