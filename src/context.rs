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
    pub fn app(&self) -> &str {
        app_of(&self.unit)
    }

    /// The trust entries this application owns: one model, one application.
    pub fn scope(&self) -> Scope {
        Scope { model_uuid: self.model_uuid.clone(), app: self.app().to_string() }
    }

    pub fn is_hook(&self, name: &str) -> bool {
        !self.is_action && self.name == name
    }

    /// `Some((interface, "broken"))` for `https-relation-broken`: a relation hook of one of
    /// this charm's endpoints, and which (`created`, `joined`, `changed`, `departed`, `broken`).
    pub fn relation_hook(&self) -> Option<(Interface, &str)> {
        if self.is_action {
            return None;
        }
        let (endpoint, kind) = self.name.split_once("-relation-")?;
        Some((Interface::of_endpoint(endpoint)?, kind))
    }

    /// This hook is `<endpoint>-relation-<kind>` on any of this charm's endpoints.
    pub fn is_relation_hook(&self, kind: &str) -> bool {
        self.relation_hook().is_some_and(|(_, k)| k == kind)
    }
}
