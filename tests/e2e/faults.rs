//! Hostile conditions: crashed members up to a full outage, a slow or broken LXD behind a
//! proxy, an LXD that trickles its answer, rotated and revoked credentials, a man in the middle.
//! Each scenario ends with `World::check()` (no failed hook, schema-valid payloads, no key
//! material anywhere).
//!
//! The invariants every fault must keep: hooks end in bounded time, the charm fails over to
//! members it learned or says `waiting`, and an outage never removes a trust entry nor
//! unpublishes anything.

use crate::bed::{Bed, Databag, INTEGRATOR, MEMBERS, REQUIRER, World, unit};
use crate::fake_lxd::{FakeLxd, LXD_4_0_EXTENSIONS, TRICKLED};
use crate::proxy::{Mode, Proxy};
use anyhow::{Context, Result, anyhow, ensure};
use jujusim::RelationId;
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testbed::certs::{self, Pem};
use testbed::tls_server::{Reply, TlsServer};

const I0: &str = "lxd-integrator/0";
/// No hook may take longer, whatever LXD does: 3 s connect + 15 s request per endpoint are the
/// client's budgets. A bound, not a benchmark.
const HOOK_BOUND: Duration = Duration::from_secs(40);

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        ("f1_crashes_fail_over_then_a_full_outage_waits_loses_nothing_and_heals", f1_crashes_and_outage),
        ("f2_a_black_holed_or_cut_endpoint_keeps_hooks_bounded_and_fails_over", f2_slow_or_broken_lxd),
        ("f3_rotated_credentials_keep_working_and_revoked_trust_blocks_removing_nothing", f3_rotated_and_revoked),
        ("f4_a_man_in_the_middle_is_refused_before_any_request_is_sent", f4_man_in_the_middle),
        ("f5_an_answer_trickled_for_ever_ends_each_hook_at_the_request_deadline", f5_trickled_answer),
    ]
}

/// The integrator's unit and application databags on `rel`.
fn bags(w: &World, rel: RelationId) -> Result<(Databag, Databag)> {
    let unit_bag = w.payload(rel, I0)?;
    let app_bag: Databag = w.sim.relation_app_data(rel, INTEGRATOR)?.into_iter().collect();
    Ok((unit_bag, app_bag))
}

fn fps(pems: &[&Pem]) -> BTreeSet<String> {
    pems.iter().map(|p| p.fingerprint.clone()).collect()
}

/// The integrator's hooks run since `mark` (an index into `sim.hooks()`): (name, duration).
fn hooks_since(w: &World, mark: usize) -> Result<Vec<(String, Duration)>> {
    Ok(w.sim.hooks()?[mark..]
        .iter()
        .filter(|h| h.unit.starts_with(INTEGRATOR) && h.ran)
        .map(|h| (h.hook.clone(), Duration::from_secs_f64(h.duration_ms / 1000.0)))
        .collect())
}

/// Asserts every integrator hook since `mark` ended within [`HOOK_BOUND`]; returns the longest.
fn bounded(w: &World, mark: usize, what: &str) -> Result<Duration> {
    let hooks = hooks_since(w, mark)?;
    ensure!(!hooks.is_empty(), "{what}: no integrator hook ran");
    for (name, d) in &hooks {
        ensure!(*d < HOOK_BOUND, "{what}: {name} took {d:.1?} (bound {HOOK_BOUND:?})");
    }
    Ok(hooks.iter().map(|(_, d)| *d).max().unwrap_or_default())
}

fn expect_status(w: &World, kind: &str, message: &str) -> Result<()> {
    let (status, got) = w.status(I0)?;
    ensure!(status == kind && got == message, "expected {kind}: {message}\n     got {status}: {got}");
    Ok(())
}

/// Active with `trusted` clients. The member count is not asserted here: with the test bed's
/// 11 s offline threshold LXD itself briefly reports a busy member offline now and then.
fn expect_active(w: &World, trusted: usize) -> Result<()> {
    let (status, got) = w.status(I0)?;
    let tail = format!(" members online, {trusted} client{} trusted", if trusted == 1 { "" } else { "s" });
    ensure!(status == "active" && got.ends_with(&tail), "expected active: N/{MEMBERS}{tail}\n     got {status}: {got}");
    Ok(())
}

/// Every member Online, so that a scenario starts from a whole cluster whatever ran before.
fn whole_cluster(w: &World) -> Result<()> {
    for i in 0..MEMBERS {
        w.bed.cluster.wait_member_status(i, "Online", Duration::from_secs(30))?;
    }
    Ok(())
}

/// What the charm claims LXD trusts, in the unit and the application databag.
fn claims(w: &World, rel: RelationId) -> Result<(Option<String>, Option<String>)> {
    let (unit_bag, app_bag) = bags(w, rel)?;
    Ok((unit_bag.get("registered_certificates").cloned(), app_bag.get("registered_certificates").cloned()))
}

/// Deploys the integrator (credential endpoint as the world says), one requirer unit, relates
/// them and has the requirer send `first`.
fn setup(w: &mut World, first: &Pem) -> Result<RelationId> {
    whole_cluster(w)?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    w.send(&unit(REQUIRER, 0), &[&first.cert_pem])?;
    ensure!(w.owned_fps()? == fps(&[first]), "{:?}", w.owned());
    expect_active(w, 1)?;
    Ok(rel)
}

// ---------------------------------------------------------------------------------------------
// 1. Crashes against the real cluster

fn f1_crashes_and_outage(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("crashes")?;
    let result = crashes_and_outage(&mut w);
    // Whatever happened, leave the shared cluster whole: after a full outage the members must
    // come back together (quorum), which World's drop (one at a time) cannot do.
    let down: Vec<usize> = (0..MEMBERS).filter(|&i| !w.bed.cluster.is_running(i)).collect();
    if !down.is_empty() {
        let restarted = w.cluster().start_members(&down);
        result?;
        restarted?;
    } else {
        result?;
    }
    w.check()
}

fn crashes_and_outage(w: &mut World) -> Result<()> {
    let a = certs::client_cert("a")?;
    let rel = setup(w, &a)?;
    let names = w.bed.cluster.member_names();
    let ep0 = format!("https://{}", w.bed.cluster.endpoint(0));

    // A member that is not the configured endpoint crashes.
    let t = Instant::now();
    w.cluster().kill_member(2)?;
    w.update_status()?;
    ensure!(w.status(I0)?.0 == "active", "{:?}", w.status(I0));
    w.update_until("node3 unpublished after its crash", Duration::from_secs(60), |w| {
        Ok(!w.node_names(rel, I0)?.contains(&names[2]))
    })?;
    eprintln!("f1: crashed node3 unpublished {:.1?} after the crash", t.elapsed());
    expect_active(w, 1)?;
    ensure!(w.owned_fps()? == fps(&[&a]) && w.registered(rel, I0)? == [a.cert_pem.clone()], "nothing removed");
    w.cluster().start_member(2)?;
    w.update_until("node3 published again", Duration::from_secs(60), |w| Ok(w.node_names(rel, I0)?.len() == MEMBERS))?;

    // The configured endpoint's member crashes: the next hook goes through a member it learned.
    let mark = w.sim.hooks()?.len();
    let t = Instant::now();
    w.cluster().kill_member(0)?;
    w.update_until("active through another member", Duration::from_secs(60), |w| Ok(w.status(I0)?.0 == "active"))?;
    let failover = t.elapsed();
    let longest = bounded(w, mark, "failover")?;
    let check = w.sim.run_action(I0, "check-connection", json!({}))?;
    let used = check.results["endpoint"].as_str().unwrap_or("").to_string();
    ensure!(!used.is_empty() && used != ep0, "check-connection used {used:?}: {check:?}");
    ensure!(w.owned_fps()? == fps(&[&a]), "nothing removed: {:?}", w.owned());
    eprintln!("f1: configured member crashed; active through {used} after {failover:.1?} (longest hook {longest:.1?})");

    // Everything is down: waiting, naming the endpoint and the members tried; nothing removed,
    // nothing unpublished.
    w.cluster().kill_member(1)?;
    w.cluster().kill_member(2)?;
    let before = bags(w, rel)?;
    let mark = w.sim.hooks()?.len();
    w.update_status()?;
    let waiting = format!("LXD unreachable at {ep0} and {} other known members; retrying", MEMBERS - 1);
    expect_status(w, "waiting", &waiting)?;
    // A requirer sends a new certificate during the outage.
    let b = certs::client_cert("b")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem, &b.cert_pem])?;
    w.update_status()?;
    expect_status(w, "waiting", &waiting)?;
    ensure!(bags(w, rel)? == before, "relation data changed during the outage");
    let longest = bounded(w, mark, "full outage")?;
    eprintln!("f1: all members down: waiting; longest hook {longest:.1?}");

    // LXD comes back: the charm converges with update-status alone.
    let t = Instant::now();
    // All together: one member alone waits for a quorum and is never ready (start_member(0)
    // alone: "not ready after 60s").
    w.cluster().start_members(&[0, 1, 2])?;
    let restart = t.elapsed();
    ensure!(w.owned_fps()? == fps(&[&a]), "the outage removed nothing: {:?}", w.owned());
    let mark = w.sim.hooks()?.len();
    let t = Instant::now();
    w.update_until("converged after the outage", Duration::from_secs(60), |w| {
        Ok(w.status(I0)?.0 == "active"
            && w.owned_fps()? == fps(&[&a, &b])
            && w.registered(rel, I0)?.len() == 2
            && w.node_names(rel, I0)?.len() == MEMBERS)
    })?;
    let converge = t.elapsed();
    let hooks = hooks_since(w, mark)?;
    ensure!(hooks.iter().all(|(h, _)| h == "update-status"), "only update-status ran: {hooks:?}");
    expect_active(w, 2)?;
    eprintln!(
        "f1: cluster restarted in {restart:.1?}; converged {converge:.1?} later in {} update-status hook(s)",
        hooks.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. A slow or broken endpoint (a proxy in front of member 0)

/// Byte offsets in one connection of a hook, measured through the proxy against LXD 5.0.2
/// (TLS 1.3, P-384): client→server 214 (ClientHello) + 672 (certificate, verify, finished),
/// then `GET /1.0` (113), `GET /1.0/cluster/members` (141), `GET /1.0/certificates` (138);
/// server→client 962 (hello..finished) + 641 (tickets), then ~10 kB answering `/1.0`.
const MID_CLIENT_HELLO: usize = 100;
const MID_FIRST_REQUEST: usize = 214 + 672 + 50;
const MID_SECOND_REQUEST: usize = 214 + 672 + 113 + 70;
const MID_FIRST_ANSWER: usize = 962 + 641 + 3000;

fn f2_slow_or_broken_lxd(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("slow-lxd")?;
    let upstream: SocketAddr = w.bed.cluster.endpoint(0).parse().context("member address")?;
    let proxy = Proxy::start(upstream)?;
    let via = format!("https://{}", proxy.addr());
    let mut spec = w.cloud_spec();
    spec["endpoint"] = json!(via);
    w.sim.set_cloud_spec(spec)?;
    whole_cluster(&w)?;
    let dir = w.bed.charm_dir.clone();
    w.sim.deploy(INTEGRATOR, &dir, 1)?;

    // Nothing learned yet and the only endpoint never answers: bounded hook, then waiting.
    proxy.set_mode(Mode::BlackHole);
    let mark = w.sim.hooks()?.len();
    w.sim.trust(INTEGRATOR, true)?;
    expect_status(&w, "waiting", &format!("LXD unreachable at {via}; retrying"))?;
    let longest = bounded(&w, mark, "black hole, no known member")?;
    eprintln!("f2: black hole and no known member: waiting; hook {longest:.1?}");

    // It answers again: active, and the members' own addresses are learned.
    proxy.set_mode(Mode::Pass);
    let a = certs::client_cert("a")?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    expect_active(&w, 1)?;
    ensure!(w.owned_fps()? == fps(&[&a]));
    let sane = proxy.conns().into_iter().rev().find(|c| c.mode == Some(Mode::Pass) && c.down > 0);
    ensure!(
        sane.as_ref().is_some_and(|c| c.up > MID_SECOND_REQUEST && c.down > MID_FIRST_ANSWER),
        "the byte offsets no longer fit a hook's connection: {sane:?}"
    );
    // Hooks that fail over publish afresh (LXD's member list may differ by then); what they
    // must never do is drop a claim.
    let before = claims(&w, rel)?;

    let faults = [
        ("black hole (accepts, never answers)", Mode::BlackHole),
        ("cut mid-handshake", Mode::Cut { up: MID_CLIENT_HELLO, down: usize::MAX }),
        ("cut mid-request", Mode::Cut { up: MID_FIRST_REQUEST, down: usize::MAX }),
        ("cut mid-answer", Mode::Cut { up: usize::MAX, down: MID_FIRST_ANSWER }),
        ("answer stalls half-way", Mode::Stall { down: MID_FIRST_ANSWER }),
        ("cut in the second request", Mode::Cut { up: MID_SECOND_REQUEST, down: usize::MAX }),
    ];
    let mut failures = Vec::new();
    for (what, mode) in faults {
        proxy.set_mode(mode);
        let conns = proxy.conns().len();
        let mark = w.sim.hooks()?.len();
        w.update_status()?;
        let longest = bounded(&w, mark, what)?;
        ensure!(proxy.conns().len() > conns, "{what}: the configured endpoint was not tried");
        let (status, message) = w.status(I0)?;
        eprintln!("f2: {what}: {status}: {message} (hook {longest:.1?})");
        ensure!(w.owned_fps()? == fps(&[&a]), "{what}: an entry was removed: {:?}", w.owned());
        ensure!(claims(&w, rel)? == before, "{what}: registered_certificates changed");
        ensure!(!w.nodes(rel, I0)?.is_empty(), "{what}: no node published");
        if let Err(e) = expect_active(&w, 1) {
            failures.push(format!("{what}: {e}"));
        }
        // Back to normal between faults, so each starts from a healthy charm.
        proxy.set_mode(Mode::Pass);
        w.update_status()?;
        expect_active(&w, 1)?;
    }
    ensure!(failures.is_empty(), "no failover to the known members:\n{}", failures.join("\n"));

    // A certificate sent while the configured endpoint is a black hole is trusted anyway.
    proxy.set_mode(Mode::BlackHole);
    let b = certs::client_cert("b")?;
    let mark = w.sim.hooks()?.len();
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem, &b.cert_pem])?;
    bounded(&w, mark, "new certificate during a black hole")?;
    ensure!(w.owned_fps()? == fps(&[&a, &b]), "{:?}", w.owned());
    ensure!(w.registered(rel, I0)?.len() == 2);
    proxy.set_mode(Mode::Pass);
    w.check()
}

// ---------------------------------------------------------------------------------------------
// 3. Credentials rotated, then trust revoked

fn f3_rotated_and_revoked(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("rotated-creds")?;
    let a = certs::client_cert("a")?;
    let rel = setup(&mut w, &a)?;

    // The operator rotates the integrator's own certificate: new one trusted, the cloud
    // credential updated, the old one removed from LXD. No hook in between: the next one
    // re-reads the credential.
    let old = w.identity.clone();
    let new = certs::client_cert("integrator-rotated")?;
    w.cluster().trust_add("e2e-integrator-rotated", &new.cert_pem)?;
    w.identity = new;
    let spec = w.cloud_spec();
    w.sim.set_cloud_spec(spec)?;
    w.cluster().trust_remove(&old.fingerprint)?;
    w.update_status()?;
    expect_active(&w, 1)?;
    // It can still change LXD with the new identity.
    let b = certs::client_cert("b")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem, &b.cert_pem])?;
    ensure!(w.owned_fps()? == fps(&[&a, &b]), "{:?}", w.owned());
    expect_active(&w, 2)?;

    // Trust revoked, no config fallback: blocked with the fix; LXD and the payload untouched,
    // even when the requirer withdraws a certificate meanwhile.
    let before = bags(&w, rel)?;
    w.sim.trust(INTEGRATOR, false)?;
    let blocked = "Missing credentials access; grant with: juju trust";
    expect_status(&w, "blocked", blocked)?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    w.update_status()?;
    expect_status(&w, "blocked", blocked)?;
    ensure!(w.owned_fps()? == fps(&[&a, &b]), "nothing removed while untrusted: {:?}", w.owned());
    ensure!(bags(&w, rel)? == before, "relation data changed while untrusted");

    // Trust granted again: the withdrawal is carried out.
    w.sim.trust(INTEGRATOR, true)?;
    expect_active(&w, 1)?;
    ensure!(w.owned_fps()? == fps(&[&a]), "{:?}", w.owned());

    // Neither identity's key may show anywhere.
    let current = std::mem::replace(&mut w.identity, old);
    let with_old = w.check();
    w.identity = current;
    with_old.context("with the rotated-out identity")?;
    w.check()
}

// ---------------------------------------------------------------------------------------------
// 4. A man in the middle

/// A TLS server on 127.0.0.1 presenting `identity` that hangs up on every request: there is no
/// answer to give, only what it saw to count. (The requirer library's scenarios point the test
/// requirer at it too.)
pub(crate) fn mitm(identity: &Pem) -> Result<TlsServer> {
    TlsServer::presenting(identity).script(|_| Reply::HangUp)
}

/// The CN of the certificate the charm pins (LXD's cluster certificate): `root@<host>`.
pub(crate) fn common_name(cert_pem: &str) -> Result<String> {
    let der = certs::pem_to_der(cert_pem)?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| anyhow!("parsing the cluster certificate: {e}"))?;
    let cn = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()).map(String::from);
    cn.ok_or_else(|| anyhow!("the cluster certificate has no CN"))
}

fn f4_man_in_the_middle(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("mitm")?;
    let a = certs::client_cert("a")?;
    let rel = setup(&mut w, &a)?;
    let before = bags(&w, rel)?;
    let cn = common_name(w.bed.cluster.cluster_cert_pem())?;
    let expired = certs::expired_cert(&cn)?;
    let variants: Vec<(&str, Pem, Option<String>)> = vec![
        ("a fresh self-signed certificate", certs::server_cert("impostor", &[])?, None),
        ("the pinned certificate's CN with another key", certs::same_cn_other_keys(&cn, 1)?.remove(0), None),
        ("an expired certificate", expired.clone(), None),
        // The server presents exactly the pinned certificate, but it has expired.
        ("the pinned certificate itself, expired", expired.clone(), Some(expired.cert_pem.clone())),
    ];
    // Control: a server the charm is told to pin does see the handshake and a request, so the
    // zero counts below are the refusal, not a blind server.
    let control_id = certs::server_cert("control", &[])?;
    let control = mitm(&control_id)?;
    let mut spec = w.cloud_spec();
    spec["endpoint"] = json!(control.url());
    spec["credential"]["attrs"]["server-cert"] = json!(control_id.cert_pem);
    w.sim.set_cloud_spec(spec)?;
    w.update_status()?;
    let log = control.settled();
    ensure!(log.handshakes_ok >= 1 && log.app_bytes > 0, "control server saw nothing: {log:?}");
    ensure!(w.owned_fps()? == fps(&[&a]), "control: {:?}", w.owned());
    ensure!(bags(&w, rel)? == before, "control: relation data changed");

    let b = certs::client_cert("b")?;
    for (i, (what, identity, pin)) in variants.into_iter().enumerate() {
        let mitm = mitm(&identity)?;
        let mut spec = w.cloud_spec();
        spec["endpoint"] = json!(mitm.url());
        if let Some(pin) = pin {
            spec["credential"]["attrs"]["server-cert"] = json!(pin);
        }
        w.sim.set_cloud_spec(spec)?;
        let mark = w.sim.hooks()?.len();
        w.update_status()?;
        if i == 0 {
            // A new certificate from the requirer meanwhile is not added through it.
            w.send(&unit(REQUIRER, 0), &[&a.cert_pem, &b.cert_pem])?;
        }
        bounded(&w, mark, what)?;
        expect_status(&w, "blocked", &format!("LXD server certificate mismatch at {}; check server-cert", mitm.url()))
            .with_context(|| what.to_string())?;
        let log = mitm.settled();
        ensure!(log.connections >= 1, "{what}: the charm never connected: {log:?}");
        ensure!(
            log.handshakes_ok == 0 && log.app_bytes == 0,
            "{what}: the server got a handshake or a request: {log:?}"
        );
        ensure!(w.owned_fps()? == fps(&[&a]), "{what}: {:?}", w.owned());
        ensure!(bags(&w, rel)? == before, "{what}: relation data changed");
        eprintln!("f4: {what}: blocked; {} connection(s), 0 handshakes, 0 bytes; {:?}", log.connections, log.errors);
    }
    // The real endpoint again: the pending certificate is added.
    let spec = w.cloud_spec();
    w.sim.set_cloud_spec(spec)?;
    w.update_status()?;
    ensure!(w.owned_fps()? == fps(&[&a, &b]), "{:?}", w.owned());
    ensure!(w.status(I0)?.0 == "active");
    w.check()
}

// ---------------------------------------------------------------------------------------------
// 5. An answer trickled for ever

/// `GET /1.0` answers at once; the trust store's answer starts at once and then comes a byte a
/// second for ever, so no read ever waits long. Only a deadline on the whole request ends it.
fn f5_trickled_answer(bed: &mut Bed) -> Result<()> {
    const TRICKLED_PATH: &str = "/1.0/certificates?recursion=1";
    let deadline = lxd_integrator::limits::LXD_REQUEST_DEADLINE;
    let fake = FakeLxd::start("4.0.9", LXD_4_0_EXTENSIONS)?;
    let mut w = bed.world("trickling-lxd")?;
    // A charm without the deadline would hang until the simulator's 300 s: fail sooner.
    w.sim.set_hook_timeout(HOOK_BOUND + Duration::from_secs(20));
    w.deploy_integrator(1, false)?;
    let spec = fake.cloud_spec(&w.identity);
    w.sim.set_cloud_spec(spec)?;
    w.sim.trust(INTEGRATOR, true)?;
    expect_status(&w, "active", "1/1 members online, 0 clients trusted")?;

    fake.trickle(TRICKLED_PATH, Duration::from_secs(1));
    let waiting = format!("LXD unreachable at {}; retrying", fake.endpoint());
    for round in 1..=2 {
        let asked = fake.requests().iter().filter(|r| r.path == TRICKLED_PATH).count();
        let mark = w.sim.hooks()?.len();
        w.update_status()?;
        let longest = bounded(&w, mark, "trickled answer")?;
        // Shorter would mean something other than the deadline ended the hook.
        ensure!(longest >= deadline, "update-status {round} took {longest:.1?}, under the {deadline:?} deadline");
        expect_status(&w, "waiting", &waiting).with_context(|| format!("update-status {round}"))?;
        let now_asked = fake.requests().iter().filter(|r| r.path == TRICKLED_PATH).count();
        ensure!(now_asked == asked + 1, "update-status {round} asked for the trust store {} times", now_asked - asked);
        eprintln!("f5: update-status {round}: waiting after {longest:.1?}");
    }
    let want = format!("timed out after {} s on {TRICKLED_PATH}", deadline.as_secs());
    let logs = w.sim.logs()?;
    ensure!(logs.iter().any(|l| l.message.contains(&want)), "no {want:?} in the log: {logs:#?}");
    let marker = String::from_utf8_lossy(TRICKLED).into_owned();
    ensure!(!logs.iter().any(|l| l.message.contains(&marker)), "the trickled bytes reached the log");
    ensure!(!w.status(I0)?.1.contains(&marker), "the trickled bytes reached the status");
    w.check()
}
