//! jujusim: a faithful simulator of Juju's hook tools and unit agent, for testing machine
//! charms (Rust, Python `ops`, bash, ...) without a Juju controller.
//!
//! Two halves:
//!
//! * **The hook tools** (`relation-get`, `relation-set`, `config-get`, `status-set`, ...):
//!   one multi-call binary, `jujusim`, that dispatches on `basename(argv[0])` (or
//!   `jujusim <tool> args...`). The driver puts symlinks named after each tool first on
//!   the hook's `PATH`. Argument parsing, output formats, error texts and exit codes follow
//!   Juju's `jujuc` commands (see `tools` and `flags`).
//! * **The driver** ([`Sim`]): deploys charm directories, runs their hooks in Juju's order
//!   with exactly Juju's environment, commits transactional writes when a hook exits 0,
//!   propagates relation-changed until the model is quiet, and records everything.
//!
//! ```no_run
//! use jujusim::Sim;
//! use serde_json::json;
//! # fn main() -> anyhow::Result<()> {
//! let tmp = std::env::temp_dir().join("jujusim-doc");
//! let mut sim = Sim::new(&tmp, "test-model")?;
//! sim.set_cloud_spec(json!({"type": "lxd", "name": "localhost", "credential": {"auth-type": "certificate", "attrs": {}}}))?;
//! sim.deploy("lxd-integrator", "path/to/charm-dir", 1)?;
//! sim.trust("lxd-integrator", true)?;                       // config-changed
//! sim.deploy("req", "path/to/requirer-dir", 2)?;
//! let rel = sim.relate("lxd-integrator:api", "req:lxd")?;   // created → joined → changed
//! let data = sim.relation_app_data(rel, "lxd-integrator")?;
//! let r = sim.run_action("req/0", "set-certificates", json!({"value": "..."}))?;
//! assert_eq!(r.status, "completed");
//! sim.assert_no_failed_hooks()?;
//! # let _ = data; Ok(()) }
//! ```
//!
//! Every mutating call runs the resulting hooks to completion before returning (hooks run
//! one at a time; a unit in a hook error holds its remaining hooks until [`Sim::resolve`]).
//!
//! **Finding the binary**: [`Sim::new`] uses `$JUJUSIM_BIN` if set, else looks for
//! `jujusim` in the directories above the running executable up to `target/` (so
//! `target/<profile>/jujusim` for any workspace test binary in `target/<profile>/deps/`).
//! Build it first (`cargo build --workspace --bins`, or `cargo build -p jujusim --bin
//! jujusim`): `cargo test -p other-crate` alone does not build another package's binaries.
//! [`Sim::with_binary`] takes an explicit path (this crate's own tests pass
//! `env!("CARGO_BIN_EXE_jujusim")`).
//!
//! The model lives on disk under the root directory (JSON, see [`model`]; each databag in a
//! file of its own, see [`bags`]); while a charm process runs, the driver lends the model to
//! its agent thread, which serves the tool calls one at a time (see [`agent`]); records are
//! JSON lines under `<root>/records/`.

pub mod agent;
pub mod bags;
pub mod charm;
pub mod driver;
pub mod flags;
pub mod format;
pub mod model;
pub mod random;
pub mod secrets;
pub mod tools;

pub use driver::{ActionResult, Agent, CopyMode, HookObserver, HookRecord, JUJU_2_9, JUJU_3, RelationId, Sim};
pub use model::{Databag, Secret, SecretConsumer};
pub use tools::{LogLine, ToolCall};
