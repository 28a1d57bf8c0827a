//! lxd-integrator: a Juju machine charm that keeps an LXD cluster's trust store in step with
//! the certificates its related charms send, and tells them where the cluster's members are.
//!
//! Every hook runs one pass (`reconcile`), as typed stages:
//!
//! ```text
//! dispatch ─ HookContext ─▶ reconcile::inputs   credentials, config, state cache (read once);
//!                                               then the credentials secret, if one is named
//!                           reconcile::observe  LXD: server, members, trust store    ┐ at once
//!                           reconcile::inputs   leadership, relations, databags     ┘
//!                           reconcile::quiet    update-status, or one unit's change hook: nothing
//!                                               new since the last steady pass → stop here
//!                           ▼ Inputs + Observed
//!                           reconcile::decide   pure, once: what requirers ask on `api` and
//!                                               `https` (bounded), plan, policy, what they are
//!                                               told, the status's reasons → Decision
//!                           reconcile::apply    leader only: changes, in batches, under a
//!                                               deadline → Applied; `outcome` (pure) folds LXD's
//!                                               answers into the decision → Outcome
//!                           reconcile::publish  relation data, state cache; `status` (pure)
//!                                               completes the status → Report, built at the end
//! ```
//!
//! The crate stands on floors; a module names only modules on its own floor or below, and
//! `tests/floors.rs` fails on any import that breaks this (or makes a cycle within a floor):
//!
//! ```text
//! 4 entry points  dispatch (hook or action → HookContext), actions, adopt, legacy, main
//! 3 the pass      reconcile/{inputs, observe, quiet, decide, apply, publish, state}
//! 2 boundaries    hook_tools (Juju's tools, as processes), lxd + pin (HTTPS to LXD, pinned)
//! 1 the domain    config, credentials, requests, relation (`lxd` payload), https (`lxd-https`),
//!   (pure)        plan, access (may the credential manage trust), adoption (what adopt takes),
//!                 status (every status text), interfaces (every endpoint, registered once)
//! 0 vocabulary    limits, certs, endpoint, ownership (who owns an entry, from its name),
//!                 context (HookContext), databag, bag_stream (a databag decoded as it is
//!                 read), cluster (what LXD answers), refusal, parallel, timeline (profiling)
//! ```
//!
//! Only the boundaries do I/O, besides `legacy`, which removes the files the Python charm left
//! in the charm directory on `install` and `upgrade-charm`. `memory` (the in-memory unit agent
//! and LXD, the one model of each that every test uses; the e2e fake LXD serves its `Cluster`
//! over HTTPS) is test support: compiled for the tests and with the `testkit` feature that the
//! fuzz targets and benchmarks enable, never into the charm.

pub(crate) mod access;
pub mod actions;
pub(crate) mod adopt;
pub(crate) mod adoption;
pub(crate) mod bag_stream;
pub mod certs;
pub(crate) mod cluster;
pub mod config;
pub(crate) mod context;
pub mod credentials;
pub(crate) mod databag;
pub mod dispatch;
pub mod endpoint;
pub mod hook_tools;
pub mod https;
pub(crate) mod interfaces;
pub(crate) mod legacy;
pub mod limits;
pub mod lxd;
/// The in-memory unit agent and LXD for tests, fuzzing and property checks: test support,
/// compiled only for tests and with the `testkit` feature, never into the charm.
#[cfg(any(test, feature = "testkit"))]
pub mod memory;
pub mod ownership;
pub(crate) mod parallel;
pub mod pin;
pub mod plan;
pub mod reconcile;
pub(crate) mod refusal;
pub mod relation;
pub mod requests;
pub(crate) mod status;
pub(crate) mod timeline;
