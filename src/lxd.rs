//! The LXD REST API as this charm needs it: one trait (the boundary), plain data, and the
//! HTTPS implementation in `lxd::client`.

pub mod client;

use crate::credentials::TlsCredentials;
use crate::endpoint::Endpoint;

/// What `GET /1.0` tells a caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerInfo {
    /// `auth == "trusted"`.
    pub trusted: bool,
    pub api_extensions: Vec<String>,
    /// The following come from `environment`, which LXD only sends to trusted callers.
    pub server_name: String,
    pub server_version: String,
    pub clustered: bool,
    /// `environment.addresses`: the `core.https_address` listen addresses (`host:port`).
    pub addresses: Vec<String>,
}

/// A cluster member's status as LXD (or Incus) spells it. Only `Online` members are published;
/// a status a future server adds is kept as it was said, and is not `Online`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MemberStatus {
    #[default]
    Online,
    Offline,
    Evacuated,
    Other(String),
}

impl From<&str> for MemberStatus {
    fn from(s: &str) -> MemberStatus {
        match s {
            "Online" => MemberStatus::Online,
            "Offline" => MemberStatus::Offline,
            "Evacuated" => MemberStatus::Evacuated,
            other => MemberStatus::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemberStatus::Online => "Online",
            MemberStatus::Offline => "Offline",
            MemberStatus::Evacuated => "Evacuated",
            MemberStatus::Other(s) => s,
        })
    }
}

/// The type of a trust entry. Only `client` entries are ever added, changed or removed;
/// `server` and `metrics` entries (and any type a future server adds) are left alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrustKind {
    #[default]
    Client,
    Server,
    Metrics,
    Other(String),
}

impl From<&str> for TrustKind {
    fn from(s: &str) -> TrustKind {
        match s {
            "client" => TrustKind::Client,
            "server" => TrustKind::Server,
            "metrics" => TrustKind::Metrics,
            other => TrustKind::Other(other.to_string()),
        }
    }
}

/// One entry of `GET /1.0/cluster/members?recursion=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// `https://addr:port`, as LXD publishes it.
    pub url: String,
    pub status: MemberStatus,
    pub message: String,
}

/// One entry of `GET /1.0/certificates?recursion=1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustEntry {
    pub name: String,
    /// 64 lowercase hex characters.
    pub fingerprint: String,
    pub kind: TrustKind,
    pub restricted: bool,
    pub projects: Vec<String>,
}

/// A certificate to add to the trust store as a `client` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrustEntry {
    pub name: String,
    /// DER bytes of the certificate; the client sends them base64-encoded, as LXD requires.
    pub der: Vec<u8>,
    /// `None`: send no `restricted`/`projects` fields at all (unrestricted).
    pub projects: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// LXD already held the certificate (its duplicate answer varies by version: 400/409/500).
    AlreadyPresent,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LxdError {
    /// TCP connect failed, timed out, or the connection broke.
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// The server presented a certificate other than the pinned one; nothing was sent.
    #[error("server certificate of {endpoint} does not match the pinned one: {detail}")]
    ServerCertMismatch { endpoint: String, detail: String },
    /// Our client certificate is not in LXD's trust store (`auth: untrusted`, or a 403).
    #[error("client certificate is not trusted by {endpoint}")]
    Untrusted { endpoint: String },
    /// The client identity itself is unusable (bad PEM, key does not match the certificate).
    #[error("client credentials are unusable: {0}")]
    BadCredentials(String),
    /// LXD answered with an error envelope.
    #[error("LXD {method} {path} failed ({status}): {message}")]
    Api { method: String, path: String, status: u16, message: String },
    /// LXD answered something we could not understand.
    #[error("unexpected answer from LXD {path}: {detail}")]
    Protocol { path: String, detail: String },
}

/// A connection to one LXD server (any member of a cluster: the trust store is cluster-wide).
pub trait Lxd {
    /// The endpoint this connection talks to.
    fn endpoint(&self) -> &Endpoint;
    /// `GET /1.0`.
    fn server(&mut self) -> Result<ServerInfo, LxdError>;
    /// `GET /1.0/cluster/members?recursion=1`. Only meaningful when `server().clustered`.
    fn members(&mut self) -> Result<Vec<Member>, LxdError>;
    /// `GET /1.0/certificates?recursion=1`.
    fn trust_store(&mut self) -> Result<Vec<TrustEntry>, LxdError>;
    /// `POST /1.0/certificates`.
    fn add_trust(&mut self, entry: &NewTrustEntry) -> Result<AddOutcome, LxdError>;
    /// `DELETE /1.0/certificates/<fingerprint>`; an entry already gone (404) is success.
    fn remove_trust(&mut self, fingerprint: &str) -> Result<(), LxdError>;
    /// `PATCH /1.0/certificates/<fingerprint>` with `restricted` and `projects`.
    fn restrict_trust(&mut self, fingerprint: &str, projects: Option<&[String]>) -> Result<(), LxdError>;
    /// `PATCH /1.0/certificates/<fingerprint>` with `name` alone. LXD (5.0 `certificatePatch`
    /// and after) decodes a PATCH over the stored entry, so the type, restrictions, projects
    /// and certificate stay as they are. An entry that is gone is an error (404): the caller
    /// meant that entry, not "nothing to do".
    fn rename_trust(&mut self, fingerprint: &str, name: &str) -> Result<(), LxdError>;

    /// Adds every entry; the answers come in the same order. An implementation may have a few
    /// requests in flight at once (LXD serves concurrent adds faster than sequential ones).
    fn add_trust_all(&mut self, entries: &[NewTrustEntry]) -> Vec<Result<AddOutcome, LxdError>> {
        entries.iter().map(|e| self.add_trust(e)).collect()
    }

    /// Removes every entry; the answers come in the same order. May run requests at once.
    fn remove_trust_all(&mut self, fingerprints: &[String]) -> Vec<Result<(), LxdError>> {
        fingerprints.iter().map(|fp| self.remove_trust(fp)).collect()
    }
}

/// A connection the reconcile can hand to another thread: it talks to LXD while the hook
/// tools are read.
pub type Connection = Box<dyn Lxd + Send>;

/// Opens connections; a trait so the reconcile can fail over between members and be tested
/// without sockets.
pub trait Connector: Sync {
    fn connect(&self, endpoint: &Endpoint, tls: &TlsCredentials) -> Result<Connection, LxdError>;
}
