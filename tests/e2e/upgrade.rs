//! `juju refresh` from the Python charm (canonical/lxd-integrator-operator) to the packed charm:
//! a unit dir and an LXD trust store exactly as the Python charm leaves them, then
//! `upgrade-charm` and the `adopt` action, then the requirer leaves. And requirers moving from
//! charm-lxd's `https` relation: its `juju-relation-<app|unit>` entries adopted the same way.
//!
//! What the Python charm leaves (its `src/interface.py`, ops 2.8 `main.py`):
//! - `$JUJU_CHARM_DIR/client.crt`, `client.key`, `server.crt`, each created with mode 0600;
//! - `$JUJU_CHARM_DIR/.unit-state.db`, ops' SQLite `StoredState` holding the endpoint, client key
//!   and both certificates (mode 0644: ops made it 0600 only from 2.9; the charm pins 2.8.0);
//! - one `client` entry per requested certificate, added with `POST /1.0/certificates`
//!   `{"type": "client", "certificate": <PEM body>, "name": <subject CN>}`, never removed.
//!
//! jujusim's `upgrade_charm` runs `upgrade-charm`, `config-changed`, `start` in the unit's
//! existing charm dir, which is what Juju does once it has unpacked the new charm over the old:
//! files the old charm created at run time are still there.

use crate::bed::{Bed, I0, INTEGRATOR, REQUIRER, World, unit};
use crate::operator::{act, get};
use crate::packed::artifact;
use anyhow::{Context, Result, bail, ensure};
use jujusim::RelationId;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use testbed::certs::{self, Pem};

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        ("u1_refresh_from_the_python_charm_removes_its_files_and_adopt_takes_over_its_entries", u1_refresh_from_python),
        (
            "u2_moving_from_charm_lxd_adopt_takes_its_juju_relation_entries_and_leaves_an_operators_grant",
            u2_from_charm_lxd,
        ),
    ]
}

const LEFTOVERS: [&str; 4] = ["client.crt", "client.key", "server.crt", ".unit-state.db"];
/// The Python charm names entries by CN; two AMS units with the same CN get two entries of one name.
const CN: &str = "anbox-ams";
const OPERATOR_ENTRY: &str = "operator-laptop";
/// An operator's own grant for a certificate a requirer also sends: never adopted.
const OPS_ADMIN: &str = "ops-admin";

fn u1_refresh_from_python(bed: &mut Bed) -> Result<()> {
    let a = certs::client_cert(CN)?;
    let b = certs::client_cert(CN)?;
    let laptop = certs::client_cert("admin@laptop")?;
    let ops = certs::client_cert("ams-ops")?;
    let result = u1_inner(bed, &a, &b, &laptop, &ops);
    // Whatever happened: the shared trust store keeps none of this scenario's entries.
    forget(bed, &[&a, &b, &laptop, &ops])?;
    result
}

/// Removes the entries of `pems` from the shared trust store, whoever holds them.
fn forget(bed: &Bed, pems: &[&Pem]) -> Result<()> {
    for pem in pems {
        if bed.cluster.trust_list()?.iter().any(|e| e["fingerprint"] == json!(pem.fingerprint)) {
            bed.cluster.trust_remove(&pem.fingerprint)?;
        }
    }
    Ok(())
}

/// `POST /1.0/certificates` as the Python charm's `_register_cert` sends it.
fn register_as_python_charm(bed: &Bed, pem: &Pem) -> Result<()> {
    let body = json!({"type": "client", "certificate": pem.cert_base64(), "name": CN});
    bed.cluster.query("POST", "/1.0/certificates", Some(&body)).context("adding an entry as the Python charm does")?;
    Ok(())
}

fn write_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// (name, restricted, projects) of the entry for `fp`.
fn entry(w: &World, fp: &str) -> Result<Option<(String, bool, Value)>> {
    let found = w.bed.cluster.trust_list()?.into_iter().find(|e| e["fingerprint"] == json!(fp));
    Ok(found
        .map(|e| (e["name"].as_str().unwrap_or("").to_string(), e["restricted"] == json!(true), e["projects"].clone())))
}

fn u1_inner(bed: &mut Bed, a: &Pem, b: &Pem, laptop: &Pem, ops: &Pem) -> Result<()> {
    let charm = artifact(bed)?;
    let dir = bed.work.join("unpacked-upgrade");
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new("unzip").arg("-q").arg(&charm).arg("-d").arg(&dir).output().context("running unzip")?;
    if !out.status.success() {
        bail!("unzip {}: {}", charm.display(), String::from_utf8_lossy(&out.stderr));
    }

    // The trust store as the Python charm left it, an operator's own entry, and an
    // operator's grant for a certificate req/1 also sends (the Python charm's POST of it was
    // answered "already in trust store", so the grant kept its name).
    register_as_python_charm(bed, a)?;
    register_as_python_charm(bed, b)?;
    bed.cluster.trust_add(OPERATOR_ENTRY, &laptop.cert_pem)?;
    bed.cluster.trust_add(OPS_ADMIN, &ops.cert_pem)?;

    let mut w = bed.world("upgrade")?;
    w.charm_override = Some(dir);
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(2)?;
    let rel = w.relate()?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    w.send(&unit(REQUIRER, 1), &[&b.cert_pem, &ops.cert_pem])?;
    // Foreign to this charm: counted as trusted, never claimed, nothing added alongside.
    ensure!(w.owned()?.is_empty(), "{:?}", w.owned());
    for pem in [a, b] {
        ensure!(entry(&w, &pem.fingerprint)?.is_some_and(|e| e.0 == CN), "{:?}", entry(&w, &pem.fingerprint));
    }
    ensure!(w.registered(rel, I0)?.len() == 3);
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active"
            && message.ends_with("3 clients trusted; 3 held by entries not ours, 2 adoptable (run adopt)"),
        "{status}: {message}"
    );

    // The unit dir as the Python charm left it (its credentials, as `credential-get` gave them).
    let unit_dir = w.sim.unit_dir(I0)?;
    let spec = w.cloud_spec();
    let attrs = &spec["credential"]["attrs"];
    let text = |k: &str| attrs[k].as_str().unwrap_or("").to_string();
    write_mode(&unit_dir.join("client.crt"), text("client-cert").as_bytes(), 0o600)?;
    write_mode(&unit_dir.join("client.key"), text("client-key").as_bytes(), 0o600)?;
    write_mode(&unit_dir.join("server.crt"), text("server-cert").as_bytes(), 0o600)?;
    let mut db = b"SQLite format 3\0".to_vec();
    db.extend(serde_json::to_vec(&json!({"endpoint": spec["endpoint"], "client_cert": text("client-cert"), "client_key": text("client-key"), "server_cert": text("server-cert")}))?);
    write_mode(&unit_dir.join(".unit-state.db"), &db, 0o644)?;
    let shipped: BTreeSet<String> = std::fs::read_dir(&unit_dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !LEFTOVERS.contains(&n.as_str()))
        .collect();
    // The scenario's own check sees them: it must pass only because they are gone.
    let seen = w.check().err().map(|e| format!("{e:#}")).unwrap_or_default();
    ensure!(seen.contains("key material on disk"), "the leftovers are visible to the check: {seen:?}");

    // juju refresh → upgrade-charm, config-changed, start.
    let logs_before = w.sim.logs()?.len();
    w.sim.upgrade_charm(INTEGRATOR)?;
    for name in LEFTOVERS {
        ensure!(!unit_dir.join(name).exists(), "{name} left in the charm dir after upgrade-charm");
    }
    let now: BTreeSet<String> =
        std::fs::read_dir(&unit_dir)?.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
    ensure!(now == shipped, "only the leftovers went: {:?} vs {:?}", now, shipped);
    let upgrade_logs: Vec<_> = w.sim.logs()?.into_iter().skip(logs_before).filter(|l| l.unit == I0).collect();
    let want = "removed files the Python lxd-integrator charm left in the charm dir: client.crt, client.key, server.crt, .unit-state.db";
    ensure!(
        upgrade_logs.iter().any(|l| l.level == "INFO" && l.hook == "upgrade-charm" && l.message == want),
        "{upgrade_logs:#?}"
    );
    ensure!(
        upgrade_logs.iter().filter(|l| l.message.contains("removed files")).count() == 1,
        "logged once: {upgrade_logs:#?}"
    );
    ensure!(w.status(I0)?.0 == "active");
    // Refreshing changes no trust entry: that is the operator's call, through `adopt`.
    ensure!(w.owned()?.is_empty(), "{:?}", w.owned());

    // adopt, dry run (the default): the two CN-named entries, and the operator's grant left
    // with the reason; nothing changes.
    let names = |u: u32| format!("juju.{}.{INTEGRATOR}.{rel}.{REQUIRER}.{u}", w.sim.model_uuid());
    let want: BTreeMap<String, (String, String)> = [
        (a.fingerprint.clone(), (names(0), unit(REQUIRER, 0))),
        (b.fingerprint.clone(), (names(1), unit(REQUIRER, 1))),
    ]
    .into();
    let store_before = w.bed.cluster.trust_list()?;
    let r = act(&mut w, I0, "adopt", json!({}))?;
    ensure!(get(&r, "dry-run")? == "yes" && get(&r, "count")? == "2", "{r:#?}");
    let listed = |r: &BTreeMap<String, String>, result: &str| -> Result<BTreeMap<String, (String, String)>> {
        let mut out = BTreeMap::new();
        for i in 0..2 {
            let k = |f: &str| format!("entries.{i}.{f}");
            ensure!(
                get(r, &k("old-name"))? == CN && get(r, &k("why"))?.starts_with("named by the certificate's CN"),
                "{r:#?}"
            );
            ensure!(get(r, &k("result"))? == result && get(r, &k("relation"))? == rel.to_string(), "{r:#?}");
            out.insert(
                get(r, &k("fingerprint"))?.to_string(),
                (get(r, &k("new-name"))?.to_string(), get(r, &k("unit"))?.to_string()),
            );
        }
        Ok(out)
    };
    ensure!(listed(&r, "would rename")? == want, "{r:#?}");
    ensure!(
        !r.values().any(|v| v.contains(&laptop.fingerprint) || v.contains(OPERATOR_ENTRY)),
        "an entry nobody asks for is not listed: {r:#?}"
    );
    left_alone(&r, &ops.fingerprint, &unit(REQUIRER, 1))?;
    ensure!(w.bed.cluster.trust_list()? == store_before, "a dry run changed LXD's trust store");

    // For real, on the leader: renamed in place, restrictions as they were.
    let r = act(&mut w, I0, "adopt", json!({"dry-run": false}))?;
    ensure!(get(&r, "dry-run")? == "no" && get(&r, "renamed")? == "2" && get(&r, "failed")? == "0", "{r:#?}");
    ensure!(listed(&r, "renamed")? == want, "{r:#?}");
    let owned: BTreeMap<String, String> = w.owned()?.into_iter().map(|(name, fp)| (fp, name)).collect();
    ensure!(owned == want.iter().map(|(fp, (name, _))| (fp.clone(), name.clone())).collect(), "{owned:#?}");
    for pem in [a, b] {
        let e = entry(&w, &pem.fingerprint)?.context("still trusted")?;
        ensure!(!e.1, "restrictions kept: {e:?}");
    }
    for (pem, name) in [(laptop, OPERATOR_ENTRY), (ops, OPS_ADMIN)] {
        ensure!(
            entry(&w, &pem.fingerprint)? == Some((name.into(), false, json!([]))),
            "{:?}",
            entry(&w, &pem.fingerprint)
        );
    }
    let info: Vec<String> =
        w.sim.logs()?.into_iter().filter(|l| l.unit == I0 && l.level == "INFO").map(|l| l.message).collect();
    for pem in [a, b] {
        let want = format!("trust: adopted {} for ", &pem.fingerprint[..12]);
        ensure!(
            info.iter().any(|l| l.lines().any(|l| l.starts_with(&want) && l.ends_with(&format!("named \"{CN}\"")))),
            "{want:?} in {info:#?}"
        );
    }
    let r = act(&mut w, I0, "adopt", json!({"dry-run": false}))?;
    ensure!(get(&r, "count")? == "0", "nothing left to adopt: {r:#?}");
    left_alone(&r, &ops.fingerprint, &unit(REQUIRER, 1))?;
    w.update_status()?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && message.ends_with("3 clients trusted; 1 held by entries not ours"),
        "adopt is no longer advised: {status}: {message}"
    );

    // The requirer leaves: the adopted entries go with it; the operator's stay as they were.
    w.sim.unrelate(rel)?;
    for pem in [a, b] {
        ensure!(
            entry(&w, &pem.fingerprint)?.is_none(),
            "{} still trusted after the relation left",
            &pem.fingerprint[..12]
        );
    }
    for (pem, name) in [(laptop, OPERATOR_ENTRY), (ops, OPS_ADMIN)] {
        ensure!(
            entry(&w, &pem.fingerprint)? == Some((name.into(), false, json!([]))),
            "{:?}",
            entry(&w, &pem.fingerprint)
        );
    }
    w.check()
}

/// `r` (adopt's results) lists the operator's grant `OPS_ADMIN` for `fp`, asked for by
/// `member`, as left, and says why.
fn left_alone(r: &BTreeMap<String, String>, fp: &str, member: &str) -> Result<()> {
    ensure!(get(r, "left.count")? == "1", "{r:#?}");
    ensure!(
        get(r, "left.0.fingerprint")? == fp && get(r, "left.0.name")? == OPS_ADMIN && get(r, "left.0.unit")? == member,
        "{r:#?}"
    );
    ensure!(get(r, "left.0.why")?.starts_with("not named as an old charm named its entries"), "{r:#?}");
    Ok(())
}

/// The https requirer (tests/https-requirer-charm) deployed twice: as the gateway, writing its
/// application databag too, and as charm-lxd's https-client, writing unit databags only.
const GATEWAY: &str = "gw";
const HTTPS_CLIENT: &str = "hc";

fn u2_from_charm_lxd(bed: &mut Bed) -> Result<()> {
    let gw = certs::client_cert("openshell-gateway")?;
    let hc0 = certs::client_cert("hc-0")?;
    let hc1 = certs::client_cert("hc-1")?;
    let result = u2_inner(bed, &gw, &hc0, &hc1);
    forget(bed, &[&gw, &hc0, &hc1])?;
    result
}

fn u2_inner(bed: &mut Bed, gw: &Pem, hc0: &Pem, hc1: &Pem) -> Result<()> {
    // The trust store as charm-lxd's `https` relation left it (`cert_name =
    // f"juju-relation-{bag.name}"`: the application when its databag said version 1.0, else
    // the unit; LXD 5.0 and Incus 6.0 take a `/`), and an operator's grant for the
    // certificate hc/1 sends.
    bed.cluster.trust_add(&format!("juju-relation-{GATEWAY}"), &gw.cert_pem)?;
    bed.cluster.trust_add(&format!("juju-relation-{HTTPS_CLIENT}/0"), &hc0.cert_pem)?;
    bed.cluster.trust_add(OPS_ADMIN, &hc1.cert_pem)?;

    let mut w = bed.world("from-charm-lxd")?;
    w.deploy_integrator(1, true)?;
    let dir = crate::https::requirer_dir()?;
    w.sim.deploy(GATEWAY, &dir, 1)?;
    w.sim.set_config(GATEWAY, &[("mode", Some(json!("both")))])?;
    w.sim.deploy(HTTPS_CLIENT, &dir, 2)?;
    // The identities they had with charm-lxd, before they relate to this charm.
    for (member, pem) in [(unit(GATEWAY, 0), gw), (unit(HTTPS_CLIENT, 0), hc0), (unit(HTTPS_CLIENT, 1), hc1)] {
        crate::https::req_action(&mut w, &member, "use-identity", json!({"cert": pem.cert_pem, "key": pem.key_pem}))?;
    }
    let gw_rel = w.sim.relate(&format!("{INTEGRATOR}:https"), &format!("{GATEWAY}:https"))?;
    let hc_rel = w.sim.relate(&format!("{INTEGRATOR}:https"), &format!("{HTTPS_CLIENT}:https"))?;
    ensure!(w.owned()?.is_empty(), "nothing added beside entries not ours: {:?}", w.owned());
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active"
            && message.ends_with("3 clients trusted; 3 held by entries not ours, 2 adoptable (run adopt)"),
        "{status}: {message}"
    );

    let ours = |rel: RelationId, app: &str, member: &str| {
        format!("juju.{}.{INTEGRATOR}.https.{rel}.{app}.{member}", w.sim.model_uuid())
    };
    // (fingerprint, (old name, new name, unit)), in request order.
    type Rows = Vec<(String, (String, String, String))>;
    let want: Rows = vec![
        (
            gw.fingerprint.clone(),
            (format!("juju-relation-{GATEWAY}"), ours(gw_rel, GATEWAY, "app"), GATEWAY.to_string()),
        ),
        (
            hc0.fingerprint.clone(),
            (format!("juju-relation-{HTTPS_CLIENT}/0"), ours(hc_rel, HTTPS_CLIENT, "0"), unit(HTTPS_CLIENT, 0)),
        ),
    ];
    let listed = |r: &BTreeMap<String, String>, result: &str| -> Result<Rows> {
        let mut out = Vec::new();
        for i in 0..2 {
            let k = |f: &str| format!("entries.{i}.{f}");
            ensure!(get(r, &k("result"))? == result && get(r, &k("endpoint"))? == "https", "{r:#?}");
            ensure!(get(r, &k("why"))?.starts_with("named juju-relation-<requirer>"), "{r:#?}");
            let row = (get(r, &k("old-name"))?.into(), get(r, &k("new-name"))?.into(), get(r, &k("unit"))?.into());
            out.push((get(r, &k("fingerprint"))?.to_string(), row));
        }
        Ok(out)
    };
    let store_before = w.bed.cluster.trust_list()?;
    let r = act(&mut w, I0, "adopt", json!({}))?;
    ensure!(get(&r, "dry-run")? == "yes" && get(&r, "count")? == "2", "{r:#?}");
    ensure!(listed(&r, "would rename")? == want, "{r:#?}");
    left_alone(&r, &hc1.fingerprint, &unit(HTTPS_CLIENT, 1))?;
    ensure!(w.bed.cluster.trust_list()? == store_before, "a dry run changed LXD's trust store");

    let r = act(&mut w, I0, "adopt", json!({"dry-run": false}))?;
    ensure!(get(&r, "renamed")? == "2" && get(&r, "failed")? == "0", "{r:#?}");
    ensure!(listed(&r, "renamed")? == want, "{r:#?}");
    let owned: BTreeSet<(String, String)> = w.owned()?.into_iter().map(|(name, fp)| (fp, name)).collect();
    ensure!(owned == want.iter().map(|(fp, (_, name, _))| (fp.clone(), name.clone())).collect(), "{owned:#?}");
    ensure!(
        entry(&w, &hc1.fingerprint)? == Some((OPS_ADMIN.into(), false, json!([]))),
        "{:?}",
        entry(&w, &hc1.fingerprint)
    );
    w.update_status()?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "active" && message.ends_with("3 clients trusted; 1 held by entries not ours"),
        "adopt is no longer advised: {status}: {message}"
    );

    // Both leave: the adopted entries go with them; the operator's grant stays as it was.
    w.sim.unrelate(gw_rel)?;
    w.sim.unrelate(hc_rel)?;
    for pem in [gw, hc0] {
        ensure!(
            entry(&w, &pem.fingerprint)?.is_none(),
            "{} still trusted after its relation left",
            &pem.fingerprint[..12]
        );
    }
    ensure!(
        entry(&w, &hc1.fingerprint)? == Some((OPS_ADMIN.into(), false, json!([]))),
        "{:?}",
        entry(&w, &hc1.fingerprint)
    );
    w.check()
}
