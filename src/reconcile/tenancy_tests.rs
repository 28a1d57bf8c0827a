//! Tenants: several applications asking for the same certificate, through the whole pass
//! against the in-memory agent and LXD. One owner per certificate (`plan.rs`): the relation that
//! asked first decides its entry's name, projects and lifetime; the others change nothing and
//! are told.

use super::tests::World;
use super::*;
use crate::certs::test_certs;
use crate::config::OPT_TRUST_PROJECTS;
use crate::https::{KEY_CERTIFICATE, KEY_PROJECT, KEY_PROJECTS, KEY_VERSION};
use crate::lxd::TrustEntry;
use crate::ownership::{Owner, Scope};
use crate::refusal::KEY_REFUSED;
use crate::relation::{Databag, KEY_CLIENT_CERTS, KEY_NODES};

fn scope() -> Scope {
    Scope { model_uuid: "m-uuid".into(), app: "lxd-integrator".into() }
}

/// A world whose credential pins a server certificate, so `https` relations are served.
fn world() -> World {
    let mut w = World::new();
    let server = test_certs::self_signed("root@lxd");
    w.agent.credential["credential"]["attrs"]["server-cert"] = serde_json::json!(server.cert_pem);
    w
}

impl World {
    /// A gateway-shaped `https` requirer: `version`, `certificate` and maybe `projects` in its
    /// unit databag.
    fn gateway(&mut self, rel: u32, app: &str, pem: &str, projects: Option<&str>) {
        let mut bag: Databag = [(KEY_VERSION.into(), "1.0".into()), (KEY_CERTIFICATE.into(), pem.into())].into();
        if let Some(p) = projects {
            bag.insert(KEY_PROJECTS.into(), p.into());
        }
        self.agent.relate_on(Interface::LxdHttps, rel, app).units.insert(format!("{app}/0"), bag);
    }

    /// An AMS-shaped `api` requirer: `client_certificates` in its unit databag.
    fn ams(&mut self, rel: u32, app: &str, pem: &str) {
        let bag = [(KEY_CLIENT_CERTS.to_string(), serde_json::to_string(&[pem]).unwrap_or_default())].into();
        self.agent.relate(rel, app).units.insert(format!("{app}/0"), bag);
    }

    fn withdraw(&mut self, rel: u32, app: &str) {
        self.agent.remote.get_mut(&rel).and_then(|r| r.units.get_mut(&format!("{app}/0"))).map(Databag::clear);
    }

    fn entry(&self, made: &test_certs::Pem) -> Option<TrustEntry> {
        let fp = certs::fingerprint(&made.der);
        self.cluster().store.iter().find(|e| e.fingerprint == fp).cloned()
    }

    fn refused_on(&self, rel: u32) -> Vec<(String, String)> {
        let Some(raw) = self.published(rel).get(KEY_REFUSED).cloned() else { return Vec::new() };
        let list: Vec<serde_json::Value> = serde_json::from_str(&raw).expect("refused is JSON");
        list.iter()
            .map(|r| (r["fingerprint"].as_str().unwrap_or("").into(), r["reason"].as_str().unwrap_or("").into()))
            .collect()
    }
}

fn owner(interface: Interface, rel: u32, app: &str) -> Owner {
    Owner { relation_id: rel, remote_app: app.into(), unit: Some(0), interface }
}

/// The order relations were made in decides who owns the shared certificate: every order.
const ORDERS: [[u32; 3]; 6] = [[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]];

#[test]
fn the_owners_entry_keeps_its_name_and_projects_whoever_else_asks_in_every_order() {
    for order in ORDERS {
        let mut w = world();
        w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("p1, p2"));
        let shared = test_certs::self_signed("shared");
        let fp = certs::fingerprint(&shared.der);
        // Relation ids in the order the relations were made: the first one owns the entry.
        let (gw1, gw2, ams) = (order[0] * 10, order[1] * 10, order[2] * 10);
        let first = *[gw1, gw2, ams].iter().min().expect("three");
        let (iface, app) = match first {
            r if r == gw1 => (Interface::LxdHttps, "gw1"),
            r if r == gw2 => (Interface::LxdHttps, "gw2"),
            _ => (Interface::Lxd, "ams"),
        };
        let want: Vec<String> = match app {
            "gw1" => vec!["p2".into()],
            "gw2" => vec!["p1".into()],
            _ => vec!["p1".into(), "p2".into()],
        };
        for (rel, step) in [(gw1, 0), (gw2, 1), (ams, 2)].iter().copied().collect::<std::collections::BTreeMap<_, _>>()
        {
            match step {
                0 => w.gateway(rel, "gw1", &shared.cert_pem, Some("p2")),
                1 => w.gateway(rel, "gw2", &shared.cert_pem, Some("p1")),
                _ => w.ams(rel, "ams", &shared.cert_pem),
            }
            w.hook("update-status");
            w.hook("update-status");
            // Throughout: from the owner's first hook on, the entry is its own, as it asked.
            let entry = w.entry(&shared).expect("trusted from the first request on");
            assert_eq!(entry.name, scope().entry_name(&owner(iface, first, app)), "order {order:?}");
            assert_eq!((entry.restricted, entry.projects.clone()), (true, want.clone()), "order {order:?}");
        }
        // Every other relation is told, unless the owner's grant covers what it asked.
        for (rel, asks) in [(gw1, vec!["p2"]), (gw2, vec!["p1"]), (ams, vec!["p1", "p2"])] {
            let covered = asks.iter().all(|p| want.iter().any(|w| w == p));
            let told = w.refused_on(rel);
            if rel == first || covered {
                assert!(told.is_empty(), "order {order:?}, relation {rel}: {told:?}");
            } else {
                assert_eq!(
                    told,
                    [(fp.clone(), "held-by-another-application".to_string())],
                    "order {order:?}, relation {rel}"
                );
            }
        }
    }
}

#[test]
fn another_application_asking_changes_nothing_and_is_not_claimed_trusted() {
    let mut w = world();
    let shared = test_certs::self_signed("shared");
    let fp = certs::fingerprint(&shared.der);
    w.gateway(1, "gw", &shared.cert_pem, Some("p2"));
    w.hook("update-status");
    let before = w.entry(&shared).expect("trusted for gw");
    // An api requirer (unrestricted without trust-projects) sends the same public certificate.
    w.ams(2, "ams", &shared.cert_pem);
    w.hook("api-relation-changed");
    assert_eq!(w.entry(&shared), Some(before), "not renamed, not widened");
    let nodes: serde_json::Value = serde_json::from_str(&w.published(2)[KEY_NODES]).expect("nodes");
    assert_eq!(nodes[0]["trusted_certs_fp"], serde_json::json!([]), "not claimed for ams");
    assert_eq!(w.refused_on(2), [(fp, "held-by-another-application".to_string())]);
    assert!(w.agent.status.1.contains("1 held for another application, not granted"), "{}", w.agent.status.1);
}

#[test]
fn the_owner_withdrawing_removes_the_entry_and_the_other_request_is_then_new() {
    let mut w = world();
    let shared = test_certs::self_signed("shared");
    w.gateway(1, "gw", &shared.cert_pem, Some("p2"));
    w.hook("update-status");
    w.ams(2, "ams", &shared.cert_pem);
    w.hook("api-relation-changed");
    // The owner rotates away (its key was compromised, say): the grant goes at once.
    w.withdraw(1, "gw");
    w.hook("https-relation-changed");
    assert_eq!(w.entry(&shared), None, "gone although ams still asks");
    // The next full pass takes ams's request as new: its own entry, unrestricted.
    w.hook("update-status");
    let entry = w.entry(&shared).expect("trusted for ams");
    assert_eq!(entry.name, scope().entry_name(&owner(Interface::Lxd, 2, "ams")));
    assert!(!entry.restricted);
    assert!(w.refused_on(2).is_empty());
}

#[test]
fn units_of_one_application_sharing_a_certificate_are_one_owner() {
    let mut w = world();
    let shared = test_certs::self_signed("shared");
    w.send(1, "req/0", &[&shared.cert_pem]);
    w.send(1, "req/1", &[&shared.cert_pem]);
    w.hook("api-relation-changed");
    let entry = w.entry(&shared).expect("trusted");
    w.departed(1, "req/0");
    assert_eq!(w.entry(&shared), Some(entry), "req/1 still asks: the entry stays as it is");
    assert!(w.refused_on(1).is_empty());
}

#[test]
fn a_restricted_https_requirer_is_told_which_project_to_use() {
    let mut w = world();
    let (asked, none, open) =
        (test_certs::self_signed("a"), test_certs::self_signed("b"), test_certs::self_signed("c"));
    w.gateway(1, "gw1", &asked.cert_pem, Some("sandboxes, default"));
    w.gateway(2, "gw2", &none.cert_pem, None);
    w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("p1, default"));
    w.hook("update-status");
    // sandboxes is outside the ceiling and refused; default is what it gets, and is told.
    assert_eq!(w.published(1).get(KEY_PROJECT).map(String::as_str), Some("default"), "the project it asked for");
    assert_eq!(w.published(2).get(KEY_PROJECT).map(String::as_str), Some("p1"), "the first of trust-projects");
    w.agent.config.remove(OPT_TRUST_PROJECTS);
    w.gateway(3, "gw3", &open.cert_pem, None);
    w.hook("update-status");
    w.hook("update-status");
    assert_eq!(w.published(3).get(KEY_PROJECT), None, "unrestricted: no project, the requirer uses default");
}

#[test]
fn an_https_requirer_asking_only_for_projects_outside_the_ceiling_is_told_why() {
    let mut w = world();
    w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("p1"));
    let gw = test_certs::self_signed("gw");
    w.gateway(1, "gw", &gw.cert_pem, Some("p9"));
    w.hook("update-status");
    assert!(w.cluster().store.is_empty());
    let bag = w.published(1);
    assert_eq!(bag.keys().collect::<Vec<_>>(), [KEY_REFUSED], "no connection keys, only why");
    assert_eq!(w.refused_on(1), [(certs::fingerprint(&gw.der), "projects-outside-ceiling".to_string())]);
    assert!(w.agent.status.1.contains("projects refused for gw/0"), "{}", w.agent.status.1);
}

#[test]
fn api_writes_unit_databags_only_and_withdraws_what_an_earlier_revision_wrote_there() {
    let mut w = World::new();
    let a = test_certs::self_signed("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    // An earlier revision left its payload in the application databag.
    let old: Databag = [("version".into(), "1.0".into()), ("nodes".into(), "[]".into())].into();
    w.agent.ours.insert((3, "lxd-integrator".into()), old);
    w.hook("api-relation-changed");
    assert!(w.published(3).contains_key(KEY_NODES), "the unit databag carries the payload");
    assert!(w.agent.published(3, true).is_empty(), "the application databag is emptied");
    let app_writes =
        |w: &World| w.agent.calls.iter().filter(|c| c.tool == "relation-set" && c.contains("--app")).count();
    assert_eq!(app_writes(&w), 1);
    w.hook("api-relation-changed");
    assert_eq!(app_writes(&w), 1, "once, not every hook");
}

#[test]
fn a_certificate_from_a_clock_running_ahead_is_trusted_once_valid_and_never_called_bad_input() {
    let mut w = World::new();
    let ahead = test_certs::starting_in(2);
    w.send(3, "req/0", &[&ahead.cert_pem]);
    w.hook("api-relation-changed");
    assert!(w.store_fps().is_empty(), "LXD refuses a certificate before it starts");
    assert_eq!(w.refused_on(3), [(certs::fingerprint(&ahead.der), "not-yet-valid".to_string())]);
    let status = w.agent.status.1.clone();
    assert!(status.contains("1 not valid yet, trusted once valid") && !status.contains("invalid"), "{status}");
    // Steady, so update-status is quiet... until the certificate starts.
    w.hook("update-status");
    assert!(w.store_fps().is_empty());
    std::thread::sleep(std::time::Duration::from_millis(3_100));
    w.hook("update-status");
    assert_eq!(w.store_fps(), [certs::fingerprint(&ahead.der)].into());
    assert!(w.refused_on(3).is_empty());
}

#[test]
fn the_actions_name_every_refusal_by_fingerprint_requester_and_reason() {
    let mut w = world();
    let shared = test_certs::self_signed("shared");
    w.gateway(1, "gw", &shared.cert_pem, Some("p2"));
    w.hook("update-status");
    w.ams(2, "ams", &shared.cert_pem);
    let report = w.hook("api-relation-changed");
    let listed: std::collections::BTreeMap<String, String> =
        crate::actions::list_trusted_clients(&report, &scope()).into_iter().collect();
    assert_eq!(listed["refused.count"], "1");
    assert_eq!(listed["refused.0.fingerprint"], certs::fingerprint(&shared.der));
    assert_eq!((listed["refused.0.unit"].as_str(), listed["refused.0.endpoint"].as_str()), ("ams/0", "api"));
    assert_eq!(listed["refused.0.reason"], "held-by-another-application");
    let checked: std::collections::BTreeMap<String, String> =
        crate::actions::check_connection(&report).into_iter().collect();
    assert_eq!((checked["refused"].as_str(), checked["invalid"].as_str()), ("1", "0"));
}
