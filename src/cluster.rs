//! What LXD (or Incus) says, as plain data: the server, its members, its trust store, the
//! caller's identity, and what can go wrong talking to it. The boundary (`lxd`) fills these in;
//! everything above reads them without knowing there is a server.
//!
//! Incus, the Linux Containers fork of LXD, serves the same API. Its differences that reach this
//! charm: `environment.server` is `incus` ([`ServerKind`]), trust entries carry a `description`
//! (ignored), names are not validated (an operator's `a/b` is left alone like any entry not
//! ours), member statuses `Evacuating` and `Restoring` exist from 6.0.6 (not `Online`, so not
//! published), `metrics` entries exist as in LXD (only `client` entries are ever touched), and
//! there is no `access_management` (so no [`Identity`]): whether a credential may manage trust is
//! read from its own trust entry.

/// Which server answers: `environment.server` of `GET /1.0` (`lxd/api_1.0.go` in canonical/lxd,
/// `cmd/incusd/api_1.0.go` in lxc/incus).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ServerKind {
    /// Not said: an untrusted caller gets no `environment`, and LXD 3.0 may omit it.
    #[default]
    Unknown,
    Lxd,
    Incus,
    /// Another server speaking this API (a future fork), as it names itself.
    Other(String),
}

impl ServerKind {
    pub(crate) fn from_environment(server: &str) -> ServerKind {
        match server {
            "" => ServerKind::Unknown,
            "lxd" => ServerKind::Lxd,
            "incus" => ServerKind::Incus,
            // Shown in `check-connection`, so as plain and short as a skipped member's name.
            other => ServerKind::Other(crate::limits::shown(other)),
        }
    }

    /// `lxd`, `incus`, `unknown`, or what another server calls itself.
    pub fn as_str(&self) -> &str {
        match self {
            ServerKind::Unknown => "unknown",
            ServerKind::Lxd => "lxd",
            ServerKind::Incus => "incus",
            ServerKind::Other(name) => name,
        }
    }
}

/// What `GET /1.0` tells a caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerInfo {
    /// `auth == "trusted"`. On LXD 5.21+ with fine-grained authorization any authenticated
    /// identity is `trusted`; it says nothing about what the caller may do.
    pub trusted: bool,
    pub api_extensions: Vec<String>,
    /// The following come from `environment`, which LXD only sends to trusted callers.
    pub kind: ServerKind,
    pub server_name: String,
    pub server_version: String,
    pub clustered: bool,
    /// `environment.certificate` as DER: what the server presents to clients (in LXD's PKI mode
    /// a certificate the pinned CA issued), for requirers that pin what they are shown.
    pub certificate: Option<Vec<u8>>,
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

impl std::fmt::Display for TrustKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrustKind::Client => "client",
            TrustKind::Server => "server",
            TrustKind::Metrics => "metrics",
            TrustKind::Other(s) => s,
        })
    }
}

impl ServerInfo {
    pub(crate) fn has_extension(&self, name: &str) -> bool {
        self.api_extensions.iter().any(|e| e == name)
    }
}

/// One entry of `GET /1.0/cluster/members?recursion=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// `https://addr:port`, as LXD publishes it.
    pub url: String,
    /// `Online`, `Offline`, `Evacuated`, `Blocked`; `Broken` (3.x/4.x); `Evacuating` and
    /// `Restoring` (Incus 6.0.6+); whatever a later version adds. Only `Online` is serving.
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

/// What `GET /1.0/auth/identities/current` says about the caller (LXD 5.21.0+, with the
/// `access_management` extension; `shared/api/auth.go` `IdentityInfo` in canonical/lxd).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `type`: `Client certificate (unrestricted)`, `Client certificate (restricted)`,
    /// `Client certificate` (fine-grained, 5.21.3+/6.2+), `OIDC client`, ...
    pub(crate) kind: String,
    pub(crate) name: String,
    /// `fine_grained` (6.x; absent on 5.21): whether `permissions` decide what it may do.
    pub(crate) fine_grained: Option<bool>,
    /// `effective_permissions`.
    pub(crate) permissions: Vec<Permission>,
}

/// One of an identity's effective permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Permission {
    /// `server`, `project`, `certificate`, `identity`, ...
    pub(crate) entity_type: String,
    /// The entity's URL, `/1.0` for the server.
    pub(crate) url: String,
    /// `admin`, `can_create_identities`, ...
    pub(crate) entitlement: String,
}

/// A certificate to add to the trust store as a `client` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTrustEntry {
    pub(crate) name: String,
    /// DER bytes of the certificate; the client sends them base64-encoded, as LXD requires.
    pub(crate) der: Vec<u8>,
    /// `None`: send no `restricted`/`projects` fields at all (unrestricted).
    pub(crate) projects: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// LXD already held the certificate (its duplicate answer varies by version: 400/409/500,
    /// and on 5.21+ 409 for a fingerprint a fine-grained identity holds; see `client.rs`).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_entry_types_are_spelled_back_as_the_server_spelled_them() {
        for s in ["Online", "Offline", "Evacuated", "Evacuating"] {
            assert_eq!(MemberStatus::from(s).to_string(), s);
        }
        for s in ["client", "server", "metrics", "oidc"] {
            assert_eq!(TrustKind::from(s).to_string(), s);
        }
    }
}
