//! Who owns a trust entry, written into the entry's name so LXD itself is the record.
//!
//! ```text
//! juju.<model-uuid>.<integrator-app>.<relation-id>.<remote-app>.<unit-number|app>          `api`
//! juju.<model-uuid>.<integrator-app>.https.<relation-id>.<remote-app>.<unit-number|app>    `https`
//! ```
//!
//! Dots never occur in Juju model UUIDs, application names, endpoint names or unit numbers, so
//! the name splits unambiguously; it has no `/` and does not start with `-`, which newer LXD
//! refuses (charm-lxd's `juju-relation-<unit name>` does, and fails there). Any unit of the
//! integrator, including a replacement for a lost one, can tell its application's entries from
//! an operator's or from another integrator's without local state.
//!
//! The endpoint is part of the name. `api` keeps the six-part form every earlier revision
//! wrote: an upgraded charm reads its existing entries as `api` ones (nothing orphaned, nothing
//! re-added), and a charm refreshed back to an earlier revision still owns every `api` entry.
//! Other endpoints add their name as a seventh part after the application; an endpoint this
//! revision does not know makes the name foreign, so it is never touched.

use std::fmt;

const PREFIX: &str = "juju";

/// The integrator application that owns entries: one model, one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub model_uuid: String,
    pub app: String,
}

/// The endpoint a relation is on, and so the interface its requirer speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Interface {
    /// Endpoint `api`, interface `lxd` (docs/interface-lxd.md).
    #[default]
    Lxd,
    /// Endpoint `https`, interface `lxd-https`, as charm-lxd serves it
    /// (docs/interface-lxd-https.md).
    LxdHttps,
}

impl Interface {
    /// Every endpoint this charm provides, in the order the pass reads them.
    pub(crate) const ALL: [Interface; 2] = [Interface::Lxd, Interface::LxdHttps];

    /// The endpoint's name in metadata.yaml.
    pub(crate) fn endpoint(self) -> &'static str {
        match self {
            Interface::Lxd => "api",
            Interface::LxdHttps => "https",
        }
    }

    /// The endpoint named `endpoint`, if this charm provides it.
    pub(crate) fn of_endpoint(endpoint: &str) -> Option<Interface> {
        Interface::ALL.into_iter().find(|i| i.endpoint() == endpoint)
    }
}

/// Which requirer asked for the certificate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub relation_id: u32,
    pub remote_app: String,
    /// `None`: the remote application databag.
    pub unit: Option<u32>,
    /// The endpoint of the relation.
    pub interface: Interface,
}

/// The application of a Juju unit name: `req/3` → `req`; an application name is itself.
/// Every split of a unit name in the charm goes through here.
pub(crate) fn app_of(member: &str) -> &str {
    member.split_once('/').map_or(member, |(app, _)| app)
}

impl Owner {
    /// `req/3`, or `req` for the application databag.
    pub fn member(&self) -> String {
        match self.unit {
            Some(n) => format!("{}/{}", self.remote_app, n),
            None => self.remote_app.clone(),
        }
    }

    /// From a Juju unit name (`req/3`) or application name (`req`) on an `api` relation.
    pub fn from_member(relation_id: u32, member: &str) -> Option<Owner> {
        Owner::from_member_on(Interface::Lxd, relation_id, member)
    }

    /// From a Juju unit name (`req/3`) or application name (`req`) on a relation of `interface`.
    pub(crate) fn from_member_on(interface: Interface, relation_id: u32, member: &str) -> Option<Owner> {
        let (remote_app, unit) = match member.split_once('/') {
            Some((app, n)) => (app, Some(n.parse().ok()?)),
            None => (member, None),
        };
        Some(Owner { relation_id, remote_app: remote_app.into(), unit, interface })
    }

    /// `req/3` on `api`, `req/3 via https` on another endpoint: for action results, where the
    /// relation id is listed beside it.
    pub(crate) fn who(&self) -> String {
        match self.interface {
            Interface::Lxd => self.member(),
            other => format!("{} via {}", self.member(), other.endpoint()),
        }
    }
}

/// `req/3 (relation 7)` on `api`, as every earlier revision logged it; `req/3 (relation
/// https:7)` on another endpoint, the way Juju spells a relation id (`JUJU_RELATION_ID`).
impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.interface {
            Interface::Lxd => write!(f, "{} (relation {})", self.member(), self.relation_id),
            other => write!(f, "{} (relation {}:{})", self.member(), other.endpoint(), self.relation_id),
        }
    }
}

/// A number as Juju writes one: ASCII digits, no sign, no leading zero. Anything else would
/// let two spellings name one owner.
fn canonical_number(s: &str) -> Option<u32> {
    let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if digits { s.parse().ok() } else { None }
}

/// Whether LXD 5.21.3+ and 6.2+ accept `name` for a new trust entry: `certificatesPost`
/// answers 400 `Invalid certificate name %q, name must not start with a hyphen or contain
/// forward slashes` otherwise (`lxd/certificates.go` in canonical/lxd). Older LXD and Incus
/// (6.0 and main: `cmd/incusd/certificates.go` in lxc/incus) check nothing, so entries named
/// otherwise do exist in trust stores; `owner_of` never takes one for ours.
pub fn lxd_accepts_name(name: &str) -> bool {
    !name.starts_with('-') && !name.contains('/')
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl Scope {
    /// The trust entry name for a certificate requested by `owner`.
    pub fn entry_name(&self, owner: &Owner) -> String {
        let unit = owner.unit.map_or_else(|| "app".to_string(), |n| n.to_string());
        let endpoint = match owner.interface {
            Interface::Lxd => String::new(),
            other => format!("{}.", other.endpoint()),
        };
        format!(
            "{PREFIX}.{}.{}.{endpoint}{}.{}.{}",
            self.model_uuid, self.app, owner.relation_id, owner.remote_app, unit
        )
    }

    /// The owner encoded in `name`, if this application created it.
    pub fn owner_of(&self, name: &str) -> Option<Owner> {
        let parts: Vec<&str> = name.split('.').collect();
        let (prefix, model, app, interface, rest) = match parts.as_slice() {
            [prefix, model, app, rest @ ..] if rest.len() == 3 => (*prefix, *model, *app, Interface::Lxd, rest),
            // `api` has one spelling, the six-part one: a seventh part naming it is not ours.
            [prefix, model, app, endpoint, rest @ ..] if rest.len() == 3 && *endpoint != Interface::Lxd.endpoint() => {
                (*prefix, *model, *app, Interface::of_endpoint(endpoint)?, rest)
            }
            _ => return None,
        };
        let [rel, remote_app, unit] = rest else { return None };
        if prefix != PREFIX || model != self.model_uuid || app != self.app || !is_name_part(remote_app) {
            return None;
        }
        let relation_id = canonical_number(rel)?;
        let unit = match *unit {
            "app" => None,
            n => Some(canonical_number(n)?),
        };
        Some(Owner { relation_id, remote_app: remote_app.to_string(), unit, interface })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope { model_uuid: "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc".into(), app: "lxd-integrator".into() }
    }

    fn owner(unit: Option<u32>) -> Owner {
        Owner { relation_id: 7, remote_app: "anbox-ams".into(), unit, interface: Interface::Lxd }
    }

    fn https(unit: Option<u32>) -> Owner {
        Owner { interface: Interface::LxdHttps, remote_app: "gw".into(), ..owner(unit) }
    }

    #[test]
    fn names_round_trip_for_units_and_the_app_databag_on_every_endpoint() {
        for o in [owner(Some(0)), owner(Some(12)), owner(None), https(Some(0)), https(Some(3)), https(None)] {
            let name = scope().entry_name(&o);
            assert_eq!(scope().owner_of(&name), Some(o));
        }
    }

    #[test]
    fn names_are_acceptable_to_every_lxd_version() {
        let name = scope().entry_name(&owner(Some(3)));
        assert_eq!(name, "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.7.anbox-ams.3");
        let name_https = scope().entry_name(&https(Some(3)));
        assert_eq!(name_https, "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.https.7.gw.3");
        for n in [name, name_https, scope().entry_name(&https(None))] {
            // LXD 5.21.3+/6.2+ refuse `/` and a leading `-` (lxd/certificates.go certificatesPost).
            assert!(!n.contains('/') && !n.starts_with('-'), "{n}");
        }
    }

    #[test]
    fn names_written_before_the_https_endpoint_are_still_ours_and_api() {
        // What every earlier revision wrote, byte for byte.
        let old = "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.7.anbox-ams.app";
        assert_eq!(scope().owner_of(old), Some(owner(None)));
        assert_eq!(scope().entry_name(&owner(None)), old, "api names are unchanged");
    }

    #[test]
    fn one_owner_one_name() {
        let base = "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator";
        for foreign in [
            format!("{base}.api.7.gw.3"),
            format!("{base}.metrics.7.gw.3"),
            format!("{base}.HTTPS.7.gw.3"),
            format!("{base}.https.7.gw.3.4"),
            format!("{base}.https.07.gw.3"),
            format!("{base}.https..gw.3"),
            "juju-relation-gw/0".to_string(),
            "juju-relation-gw".to_string(),
        ] {
            assert_eq!(scope().owner_of(&foreign), None, "{foreign}");
        }
    }

    #[test]
    fn owners_read_as_juju_spells_relations() {
        assert_eq!(owner(Some(3)).to_string(), "anbox-ams/3 (relation 7)");
        assert_eq!(https(Some(3)).to_string(), "gw/3 (relation https:7)");
        assert_eq!((owner(None).who(), https(None).who()), ("anbox-ams".to_string(), "gw via https".to_string()));
        assert_eq!(Interface::of_endpoint("https"), Some(Interface::LxdHttps));
        assert_eq!(Interface::of_endpoint("metrics"), None);
    }

    #[test]
    fn every_name_the_charm_makes_is_one_lxd_6_accepts() {
        // Whatever Juju (or a broken agent) calls the remote side, the name starts `juju.` and
        // carries no `/`: the application is the part of a unit name before its first `/`.
        let members = ["req/0", "req/12", "req", "-req/0", "-", "a/b/c", "req/0/1", "/0", "réq/3", "a.b/1", ""];
        for member in members {
            let Some(owner) = Owner::from_member(4, member) else { continue };
            for scope in [scope(), Scope { model_uuid: "-".into(), app: "-x".into() }] {
                let name = scope.entry_name(&owner);
                assert!(lxd_accepts_name(&name), "{member:?} -> {name:?}");
            }
        }
        assert!(!lxd_accepts_name("-admin") && !lxd_accepts_name("juju-req/0") && lxd_accepts_name(""));
    }

    #[test]
    fn odd_names_an_operator_or_an_older_server_left_are_never_ours() {
        let ours = scope().entry_name(&owner(Some(1)));
        let odd = [
            format!("-{ours}"),
            format!("{ours}/"),
            format!("{ours}/x"),
            ours.replace(".anbox-ams.", ".anbox/ams."),
            ours.replace(".1", ".1/2"),
            ours.replacen("juju", "-juju", 1),
            ours.replacen("juju", "JUJU", 1),
            format!("{ours}\n"),
            format!(" {ours}"),
            ours.replace('.', "/"),
            "/".into(),
            "-".into(),
            "op/odd".into(),
            "x".repeat(100_000),
        ];
        for name in &odd {
            assert_eq!(scope().owner_of(name), None, "{:?}", crate::limits::cut(name, 120));
        }
    }

    #[test]
    fn entries_of_others_are_not_ours() {
        let other_app = Scope { app: "lxd-integrator-b".into(), ..scope() };
        let other_model = Scope { model_uuid: "11111111-1c2b-4f5e-8a9b-123456789abc".into(), ..scope() };
        let ours = scope().entry_name(&owner(Some(1)));
        assert_eq!(other_app.owner_of(&ours), None);
        assert_eq!(other_model.owner_of(&ours), None);
        for foreign in [
            "admin",
            "",
            "juju-relation-req/0",
            "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.x.req.0",
            "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.7.req.zero",
            "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.7..0",
            "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.7.req.0.extra",
            "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.+7.req.7",
            "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.7.req.007",
        ] {
            assert_eq!(scope().owner_of(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn members_parse_from_juju_names() {
        assert_eq!(
            Owner::from_member(2, "req/4"),
            Some(Owner { relation_id: 2, remote_app: "req".into(), unit: Some(4), interface: Interface::Lxd })
        );
        assert_eq!(
            Owner::from_member_on(Interface::LxdHttps, 2, "req").map(|o| o.interface),
            Some(Interface::LxdHttps)
        );
        assert_eq!(Owner::from_member(2, "req").map(|o| o.member()), Some("req".into()));
        assert_eq!(Owner::from_member(2, "req/x"), None);
    }
}
