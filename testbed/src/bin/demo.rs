//! The main job, end to end on one machine: a real 3-member LXD cluster on loopback, the packed
//! lxd-integrator charm and the Python `ops` requirer "deployed" in the Juju hook-tool
//! simulator, `juju trust`, `juju relate`, then what an operator would look at. Tears down.
//!
//!     cargo run -p testbed --bin demo --release -- build/lxd-integrator_amd64.charm

use anyhow::{Context, Result, bail, ensure};
use jujusim::Sim;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use testbed::{LxdCluster, certs};

fn main() -> Result<()> {
    let charm = std::env::args().nth(1).map(PathBuf::from).context("usage: demo <lxd-integrator_*.charm>")?;
    ensure!(charm.is_file(), "{} not found (run `make charm`)", charm.display());
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = std::env::temp_dir().join(format!("lxd-integrator-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = run(&charm, &repo, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn step(title: &str) {
    println!("\n==> {title}");
}

fn run(charm: &Path, repo: &Path, work: &Path) -> Result<()> {
    step(&format!("unpacking {}", charm.display()));
    let unpacked = work.join("charm");
    let out = Command::new("unzip").arg("-q").arg(charm).arg("-d").arg(&unpacked).output().context("unzip")?;
    if !out.status.success() {
        bail!("unzip: {}", String::from_utf8_lossy(&out.stderr));
    }
    let requirer = repo.join("tests/requirer-charm");
    let setup = Command::new("sh").arg(requirer.join("setup.sh")).status()?;
    ensure!(setup.success(), "requirer setup.sh failed");

    step("starting a 3-member LXD cluster on loopback addresses");
    let cluster = LxdCluster::start(3)?;
    println!("    members {:?} up in {:.1?}", cluster.endpoints(), cluster.startup_time());
    let identity = certs::client_cert("lxd-integrator-demo")?;
    cluster.trust_add("lxd-integrator-demo", &identity.cert_pem)?;

    let mut sim = Sim::new(work.join("model"), "demo")?;
    sim.set_cloud_spec(json!({
        "type": "lxd", "name": "localhost", "endpoint": format!("https://{}", cluster.endpoint(0)),
        "credential": {"auth-type": "certificate", "attrs": {
            "client-cert": identity.cert_pem, "client-key": identity.key_pem,
            "server-cert": cluster.cluster_cert_pem()}}
    }))?;

    step("juju deploy ./lxd-integrator_amd64.charm");
    sim.deploy("lxd-integrator", &unpacked, 1)?;
    show_status(&sim, "lxd-integrator/0")?;
    step("juju trust lxd-integrator");
    sim.trust("lxd-integrator", true)?;
    show_status(&sim, "lxd-integrator/0")?;

    step("juju deploy lxd-requirer -n 2 (a Python ops charm sending client_certificates like Anbox AMS)");
    sim.deploy("lxd-requirer", &requirer, 2)?;
    step("juju relate lxd-integrator:api lxd-requirer:lxd");
    let rel = sim.relate("lxd-integrator:api", "lxd-requirer:lxd")?;
    for n in 0..2 {
        let cert = certs::client_cert(&format!("lxd-requirer-{n}"))?;
        let value = serde_json::to_string(&[cert.cert_pem])?;
        let r = sim.run_action(&format!("lxd-requirer/{n}"), "set-certificates", json!({"value": value}))?;
        ensure!(r.status == "completed", "set-certificates: {r:?}");
    }

    step("juju status");
    for unit in ["lxd-integrator/0", "lxd-requirer/0", "lxd-requirer/1"] {
        show_status(&sim, unit)?;
    }
    println!("    lxd-integrator version: {}", sim.app_version("lxd-integrator")?);

    step(&format!("relation data published by lxd-integrator/0 on api:{rel}"));
    let bag = sim.relation_data(rel, "lxd-integrator/0")?;
    println!("    version: {}", bag.get("version").map(String::as_str).unwrap_or("-"));
    let nodes: Value = serde_json::from_str(bag.get("nodes").map(String::as_str).unwrap_or("[]"))?;
    println!("    nodes: {}", serde_json::to_string_pretty(&nodes)?.replace('\n', "\n    "));
    let registered: Vec<String> =
        serde_json::from_str(bag.get("registered_certificates").map(String::as_str).unwrap_or("[]"))?;
    println!("    registered_certificates: {} PEM certificates", registered.len());

    step("lxc config trust list (as the LXD admin)");
    for e in cluster.trust_list()? {
        println!(
            "    {:<8} {:.12}  {}",
            e["type"].as_str().unwrap_or(""),
            e["fingerprint"].as_str().unwrap_or(""),
            e["name"].as_str().unwrap_or("")
        );
    }

    step("juju run lxd-integrator/0 list-trusted-clients");
    let r = sim.run_action("lxd-integrator/0", "list-trusted-clients", json!({}))?;
    println!("    {}", serde_json::to_string_pretty(&r.results)?.replace('\n', "\n    "));

    step("juju remove-relation: the integrator withdraws what it added");
    sim.unrelate(rel)?;
    let left =
        cluster.trust_list()?.iter().filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("juju."))).count();
    println!("    entries owned by lxd-integrator left in LXD: {left}");
    show_status(&sim, "lxd-integrator/0")?;
    let failed = sim.failed_hooks()?;
    println!("\nhooks run: {}, failed: {}", sim.hooks()?.iter().filter(|h| h.ran).count(), failed.len());
    ensure!(failed.is_empty() && left == 0, "the demo did not end clean");
    step("tearing down the cluster");
    drop(cluster);
    Ok(())
}

fn show_status(sim: &Sim, unit: &str) -> Result<()> {
    let (status, message) = sim.unit_status(unit)?;
    println!("    {unit:<18} {status:<8} {message}");
    Ok(())
}
