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
//!                           requests, https     what requirers ask for on `api` and `https` (bounded)
//!                           reconcile::decide   pure: plan, policy, what is held, status
//!                           reconcile::apply    leader only: changes, in batches, under a deadline
//!                           reconcile::publish  relation data, state cache, status
//! ```
//!
//! Only two boundaries do I/O: `hook_tools` (Juju's tools, as processes) and `lxd` (HTTPS with
//! a pinned server certificate, `pin`), besides `legacy`, which removes the files the Python
//! charm left in the charm directory on `install` and `upgrade-charm`. The `adopt` action takes
//! over that charm's trust entries; the other `actions` run the same pass (in a dry run or
//! not) and report from it. Everything between them is plain data and pure
//! functions: `config`, `credentials`, `certs`, `endpoint`, `ownership` (who owns a trust
//! entry, from its name), `plan`, `relation` (the `lxd` interface payload), `https` (the
//! `lxd-https` interface, as charm-lxd serves it: requests in, payload out), `status`,
//! `limits` (every bound on what crosses a process boundary) and `parallel` (bounded fan-out
//! for reads). `memory` holds the in-memory unit agent and LXD the tests, the fuzz targets
//! and the property checks run the pass against.

pub mod access;
pub mod actions;
pub mod adopt;
pub mod adoption;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod context;
pub mod credentials;
pub mod databag;
pub mod dispatch;
pub mod endpoint;
pub mod hook_tools;
pub mod https;
pub mod legacy;
pub mod limits;
pub mod lxd;
/// An in-memory unit agent and LXD for tests, fuzzing and property checks; never used by the binary.
pub mod memory;
pub mod ownership;
pub mod parallel;
pub mod pin;
pub mod plan;
pub mod reconcile;
pub mod refusal;
pub mod relation;
pub mod requests;
pub mod status;
