//! The `lxd` interface: what requirers send (`client_certificates`) and what we publish
//! (`version`, `nodes`, `registered_certificates`, `server_certificate`,
//! `server_certificate_fingerprint`). Pure functions over databag maps.

use crate::certs;
use crate::limits::PUBLISHED_BYTES;
use crate::refusal::KEY_REFUSED;
use crate::requests::Request;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const INTERFACE_VERSION: &str = "1.0";
pub use crate::requests::KEY_CLIENT_CERTS;
pub(crate) const KEY_VERSION: &str = "version";
pub const KEY_NODES: &str = "nodes";
pub const KEY_REGISTERED: &str = "registered_certificates";
/// Named `server_*` so they cannot be mistaken for the requirer's `client_certificates`, nor for
/// charm-lxd's `lxd-https` keys (`certificate`, `certificate_fingerprint`), which a requirer of
/// that interface may also read (docs/interface-lxd.md).
pub(crate) const KEY_SERVER_CERT: &str = "server_certificate";
pub(crate) const KEY_SERVER_CERT_FP: &str = "server_certificate_fingerprint";
/// Every key the provider writes. A key of these that the provider no longer wants is deleted;
/// any other key in its own databag (Juju's `private-address`...) is left alone.
pub(crate) const PROVIDER_KEYS: [&str; 6] =
    [KEY_VERSION, KEY_NODES, KEY_REGISTERED, KEY_SERVER_CERT, KEY_SERVER_CERT_FP, KEY_REFUSED];

pub use crate::databag::{Databag, RelationView};

/// One entry of `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Node {
    pub(crate) endpoint: String,
    pub(crate) name: String,
    pub(crate) trusted_certs_fp: Vec<String>,
}

/// Online members as (name, endpoint URL).
pub type OnlineMembers = Vec<(String, String)>;

/// The certificate the charm pinned to reach LXD in this hook (LXD's cluster certificate, or
/// the CA in PKI mode), as requirers get it: they authenticate LXD with what we did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPin {
    /// Every certificate of the pin, in the order given, each in canonical PEM (the same
    /// armour as `registered_certificates`): usually one.
    pub pem: String,
    /// SHA-256 of the first certificate's DER, LXD's fingerprint format.
    pub fingerprint: String,
}

impl ServerPin {
    /// The pin exactly as the TLS layer used it: the blocks are found by the verifier's own
    /// PEM parser (`certs::pinned_ders`), not re-parsed another way, so requirers are told to
    /// accept the very certificates the charm accepted, no more, no fewer. `None` when the
    /// text holds no certificate (then the charm could not have connected with it either).
    /// One certificate as DER (what LXD says it presents).
    pub(crate) fn of_der(der: &[u8]) -> ServerPin {
        ServerPin { pem: certs::to_pem(der), fingerprint: certs::fingerprint(der) }
    }

    pub fn from_pinned(pem: &str) -> Option<ServerPin> {
        let ders = certs::pinned_ders(pem)?;
        let first = ders.first()?;
        Some(ServerPin {
            fingerprint: certs::fingerprint(first),
            pem: ders.iter().map(|der| certs::to_pem(der)).collect(),
        })
    }
}

/// What to publish on one relation, and how many items did not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub bag: Databag,
    /// Trusted certificates left out of `registered_certificates` and `trusted_certs_fp` (on
    /// `https`: member addresses left out of `addresses`) because the databag would have grown
    /// past `limits::PUBLISHED_BYTES`.
    pub(crate) withheld: usize,
}

/// The provider's databag for one relation. `in_store` holds fingerprints LXD really has.
/// Certificates are published once each, by fingerprint, in canonical PEM; if they do not all
/// fit in `PUBLISHED_BYTES`, the first ones by fingerprint are published and the rest counted.
/// `pin` is the server certificate the charm connected with in this hook; without one, the
/// `server_certificate*` keys are left out (and so deleted by `changed_keys`).
/// `refused`: the `refused` value for this relation (`refusal::published`), if any.
pub fn payload(
    relation_id: u32,
    members: &OnlineMembers,
    requests: &[Request],
    in_store: &BTreeSet<String>,
    pin: Option<&ServerPin>,
    refused: Option<&str>,
) -> Payload {
    let trusted: BTreeMap<&str, &str> = requests
        .iter()
        .filter(|r| r.owner.relation_id == relation_id && in_store.contains(&r.cert.fingerprint))
        .map(|r| (r.cert.fingerprint.as_str(), r.cert.pem.as_str()))
        .collect();
    let trusted: Vec<(&str, &str)> = trusted.into_iter().collect();
    let bag = |n: usize| {
        let mut bag = databag(members, &trusted[..n], pin);
        if let Some(refused) = refused {
            bag.insert(KEY_REFUSED.into(), refused.to_string());
        }
        bag
    };
    let all = bag(trusted.len());
    if bag_bytes(&all) <= PUBLISHED_BYTES {
        return Payload { bag: all, withheld: 0 };
    }
    // The size grows with n: find the largest n that fits.
    let (mut fits, mut too_many) = (0, trusted.len());
    while too_many - fits > 1 {
        let mid = fits + (too_many - fits) / 2;
        if bag_bytes(&bag(mid)) <= PUBLISHED_BYTES { fits = mid } else { too_many = mid }
    }
    Payload { bag: bag(fits), withheld: trusted.len() - fits }
}

fn databag(members: &OnlineMembers, trusted: &[(&str, &str)], pin: Option<&ServerPin>) -> Databag {
    let fps: Vec<String> = trusted.iter().map(|(fp, _)| fp.to_string()).collect();
    let registered: Vec<&str> = trusted.iter().map(|(_, pem)| *pem).collect();
    let nodes: Vec<Node> = members
        .iter()
        .map(|(name, endpoint)| Node { endpoint: endpoint.clone(), name: name.clone(), trusted_certs_fp: fps.clone() })
        .collect();
    let mut bag = Databag::new();
    bag.insert(KEY_VERSION.into(), INTERFACE_VERSION.into());
    bag.insert(KEY_NODES.into(), serde_json::to_string(&nodes).unwrap_or_else(|_| "[]".into()));
    bag.insert(KEY_REGISTERED.into(), serde_json::to_string(&registered).unwrap_or_else(|_| "[]".into()));
    if let Some(pin) = pin {
        bag.insert(KEY_SERVER_CERT.into(), pin.pem.clone());
        bag.insert(KEY_SERVER_CERT_FP.into(), pin.fingerprint.clone());
    }
    bag
}

/// What Juju counts against a databag: its keys and values.
pub fn bag_bytes(bag: &Databag) -> usize {
    bag.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// `changed_keys` for an interface whose provider writes `provider_keys` (`https::PROVIDER_KEYS`).
pub(crate) fn changed_keys_among(have: &Databag, want: &Databag, provider_keys: &[&str]) -> Databag {
    let changed = want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone()));
    let withdrawn = provider_keys
        .iter()
        .filter(|k| have.contains_key(**k) && !want.contains_key(**k))
        .map(|k| (k.to_string(), String::new()));
    changed.chain(withdrawn).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{self, test_certs};
    use crate::requests::fixtures::{bag, certs_json, view};
    use crate::requests::{Protected, collect};

    /// What one `relation-set` of the `lxd` payload must write.
    fn changed_keys(have: &Databag, want: &Databag) -> Databag {
        changed_keys_among(have, want, &PROVIDER_KEYS)
    }

    #[test]
    fn the_payload_claims_only_what_lxd_holds() {
        let held = test_certs::self_signed("held");
        let missing = test_certs::self_signed("missing");
        let elsewhere = test_certs::self_signed("elsewhere");
        let now = certs::now_unix();
        let mut requests = collect(
            &[view(
                5,
                vec![("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&held.cert_pem, &missing.cert_pem]))]))],
                Databag::new(),
            )],
            now,
            &Protected::default(),
        )
        .requests;
        requests.extend(
            collect(
                &[view(
                    6,
                    vec![("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&elsewhere.cert_pem]))]))],
                    Databag::new(),
                )],
                now,
                &Protected::default(),
            )
            .requests,
        );
        let in_store: BTreeSet<String> = [&held, &elsewhere].iter().map(|m| certs::fingerprint(&m.der)).collect();
        let members = vec![
            ("node1".to_string(), "https://127.0.0.1:8443".to_string()),
            ("node2".into(), "https://[::1]:8443".into()),
        ];
        let Payload { bag, withheld } = payload(5, &members, &requests, &in_store, None, None);
        assert_eq!(withheld, 0);
        assert_eq!(bag[KEY_VERSION], "1.0");
        let nodes: serde_json::Value = serde_json::from_str(&bag[KEY_NODES]).expect("json");
        let fp = certs::fingerprint(&held.der);
        assert_eq!(
            nodes,
            serde_json::json!([
                {"endpoint": "https://127.0.0.1:8443", "name": "node1", "trusted_certs_fp": [fp]},
                {"endpoint": "https://[::1]:8443", "name": "node2", "trusted_certs_fp": [fp]},
            ])
        );
        let registered: Vec<String> = serde_json::from_str(&bag[KEY_REGISTERED]).expect("json");
        assert_eq!(registered, [certs::to_pem(&held.der)]);
        assert!(!bag.contains_key(KEY_SERVER_CERT) && !bag.contains_key(KEY_SERVER_CERT_FP), "no pin, no server keys");
    }

    fn members() -> OnlineMembers {
        vec![("node1".to_string(), "https://10.0.0.1:8443".to_string())]
    }

    #[test]
    fn the_pinned_certificate_is_published_in_canonical_pem_with_its_fingerprint() {
        let server = test_certs::self_signed("root@lxd");
        // As an operator may paste it: CRLF line ends, blank lines around.
        let pasted = format!("\r\n{}\r\n\r\n", server.cert_pem.replace('\n', "\r\n"));
        let pin = ServerPin::from_pinned(&pasted).expect("a pin");
        assert_eq!(pin.pem, certs::to_pem(&server.der));
        assert_eq!(pin.fingerprint, certs::fingerprint(&server.der));
        let bag = payload(1, &members(), &[], &BTreeSet::new(), Some(&pin), None).bag;
        assert_eq!(bag[KEY_SERVER_CERT], certs::to_pem(&server.der));
        assert_eq!(bag[KEY_SERVER_CERT_FP], certs::fingerprint(&server.der));
        assert_eq!(bag[KEY_VERSION], "1.0", "additive: still 1.0");
        assert_eq!(ServerPin::from_pinned(&pin.pem), Some(pin), "canonical PEM reads back the same");
    }

    #[test]
    fn a_pinned_bundle_is_published_whole_and_its_first_certificate_names_it() {
        let ca = test_certs::ca("pki-root");
        let other = test_certs::self_signed("rotated");
        // `openssl pkcs12 -nokeys` style attributes and a key pasted along: the verifier skips
        // them, and so does what is published.
        let text = format!("Bag Attributes\n    localKeyID: 01\n{}{}{}", ca.cert_pem, ca.key_pem, other.cert_pem);
        let pin = ServerPin::from_pinned(&text).expect("a pin");
        assert_eq!(pin.pem, format!("{}{}", certs::to_pem(&ca.der), certs::to_pem(&other.der)));
        assert_eq!(pin.fingerprint, certs::fingerprint(&ca.der));
        assert!(!pin.pem.contains("PRIVATE KEY"));
    }

    #[test]
    fn only_what_the_verifier_pins_is_published() {
        let server = test_certs::self_signed("root@lxd");
        let skipped = test_certs::self_signed("indented");
        // The verifier only reads BEGIN lines that start the line: an indented block is not
        // pinned, so it must not be published either.
        let indented: String = skipped.cert_pem.lines().map(|l| format!("  {l}\n")).collect();
        let text = format!("{indented}{}", server.cert_pem);
        let pin = ServerPin::from_pinned(&text).expect("a pin");
        assert_eq!(pin.pem, certs::to_pem(&server.der));
        for text in
            ["", "garbage", server.key_pem.as_str(), "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"]
        {
            assert_eq!(ServerPin::from_pinned(text), None, "{text:.30}");
        }
    }

    #[test]
    fn a_withdrawn_or_rotated_pin_is_rewritten_and_foreign_keys_are_left_alone() {
        let old = ServerPin::from_pinned(&test_certs::self_signed("old").cert_pem).expect("pin");
        let new = ServerPin::from_pinned(&test_certs::self_signed("new").cert_pem).expect("pin");
        let mut have = payload(1, &members(), &[], &BTreeSet::new(), Some(&old), None).bag;
        have.insert("private-address".into(), "10.1.2.3".into());
        // Rotation: both keys change together, nothing else is written.
        let rotated = payload(1, &members(), &[], &BTreeSet::new(), Some(&new), None).bag;
        let diff = changed_keys(&have, &rotated);
        assert_eq!(diff.keys().collect::<Vec<_>>(), [KEY_SERVER_CERT, KEY_SERVER_CERT_FP]);
        assert_eq!(diff[KEY_SERVER_CERT_FP], new.fingerprint);
        // No pin known: both keys are deleted (an empty value), Juju's own key stays.
        let unpinned = payload(1, &members(), &[], &BTreeSet::new(), None, None).bag;
        let diff = changed_keys(&have, &unpinned);
        assert_eq!(diff, bag(&[(KEY_SERVER_CERT, String::new()), (KEY_SERVER_CERT_FP, String::new())]));
        assert!(changed_keys(&unpinned, &unpinned).is_empty(), "a deletion is written once");
    }

    #[test]
    fn the_pin_counts_against_the_byte_budget() {
        let pin = ServerPin::from_pinned(&test_certs::self_signed("root@lxd").cert_pem).expect("pin");
        let bare = payload(1, &members(), &[], &BTreeSet::new(), None, None).bag;
        let pinned = payload(1, &members(), &[], &BTreeSet::new(), Some(&pin), None).bag;
        let extra = KEY_SERVER_CERT.len() + pin.pem.len() + KEY_SERVER_CERT_FP.len() + 64;
        assert_eq!(bag_bytes(&pinned), bag_bytes(&bare) + extra);
    }

    #[test]
    fn only_changed_keys_are_written() {
        let have = bag(&[("version", "1.0".into()), ("nodes", "[]".into())]);
        let want = bag(&[("version", "1.0".into()), ("nodes", "[1]".into()), ("registered_certificates", "[]".into())]);
        let diff = changed_keys(&have, &want);
        assert_eq!(diff.keys().collect::<Vec<_>>(), ["nodes", "registered_certificates"]);
        assert!(changed_keys(&want, &want).is_empty());
    }
}
