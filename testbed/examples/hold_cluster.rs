//! Start a cluster, print how to reach it, and keep it until stdin closes (or Enter).
//! `cargo run -p testbed --example hold_cluster -- 3 [lxd|incus]`

use std::io::Read;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let kind = std::env::args()
        .nth(2)
        .map(|s| testbed::ServerKind::parse(&s))
        .transpose()?
        .unwrap_or(testbed::ServerKind::Lxd);
    let cluster = testbed::LxdCluster::start_kind(kind, n)?;
    let admin_dir = cluster.run_dir().join("home");
    std::fs::write(admin_dir.join("admin.crt"), &cluster.admin().cert_pem)?;
    std::fs::write(admin_dir.join("admin.key"), &cluster.admin().key_pem)?;
    println!(
        "{}",
        serde_json::json!({
            "kind": kind.name(),
            "startup_secs": cluster.startup_time().as_secs_f64(),
            "endpoints": cluster.endpoints(),
            "run_dir": cluster.run_dir(),
            "admin_cert": admin_dir.join("admin.crt"),
            "admin_key": admin_dir.join("admin.key"),
        })
    );
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    Ok(())
}
