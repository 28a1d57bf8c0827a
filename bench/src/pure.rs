//! The charm's own work without processes or sockets: the pure steps of a pass (read
//! `client_certificates` from every databag, plan against the trust store, build the
//! payload) at growing N. End to end, LXD's adds grow faster than linearly on their own;
//! this shows whether any step of the charm does.

use anyhow::Result;
use lxd_integrator::lxd::TrustEntry;
use lxd_integrator::ownership::{Interface, Owner, Scope};
use lxd_integrator::plan;
use lxd_integrator::relation::{self, RelationView};
use lxd_integrator::requests;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Median ms of each step at one N.
pub struct Steps {
    pub n: usize,
    pub collect_ms: f64,
    pub plan_ms: f64,
    pub payload_ms: f64,
}

impl Steps {
    pub fn total_ms(&self) -> f64 {
        self.collect_ms + self.plan_ms + self.payload_ms
    }
}

/// N requirer units on one relation, one certificate each (`pems[..n]`); LXD already holds
/// half of them plus N/2 entries of departed units, so the plan both adds and removes.
pub fn measure(pems: &[String], n: usize, reps: usize) -> Result<Steps> {
    let scope = Scope { model_uuid: "3f1b2c4d-0000-4000-8000-000000000000".into(), app: "lxd-integrator".into() };
    let mut view = RelationView { id: 7, remote_app: "req".into(), ..Default::default() };
    for (i, pem) in pems[..n].iter().enumerate() {
        let certs = serde_json::to_string(&[pem])?;
        view.units.insert(format!("req/{i}"), [(relation::KEY_CLIENT_CERTS.to_string(), certs)].into());
    }
    let relations = [view];
    let now = lxd_integrator::certs::now_unix();
    let requests = requests::collect(&relations, now, &requests::Protected::default()).requests;
    anyhow::ensure!(requests.len() == n, "{} of {n} certificates read", requests.len());
    let entry = |name: String, fingerprint: String| TrustEntry {
        name,
        fingerprint,
        kind: "client".into(),
        restricted: false,
        projects: vec![],
    };
    let mut store: Vec<TrustEntry> =
        requests.iter().step_by(2).map(|r| entry(scope.entry_name(&r.owner), r.cert.fingerprint.clone())).collect();
    store.extend((0..n / 2).map(|i| {
        let gone =
            Owner { relation_id: 7, remote_app: "req".into(), unit: Some((n + i) as u32), interface: Interface::Lxd };
        entry(scope.entry_name(&gone), format!("{:064x}", i))
    }));
    let in_store: BTreeSet<String> = requests.iter().map(|r| r.cert.fingerprint.clone()).collect();
    let members: relation::OnlineMembers =
        (1..=3).map(|i| (format!("node{i}"), format!("https://127.0.0.{i}:8443"))).collect();

    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..reps {
        let t = Instant::now();
        let collected = requests::collect(&relations, now, &requests::Protected::default());
        times.entry("collect").or_default().push(crate::ms(t.elapsed()));
        let t = Instant::now();
        let p = plan::plan(&scope, &collected.requests, &store, None);
        times.entry("plan").or_default().push(crate::ms(t.elapsed()));
        anyhow::ensure!(
            p.add.len() == n / 2 && p.remove.len() == n / 2,
            "plan: {} adds, {} removes",
            p.add.len(),
            p.remove.len()
        );
        let t = Instant::now();
        let bag = relation::payload(7, &members, &collected.requests, &in_store, None, None);
        times.entry("payload").or_default().push(crate::ms(t.elapsed()));
        anyhow::ensure!(bag.bag.contains_key(relation::KEY_NODES));
    }
    let med = |k: &str| crate::stat(&times[k]).0;
    Ok(Steps { n, collect_ms: med("collect"), plan_ms: med("plan"), payload_ms: med("payload") })
}
