//! The simulated model as it is kept on disk, shared by the driver and the hook tools.
//!
//! Layout of a simulator root directory:
//!
//! ```text
//! <root>/model.json          the committed model (apps, units, relations, queue), saved by
//!                            the driver (the tools ask the agent, which holds it in memory)
//! <root>/bags/               the committed databags, one file each (see `bags`)
//! <root>/lock                flock(2)ed around every read-modify-write of the model
//! <root>/agent.socket        JUJU_AGENT_SOCKET_ADDRESS points here (a marker file that names
//!                            the agent's abstract socket, see `agent`)
//! <root>/tools/<tool>        symlinks to the `jujusim` binary; first on the hook's PATH
//! <root>/units/<app>-<n>/charm  each unit's copy of the charm directory
//! <root>/records/*.jsonl     hooks, tool calls and juju-log lines, one JSON object a line
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::charm::CharmMeta;

/// Juju's practical limit on one relation databag (the MongoDB document limit).
pub const MAX_DATABAG_BYTES: usize = 16 * 1024 * 1024;
/// `quota.MaxCharmStateKeySize`.
pub const MAX_STATE_KEY_BYTES: usize = 256;
/// `quota.MaxCharmStateValueSize`.
pub const MAX_STATE_VALUE_BYTES: usize = 64 * 1024;

pub type Databag = BTreeMap<String, String>;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub status: String,
    pub message: String,
}

impl Status {
    pub fn new(status: &str, message: &str) -> Self {
        Status { status: status.into(), message: message.into() }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Model {
    pub name: String,
    pub uuid: String,
    pub juju_version: String,
    /// What `credential-get` returns (for trusted applications).
    pub cloud_spec: Option<Value>,
    /// When false, the `credential-get` tool is absent from the tools dir.
    pub credential_get_available: bool,
    pub next_relation_id: u32,
    pub next_action_id: u32,
    pub next_machine: u32,
    pub apps: BTreeMap<String, App>,
    pub units: BTreeMap<String, Unit>,
    pub relations: BTreeMap<u32, Relation>,
    /// User secrets (`juju add-secret`, Juju >= 3.3), by their ID (the part after `secret:`).
    #[serde(default)]
    pub secrets: BTreeMap<String, Secret>,
    /// Hooks still to run (events for units in error wait here until resolved).
    pub queue: Vec<Event>,
}

/// A user secret: owned by the model, created and updated by the operator, readable by the
/// applications it is granted to (juju/juju `state/secrets.go`, `apiserver/facades/agent/
/// secretsmanager/secrets.go`).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Secret {
    /// The xid: 20 characters of `0-9a-v`; the URI is `secret:<id>`.
    pub id: String,
    /// The name `juju add-secret` was given (unique in the model).
    pub name: String,
    /// The content of each revision, oldest first: revision `n` is `revisions[n - 1]`. Values
    /// are base64, as Juju stores them (`core/secrets/createsecret.go` `encodeBase64`).
    pub revisions: Vec<BTreeMap<String, String>>,
    /// Applications granted read access (`juju grant-secret`).
    pub grants: BTreeSet<String>,
    /// Every unit that has read it, with its consumer record.
    pub consumers: BTreeMap<String, SecretConsumer>,
}

impl Secret {
    /// The latest revision number (revisions start at 1).
    pub fn latest(&self) -> u32 {
        self.revisions.len() as u32
    }
    /// `secret:<id>`, as `juju add-secret` prints it.
    pub fn uri(&self) -> String {
        format!("secret:{}", self.id)
    }
}

/// What Juju keeps for a unit that read a secret: the revision `secret-get` answers with
/// (`CurrentRevision`), its own label for it, and the latest revision its unit agent last
/// told the charm about with `secret-changed` (the uniter's `ConsumedSecretInfo`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretConsumer {
    pub current: u32,
    pub label: String,
    pub notified: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct App {
    pub name: String,
    pub charm_src: PathBuf,
    pub meta: CharmMeta,
    pub trusted: bool,
    /// Explicitly set config values (typed).
    pub config: BTreeMap<String, Value>,
    pub leader: Option<String>,
    /// Kept in a file of its own ([`crate::bags`]): filled only in a snapshot of the whole
    /// model ([`crate::Sim::model`], the hook observer), empty elsewhere.
    #[serde(skip)]
    pub leader_settings: Databag,
    pub status: Status,
    pub next_unit: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Unit {
    pub name: String,
    pub app: String,
    pub machine: String,
    pub address: String,
    pub charm_dir: PathBuf,
    /// Workload status as set by the charm.
    pub status: Status,
    pub status_set_by_charm: bool,
    pub workload_version: String,
    /// Set while the unit is in a hook error; the failed event is retried by `resolve`.
    pub error: Option<UnitError>,
    /// Committed charm state (state-get/state-set). Kept in a file of its own, like
    /// `App::leader_settings`.
    #[serde(skip)]
    pub state: Databag,
    pub started: bool,
    /// Being removed: after its `remove` hook it is deleted from the model.
    #[serde(default)]
    pub dying: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct UnitError {
    pub message: String,
    pub event: Event,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RelEndpoint {
    pub app: String,
    pub endpoint: String,
    pub interface: String,
    pub role: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Relation {
    pub id: u32,
    /// One endpoint for a peer relation, two otherwise.
    pub endpoints: Vec<RelEndpoint>,
    /// The databags, each kept in a file of its own like `App::leader_settings`.
    #[serde(skip)]
    pub unit_data: BTreeMap<String, Databag>,
    #[serde(skip)]
    pub app_data: BTreeMap<String, Databag>,
    /// Units in scope, each with the remote units it currently knows (relation-list).
    pub scope: BTreeMap<String, BTreeSet<String>>,
    /// Units that have run relation-created (and may therefore see relation-changed).
    #[serde(default)]
    pub created: BTreeSet<String>,
    pub dying: bool,
}

impl Relation {
    pub fn is_peer(&self) -> bool {
        self.endpoints.len() == 1
    }

    /// The endpoint of `app` in this relation.
    pub fn local_endpoint(&self, app: &str) -> Option<&RelEndpoint> {
        self.endpoints.iter().find(|e| e.app == app)
    }

    /// The application on the other side, from `app`'s point of view.
    pub fn remote_app(&self, app: &str) -> Option<&str> {
        if self.is_peer() {
            return self.endpoints.first().filter(|e| e.app == app).map(|e| e.app.as_str());
        }
        if !self.endpoints.iter().any(|e| e.app == app) {
            return None;
        }
        self.endpoints.iter().find(|e| e.app != app).map(|e| e.app.as_str())
    }

    pub fn involves(&self, app: &str) -> bool {
        self.endpoints.iter().any(|e| e.app == app)
    }

    /// `endpoint:id` as seen by `app`.
    pub fn fake_id(&self, app: &str) -> String {
        let ep = self.local_endpoint(app).map(|e| e.endpoint.as_str()).unwrap_or("?");
        format!("{ep}:{}", self.id)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub unit: String,
    /// `install`, `config-changed`, `relation-changed`, ... (relation kinds without endpoint).
    pub kind: String,
    pub relation_id: Option<u32>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
    /// Propagation depth, to detect relation data that never settles.
    pub depth: u32,
    /// Secret hooks: the secret's ID (without `secret:`) and the revision the hook is about.
    #[serde(default)]
    pub secret: Option<(String, u32)>,
}

impl Event {
    pub fn simple(unit: &str, kind: &str) -> Self {
        Event {
            unit: unit.into(),
            kind: kind.into(),
            relation_id: None,
            remote_unit: None,
            remote_app: None,
            departing_unit: None,
            depth: 0,
            secret: None,
        }
    }

    pub fn is_relation(&self) -> bool {
        self.kind.starts_with("relation-")
    }

    /// Same hook for the same unit about the same thing (depth ignored).
    pub fn same_as(&self, o: &Event) -> bool {
        self.unit == o.unit
            && self.kind == o.kind
            && self.relation_id == o.relation_id
            && self.remote_unit == o.remote_unit
            && self.remote_app == o.remote_app
            && self.departing_unit == o.departing_unit
            && self.secret == o.secret
    }
}

/// A running hook or action, as the tools see it. Staged (transactional) writes live here
/// until the driver commits them after the hook exits 0; the agent holds it while the hook
/// runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct HookContext {
    pub id: String,
    pub unit: String,
    /// Full hook name (`api-relation-changed`) or the action name.
    pub hook_name: String,
    pub relation_id: Option<u32>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
    pub action: Option<ActionContext>,
    /// Own unit databag per relation, copied on first write.
    pub staged_unit: BTreeMap<u32, Databag>,
    /// Own app databag per relation (leader only), copied on first write.
    pub staged_app: BTreeMap<u32, Databag>,
    /// Charm state, copied on first write.
    pub staged_state: Option<Databag>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ActionContext {
    pub id: String,
    pub name: String,
    pub params: Value,
    pub results: serde_json::Map<String, Value>,
    pub failed: bool,
    pub message: Option<String>,
    pub logs: Vec<String>,
}

/// Paths under a simulator root.
#[derive(Clone, Debug)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Paths { root: root.into() }
    }
    pub fn model(&self) -> PathBuf {
        self.root.join("model.json")
    }
    pub fn bags(&self) -> PathBuf {
        self.root.join("bags")
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }
    pub fn socket(&self) -> PathBuf {
        self.root.join("agent.socket")
    }
    pub fn tools(&self) -> PathBuf {
        self.root.join("tools")
    }
    pub fn units(&self) -> PathBuf {
        self.root.join("units")
    }
    pub fn records(&self) -> PathBuf {
        self.root.join("records")
    }
    pub fn hook_records(&self) -> PathBuf {
        self.records().join("hooks.jsonl")
    }
    pub fn tool_records(&self) -> PathBuf {
        self.records().join("tool-calls.jsonl")
    }
    pub fn log_records(&self) -> PathBuf {
        self.records().join("logs.jsonl")
    }
    pub fn action_records(&self) -> PathBuf {
        self.records().join("actions.jsonl")
    }
}

/// An exclusive lock on the model, released on drop.
pub struct ModelLock {
    _file: File,
}

impl ModelLock {
    pub fn acquire(paths: &Paths) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(paths.lock())?;
        file.lock()?;
        Ok(ModelLock { _file: file })
    }
}

pub fn load_model(paths: &Paths) -> anyhow::Result<Model> {
    let data = fs::read(paths.model()).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", paths.model().display()))?;
    Ok(serde_json::from_slice(&data)?)
}

pub fn save_model(paths: &Paths, model: &Model) -> anyhow::Result<()> {
    write_atomic(&paths.model(), &serde_json::to_vec(model)?)
}

pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, data)?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Appends one JSON line to a record file.
pub fn append_record<T: Serialize>(path: &Path, record: &T) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(&line)?;
    Ok(())
}

pub fn read_records<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Vec<T>> {
    let data = match fs::read_to_string(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    data.lines().filter(|l| !l.is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// Application name of a unit name (`app/3` → `app`).
pub fn unit_app(unit: &str) -> &str {
    unit.rsplit_once('/').map(|(a, _)| a).unwrap_or(unit)
}

/// The number of a unit (`app/3` → 3), by which Juju orders an application's units.
pub fn unit_number(unit: &str) -> u32 {
    unit.rsplit_once('/').and_then(|(_, n)| n.parse().ok()).unwrap_or(0)
}

/// `names.IsValidApplication`: lowercase letters, digits and hyphens; starts with a letter;
/// no segment after a hyphen made only of digits.
pub fn is_valid_application(name: &str) -> bool {
    let mut segs = name.split('-');
    let first = match segs.next() {
        Some(f) => f,
        None => return false,
    };
    let ok_chars = |s: &str| s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if first.is_empty() || !first.chars().next().unwrap().is_ascii_lowercase() || !ok_chars(first) {
        return false;
    }
    for s in segs {
        if s.is_empty() || !ok_chars(s) || s.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    true
}

/// `names.IsValidUnit`: `<application>/<number>`.
pub fn is_valid_unit(name: &str) -> bool {
    match name.rsplit_once('/') {
        Some((app, n)) => {
            is_valid_application(app)
                && !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
        }
        None => false,
    }
}

/// Serialized size of a databag as Juju would count it (keys + values).
pub fn databag_size(bag: &Databag) -> usize {
    bag.iter().map(|(k, v)| k.len() + v.len()).sum()
}
