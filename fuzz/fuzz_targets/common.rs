//! Shared by the fuzz targets (each includes it with `#[path]`): the fixed clock, input
//! splitting, and the trust-store shapes used to check plans.
#![allow(dead_code)]

use lxd_integrator::lxd::TrustEntry;
use lxd_integrator::ownership::Scope;

/// 2030-01-01T00:00:00Z. Fixed, so a crash reproduces forever; the seed certificates are valid
/// then (openssl `-days 36500`, rcgen's 1975–4096 default).
pub const NOW: i64 = 1_893_456_000;

/// Upper bound for any reason text derived from outside input. A reason that grows with the
/// input is quoting it, which the charm promises never to do (values may be keys).
pub const MAX_REASON: usize = 512;

/// Splits raw bytes on NUL into at most `n` parts (the last keeps any further NULs), each
/// decoded lossily: Juju hands databag values over as JSON strings, so invalid UTF-8 reaches
/// the charm as U+FFFD.
pub fn split_lossy(data: &[u8], n: usize) -> Vec<String> {
    data.splitn(n, |b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect()
}

pub fn scope() -> Scope {
    Scope { model_uuid: "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc".into(), app: "lxd-integrator".into() }
}

pub fn client_entry(name: String, fingerprint: String) -> TrustEntry {
    TrustEntry { name, fingerprint, kind: "client".into(), restricted: false, projects: vec![] }
}
