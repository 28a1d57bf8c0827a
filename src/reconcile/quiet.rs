//! A quiet `update-status`: when nothing it could learn has changed since the last steady full
//! pass, it reads no databag and writes nothing. A quiet `-relation-changed` for one remote unit:
//! the same, plus that unit's databag, whose request is the one the steady pass saw.
//!
//! Relation data cannot change without Juju running a relation hook on this unit, and every
//! relation hook runs the full pass. What an `update-status` can learn comes from elsewhere:
//! LXD (server, members, trust store), the credentials, the config, leadership, the set of
//! relations, the clock (a requested certificate expiring). Those are digested; the unit
//! remembers the digest of its last full pass that found nothing to change, and a later
//! `update-status` that computes the same digest has nothing to do. Anything else — a
//! hand-deleted entry, a member down, a rotated credential, a new leader — changes the digest
//! and runs the full pass. A full pass every `limits::FULL_PASS_EVERY` bounds how stale
//! anything can get, whatever the digest misses.

use crate::bag_stream::{Sink, Value};
use crate::certs;
use crate::config::Config;
use crate::credentials::Credentials;
use crate::limits;
use crate::lxd::{Identity, LxdError, Member, ServerInfo, TrustEntry};
use crate::ownership::Interface;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Everything an `update-status` can learn without reading relation data.
pub(crate) struct World<'a> {
    pub(crate) creds: &'a Credentials,
    pub(crate) config: &'a Config,
    pub(crate) leader: bool,
    pub(crate) leaving: bool,
    /// Every live relation of every endpoint.
    pub(crate) relation_ids: &'a [(Interface, u32)],
    pub(crate) server: &'a ServerInfo,
    pub(crate) members: &'a [Member],
    pub(crate) store: &'a [TrustEntry],
    /// The caller's identity (LXD 5.21+): a permission granted or taken runs the full pass.
    pub(crate) identity: Option<&'a Result<Identity, LxdError>>,
}

/// SHA-256 over a canonical rendering of `world`, hashed as it is rendered (the trust store's
/// rendering grows with its entries). Only the digest is kept: the key inside the credentials
/// never reaches the state store.
pub(crate) fn digest(world: &World) -> String {
    let mut hash = Sha256::new();
    let mut text = Hashing(&mut hash);
    let tls = &world.creds.tls;
    for part in [&world.creds.endpoint.url(), &tls.client_cert_pem, &tls.client_key_pem, &tls.server_cert_pem] {
        let _ = write!(text, "{}\n{part}\n", part.len());
    }
    let _ = write!(
        text,
        "{:?}\n{}\n{}\n{:?}\n",
        world.config.trust_projects, world.leader, world.leaving, world.relation_ids
    );
    let _ = write!(text, "{:?}\n{:?}\n{:?}\n{:?}\n", world.server, world.members, world.store, world.identity);
    certs::hex(&hash.finalize())
}

/// Text written into a hash.
struct Hashing<'h>(&'h mut Sha256);

impl std::fmt::Write for Hashing<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

/// Keys Juju itself writes into every unit's databag: they ask nothing of the charm.
const JUJU_KEYS: [&str; 3] = ["private-address", "ingress-address", "egress-subnets"];

/// Hex digits kept of a request digest: 128 bits, so a requirer cannot make two of its own
/// requests look alike.
pub(crate) const REQUEST_DIGEST_CHARS: usize = 32;

/// What remote `unit` of relation `rel` asks, digested: every key of its databag but Juju's,
/// taken as the databag is read (`bag_stream`), so it is never held. Keys count in the order the
/// tool prints them, which is the map's order (Juju prints each key once, sorted); printed in
/// another order, the same databag only digests differently, which runs a full pass. A value
/// over the bound it was read with counts by its length, in a form no value takes.
pub(crate) struct RequestDigest(Sha256);

impl RequestDigest {
    pub(crate) fn new(rel: u32, unit: &str) -> RequestDigest {
        let mut digest = RequestDigest(Sha256::new());
        digest.part(rel.to_string().as_bytes());
        digest.part(unit.as_bytes());
        digest
    }

    /// Lengths are hashed too: moving bytes between a key and its value is another request.
    fn part(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    pub(crate) fn pair(&mut self, key: &str, value: Value<'_>) {
        if JUJU_KEYS.contains(&key) {
            return;
        }
        self.part(key.as_bytes());
        match value {
            Value::Text(text) => self.part(text.as_bytes()),
            Value::TooLarge(len) => {
                self.0.update(u64::MAX.to_be_bytes());
                self.0.update((len as u64).to_be_bytes());
            }
        }
    }

    pub(crate) fn finish(self) -> String {
        let mut hex = certs::hex(&self.0.finalize());
        hex.truncate(REQUEST_DIGEST_CHARS);
        hex
    }
}

impl Sink for RequestDigest {
    fn pair(&mut self, key: &str, value: Value<'_>) {
        RequestDigest::pair(self, key, value);
    }
}

/// What a steady full pass left for the next `update-status` to compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Steady {
    pub(crate) digest: String,
    /// When that full pass ran, Unix seconds.
    pub(crate) at: i64,
    /// The first time one of the requested certificates expires, Unix seconds.
    pub(crate) first_expiry: i64,
}

/// Whether an `update-status` that sees `digest` at `now` may skip the full pass.
pub(crate) fn may_skip(steady: Option<&Steady>, digest: &str, now: i64) -> bool {
    crate::timeline::mark("quiet: digest");
    steady.is_some_and(|s| {
        s.digest == digest
            && now < s.first_expiry
            && now - s.at < limits::FULL_PASS_EVERY.as_secs() as i64
            && now >= s.at
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relation::Databag;

    fn bag(pairs: &[(&str, &str)]) -> Databag {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The digest of a databag already whole.
    fn request_digest(rel: u32, unit: &str, bag: &Databag) -> String {
        let mut digest = RequestDigest::new(rel, unit);
        for (key, value) in bag {
            digest.pair(key, Value::Text(value));
        }
        digest.finish()
    }

    #[test]
    fn a_databag_digests_the_same_read_as_it_arrives_and_whole() {
        let asked = bag(&[("client_certificates", "[\"x\"]"), ("ingress-address", "10.0.0.9"), ("projects", "a,b")]);
        let json = serde_json::to_vec(&asked).expect("json");
        let mut streamed = RequestDigest::new(3, "req/0");
        crate::bag_stream::read(&mut json.as_slice(), limits::DATABAG_BYTES, &mut streamed).expect("reads");
        assert_eq!(streamed.finish(), request_digest(3, "req/0", &asked));
        // Too large to hold: told apart by length, and from any value it could be mistaken for.
        let mut big = RequestDigest::new(3, "req/0");
        big.pair("client_certificates", Value::TooLarge(20));
        let mut bigger = RequestDigest::new(3, "req/0");
        bigger.pair("client_certificates", Value::TooLarge(21));
        assert_ne!(big.finish(), bigger.finish());
    }

    #[test]
    fn juju_writing_its_address_keys_changes_no_request() {
        let asked = bag(&[("client_certificates", "[]")]);
        let joined = bag(&[("client_certificates", "[]"), ("ingress-address", "10.0.0.9"), ("egress-subnets", "x")]);
        assert_eq!(request_digest(3, "req/0", &asked), request_digest(3, "req/0", &joined));
    }

    #[test]
    fn any_other_key_unit_or_relation_is_another_request() {
        let asked = request_digest(3, "req/0", &bag(&[("client_certificates", "[]")]));
        assert_ne!(asked, request_digest(3, "req/0", &bag(&[("client_certificates", "[ ]")])));
        assert_ne!(asked, request_digest(3, "req/0", &bag(&[("client_certificates", "[]"), ("projects", "")])));
        assert_ne!(asked, request_digest(4, "req/0", &bag(&[("client_certificates", "[]")])));
        assert_ne!(asked, request_digest(3, "req/1", &bag(&[("client_certificates", "[]")])));
        // Lengths are hashed too: moving bytes between key and value is another request.
        assert_ne!(request_digest(3, "u", &bag(&[("ab", "c")])), request_digest(3, "u", &bag(&[("a", "bc")])));
        assert_eq!(asked.len(), REQUEST_DIGEST_CHARS);
    }

    fn steady(at: i64, first_expiry: i64) -> Steady {
        Steady { digest: "d".into(), at, first_expiry }
    }

    #[test]
    fn the_same_world_soon_after_a_steady_pass_is_quiet() {
        assert!(may_skip(Some(&steady(1000, 5000)), "d", 1300));
    }

    #[test]
    fn anything_else_runs_the_full_pass() {
        let every = limits::FULL_PASS_EVERY.as_secs() as i64;
        assert!(!may_skip(None, "d", 1300), "no steady pass remembered");
        assert!(!may_skip(Some(&steady(1000, 5000)), "other", 1300), "the world changed");
        assert!(!may_skip(Some(&steady(1000, 1200)), "d", 1300), "a certificate expired meanwhile");
        assert!(!may_skip(Some(&steady(1000, i64::MAX)), "d", 1000 + every), "the periodic full pass is due");
        assert!(!may_skip(Some(&steady(1000, i64::MAX)), "d", 900), "the clock went back");
    }
}
