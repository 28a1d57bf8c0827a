//! What LXD says: the server, its members, its trust store, from the first member that
//! answers all of it. The server's facts and the members are checked here (`lxd::checked`),
//! so nothing later publishes, remembers or passes on an unchecked value of LXD's.

use crate::access::EXT_ACCESS_MANAGEMENT;
use crate::credentials::Credentials;
use crate::endpoint::Endpoint;
use crate::limits;
use crate::lxd::{Connection, Connector, Identity, Lxd, LxdError, Member, ServerInfo, TrustEntry, checked};
use crate::timeline;

/// What one member told us: plain data, for `decide`. The connection it told us on is handed
/// on beside it, to `apply`.
#[derive(Debug)]
pub(crate) struct Observed {
    /// The member that answered every read.
    pub(crate) endpoint: Endpoint,
    pub(crate) server: ServerInfo,
    pub(crate) members: Vec<Member>,
    pub(crate) store: Vec<TrustEntry>,
    /// `GET /1.0/auth/identities/current`, read only where the server has `access_management`
    /// (LXD 5.21+): there `auth: trusted` no longer means the caller may change trust.
    pub(crate) identity: Option<Result<Identity, LxdError>>,
    /// What LXD said that was not taken (a member skipped, the server's name), one log line
    /// each, values shown cut and escaped.
    pub(crate) problems: Vec<String>,
}

/// LXD could not be used this pass: the error that says why, and how many endpoints were tried.
#[derive(Debug)]
pub(crate) struct NotObserved {
    pub(crate) error: LxdError,
    pub(crate) tried: usize,
}

/// Tries the configured endpoint, then every member seen before: all present the same cluster
/// certificate, so the pin holds for each. Only "unreachable" moves on to the next one; any
/// other answer is the truth about these credentials. A member counts as reachable only once
/// it has answered every read of the pass: one that answers `GET /1.0` and then drops (dies
/// mid-hook, a proxy cuts the connection) is skipped like one that never answered.
pub(crate) fn observe(
    creds: &Credentials,
    known: &[String],
    connector: &dyn Connector,
) -> Result<(Observed, Connection), NotObserved> {
    let mut candidates = vec![creds.endpoint.clone()];
    // A cache written by an older version may list more: each one down costs a connect timeout.
    for ep in known.iter().take(limits::FAILOVER_ENDPOINTS).filter_map(|url| Endpoint::parse(url).ok()) {
        if !candidates.contains(&ep) {
            candidates.push(ep);
        }
    }
    let mut first_error = None;
    for (tried, ep) in candidates.iter().enumerate() {
        match read_all(connector, ep, creds) {
            Ok(observed) => return Ok(observed),
            Err(e @ LxdError::Unreachable { .. }) => {
                first_error.get_or_insert(e);
            }
            Err(error) => return Err(NotObserved { error, tried: tried + 1 }),
        }
    }
    let fallback = LxdError::Unreachable { endpoint: creds.endpoint.url(), detail: "no endpoint".into() };
    Err(NotObserved { error: first_error.unwrap_or(fallback), tried: candidates.len() })
}

fn read_all(connector: &dyn Connector, ep: &Endpoint, creds: &Credentials) -> Result<(Observed, Connection), LxdError> {
    timeline::mark("observe");
    let mut lxd = connector.connect(ep, &creds.tls)?;
    timeline::mark("observe: client ready");
    let server = lxd.server()?;
    timeline::mark("observe: server");
    if !server.trusted {
        return Err(LxdError::Untrusted { endpoint: ep.url() });
    }
    let (server, mut problems) = checked::server(server);
    let members = checked::members(members(lxd.as_mut(), &server)?);
    problems.extend(members.problems);
    let members = members.kept;
    timeline::mark("observe: members");
    let store = lxd.trust_store()?;
    timeline::mark("observe: trust store");
    let identity = if server.has_extension(EXT_ACCESS_MANAGEMENT) {
        match lxd.current_identity() {
            // Failing over or giving up is the connection's business, as for the reads above.
            Err(
                e @ (LxdError::Unreachable { .. } | LxdError::Untrusted { .. } | LxdError::ServerCertMismatch { .. }),
            ) => return Err(e),
            // Any other answer leaves the rights unknown; LXD's answers to changes still tell.
            other => Some(other),
        }
    } else {
        None
    };
    let endpoint = lxd.endpoint().clone();
    Ok((Observed { endpoint, server, members, store, identity, problems }, lxd))
}

fn members(lxd: &mut dyn Lxd, server: &ServerInfo) -> Result<Vec<Member>, LxdError> {
    if server.clustered {
        return lxd.members();
    }
    // A standalone server has no member list (LXD answers 500); it is its own only member,
    // named after the host it was reached at when its own name is missing or was refused.
    let name = match server.server_name.as_str() {
        "" => lxd.endpoint().host.clone(),
        name => name.to_string(),
    };
    Ok(vec![Member { name, url: lxd.endpoint().url(), status: "Online".into(), message: String::new() }])
}
