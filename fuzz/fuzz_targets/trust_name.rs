//! Trust entry names read back from LXD: `Scope::owner_of` on arbitrary names, and the round
//! trip with `Scope::entry_name` for arbitrary owners and scopes.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use lxd_integrator::ownership::{Interface, Owner, Scope};

#[derive(Debug, Arbitrary)]
struct Input {
    model_uuid: String,
    app: String,
    relation_id: u32,
    remote_app: String,
    unit: Option<u32>,
    /// The `https` endpoint rather than `api`.
    https: bool,
    name: String,
    /// Appended to `juju.<model>.<app>.`, so the claim check sees names close to ours.
    tail: String,
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fuzz_target!(|input: Input| {
    let scope = Scope { model_uuid: input.model_uuid, app: input.app };

    // Names we make are read back as their owner exactly when the parts cannot be confused
    // with the separator (Juju model UUIDs, application names never hold a '.').
    let interface = if input.https { Interface::LxdHttps } else { Interface::Lxd };
    let owner = Owner { relation_id: input.relation_id, remote_app: input.remote_app, unit: input.unit, interface };
    let name = scope.entry_name(&owner);
    let separable = !scope.model_uuid.contains('.') && !scope.app.contains('.');
    if separable && is_name_part(&owner.remote_app) {
        assert_eq!(scope.owner_of(&name), Some(owner.clone()), "{name}");
    } else if separable {
        assert_eq!(scope.owner_of(&name), None, "{name}");
    }
    // Other scopes never claim it.
    let other = Scope { app: format!("{}-b", scope.app), ..scope.clone() };
    if separable && is_name_part(&owner.remote_app) {
        assert_eq!(other.owner_of(&name), None);
    }

    // Any name LXD holds: if we claim it, it is the claimed owner's one name, byte for byte
    // (numbers have one spelling, `api` has no seventh part).
    let near = format!("juju.{}.{}.{}", scope.model_uuid, scope.app, input.tail);
    for candidate in [&input.name, &near] {
        check_claim(&scope, candidate);
    }
});

fn check_claim(scope: &Scope, name: &str) {
    if let Some(claimed) = scope.owner_of(name) {
        let canonical = scope.entry_name(&claimed);
        assert_eq!(scope.owner_of(&canonical), Some(claimed.clone()));
        assert_eq!(name, canonical);
        assert_eq!(name.split('.').count(), if claimed.interface == Interface::Lxd { 6 } else { 7 });
        assert!(is_name_part(&claimed.remote_app));
        assert!(name.starts_with("juju."));
    }
}
