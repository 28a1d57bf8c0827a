//! Test fixtures for lxd-integrator.
//!
//! - [`LxdCluster`]: a real cluster of N members on loopback addresses, run from a private
//!   directory, torn down on drop: LXD (Debian's `lxd` 5.0.x) or Incus (Debian's `incus-base`
//!   6.0.x from bookworm-backports), as [`ServerKind`] says.
//! - [`certs`]: realistic client/server/CA certificates made with rcgen, and LXD's fingerprint.
//! - [`tls_server`]: a scripted HTTPS server that logs what a TLS client did.

pub mod certs;
mod cluster;
mod proc;
mod server;
pub mod tls_server;

pub use cluster::{LxdCluster, OFFLINE_THRESHOLD_SECS, PORT, remove_stale_runs};
pub use server::ServerKind;

/// 64 bits from the kernel's random source, with a time-based fallback.
pub(crate) fn random_u64() -> u64 {
    use std::io::Read;
    let mut buf = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(&mut buf).is_ok()
    {
        return u64::from_le_bytes(buf);
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ ((std::process::id() as u64) << 32)
}
