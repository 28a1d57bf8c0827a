//! Operator actions. Each runs the same observation as a hook and reports through `action-set`
//! with keys Juju accepts (lowercase, digits, `-`, `.`), readable in `juju run` output.

use crate::certs::short_fp;
use crate::endpoint::Endpoint;
use crate::hook_tools::Juju;
use crate::lxd::Connector;
use crate::ownership::Scope;
use crate::reconcile::{self, EXT_CERTIFICATE_PROJECT, HookContext, Mode, Report};
use anyhow::Context as _;
use std::collections::BTreeSet;

/// API extensions the charm relies on: clustering to enumerate members, certificate_project
/// for `trust-projects`.
pub const NEEDED_EXTENSIONS: &[&str] = &["clustering", EXT_CERTIFICATE_PROJECT];

/// Every action this charm implements (actions.yaml declares the same).
pub const ACTIONS: &[&str] = &["list-nodes", "list-trusted-clients", "reconcile", "check-connection"];

type Results = Vec<(String, String)>;

pub fn run(ctx: &HookContext, juju: &mut Juju, connector: &dyn Connector) -> anyhow::Result<()> {
    let params = juju.action_get().context("reading action parameters")?;
    let dry_run = params.get("dry-run").and_then(|v| v.as_bool()).unwrap_or(false);
    let mode = match ctx.name.as_str() {
        "reconcile" if !dry_run => {
            if !juju.is_leader()? {
                juju.action_fail("only the leader changes LXD trust; run this action on the leader unit")?;
                return Ok(());
            }
            Mode::HOOK
        }
        "list-nodes" | "list-trusted-clients" | "check-connection" | "reconcile" => Mode::DRY_RUN,
        other => {
            juju.action_fail(&format!("unknown action {other:?}"))?;
            return Ok(());
        }
    };
    let report = reconcile::run(ctx, juju, connector, mode)?;
    if ctx.name == "check-connection" {
        // Reports a failed connection as its result rather than failing the action.
        juju.action_set(&check_connection(&report))?;
        return Ok(());
    }
    if let Some(error) = &report.error {
        let message = report.status.as_ref().map(|s| s.message.clone()).unwrap_or_else(|| error.clone());
        juju.action_fail(&message)?;
        return Ok(());
    }
    let scope = Scope { model_uuid: ctx.model_uuid.clone(), app: ctx.app().to_string() };
    let results = match ctx.name.as_str() {
        "list-nodes" => list_nodes(&report),
        "list-trusted-clients" => list_trusted_clients(&report, &scope),
        _ => reconcile_results(&report, dry_run),
    };
    juju.action_set(&results)?;
    Ok(())
}

fn yes(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

pub fn list_nodes(report: &Report) -> Results {
    let mut out = vec![("count".to_string(), report.members.len().to_string())];
    for (i, m) in report.members.iter().enumerate() {
        let k = format!("nodes.{i}");
        out.push((format!("{k}.name"), m.name.clone()));
        out.push((format!("{k}.endpoint"), m.url.clone()));
        out.push((format!("{k}.status"), m.status.clone()));
        out.push((format!("{k}.message"), m.message.clone()));
        let answering = report.endpoint_used.as_ref().is_some_and(|e| Endpoint::parse(&m.url).is_ok_and(|u| &u == e));
        out.push((format!("{k}.published"), yes(m.status == "Online" || answering)));
    }
    out
}

pub fn list_trusted_clients(report: &Report, scope: &Scope) -> Results {
    let mut out = Vec::new();
    let owned: Vec<_> = report.store.iter().filter_map(|e| scope.owner_of(&e.name).map(|o| (e, o))).collect();
    out.push(("count".to_string(), owned.len().to_string()));
    for (i, (entry, owner)) in owned.iter().enumerate() {
        let k = format!("clients.{i}");
        out.push((format!("{k}.fingerprint"), entry.fingerprint.clone()));
        out.push((format!("{k}.name"), entry.name.clone()));
        out.push((format!("{k}.relation"), owner.relation_id.to_string()));
        out.push((format!("{k}.unit"), owner.member()));
        out.push((format!("{k}.restricted"), yes(entry.restricted)));
        out.push((format!("{k}.projects"), entry.projects.join(",")));
    }
    let present: BTreeSet<&String> = report.store.iter().map(|e| &e.fingerprint).collect();
    let mut missing = 0;
    for req in report.requests.iter().filter(|r| !present.contains(&r.cert.fingerprint)) {
        let k = format!("missing.{missing}");
        missing += 1;
        let why = if report.leader { "not added yet; see debug-log for LXD's answer" } else { "this unit is not the leader" };
        out.push((format!("{k}.fingerprint"), req.cert.fingerprint.clone()));
        out.push((format!("{k}.unit"), req.owner.member()));
        out.push((format!("{k}.reason"), report.refusal.clone().unwrap_or_else(|| why.into())));
    }
    for (i, p) in report.problems.iter().enumerate() {
        out.push((format!("invalid.{i}.unit"), p.owner.member()));
        out.push((format!("invalid.{i}.reason"), p.to_string()));
    }
    out
}

pub fn reconcile_results(report: &Report, dry_run: bool) -> Results {
    let mut out = vec![("dry-run".to_string(), yes(dry_run))];
    for action in ["add", "remove", "restrict"] {
        let list: Vec<String> = report
            .changes
            .iter()
            .filter(|c| c.action == action)
            .map(|c| match &c.error {
                Some(e) => format!("{} ({}) failed: {e}", short_fp(&c.fingerprint), c.owner),
                None => format!("{} ({})", short_fp(&c.fingerprint), c.owner),
            })
            .collect();
        let key = match action {
            "add" => "added",
            "remove" => "removed",
            _ => "restricted",
        };
        out.push((format!("{key}.count"), list.len().to_string()));
        if !list.is_empty() {
            out.push((format!("{key}.entries"), list.join("; ")));
        }
    }
    if let Some(st) = &report.status {
        out.push(("status".into(), format!("{}: {}", st.kind.as_str(), st.message)));
    }
    out
}

pub fn check_connection(report: &Report) -> Results {
    let mut out = Vec::new();
    if let Some(c) = &report.credentials {
        out.push(("credentials".to_string(), c.source.to_string()));
        out.push(("configured-endpoint".to_string(), c.endpoint.url()));
    }
    if let Some(ep) = &report.endpoint_used {
        out.push(("endpoint".into(), ep.url()));
    }
    match &report.server {
        Some(s) => {
            out.push(("trusted".into(), yes(s.trusted)));
            out.push(("server-name".into(), s.server_name.clone()));
            out.push(("server-version".into(), s.server_version.clone()));
            out.push(("clustered".into(), yes(s.clustered)));
            let missing: Vec<&str> = NEEDED_EXTENSIONS.iter().copied().filter(|n| !s.api_extensions.iter().any(|e| e == n)).collect();
            out.push(("missing-extensions".into(), if missing.is_empty() { "none".into() } else { missing.join(",") }));
        }
        None => out.push(("trusted".into(), "unknown".into())),
    }
    if let Some(e) = &report.error {
        out.push(("error".into(), e.clone()));
    }
    out
}
