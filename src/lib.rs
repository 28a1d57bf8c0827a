//! lxd-integrator: a Juju machine charm that keeps an LXD cluster's trust store in step with
//! the certificates its related charms send, and tells them where the cluster's members are.
//!
//! The flow of every hook is one reconcile pass (see `reconcile`):
//! credentials → connect → observe LXD → desired trust → apply → publish → status.
//! `hook_tools` and `lxd` are the only modules that touch the outside world; the rest are pure.

pub mod actions;
pub mod certs;
pub mod credentials;
pub mod dispatch;
pub mod endpoint;
pub mod hook_tools;
pub mod limits;
pub mod lxd;
/// An in-memory unit agent and LXD for tests, fuzzing and property checks; never used by the binary.
pub mod memory;
pub mod ownership;
pub mod parallel;
pub mod pin;
pub mod plan;
pub mod reconcile;
pub mod relation;
pub mod status;
