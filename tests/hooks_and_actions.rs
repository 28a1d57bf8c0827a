//! The packed charm and the binary agree: every hook symlink the package ships is a hook the
//! binary handles on purpose, and every action in actions.yaml is one it implements.

use lxd_integrator::{actions, dispatch};
use std::collections::BTreeSet;

#[test]
fn every_shipped_hook_is_handled_deliberately() {
    let shipped: BTreeSet<String> = xtask::hook_names().into_iter().collect();
    let handled: BTreeSet<String> =
        dispatch::RECONCILE_HOOKS.iter().chain(dispatch::QUIET_HOOKS).map(|h| h.to_string()).collect();
    assert_eq!(shipped, handled);
}

#[test]
fn every_action_in_actions_yaml_is_implemented() {
    let declared: BTreeSet<String> = xtask::action_names().into_iter().collect();
    let implemented: BTreeSet<String> = actions::ACTIONS.iter().map(|a| a.to_string()).collect();
    assert_eq!(declared, implemented);
}
