//! What one pass costs when requirers send a lot: U units each sending a valid certificate
//! inside ~1 MiB of padding and junk, through the real reconcile against the in-memory unit
//! agent and LXD (`lxd_integrator::memory`). Prints bytes read, bytes written, their ratio,
//! the pass's wall time and the process's peak RSS (which includes the in-memory agent's own
//! copy of every databag, so it is an upper bound for the charm alone).
//!
//!   cargo run --release -p bench --example volume -- [UNITS]     (default 100)

use lxd_integrator::dispatch::HookContext;
use lxd_integrator::hook_tools::Juju;
use lxd_integrator::memory::{Agent, Cluster, MemoryConnector};
use lxd_integrator::reconcile::{self, Mode};
use std::time::Instant;

const MIB: usize = 1 << 20;

fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn main() -> anyhow::Result<()> {
    let units: usize = std::env::args().nth(1).map(|u| u.parse()).transpose()?.unwrap_or(100);
    let certs: Vec<String> = (0..units)
        .map(|i| testbed::certs::client_cert_p256(&format!("req-{i}")).map(|p| p.cert_pem))
        .collect::<anyhow::Result<_>>()?;
    let mut agent = Agent::leader();
    agent.unit = "lxd-integrator/0".into();
    let mut read = 0;
    for (i, pem) in certs.iter().enumerate() {
        // The certificate padded with whitespace, then junk entries, to about 1 MiB.
        let padded = format!("{}{}{}", " ".repeat(MIB / 4), pem.replace('\n', "\r\n"), "\n".repeat(MIB / 4));
        let junk: Vec<String> =
            (0..2_000).map(|j| format!("-----BEGIN CERTIFICATE-----\nAAAA{j}\n-----END CERTIFICATE-----\n")).collect();
        let mut list = vec![padded];
        list.extend(junk);
        let value = serde_json::to_string(&list)?;
        read += value.len();
        agent.relate(1, "req").units.insert(format!("req/{i}"), [("client_certificates".to_string(), value)].into());
    }
    let before = peak_rss_mib();
    let cluster = Cluster::new(&["https://127.0.0.1:8443"]).shared();
    let ctx = HookContext {
        name: "api-relation-changed".into(),
        unit: "lxd-integrator/0".into(),
        model_uuid: "m".into(),
        ..Default::default()
    };
    let started = Instant::now();
    reconcile::run(&ctx, &mut Juju::new(&mut agent), &MemoryConnector(cluster.clone()), Mode::HOOK)?;
    let took = started.elapsed();
    let written = agent.bytes_sent();
    let trusted = cluster.lock().map_err(|_| anyhow::anyhow!("lock"))?.store.len();
    println!(
        "units: {units}, read: {read} bytes, written: {written} bytes ({:.5} per byte read)",
        written as f64 / read as f64
    );
    println!("trusted: {trusted} of {units}; refused tool calls: {}", agent.refused().count());
    println!(
        "pass: {:.0} ms; peak RSS {:.1} MiB (inputs alone: {before:.1} MiB)",
        took.as_secs_f64() * 1000.0,
        peak_rss_mib()
    );
    Ok(())
}
