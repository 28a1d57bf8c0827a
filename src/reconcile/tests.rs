//! The reconcile's decisions, against an in-memory unit agent and an in-memory LXD.
//! (The end-to-end tests run the same pass against real processes and a real cluster.)

use super::*;
use crate::certs::test_certs;
use crate::hook_tools::{HookTools, ToolError, ToolOutput};
use crate::lxd::{AddOutcome, NewTrustEntry};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Agent {
    trusted: bool,
    config: BTreeMap<String, serde_json::Value>,
    leader: bool,
    state: BTreeMap<String, String>,
    /// relation id → (remote app, remote unit bags, remote app bag)
    remote: BTreeMap<u32, (String, BTreeMap<String, Databag>, Databag)>,
    /// (relation id, member) → our databags
    ours: BTreeMap<(u32, String), Databag>,
    status: (String, String),
    logs: Vec<String>,
    calls: Vec<String>,
}

fn spec(endpoint: &str) -> serde_json::Value {
    serde_json::json!({"type": "lxd", "endpoint": endpoint, "credential": {"auth-type": "certificate",
        "attrs": {"client-cert": "C", "client-key": "K", "server-cert": "S"}}})
}

impl HookTools for Agent {
    fn run(&mut self, tool: &str, args: &[&str], stdin: Option<&[u8]>) -> Result<ToolOutput, ToolError> {
        self.calls.push(tool.to_string());
        let ok = |v: serde_json::Value| Ok(ToolOutput { code: 0, stdout: v.to_string().into_bytes(), stderr: vec![] });
        let arg = |flag: &str| args.iter().position(|a| *a == flag).and_then(|i| args.get(i + 1)).copied().unwrap_or("");
        let rel: u32 = arg("-r").parse().unwrap_or(0);
        let stdin_map = || -> BTreeMap<String, String> { stdin.and_then(|s| serde_json::from_slice(s).ok()).unwrap_or_default() };
        match tool {
            "credential-get" if self.trusted => ok(spec("127.0.0.1")),
            "credential-get" => Ok(ToolOutput { code: 1, stdout: vec![], stderr: b"ERROR cannot access cloud credentials: permission denied\n".to_vec() }),
            "config-get" => ok(serde_json::to_value(&self.config).unwrap_or_default()),
            "is-leader" => ok(serde_json::json!(self.leader)),
            "state-get" => ok(serde_json::to_value(&self.state).unwrap_or_default()),
            "state-set" => {
                self.state.extend(stdin_map());
                ok(serde_json::Value::Null)
            }
            "relation-ids" => ok(serde_json::json!(self.remote.keys().map(|id| format!("api:{id}")).collect::<Vec<_>>())),
            "relation-list" if args.contains(&"--app") => ok(serde_json::json!(self.remote.get(&rel).map(|r| r.0.clone()))),
            "relation-list" => ok(serde_json::json!(self.remote.get(&rel).map(|r| r.1.keys().cloned().collect::<Vec<_>>()).unwrap_or_default())),
            "relation-get" => {
                let member = args.last().copied().unwrap_or("").to_string();
                let bag = match self.remote.get(&rel) {
                    Some((app, _, bag)) if *app == member => bag.clone(),
                    Some((_, units, _)) if units.contains_key(&member) => units[&member].clone(),
                    _ => self.ours.get(&(rel, member)).cloned().unwrap_or_default(),
                };
                ok(serde_json::to_value(bag).unwrap_or_default())
            }
            "relation-set" => {
                let member = if args.contains(&"--app") { "lxd-integrator".to_string() } else { "lxd-integrator/0".to_string() };
                self.ours.entry((rel, member)).or_default().extend(stdin_map());
                ok(serde_json::Value::Null)
            }
            "status-set" => {
                self.status = (args[0].to_string(), args.last().copied().unwrap_or("").to_string());
                ok(serde_json::Value::Null)
            }
            "juju-log" => {
                self.logs.push(args.last().copied().unwrap_or("").to_string());
                ok(serde_json::Value::Null)
            }
            "application-version-set" => ok(serde_json::Value::Null),
            other => Err(ToolError::Missing(other.to_string())),
        }
    }
}

#[derive(Default)]
struct Cluster {
    /// endpoint url → reachable
    up: BTreeMap<String, bool>,
    trusted: bool,
    store: Vec<TrustEntry>,
    extensions: Vec<String>,
    requests: usize,
    /// endpoint urls that answer `GET /1.0`, then drop the connection
    drop_after_server: BTreeSet<String>,
    /// The cluster database says every member is offline (seen while it re-elects a leader).
    all_reported_offline: bool,
}

struct FakeLxd {
    ep: Endpoint,
    cluster: Arc<Mutex<Cluster>>,
}

impl FakeLxd {
    fn hit(&self) -> Result<MutexGuard<'_, Cluster>, LxdError> {
        let mut c = self.cluster.lock().expect("cluster lock");
        c.requests += 1;
        if !c.up.get(&self.ep.url()).copied().unwrap_or(false) {
            return Err(LxdError::Unreachable { endpoint: self.ep.url(), detail: "connection refused".into() });
        }
        Ok(c)
    }
}

impl Lxd for FakeLxd {
    fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
    fn server(&mut self) -> Result<ServerInfo, LxdError> {
        let c = self.hit()?;
        Ok(ServerInfo { trusted: c.trusted, api_extensions: c.extensions.clone(), server_name: "node1".into(), server_version: "5.0.2".into(), clustered: true, addresses: vec![] })
    }
    fn members(&mut self) -> Result<Vec<Member>, LxdError> {
        let c = self.hit()?;
        if c.drop_after_server.contains(&self.ep.url()) {
            return Err(LxdError::Unreachable { endpoint: self.ep.url(), detail: "connection closed".into() });
        }
        Ok(c.up.iter().enumerate().map(|(i, (url, up))| Member {
            name: format!("node{}", i + 1),
            url: url.clone(),
            status: if *up && !c.all_reported_offline { "Online".into() } else { "Offline".into() },
            message: String::new(),
        }).collect())
    }
    fn trust_store(&mut self) -> Result<Vec<TrustEntry>, LxdError> {
        Ok(self.hit()?.store.clone())
    }
    fn add_trust(&mut self, e: &NewTrustEntry) -> Result<AddOutcome, LxdError> {
        let mut c = self.hit()?;
        let fp = certs::fingerprint(&e.der);
        if c.store.iter().any(|x| x.fingerprint == fp) {
            return Ok(AddOutcome::AlreadyPresent);
        }
        c.store.push(TrustEntry { name: e.name.clone(), fingerprint: fp, kind: "client".into(), restricted: e.projects.is_some(), projects: e.projects.clone().unwrap_or_default() });
        Ok(AddOutcome::Added)
    }
    fn remove_trust(&mut self, fp: &str) -> Result<(), LxdError> {
        self.hit()?.store.retain(|x| x.fingerprint != fp);
        Ok(())
    }
    fn restrict_trust(&mut self, fp: &str, projects: Option<&[String]>) -> Result<(), LxdError> {
        let mut c = self.hit()?;
        for x in c.store.iter_mut().filter(|x| x.fingerprint == fp) {
            x.restricted = projects.is_some();
            x.projects = projects.map(|p| p.to_vec()).unwrap_or_default();
        }
        Ok(())
    }
}

struct FakeConnector(Arc<Mutex<Cluster>>);

impl Connector for FakeConnector {
    fn connect(&self, endpoint: &Endpoint, _tls: &credentials::TlsCredentials) -> Result<crate::lxd::Connection, LxdError> {
        Ok(Box::new(FakeLxd { ep: endpoint.clone(), cluster: self.0.clone() }))
    }
}

const N1: &str = "https://127.0.0.1:8443";
const N2: &str = "https://127.0.0.2:8443";

struct World {
    agent: Agent,
    cluster: Arc<Mutex<Cluster>>,
}

impl World {
    fn new() -> World {
        let cluster = Cluster {
            up: [(N1.to_string(), true), (N2.to_string(), true)].into(),
            trusted: true,
            extensions: vec!["clustering".into(), EXT_CERTIFICATE_PROJECT.into()],
            ..Default::default()
        };
        World { agent: Agent { trusted: true, leader: true, ..Default::default() }, cluster: Arc::new(Mutex::new(cluster)) }
    }

    fn send(&mut self, rel: u32, unit: &str, pems: &[&str]) {
        let entry = self.agent.remote.entry(rel).or_insert_with(|| ("req".into(), BTreeMap::new(), Databag::new()));
        entry.1.insert(unit.into(), [("client_certificates".to_string(), serde_json::to_string(pems).unwrap_or_default())].into());
    }

    fn hook(&mut self, name: &str) -> Report {
        self.hook_ctx(HookContext { name: name.into(), unit: "lxd-integrator/0".into(), model_uuid: "m-uuid".into(), ..Default::default() })
    }

    fn hook_ctx(&mut self, ctx: HookContext) -> Report {
        let connector = FakeConnector(self.cluster.clone());
        let mut juju = Juju::new(&mut self.agent);
        run(&ctx, &mut juju, &connector, Mode::HOOK).expect("hook tools work")
    }

    fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().expect("cluster lock")
    }

    /// `api-relation-departed` on relation `rel`, with `unit` departing (a remote unit, or
    /// this unit itself when it is being removed).
    fn departed(&mut self, rel: u32, unit: &str) -> Report {
        self.hook_ctx(HookContext {
            name: "api-relation-departed".into(),
            unit: "lxd-integrator/0".into(),
            model_uuid: "m-uuid".into(),
            relation_id: Some(rel),
            departing_unit: Some(unit.into()),
            ..Default::default()
        })
    }

    fn store_fps(&self) -> BTreeSet<String> {
        self.cluster().store.iter().map(|e| e.fingerprint.clone()).collect()
    }

    fn published(&self, rel: u32) -> Databag {
        self.agent.ours.get(&(rel, "lxd-integrator/0".to_string())).cloned().unwrap_or_default()
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
    let a = test_certs::client("a");
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
    let mut w = World::new();
    let a = test_certs::client("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    w.agent.calls.clear();
    w.cluster().requests = 0;
    w.hook("update-status");
    assert_eq!(w.cluster().requests, 3, "GET /1.0, members, certificates");
    let writes: Vec<&String> = w.agent.calls.iter().filter(|c| c.ends_with("-set") || *c == "juju-log").collect();
    assert!(writes.is_empty(), "{:?}", w.agent.calls);
}

#[test]
fn an_outage_keeps_the_trust_store_and_the_published_data() {
    let mut w = World::new();
    let a = test_certs::client("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    let before = w.published(3);
    for up in w.cluster().up.values_mut() {
        *up = false;
    }
    w.hook("update-status");
    assert_eq!(w.agent.status.0, "waiting");
    assert!(w.agent.status.1.starts_with("LXD unreachable at https://127.0.0.1:8443 and 1 other known members"), "{}", w.agent.status.1);
    assert_eq!(w.published(3), before);
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
    let mut w = World::new();
    let a = test_certs::client("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    let before = w.published(3);
    w.cluster().drop_after_server.insert(N1.into());
    let report = w.hook("update-status");
    assert_eq!(report.endpoint_used.map(|e| e.url()), Some(N2.to_string()));
    assert_eq!(w.agent.status, ("active".into(), "2/2 members online, 1 client trusted".into()));
    assert_eq!(w.published(3), before);
    // Every member doing it: waiting, naming all it tried, still nothing removed.
    w.cluster().drop_after_server.insert(N2.into());
    w.hook("update-status");
    assert_eq!(w.agent.status.0, "waiting");
    assert!(w.agent.status.1.starts_with("LXD unreachable at https://127.0.0.1:8443 and 1 other known members"), "{}", w.agent.status.1);
    assert_eq!(w.published(3), before);
    assert_eq!(w.store_fps().len(), 1);
}

#[test]
fn a_non_leader_publishes_but_never_writes_to_lxd() {
    let mut w = World::new();
    w.agent.leader = false;
    let a = test_certs::client("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    assert!(w.store_fps().is_empty());
    assert_eq!(w.agent.status.1, "2/2 members online; leader manages trust");
    assert_eq!(w.published(3)["registered_certificates"], "[]", "nothing claimed that LXD does not hold");
}

#[test]
fn a_departing_leader_unit_leaves_lxd_alone_from_then_on() {
    let mut w = World::new();
    let a = test_certs::client("a");
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
    let a = test_certs::client("a");
    let b = test_certs::client("b");
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
    let a = test_certs::client("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.hook("api-relation-changed");
    assert!(w.store_fps().is_empty());
    assert_eq!(w.agent.status.0, "blocked");
    assert!(w.agent.status.1.contains("certificate_project"));
}

#[test]
fn garbage_is_logged_once_not_every_update_status() {
    let mut w = World::new();
    let a = test_certs::client("a");
    w.send(3, "req/0", &[&a.cert_pem]);
    w.agent.remote.get_mut(&3).map(|r| r.1.insert("req/1".into(), [("client_certificates".to_string(), "garbage".to_string())].into()));
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
    w.agent.remote.insert(3, ("req".into(), BTreeMap::new(), Databag::new()));
    w.cluster().all_reported_offline = true;
    w.hook("update-status");
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&w.published(3)["nodes"]).expect("json");
    assert_eq!(nodes.iter().map(|n| n["endpoint"].as_str().unwrap_or("")).collect::<Vec<_>>(), [N1]);
}

#[test]
fn many_certificates_are_added_in_one_pass_and_logged_in_one_call() {
    let mut w = World::new();
    let pems: Vec<String> = (0..20).map(|i| test_certs::client(&format!("c{i}")).cert_pem).collect();
    let refs: Vec<&str> = pems.iter().map(String::as_str).collect();
    w.send(3, "req/0", &refs);
    let report = w.hook("api-relation-changed");
    assert_eq!(w.store_fps().len(), 20);
    assert_eq!(report.changes.iter().filter(|c| c.kind == ChangeKind::Add && c.error.is_none()).count(), 20);
    assert_eq!(w.agent.calls.iter().filter(|c| *c == "juju-log").count(), 1);
    assert_eq!(w.agent.status.1, "2/2 members online, 20 clients trusted");
}
