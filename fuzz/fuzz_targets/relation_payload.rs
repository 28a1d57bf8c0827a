//! `client_certificates` as requirers send it, through `requests::collect`, `payload` and `plan`.
//!
//! Input: one flag byte, then up to four NUL-separated values (lossy UTF-8) placed as
//! `req/0`, `req/1`, the `req` application databag and `other/0` on a second relation.
//! Flag bit 0 also gives `other/7` a copy of value 0 (one certificate sent by two applications);
//! bit 1 copies value 0 to `req/2` (the same value from two units of one application).
#![no_main]

#[path = "common.rs"]
mod common;

use common::*;
use libfuzzer_sys::fuzz_target;
use lxd_integrator::certs;
use lxd_integrator::ownership::{Interface, Owner};
use lxd_integrator::plan::plan;
use lxd_integrator::relation::{KEY_CLIENT_CERTS, KEY_NODES, KEY_REGISTERED, RelationView, payload};
use lxd_integrator::requests::{Protected, collect};
use std::collections::{BTreeMap, BTreeSet};

fn bag(value: &str) -> BTreeMap<String, String> {
    [(KEY_CLIENT_CERTS.to_string(), value.to_string()), ("private-address".into(), "10.1.2.3".into())].into()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let values = split_lossy(rest, 4);
    let get = |i: usize| values.get(i).map(String::as_str);

    let mut req = RelationView { id: 1, remote_app: "req".into(), ..Default::default() };
    let mut other = RelationView { id: 2, remote_app: "other".into(), ..Default::default() };
    if let Some(v) = get(0) {
        req.units.insert("req/0".into(), bag(v));
        if flags & 1 != 0 {
            other.units.insert("other/7".into(), bag(v));
        }
        if flags & 2 != 0 {
            req.units.insert("req/2".into(), bag(v));
        }
    }
    if let Some(v) = get(1) {
        req.units.insert("req/1".into(), bag(v));
    }
    if let Some(v) = get(2) {
        req.app_data = bag(v);
    }
    if let Some(v) = get(3) {
        other.units.insert("other/0".into(), bag(v));
    }
    let relations = [req, other];
    let members: BTreeSet<Owner> = relations
        .iter()
        .flat_map(|r| {
            r.units
                .keys()
                .map(String::as_str)
                .chain(std::iter::once(r.remote_app.as_str()))
                .map(|m| Owner::from_member(r.id, m).expect("test member names are valid"))
        })
        .collect();
    let raw_of = |owner: &Owner| -> Option<&str> {
        let rel = relations.iter().find(|r| r.id == owner.relation_id)?;
        let bag = match owner.unit {
            Some(_) => rel.units.get(&owner.member())?,
            None => &rel.app_data,
        };
        bag.get(KEY_CLIENT_CERTS).map(String::as_str)
    };

    let got = collect(&relations, NOW, &Protected::default());

    for problem in &got.problems {
        assert!(members.contains(&problem.owner), "problem for a member that sent nothing: {problem:?}");
        let text = problem.to_string();
        // A summary names at most 6 reasons of fixed words, 3 indices each, and counts the rest.
        assert!(text.len() <= 2 * MAX_REASON, "summary grows with the input ({} bytes)", text.len());
    }

    let mut per_owner: BTreeMap<&Owner, BTreeSet<&str>> = BTreeMap::new();
    for request in &got.requests {
        let cert = &request.cert;
        assert!(members.contains(&request.owner));
        assert_eq!(cert.fingerprint, certs::fingerprint(&cert.der));
        assert!(per_owner.entry(&request.owner).or_default().insert(&cert.fingerprint), "duplicate within one member");
        // The accepted text validates again to the very same certificate.
        assert_eq!(certs::parse_client_cert(&cert.pem, NOW).as_ref(), Ok(cert));
        assert!(!cert.pem.contains("PRIVATE KEY-----"));
    }

    // Every entry of a list is either requested, a duplicate, or reported with its index.
    for owner in &members {
        let Some(raw) = raw_of(owner) else { continue };
        let mine: Vec<_> = got.problems.iter().filter(|p| &p.owner == owner).collect();
        assert!(mine.len() <= 1, "one summary per member");
        let indexed: usize = mine.iter().flat_map(|p| &p.entries).map(|r| r.count).sum();
        let whole = mine.iter().filter(|p| p.whole.is_some()).count();
        let accepted = per_owner.get(owner).map_or(0, BTreeSet::len);
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(serde_json::Value::Array(list)) => {
                assert_eq!(whole, 0);
                assert!(indexed + accepted <= list.len());
                for r in mine.iter().flat_map(|p| &p.entries) {
                    assert!(r.first.iter().all(|i| *i < list.len()));
                    assert!(!r.first.is_empty() && r.first.len() <= r.count);
                }
            }
            Ok(serde_json::Value::Null) => assert_eq!((whole, indexed, accepted), (0, 0, 0)),
            _ => assert_eq!((whole, indexed, accepted), (1, 0, 0)),
        }
    }

    // What we publish is valid JSON and carries each accepted certificate of that relation once.
    let in_store: BTreeSet<String> = got.requests.iter().map(|r| r.cert.fingerprint.clone()).collect();
    let online = vec![("node1".to_string(), "https://10.0.0.1:8443".to_string())];
    for rel in &relations {
        let bag = payload(rel.id, &online, &got.requests, &in_store, None, None).bag;
        let nodes: serde_json::Value = serde_json::from_str(&bag[KEY_NODES]).expect("nodes is JSON");
        assert!(nodes.is_array());
        let registered: Vec<String> = serde_json::from_str(&bag[KEY_REGISTERED]).expect("registered is JSON");
        let want: BTreeSet<&str> =
            got.requests.iter().filter(|r| r.owner.relation_id == rel.id).map(|r| r.cert.pem.as_str()).collect();
        assert_eq!(registered.len(), want.len(), "each accepted PEM once");
        assert_eq!(registered.iter().map(String::as_str).collect::<BTreeSet<_>>(), want);
    }

    // Against a store that already holds everything requested (named for the first requester)
    // plus one orphan: nothing to add, nothing wanted removed, the orphan removed.
    let scope = scope();
    let mut store = Vec::new();
    let mut named = BTreeSet::new();
    for r in &got.requests {
        if named.insert(r.cert.fingerprint.clone()) {
            store.push(client_entry(scope.entry_name(&r.owner), r.cert.fingerprint.clone()));
        }
    }
    let orphan = Owner { relation_id: 99, remote_app: "gone".into(), unit: Some(0), interface: Interface::Lxd };
    store.push(client_entry(scope.entry_name(&orphan), "00".repeat(32)));
    let p = plan(&scope, &got.requests, &store, None);
    assert!(p.add.is_empty() && p.restrict.is_empty(), "{p:?}");
    assert_eq!(p.remove.len(), 1);
    assert_eq!(p.remove[0].owner, orphan);
});
