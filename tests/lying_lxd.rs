//! A misbehaving LXD (or whatever answers with the pinned certificate): a version that would
//! not fit an argument, thousands of members with oversized, multi-line and escape-laden names
//! and URLs. The pass still ends well: nothing refused by the unit agent, the version shown as
//! `unknown`, only the plain members published, the bad ones named once, escaped, in the log,
//! and the state cache and every databag inside their bounds.

use lxd_integrator::credentials::TlsCredentials;
use lxd_integrator::dispatch::HookContext;
use lxd_integrator::endpoint::Endpoint;
use lxd_integrator::hook_tools::Juju;
use lxd_integrator::limits;
use lxd_integrator::lxd::{
    AddOutcome, Connection, Connector, Identity, Lxd, LxdError, Member, NewTrustEntry, ServerInfo, TrustEntry,
};
use lxd_integrator::memory::{Agent, Cluster, MemoryConnector};
use lxd_integrator::reconcile::{self, Mode};
use lxd_integrator::relation::{self, Databag};
use std::sync::{Arc, Mutex};
use std::time::Instant;

const GOOD: &str = "https://127.0.0.1:8443";
/// A name that would end a log line and colour the terminal reading it.
const ESCAPING: &str = "evil\n\u{1b}[31mmember";

/// The in-memory LXD, with `GET /1.0` and the member list replaced by a liar's.
struct Liar {
    inner: Connection,
}

impl Lxd for Liar {
    fn endpoint(&self) -> &Endpoint {
        self.inner.endpoint()
    }
    fn server(&mut self) -> Result<ServerInfo, LxdError> {
        let honest = self.inner.server()?;
        Ok(ServerInfo { server_version: "9".repeat(200 * 1024), server_name: "x\ny".into(), ..honest })
    }
    fn members(&mut self) -> Result<Vec<Member>, LxdError> {
        let member = |name: String, url: String| Member { name, url, status: "Online".into(), message: String::new() };
        let first = Member { message: "m".repeat(1 << 20), ..member("node1".into(), GOOD.into()) };
        let mut all = vec![first, member(ESCAPING.into(), "https://10.0.0.2:8443".into())];
        // Plain members, too many: remembered whole, their URLs alone outgrow a state value.
        all.extend((0..5_000).map(|i| member(format!("m{i}"), format!("https://10.1.{}.{}:8443", i / 250, i % 250))));
        all.extend((0..100).map(|i| member(format!("{i}{}", "n".repeat(100 * 1024)), GOOD.into())));
        all.extend(
            (0..100).map(|i| member(format!("p{i}"), format!("https://10.2.0.{i}:8443/{}", "p".repeat(1 << 20)))),
        );
        Ok(all)
    }
    fn trust_store(&mut self) -> Result<Vec<TrustEntry>, LxdError> {
        self.inner.trust_store()
    }
    fn current_identity(&mut self) -> Result<Identity, LxdError> {
        self.inner.current_identity()
    }
    fn add_trust(&mut self, entry: &NewTrustEntry) -> Result<AddOutcome, LxdError> {
        self.inner.add_trust(entry)
    }
    fn remove_trust(&mut self, fingerprint: &str) -> Result<(), LxdError> {
        self.inner.remove_trust(fingerprint)
    }
    fn restrict_trust(&mut self, fingerprint: &str, projects: Option<&[String]>) -> Result<(), LxdError> {
        self.inner.restrict_trust(fingerprint, projects)
    }
    fn rename_trust(&mut self, fingerprint: &str, name: &str) -> Result<(), LxdError> {
        self.inner.rename_trust(fingerprint, name)
    }
    fn add_trust_all(&mut self, entries: &[NewTrustEntry], until: Instant) -> Vec<Result<AddOutcome, LxdError>> {
        self.inner.add_trust_all(entries, until)
    }
    fn remove_trust_all(&mut self, fingerprints: &[String], until: Instant) -> Vec<Result<(), LxdError>> {
        self.inner.remove_trust_all(fingerprints, until)
    }
}

struct LyingConnector(MemoryConnector);

impl Connector for LyingConnector {
    fn connect(&self, endpoint: &Endpoint, tls: &TlsCredentials) -> Result<Connection, LxdError> {
        Ok(Box::new(Liar { inner: self.0.connect(endpoint, tls)? }))
    }
}

fn hook(agent: &mut Agent, cluster: &Arc<Mutex<Cluster>>, name: &str) -> reconcile::Report {
    let ctx = HookContext {
        name: name.into(),
        unit: "lxd-integrator/0".into(),
        model_uuid: "m-uuid".into(),
        ..HookContext::default()
    };
    let connector = LyingConnector(MemoryConnector(cluster.clone()));
    reconcile::run(&ctx, &mut Juju::new(agent), &connector, Mode::HOOK).expect("no hook tool fails")
}

fn nodes(bag: &Databag) -> Vec<(String, String)> {
    let nodes: Vec<serde_json::Value> = serde_json::from_str(&bag[relation::KEY_NODES]).expect("nodes are JSON");
    nodes
        .iter()
        .map(|n| (n["name"].as_str().unwrap_or("").into(), n["endpoint"].as_str().unwrap_or("").into()))
        .collect()
}

#[test]
fn a_lying_lxd_fails_no_hook_and_outgrows_no_bound() {
    let cluster = Cluster::new(&[GOOD]).shared();
    let mut agent = Agent::leader();
    agent.relate(3, "req").units.insert("req/0".into(), Databag::new());

    let report = hook(&mut agent, &cluster, "config-changed");
    assert_eq!(report.error, None, "{:?}", report.status);

    assert!(agent.refused().next().is_none(), "{:?}", agent.refused().collect::<Vec<_>>());
    assert_eq!(agent.version.as_deref(), Some("unknown"));
    assert_eq!(report.members.len(), limits::MEMBERS);
    let published = nodes(&agent.published(3, false));
    assert_eq!(published[0], ("node1".to_string(), GOOD.to_string()));
    assert!(published.iter().all(|(name, url)| !name.contains('\n') && url.len() <= limits::MEMBER_URL_BYTES));
    for app in [false, true] {
        assert!(relation::bag_bytes(&agent.published(3, app)) <= limits::PUBLISHED_BYTES);
    }
    let state: usize = agent.state.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(state <= limits::UNIT_STATE_BYTES && agent.state.values().all(|v| v.len() <= limits::STATE_VALUE_BYTES));
    let remembered: Vec<String> = serde_json::from_str(&agent.state["known-endpoints"]).expect("a JSON list");
    assert_eq!(remembered.len(), limits::FAILOVER_ENDPOINTS);

    let logs = agent.logs.join("\n");
    assert!(logs.contains("LXD cluster member 2 of 5202 (\"evil??[31mmember\") skipped"), "{logs}");
    assert!(logs.contains("LXD's server name (\"x?y\") is not used"), "{logs}");
    assert!(
        !logs.contains('\u{1b}') && !logs.contains("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"),
        "never raw"
    );

    // The same lies again: named once, not every five minutes.
    let logged = agent.logs.len();
    hook(&mut agent, &cluster, "config-changed");
    assert!(agent.logs[logged..].iter().all(|l| !l.contains("skipped")), "{:?}", &agent.logs[logged..]);
    assert!(agent.refused().next().is_none());
}
