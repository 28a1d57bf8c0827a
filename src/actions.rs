//! Operator actions. Each runs the same observation as a hook and reports through `action-set`
//! with keys Juju accepts (lowercase, digits, `-`, `.`), readable in `juju run` output.

use crate::certs::short_fp;
use crate::context::{Action, HookContext};
use crate::endpoint::Endpoint;
use crate::hook_tools::Juju;
use crate::limits;
use crate::lxd::Connector;
use crate::lxd::TrustEntry;
use crate::ownership::Scope;
use crate::reconcile::{self, Change, ChangeKind, EXT_CERTIFICATE_PROJECT, Mode, Report, TrustAccess};
use anyhow::Context as _;
use std::collections::BTreeMap;

/// API extensions the charm relies on: clustering to enumerate members, certificate_project
/// for `trust-projects`.
pub(crate) const NEEDED_EXTENSIONS: &[&str] = &["clustering", EXT_CERTIFICATE_PROJECT];

/// Every action this charm implements, by name (actions.yaml declares the same).
pub const ACTIONS: &[&str] = &["list-nodes", "list-trusted-clients", "reconcile", "check-connection", "adopt"];

type Results = Vec<(String, String)>;

pub fn run(ctx: &HookContext, juju: &mut Juju, connector: &dyn Connector) -> anyhow::Result<()> {
    let params = juju.action_get().context("reading action parameters")?;
    let action = ctx.action().unwrap_or(Action::Unknown);
    if action == Action::Adopt {
        return crate::adopt::run(ctx, juju, connector, &params).map_err(anyhow::Error::from);
    }
    let dry_run = params.get("dry-run").and_then(|v| v.as_bool()).unwrap_or(false);
    let mode = match action {
        Action::Reconcile if !dry_run => {
            if !juju.is_leader()? {
                juju.action_fail("only the leader changes LXD trust; run this action on the leader unit")?;
                return Ok(());
            }
            Mode::HOOK
        }
        Action::ListNodes | Action::ListTrustedClients | Action::CheckConnection | Action::Reconcile => Mode::DRY_RUN,
        Action::Adopt | Action::Unknown => {
            juju.action_fail(&format!("unknown action {:?}", limits::cut(&ctx.name, 64)))?;
            return Ok(());
        }
    };
    let report = reconcile::run(ctx, juju, connector, mode)?;
    if action == Action::CheckConnection {
        // Reports a failed connection as its result rather than failing the action.
        juju.action_set(&check_connection(&report))?;
        return Ok(());
    }
    if let Some(error) = &report.error {
        let message = report.status.as_ref().map(|s| s.message.clone()).unwrap_or_else(|| error.to_string());
        juju.action_fail(&message)?;
        return Ok(());
    }
    let results = match action {
        Action::ListNodes => list_nodes(&report),
        Action::ListTrustedClients => list_trusted_clients(&report, &ctx.scope()),
        _ => reconcile_results(&report, dry_run),
    };
    juju.action_set(&results)?;
    Ok(())
}

fn yes(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

pub(crate) fn list_nodes(report: &Report) -> Results {
    let mut out = vec![("count".to_string(), report.members.len().to_string())];
    for (i, m) in report.members.iter().enumerate() {
        let k = format!("nodes.{i}");
        out.push((format!("{k}.name"), m.name.clone()));
        out.push((format!("{k}.endpoint"), m.url.clone()));
        out.push((format!("{k}.status"), m.status.to_string()));
        out.push((format!("{k}.message"), m.message.clone()));
        let published = report.endpoint_used.as_ref().is_some_and(|answering| reconcile::is_published(m, answering));
        out.push((format!("{k}.published"), yes(published)));
        // As `https` requirers get it in `addresses` (`api` ones get `endpoint`).
        if let Ok(ep) = Endpoint::parse(&m.url) {
            out.push((format!("{k}.address"), ep.authority()));
        }
    }
    out
}

pub(crate) fn list_trusted_clients(report: &Report, scope: &Scope) -> Results {
    let mut out = Vec::new();
    let owned: Vec<_> = report.store.iter().filter_map(|e| scope.owner_of(&e.name).map(|o| (e, o))).collect();
    out.push(("count".to_string(), owned.len().to_string()));
    // Each list stops at `limits::ACTION_ITEMS`; its count says how many there are in all.
    for (i, (entry, owner)) in owned.iter().take(limits::ACTION_ITEMS).enumerate() {
        let k = format!("clients.{i}");
        out.push((format!("{k}.fingerprint"), entry.fingerprint.clone()));
        out.push((format!("{k}.name"), entry.name.clone()));
        out.push((format!("{k}.relation"), owner.relation_id.to_string()));
        out.push((format!("{k}.endpoint"), owner.interface.endpoint().to_string()));
        out.push((format!("{k}.unit"), owner.member()));
        out.push((format!("{k}.restricted"), yes(entry.restricted)));
        out.push((format!("{k}.projects"), entry.projects.join(",")));
    }
    let by_fp: BTreeMap<&String, &TrustEntry> = report.store.iter().map(|e| (&e.fingerprint, e)).collect();
    let missing: Vec<_> = report.requests.iter().filter(|r| !by_fp.contains_key(&r.cert.fingerprint)).collect();
    if !missing.is_empty() {
        out.push(("missing.count".into(), missing.len().to_string()));
    }
    for (i, req) in missing.iter().take(limits::ACTION_ITEMS).enumerate() {
        let k = format!("missing.{i}");
        let why =
            if report.leader { "not added yet; see debug-log for LXD's answer" } else { "this unit is not the leader" };
        out.push((format!("{k}.fingerprint"), req.cert.fingerprint.clone()));
        out.push((format!("{k}.unit"), req.owner.member()));
        out.push((format!("{k}.endpoint"), req.owner.interface.endpoint().to_string()));
        if let Some(projects) = &req.projects {
            // Plain project names only: what a requirer asked and trust-projects allowed.
            out.push((format!("{k}.projects"), projects.join(",")));
        }
        out.push((format!("{k}.reason"), report.refusal.clone().unwrap_or_else(|| why.into())));
    }
    out.extend(held_elsewhere_results(report, scope, &by_fp));
    if !report.problems.is_empty() {
        out.push(("invalid.count".into(), report.problems.len().to_string()));
    }
    for (i, p) in report.problems.iter().take(limits::ACTION_ITEMS).enumerate() {
        out.push((format!("invalid.{i}.unit"), p.owner.member()));
        out.push((format!("invalid.{i}.endpoint"), p.owner.interface.endpoint().to_string()));
        out.push((format!("invalid.{i}.reason"), p.to_string()));
    }
    out.extend(refused_results(report));
    out
}

/// Requested certificates LXD already trusts under an entry this application did not make: the
/// charm leaves such entries alone, so the operator should know whose grant is in force.
fn held_elsewhere_results(report: &Report, scope: &Scope, by_fp: &BTreeMap<&String, &TrustEntry>) -> Results {
    let mut out = Vec::new();
    let elsewhere: Vec<_> = report
        .requests
        .iter()
        .filter_map(|r| by_fp.get(&r.cert.fingerprint).filter(|e| scope.owner_of(&e.name).is_none()).map(|e| (r, *e)))
        .collect();
    if !elsewhere.is_empty() {
        out.push(("held-elsewhere.count".into(), elsewhere.len().to_string()));
    }
    for (i, (req, entry)) in elsewhere.iter().take(limits::ACTION_ITEMS).enumerate() {
        let k = format!("held-elsewhere.{i}");
        out.push((format!("{k}.fingerprint"), req.cert.fingerprint.clone()));
        out.push((format!("{k}.unit"), req.owner.member()));
        out.push((format!("{k}.endpoint"), req.owner.interface.endpoint().to_string()));
        out.push((format!("{k}.entry"), limits::cut(&entry.name, 256).into_owned()));
        out.push((format!("{k}.restricted"), yes(entry.restricted)));
        out.push((format!("{k}.counted-as-granted"), yes(report.held.contains(&req.cert.fingerprint))));
    }
    out
}

/// Every certificate refused for the requirer that asked, as that requirer is told
/// (`refused`): fingerprint, who asked, the reason code.
fn refused_results(report: &Report) -> Results {
    let mut out = Vec::new();
    if !report.refused.is_empty() {
        out.push(("refused.count".into(), report.refused.len().to_string()));
    }
    for (i, r) in report.refused.iter().take(limits::ACTION_ITEMS).enumerate() {
        let k = format!("refused.{i}");
        out.push((format!("{k}.fingerprint"), r.fingerprint.clone()));
        out.push((format!("{k}.unit"), r.owner.member()));
        out.push((format!("{k}.relation"), r.owner.relation_id.to_string()));
        out.push((format!("{k}.endpoint"), r.owner.interface.endpoint().to_string()));
        out.push((format!("{k}.reason"), r.reason.code().to_string()));
    }
    out
}

pub(crate) fn reconcile_results(report: &Report, dry_run: bool) -> Results {
    let mut out = vec![("dry-run".to_string(), yes(dry_run))];
    for (kind, key) in
        [(ChangeKind::Add, "added"), (ChangeKind::Remove, "removed"), (ChangeKind::Restrict, "restricted")]
    {
        let changes: Vec<&Change> = report.changes.iter().filter(|c| c.kind == kind).collect();
        out.push((format!("{key}.count"), changes.len().to_string()));
        if !changes.is_empty() {
            out.push((format!("{key}.entries"), listed(changes.iter().map(|c| change_text(c)), changes.len())));
        }
    }
    if report.deferred > 0 {
        out.push(("deferred".into(), report.deferred.to_string()));
    }
    if let Some(st) = &report.status {
        out.push(("status".into(), format!("{}: {}", st.kind.as_str(), st.message)));
    }
    out
}

fn change_text(c: &Change) -> String {
    match &c.error {
        Some(e) => format!("{} ({}) failed: {e}", short_fp(&c.fingerprint), c.owner.who()),
        None => format!("{} ({})", short_fp(&c.fingerprint), c.owner.who()),
    }
}

/// Items joined with `; ` up to `limits::ACTION_VALUE_BYTES`, the rest counted: a value is
/// an argv entry of `action-set`.
fn listed(items: impl Iterator<Item = String>, total: usize) -> String {
    let mut out = String::new();
    for (shown, item) in items.enumerate() {
        if out.len() + item.len() + 64 > limits::ACTION_VALUE_BYTES {
            out.push_str(&format!("; … and {} more", total - shown));
            break;
        }
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&item);
    }
    out
}

pub(crate) fn check_connection(report: &Report) -> Results {
    let mut out = Vec::new();
    if let Some(c) = &report.credentials {
        out.push(("credentials".to_string(), c.source.to_string()));
        // What the operator set to get it, and what else is set but not used (names only).
        out.push(("credentials-setting".to_string(), c.source.setting().to_string()));
        if !c.ignored.is_empty() {
            let ignored: Vec<&str> = c.ignored.iter().map(|s| s.setting()).collect();
            out.push(("credentials-ignored".to_string(), ignored.join(", ")));
        }
        out.push(("configured-endpoint".to_string(), c.endpoint.url()));
    }
    if let Some(ep) = &report.endpoint_used {
        out.push(("endpoint".into(), ep.url()));
    }
    match &report.server {
        Some(s) => {
            out.push(("trusted".into(), yes(s.trusted)));
            // `lxd` or `incus`: they answer alike, and an operator should know which is there.
            out.push(("server".into(), s.kind.as_str().to_string()));
            out.push(("server-name".into(), s.server_name.clone()));
            out.push(("server-version".into(), s.server_version.clone()));
            out.push(("clustered".into(), yes(s.clustered)));
            let missing: Vec<&str> =
                NEEDED_EXTENSIONS.iter().copied().filter(|n| !s.api_extensions.iter().any(|e| e == n)).collect();
            out.push(("missing-extensions".into(), if missing.is_empty() { "none".into() } else { missing.join(",") }));
        }
        None => out.push(("trusted".into(), "unknown".into())),
    }
    // Requests named, not trusted: how many, and how many databags were unusable (the
    // details are list-trusted-clients').
    out.push(("refused".into(), report.refused.len().to_string()));
    out.push(("invalid".into(), report.problems.len().to_string()));
    if let Some(access) = &report.access {
        let (can, detail) = match access {
            TrustAccess::Full => ("yes", None),
            TrustAccess::Restricted => {
                ("no", Some("the credential is a certificate restricted to projects".to_string()))
            }
            TrustAccess::Missing(missing) => {
                out.push(("missing-permissions".into(), missing.join(",")));
                ("no", Some(format!("the identity lacks {} on the server", missing.join(", "))))
            }
            TrustAccess::Unknown(why) => ("unknown", Some(why.clone())),
        };
        out.push(("can-manage-trust".into(), can.into()));
        if let Some(detail) = detail {
            out.push(("trust-access".into(), limits::cut(&detail, 512).into_owned()));
        }
    }
    if let Some(e) = &report.error {
        out.push(("error".into(), e.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_implemented_has_its_name() {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names, ACTIONS);
    }
    use crate::lxd::{ServerInfo, ServerKind};

    fn value<'a>(results: &'a Results, key: &str) -> Option<&'a str> {
        results.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn check_connection_names_the_server_its_version_its_rights_and_missing_extensions() {
        let server = ServerInfo {
            trusted: true,
            api_extensions: vec!["clustering".into()],
            kind: ServerKind::Incus,
            server_version: "6.0.4".into(),
            ..Default::default()
        };
        let report = Report { server: Some(server), access: Some(TrustAccess::Full), ..Report::default() };
        let r = check_connection(&report);
        assert_eq!(value(&r, "server"), Some("incus"));
        assert_eq!(value(&r, "server-version"), Some("6.0.4"));
        assert_eq!(value(&r, "can-manage-trust"), Some("yes"));
        assert_eq!(value(&r, "trust-access"), None);
        assert_eq!(value(&r, "missing-extensions"), Some("certificate_project"));

        let lacking = TrustAccess::Missing(vec!["can_create_identities"]);
        let report = Report { access: Some(lacking), ..report };
        let r = check_connection(&report);
        assert_eq!(value(&r, "can-manage-trust"), Some("no"));
        assert_eq!(value(&r, "missing-permissions"), Some("can_create_identities"));
        assert!(value(&r, "trust-access").is_some_and(|t| t.contains("can_create_identities")));
        let report = Report { access: Some(TrustAccess::Unknown("not said".into())), ..report };
        assert_eq!(value(&check_connection(&report), "can-manage-trust"), Some("unknown"));
        // LXD not reached: nothing claimed.
        let r = check_connection(&Report::default());
        assert_eq!((value(&r, "trusted"), value(&r, "can-manage-trust")), (Some("unknown"), None));
    }
}
