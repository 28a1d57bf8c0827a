//! The `lxd` interface: what requirers send (`client_certificates`) and what we publish
//! (`version`, `nodes`, `registered_certificates`). Pure functions over databag maps.

use crate::limits::PUBLISHED_BYTES;
use crate::requests::Request;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub const ENDPOINT: &str = "api";
pub const INTERFACE_VERSION: &str = "1.0";
pub const KEY_CLIENT_CERTS: &str = "client_certificates";
pub const KEY_VERSION: &str = "version";
pub const KEY_NODES: &str = "nodes";
pub const KEY_REGISTERED: &str = "registered_certificates";

pub type Databag = BTreeMap<String, String>;

/// One `api` relation as this unit sees it during the current hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationView {
    pub id: u32,
    pub remote_app: String,
    /// Remote unit name → its databag. Departing units are already left out.
    pub units: BTreeMap<String, Databag>,
    pub app_data: Databag,
}

/// One entry of `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub endpoint: String,
    pub name: String,
    pub trusted_certs_fp: Vec<String>,
}

/// Online members as (name, endpoint URL).
pub type OnlineMembers = Vec<(String, String)>;

/// What to publish on one relation, and how many trusted certificates did not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub bag: Databag,
    /// Trusted certificates left out of `registered_certificates` and `trusted_certs_fp`
    /// because the databag would have grown past `limits::PUBLISHED_BYTES`.
    pub withheld: usize,
}

/// The provider's databag for one relation. `in_store` holds fingerprints LXD really has.
/// Certificates are published once each, by fingerprint, in canonical PEM; if they do not all
/// fit in `PUBLISHED_BYTES`, the first ones by fingerprint are published and the rest counted.
pub fn payload(relation_id: u32, members: &OnlineMembers, requests: &[Request], in_store: &BTreeSet<String>) -> Payload {
    let trusted: BTreeMap<&str, &str> = requests
        .iter()
        .filter(|r| r.owner.relation_id == relation_id && in_store.contains(&r.cert.fingerprint))
        .map(|r| (r.cert.fingerprint.as_str(), r.cert.pem.as_str()))
        .collect();
    let trusted: Vec<(&str, &str)> = trusted.into_iter().collect();
    let bag = |n: usize| databag(members, &trusted[..n]);
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

fn databag(members: &OnlineMembers, trusted: &[(&str, &str)]) -> Databag {
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
    bag
}

/// What Juju counts against a databag: its keys and values.
pub fn bag_bytes(bag: &Databag) -> usize {
    bag.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// The keys of `want` whose values differ from `have`: what one `relation-set` must write.
pub fn changed_keys(have: &Databag, want: &Databag) -> Databag {
    want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{self, test_certs};
    use crate::requests::fixtures::{bag, certs_json, view};
    use crate::requests::{Protected, collect};

    #[test]
    fn the_payload_claims_only_what_lxd_holds() {
        let held = test_certs::client("held");
        let missing = test_certs::client("missing");
        let elsewhere = test_certs::client("elsewhere");
        let now = certs::now_unix();
        let mut requests = collect(
            &[view(5, vec![("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&held.cert_pem, &missing.cert_pem]))]))], Databag::new())],
            now,
            &Protected::default(),
        )
        .requests;
        requests.extend(
            collect(&[view(6, vec![("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&elsewhere.cert_pem]))]))], Databag::new())], now, &Protected::default())
                .requests,
        );
        let in_store: BTreeSet<String> = [&held, &elsewhere].iter().map(|m| certs::fingerprint(&m.der)).collect();
        let members = vec![("node1".to_string(), "https://127.0.0.1:8443".to_string()), ("node2".into(), "https://[::1]:8443".into())];
        let Payload { bag, withheld } = payload(5, &members, &requests, &in_store);
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
