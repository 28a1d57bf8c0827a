//! The packed charm as a Juju 2.9 unit agent runs it. Juju 2.9 is where Ubuntu 16.04 and 18.04
//! machines live, so it is the agent the older bases in `manifest.yaml` meet. The simulator
//! answers as 2.9 (`JUJU_VERSION=2.9.47`, 2.9's action results; see jujusim's README for what
//! else is the same); LXD is the real cluster.

use crate::bed::{Bed, I0, INTEGRATOR, MEMBERS, REQUIRER, unit};
use crate::packed;
use anyhow::{Result, ensure};
use jujusim::{Agent, JUJU_2_9};
use serde_json::json;
use testbed::certs;

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![("j1_a_juju_2_9_agent_runs_the_packed_charm_trust_relate_publish_unrelate", j1_juju_2_9)]
}

fn j1_juju_2_9(bed: &mut Bed) -> Result<()> {
    let charm = packed::artifact(bed)?;
    let dir = packed::unpack(bed, &charm, "unpacked-2.9")?;
    // Without these Juju 2.9 would not deploy the charm on xenial or bionic at all.
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml"))?;
    for channel in ["16.04", "18.04"] {
        ensure!(manifest.contains(&format!("channel: '{channel}'")), "{} lacks ubuntu {channel}", charm.display());
    }

    let mut w = bed.world("juju-2.9")?;
    w.sim.set_juju_version(JUJU_2_9)?;
    w.charm_override = Some(dir);

    // juju deploy: no credential yet, so blocked, naming the fix.
    w.deploy_integrator(1, false)?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message == "Missing credentials access; grant with: juju trust",
        "{status}: {message}"
    );
    // juju trust: config-changed, credential-get answers, active.
    w.sim.trust(INTEGRATOR, true)?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && message == format!("{MEMBERS}/{MEMBERS} members online, 0 clients trusted"),
        "{status}: {message}"
    );

    // juju relate lxd-integrator:api req:lxd, and the requirer sends its certificate.
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("juju29-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    // The real cluster trusts it, under an entry this integrator owns.
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into(), "trust store holds {:?}", w.owned());
    // Published: every member with that fingerprint, the certificate registered, in the unit
    // and (leader) application databags; the ops requirer read it back.
    let nodes = w.nodes(rel, I0)?;
    ensure!(nodes.len() == MEMBERS, "{nodes:?}");
    for n in &nodes {
        ensure!(n["trusted_certs_fp"] == json!([a.fingerprint]), "{n}");
    }
    ensure!(w.registered(rel, I0)? == [a.cert_pem.clone()], "registered_certificates");
    // As the original charm: unit databags only (its requirers do not survive an
    // application-databag change).
    ensure!(w.sim.relation_app_data(rel, INTEGRATOR)?.is_empty(), "api leaves the application databag empty");
    let (status, message) = w.status(&unit(REQUIRER, 0))?;
    ensure!(status == "active" && message == format!("nodes={MEMBERS} registered=1"), "requirer: {status}: {message}");

    // juju run-action --wait: 2.9 adds the exit code (and any output) to the results.
    let r = w.sim.run_action(I0, "list-trusted-clients", json!({}))?;
    ensure!(r.status == "completed" && r.results["Code"] == "0" && r.results["count"] == "1", "{r:?}");
    ensure!(r.results["clients"]["0"]["fingerprint"] == json!(a.fingerprint), "{:#}", r.results);

    // juju remove-relation: departed, broken, and the entry is gone from LXD.
    w.sim.unrelate(rel)?;
    ensure!(w.owned_fps()?.is_empty(), "left behind: {:?}", w.owned());
    ensure!(!w.store_fps()?.contains(&a.fingerprint), "still trusted by LXD");
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message.ends_with("0 clients trusted"), "{status}: {message}");

    ensure!(w.sim.agent()? == Agent::Juju29, "every hook ran under the 2.9 agent");
    w.check()
}
