//! Where the LXD credentials come from: Juju's cloud credential (`juju trust`), else config.

/// The TLS material for one LXD: kept in memory only, never logged (Debug redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsCredentials {
    pub client_cert_pem: String,
    pub client_key_pem: String,
    /// The LXD server (or cluster) certificate to pin, or a CA in PKI mode.
    pub server_cert_pem: String,
}

impl std::fmt::Debug for TlsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsCredentials { <redacted> }")
    }
}
