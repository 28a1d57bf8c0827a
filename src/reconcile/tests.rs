//! The reconcile's decisions, against an in-memory unit agent and an in-memory LXD.
//! (The end-to-end tests run the same pass against real processes and a real cluster.)

use super::*;
use crate::access::EXT_ACCESS_MANAGEMENT;
use crate::certs::test_certs;
use crate::config::OPT_TRUST_PROJECTS;
use crate::lxd::TrustEntry;
use crate::memory::{Agent, Call, Cluster, MemoryConnector};
use crate::ownership::{Interface, Owner, Scope};
use crate::relation::Databag;
use std::sync::{Arc, Mutex, MutexGuard};

pub(super) const N1: &str = "https://127.0.0.1:8443";
pub(super) const N2: &str = "https://127.0.0.2:8443";

/// An integrator unit (a trusted leader unless changed) and the LXD cluster it manages; the
/// `https` tests (`https_tests.rs`) drive the same world.
pub(super) struct World {
    pub(super) agent: Agent,
    pub(super) cluster: Arc<Mutex<Cluster>>,
}

impl World {
    pub(super) fn new() -> World {
        World { agent: Agent::leader(), cluster: Cluster::new(&[N1, N2]).shared() }
    }

    pub(super) fn send(&mut self, rel: u32, unit: &str, pems: &[&str]) {
        self.agent.relate(rel, "req").units.insert(
            unit.into(),
            [("client_certificates".to_string(), serde_json::to_string(pems).unwrap_or_default())].into(),
        );
    }

    pub(super) fn hook(&mut self, name: &str) -> Report {
        self.hook_ctx(HookContext {
            name: name.into(),
            unit: "lxd-integrator/0".into(),
            model_uuid: "m-uuid".into(),
            ..Default::default()
        })
    }

    pub(super) fn hook_ctx(&mut self, ctx: HookContext) -> Report {
        let connector = MemoryConnector(self.cluster.clone());
        let mut juju = Juju::new(&mut self.agent);
        run(&ctx, &mut juju, &connector, Mode::HOOK).expect("hook tools work")
    }

    pub(super) fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().expect("cluster lock")
    }

    /// `api-relation-departed` on relation `rel`, with `unit` departing (a remote unit, or
    /// this unit itself when it is being removed).
    pub(super) fn departed(&mut self, rel: u32, unit: &str) -> Report {
        self.hook_ctx(HookContext {
            name: "api-relation-departed".into(),
            unit: "lxd-integrator/0".into(),
            model_uuid: "m-uuid".into(),
            relation_id: Some(rel),
            departing_unit: Some(unit.into()),
            ..Default::default()
        })
    }

    /// `api-relation-broken` on relation `rel`: the relation is being removed.
    pub(super) fn broken(&mut self, rel: u32) -> Report {
        self.hook_ctx(HookContext {
            name: "api-relation-broken".into(),
            unit: "lxd-integrator/0".into(),
            model_uuid: "m-uuid".into(),
            relation_id: Some(rel),
            ..Default::default()
        })
    }

    /// A world where `req/0` on relation 3 had one certificate trusted and published, and what
    /// was published then.
    pub(super) fn one_client_trusted() -> (World, Databag) {
        let mut w = World::new();
        let a = test_certs::self_signed("a");
        w.send(3, "req/0", &[&a.cert_pem]);
        w.hook("api-relation-changed");
        let before = w.published(3);
        (w, before)
    }

    pub(super) fn store_fps(&self) -> BTreeSet<String> {
        self.cluster().store.iter().map(|e| e.fingerprint.clone()).collect()
    }

    pub(super) fn published(&self, rel: u32) -> Databag {
        self.agent.published(rel, false)
    }
}

#[test]
fn no_trust_and_no_config_blocks_without_touching_lxd() {
    let mut w = World::new();
    w.agent.trusted = false;
    w.hook("install");
    assert_eq!(w.agent.status, ("blocked".into(), "Missing credentials access; grant with: juju trust".into()));
    assert_eq!(w.cluster().requests, 0);
}

#[test]
fn a_relation_gets_its_certificate_trusted_and_published() {
    let mut w = World::new();
    let a = test_certs::self_signed("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    let fp = certs::fingerprint(&a.der);
    assert_eq!(w.store_fps(), [fp.clone()].into());
    let bag = w.published(3);
    assert_eq!(bag["version"], "1.0");
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&bag["nodes"]).expect("json");
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["trusted_certs_fp"], serde_json::json!([fp]));
    assert_eq!(w.agent.status, ("active".into(), "2/2 members online, 1 client trusted".into()));
    assert!(w.agent.logs.iter().any(|l| l.contains("trust: added") && l.contains("req/0 (relation 3)")));
}

#[test]
fn a_steady_state_hook_writes_nothing_and_asks_lxd_three_times() {
    let (mut w, _) = World::one_client_trusted();
    // The first update-status after a change runs the full pass and remembers it was steady.
    w.hook("update-status");
    w.agent.calls.clear();
    w.cluster().requests = 0;
    w.hook("update-status");
    assert_eq!(w.cluster().requests, 3, "GET /1.0, members, certificates");
    let writes: Vec<&Call> =
        w.agent.calls.iter().filter(|c| c.tool.ends_with("-set") || c.tool == "juju-log").collect();
    assert!(writes.is_empty(), "{:?}", w.agent.calls);
}

/// A unit whose last full pass was steady, with `units` requirer units on one relation.
fn quiet_world(units: usize, leader: bool) -> (World, Vec<test_certs::Pem>) {
    let mut w = World::new();
    w.agent.leader = leader;
    let made: Vec<test_certs::Pem> = (0..units).map(|i| test_certs::self_signed(&format!("u{i}"))).collect();
    for (i, m) in made.iter().enumerate() {
        w.send(3, &format!("req/{i}"), &[&m.cert_pem]);
    }
    if !leader {
        // The leader (elsewhere) trusted them.
        let scope = Scope { model_uuid: "m-uuid".into(), app: "lxd-integrator".into() };
        for (i, m) in made.iter().enumerate() {
            let owner =
                Owner { relation_id: 3, remote_app: "req".into(), unit: Some(i as u32), interface: Interface::Lxd };
            w.cluster().store.push(TrustEntry {
                name: scope.entry_name(&owner),
                fingerprint: certs::fingerprint(&m.der),
                kind: "client".into(),
                ..Default::default()
            });
        }
    }
    w.hook("api-relation-changed");
    w.hook("update-status");
    w.agent.calls.clear();
    w.cluster().requests = 0;
    (w, made)
}

#[test]
fn a_quiet_update_status_costs_the_same_for_one_or_a_hundred_units() {
    for leader in [true, false] {
        for units in [1, 100] {
            let (mut w, _) = quiet_world(units, leader);
            w.hook("update-status");
            let tools: Vec<&str> = w.agent.calls.iter().map(|c| c.tool.as_str()).collect();
            // One `relation-ids` per endpoint (`api`, `https`), read together with `is-leader`.
            assert_eq!(
                tools,
                ["credential-get", "config-get", "state-get", "is-leader", "relation-ids", "relation-ids"],
                "leader {leader}, {units} units"
            );
            assert_eq!(w.cluster().requests, 3);
        }
    }
}

/// `api-relation-changed` on relation 3 for remote `unit`, or for the remote application's
/// databag when there is none.
fn changed(w: &mut World, unit: Option<&str>) -> Report {
    w.hook_ctx(HookContext {
        name: "api-relation-changed".into(),
        unit: "lxd-integrator/0".into(),
        model_uuid: "m-uuid".into(),
        relation_id: Some(3),
        remote_app: Some("req".into()),
        remote_unit: unit.map(String::from),
        ..Default::default()
    })
}

#[test]
fn a_unit_writing_what_it_asked_before_costs_one_databag_for_any_number_of_units() {
    for leader in [true, false] {
        for units in [1, 100] {
            let (mut w, _) = quiet_world(units, leader);
            // Juju writes the unit's address keys as it joins; the requirer may write keys we
            // do not read the meaning of, but it asks for the same certificates.
            let bag = w.agent.relate(3, "req").units.entry("req/0".into()).or_default();
            bag.insert("ingress-address".into(), "10.1.2.3".into());
            changed(&mut w, Some("req/0"));
            let tools: Vec<&str> = w.agent.calls.iter().map(|c| c.tool.as_str()).collect();
            assert_eq!(
                tools,
                [
                    "credential-get",
                    "config-get",
                    "state-get",
                    "is-leader",
                    "relation-ids",
                    "relation-ids",
                    "relation-get"
                ],
                "leader {leader}, {units} units"
            );
            assert_eq!(w.cluster().requests, 3);
        }
    }
}

#[test]
fn a_unit_asking_something_new_runs_the_full_pass() {
    // Another certificate: trusted, the old one withdrawn.
    let (mut w, made) = quiet_world(3, true);
    let b = test_certs::self_signed("b");
    w.send(3, "req/1", &[&b.cert_pem]);
    changed(&mut w, Some("req/1"));
    let fps = w.store_fps();
    assert!(fps.contains(&certs::fingerprint(&b.der)));
    assert!(!fps.contains(&certs::fingerprint(&made[1].der)));
    assert!(fps.contains(&certs::fingerprint(&made[0].der)) && fps.contains(&certs::fingerprint(&made[2].der)));
    let registered: Vec<String> = serde_json::from_str(&w.published(3)["registered_certificates"]).expect("json");
    let published: BTreeSet<String> = registered
        .iter()
        .flat_map(|p| certs::pem_blocks(p).unwrap_or_default())
        .map(|b| certs::fingerprint(&b.der))
        .collect();
    assert!(published.contains(&certs::fingerprint(&b.der)) && published.len() == 3, "{published:?}");

    // Nothing at all: every certificate of that unit withdrawn.
    let (mut w, made) = quiet_world(2, true);
    w.send(3, "req/0", &[]);
    changed(&mut w, Some("req/0"));
    assert_eq!(w.store_fps(), [certs::fingerprint(&made[1].der)].into());

    // A new unit, never seen by a steady pass, even one asking nothing yet.
    let (mut w, _) = quiet_world(1, true);
    w.send(3, "req/7", &[]);
    changed(&mut w, Some("req/7"));
    assert!(w.agent.calls.iter().filter(|c| c.tool == "relation-get").count() > 1, "full pass");
}

#[test]
fn a_change_hook_after_a_pass_that_was_not_steady_runs_in_full() {
    let (mut w, made) = quiet_world(1, true);
    // The same request, but the last pass changed LXD (an entry deleted by hand, re-added):
    // nothing about the requests is remembered from a pass that was not steady.
    w.cluster().store.clear();
    w.hook("update-status");
    assert!(w.store_fps().contains(&certs::fingerprint(&made[0].der)));
    w.agent.calls.clear();
    changed(&mut w, Some("req/0"));
    assert!(w.agent.calls.iter().filter(|c| c.tool == "relation-get").count() > 1, "full pass");
    // That full pass was steady: the next change hook for the same request is quiet again.
    w.agent.calls.clear();
    changed(&mut w, Some("req/0"));
    assert_eq!(w.agent.calls.iter().filter(|c| c.tool == "relation-get").count(), 1);
}

#[test]
fn a_change_to_the_remote_application_data_runs_the_full_pass() {
    let (mut w, _) = quiet_world(1, true);
    changed(&mut w, None);
    assert!(w.agent.calls.iter().filter(|c| c.tool == "relation-get").count() > 1, "full pass");
}

#[test]
fn drift_after_a_steady_pass_runs_the_full_pass() {
    // An owned entry deleted by hand is re-added.
    let (mut w, made) = quiet_world(2, true);
    let gone = certs::fingerprint(&made[0].der);
    w.cluster().store.retain(|e| e.fingerprint != gone);
    w.hook("update-status");
    assert!(w.store_fps().contains(&gone));

    // An extra owned entry (a departed unit's, left behind) is removed.
    let (mut w, _) = quiet_world(1, true);
    let scope = Scope { model_uuid: "m-uuid".into(), app: "lxd-integrator".into() };
    let stray = Owner { relation_id: 3, remote_app: "req".into(), unit: Some(9), interface: Interface::Lxd };
    w.cluster().store.push(TrustEntry {
        name: scope.entry_name(&stray),
        fingerprint: "ab".repeat(32),
        kind: "client".into(),
        ..Default::default()
    });
    w.hook("update-status");
    assert!(!w.store_fps().contains(&"ab".repeat(32)));

    // A member that failed is no longer published; when it comes back it is again.
    let (mut w, _) = quiet_world(1, true);
    w.cluster().up.insert(N2.into(), false);
    w.hook("update-status");
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&w.published(3)["nodes"]).expect("json");
    assert_eq!(nodes.len(), 1);
    w.cluster().up.insert(N2.into(), true);
    w.hook("update-status");
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&w.published(3)["nodes"]).expect("json");
    assert_eq!(nodes.len(), 2);

    // A revoked credential is noticed.
    let (mut w, _) = quiet_world(1, true);
    w.cluster().trusted = false;
    w.hook("update-status");
    assert_eq!(w.agent.status.0, "blocked");

    // A rotated credential (another endpoint) reaches the full pass too.
    let (mut w, _) = quiet_world(1, true);
    w.agent.credential = crate::memory::cloud_credential(N2);
    w.agent.calls.clear();
    w.hook("update-status");
    assert!(w.agent.calls.iter().any(|c| c.tool == "relation-get"), "full pass after rotation");

    // Leadership moving here makes the new leader do the full pass.
    let (mut w, _) = quiet_world(1, false);
    w.agent.leader = true;
    w.hook("update-status");
    assert!(w.agent.calls.iter().any(|c| c.tool == "relation-get"));
}

#[test]
fn a_certificate_that_expired_since_the_steady_pass_is_handled() {
    let (mut w, made) = quiet_world(1, true);
    // Pretend the steady pass saw a certificate expiring a second ago.
    let steady = w.agent.state.get("steady").cloned().unwrap_or_default();
    let parts: Vec<&str> = steady.split(' ').collect();
    assert_eq!(parts.len(), 3, "{steady}");
    w.agent.state.insert("steady".into(), format!("{} {} {}", parts[0], parts[1], certs::now_unix() - 1));
    w.hook("update-status");
    assert!(w.agent.calls.iter().any(|c| c.tool == "relation-get"), "full pass once a certificate may have expired");
    assert!(w.store_fps().contains(&certs::fingerprint(&made[0].der)), "still valid here, so still trusted");
}

#[test]
fn an_outage_keeps_the_trust_store_and_the_published_data() {
    let (mut w, before) = World::one_client_trusted();
    for up in w.cluster().up.values_mut() {
        *up = false;
    }
    w.hook("update-status");
    assert_waiting_with_everything_kept(&w, &before);
}

/// No member answered: waiting, naming what was tried, and nothing removed or withdrawn.
fn assert_waiting_with_everything_kept(w: &World, before: &Databag) {
    assert_eq!(w.agent.status.0, "waiting");
    let message = &w.agent.status.1;
    assert!(message.starts_with("LXD unreachable at https://127.0.0.1:8443 and 1 other known members"), "{message}");
    assert_eq!(&w.published(3), before);
    assert_eq!(w.store_fps().len(), 1);
}

#[test]
fn the_configured_member_down_fails_over_to_a_known_member() {
    let mut w = World::new();
    w.hook("install");
    w.cluster().up.insert(N1.into(), false);
    let report = w.hook("update-status");
    assert_eq!(report.endpoint_used.map(|e| e.url()), Some(N2.to_string()));
    assert_eq!(w.agent.status, ("active".into(), "1/2 members online, 0 clients trusted".into()));
}

#[test]
fn a_member_that_drops_after_answering_fails_over_too() {
    let (mut w, before) = World::one_client_trusted();
    w.cluster().drop_after_server.insert(N1.into());
    let report = w.hook("update-status");
    assert_eq!(report.endpoint_used.map(|e| e.url()), Some(N2.to_string()));
    assert_eq!(w.agent.status, ("active".into(), "2/2 members online, 1 client trusted".into()));
    assert_eq!(w.published(3), before);
    // Every member doing it: waiting, naming all it tried, still nothing removed.
    w.cluster().drop_after_server.insert(N2.into());
    w.hook("update-status");
    assert_waiting_with_everything_kept(&w, &before);
}

#[test]
fn a_non_leader_publishes_but_never_writes_to_lxd() {
    let mut w = World::new();
    w.agent.leader = false;
    let a = test_certs::self_signed("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    assert!(w.store_fps().is_empty());
    assert_eq!(w.agent.status.1, "2/2 members online; leader manages trust");
    assert_eq!(w.published(3)["registered_certificates"], "[]", "nothing claimed that LXD does not hold");
}

#[test]
fn a_departing_leader_unit_leaves_lxd_alone_from_then_on() {
    let mut w = World::new();
    let a = test_certs::self_signed("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    w.agent.remote.clear();
    w.departed(3, "lxd-integrator/0");
    w.hook("api-relation-broken");
    assert_eq!(w.store_fps().len(), 1, "the leaving unit removed nothing");
    assert_eq!(w.agent.status.0, "maintenance");
}

#[test]
fn a_departing_remote_unit_has_its_certificate_removed() {
    let mut w = World::new();
    let a = test_certs::self_signed("a");
    let b = test_certs::self_signed("b");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.send(3, "req/1", &[&b.cert_pem]);
    w.hook("api-relation-changed");
    assert_eq!(w.store_fps().len(), 2);
    w.departed(3, "req/1");
    assert_eq!(w.store_fps(), [certs::fingerprint(&a.der)].into());
}

#[test]
fn trust_projects_without_the_extension_is_refused_not_widened() {
    let mut w = World::new();
    w.cluster().extensions.retain(|e| e != EXT_CERTIFICATE_PROJECT);
    w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("p1"));
    let a = test_certs::self_signed("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    assert!(w.store_fps().is_empty());
    assert_eq!(w.agent.status.0, "blocked");
    assert!(w.agent.status.1.contains("certificate_project"));
}

#[test]
fn garbage_is_logged_once_not_every_update_status() {
    let mut w = World::new();
    let a = test_certs::self_signed("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.agent
        .remote
        .get_mut(&3)
        .map(|r| r.units.insert("req/1".into(), [("client_certificates".to_string(), "garbage".to_string())].into()));
    w.hook("api-relation-changed");
    w.hook("update-status");
    let warnings: Vec<&String> = w.agent.logs.iter().filter(|l| l.contains("not valid JSON")).collect();
    assert_eq!(warnings.len(), 1);
    assert!(w.agent.status.1.ends_with("invalid client_certificates from req/1"), "{}", w.agent.status.1);
    assert_eq!(w.store_fps().len(), 1, "the good certificate is still trusted");
}

#[test]
fn the_member_that_answers_is_published_even_when_the_cluster_calls_everyone_offline() {
    let mut w = World::new();
    w.agent.relate(3, "req");
    w.cluster().all_reported_offline = true;
    w.hook("update-status");
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&w.published(3)["nodes"]).expect("json");
    assert_eq!(nodes.iter().map(|n| n["endpoint"].as_str().unwrap_or("")).collect::<Vec<_>>(), [N1]);
}

#[test]
fn many_certificates_are_added_in_one_pass_and_logged_in_one_call() {
    let mut w = World::new();
    let pems: Vec<String> = (0..20).map(|i| test_certs::self_signed(&format!("c{i}")).cert_pem).collect();
    let refs: Vec<&str> = pems.iter().map(String::as_str).collect();
    w.send(3, "req/0", &refs);
    let report = w.hook("api-relation-changed");
    assert_eq!(w.store_fps().len(), 20);
    assert_eq!(report.changes.iter().filter(|c| c.kind == ChangeKind::Add && c.error.is_none()).count(), 20);
    assert_eq!(w.agent.calls.iter().filter(|c| c.tool == "juju-log").count(), 1);
    assert_eq!(w.agent.status.1, "2/2 members online, 20 clients trusted");
}

#[test]
fn a_certificate_held_by_someone_elses_entry_is_reported_and_not_counted_as_a_restricted_grant() {
    let mut w = World::new();
    let a = test_certs::self_signed("a");
    let fp = certs::fingerprint(&a.der);
    // An operator trusted the same certificate by hand, unrestricted.
    w.cluster().store.push(TrustEntry {
        name: "operator-added".into(),
        fingerprint: fp.clone(),
        kind: "client".into(),
        restricted: false,
        projects: vec![],
    });
    w.agent.config.insert(OPT_TRUST_PROJECTS.into(), serde_json::json!("default"));
    w.send(3, "req/0", &[&a.cert_pem]);
    let report = w.hook("api-relation-changed");
    assert!(report.changes.is_empty(), "the operator's entry is left alone: {:?}", report.changes);
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&w.published(3)["nodes"]).expect("json");
    assert_eq!(
        nodes[0]["trusted_certs_fp"],
        serde_json::json!([]),
        "an unrestricted grant is not the restricted one configured"
    );
    assert!(w.agent.status.1.contains("1 held by entries not ours"), "{}", w.agent.status.1);

    // Without trust-projects the operator's unrestricted entry is the grant asked for.
    w.agent.config.remove(OPT_TRUST_PROJECTS);
    w.hook("config-changed");
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&w.published(3)["nodes"]).expect("json");
    assert_eq!(nodes[0]["trusted_certs_fp"], serde_json::json!([fp]));
    assert!(w.agent.status.1.contains("1 held by entries not ours"), "still reported: {}", w.agent.status.1);
}

#[test]
fn ten_thousand_bad_entries_from_one_unit_do_not_stop_another_relations_departure() {
    let mut w = World::new();
    let (good, leaving) = (test_certs::self_signed("good"), test_certs::self_signed("leaving"));
    let garbage: Vec<String> =
        (0..10_000).map(|i| format!("-----BEGIN CERTIFICATE-----\nAAAA{i}\n-----END CERTIFICATE-----\n")).collect();
    let mut noisy: Vec<&str> = garbage.iter().map(String::as_str).collect();
    noisy.push(&good.cert_pem);
    w.send(3, "req/0", &noisy);
    w.send(4, "req/5", &[&leaving.cert_pem]);
    w.hook("api-relation-changed");
    assert_eq!(w.store_fps().len(), 2);
    assert_eq!(w.agent.refused().count(), 0, "no tool call hit a limit");
    assert!(w.agent.logs.iter().all(|l| l.len() <= crate::limits::LOG_MESSAGE_BYTES));
    w.departed(4, "req/5");
    assert_eq!(w.store_fps(), [certs::fingerprint(&good.der)].into(), "the departed unit's entry is gone");
}

#[test]
fn padded_copies_of_one_certificate_are_published_once_and_small() {
    let mut w = World::new();
    let a = test_certs::self_signed("a");
    let padded = format!("{}{}{}", "\n".repeat(100_000), a.cert_pem.replace('\n', "\r\n"), " ".repeat(100_000));
    let copies: Vec<&str> = std::iter::repeat_n(padded.as_str(), 20).collect();
    w.send(3, "req/0", &copies);
    w.hook("api-relation-changed");
    let bag = w.published(3);
    let registered: Vec<String> = serde_json::from_str(&bag["registered_certificates"]).expect("json");
    assert_eq!(registered, [certs::to_pem(&a.der)]);
    assert!(w.agent.bytes_sent() < 64 * 1024, "{} bytes written for 4 MB read", w.agent.bytes_sent());
}

#[test]
fn the_server_certificate_is_published_only_after_connecting_with_it() {
    let mut w = World::new();
    let (first, rotated) = (test_certs::self_signed("root@lxd"), test_certs::self_signed("root@lxd"));
    w.agent.credential["credential"]["attrs"]["server-cert"] = serde_json::json!(first.cert_pem);
    w.send(3, "req/0", &[&test_certs::self_signed("a").cert_pem]);
    w.hook("api-relation-changed");
    let bag = w.agent.published(3, false);
    assert_eq!(bag["server_certificate"], certs::to_pem(&first.der));
    assert_eq!(bag["server_certificate_fingerprint"], certs::fingerprint(&first.der));
    assert!(w.agent.published(3, true).is_empty(), "api writes unit databags only");
    // Rotated while LXD is down: not connected with the new pin, so nothing changes yet.
    w.agent.credential["credential"]["attrs"]["server-cert"] = serde_json::json!(rotated.cert_pem);
    for up in w.cluster().up.values_mut() {
        *up = false;
    }
    w.hook("update-status");
    assert_eq!(w.published(3)["server_certificate_fingerprint"], certs::fingerprint(&first.der));
    // Reached again with the new pin: both keys follow it, in both databags.
    for up in w.cluster().up.values_mut() {
        *up = true;
    }
    w.hook("update-status");
    let bag = w.agent.published(3, false);
    assert_eq!(bag["server_certificate"], certs::to_pem(&rotated.der));
    assert_eq!(bag["server_certificate_fingerprint"], certs::fingerprint(&rotated.der));
}

/// An LXD 5.21+ identity with these server entitlements, fine-grained.
fn fine_grained(entitlements: &[&str]) -> crate::lxd::Identity {
    crate::lxd::Identity {
        kind: "Client certificate".into(),
        name: "juju".into(),
        fine_grained: Some(true),
        permissions: entitlements
            .iter()
            .map(|e| crate::lxd::Permission {
                entity_type: "server".into(),
                url: "/1.0".into(),
                entitlement: e.to_string(),
            })
            .collect(),
    }
}

#[test]
fn an_identity_that_cannot_create_identities_blocks_naming_it_and_changes_nothing() {
    let mut w = World::new();
    w.cluster().extensions.push(EXT_ACCESS_MANAGEMENT.into());
    w.cluster().identity = Some(fine_grained(&["can_view", "can_delete_identities"]));
    let a = test_certs::self_signed("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    let report = w.hook("api-relation-changed");
    assert_eq!(
        w.agent.status,
        (
            "blocked".into(),
            "LXD identity lacks can_create_identities, can_edit_identities on server; grant them".into()
        )
    );
    assert!(w.store_fps().is_empty(), "nothing sent to be refused");
    assert!(report.changes.is_empty());
    assert_eq!(report.access, Some(TrustAccess::Missing(vec!["can_create_identities", "can_edit_identities"])));
    // The nodes are still published; no certificate is claimed.
    assert_eq!(w.published(3).get("registered_certificates").map(String::as_str), Some("[]"));
    // Granted: the next update-status sees a new identity (not a quiet one) and adds it.
    w.hook("update-status");
    w.cluster().identity = Some(fine_grained(&["permission_manager"]));
    w.hook("update-status");
    assert_eq!(w.store_fps(), [certs::fingerprint(&a.der)].into());
    assert_eq!(w.agent.status, ("active".into(), "2/2 members online, 1 client trusted".into()));
}

#[test]
fn a_restricted_certificate_as_credential_blocks_without_access_management_too() {
    let mut w = World::new();
    let me = test_certs::self_signed("integrator");
    w.agent.credential["credential"]["attrs"]["client-cert"] = serde_json::json!(me.cert_pem);
    w.agent.credential["credential"]["attrs"]["client-key"] = serde_json::json!(me.key_pem);
    let own = me.der.clone();
    w.cluster().store.push(TrustEntry {
        name: "juju-controller".into(),
        fingerprint: certs::fingerprint(&own),
        kind: "client".into(),
        restricted: true,
        projects: vec!["default".into()],
    });
    let a = test_certs::self_signed("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    assert_eq!(w.agent.status.0, "blocked");
    assert!(w.agent.status.1.contains("restricted"), "{:?}", w.agent.status);
    assert_eq!(w.store_fps().len(), 1, "only its own entry");
}

// Credentials from a Juju user secret (`lxd-credentials-secret`): precedence, the statuses of
// an unusable secret, rotation on `secret-changed`, and that the content goes nowhere.

const SECRET_ID: &str = "cn3q8gvmp25c7bt7nqkg";
use crate::memory::{MEMORY_CLIENT_CERT as CERT, MEMORY_CLIENT_KEY as KEY, MEMORY_SERVER_CERT as SERVER};

/// A line of the secret's private key: nothing the pass sends may contain it.
fn key_material() -> &'static str {
    KEY.lines().nth(1).unwrap_or(KEY)
}

fn secret_content(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("endpoint", endpoint.to_string()),
        ("client-cert", CERT.into()),
        ("client-key", KEY.into()),
        ("server-cert", SERVER.into()),
    ]
}

/// An untrusted leader whose config names a granted secret for member `endpoint`.
fn secret_world(endpoint: &str) -> World {
    let mut w = World::new();
    w.agent.trusted = false;
    let content = secret_content(endpoint);
    let pairs: Vec<(&str, &str)> = content.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let uri = w.agent.add_secret(SECRET_ID, &pairs);
    w.agent.config.insert(crate::config::OPT_SECRET.into(), serde_json::json!(uri));
    w
}

fn secret_gets(w: &World) -> Vec<Vec<String>> {
    w.agent.calls.iter().filter(|c| c.tool == "secret-get").map(|c| c.args.clone()).collect()
}

/// The key is in no argv, no stdin, no log, no status, no state.
fn assert_secret_kept(w: &World) {
    assert_eq!(w.agent.calls_containing(key_material()).count(), 0);
    assert!(!w.agent.logs.iter().any(|l| l.contains(key_material()) || l.contains("PRIVATE KEY")));
    assert!(!w.agent.status.1.contains(key_material()));
    assert!(!w.agent.state.values().any(|v| v.contains(key_material())));
}

#[test]
fn a_granted_secret_is_used_when_trust_is_not() {
    let mut w = secret_world(N2);
    let report = w.hook("config-changed");
    let creds = report.credentials.expect("credentials");
    assert_eq!((creds.source, creds.endpoint.url()), (crate::credentials::Source::Secret, N2.to_string()));
    assert_eq!(w.agent.status, ("active".into(), "2/2 members online, 0 clients trusted".into()));
    assert_eq!(
        secret_gets(&w),
        [vec![format!("secret:{SECRET_ID}"), "--format=json".to_string()]],
        "read once, no --refresh outside secret-changed"
    );
    assert_secret_kept(&w);
}

#[test]
fn trust_wins_over_the_secret_which_wins_over_the_plain_options() {
    let mut w = secret_world(N2);
    w.agent.trusted = true;
    let report = w.hook("config-changed");
    assert_eq!(report.credentials.map(|c| c.source), Some(crate::credentials::Source::Trust));
    assert!(secret_gets(&w).is_empty(), "trust wins: the secret is not even read");
    assert!(
        w.agent.logs.iter().any(|l| l.contains("lxd-credentials-secret is set but not read")),
        "{:?}",
        w.agent.logs
    );
    // Without trust, the secret beats complete plain options, which are said to be ignored.
    w.agent.trusted = false;
    for (k, v) in
        [("lxd_endpoint", N1), ("lxd_client_cert", CERT), ("lxd_client_key", KEY), ("lxd_server_cert", SERVER)]
    {
        w.agent.config.insert(k.into(), serde_json::json!(v));
    }
    let report = w.hook("config-changed");
    let creds = report.credentials.expect("credentials");
    assert_eq!((creds.source, creds.endpoint.url()), (crate::credentials::Source::Secret, N2.to_string()));
    assert!(w.agent.logs.iter().any(|l| l.contains("the lxd_* options are ignored")), "{:?}", w.agent.logs);
}

#[test]
fn an_unusable_secret_blocks_naming_the_fix_and_leaves_lxd_alone() {
    let a = test_certs::self_signed("a");
    let fp = certs::fingerprint(&a.der);
    let mut w = secret_world(N1);
    // Plain options that would work: never used while the secret is set.
    for (k, v) in
        [("lxd_endpoint", N1), ("lxd_client_cert", CERT), ("lxd_client_key", KEY), ("lxd_server_cert", SERVER)]
    {
        w.agent.config.insert(k.into(), serde_json::json!(v));
    }
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    assert_eq!(w.store_fps(), [fp.clone()].into());
    let uri = format!("secret:{SECRET_ID}");
    // Revoked.
    w.agent.secrets.get_mut(SECRET_ID).expect("secret").granted = false;
    w.cluster().requests = 0;
    let report = w.hook("update-status");
    assert_eq!(
        w.agent.status,
        ("blocked".into(), format!("{uri} not granted; run: juju grant-secret {uri} lxd-integrator"))
    );
    assert!(report.credentials.is_none() && w.cluster().requests == 0, "LXD is not even asked");
    assert_eq!(w.store_fps(), [fp.clone()].into(), "nothing removed");
    // Granted again, but a new revision lacks the key; refreshed in secret-changed.
    w.agent.secrets.get_mut(SECRET_ID).expect("secret").granted = true;
    w.agent.update_secret(SECRET_ID, &[("endpoint", N1), ("client-cert", CERT), ("server-cert", SERVER)]);
    w.hook("secret-changed");
    assert_eq!(w.agent.status, ("blocked".into(), format!("{uri} lacks key client-key; update it with all four keys")));
    // Removed.
    w.agent.secrets.clear();
    w.hook("update-status");
    assert_eq!(
        w.agent.status.1,
        format!("{uri} not found; juju add-secret a new one and set lxd-credentials-secret to its ID")
    );
    // An older Juju without secret-get.
    w.agent.missing.insert("secret-get".into());
    w.hook("update-status");
    assert!(w.agent.status.1.starts_with("lxd-credentials-secret needs Juju 3.3+"), "{}", w.agent.status.1);
    // Not a URI at all: never passed to secret-get.
    w.agent.missing.remove("secret-get");
    w.agent.config.insert(crate::config::OPT_SECRET.into(), serde_json::json!("my-lxd-creds"));
    w.agent.calls.clear();
    w.hook("update-status");
    assert!(w.agent.status.1.starts_with("lxd-credentials-secret is not a secret URI"), "{}", w.agent.status.1);
    assert!(secret_gets(&w).is_empty());
    assert_eq!(w.agent.status.0, "blocked");
    assert_eq!(w.store_fps(), [fp].into(), "nothing removed through all of it");
    assert_secret_kept(&w);
}

#[test]
fn a_new_revision_takes_effect_in_secret_changed() {
    let mut w = secret_world(N1);
    let endpoint = |r: &Report| r.credentials.as_ref().map(|c| c.endpoint.url());
    assert_eq!(endpoint(&w.hook("config-changed")), Some(N1.to_string()));
    let rotated = secret_content(N2);
    let pairs: Vec<(&str, &str)> = rotated.iter().map(|(k, v)| (*k, v.as_str())).collect();
    w.agent.update_secret(SECRET_ID, &pairs);
    // Until secret-changed, the unit keeps the revision it tracks.
    assert_eq!(endpoint(&w.hook("update-status")), Some(N1.to_string()));
    w.agent.calls.clear();
    assert_eq!(endpoint(&w.hook("secret-changed")), Some(N2.to_string()));
    assert_eq!(
        secret_gets(&w),
        [vec![format!("secret:{SECRET_ID}"), "--format=json".to_string(), "--refresh".to_string()]]
    );
    assert_eq!(endpoint(&w.hook("update-status")), Some(N2.to_string()), "tracked from then on");
    assert_secret_kept(&w);
}

#[test]
fn the_plain_key_option_suggests_a_secret_once() {
    let mut w = World::new();
    w.agent.trusted = false;
    for (k, v) in
        [("lxd_endpoint", N1), ("lxd_client_cert", CERT), ("lxd_client_key", KEY), ("lxd_server_cert", SERVER)]
    {
        w.agent.config.insert(k.into(), serde_json::json!(v));
    }
    for _ in 0..3 {
        w.hook("update-status");
    }
    assert_eq!(w.agent.status.0, "active");
    let hints = w.agent.logs.iter().filter(|l| l.contains(crate::credentials::MOVE_KEY_TO_SECRET)).count();
    assert_eq!(hints, 1, "{:?}", w.agent.logs);
}

#[test]
fn after_a_blocked_pass_the_next_update_status_runs_in_full_and_heals_the_status() {
    let mut w = secret_world(N1);
    w.hook("config-changed");
    // Steady: the next update-status would be quiet.
    w.hook("update-status");
    assert_eq!(w.agent.status.0, "active");
    w.agent.secrets.get_mut(SECRET_ID).expect("secret").granted = false;
    w.hook("update-status");
    assert_eq!(w.agent.status.0, "blocked");
    // Granted again, nothing else changed: the pass must not be skipped as "steady".
    w.agent.secrets.get_mut(SECRET_ID).expect("secret").granted = true;
    w.hook("update-status");
    assert_eq!(w.agent.status, ("active".into(), "2/2 members online, 0 clients trusted".into()));
}

#[test]
fn after_an_outage_the_next_update_status_runs_in_full_and_heals_the_status() {
    let (mut w, _) = quiet_world(1, true);
    w.cluster().up.insert(N1.into(), false);
    w.cluster().up.insert(N2.into(), false);
    w.hook("update-status");
    assert_eq!(w.agent.status.0, "waiting");
    w.cluster().up.insert(N1.into(), true);
    w.cluster().up.insert(N2.into(), true);
    w.hook("update-status");
    assert_eq!(w.agent.status.0, "active", "{}", w.agent.status.1);
}
