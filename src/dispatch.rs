//! Entry point: which hook or action Juju is running, from `JUJU_DISPATCH_PATH` (Juju >= 2.8
//! runs `dispatch`) or from the name this binary was started as (`hooks/<name>` symlinks).

use crate::hook_tools::{Juju, LogLevel, ProcessTools};
use crate::lxd::client::HttpConnector;
use crate::reconcile::{self, Mode};

use crate::context::Hook;
pub use crate::context::HookContext;

/// Hooks that run the reconcile. `stop` and `remove` are deliberately quiet: the relations are
/// torn down before them (and their departed/broken hooks already reconciled), and a unit on
/// its way out must not change LXD for the units that stay.
pub const RECONCILE_HOOKS: &[&str] = &[
    "install",
    "start",
    "config-changed",
    "upgrade-charm",
    "update-status",
    "leader-elected",
    "leader-settings-changed",
    // A new revision of the credentials secret: read it with --refresh and reconcile.
    "secret-changed",
    "api-relation-created",
    "api-relation-joined",
    "api-relation-changed",
    "api-relation-departed",
    "api-relation-broken",
    "https-relation-created",
    "https-relation-joined",
    "https-relation-changed",
    "https-relation-departed",
    "https-relation-broken",
];
pub const QUIET_HOOKS: &[&str] = &["stop", "remove"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Invocation {
    Hook(String),
    Action(String),
}

/// `hooks/x` / `actions/x` from the dispatch path, else the basename of `argv[0]`.
pub(crate) fn invocation(dispatch_path: Option<&str>, argv0: &str) -> Option<Invocation> {
    let path = dispatch_path.filter(|p| !p.is_empty()).unwrap_or(argv0);
    let mut parts = path.rsplit('/');
    let name = parts.next().filter(|n| !n.is_empty())?.to_string();
    match parts.next() {
        Some("actions") => Some(Invocation::Action(name)),
        _ if name == "dispatch" => None,
        _ => Some(Invocation::Hook(name)),
    }
}

pub(crate) fn context_from_env(invocation: &Invocation, env: impl Fn(&str) -> Option<String>) -> HookContext {
    let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    let (name, is_action) = match invocation {
        Invocation::Hook(h) => (h.clone(), false),
        Invocation::Action(a) => (a.clone(), true),
    };
    HookContext {
        name,
        is_action,
        unit: nonempty("JUJU_UNIT_NAME").unwrap_or_default(),
        model_uuid: nonempty("JUJU_MODEL_UUID").unwrap_or_default(),
        relation_id: nonempty("JUJU_RELATION_ID").and_then(|r| crate::hook_tools::parse_relation_id(&r)),
        remote_app: nonempty("JUJU_REMOTE_APP"),
        remote_unit: nonempty("JUJU_REMOTE_UNIT"),
        departing_unit: nonempty("JUJU_DEPARTING_UNIT"),
    }
}

pub fn main() -> i32 {
    // The timeline's ends (bench/src/profile.rs measures every mark from `main`).
    crate::timeline::mark("main");
    let code = run();
    crate::timeline::mark("exit");
    code
}

fn run() -> i32 {
    let argv0 = std::env::args().next().unwrap_or_default();
    let dispatch_path = std::env::var("JUJU_DISPATCH_PATH").ok();
    let Some(inv) = invocation(dispatch_path.as_deref(), &argv0) else {
        eprintln!("lxd-integrator: run me as a Juju hook or action (JUJU_DISPATCH_PATH is not set)");
        return 2;
    };
    let ctx = context_from_env(&inv, |k| std::env::var(k).ok());
    let mut tools = ProcessTools;
    let mut juju = Juju::new(&mut tools);
    let connector = HttpConnector::default();
    // Before the pass, and whatever it then does: the Python charm's key files go even when
    // LXD is down or the credentials are missing.
    if ctx.hook().is_some_and(|h| crate::legacy::CLEAN_ON.contains(&h))
        && let Some(dir) = std::env::var_os("JUJU_CHARM_DIR").filter(|d| !d.is_empty())
    {
        crate::legacy::clean(&mut juju, std::path::Path::new(&dir));
    }
    let result = match ctx.hook() {
        None => crate::actions::run(&ctx, &mut juju, &connector),
        Some(hook) if hook.reconciles() => {
            reconcile::run(&ctx, &mut juju, &connector, Mode::HOOK).map(drop).map_err(anyhow::Error::from)
        }
        Some(Hook::Stop | Hook::Remove) => Ok(()),
        Some(_) => juju
            .log(LogLevel::Debug, &format!("hook {} is not used by this charm", ctx.name))
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            // stderr reaches the Juju log at WARNING; the non-zero exit makes Juju retry.
            eprintln!("lxd-integrator: {}: {e:#}", ctx.name);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RelationEvent;
    use crate::ownership::Interface;

    #[test]
    fn the_dispatch_path_wins_over_argv0() {
        assert_eq!(
            invocation(Some("hooks/install"), "/var/lib/juju/agents/unit-x-0/charm/dispatch"),
            Some(Invocation::Hook("install".into()))
        );
        assert_eq!(invocation(Some("actions/list-nodes"), "./dispatch"), Some(Invocation::Action("list-nodes".into())));
    }

    #[test]
    fn symlinked_hooks_and_actions_are_named_by_argv0() {
        assert_eq!(
            invocation(None, "/charm/hooks/api-relation-changed"),
            Some(Invocation::Hook("api-relation-changed".into()))
        );
        assert_eq!(invocation(Some(""), "/charm/actions/reconcile"), Some(Invocation::Action("reconcile".into())));
    }

    #[test]
    fn dispatch_without_a_path_is_not_a_hook() {
        assert_eq!(invocation(None, "/charm/dispatch"), None);
        assert_eq!(invocation(None, ""), None);
    }

    #[test]
    fn relation_hooks_are_known_by_endpoint_and_kind() {
        let hook = |name: &str| HookContext { name: name.into(), ..Default::default() };
        assert_eq!(hook("https-relation-broken").relation_hook(), Some((Interface::LxdHttps, RelationEvent::Broken)));
        assert_eq!(hook("api-relation-departed").relation_hook(), Some((Interface::Lxd, RelationEvent::Departed)));
        assert!(hook("https-relation-departed").is_relation_hook(RelationEvent::Departed));
        assert_eq!(hook("metrics-relation-broken").relation_hook(), None, "not an endpoint of this charm");
        assert_eq!(hook("update-status").relation_hook(), None);
        assert_eq!(HookContext { is_action: true, ..hook("api-relation-broken") }.relation_hook(), None);
    }

    #[test]
    fn the_hooks_linked_to_dispatch_are_the_hooks_that_reconcile() {
        assert_eq!(RECONCILE_HOOKS.iter().map(|h| h.to_string()).collect::<Vec<_>>(), Hook::reconciling_names());
        assert!(QUIET_HOOKS.iter().all(|h| !Hook::parse(h).reconciles()));
    }

    #[test]
    fn context_reads_juju_variables() {
        let env = |k: &str| {
            Some(
                match k {
                    "JUJU_UNIT_NAME" => "lxd-integrator/1",
                    "JUJU_MODEL_UUID" => "uuid",
                    "JUJU_RELATION_ID" => "api:4",
                    "JUJU_REMOTE_APP" => "req",
                    "JUJU_REMOTE_UNIT" => "req/2",
                    "JUJU_DEPARTING_UNIT" => "",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let ctx = context_from_env(&Invocation::Hook("api-relation-departed".into()), env);
        assert_eq!(ctx.app(), "lxd-integrator");
        assert_eq!(ctx.relation_id, Some(4));
        assert_eq!(ctx.remote_app.as_deref(), Some("req"));
        assert_eq!(ctx.remote_unit.as_deref(), Some("req/2"));
        assert_eq!(ctx.departing_unit, None);
    }
}
