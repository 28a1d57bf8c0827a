//! The charm's LXD client alone against the raw limit client, on one fresh connection each:
//! TCP + full TLS handshake, `GET /1.0`, the members, the trust store (cumulative ms).
//! `cargo run --release -p bench --example client_vs_raw` (ROUNDS=n, default 8).
use anyhow::Result;
use lxd_integrator::credentials::TlsCredentials;
use lxd_integrator::endpoint::Endpoint;
use lxd_integrator::lxd::Lxd;
use std::time::Instant;
// Only the connection and observe parts of the raw client are used here.
#[allow(dead_code)]
#[path = "../src/raw.rs"]
mod raw;

fn main() -> Result<()> {
    let cluster = testbed::LxdCluster::start(3)?;
    let id = testbed::certs::client_cert("cmp")?;
    cluster.trust_add("cmp", &id.cert_pem)?;
    let tls = TlsCredentials {
        client_cert_pem: id.cert_pem.clone(),
        client_key_pem: id.key_pem.clone(),
        server_cert_pem: cluster.cluster_cert_pem().to_string(),
    };
    let cfg = raw::config(&id.cert_pem, &id.key_pem, testbed::certs::pem_to_der(cluster.cluster_cert_pem())?)?;
    let ep = Endpoint::parse(&format!("https://{}", cluster.endpoint(0)))?;
    for round in 0..std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(8) {
        let t = Instant::now();
        let mut c = raw::Conn::open(&cfg, &cluster.endpoint(0))?;
        let t_open = t.elapsed();
        c.expect("GET", "/1.0", None, &[])?;
        let t1 = t.elapsed();
        c.expect("GET", "/1.0/cluster/members?recursion=1", None, &[])?;
        let t2 = t.elapsed();
        c.expect("GET", "/1.0/certificates?recursion=1", None, &[])?;
        let t3 = t.elapsed();
        drop(c);
        let u = Instant::now();
        let mut l = lxd_integrator::lxd::client::HttpLxd::new(&ep, &tls)?;
        let u0 = u.elapsed();
        l.server()?;
        let u1 = u.elapsed();
        l.members()?;
        let u2 = u.elapsed();
        l.trust_store()?;
        let u3 = u.elapsed();
        drop(l);
        let u4 = u.elapsed();
        println!(
            "{round}: raw open {:.2} /1.0 {:.2} members {:.2} certs {:.2} | charm new {:.2} /1.0 {:.2} members {:.2} certs {:.2} drop {:.2}",
            t_open.as_secs_f64() * 1e3,
            t1.as_secs_f64() * 1e3,
            t2.as_secs_f64() * 1e3,
            t3.as_secs_f64() * 1e3,
            u0.as_secs_f64() * 1e3,
            u1.as_secs_f64() * 1e3,
            u2.as_secs_f64() * 1e3,
            u3.as_secs_f64() * 1e3,
            u4.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
