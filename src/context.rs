//! The plain data a hook starts from: which hook or action, which unit, model and relation,
//! and who is remote or departing. `dispatch` fills it in from Juju's environment; the pass
//! reads it.

use crate::ownership::{Interface, Scope, app_of};

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
    /// The remote unit a relation hook is about; none when a remote application's databag
    /// changed.
    pub remote_unit: Option<String>,
    pub departing_unit: Option<String>,
}

impl HookContext {
    pub(crate) fn app(&self) -> &str {
        app_of(&self.unit)
    }

    /// The trust entries this application owns: one model, one application.
    pub(crate) fn scope(&self) -> Scope {
        Scope { model_uuid: self.model_uuid.clone(), app: self.app().to_string() }
    }

    /// The hook Juju runs, typed; `None` for an action.
    pub(crate) fn hook(&self) -> Option<Hook> {
        (!self.is_action).then(|| Hook::parse(&self.name))
    }

    /// The action Juju runs, typed; `None` for a hook.
    pub(crate) fn action(&self) -> Option<Action> {
        self.is_action.then(|| Action::parse(&self.name))
    }

    /// `Some((interface, Departed))` for `https-relation-departed`: a relation hook of one of
    /// this charm's endpoints, and which.
    pub(crate) fn relation_hook(&self) -> Option<(Interface, RelationEvent)> {
        match self.hook()? {
            Hook::Relation(interface, event) => Some((interface, event)),
            _ => None,
        }
    }

    /// This hook is `<endpoint>-relation-<event>` on any of this charm's endpoints.
    pub(crate) fn is_relation_hook(&self, event: RelationEvent) -> bool {
        self.relation_hook().is_some_and(|(_, e)| e == event)
    }
}

/// The hooks this charm knows, by the name Juju gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hook {
    Install,
    Start,
    ConfigChanged,
    UpgradeCharm,
    UpdateStatus,
    LeaderElected,
    LeaderSettingsChanged,
    /// A new revision of a secret the charm reads (the credentials secret).
    SecretChanged,
    Stop,
    Remove,
    /// `<endpoint>-relation-<event>` on one of this charm's endpoints.
    Relation(Interface, RelationEvent),
    /// Any other hook (another endpoint's, storage, ...): the charm has nothing to do in it.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelationEvent {
    Created,
    Joined,
    Changed,
    Departed,
    Broken,
}

impl RelationEvent {
    pub(crate) const ALL: [RelationEvent; 5] = [
        RelationEvent::Created,
        RelationEvent::Joined,
        RelationEvent::Changed,
        RelationEvent::Departed,
        RelationEvent::Broken,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            RelationEvent::Created => "created",
            RelationEvent::Joined => "joined",
            RelationEvent::Changed => "changed",
            RelationEvent::Departed => "departed",
            RelationEvent::Broken => "broken",
        }
    }
}

/// The hooks that are not relation hooks, with their names.
const PLAIN_HOOKS: [(Hook, &str); 10] = [
    (Hook::Install, "install"),
    (Hook::Start, "start"),
    (Hook::ConfigChanged, "config-changed"),
    (Hook::UpgradeCharm, "upgrade-charm"),
    (Hook::UpdateStatus, "update-status"),
    (Hook::LeaderElected, "leader-elected"),
    (Hook::LeaderSettingsChanged, "leader-settings-changed"),
    (Hook::SecretChanged, "secret-changed"),
    (Hook::Stop, "stop"),
    (Hook::Remove, "remove"),
];

impl Hook {
    pub(crate) fn parse(name: &str) -> Hook {
        if let Some((hook, _)) = PLAIN_HOOKS.iter().find(|(_, n)| *n == name) {
            return *hook;
        }
        let relation = name.split_once("-relation-").and_then(|(endpoint, event)| {
            let interface = Interface::of_endpoint(endpoint)?;
            let event = RelationEvent::ALL.into_iter().find(|e| e.name() == event)?;
            Some(Hook::Relation(interface, event))
        });
        relation.unwrap_or(Hook::Other)
    }

    /// Whether the hook runs the pass. `stop` and `remove` are deliberately quiet: the relations
    /// are torn down before them (their departed and broken hooks already reconciled), and a
    /// unit on its way out must not change LXD for the units that stay.
    pub(crate) fn reconciles(self) -> bool {
        !matches!(self, Hook::Stop | Hook::Remove | Hook::Other)
    }

    /// Every hook the pass runs in, by name: what `hooks/` links to `dispatch`; the tests check
    /// `dispatch::RECONCILE_HOOKS` against it.
    #[cfg(test)]
    pub(crate) fn reconciling_names() -> Vec<String> {
        let plain = PLAIN_HOOKS.iter().filter(|(h, _)| h.reconciles()).map(|(_, n)| n.to_string());
        let relations = Interface::ALL.into_iter().flat_map(|i| {
            RelationEvent::ALL.into_iter().map(move |e| format!("{}-relation-{}", i.endpoint(), e.name()))
        });
        plain.chain(relations).collect()
    }
}

/// The actions this charm implements (actions.yaml declares the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    ListNodes,
    ListTrustedClients,
    Reconcile,
    CheckConnection,
    Adopt,
    /// An action this revision does not implement.
    Unknown,
}

impl Action {
    pub(crate) const ALL: [Action; 5] =
        [Action::ListNodes, Action::ListTrustedClients, Action::Reconcile, Action::CheckConnection, Action::Adopt];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::ListNodes => "list-nodes",
            Action::ListTrustedClients => "list-trusted-clients",
            Action::Reconcile => "reconcile",
            Action::CheckConnection => "check-connection",
            Action::Adopt => "adopt",
            Action::Unknown => "unknown",
        }
    }

    pub(crate) fn parse(name: &str) -> Action {
        Action::ALL.into_iter().find(|a| a.name() == name).unwrap_or(Action::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hook_name_reads_back_as_itself() {
        for name in Hook::reconciling_names() {
            let hook = Hook::parse(&name);
            assert!(hook.reconciles(), "{name}");
        }
        assert_eq!(
            Hook::parse("https-relation-departed"),
            Hook::Relation(Interface::LxdHttps, RelationEvent::Departed)
        );
        assert_eq!(Hook::parse("metrics-relation-broken"), Hook::Other, "not an endpoint of this charm");
        assert_eq!(Hook::parse("api-relation-exploded"), Hook::Other);
        assert!(!Hook::parse("stop").reconciles() && !Hook::parse("remove").reconciles());
        for action in Action::ALL {
            assert_eq!(Action::parse(action.name()), action);
        }
        assert_eq!(Action::parse("rm-rf"), Action::Unknown);
    }
}
