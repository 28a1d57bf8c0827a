//! The `lxd` interface: what requirers send (`client_certificates`) and what we publish
//! (`version`, `nodes`, `registered_certificates`). Pure functions over databag maps.

use crate::certs::{self, CertRejection, ClientCert};
use crate::ownership::Owner;
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

/// A certificate a requirer wants trusted, and who wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub owner: Owner,
    pub cert: ClientCert,
}

/// Something wrong with what a requirer sent. Safe to log: never quotes the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub owner: Owner,
    /// Index in the list, when the problem is with one entry.
    pub index: Option<usize>,
    pub what: String,
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}: {KEY_CLIENT_CERTS}[{i}]: {}", self.owner, self.what),
            None => write!(f, "{}: {KEY_CLIENT_CERTS}: {}", self.owner, self.what),
        }
    }
}

/// Everything requested on all relations, plus what was wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub requests: Vec<Request>,
    pub problems: Vec<InputProblem>,
}

/// Reads `client_certificates` from every databag of every relation. Invalid entries are
/// reported and skipped; valid entries beside them are kept.
pub fn collect_requests(relations: &[RelationView], now: i64) -> Requests {
    let mut out = Requests::default();
    for rel in relations {
        let members = rel
            .units
            .iter()
            .map(|(unit, bag)| (unit.as_str(), bag))
            .chain(std::iter::once((rel.remote_app.as_str(), &rel.app_data)));
        for (member, bag) in members {
            let Some(raw) = bag.get(KEY_CLIENT_CERTS) else { continue };
            let Some(owner) = Owner::from_member(rel.id, member) else { continue };
            parse_member(owner, raw, now, &mut out);
        }
    }
    out
}

fn parse_member(owner: Owner, raw: &str, now: i64, out: &mut Requests) {
    let problem = |index, what: String| InputProblem { owner: owner.clone(), index, what };
    let values: Vec<serde_json::Value> = match serde_json::from_str(raw) {
        Ok(serde_json::Value::Array(values)) => values,
        Ok(serde_json::Value::Null) => return,
        Ok(other) => {
            out.problems.push(problem(None, format!("expected a JSON list of PEM strings, got {}", json_kind(&other))));
            return;
        }
        Err(e) => {
            out.problems.push(problem(None, format!("not JSON ({} bytes; {})", raw.len(), e.classify_name())));
            return;
        }
    };
    let mut seen = BTreeSet::new();
    for (i, value) in values.iter().enumerate() {
        let serde_json::Value::String(text) = value else {
            out.problems.push(problem(Some(i), format!("expected a PEM string, got {}", json_kind(value))));
            continue;
        };
        match certs::parse_client_cert(text, now) {
            // The same certificate twice in one list is harmless; keep the first.
            Ok(cert) if !seen.insert(cert.fingerprint.clone()) => {}
            Ok(cert) => out.requests.push(Request { owner: owner.clone(), cert }),
            Err(why) => out.problems.push(problem(Some(i), rejection_text(&why))),
        }
    }
}

fn rejection_text(why: &CertRejection) -> String {
    why.to_string()
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "data error",
            serde_json::error::Category::Eof => "unexpected end",
        }
    }
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

/// The provider's databag for one relation. `in_store` holds fingerprints LXD really has.
pub fn payload(relation_id: u32, members: &OnlineMembers, requests: &[Request], in_store: &BTreeSet<String>) -> Databag {
    let mut fps = BTreeSet::new();
    let mut registered = Vec::new();
    let mut seen_pem = BTreeSet::new();
    for req in requests.iter().filter(|r| r.owner.relation_id == relation_id) {
        if in_store.contains(&req.cert.fingerprint) {
            fps.insert(req.cert.fingerprint.clone());
            if seen_pem.insert(req.cert.pem.as_str()) {
                registered.push(req.cert.pem.clone());
            }
        }
    }
    let fps: Vec<String> = fps.into_iter().collect();
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

/// The keys of `want` whose values differ from `have`: what one `relation-set` must write.
pub fn changed_keys(have: &Databag, want: &Databag) -> Databag {
    want.iter().filter(|(k, v)| have.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::test_certs;

    fn bag(pairs: &[(&str, String)]) -> Databag {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn certs_json(pems: &[&str]) -> String {
        serde_json::to_string(pems).expect("json")
    }

    fn view(id: u32, units: Vec<(&str, Databag)>, app_data: Databag) -> RelationView {
        RelationView {
            id,
            remote_app: "req".into(),
            units: units.into_iter().map(|(u, b)| (u.to_string(), b)).collect(),
            app_data,
        }
    }

    #[test]
    fn certificates_from_units_and_the_app_databag_are_requested() {
        let a = test_certs::client("a");
        let b = test_certs::client("b");
        let c = test_certs::client("c");
        let rel = view(
            3,
            vec![
                ("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&a.cert_pem]))])),
                ("req/1", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&b.cert_pem]))])),
                ("req/2", bag(&[("private-address", "10.0.0.1".into())])),
            ],
            bag(&[(KEY_CLIENT_CERTS, certs_json(&[&c.cert_pem]))]),
        );
        let got = collect_requests(&[rel], certs::now_unix());
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        let members: Vec<String> = got.requests.iter().map(|r| r.owner.member()).collect();
        assert_eq!(members, ["req/0", "req/1", "req"]);
    }

    #[test]
    fn garbage_is_named_per_unit_and_entry_while_good_certificates_still_count() {
        let good = test_certs::client("good");
        let other = test_certs::client("other");
        let rel = view(
            1,
            vec![
                ("req/0", bag(&[(KEY_CLIENT_CERTS, "this is not json".into())])),
                ("req/1", bag(&[(KEY_CLIENT_CERTS, serde_json::json!(["nope", 42, good.cert_pem, other.key_pem]).to_string())])),
                ("req/2", bag(&[(KEY_CLIENT_CERTS, "{\"a\": 1}".into())])),
                ("req/3", bag(&[(KEY_CLIENT_CERTS, "[]".into())])),
                ("req/4", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&other.cert_pem, &other.cert_pem]))])),
            ],
            Databag::new(),
        );
        let got = collect_requests(&[rel], certs::now_unix());
        let said: Vec<String> = got.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            said,
            [
                "req/0 (relation 1): client_certificates: not JSON (16 bytes; syntax error)",
                "req/1 (relation 1): client_certificates[0]: not a PEM certificate",
                "req/1 (relation 1): client_certificates[1]: expected a PEM string, got a number",
                "req/1 (relation 1): client_certificates[3]: a private key, not a certificate (the key was discarded, not logged)",
                "req/2 (relation 1): client_certificates: expected a JSON list of PEM strings, got an object",
            ]
        );
        let fps: Vec<(String, String)> = got.requests.iter().map(|r| (r.owner.member(), r.cert.fingerprint.clone())).collect();
        assert_eq!(
            fps,
            [
                ("req/1".to_string(), certs::fingerprint(&good.der)),
                ("req/4".to_string(), certs::fingerprint(&other.der)),
            ]
        );
    }

    #[test]
    fn the_payload_claims_only_what_lxd_holds() {
        let held = test_certs::client("held");
        let missing = test_certs::client("missing");
        let elsewhere = test_certs::client("elsewhere");
        let now = certs::now_unix();
        let mut requests = collect_requests(
            &[view(5, vec![("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&held.cert_pem, &missing.cert_pem]))]))], Databag::new())],
            now,
        )
        .requests;
        requests.extend(
            collect_requests(&[view(6, vec![("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&elsewhere.cert_pem]))]))], Databag::new())], now)
                .requests,
        );
        let in_store: BTreeSet<String> = [&held, &elsewhere].iter().map(|m| certs::fingerprint(&m.der)).collect();
        let members = vec![("node1".to_string(), "https://127.0.0.1:8443".to_string()), ("node2".into(), "https://[::1]:8443".into())];
        let bag = payload(5, &members, &requests, &in_store);
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
        assert_eq!(registered, [held.cert_pem.clone()]);
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
