//! The `https` endpoint (interface `lxd-https`) through the whole pass, against the in-memory
//! agent and LXD: the same guarantees as `api`, and both side by side.

use super::tests::{N1, N2, World};
use super::*;
use crate::certs::test_certs;
use crate::config::OPT_TRUST_PROJECTS;
use crate::https::{KEY_ADDRESSES, KEY_CERTIFICATE, KEY_CERTIFICATE_FP, KEY_PROJECTS, KEY_VERSION};
use crate::lxd::TrustEntry;
use crate::ownership::{Owner, Scope};
use crate::relation::Databag;
use std::collections::BTreeSet;

const GW: &str = "gw";

fn scope() -> Scope {
    Scope { model_uuid: "m-uuid".into(), app: "lxd-integrator".into() }
}

fn owner(rel: u32, unit: Option<u32>) -> Owner {
    Owner { relation_id: rel, remote_app: GW.into(), unit, interface: Interface::LxdHttps }
}

/// A world whose credential pins a real server certificate (the default "S" pins nothing, and
/// without a pin nothing is published on `https`).
fn world() -> (World, test_certs::Pem) {
    let mut w = World::new();
    let server = test_certs::self_signed("root@lxd");
    w.agent.credential["credential"]["attrs"]["server-cert"] = serde_json::json!(server.cert_pem);
    (w, server)
}

fn bag_of(pem: &str, projects: Option<&str>) -> Databag {
    let mut bag: Databag =
        [(KEY_VERSION.to_string(), "1.0".to_string()), (KEY_CERTIFICATE.to_string(), pem.to_string())].into();
    if let Some(p) = projects {
        bag.insert(KEY_PROJECTS.into(), p.into());
    }
    bag
}

impl World {
    /// An https-client-shaped requirer unit: `version` and `certificate` in its unit databag.
    fn https_unit(&mut self, rel: u32, unit: &str, bag: Databag) {
        self.agent.relate_on(Interface::LxdHttps, rel, GW).units.insert(unit.into(), bag);
    }

    fn https_app(&mut self, rel: u32, bag: Databag) {
        self.agent.relate_on(Interface::LxdHttps, rel, GW).app_bag = bag;
    }

    /// `https-relation-<kind>` on `rel`. A departing remote unit is gone from the relation's
    /// list from this hook on, as Juju has it.
    fn https_hook(&mut self, kind: &str, rel: u32, departing: Option<&str>) -> Report {
        if let (Some(unit), Some(remote)) = (departing, self.agent.remote.get_mut(&rel)) {
            remote.units.remove(unit);
        }
        self.hook_ctx(HookContext {
            name: format!("https-relation-{kind}"),
            unit: "lxd-integrator/0".into(),
            model_uuid: "m-uuid".into(),
            relation_id: Some(rel),
            remote_app: Some(GW.into()),
            departing_unit: departing.map(String::from),
            ..Default::default()
        })
    }

    fn entries(&self) -> Vec<TrustEntry> {
        self.cluster().store.clone()
    }

    fn entry_of(&self, made: &test_certs::Pem) -> Option<TrustEntry> {
        let fp = certs::fingerprint(&made.der);
        self.cluster().store.iter().find(|e| e.fingerprint == fp).cloned()
    }
}

#[test]
fn a_unit_only_requirer_gets_an_entry_per_unit_and_charm_lxds_payload_in_both_bags() {
    let (mut w, server) = world();
    let (a, b) = (test_certs::self_signed("gw-0"), test_certs::self_signed("gw-1"));
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    w.https_unit(5, "gw/1", bag_of(&b.cert_pem, None));
    w.https_hook("changed", 5, None);
    let names: BTreeSet<String> = w.entries().iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, [scope().entry_name(&owner(5, Some(0))), scope().entry_name(&owner(5, Some(1)))].into());
    assert!(names.iter().all(|n| n.starts_with("juju.m-uuid.lxd-integrator.https.5.gw.") && !n.contains('/')));
    assert!(w.entries().iter().all(|e| !e.restricted), "no projects asked, no trust-projects");
    for app in [false, true] {
        let bag = w.agent.published(5, app);
        assert_eq!(bag[KEY_VERSION], "1.0");
        assert_eq!(bag[KEY_CERTIFICATE], certs::to_pem(&server.der));
        assert_eq!(bag[KEY_CERTIFICATE_FP], certs::fingerprint(&server.der));
        assert_eq!(bag[KEY_ADDRESSES], "127.0.0.1:8443,127.0.0.2:8443");
        assert!(!bag.contains_key("nodes"), "lxd keys are not written on https");
    }
    assert_eq!(w.agent.status, ("active".into(), "2/2 members online, 2 clients trusted".into()));
    assert!(
        w.agent.logs.iter().any(|l| l.contains("trust: added") && l.contains("gw/1 (relation https:5)")),
        "{:?}",
        w.agent.logs
    );
}

#[test]
fn a_requirer_writing_both_bags_with_projects_is_one_entry_restricted_to_them() {
    let (mut w, _) = world();
    let shared = test_certs::self_signed("gateway");
    let both = bag_of(&shared.cert_pem, Some("sandboxes, default"));
    w.https_app(5, both.clone());
    w.https_unit(5, "gw/0", both.clone());
    w.https_unit(5, "gw/1", both);
    w.https_hook("changed", 5, None);
    let entries = w.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].name,
        scope().entry_name(&owner(5, None)),
        "named for the application, whose bag is read first"
    );
    assert!(entries[0].restricted);
    assert_eq!(entries[0].projects, ["sandboxes", "default"]);
    assert_eq!(w.agent.status.1, "2/2 members online, 1 client trusted");
    // A unit leaving does not take the application's entry with it.
    w.https_hook("departed", 5, Some("gw/1"));
    assert_eq!(w.entries().len(), 1);
}

#[test]
fn nothing_is_published_before_lxd_holds_a_certificate_of_the_relation() {
    let (mut w, _) = world();
    w.agent.leader = false;
    let a = test_certs::self_signed("a");
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    w.https_hook("changed", 5, None);
    assert!(w.store_fps().is_empty(), "a follower never writes to LXD");
    assert!(w.published(5).is_empty(), "and claims nothing LXD does not hold");
    assert_eq!(w.agent.status.1, "2/2 members online; leader manages trust");
    // The leader (elsewhere) trusted it: the follower now publishes in its unit bag only.
    w.cluster().store.push(TrustEntry {
        name: scope().entry_name(&owner(5, Some(0))),
        fingerprint: certs::fingerprint(&a.der),
        ..Default::default()
    });
    w.hook("update-status");
    assert_eq!(w.published(5)[KEY_VERSION], "1.0");
    assert!(w.agent.published(5, true).is_empty(), "only a leader writes the application's bag");
}

// A credential whose server certificate cannot be pinned never reaches LXD at all (it is
// refused as unusable material), so there is no pass that trusts without a pin to publish.
#[test]
fn an_outage_withdraws_nothing_from_an_https_relation() {
    let a = test_certs::self_signed("a");
    let (mut w, _) = world();
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    w.https_hook("changed", 5, None);
    let before = w.published(5);
    for up in w.cluster().up.values_mut() {
        *up = false;
    }
    w.hook("update-status");
    assert_eq!(w.agent.status.0, "waiting");
    assert_eq!(w.published(5), before);
    assert_eq!(w.store_fps().len(), 1);
}

#[test]
fn a_databag_without_version_1_0_is_ignored_and_named_once() {
    let (mut w, _) = world();
    let (a, b) = (test_certs::self_signed("a"), test_certs::self_signed("b"));
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    let mut old = bag_of(&b.cert_pem, None);
    old.insert(KEY_VERSION.into(), "0.9".into());
    w.https_unit(5, "gw/1", old);
    w.https_hook("changed", 5, None);
    w.hook("update-status");
    assert_eq!(w.store_fps(), [certs::fingerprint(&a.der)].into());
    let named: Vec<&String> =
        w.agent.logs.iter().filter(|l| l.contains("gw/1 (relation https:5): version: not \"1.0\"")).collect();
    assert_eq!(named.len(), 1, "{:?}", w.agent.logs);
    assert!(w.agent.status.1.ends_with("invalid lxd-https data from gw/1"), "{}", w.agent.status.1);
    assert_eq!(
        w.agent.calls_containing("0.9").filter(|c| c.tool != "relation-get").count(),
        0,
        "the value is never repeated"
    );
}

#[test]
fn trust_projects_bounds_what_a_requirer_may_ask_and_is_what_one_asking_nothing_gets() {
    let (mut w, _) = world();
    w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("default, sandboxes"));
    let (asks, outside, plain) =
        (test_certs::self_signed("asks"), test_certs::self_signed("outside"), test_certs::self_signed("plain"));
    w.https_unit(5, "gw/0", bag_of(&asks.cert_pem, Some("sandboxes,prod")));
    w.https_unit(5, "gw/1", bag_of(&outside.cert_pem, Some("prod")));
    w.https_unit(5, "gw/2", bag_of(&plain.cert_pem, None));
    w.https_hook("changed", 5, None);
    let projects = |m: &test_certs::Pem| w.entry_of(m).map(|e| (e.restricted, e.projects));
    assert_eq!(projects(&asks), Some((true, vec!["sandboxes".to_string()])), "prod refused, never widened");
    assert_eq!(projects(&outside), None, "nothing left to grant: not trusted at all");
    assert_eq!(projects(&plain), Some((true, vec!["default".to_string(), "sandboxes".to_string()])));
    assert!(
        w.agent.logs.iter().any(|l| l
            .contains("gw/1 (relation https:5): projects: prod not in trust-projects, refused; nothing left to grant")),
        "{:?}",
        w.agent.logs
    );
    assert!(w.agent.status.1.ends_with("; projects refused for gw/0, gw/1"), "{}", w.agent.status.1);
}

#[test]
fn projects_converge_both_ways() {
    let (mut w, _) = world();
    let a = test_certs::self_signed("a");
    let restriction = |w: &World| w.entry_of(&a).map(|e| (e.restricted, e.projects));
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, Some("p1")));
    w.https_hook("changed", 5, None);
    assert_eq!(restriction(&w), Some((true, vec!["p1".into()])));
    // The requirer asks for other projects.
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, Some("p1,p2")));
    w.https_hook("changed", 5, None);
    assert_eq!(restriction(&w), Some((true, vec!["p1".into(), "p2".into()])));
    // The operator narrows trust-projects below what it asks: restricted to what is left.
    w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("p2"));
    w.hook("config-changed");
    assert_eq!(restriction(&w), Some((true, vec!["p2".into()])));
    // ... and below everything it asks: the entry goes.
    w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("p3"));
    w.hook("config-changed");
    assert_eq!(restriction(&w), None);
    // The requirer stops asking: trust-projects applies; unset, the entry is unrestricted.
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    w.https_hook("changed", 5, None);
    assert_eq!(restriction(&w), Some((true, vec!["p3".into()])));
    w.agent.config.remove(OPT_TRUST_PROJECTS);
    w.hook("config-changed");
    assert_eq!(restriction(&w), Some((false, vec![])));
}

#[test]
fn rotation_departure_withdrawal_and_broken_remove_what_was_added() {
    let (mut w, _) = world();
    let (a, a2, b) = (test_certs::self_signed("a"), test_certs::self_signed("a-rotated"), test_certs::self_signed("b"));
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    w.https_unit(5, "gw/1", bag_of(&b.cert_pem, None));
    w.https_hook("changed", 5, None);
    // Rotated: the new certificate is added, the old one removed.
    w.https_unit(5, "gw/0", bag_of(&a2.cert_pem, None));
    w.https_hook("changed", 5, None);
    assert_eq!(w.store_fps(), [certs::fingerprint(&a2.der), certs::fingerprint(&b.der)].into());
    // Departed: that unit's entry goes.
    w.https_hook("departed", 5, Some("gw/1"));
    assert_eq!(w.store_fps(), [certs::fingerprint(&a2.der)].into());
    // Withdrawn (the requirer deleted its keys): the entry goes, the payload is withdrawn.
    w.https_unit(5, "gw/0", Databag::new());
    w.https_hook("changed", 5, None);
    assert!(w.store_fps().is_empty());
    assert!(w.published(5).is_empty() && w.agent.published(5, true).is_empty());
    // Broken: everything it asked for goes.
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    w.https_hook("changed", 5, None);
    assert_eq!(w.store_fps().len(), 1);
    w.https_hook("broken", 5, None);
    assert!(w.store_fps().is_empty());
}

#[test]
fn api_and_https_relations_side_by_side_never_disturb_each_other() {
    let (mut w, _) = world();
    let (ams, gw0, gw1) =
        (test_certs::self_signed("ams"), test_certs::self_signed("gw-0"), test_certs::self_signed("gw-1"));
    w.send(3, "req/0", &[&ams.cert_pem]);
    w.https_unit(5, "gw/0", bag_of(&gw0.cert_pem, None));
    w.https_unit(5, "gw/1", bag_of(&gw1.cert_pem, None));
    w.hook("api-relation-changed");
    assert_eq!(w.store_fps().len(), 3);
    assert!(w.published(3).contains_key("nodes") && !w.published(3).contains_key(KEY_ADDRESSES));
    assert!(w.published(5).contains_key(KEY_ADDRESSES) && !w.published(5).contains_key("nodes"));
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&w.published(3)["nodes"]).expect("json");
    assert_eq!(
        nodes[0]["trusted_certs_fp"],
        serde_json::json!([certs::fingerprint(&ams.der)]),
        "each relation claims its own"
    );
    // A unit departing the https relation does not touch the api one, and the other way.
    w.https_hook("departed", 5, Some("gw/1"));
    assert_eq!(w.store_fps(), [certs::fingerprint(&ams.der), certs::fingerprint(&gw0.der)].into());
    w.broken(3);
    assert_eq!(w.store_fps(), [certs::fingerprint(&gw0.der)].into());
    assert_eq!(w.published(5)[KEY_VERSION], "1.0");
}

#[test]
fn the_same_application_on_both_endpoints_loses_a_unit_one_relation_at_a_time() {
    let (mut w, _) = world();
    let (on_api, on_https) = (test_certs::self_signed("api"), test_certs::self_signed("https"));
    w.agent.relate(3, GW).units.insert(
        "gw/0".into(),
        [("client_certificates".to_string(), serde_json::json!([on_api.cert_pem]).to_string())].into(),
    );
    w.https_unit(5, "gw/0", bag_of(&on_https.cert_pem, None));
    w.hook("install");
    assert_eq!(w.store_fps().len(), 2);
    // gw/0 leaves the https relation first: its api entry stays until its api hook.
    w.https_hook("departed", 5, Some("gw/0"));
    assert_eq!(w.store_fps(), [certs::fingerprint(&on_api.der)].into());
}

#[test]
fn entries_named_before_the_https_endpoint_are_neither_orphaned_nor_added_again() {
    let (mut w, _) = world();
    let a = test_certs::self_signed("a");
    // What an earlier revision left: the six-part api name.
    let old = "juju.m-uuid.lxd-integrator.3.req.0".to_string();
    w.cluster().store.push(TrustEntry {
        name: old.clone(),
        fingerprint: certs::fingerprint(&a.der),
        ..Default::default()
    });
    w.send(3, "req/0", &[&a.cert_pem]);
    let report = w.hook("upgrade-charm");
    assert!(report.changes.is_empty(), "{:?}", report.changes);
    assert_eq!(w.entries().iter().map(|e| e.name.clone()).collect::<Vec<_>>(), [old]);
    w.broken(3);
    assert!(w.store_fps().is_empty(), "still ours to remove");
}

#[test]
fn charm_lxds_own_entries_and_an_operators_are_never_touched() {
    let (mut w, _) = world();
    let a = test_certs::self_signed("a");
    let fp = certs::fingerprint(&a.der);
    // As charm-lxd names them (LXD before 5.21.3 accepts the `/`), and an operator's.
    w.cluster().store.push(TrustEntry {
        name: "juju-relation-gw/0".into(),
        fingerprint: fp.clone(),
        ..Default::default()
    });
    w.cluster().store.push(TrustEntry {
        name: "juju-relation-gw".into(),
        fingerprint: "ab".repeat(32),
        ..Default::default()
    });
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    let report = w.https_hook("changed", 5, None);
    assert!(report.changes.is_empty(), "already trusted by an entry not ours: left as it is");
    assert!(w.agent.status.1.contains("1 held by entries not ours"), "{}", w.agent.status.1);
    assert_eq!(w.published(5)[KEY_VERSION], "1.0", "held, so the connection is published");
    w.https_hook("broken", 5, None);
    assert_eq!(w.entries().len(), 2, "nothing of theirs removed");
}

#[test]
fn without_certificate_project_a_requirer_asking_for_projects_is_refused_not_widened() {
    let (mut w, _) = world();
    w.cluster().extensions.retain(|e| e != EXT_CERTIFICATE_PROJECT);
    let (asks, plain) = (test_certs::self_signed("asks"), test_certs::self_signed("plain"));
    w.https_unit(5, "gw/0", bag_of(&asks.cert_pem, Some("sandboxes")));
    w.https_unit(5, "gw/1", bag_of(&plain.cert_pem, None));
    w.https_hook("changed", 5, None);
    assert_eq!(w.store_fps(), [certs::fingerprint(&plain.der)].into());
    assert!(
        w.agent
            .logs
            .iter()
            .any(|l| l.contains("gw/0 (relation https:5): projects: LXD lacks the certificate_project extension")),
        "{:?}",
        w.agent.logs
    );
    assert_eq!(w.agent.status.0, "active");
}

#[test]
fn a_project_lxd_lacks_is_that_requirers_failed_change_not_a_blocked_option() {
    let (mut w, _) = world();
    w.cluster().projects = Some(["default".to_string()].into());
    let (asks, plain) = (test_certs::self_signed("asks"), test_certs::self_signed("plain"));
    w.https_unit(5, "gw/0", bag_of(&asks.cert_pem, Some("nope")));
    w.https_unit(5, "gw/1", bag_of(&plain.cert_pem, None));
    w.https_hook("changed", 5, None);
    assert_eq!(w.store_fps(), [certs::fingerprint(&plain.der)].into());
    assert_eq!(
        w.agent.status,
        ("active".into(), "2/2 members online, 1 client trusted; 1 LXD change failed, see debug-log".into())
    );
    assert!(
        w.agent.logs.iter().any(|l| l.contains("failed to add")
            && l.contains("gw/0 (relation https:5)")
            && l.contains("Project not found")),
        "{:?}",
        w.agent.logs
    );
}

#[test]
fn what_a_requirer_sends_is_never_repeated_and_what_is_written_stays_bounded() {
    let (mut w, _) = world();
    let key = test_certs::self_signed("leak").key_pem;
    let good = test_certs::self_signed("good");
    w.https_unit(5, "gw/0", bag_of(&good.cert_pem, Some(&format!("default,{key}"))));
    w.https_unit(5, "gw/1", bag_of(&key, Some(&"x,".repeat(100_000))));
    w.https_app(5, bag_of(&format!("{}{}", " ".repeat(4 << 20), good.cert_pem), None));
    w.https_hook("changed", 5, None);
    let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(w.agent.calls_containing(&body[body.len() - 40..]).filter(|c| c.tool != "relation-get").count(), 0);
    assert_eq!(w.agent.calls_containing("PRIVATE KEY").filter(|c| c.tool != "relation-get").count(), 0);
    assert_eq!(w.agent.refused().count(), 0);
    assert!(w.agent.bytes_sent() < 64 * 1024, "{} bytes written", w.agent.bytes_sent());
    assert_eq!(w.store_fps(), [certs::fingerprint(&good.der)].into());
    assert_eq!(w.entry_of(&good).map(|e| e.projects), Some(vec![]), "the app bag (read first) asked no projects");
}

#[test]
fn a_rotated_pin_is_published_on_https_once_connected_with_it() {
    let (mut w, first) = world();
    let a = test_certs::self_signed("a");
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    w.https_hook("changed", 5, None);
    assert_eq!(w.published(5)[KEY_CERTIFICATE_FP], certs::fingerprint(&first.der));
    let rotated = test_certs::self_signed("root@lxd");
    w.agent.credential["credential"]["attrs"]["server-cert"] = serde_json::json!(rotated.cert_pem);
    w.cluster().up.insert(N1.into(), false);
    w.hook("update-status");
    for app in [false, true] {
        let bag = w.agent.published(5, app);
        assert_eq!(bag[KEY_CERTIFICATE], certs::to_pem(&rotated.der));
        assert_eq!(bag[KEY_CERTIFICATE_FP], certs::fingerprint(&rotated.der));
        assert_eq!(bag[KEY_ADDRESSES], N2.trim_start_matches("https://"), "only the online member");
    }
}

#[test]
fn a_leader_leaving_through_an_https_relation_leaves_lxd_alone() {
    let (mut w, _) = world();
    let a = test_certs::self_signed("a");
    w.https_unit(5, "gw/0", bag_of(&a.cert_pem, None));
    w.https_hook("changed", 5, None);
    w.https_hook("departed", 5, Some("lxd-integrator/0"));
    w.https_hook("broken", 5, None);
    assert_eq!(w.store_fps().len(), 1, "the leaving unit removed nothing");
    assert_eq!(w.agent.status.0, "maintenance");
}

impl World {
    /// Runs action `name` on this unit and returns its results.
    fn action(&mut self, name: &str, params: serde_json::Value) -> std::collections::BTreeMap<String, String> {
        self.agent.start_action(serde_json::from_value(params).expect("params"));
        let ctx = HookContext {
            name: name.into(),
            is_action: true,
            unit: "lxd-integrator/0".into(),
            model_uuid: "m-uuid".into(),
            ..Default::default()
        };
        let connector = crate::memory::MemoryConnector(self.cluster.clone());
        crate::actions::run(&ctx, &mut Juju::new(&mut self.agent), &connector).expect("action runs");
        let action = self.agent.action.take().expect("action");
        assert_eq!(action.failed, None);
        action.results
    }
}

#[test]
fn actions_cover_both_endpoints() {
    let (mut w, _) = world();
    w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("default,sandboxes"));
    let (ams, gw, refused) =
        (test_certs::self_signed("ams"), test_certs::self_signed("gw"), test_certs::self_signed("refused"));
    w.send(3, "req/0", &[&ams.cert_pem]);
    w.https_unit(5, "gw/0", bag_of(&gw.cert_pem, Some("sandboxes")));
    w.https_unit(5, "gw/1", bag_of(&refused.cert_pem, Some("prod")));
    // Dry run first: what would change, the https owner said as such.
    let r = w.action("reconcile", serde_json::json!({"dry-run": true}));
    assert_eq!(r["added.count"], "2");
    assert!(r["added.entries"].contains("(gw/0 via https)") && r["added.entries"].contains("(req/0)"), "{r:?}");
    w.hook("config-changed");

    let r = w.action("list-trusted-clients", serde_json::json!({}));
    assert_eq!(r["count"], "2");
    let clients: Vec<(String, String, String, String)> = (0..2)
        .map(|i| {
            let k = |f: &str| r[&format!("clients.{i}.{f}")].clone();
            (k("endpoint"), k("unit"), k("relation"), k("projects"))
        })
        .collect();
    assert!(clients.contains(&("api".into(), "req/0".into(), "3".into(), "default,sandboxes".into())), "{r:?}");
    assert!(clients.contains(&("https".into(), "gw/0".into(), "5".into(), "sandboxes".into())), "{r:?}");
    assert_eq!(
        (r["invalid.count"].as_str(), r["invalid.0.unit"].as_str(), r["invalid.0.endpoint"].as_str()),
        ("1", "gw/1", "https")
    );
    assert!(r["invalid.0.reason"].contains("projects: prod not in trust-projects, refused"), "{r:?}");

    let r = w.action("list-nodes", serde_json::json!({}));
    assert_eq!((r["nodes.0.endpoint"].as_str(), r["nodes.0.address"].as_str()), (N1, "127.0.0.1:8443"));
}
