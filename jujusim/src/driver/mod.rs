//! The driver: a tiny single-machine "controller + unit agents" that runs a charm's hooks the
//! way Juju's uniter does, one at a time, in a deterministic order.
//!
//! [`Sim`] is one type whose methods are split by concern: creating it and its settings
//! (here), the model on disk (`store`), deploying and removing (`deploy`), relations
//! (`relations`), what an operator does (`operate`) and looks at (`status`), user secrets
//! (`secrets`), actions (`actions`), the hook loop (`hooks`), running a charm process
//! (`process`), what a finished hook changes (`commit`), the events it queues (`queue`), and
//! the records (`records`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use crate::agent::Agent as ToolAgent;
use crate::model::{self, Model, Paths};
use crate::tools;

mod actions;
mod commit;
mod deploy;
mod hooks;
mod operate;
mod process;
mod queue;
mod records;
mod relations;
mod secrets;
mod status;
mod store;

pub use deploy::CopyMode;
pub use records::{ActionResult, HookRecord};

use store::Cached;

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
    /// Serves the hook tools from the model lent to it while a charm process runs.
    agent: ToolAgent,
}

/// Called after every hook with its record and the model as the hook left it (its writes
/// committed, or not if it failed): a test can check what each hook did, not only where a
/// whole call ended.
pub type HookObserver = Box<dyn FnMut(&HookRecord, &Model)>;

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
        for d in [paths.tools(), paths.units(), paths.records()] {
            std::fs::create_dir_all(&d)?;
        }
        std::fs::write(paths.socket(), b"jujusim agent socket placeholder\n")?;
        let bin: PathBuf = bin.into();
        let bin = bin.canonicalize().with_context(|| format!("jujusim binary {}", bin.display()))?;
        let model = Model {
            name: model_name.into(),
            uuid: crate::random::random_uuid(),
            juju_version: JUJU_3.into(),
            credential_get_available: true,
            next_action_id: 1,
            ..Default::default()
        };
        model::save_model(&paths, &model)?;
        let agent = ToolAgent::start(paths.clone(), tools::serve).context("starting the hook tools' agent")?;
        let sim = Sim {
            paths,
            bin,
            hook_timeout: Duration::from_secs(300),
            max_rounds: 100,
            copy_mode: CopyMode::Copy,
            extra_env: BTreeMap::new(),
            cache: RefCell::new(None),
            observer: None,
            agent,
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
    /// Calls `observer` after every hook from now on (see [`HookObserver`]).
    pub fn set_hook_observer(&mut self, observer: impl FnMut(&HookRecord, &Model) + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// Adds a variable to every hook's environment. Real Juju sets none: use only for
    /// debugging/coverage instrumentation.
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
}
