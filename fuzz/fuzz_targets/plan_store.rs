//! `plan::plan` against whatever LXD's trust store holds (names, kinds, restrictions are outside
//! input): it never touches entries it does not own, never removes what is wanted, and applying
//! the plan converges (planning again yields nothing).
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use common::*;
use libfuzzer_sys::fuzz_target;
use lxd_integrator::certs::ClientCert;
use lxd_integrator::lxd::{TrustEntry, TrustKind};
use lxd_integrator::ownership::{Interface, Owner, Scope};
use lxd_integrator::plan::{self, Plan};
use lxd_integrator::requests::Request;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Arbitrary)]
enum Name {
    /// Ours, for owner index.
    Owned(u8),
    /// Another integrator's, for owner index.
    Foreign(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
struct Entry {
    name: Name,
    fp: u8,
    kind: u8,
    restricted: bool,
    projects: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    store: Vec<Entry>,
    /// (owner index, fingerprint index)
    requests: Vec<(u8, u8)>,
    projects: Option<Vec<u8>>,
}

fn owner(i: u8) -> Owner {
    let https = i % 16 >= 8;
    let i = i % 8;
    Owner {
        relation_id: u32::from(i / 4),
        remote_app: ["req", "other"][usize::from(i % 2)].into(),
        unit: (i % 3 != 0).then_some(u32::from(i % 3)),
        interface: if https { Interface::LxdHttps } else { Interface::Lxd },
    }
}

fn fp(i: u8) -> String {
    format!("{:064x}", i % 16)
}

fn project(i: &u8) -> String {
    format!("p{}", i % 4)
}

/// What `reconcile::apply` does to LXD: adds carry the restriction (`NewTrustEntry::projects`).
fn apply(store: &mut Vec<TrustEntry>, p: &Plan, projects: Option<&[String]>) {
    store.retain(|e| !p.remove.iter().any(|r| r.fingerprint == e.fingerprint));
    for r in &p.restrict {
        let e = store.iter_mut().find(|e| e.fingerprint == r.fingerprint).expect("restricts an existing entry");
        e.restricted = r.projects.is_some();
        e.projects = r.projects.clone().unwrap_or_default();
    }
    for a in &p.add {
        store.push(TrustEntry {
            name: a.name.clone(),
            fingerprint: a.fingerprint.clone(),
            kind: "client".into(),
            restricted: projects.is_some(),
            projects: projects.map(<[String]>::to_vec).unwrap_or_default(),
        });
    }
}

fn check(scope: &Scope, requests: &[Request], store: &[TrustEntry], projects: Option<&[String]>) -> Plan {
    let p = plan::plan(scope, requests, store, projects);
    let wanted: BTreeSet<&str> = requests.iter().map(|r| r.cert.fingerprint.as_str()).collect();
    let present: BTreeSet<&str> = store.iter().map(|e| e.fingerprint.as_str()).collect();
    let mine = |e: &TrustEntry| e.kind == TrustKind::Client && scope.owner_of(&e.name).is_some();
    // One owner per certificate: an entry of ours is wanted while the relation that owns it asks.
    let owner_asks = |e: &TrustEntry| {
        scope.owner_of(&e.name).is_some_and(|o| {
            requests.iter().any(|r| r.cert.fingerprint == e.fingerprint && plan::same_relation(&r.owner, &o))
        })
    };

    let mut added = BTreeSet::new();
    for a in &p.add {
        assert!(wanted.contains(a.fingerprint.as_str()) && !present.contains(a.fingerprint.as_str()), "{a:?}");
        assert!(added.insert(a.fingerprint.as_str()), "added twice: {a:?}");
        let first = requests.iter().find(|r| r.cert.fingerprint == a.fingerprint).expect("requested");
        assert_eq!((&a.owner, &a.name), (&first.owner, &scope.entry_name(&first.owner)));
    }
    assert_eq!(added, wanted.difference(&present).copied().collect(), "every missing certificate is added");

    for r in &p.remove {
        let e = store.iter().find(|e| e.fingerprint == r.fingerprint && e.name == r.name).expect("in the store");
        assert!(!owner_asks(e), "removes a certificate its owner wants: {r:?}");
        assert!(mine(e), "removes an entry we do not own: {e:?}");
        assert_eq!(scope.owner_of(&e.name), Some(r.owner.clone()));
    }
    let removed: BTreeSet<&str> = p.remove.iter().map(|r| r.fingerprint.as_str()).collect();
    for e in store.iter().filter(|e| mine(e) && !owner_asks(e)) {
        assert!(removed.contains(e.fingerprint.as_str()), "orphan left behind: {e:?}");
    }

    for r in &p.restrict {
        let e = store.iter().find(|e| e.fingerprint == r.fingerprint).expect("in the store");
        assert!(mine(e) && owner_asks(e), "re-restricts {e:?}");
        assert_eq!(r.projects.as_deref(), projects);
    }
    p
}

fuzz_target!(|input: Input| {
    let scope = scope();
    let foreign = Scope { app: "lxd-integrator-b".into(), ..scope.clone() };
    // LXD keys its store by fingerprint: one entry per fingerprint.
    let mut by_fp = BTreeMap::new();
    for e in input.store.iter().take(32) {
        let name = match &e.name {
            Name::Owned(i) => scope.entry_name(&owner(*i)),
            Name::Foreign(i) => foreign.entry_name(&owner(*i)),
            Name::Raw(s) => s.clone(),
        };
        let kind: TrustKind = ["client", "server", "metrics", ""][usize::from(e.kind % 4)].into();
        let projects = e.projects.iter().take(4).map(project).collect();
        by_fp.entry(fp(e.fp)).or_insert(TrustEntry {
            name,
            fingerprint: fp(e.fp),
            kind,
            restricted: e.restricted,
            projects,
        });
    }
    let mut store: Vec<TrustEntry> = by_fp.into_values().collect();
    let requests: Vec<Request> = input
        .requests
        .iter()
        .take(32)
        .map(|(o, f)| Request {
            owner: owner(*o),
            cert: ClientCert { pem: String::new(), der: vec![*f], fingerprint: fp(*f), common_name: String::new(), not_after: i64::MAX },
            projects: None,
        })
        .collect();
    let projects: Option<Vec<String>> = input.projects.map(|p| {
        let mut seen = BTreeSet::new();
        p.iter().take(4).map(project).filter(|p| seen.insert(p.clone())).collect()
    });

    let before = store.clone();
    let first = check(&scope, &requests, &store, projects.as_deref());
    apply(&mut store, &first, projects.as_deref());
    let second = check(&scope, &requests, &store, projects.as_deref());
    // One owner per certificate: an entry whose owner withdrew goes in the first pass, and
    // another relation still asking gets its own in the second; nothing else is left.
    assert!(second.remove.is_empty() && second.restrict.is_empty(), "the second pass only adds: {second:?}");
    apply(&mut store, &second, projects.as_deref());
    let third = check(&scope, &requests, &store, projects.as_deref());
    assert!(third.is_empty(), "two passes converge: {third:?}");
    // Entries we do not own are exactly as they were.
    let foreign_before: Vec<&TrustEntry> =
        before.iter().filter(|e| !(e.kind == TrustKind::Client && scope.owner_of(&e.name).is_some())).collect();
    for e in foreign_before {
        assert!(store.contains(e), "touched {e:?}");
    }
});
