//! The LXD REST API as this charm needs it: one trait (the boundary) and the HTTPS
//! implementation in `lxd::client`. What it answers is plain data (`cluster`), re-exported here.

pub mod checked;
pub mod client;

pub use crate::cluster::*;
use crate::credentials::TlsCredentials;
use crate::endpoint::Endpoint;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

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
    /// `GET /1.0/auth/identities/current`. Only meaningful with the `access_management`
    /// extension (LXD 5.21+); elsewhere the route does not exist (404).
    fn current_identity(&mut self) -> Result<Identity, LxdError>;
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

    /// Adds entries in order, starting none at or after `until` (the end of the leader's
    /// window, `reconcile::apply`): the answers are those of the first entries, as many as were
    /// started, in the same order. An implementation may have a few requests in flight at once
    /// (LXD serves concurrent adds faster than sequential ones), each started by that clock.
    fn add_trust_all(&mut self, entries: &[NewTrustEntry], until: Instant) -> Vec<Result<AddOutcome, LxdError>> {
        entries.iter().map_while(|e| (Instant::now() < until).then(|| self.add_trust(e))).collect()
    }

    /// Removes entries as `add_trust_all` adds them: none started at or after `until`, the
    /// answers those of the first ones, in order. May run requests at once.
    fn remove_trust_all(&mut self, fingerprints: &[String], until: Instant) -> Vec<Result<(), LxdError>> {
        fingerprints.iter().map_while(|fp| (Instant::now() < until).then(|| self.remove_trust(fp))).collect()
    }
}

/// Applies `op` to `items` with up to `at_once` calls running, starting none at or after
/// `until`; the answers are those of the items started, which are always the first ones, in
/// order. The parallel writers' half of "no write starts after the leader's window".
pub(crate) fn start_before<T: Sync, R: Send>(
    items: &[T],
    at_once: usize,
    until: Instant,
    op: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    // The clock is read and the next item taken under one lock: once a worker finds the window
    // closed no later item starts, so what started is a prefix and the caller knows the rest.
    let next = Mutex::new(Some(0usize));
    let take = || {
        let mut next = next.lock().unwrap_or_else(PoisonError::into_inner);
        let i = (*next)?;
        let open = Instant::now() < until;
        let item = items.get(i).filter(|_| open);
        *next = item.map(|_| i + 1);
        item.map(|item| (i, item))
    };
    let run = || std::iter::from_fn(take).map(|(i, item)| (i, op(item))).collect::<Vec<_>>();
    let workers = items.len().min(at_once);
    if workers <= 1 {
        return run().into_iter().map(|(_, r)| r).collect();
    }
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers).map(|_| s.spawn(run)).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// A connection the reconcile can hand to another thread: it talks to LXD while the hook
/// tools are read.
pub type Connection = Box<dyn Lxd + Send>;

/// Opens connections; a trait so the reconcile can fail over between members and be tested
/// without sockets.
pub trait Connector: Sync {
    fn connect(&self, endpoint: &Endpoint, tls: &TlsCredentials) -> Result<Connection, LxdError>;
}
