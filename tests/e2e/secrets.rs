//! Credentials from a Juju user secret (Juju >= 3.3), with the packed charm: deployed without
//! `juju trust`, `juju add-secret` + `grant-secret` + `juju config lxd-credentials-secret=...`
//! reach LXD; `juju update-secret` rotates the identity in `secret-changed`; a revoked grant,
//! a removed secret or a missing key block naming the fix and remove nothing; the plain
//! `lxd_*` options keep working. The content is found nowhere Juju shows or keeps for the unit.

use crate::bed::{Bed, I0, INTEGRATOR, MEMBERS, REQUIRER, World, unit};
use crate::operator::act;
use crate::packed;
use anyhow::{Result, ensure};
use serde_json::json;
use testbed::certs::{self, Pem};

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        (
            "x1_a_granted_secret_alone_reaches_active_and_a_new_revision_is_used_after_secret_changed",
            x1_secret_and_rotation,
        ),
        (
            "x2_a_revoked_removed_or_incomplete_secret_blocks_naming_the_fix_and_removes_nothing",
            x2_unusable_secret_blocks,
        ),
        ("x3_the_plain_options_still_work_suggest_a_secret_once_and_a_secret_then_wins", x3_plain_options),
    ]
}

const OPT: &str = "lxd-credentials-secret";

/// A world running the packed charm, deployed without trust.
fn packed_world<'a>(bed: &'a mut Bed, name: &str) -> Result<World<'a>> {
    let charm = packed::artifact(bed)?;
    let dir = packed::unpack(bed, &charm, &format!("unpacked-{name}"))?;
    let mut w = bed.world(name)?;
    w.charm_override = Some(dir);
    w.deploy_integrator(1, false)?;
    Ok(w)
}

/// The four keys, for `identity` and member `member`, as `juju add-secret` would be given
/// them (the PEMs as read from files: `client-key#file=client.key`).
fn content(w: &World, identity: &Pem, member: usize) -> Vec<(&'static str, String)> {
    vec![
        ("endpoint", format!("https://{}", w.bed.cluster.endpoint(member))),
        ("client-cert", identity.cert_pem.clone()),
        ("client-key", identity.key_pem.clone()),
        ("server-cert", w.bed.cluster.cluster_cert_pem().to_string()),
    ]
}

fn pairs<'a>(content: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    content.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `juju add-secret lxd-creds ...`, `juju grant-secret`, `juju config lxd-credentials-secret`.
fn configure_secret(w: &mut World, name: &str, content: &[(&'static str, String)]) -> Result<String> {
    let uri = w.sim.add_secret(name, &pairs(content))?;
    w.sim.grant_secret(&uri, INTEGRATOR)?;
    w.sim.set_config(INTEGRATOR, &[(OPT, Some(json!(uri)))])?;
    Ok(uri)
}

/// Besides `World::check`: the key is in no tool call (argv, stdin), no unit state.
fn check_secret_kept(w: &World, identity: &Pem) -> Result<()> {
    let body: String = identity.key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let probe = &body[body.len().saturating_sub(40)..];
    for call in w.sim.tool_calls()? {
        let stdin = call.stdin.unwrap_or_default();
        ensure!(
            !call.args.iter().any(|a| a.contains(probe)) && !stdin.contains(probe),
            "key material handed to {}",
            call.tool
        );
        ensure!(!call.stderr.contains(probe), "key material in the stderr of {}", call.tool);
    }
    for unit in w.sim.units(INTEGRATOR)? {
        ensure!(
            !w.sim.unit_state(&unit)?.values().any(|v| v.contains(probe) || v.contains("PRIVATE KEY")),
            "key material in the state of {unit}"
        );
    }
    Ok(())
}

fn x1_secret_and_rotation(bed: &mut Bed) -> Result<()> {
    let mut w = packed_world(bed, "secret")?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message == "Missing credentials access; grant with: juju trust",
        "{status}: {message}"
    );
    let identity = w.identity.clone();
    let first = content(&w, &identity, 0);
    let uri = configure_secret(&mut w, "lxd-creds", &first)?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && message == format!("{MEMBERS}/{MEMBERS} members online, 0 clients trusted"),
        "{status}: {message}"
    );
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(r.get("credentials").map(String::as_str) == Some("secret"), "{r:?}");

    // It manages trust like any other credential.
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("secret-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into(), "{:?}", w.owned());
    w.check()?;
    check_secret_kept(&w, &identity)?;

    // Rotation: the operator trusts a new identity in LXD, revokes the old one, and updates
    // the secret (now naming member 2). Only secret-changed runs in between: had it not read
    // the new revision, the old identity would now be refused.
    let rotated = certs::client_cert("integrator-secret-rotated")?;
    w.cluster().trust_add("e2e-secret-rotated", &rotated.cert_pem)?;
    w.cluster().trust_remove(&identity.fingerprint)?;
    let hooks_before = w.sim.hooks()?.len();
    let second = content(&w, &rotated, 1);
    w.sim.update_secret(&uri, &pairs(&second))?;
    let ran: Vec<String> =
        w.sim.hooks()?.into_iter().skip(hooks_before).map(|h| format!("{} {}", h.unit, h.hook)).collect();
    ensure!(ran == [format!("{I0} secret-changed")], "hooks after update-secret: {ran:?}");
    let (status, message) = w.status(I0)?;
    ensure!(status == "active", "after secret-changed: {status}: {message}");
    let secret_get: Vec<Vec<String>> = w
        .sim
        .tool_calls()?
        .into_iter()
        .filter(|c| c.hook == "secret-changed" && c.tool == "secret-get")
        .map(|c| c.args)
        .collect();
    ensure!(secret_get == [vec![uri.clone(), "--format=json".to_string(), "--refresh".to_string()]], "{secret_get:?}");
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    let member2 = format!("https://{}", w.bed.cluster.endpoint(1));
    ensure!(r.get("configured-endpoint") == Some(&member2), "the new revision's endpoint: {r:?}");
    w.update_status()?;
    ensure!(w.status(I0)?.0 == "active");
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into(), "nothing lost in the rotation: {:?}", w.owned());
    ensure!(w.nodes(rel, I0)?.len() == MEMBERS);
    // Both keys are kept out of everything; from now on the world's identity is the new one
    // (the old one is no longer trusted by LXD).
    w.check()?;
    check_secret_kept(&w, &identity)?;
    w.identity = rotated.clone();
    w.check()?;
    check_secret_kept(&w, &rotated)
}

fn x2_unusable_secret_blocks(bed: &mut Bed) -> Result<()> {
    let mut w = packed_world(bed, "secret-blocked")?;
    let identity = w.identity.clone();
    // A secret that lacks a key from the start: blocked, naming it.
    let mut incomplete = content(&w, &identity, 0);
    incomplete.retain(|(k, _)| *k != "server-cert");
    let uri = configure_secret(&mut w, "lxd-creds", &incomplete)?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message == format!("{uri} lacks key server-cert; update it with all four keys"),
        "{status}: {message}"
    );
    // Completed: active; then a relation and a trusted certificate.
    let full = content(&w, &identity, 0);
    w.sim.update_secret(&uri, &pairs(&full))?;
    ensure!(w.status(I0)?.0 == "active", "{:?}", w.status(I0));
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("blocked-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    let owned = w.owned_fps()?;
    ensure!(owned == [a.fingerprint.clone()].into(), "{:?}", w.owned());
    let published = w.payload(rel, I0)?;

    // Revoked: the next hook is blocked naming the grant, and nothing is removed anywhere.
    w.sim.revoke_secret(&uri, INTEGRATOR)?;
    w.update_status()?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message == format!("{uri} not granted; run: juju grant-secret {uri} {INTEGRATOR}"),
        "{status}: {message}"
    );
    ensure!(w.owned_fps()? == owned, "nothing removed from LXD: {:?}", w.owned());
    ensure!(w.payload(rel, I0)? == published, "the published data stays");
    // Even a relation change while blocked removes nothing.
    w.send(&unit(REQUIRER, 0), &[])?;
    ensure!(w.owned_fps()? == owned, "nothing removed while blocked: {:?}", w.owned());
    // Granted again: picked up at the next hook.
    w.sim.grant_secret(&uri, INTEGRATOR)?;
    w.update_status()?;
    ensure!(w.status(I0)?.0 == "active", "{:?}", w.status(I0));
    ensure!(w.owned_fps()?.is_empty(), "the withdrawn certificate goes once LXD can be used again");

    // A new revision without the key: secret-changed blocks, naming it.
    w.sim.update_secret(&uri, &pairs(&incomplete))?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "blocked" && message.contains("lacks key server-cert"), "{status}: {message}");
    // Removed: blocked, naming what to do.
    w.sim.update_secret(&uri, &pairs(&full))?;
    ensure!(w.status(I0)?.0 == "active");
    w.sim.remove_secret(&uri)?;
    w.update_status()?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message == format!("{uri} not found; juju add-secret a new one and set {OPT} to its ID"),
        "{status}: {message}"
    );
    // Not a URI at all (e.g. the secret's name): said, never quoted.
    w.sim.set_config(INTEGRATOR, &[(OPT, Some(json!("lxd-creds")))])?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked"
            && message.starts_with(&format!("{OPT} is not a secret URI"))
            && !message.contains("lxd-creds"),
        "{status}: {message}"
    );
    w.check()?;
    check_secret_kept(&w, &identity)
}

fn x3_plain_options(bed: &mut Bed) -> Result<()> {
    let mut w = packed_world(bed, "secret-plain")?;
    let spec = w.cloud_spec();
    let attrs = &spec["credential"]["attrs"];
    w.sim.set_config(
        INTEGRATOR,
        &[
            ("lxd_endpoint", Some(spec["endpoint"].clone())),
            ("lxd_client_cert", Some(attrs["client-cert"].clone())),
            ("lxd_client_key", Some(attrs["client-key"].clone())),
            ("lxd_server_cert", Some(attrs["server-cert"].clone())),
        ],
    )?;
    ensure!(w.status(I0)?.0 == "active", "{:?}", w.status(I0));
    w.update_status()?;
    w.update_status()?;
    let hints = w
        .sim
        .logs()?
        .into_iter()
        .filter(|l| l.unit == I0 && l.message.contains("keep the credentials in a user secret"))
        .count();
    ensure!(hints == 1, "the suggestion to use a secret is logged once, not every hook: {hints}");
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(r.get("credentials").map(String::as_str) == Some("config"), "{r:?}");
    // A secret set next to them wins, and says the options are ignored.
    let identity = w.identity.clone();
    let secret = content(&w, &identity, 2);
    configure_secret(&mut w, "lxd-creds", &secret)?;
    ensure!(w.status(I0)?.0 == "active");
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(r.get("credentials").map(String::as_str) == Some("secret"), "{r:?}");
    ensure!(
        w.sim
            .logs()?
            .iter()
            .any(|l| l.message.contains("the lxd_* options are ignored while lxd-credentials-secret is set"))
    );
    // Unset again: back to the options.
    w.sim.set_config(INTEGRATOR, &[(OPT, None)])?;
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(r.get("credentials").map(String::as_str) == Some("config"), "{r:?}");
    w.check()?;
    check_secret_kept(&w, &identity)
}
