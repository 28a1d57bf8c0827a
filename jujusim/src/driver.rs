//! The driver: a tiny single-machine "controller + unit agents" that runs a charm's hooks the
//! way Juju's uniter does, one at a time, in a deterministic order.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bags::{self, Bag};
use crate::charm::{self, CharmMeta};
use crate::model::{
    self, ActionContext, App, Databag, Event, HookContext, MAX_DATABAG_BYTES, Model, ModelLock, Paths, RelEndpoint,
    Relation, Status, Unit, UnitError,
};
use crate::tools::{self, LogLine, ToolCall};

/// A relation's id (the number in `endpoint:N`).
pub type RelationId = u32;

/// The PATH Juju's machine agent runs with, after the tools dir.
pub const AGENT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Environment variable naming the `jujusim` binary (overrides the search).
pub const BIN_ENV: &str = "JUJUSIM_BIN";

/// `JUJU_VERSION` of the default agent, a Juju 3.6.
pub const JUJU_3: &str = "3.6.4";
/// `JUJU_VERSION` of a Juju 2.9 agent (a released 2.9: tag `v2.9.47`). 2.9 is the LTS that
/// still runs machines on Ubuntu 16.04 and 18.04.
pub const JUJU_2_9: &str = "2.9.47";

/// The generations of Juju's unit agent the simulator answers as, chosen by the model's
/// `JUJU_VERSION` ([`Sim::set_juju_version`]). Where they differ in what a charm can observe,
/// the driver and tools ask [`Agent::of`].
///
/// For a machine charm 2.9 and 3.x mostly agree: every hook tool jujusim implements exists in
/// 2.9 with the same flags, output and error texts (`state-*` since 2.8, `credential-get`
/// since 2.4), and the hook environment is the same set of variables (2.8's `HookVars` already
/// sets `JUJU_HOOK_NAME`, `JUJU_REMOTE_APP`, `JUJU_DEPARTING_UNIT`, the `JUJU_ACTION_*` trio,
/// and its runner `JUJU_DISPATCH_PATH`). What differs is the version string and the results
/// of every action (see [`Sim::run_action`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agent {
    /// Juju 2.9.x.
    Juju29,
    /// Juju 3.x (the default).
    Juju3,
}

impl Agent {
    /// The agent a `JUJU_VERSION` belongs to (`2.9.47`, `2.9.47.1`, `3.6.4`, `3.6-beta2`), or
    /// `None` for a version the simulator does not model: before 2.9, and 4.x.
    pub fn of(version: &str) -> Option<Agent> {
        let mut parts = version.split('.');
        let major = parts.next()?;
        let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
        match (major, minor.as_str()) {
            ("2", "9") => Some(Agent::Juju29),
            ("3", m) if !m.is_empty() => Some(Agent::Juju3),
            _ => None,
        }
    }
}

/// `(major, minor)` of a `JUJU_VERSION` (`3.6.4` → `(3, 6)`, `3.6-beta2` → `(3, 6)`).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts.next()?.chars().take_while(char::is_ascii_digit).collect();
    Some((major, minor.parse().ok()?))
}

/// Config options of type `secret` came with Juju 3.1 (canonical/charmcraft#1625: "Since
/// Juju 3.1, the config.options section ... has supported a type value of secret"); older
/// agents refuse the whole charm (juju/charm `config.go` `ReadConfig`: "invalid config:
/// option %q has unknown type %q").
fn accepts_secret_options(version: &str) -> bool {
    major_minor(version).is_some_and(|v| v >= (3, 1))
}

/// User secrets (`juju add-secret`, `grant-secret`, ...) came with Juju 3.3.
fn has_user_secrets(version: &str) -> bool {
    major_minor(version).is_some_and(|v| v >= (3, 3))
}

/// Finds a user secret by URI (`secret:<id>`, bare `<id>`) or by name, as the `juju *-secret`
/// commands take it.
fn find_secret<'m>(m: &'m mut Model, secret: &str) -> anyhow::Result<&'m mut model::Secret> {
    let id = match crate::secrets::Uri::parse(secret) {
        Some(uri) => Some(uri.id),
        None => m.secrets.values().find(|s| s.name == secret).map(|s| s.id.clone()),
    };
    id.and_then(|id| m.secrets.get_mut(&id)).ok_or_else(|| anyhow!("secret {secret:?} not found"))
}

/// Queues `secret-changed` for every unit that reads `id` and was not yet told about its
/// latest revision; one pending hook per unit and secret, about the newest revision (the
/// uniter's secrets resolver compares what it last told the charm with the latest).
fn queue_secret_changed(m: &mut Model, id: &str) {
    let Some(secret) = m.secrets.get(id) else { return };
    let latest = secret.latest();
    let units: Vec<String> = secret
        .consumers
        .iter()
        .filter(|(u, c)| c.notified != latest && m.units.get(*u).is_some_and(|unit| !unit.dying))
        .map(|(u, _)| u.clone())
        .collect();
    for u in units {
        m.queue.retain(|e| {
            !(e.unit == u && e.kind == "secret-changed" && e.secret.as_ref().is_some_and(|(s, _)| s == id))
        });
        let mut e = Event::simple(&u, "secret-changed");
        e.secret = Some((id.to_string(), latest));
        m.queue.push(e);
    }
}

/// One hook (or action) run, as recorded in `records/hooks.jsonl`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct HookRecord {
    pub unit: String,
    /// Full hook name (`api-relation-changed`), or the action name for actions.
    pub hook: String,
    /// `hook` or `action`.
    pub kind: String,
    pub context_id: String,
    pub relation_id: Option<RelationId>,
    pub remote_unit: Option<String>,
    pub remote_app: Option<String>,
    pub departing_unit: Option<String>,
    /// False when the charm has no file for this hook (skipped silently, like Juju).
    pub ran: bool,
    pub exit_code: i32,
    pub duration_ms: f64,
    pub stdout: String,
    pub stderr: String,
    /// Why the hook counts as failed besides its exit code (exec failure, commit failure).
    pub error: Option<String>,
}

impl HookRecord {
    /// True if the hook failed (non-zero exit, could not run, or its changes failed to commit).
    pub fn failed(&self) -> bool {
        self.exit_code != 0 || self.error.is_some()
    }
}

/// The outcome of `Sim::run_action`.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ActionResult {
    pub id: String,
    pub unit: String,
    pub name: String,
    /// `completed` or `failed`.
    pub status: String,
    /// What the action set with `action-set` (nested maps of strings); from a Juju 2.9 agent
    /// also `Code`, `Stdout`, `Stderr`, which 2.9 adds to every action's results.
    pub results: Value,
    /// `action-fail`'s message, or `exit status N`.
    pub message: Option<String>,
    /// `action-log` lines.
    pub logs: Vec<String>,
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// How each unit gets its copy of the charm directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    /// Copy every file (default; like Juju unpacking the charm per unit).
    Copy,
    /// Hard-link regular files (fast for many units; the charm must not modify its own
    /// shipped files in place).
    HardLink,
}

/// The simulator. See the crate docs for an overview.
pub struct Sim {
    paths: Paths,
    bin: PathBuf,
    hook_timeout: Duration,
    max_rounds: u32,
    copy_mode: CopyMode,
    extra_env: BTreeMap<String, String>,
    /// The model as last saved or loaded, with the identity of the file it came from; reused
    /// while model.json is unchanged (tools rewrite it only for immediate writes).
    cache: RefCell<Option<Cached>>,
    observer: Option<HookObserver>,
}

/// Called after every hook with its record and the model as the hook left it (its writes
/// committed, or not if it failed): a test can check what each hook did, not only where a
/// whole call ended.
pub type HookObserver = Box<dyn FnMut(&HookRecord, &Model)>;

struct Cached {
    model: Model,
    stamp: FileStamp,
    /// Changed in memory and not yet saved. While no hook runs, nothing else writes the
    /// model, so the in-memory copy is authoritative; it is saved before every hook process.
    dirty: bool,
}

type FileStamp = (u64, std::time::SystemTime, u64);

fn file_stamp(p: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p).ok()?;
    Some((md.ino(), md.modified().ok()?, md.len()))
}

fn find_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var(BIN_ENV)
        && !p.is_empty()
    {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!("{BIN_ENV}={} does not exist", p.display());
    }
    let exe = std::env::current_exe().context("current_exe")?;
    // target/<profile>/deps/test-xxxx → target/<profile>/jujusim
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join("jujusim");
        if candidate.is_file() {
            return Ok(candidate);
        }
        if d.file_name().is_some_and(|n| n == "target") {
            break;
        }
        dir = d.parent();
    }
    bail!(
        "cannot find the jujusim binary in the directories above {} up to target/ (run `cargo build -p jujusim --bin jujusim` or `cargo build --workspace --bins` first, or set {BIN_ENV})",
        exe.display()
    )
}

/// A loopback address for machine `n` (the simulator never connects to it).
fn machine_address(n: u32) -> String {
    format!("127.10.{}.{}", n / 250, n % 250 + 1)
}

fn copy_tree(src: &Path, dst: &Path, mode: CopyMode) -> anyhow::Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("mkdir {}", dst.display()))?;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if ft.is_symlink() {
            let target = std::fs::read_link(&from)?;
            std::os::unix::fs::symlink(&target, &to).with_context(|| format!("symlink {}", to.display()))?;
        } else if ft.is_dir() {
            copy_tree(&from, &to, mode)?;
            let perms = std::fs::metadata(&from)?.permissions();
            std::fs::set_permissions(&to, perms)?;
        } else {
            match mode {
                CopyMode::HardLink => {
                    if std::fs::hard_link(&from, &to).is_err() {
                        std::fs::copy(&from, &to)?;
                    }
                }
                CopyMode::Copy => {
                    std::fs::copy(&from, &to).with_context(|| format!("copy {}", from.display()))?;
                }
            }
        }
    }
    Ok(())
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Where an `app:endpoint` spec may omit the endpoint.
fn split_endpoint(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((a, e)) => (a, Some(e)),
        None => (spec, None),
    }
}

fn unit_addresses(address: &str) -> Databag {
    let mut bag = Databag::new();
    bag.insert("private-address".into(), address.into());
    bag.insert("ingress-address".into(), address.into());
    bag.insert("egress-subnets".into(), format!("{address}/32"));
    bag
}

fn push_event(m: &mut Model, ev: Event) {
    if ev.kind == "relation-changed" && m.queue.iter().any(|q| q.same_as(&ev)) {
        return;
    }
    m.queue.push(ev);
}

fn rel_event(unit: &str, kind: &str, rel: u32, remote_unit: Option<&str>, remote_app: &str, depth: u32) -> Event {
    Event {
        unit: unit.into(),
        kind: kind.into(),
        relation_id: Some(rel),
        remote_unit: remote_unit.map(String::from),
        remote_app: Some(remote_app.into()),
        departing_unit: None,
        depth,
        secret: None,
    }
}

/// The outcome of running a charm process.
struct ProcOutcome {
    ran: bool,
    exit_code: i32,
    stdout: String,
    stderr: String,
    error: Option<String>,
    duration: Duration,
}

impl Sim {
    /// Creates a simulator rooted at `root` (created if missing; must not already hold a
    /// model) with a random model UUID.
    pub fn new(root: impl AsRef<Path>, model_name: &str) -> anyhow::Result<Sim> {
        Self::with_binary(root, model_name, find_binary()?)
    }

    /// Like `new`, with an explicit path to the `jujusim` binary.
    pub fn with_binary(root: impl AsRef<Path>, model_name: &str, bin: impl Into<PathBuf>) -> anyhow::Result<Sim> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).with_context(|| format!("mkdir {}", root.display()))?;
        let root = root.canonicalize()?;
        let paths = Paths::new(&root);
        if paths.model().exists() {
            bail!("{} already holds a simulated model", root.display());
        }
        for d in [paths.contexts(), paths.tools(), paths.units(), paths.records()] {
            std::fs::create_dir_all(&d)?;
        }
        std::fs::write(paths.socket(), b"jujusim agent socket placeholder\n")?;
        let bin: PathBuf = bin.into();
        let bin = bin.canonicalize().with_context(|| format!("jujusim binary {}", bin.display()))?;
        let model = Model {
            name: model_name.into(),
            uuid: model::random_uuid(),
            juju_version: JUJU_3.into(),
            credential_get_available: true,
            next_action_id: 1,
            ..Default::default()
        };
        model::save_model(&paths, &model)?;
        let sim = Sim {
            paths,
            bin,
            hook_timeout: Duration::from_secs(300),
            max_rounds: 100,
            copy_mode: CopyMode::Copy,
            extra_env: BTreeMap::new(),
            cache: RefCell::new(None),
            observer: None,
        };
        sim.install_tools()?;
        Ok(sim)
    }

    /// Links the tools this model's agent has: `credential-get` unless made absent, the
    /// secret tools only from Juju 3.0 on.
    fn install_tools(&self) -> anyhow::Result<()> {
        let m = self.read()?;
        let secrets = Agent::of(&m.juju_version) == Some(Agent::Juju3);
        for t in tools::TOOLS {
            let link = self.paths.tools().join(t);
            let _ = std::fs::remove_file(&link);
            if *t == "credential-get" && !m.credential_get_available {
                continue;
            }
            if tools::SECRET_TOOLS.contains(t) && !secrets {
                continue;
            }
            std::os::unix::fs::symlink(&self.bin, &link)?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // settings

    /// The simulator root directory.
    pub fn root(&self) -> &Path {
        &self.paths.root
    }
    /// The model's UUID (`JUJU_MODEL_UUID`).
    pub fn model_uuid(&self) -> String {
        self.read().map(|m| m.uuid).unwrap_or_default()
    }
    /// Kill a hook that runs longer than this (default 300 s); it counts as failed.
    pub fn set_hook_timeout(&mut self, d: Duration) {
        self.hook_timeout = d;
    }
    /// Fail loudly when relation-changed propagation is still going after this many rounds
    /// (default 100).
    pub fn set_max_rounds(&mut self, n: u32) {
        self.max_rounds = n;
    }
    /// How later units get their charm directory copy.
    pub fn set_copy_mode(&mut self, mode: CopyMode) {
        self.copy_mode = mode;
    }
    /// Adds a variable to every hook's environment. Real Juju sets none: use only for
    /// debugging/coverage instrumentation.
    /// Calls `observer` after every hook from now on (see [`HookObserver`]).
    pub fn set_hook_observer(&mut self, observer: impl FnMut(&HookRecord, &Model) + 'static) {
        self.observer = Some(Box::new(observer));
    }

    pub fn set_extra_env(&mut self, key: &str, value: &str) {
        self.extra_env.insert(key.into(), value.into());
    }
    /// `JUJU_VERSION` for hooks, and with it the agent whose behaviour the simulator follows
    /// (see [`Agent`]): default [`JUJU_3`]; [`JUJU_2_9`] for a Juju 2.9 agent. A version of an
    /// agent the simulator does not model is refused, rather than answered as another one.
    pub fn set_juju_version(&mut self, v: &str) -> anyhow::Result<()> {
        if Agent::of(v).is_none() {
            bail!("jujusim answers as a Juju 2.9 or 3.x agent; {v:?} is neither");
        }
        self.write(|m| {
            m.juju_version = v.into();
            Ok(())
        })?;
        self.flush()?;
        self.install_tools()
    }
    /// `JUJU_VERSION` as hooks see it.
    pub fn juju_version(&self) -> anyhow::Result<String> {
        Ok(self.read()?.juju_version)
    }
    /// The agent the simulator answers as.
    pub fn agent(&self) -> anyhow::Result<Agent> {
        let v = self.juju_version()?;
        Agent::of(&v).ok_or_else(|| anyhow!("model.json names an unmodelled Juju {v:?}"))
    }
    /// What `credential-get` returns to trusted applications (the model's cloud spec).
    pub fn set_cloud_spec(&mut self, spec: Value) -> anyhow::Result<()> {
        self.write(|m| {
            m.cloud_spec = Some(spec);
            Ok(())
        })?;
        self.flush()
    }
    /// Makes `credential-get` absent from the hook tools (as on a Juju without it).
    pub fn set_credential_get_available(&mut self, available: bool) -> anyhow::Result<()> {
        self.write(|m| {
            m.credential_get_available = available;
            Ok(())
        })?;
        self.flush()?;
        self.install_tools()
    }

    // -----------------------------------------------------------------------------------
    // model access

    fn read(&self) -> anyhow::Result<Model> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        Ok(self.cache.borrow().as_ref().unwrap().model.clone())
    }

    /// Loads model.json into the cache unless the cached copy is current. Lock held.
    fn refresh(&self) -> anyhow::Result<()> {
        let mut cache = self.cache.borrow_mut();
        if let Some(c) = cache.as_ref()
            && (c.dirty || file_stamp(&self.paths.model()) == Some(c.stamp))
        {
            return Ok(());
        }
        let model = model::load_model(&self.paths)?;
        let stamp = file_stamp(&self.paths.model()).ok_or_else(|| anyhow!("model.json vanished"))?;
        *cache = Some(Cached { model, stamp, dirty: false });
        Ok(())
    }

    fn write<R>(&self, f: impl FnOnce(&mut Model) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        let mut cache = self.cache.borrow_mut();
        let c = cache.as_mut().unwrap();
        match f(&mut c.model) {
            Ok(r) => {
                c.dirty = true;
                Ok(r)
            }
            Err(e) => {
                // The closure may have half-modified the cached copy: drop it.
                *cache = None;
                Err(e)
            }
        }
    }

    /// Saves the in-memory model if it changed (before any hook process, and at the end of
    /// every public call).
    fn flush(&self) -> anyhow::Result<()> {
        let _l = ModelLock::acquire(&self.paths)?;
        let mut cache = self.cache.borrow_mut();
        if let Some(c) = cache.as_mut()
            && c.dirty
        {
            model::save_model(&self.paths, &c.model)?;
            c.stamp = file_stamp(&self.paths.model()).ok_or_else(|| anyhow!("model.json vanished"))?;
            c.dirty = false;
        }
        Ok(())
    }

    /// A snapshot of the whole model, every databag included (for assertions not covered
    /// by the helpers).
    pub fn model(&self) -> anyhow::Result<Model> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        let mut m = self.cache.borrow().as_ref().unwrap().model.clone();
        bags::fill(&self.paths, &mut m)?;
        Ok(m)
    }

    /// A committed databag (empty when it does not exist), once `owner` found what holds it.
    fn read_bag(&self, owner: impl FnOnce(&Model) -> anyhow::Result<()>, bag: Bag) -> anyhow::Result<Databag> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        owner(&self.cache.borrow().as_ref().unwrap().model)?;
        bags::read_or_empty(&self.paths, bag)
    }

    // -----------------------------------------------------------------------------------
    // deploy / units

    /// Deploys `charm_dir` as application `app` with `units` units and runs their
    /// install → (relation-created) → leader-elected / leader-settings-changed →
    /// config-changed → start hooks.
    pub fn deploy(&mut self, app: &str, charm_dir: impl AsRef<Path>, units: u32) -> anyhow::Result<Vec<String>> {
        let charm_dir =
            charm_dir.as_ref().canonicalize().with_context(|| format!("charm dir {}", charm_dir.as_ref().display()))?;
        if !model::is_valid_application(app) {
            bail!("invalid application name {app:?}");
        }
        let meta = charm::read_charm(&charm_dir)?;
        self.write(|m| {
            if !accepts_secret_options(&m.juju_version)
                && let Some((name, _)) = meta.config.iter().find(|(_, o)| o.ty == "secret")
            {
                bail!("invalid config: option {name:?} has unknown type \"secret\"");
            }
            if m.apps.contains_key(app) {
                bail!("application {app:?} already exists");
            }
            m.apps.insert(
                app.into(),
                App {
                    name: app.into(),
                    charm_src: charm_dir.clone(),
                    meta: meta.clone(),
                    trusted: false,
                    config: BTreeMap::new(),
                    leader: None,
                    leader_settings: Databag::new(),
                    status: Status::new("unknown", ""),
                    next_unit: 0,
                },
            );
            for (ep, spec) in meta.endpoints.iter().filter(|(_, s)| s.role == "peer") {
                let id = m.next_relation_id;
                m.next_relation_id += 1;
                m.relations.insert(
                    id,
                    Relation {
                        id,
                        endpoints: vec![RelEndpoint {
                            app: app.into(),
                            endpoint: ep.clone(),
                            interface: spec.interface.clone(),
                            role: "peer".into(),
                        }],
                        unit_data: BTreeMap::new(),
                        app_data: BTreeMap::new(),
                        scope: BTreeMap::new(),
                        created: BTreeSet::new(),
                        dying: false,
                    },
                );
            }
            Ok(())
        })?;
        let mut out = Vec::new();
        for _ in 0..units {
            out.push(self.add_unit_queued(app)?);
        }
        self.settle()?;
        Ok(out)
    }

    /// Adds a unit to `app` and runs its hooks (and the remote sides' joined/changed).
    pub fn add_unit(&mut self, app: &str) -> anyhow::Result<String> {
        let u = self.add_unit_queued(app)?;
        self.settle()?;
        Ok(u)
    }

    fn add_unit_queued(&mut self, app: &str) -> anyhow::Result<String> {
        let (name, charm_src, dir) = self.write(|m| {
            let a = m.apps.get_mut(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
            let n = a.next_unit;
            a.next_unit += 1;
            let name = format!("{app}/{n}");
            let dir = self.paths.units().join(format!("{app}-{n}")).join("charm");
            Ok((name, a.charm_src.clone(), dir))
        })?;
        copy_tree(&charm_src, &dir, self.copy_mode)?;
        self.write(|m| {
            let machine = m.next_machine;
            m.next_machine += 1;
            let address = machine_address(machine);
            m.units.insert(
                name.clone(),
                Unit {
                    name: name.clone(),
                    app: app.into(),
                    machine: machine.to_string(),
                    address: address.clone(),
                    charm_dir: dir.clone(),
                    status: Status::new("maintenance", "installing charm software"),
                    status_set_by_charm: false,
                    workload_version: String::new(),
                    error: None,
                    state: Databag::new(),
                    started: false,
                    dying: false,
                },
            );
            push_event(m, Event::simple(&name, "install"));
            let rel_ids: Vec<u32> =
                m.relations.values().filter(|r| r.involves(app) && !r.dying).map(|r| r.id).collect();
            for id in &rel_ids {
                let r = m.relations.get_mut(id).unwrap();
                r.scope.insert(name.clone(), BTreeSet::new());
                bags::write(&self.paths, Bag::Unit(*id, &name), &unit_addresses(&address))?;
                let remote_app = r.remote_app(app).unwrap().to_string();
                push_event(m, rel_event(&name, "relation-created", *id, None, &remote_app, 0));
            }
            let a = m.apps.get_mut(app).unwrap();
            if a.leader.is_none() {
                a.leader = Some(name.clone());
                push_event(m, Event::simple(&name, "leader-elected"));
            } else {
                push_event(m, Event::simple(&name, "leader-settings-changed"));
            }
            push_event(m, Event::simple(&name, "config-changed"));
            push_event(m, Event::simple(&name, "start"));
            for id in &rel_ids {
                let r = &m.relations[id];
                let remote_app = r.remote_app(app).unwrap().to_string();
                let others: Vec<String> = r
                    .scope
                    .keys()
                    .filter(|u| *u != &name && (r.is_peer() || model::unit_app(u) != app))
                    .cloned()
                    .collect();
                for o in others {
                    push_event(m, rel_event(&name, "relation-joined", *id, Some(&o), &remote_app, 0));
                    push_event(m, rel_event(&name, "relation-changed", *id, Some(&o), &remote_app, 0));
                    push_event(m, rel_event(&o, "relation-joined", *id, Some(&name), app, 0));
                    push_event(m, rel_event(&o, "relation-changed", *id, Some(&name), app, 0));
                }
            }
            Ok(())
        })?;
        Ok(name)
    }

    /// Removes a unit: it leaves its relations (remote units see relation-departed; the unit
    /// runs relation-departed per remote unit, then relation-broken), then stop and remove.
    /// A removed leader is replaced by the lowest-numbered remaining unit (leader-elected).
    pub fn remove_unit(&mut self, unit: &str) -> anyhow::Result<()> {
        self.write(|m| {
            let u = m.units.get_mut(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
            u.dying = true;
            // Like `--force` for a unit stuck in error: its pending hooks are dropped.
            u.error = None;
            m.queue.retain(|e| e.unit != unit);
            let app = model::unit_app(unit).to_string();
            let rel_ids: Vec<u32> = m.relations.values().filter(|r| r.scope.contains_key(unit)).map(|r| r.id).collect();
            for id in rel_ids {
                let r = &m.relations[&id];
                let remote_app = r.remote_app(&app).unwrap().to_string();
                let watchers: Vec<String> = r
                    .scope
                    .iter()
                    .filter(|(v, seen)| *v != unit && seen.contains(unit))
                    .map(|(v, _)| v.clone())
                    .collect();
                let members: Vec<String> = r.scope[unit].iter().cloned().collect();
                for v in watchers {
                    m.queue.push(departed_event(&v, id, unit, &app, unit));
                }
                for mem in members {
                    m.queue.push(departed_event(unit, id, &mem, &remote_app, unit));
                }
                m.queue.push(rel_event(unit, "relation-broken", id, None, &remote_app, 0));
            }
            m.queue.push(Event::simple(unit, "stop"));
            m.queue.push(Event::simple(unit, "remove"));
            Ok(())
        })?;
        self.settle()
    }

    /// Removes an application: its relations are removed (departed/broken on both sides),
    /// then every unit runs stop and remove.
    pub fn remove_application(&mut self, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.apps.contains_key(app) {
                bail!("application {app:?} not found");
            }
            let rel_ids: Vec<u32> =
                m.relations.values().filter(|r| r.involves(app) && !r.dying).map(|r| r.id).collect();
            for id in rel_ids {
                queue_relation_removal(m, id);
            }
            let units: Vec<String> = m.units.values().filter(|u| u.app == app).map(|u| u.name.clone()).collect();
            for u in &units {
                let unit = m.units.get_mut(u).unwrap();
                unit.dying = true;
                unit.error = None;
                m.queue.push(Event::simple(u, "stop"));
                m.queue.push(Event::simple(u, "remove"));
            }
            Ok(())
        })?;
        self.settle()?;
        self.write(|m| {
            m.apps.remove(app);
            bags::remove(&self.paths, Bag::Leader(app))?;
            for u in m.units.values().filter(|u| u.app == app) {
                bags::remove(&self.paths, Bag::State(&u.name))?;
            }
            m.units.retain(|_, u| u.app != app);
            for s in m.secrets.values_mut() {
                s.grants.remove(app);
                s.consumers.retain(|u, _| model::unit_app(u) != app);
            }
            m.queue.retain(|e| model::unit_app(&e.unit) != app);
            drop_relations(&self.paths, m, |r| r.involves(app))
        })?;
        self.flush()
    }

    // -----------------------------------------------------------------------------------
    // relations

    /// Relates two endpoints (`app:endpoint`, or `app` when the match is unambiguous):
    /// relation-created on every unit of both sides, then joined + changed per remote unit.
    pub fn relate(&mut self, a: &str, b: &str) -> anyhow::Result<RelationId> {
        let id = self.write(|m| {
            let (ea, eb) = resolve_endpoints(m, a, b)?;
            if m.relations.values().any(|r| {
                !r.dying
                    && r.endpoints.len() == 2
                    && r.endpoints.iter().any(|e| e.app == ea.app && e.endpoint == ea.endpoint)
                    && r.endpoints.iter().any(|e| e.app == eb.app && e.endpoint == eb.endpoint)
            }) {
                bail!("relation {}:{} {}:{} already exists", ea.app, ea.endpoint, eb.app, eb.endpoint);
            }
            for e in [&ea, &eb] {
                let limit = m.apps[&e.app].meta.endpoints[&e.endpoint].limit;
                if let Some(limit) = limit {
                    let count = m
                        .relations
                        .values()
                        .filter(|r| !r.dying && r.endpoints.iter().any(|x| x.app == e.app && x.endpoint == e.endpoint))
                        .count() as u64;
                    if count >= limit {
                        bail!(
                            "establishing a new relation for {}:{} would exceed its maximum relation limit of {limit}",
                            e.app,
                            e.endpoint
                        );
                    }
                }
            }
            let id = m.next_relation_id;
            m.next_relation_id += 1;
            let units_a: Vec<(String, String)> = m
                .units
                .values()
                .filter(|u| u.app == ea.app && !u.dying)
                .map(|u| (u.name.clone(), u.address.clone()))
                .collect();
            let units_b: Vec<(String, String)> = m
                .units
                .values()
                .filter(|u| u.app == eb.app && !u.dying)
                .map(|u| (u.name.clone(), u.address.clone()))
                .collect();
            let mut rel = Relation {
                id,
                endpoints: vec![ea.clone(), eb.clone()],
                unit_data: BTreeMap::new(),
                app_data: BTreeMap::new(),
                scope: BTreeMap::new(),
                created: BTreeSet::new(),
                dying: false,
            };
            for (u, addr) in units_a.iter().chain(units_b.iter()) {
                rel.scope.insert(u.clone(), BTreeSet::new());
                bags::write(&self.paths, Bag::Unit(id, u), &unit_addresses(addr))?;
            }
            m.relations.insert(id, rel);
            // Every unit of each side sees relation-created, then joined + changed per unit
            // of the other side.
            let sides = [(&units_a, &units_b, &eb.app), (&units_b, &units_a, &ea.app)];
            for (mine, _, their_app) in sides {
                for (u, _) in mine {
                    push_event(m, rel_event(u, "relation-created", id, None, their_app, 0));
                }
            }
            for (mine, theirs, their_app) in sides {
                for (u, _) in mine {
                    for (v, _) in theirs {
                        push_event(m, rel_event(u, "relation-joined", id, Some(v), their_app, 0));
                        push_event(m, rel_event(u, "relation-changed", id, Some(v), their_app, 0));
                    }
                }
            }
            Ok(id)
        })?;
        self.settle()?;
        Ok(id)
    }

    /// Removes a relation: each unit runs relation-departed once per remote unit it knows,
    /// then relation-broken.
    pub fn unrelate(&mut self, rel: RelationId) -> anyhow::Result<()> {
        self.write(|m| {
            let r = m.relations.get(&rel).ok_or_else(|| anyhow!("relation {rel} not found"))?;
            if r.dying {
                bail!("relation {rel} is already being removed");
            }
            queue_relation_removal(m, rel);
            Ok(())
        })?;
        self.settle()
    }

    /// Writes (or with `None` deletes) a key in a databag as if `member` (a unit, or an
    /// application name for its app databag) had committed it, bypassing every check, and
    /// fires relation-changed on the other side. For garbage/robustness tests.
    pub fn write_relation_data(
        &mut self,
        rel: RelationId,
        member: &str,
        key: &str,
        value: Option<&str>,
    ) -> anyhow::Result<()> {
        self.write(|m| {
            let r = m.relations.get(&rel).ok_or_else(|| anyhow!("relation {rel} not found"))?;
            let is_unit = member.contains('/');
            if !r.involves(if is_unit { model::unit_app(member) } else { member }) {
                bail!("{member} is not in relation {rel}");
            }
            let name = if is_unit { Bag::Unit(rel, member) } else { Bag::App(rel, member) };
            let mut bag = bags::read_or_empty(&self.paths, name)?;
            match value {
                Some(v) => bag.insert(key.into(), v.into()),
                None => bag.remove(key),
            };
            bags::write(&self.paths, name, &bag)?;
            if is_unit {
                queue_unit_data_changed(m, rel, member, 0);
            } else {
                queue_app_data_changed(m, rel, member, None, 0);
            }
            Ok(())
        })?;
        self.settle()
    }

    /// The committed unit databag of `unit` in `rel` (includes Juju's address keys).
    pub fn relation_data(&self, rel: RelationId, unit: &str) -> anyhow::Result<Databag> {
        self.read_bag(|m| relation_exists(m, rel), Bag::Unit(rel, unit))
    }

    /// The committed application databag of `app` in `rel`.
    pub fn relation_app_data(&self, rel: RelationId, app: &str) -> anyhow::Result<Databag> {
        self.read_bag(|m| relation_exists(m, rel), Bag::App(rel, app))
    }

    /// Ids of the live relations of `app` (on any endpoint), ascending.
    pub fn relation_ids(&self, app: &str) -> anyhow::Result<Vec<RelationId>> {
        let m = self.read()?;
        Ok(m.relations.values().filter(|r| r.involves(app) && !r.dying).map(|r| r.id).collect())
    }

    /// The remote units `unit` currently sees in `rel` (what relation-list prints).
    pub fn relation_units(&self, rel: RelationId, unit: &str) -> anyhow::Result<Vec<String>> {
        let m = self.read()?;
        let r = m.relations.get(&rel).ok_or_else(|| anyhow!("relation {rel} not found"))?;
        Ok(r.scope.get(unit).map(|s| s.iter().cloned().collect()).unwrap_or_default())
    }

    // -----------------------------------------------------------------------------------
    // config, trust, leadership, status

    /// Sets (`Some`) or resets (`None`) config options, type-checked against config.yaml;
    /// fires config-changed on every unit when the effective config changed.
    pub fn set_config(&mut self, app: &str, changes: &[(&str, Option<Value>)]) -> anyhow::Result<()> {
        self.write(|m| {
            let before = tools::effective_config(m, app);
            let a = m.apps.get_mut(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
            for (k, v) in changes {
                let opt = a.meta.config.get(*k).ok_or_else(|| anyhow!("unknown option {k:?}"))?;
                match v {
                    None => {
                        a.config.remove(*k);
                    }
                    Some(v) => {
                        let v = charm::coerce_config(&opt.ty, v).map_err(|e| anyhow!("option {k:?}: {e}"))?;
                        a.config.insert(k.to_string(), v);
                    }
                }
            }
            if tools::effective_config(m, app) != before {
                queue_for_app(m, app, "config-changed");
            }
            Ok(())
        })?;
        self.settle()
    }

    /// The application's effective config (as `config-get --all` shows it).
    pub fn config(&self, app: &str) -> anyhow::Result<serde_json::Map<String, Value>> {
        let m = self.read()?;
        if !m.apps.contains_key(app) {
            bail!("application {app:?} not found");
        }
        Ok(tools::effective_config(&m, app))
    }

    /// `juju trust app` / `juju trust app --remove`: fires config-changed when it changes.
    pub fn trust(&mut self, app: &str, trusted: bool) -> anyhow::Result<()> {
        self.write(|m| {
            let a = m.apps.get_mut(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
            if a.trusted != trusted {
                a.trusted = trusted;
                queue_for_app(m, app, "config-changed");
            }
            Ok(())
        })?;
        self.settle()
    }

    // -----------------------------------------------------------------------------------
    // user secrets (Juju >= 3.3): what a model admin does with `juju *-secret`

    /// `juju add-secret <name> key=value...`: a new secret owned by the model, revision 1.
    /// Returns its URI (`secret:<id>`). Keys must match Juju's key pattern; values are kept
    /// base64, as Juju stores them. No hook runs.
    pub fn add_secret(&mut self, name: &str, content: &[(&str, &str)]) -> anyhow::Result<String> {
        let uri = self.write(|m| {
            if !has_user_secrets(&m.juju_version) {
                bail!("user secrets need Juju 3.3 or later; this model runs {}", m.juju_version);
            }
            if !crate::secrets::is_valid_name(name) {
                bail!("secret name {name:?} not valid");
            }
            if m.secrets.values().any(|s| s.name == name) {
                bail!("secret with name {name:?} already exists");
            }
            let data = crate::secrets::encode_content(content).map_err(|e| anyhow!(e))?;
            let id = crate::secrets::new_id();
            let secret =
                model::Secret { id: id.clone(), name: name.into(), revisions: vec![data], ..Default::default() };
            let uri = secret.uri();
            m.secrets.insert(id, secret);
            Ok(uri)
        })?;
        self.flush()?;
        Ok(uri)
    }

    /// `juju update-secret <secret> key=value...`: a new revision holding exactly `content`;
    /// every unit that reads the secret runs `secret-changed`.
    pub fn update_secret(&mut self, secret: &str, content: &[(&str, &str)]) -> anyhow::Result<()> {
        self.write(|m| {
            let data = crate::secrets::encode_content(content).map_err(|e| anyhow!(e))?;
            let s = find_secret(m, secret)?;
            s.revisions.push(data);
            let id = s.id.clone();
            queue_secret_changed(m, &id);
            Ok(())
        })?;
        self.settle()
    }

    /// `juju grant-secret <secret> <app>`: the application's units may read it. No hook runs:
    /// a unit notices at its next hook.
    pub fn grant_secret(&mut self, secret: &str, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.apps.contains_key(app) {
                bail!("application {app:?} not found");
            }
            find_secret(m, secret)?.grants.insert(app.to_string());
            Ok(())
        })?;
        self.flush()
    }

    /// `juju revoke-secret <secret> <app>`: only the permission goes (juju/juju
    /// `state/secrets.go` `RevokeSecretAccess`); consumer records stay, so a later update
    /// still runs `secret-changed`, whose `secret-get` is then denied. No hook runs.
    pub fn revoke_secret(&mut self, secret: &str, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            find_secret(m, secret)?.grants.remove(app);
            Ok(())
        })?;
        self.flush()
    }

    /// `juju remove-secret <secret>`: gone with every revision. Consumers run no hook (the
    /// uniter only forgets it); their next `secret-get` finds nothing.
    pub fn remove_secret(&mut self, secret: &str) -> anyhow::Result<()> {
        self.write(|m| {
            let id = find_secret(m, secret)?.id.clone();
            m.secrets.remove(&id);
            m.queue.retain(|e| e.secret.as_ref().is_none_or(|(s, _)| *s != id));
            Ok(())
        })?;
        self.flush()
    }

    /// A user secret as the controller keeps it (revisions base64), by URI or name.
    pub fn secret(&self, secret: &str) -> anyhow::Result<model::Secret> {
        let mut m = self.read()?;
        Ok(find_secret(&mut m, secret)?.clone())
    }

    /// Makes `unit` the leader of its application: it runs leader-elected; the deposed
    /// leader runs leader-settings-changed.
    pub fn set_leader(&mut self, unit: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.units.contains_key(unit) {
                bail!("unit {unit:?} not found");
            }
            let app = model::unit_app(unit).to_string();
            let a = m.apps.get_mut(&app).unwrap();
            if a.leader.as_deref() == Some(unit) {
                return Ok(());
            }
            let old = a.leader.replace(unit.to_string());
            push_event(m, Event::simple(unit, "leader-elected"));
            if let Some(old) = old
                && m.units.contains_key(&old)
            {
                push_event(m, Event::simple(&old, "leader-settings-changed"));
            }
            Ok(())
        })?;
        self.settle()
    }

    /// The application's leader unit.
    pub fn leader(&self, app: &str) -> anyhow::Result<Option<String>> {
        Ok(self.read()?.apps.get(app).ok_or_else(|| anyhow!("application {app:?} not found"))?.leader.clone())
    }

    /// Leader settings (leader-get) of an application.
    pub fn leader_settings(&self, app: &str) -> anyhow::Result<Databag> {
        let exists = |m: &Model| m.apps.get(app).map(drop).ok_or_else(|| anyhow!("application {app:?} not found"));
        self.read_bag(exists, Bag::Leader(app))
    }

    /// Runs update-status on every unit of `app`.
    pub fn update_status(&mut self, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.apps.contains_key(app) {
                bail!("application {app:?} not found");
            }
            queue_for_app(m, app, "update-status");
            Ok(())
        })?;
        self.settle()
    }

    /// Runs a non-relation hook (`update-status`, `upgrade-charm`, ...) on one unit.
    pub fn run_hook(&mut self, unit: &str, hook: &str) -> anyhow::Result<()> {
        if hook.contains("relation-") {
            bail!("run_hook runs non-relation hooks; use relate/unrelate/write_relation_data");
        }
        self.write(|m| {
            if !m.units.contains_key(unit) {
                bail!("unit {unit:?} not found");
            }
            m.queue.push(Event::simple(unit, hook));
            Ok(())
        })?;
        self.settle()
    }

    /// Simulates `juju refresh`: upgrade-charm → config-changed → start on every unit.
    /// (The unit charm dirs are not re-copied; change files in `unit_dir` if needed.)
    pub fn upgrade_charm(&mut self, app: &str) -> anyhow::Result<()> {
        self.write(|m| {
            if !m.apps.contains_key(app) {
                bail!("application {app:?} not found");
            }
            queue_for_app(m, app, "upgrade-charm");
            queue_for_app(m, app, "config-changed");
            queue_for_app(m, app, "start");
            Ok(())
        })?;
        self.settle()
    }

    /// `(status, message)` of a unit: `("error", "hook failed: \"x\"")` while in a hook
    /// error, else its workload status.
    pub fn unit_status(&self, unit: &str) -> anyhow::Result<(String, String)> {
        let m = self.read()?;
        let u = m.units.get(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
        if let Some(e) = &u.error {
            return Ok(("error".into(), e.message.clone()));
        }
        Ok((u.status.status.clone(), u.status.message.clone()))
    }

    /// `(status, message)` set with `status-set --application`.
    pub fn app_status(&self, app: &str) -> anyhow::Result<(String, String)> {
        let m = self.read()?;
        let a = m.apps.get(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
        Ok((a.status.status.clone(), a.status.message.clone()))
    }

    /// The workload version set with application-version-set (by the leader, or else by
    /// any unit, as `juju status` shows it).
    pub fn app_version(&self, app: &str) -> anyhow::Result<String> {
        let m = self.read()?;
        let a = m.apps.get(app).ok_or_else(|| anyhow!("application {app:?} not found"))?;
        if let Some(l) = a.leader.as_ref().and_then(|l| m.units.get(l))
            && !l.workload_version.is_empty()
        {
            return Ok(l.workload_version.clone());
        }
        Ok(m.units
            .values()
            .filter(|u| u.app == app)
            .map(|u| u.workload_version.clone())
            .find(|v| !v.is_empty())
            .unwrap_or_default())
    }

    /// The unit's charm directory (its cwd and `JUJU_CHARM_DIR`).
    pub fn unit_dir(&self, unit: &str) -> anyhow::Result<PathBuf> {
        let m = self.read()?;
        Ok(m.units.get(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?.charm_dir.clone())
    }

    /// Units of an application, in name order.
    pub fn units(&self, app: &str) -> anyhow::Result<Vec<String>> {
        let m = self.read()?;
        let mut v: Vec<(u32, String)> = m
            .units
            .values()
            .filter(|u| u.app == app)
            .map(|u| (u.name.rsplit_once('/').and_then(|(_, n)| n.parse().ok()).unwrap_or(0), u.name.clone()))
            .collect();
        v.sort();
        Ok(v.into_iter().map(|(_, n)| n).collect())
    }

    /// Committed charm state (state-get) of a unit.
    pub fn unit_state(&self, unit: &str) -> anyhow::Result<Databag> {
        self.read_bag(
            |m| m.units.get(unit).map(drop).ok_or_else(|| anyhow!("unit {unit:?} not found")),
            Bag::State(unit),
        )
    }

    /// Hooks still waiting to run (only units in error hold any after a call returns).
    pub fn pending_hooks(&self) -> anyhow::Result<Vec<Event>> {
        Ok(self.read()?.queue)
    }

    // -----------------------------------------------------------------------------------
    // records

    /// Every hook and action run so far, in order.
    pub fn hooks(&self) -> anyhow::Result<Vec<HookRecord>> {
        model::read_records(&self.paths.hook_records())
    }
    /// The hooks that failed (failed actions are in `actions()`; they do not error the unit).
    pub fn failed_hooks(&self) -> anyhow::Result<Vec<HookRecord>> {
        Ok(self.hooks()?.into_iter().filter(|h| h.kind == "hook" && h.failed()).collect())
    }
    /// Errors unless every hook so far exited 0 (the message lists the failures).
    pub fn assert_no_failed_hooks(&self) -> anyhow::Result<()> {
        let failed = self.failed_hooks()?;
        if failed.is_empty() {
            return Ok(());
        }
        let mut msg = format!("{} hook(s) failed:\n", failed.len());
        for h in failed {
            msg.push_str(&format!(
                "--- {} {} exit {} {}\nstdout:\n{}\nstderr:\n{}\n",
                h.unit,
                h.hook,
                h.exit_code,
                h.error.unwrap_or_default(),
                h.stdout,
                h.stderr
            ));
        }
        bail!(msg)
    }
    /// Every hook-tool call so far.
    pub fn tool_calls(&self) -> anyhow::Result<Vec<ToolCall>> {
        model::read_records(&self.paths.tool_records())
    }
    /// Every juju-log line so far.
    pub fn logs(&self) -> anyhow::Result<Vec<LogLine>> {
        model::read_records(&self.paths.log_records())
    }
    /// Every action run so far.
    pub fn actions(&self) -> anyhow::Result<Vec<ActionResult>> {
        model::read_records(&self.paths.action_records())
    }

    // -----------------------------------------------------------------------------------
    // errors

    /// `juju resolved`: retries the failed hook, then carries on with the unit's queue.
    pub fn resolve(&mut self, unit: &str) -> anyhow::Result<()> {
        self.write(|m| {
            let u = m.units.get_mut(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
            let e = u.error.take().ok_or_else(|| anyhow!("unit {unit:?} is not in an error state"))?;
            m.queue.insert(0, e.event);
            Ok(())
        })?;
        self.settle()
    }

    /// `juju resolved --no-retry`: skips the failed hook.
    pub fn resolve_no_retry(&mut self, unit: &str) -> anyhow::Result<()> {
        self.write(|m| {
            let u = m.units.get_mut(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
            let e = u.error.take().ok_or_else(|| anyhow!("unit {unit:?} is not in an error state"))?;
            after_hook_bookkeeping(&self.paths, m, &e.event, true)?;
            Ok(())
        })?;
        self.settle()
    }

    // -----------------------------------------------------------------------------------
    // actions

    /// Runs an action (defaults from actions.yaml applied) and waits for it.
    pub fn run_action(&mut self, unit: &str, name: &str, params: Value) -> anyhow::Result<ActionResult> {
        let (ctx, charm_dir, mut vars) = self.write(|m| {
            let u = m.units.get(unit).ok_or_else(|| anyhow!("unit {unit:?} not found"))?;
            let a = &m.apps[&u.app];
            let spec =
                a.meta.actions.get(name).ok_or_else(|| anyhow!("action {name:?} not defined on unit {unit:?}"))?;
            let params = apply_action_params(spec, params)?;
            let charm_dir = u.charm_dir.clone();
            let id = m.next_action_id;
            m.next_action_id += 1;
            let ctx = HookContext {
                id: format!("{unit}-{name}-{}", model::random_hex(8)),
                unit: unit.into(),
                hook_name: name.into(),
                action: Some(ActionContext { id: id.to_string(), name: name.into(), params, ..Default::default() }),
                ..Default::default()
            };
            model::save_context(&self.paths, &ctx)?;
            let vars = self.base_env(m, &ctx, &charm_dir, "");
            Ok((ctx, charm_dir, vars))
        })?;
        let action_id = ctx.action.as_ref().unwrap().id.clone();
        vars.insert("JUJU_DISPATCH_PATH".into(), format!("actions/{name}"));
        vars.insert("JUJU_ACTION_NAME".into(), name.into());
        vars.insert("JUJU_ACTION_UUID".into(), action_id.clone());
        vars.insert("JUJU_ACTION_TAG".into(), format!("action-{action_id}"));
        let outcome = self.run_process(&charm_dir, "actions", name, &vars);
        let (result, record) = self.write(|m| {
            let ctx = model::load_context(&self.paths, &ctx.id)?;
            let _ = std::fs::remove_file(self.paths.context(&ctx.id));
            let act = ctx.action.clone().unwrap();
            let mut error = outcome.error.clone();
            if !outcome.ran && error.is_none() {
                error = Some(format!("action {name:?} not implemented on unit {unit:?}"));
            }
            let ok = outcome.exit_code == 0 && error.is_none();
            if ok && let Err(e) = commit(&self.paths, m, &ctx, 0) {
                error = Some(e.to_string());
            }
            let failed = !ok || error.is_some() || act.failed;
            let message = if let Some(e) = &error {
                Some(e.clone())
            } else if outcome.exit_code != 0 {
                act.message.clone().or(Some(format!("exit status {}", outcome.exit_code)))
            } else {
                act.message.clone()
            };
            let mut results = act.results.clone();
            if outcome.ran && Agent::of(&m.juju_version) == Some(Agent::Juju29) {
                // Juju 2.9's runner adds the process's exit code and output to every action's
                // results, capitalised, after the charm's own (worker/uniter/runner/runner.go,
                // runCharmProcessOnLocal -> updateActionResults; "TODO(juju3) - use lower
                // case here": Juju 3 names them return-code/stdout/stderr). Not when no
                // process ran. Output that is not UTF-8 (base64 and "StdoutEncoding" in Juju)
                // is kept here as read, lossily.
                results.insert("Code".into(), Value::String(outcome.exit_code.to_string()));
                for (key, text) in [("Stdout", &outcome.stdout), ("Stderr", &outcome.stderr)] {
                    if !text.is_empty() {
                        results.insert(key.into(), Value::String(text.clone()));
                    }
                }
            }
            let result = ActionResult {
                id: act.id.clone(),
                unit: unit.into(),
                name: name.into(),
                status: if failed { "failed".into() } else { "completed".into() },
                results: Value::Object(results),
                message,
                logs: act.logs.clone(),
                exit_code: outcome.exit_code,
                stdout: outcome.stdout.clone(),
                stderr: outcome.stderr.clone(),
            };
            let record = HookRecord {
                unit: unit.into(),
                hook: name.into(),
                kind: "action".into(),
                context_id: ctx.id.clone(),
                relation_id: None,
                remote_unit: None,
                remote_app: None,
                departing_unit: None,
                ran: outcome.ran,
                exit_code: outcome.exit_code,
                duration_ms: outcome.duration.as_secs_f64() * 1000.0,
                stdout: outcome.stdout.clone(),
                stderr: outcome.stderr.clone(),
                error,
            };
            Ok((result, record))
        })?;
        model::append_record(&self.paths.hook_records(), &record)?;
        model::append_record(&self.paths.action_records(), &result)?;
        self.settle()?;
        Ok(result)
    }

    // -----------------------------------------------------------------------------------
    // the hook loop

    /// Runs queued hooks until only units in error hold any.
    fn settle(&mut self) -> anyhow::Result<()> {
        let r = (|| {
            while self.run_next()? {}
            Ok(())
        })();
        self.flush()?;
        r
    }

    fn base_env(&self, m: &Model, ctx: &HookContext, charm_dir: &Path, hook_name: &str) -> BTreeMap<String, String> {
        let u = &m.units[&ctx.unit];
        let dir = charm_dir.display().to_string();
        let mut v = BTreeMap::new();
        let mut set = |k: &str, val: String| {
            v.insert(k.to_string(), val);
        };
        set("CHARM_DIR", dir.clone());
        set("JUJU_CHARM_DIR", dir);
        set("JUJU_CONTEXT_ID", ctx.id.clone());
        set("JUJU_HOOK_NAME", hook_name.into());
        set("JUJU_AGENT_SOCKET_ADDRESS", self.paths.socket().display().to_string());
        set("JUJU_AGENT_SOCKET_NETWORK", "unix".into());
        set("JUJU_UNIT_NAME", ctx.unit.clone());
        set("JUJU_MODEL_UUID", m.uuid.clone());
        set("JUJU_MODEL_NAME", m.name.clone());
        set("JUJU_API_ADDRESSES", "127.0.0.1:17070".into());
        set("JUJU_SLA", "unsupported".into());
        set("JUJU_MACHINE_ID", u.machine.clone());
        set("JUJU_PRINCIPAL_UNIT", String::new());
        set("JUJU_AVAILABILITY_ZONE", String::new());
        set("JUJU_VERSION", m.juju_version.clone());
        set("CLOUD_API_VERSION", String::new());
        set("JUJU_CHARM_HTTP_PROXY", String::new());
        set("JUJU_CHARM_HTTPS_PROXY", String::new());
        set("JUJU_CHARM_FTP_PROXY", String::new());
        set("JUJU_CHARM_NO_PROXY", "127.0.0.1,localhost,::1".into());
        set("APT_LISTCHANGES_FRONTEND", "none".into());
        set("DEBIAN_FRONTEND", "noninteractive".into());
        set("LANG", "C.UTF-8".into());
        set("TERM", "tmux-256color".into());
        set("PATH", format!("{}:{AGENT_PATH}", self.paths.tools().display()));
        for (k, val) in &self.extra_env {
            v.insert(k.clone(), val.clone());
        }
        v
    }

    /// Runs `dispatch` (if present and executable) or `<dir>/<name>`.
    fn run_process(&self, charm_dir: &Path, dir: &str, name: &str, vars: &BTreeMap<String, String>) -> ProcOutcome {
        let start = Instant::now();
        let dispatch = charm_dir.join("dispatch");
        let program = if is_executable(&dispatch) { dispatch } else { charm_dir.join(dir).join(name) };
        let skip = |error: Option<String>, code: i32| ProcOutcome {
            ran: false,
            exit_code: code,
            stdout: String::new(),
            stderr: String::new(),
            error,
            duration: start.elapsed(),
        };
        if !charm_dir.join("metadata.yaml").is_file() {
            return skip(Some("charm missing from disk".into()), 1);
        }
        match std::fs::symlink_metadata(&program) {
            Err(_) => return skip(None, 0),
            Ok(_) if !program.exists() => return skip(None, 0),
            Ok(_) if !is_executable(&program) => {
                return skip(Some(format!("fork/exec {}: permission denied", program.display())), 126);
            }
            Ok(_) => {}
        }
        // The tools read the model from disk.
        if let Err(e) = self.flush() {
            return skip(Some(format!("cannot save the model: {e}")), 1);
        }
        let child = Command::new(&program)
            .env_clear()
            .envs(vars)
            .current_dir(charm_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so a timeout kills the hook's children too.
            .process_group(0)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return skip(Some(format!("fork/exec {}: {e}", program.display())), 126),
        };
        let mut out_pipe = child.stdout.take().unwrap();
        let mut err_pipe = child.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out_pipe.read_to_end(&mut b);
            b
        });
        let t_err = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err_pipe.read_to_end(&mut b);
            b
        });
        // Wait in a thread so the common case costs no polling; kill on timeout.
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let s = child.wait();
            let _ = tx.send(());
            s
        });
        let mut timed_out = false;
        if rx.recv_timeout(self.hook_timeout).is_err() {
            timed_out = true;
            let _ = Command::new("kill").arg("-9").arg("--").arg(format!("-{pid}")).status();
        }
        let status = waiter.join().ok().and_then(|r| r.ok());
        let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
        use std::os::unix::process::ExitStatusExt;
        let exit_code = match status {
            Some(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
            None => -1,
        };
        ProcOutcome {
            ran: true,
            exit_code,
            stdout,
            stderr,
            error: if timed_out { Some(format!("hook timed out after {:?}", self.hook_timeout)) } else { None },
            duration: start.elapsed(),
        }
    }

    /// Runs the next runnable queued hook; false when there is none.
    fn run_next(&mut self) -> anyhow::Result<bool> {
        let max_rounds = self.max_rounds;
        // Pop the event and prepare it: membership changes that Juju applies before the
        // hook, the context file, the environment.
        let prepared = self.write(|m| {
            let idx = m.queue.iter().position(|e| m.units.get(&e.unit).is_some_and(|u| u.error.is_none()));
            let Some(idx) = idx else {
                // Drop events of units that no longer exist.
                m.queue.retain(|e| m.units.contains_key(&e.unit));
                return Ok(Err(()));
            };
            let ev = m.queue.remove(idx);
            if ev.depth > max_rounds {
                bail!(
                    "relation data never settled: still firing {} on {} after {} rounds of relation-changed",
                    ev.kind,
                    ev.unit,
                    max_rounds
                );
            }
            let Some(u) = m.units.get(&ev.unit) else { return Ok(Ok(None)) };
            let charm_dir = u.charm_dir.clone();
            let app = u.app.clone();
            let mut hook_name = ev.kind.clone();
            let mut relation_name = None;
            if let Some(id) = ev.relation_id {
                let Some(r) = m.relations.get_mut(&id) else { return Ok(Ok(None)) };
                if !r.scope.contains_key(&ev.unit) {
                    return Ok(Ok(None));
                }
                let ep = r.local_endpoint(&app).unwrap().endpoint.clone();
                match ev.kind.as_str() {
                    "relation-joined" => {
                        let remote = ev.remote_unit.clone().unwrap();
                        if r.dying || !r.scope.contains_key(&remote) {
                            return Ok(Ok(None));
                        }
                        r.scope.get_mut(&ev.unit).unwrap().insert(remote);
                    }
                    "relation-changed" => {
                        if let Some(remote) = &ev.remote_unit {
                            if !r.scope[&ev.unit].contains(remote) {
                                return Ok(Ok(None));
                            }
                        } else if r.dying {
                            return Ok(Ok(None));
                        }
                    }
                    "relation-departed" => {
                        let remote = ev.remote_unit.clone().unwrap();
                        r.scope.get_mut(&ev.unit).unwrap().remove(&remote);
                    }
                    _ => {}
                }
                hook_name = format!("{ep}-{}", ev.kind);
                relation_name = Some((ep, id));
            }
            let ctx = HookContext {
                id: format!("{}-{}-{}", ev.unit, hook_name, model::random_hex(8)),
                unit: ev.unit.clone(),
                hook_name: hook_name.clone(),
                relation_id: ev.relation_id,
                remote_unit: ev.remote_unit.clone(),
                remote_app: ev.remote_app.clone(),
                departing_unit: ev.departing_unit.clone(),
                ..Default::default()
            };
            model::save_context(&self.paths, &ctx)?;
            let leader_before = bags::read_or_empty(&self.paths, Bag::Leader(&app))?;
            let vars = self.base_env(m, &ctx, &charm_dir, &hook_name);
            let secret_env = match &ev.secret {
                Some((id, _)) => {
                    let Some(s) = m.secrets.get(id) else { return Ok(Ok(None)) };
                    Some((id.clone(), s.consumers.get(&ev.unit).map(|c| c.label.clone()).unwrap_or_default()))
                }
                None => None,
            };
            Ok(Ok(Some((ev, ctx, charm_dir, relation_name, secret_env, leader_before, app, vars))))
        })?;
        let (ev, ctx, charm_dir, relation_name, secret_env, leader_before, app, mut vars) = match prepared {
            Err(()) => return Ok(false),
            Ok(None) => return Ok(true),
            Ok(Some(p)) => p,
        };
        vars.insert("JUJU_DISPATCH_PATH".into(), format!("hooks/{}", ctx.hook_name));
        if let Some((id, label)) = &secret_env {
            // Secret hooks: the URI and the consumer's label; secret-changed carries no
            // revision (canonical/operator docs, "Secrets": only secret-expired, -rotate and
            // -remove set JUJU_SECRET_REVISION).
            vars.insert("JUJU_SECRET_ID".into(), format!("secret:{id}"));
            vars.insert("JUJU_SECRET_LABEL".into(), label.clone());
        }
        if let Some((ep, id)) = &relation_name {
            vars.insert("JUJU_RELATION".into(), ep.clone());
            vars.insert("JUJU_RELATION_ID".into(), format!("{ep}:{id}"));
            vars.insert("JUJU_REMOTE_UNIT".into(), ev.remote_unit.clone().unwrap_or_default());
            vars.insert("JUJU_REMOTE_APP".into(), ev.remote_app.clone().unwrap_or_default());
            if let Some(d) = &ev.departing_unit {
                vars.insert("JUJU_DEPARTING_UNIT".into(), d.clone());
            }
        }
        let outcome = self.run_process(&charm_dir, "hooks", &ctx.hook_name, &vars);

        let record = self.write(|m| {
            let ctx = model::load_context(&self.paths, &ctx.id)?;
            let _ = std::fs::remove_file(self.paths.context(&ctx.id));
            let mut error = outcome.error.clone();
            let ok = outcome.exit_code == 0 && error.is_none();
            if ok && let Err(e) = commit(&self.paths, m, &ctx, ev.depth + 1) {
                error = Some(e.to_string());
            }
            // leader-set is immediate: minions hear about it even if the hook failed.
            if m.apps.contains_key(&app) && bags::read_or_empty(&self.paths, Bag::Leader(&app))? != leader_before {
                let minions: Vec<String> = m
                    .units
                    .values()
                    .filter(|u| u.app == app && u.name != ev.unit && !u.dying)
                    .map(|u| u.name.clone())
                    .collect();
                for mu in minions {
                    let mut e = Event::simple(&mu, "leader-settings-changed");
                    e.depth = ev.depth + 1;
                    if !m.queue.iter().any(|q| q.same_as(&e)) {
                        m.queue.push(e);
                    }
                }
            }
            let failed = !ok || error.is_some();
            if failed {
                if let Some(u) = m.units.get_mut(&ev.unit) {
                    u.error =
                        Some(UnitError { message: format!("hook failed: \"{}\"", ctx.hook_name), event: ev.clone() });
                }
            } else {
                after_hook_bookkeeping(&self.paths, m, &ev, true)?;
            }
            Ok(HookRecord {
                unit: ev.unit.clone(),
                hook: ctx.hook_name.clone(),
                kind: "hook".into(),
                context_id: ctx.id.clone(),
                relation_id: ev.relation_id,
                remote_unit: ev.remote_unit.clone(),
                remote_app: ev.remote_app.clone(),
                departing_unit: ev.departing_unit.clone(),
                ran: outcome.ran,
                exit_code: outcome.exit_code,
                duration_ms: outcome.duration.as_secs_f64() * 1000.0,
                stdout: outcome.stdout.clone(),
                stderr: outcome.stderr.clone(),
                error,
            })
        })?;
        model::append_record(&self.paths.hook_records(), &record)?;
        if let Some(observe) = self.observer.as_mut()
            && let Some(c) = self.cache.borrow().as_ref()
        {
            let mut snapshot = c.model.clone();
            bags::fill(&self.paths, &mut snapshot)?;
            observe(&record, &snapshot);
        }
        Ok(true)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// What happens in the model once a hook has completed (or been skipped).
fn after_hook_bookkeeping(paths: &Paths, m: &mut Model, ev: &Event, _ok: bool) -> anyhow::Result<()> {
    match ev.kind.as_str() {
        "relation-created" => {
            if let Some(r) = ev.relation_id.and_then(|id| m.relations.get_mut(&id)) {
                r.created.insert(ev.unit.clone());
            }
        }
        "relation-departed" => {
            if let Some(r) = ev.relation_id.and_then(|id| m.relations.get_mut(&id))
                && let Some(s) = r.scope.get_mut(&ev.unit)
            {
                s.remove(ev.remote_unit.as_deref().unwrap_or_default());
            }
        }
        "relation-broken" => {
            if let Some(id) = ev.relation_id
                && let Some(r) = m.relations.get_mut(&id)
            {
                r.scope.remove(&ev.unit);
                r.created.remove(&ev.unit);
                if r.dying && r.scope.is_empty() {
                    m.relations.remove(&id);
                    bags::remove_relation(paths, id)?;
                }
            }
        }
        "secret-changed" => {
            // The uniter's CommitHook: it has told the charm about this revision.
            if let Some((id, rev)) = &ev.secret
                && let Some(c) = m.secrets.get_mut(id).and_then(|s| s.consumers.get_mut(&ev.unit))
            {
                c.notified = *rev;
            }
        }
        "start" => {
            if let Some(u) = m.units.get_mut(&ev.unit) {
                u.started = true;
                if !u.status_set_by_charm {
                    u.status = Status::new("unknown", "");
                }
            }
        }
        "remove" if m.units.get(&ev.unit).is_some_and(|u| u.dying) => {
            m.units.remove(&ev.unit);
            bags::remove(paths, Bag::State(&ev.unit))?;
            for s in m.secrets.values_mut() {
                s.consumers.remove(&ev.unit);
            }
            for r in m.relations.values_mut() {
                r.scope.remove(&ev.unit);
                for s in r.scope.values_mut() {
                    s.remove(&ev.unit);
                }
            }
            drop_relations(paths, m, |r| r.dying && r.scope.is_empty())?;
            let app = model::unit_app(&ev.unit).to_string();
            if let Some(a) = m.apps.get_mut(&app)
                && a.leader.as_deref() == Some(ev.unit.as_str())
            {
                a.leader = None;
                let mut rest: Vec<(u32, String)> = m
                    .units
                    .values()
                    .filter(|u| u.app == app && !u.dying)
                    .map(|u| (u.name.rsplit_once('/').and_then(|(_, n)| n.parse().ok()).unwrap_or(0), u.name.clone()))
                    .collect();
                rest.sort();
                if let Some((_, new)) = rest.into_iter().next() {
                    m.apps.get_mut(&app).unwrap().leader = Some(new.clone());
                    m.queue.push(Event::simple(&new, "leader-elected"));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Removes the relations `gone` picks, with their databags.
fn drop_relations(paths: &Paths, m: &mut Model, gone: impl Fn(&Relation) -> bool) -> anyhow::Result<()> {
    let ids: Vec<u32> = m.relations.values().filter(|r| gone(r)).map(|r| r.id).collect();
    for id in ids {
        m.relations.remove(&id);
        bags::remove_relation(paths, id)?;
    }
    Ok(())
}

/// Applies a successful hook's staged writes and queues relation-changed on the other side.
/// Only a databag the hook changed is written.
fn commit(paths: &Paths, m: &mut Model, ctx: &HookContext, depth: u32) -> anyhow::Result<()> {
    let app = model::unit_app(&ctx.unit).to_string();
    for (id, bag) in ctx.staged_unit.iter().chain(ctx.staged_app.iter()) {
        if model::databag_size(bag) > MAX_DATABAG_BYTES {
            bail!(
                "cannot write relation settings for relation {id}: settings exceed the {} byte limit",
                MAX_DATABAG_BYTES
            );
        }
    }
    for (id, bag) in &ctx.staged_unit {
        if m.relations.contains_key(id) && bags::read(paths, Bag::Unit(*id, &ctx.unit))?.as_ref() != Some(bag) {
            bags::write(paths, Bag::Unit(*id, &ctx.unit), bag)?;
            queue_unit_data_changed(m, *id, &ctx.unit, depth);
        }
    }
    for (id, bag) in &ctx.staged_app {
        if m.relations.contains_key(id) && bags::read(paths, Bag::App(*id, &app))?.as_ref() != Some(bag) {
            bags::write(paths, Bag::App(*id, &app), bag)?;
            queue_app_data_changed(m, *id, &app, Some(&ctx.unit), depth);
        }
    }
    if let Some(state) = &ctx.staged_state
        && m.units.contains_key(&ctx.unit)
    {
        bags::write(paths, Bag::State(&ctx.unit), state)?;
    }
    Ok(())
}

fn queue_unit_data_changed(m: &mut Model, rel: u32, writer: &str, depth: u32) {
    let Some(r) = m.relations.get(&rel) else {
        return;
    };
    let app = model::unit_app(writer).to_string();
    let targets: Vec<String> =
        r.scope.iter().filter(|(v, seen)| *v != writer && seen.contains(writer)).map(|(v, _)| v.clone()).collect();
    for v in targets {
        push_event(m, rel_event(&v, "relation-changed", rel, Some(writer), &app, depth));
    }
}

fn queue_app_data_changed(m: &mut Model, rel: u32, app: &str, writer: Option<&str>, depth: u32) {
    let Some(r) = m.relations.get(&rel) else {
        return;
    };
    if r.dying {
        return;
    }
    let peer = r.is_peer();
    let targets: Vec<String> = r
        .scope
        .keys()
        .filter(|v| if peer { Some(v.as_str()) != writer } else { model::unit_app(v) != app })
        .cloned()
        .collect();
    for v in targets {
        push_event(m, rel_event(&v, "relation-changed", rel, None, app, depth));
    }
}

fn queue_for_app(m: &mut Model, app: &str, kind: &str) {
    let units: Vec<String> = m.units.values().filter(|u| u.app == app && !u.dying).map(|u| u.name.clone()).collect();
    for u in units {
        push_event(m, Event::simple(&u, kind));
    }
}

/// Queues relation-departed (per known remote unit) then relation-broken on every unit in
/// scope, and marks the relation dying.
/// relation-departed on `unit` for `member`, with `departing` (JUJU_DEPARTING_UNIT) the unit
/// that is going away: `member` itself, or `unit` when it is the one being removed.
fn departed_event(unit: &str, rel: u32, member: &str, remote_app: &str, departing: &str) -> Event {
    let mut ev = rel_event(unit, "relation-departed", rel, Some(member), remote_app, 0);
    ev.departing_unit = Some(departing.into());
    ev
}

fn queue_relation_removal(m: &mut Model, rel: u32) {
    let r = m.relations.get_mut(&rel).unwrap();
    r.dying = true;
    let r = r.clone();
    m.queue.retain(|e| e.relation_id != Some(rel));
    for (u, seen) in &r.scope {
        let app = model::unit_app(u);
        let remote_app = r.remote_app(app).unwrap_or_default().to_string();
        for mem in seen {
            m.queue.push(departed_event(u, rel, mem, &remote_app, mem));
        }
        m.queue.push(rel_event(u, "relation-broken", rel, None, &remote_app, 0));
    }
}

fn relation_exists(m: &Model, rel: RelationId) -> anyhow::Result<()> {
    m.relations.get(&rel).map(drop).ok_or_else(|| anyhow!("relation {rel} not found"))
}

fn resolve_endpoints(m: &Model, a: &str, b: &str) -> anyhow::Result<(RelEndpoint, RelEndpoint)> {
    let (app_a, ep_a) = split_endpoint(a);
    let (app_b, ep_b) = split_endpoint(b);
    let meta_a: &CharmMeta = &m.apps.get(app_a).ok_or_else(|| anyhow!("application {app_a:?} not found"))?.meta;
    let meta_b: &CharmMeta = &m.apps.get(app_b).ok_or_else(|| anyhow!("application {app_b:?} not found"))?.meta;
    let mut candidates = Vec::new();
    for (na, sa) in &meta_a.endpoints {
        if ep_a.is_some_and(|e| e != na) {
            continue;
        }
        for (nb, sb) in &meta_b.endpoints {
            if ep_b.is_some_and(|e| e != nb) {
                continue;
            }
            let roles_ok =
                (sa.role == "provider" && sb.role == "requirer") || (sa.role == "requirer" && sb.role == "provider");
            if roles_ok && sa.interface == sb.interface {
                candidates.push((
                    RelEndpoint {
                        app: app_a.into(),
                        endpoint: na.clone(),
                        interface: sa.interface.clone(),
                        role: sa.role.clone(),
                    },
                    RelEndpoint {
                        app: app_b.into(),
                        endpoint: nb.clone(),
                        interface: sb.interface.clone(),
                        role: sb.role.clone(),
                    },
                ));
            }
        }
    }
    match candidates.len() {
        0 => bail!("no relations found between {a:?} and {b:?}"),
        1 => Ok(candidates.pop().unwrap()),
        _ => bail!("ambiguous relation: {a:?} {b:?} could refer to several endpoint pairs"),
    }
}

/// Applies actions.yaml defaults and checks required/unknown/typed params.
fn apply_action_params(spec: &charm::ActionSpec, params: Value) -> anyhow::Result<Value> {
    let mut p = match params {
        Value::Null => serde_json::Map::new(),
        Value::Object(o) => o,
        other => bail!("action params must be a map, got {other}"),
    };
    for (name, schema) in &spec.params {
        if !p.contains_key(name)
            && let Some(d) = schema.get("default")
        {
            p.insert(name.clone(), d.clone());
        }
    }
    for r in &spec.required {
        if !p.contains_key(r) {
            bail!(
                "validation failed: (root) : \"{r}\" property is missing and required, given {}",
                Value::Object(p.clone())
            );
        }
    }
    for (k, v) in &p {
        match spec.params.get(k) {
            None if !spec.additional_properties => {
                bail!("validation failed: (root) : additional property \"{k}\" is not allowed")
            }
            None => {}
            Some(schema) => {
                if let Some(t) = schema.get("type").and_then(Value::as_str) {
                    let ok = match t {
                        "string" => v.is_string(),
                        "integer" => v.is_i64() || v.is_u64(),
                        "number" => v.is_number(),
                        "boolean" => v.is_boolean(),
                        "object" => v.is_object(),
                        "array" => v.is_array(),
                        "null" => v.is_null(),
                        _ => true,
                    };
                    if !ok {
                        bail!("validation failed: {k} : invalid type. Expected: {t}, given: {v}");
                    }
                }
            }
        }
    }
    Ok(Value::Object(p))
}
