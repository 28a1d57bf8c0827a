//! The operator's view: actions (`list-nodes`, `list-trusted-clients`, `reconcile` with and
//! without `dry-run`, `check-connection`), `trust-projects` against a real cluster and against
//! an LXD without `certificate_project` (a fake), and what status and `juju debug-log` say.

use crate::bed::{Bed, INTEGRATOR, MEMBERS, REQUIRER, World, unit};
use crate::fake_lxd::{FakeLxd, LXD_4_0_EXTENSIONS};
use anyhow::{Context, Result, bail, ensure};
use jujusim::ActionResult;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use testbed::certs;

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![
        ("o1_actions_list_nodes_clients_and_check_the_connection_and_only_the_leader_writes", o1_actions),
        ("o2_reconcile_dry_run_shows_the_plan_and_leaves_lxd_unchanged", o2_dry_run),
        ("o3_trust_projects_restrict_entries_and_converge_both_ways", o3_trust_projects),
        ("o4_trust_projects_on_an_lxd_without_certificate_project_adds_nothing", o4_no_certificate_project),
    ]
}

const I0: &str = "lxd-integrator/0";

fn short(fp: &str) -> &str {
    &fp[..12]
}

/// An action's results flattened to `a.b.c = value`, after checking that every key is one Juju
/// accepts and every value is a readable one-line string.
pub fn flat(r: &ActionResult) -> Result<BTreeMap<String, String>> {
    fn walk(v: &Value, prefix: &str, out: &mut BTreeMap<String, String>) -> Result<()> {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let b = k.as_bytes();
                    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
                    ensure!(
                        !b.is_empty()
                            && alnum(&b[0])
                            && alnum(&b[b.len() - 1])
                            && b.iter().all(|c| alnum(c) || *c == b'-'),
                        "invalid action key {k:?} under {prefix:?}"
                    );
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(v, &key, out)?;
                }
            }
            Value::String(s) => {
                ensure!(!s.contains('\n') && !s.contains("BEGIN"), "{prefix} is not a one-line readable value: {s:?}");
                out.insert(prefix.to_string(), s.clone());
            }
            other => bail!("{prefix}: not a string: {other}"),
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(&r.results, "", &mut out)?;
    Ok(out)
}

/// Runs an action that must complete; returns its flattened results.
pub fn act(w: &mut World, unit: &str, name: &str, params: Value) -> Result<BTreeMap<String, String>> {
    let r = w.sim.run_action(unit, name, params)?;
    ensure!(r.status == "completed", "{name} on {unit}: {} {:?} {}", r.status, r.message, r.stderr);
    flat(&r)
}

pub fn get<'a>(m: &'a BTreeMap<String, String>, k: &str) -> Result<&'a str> {
    m.get(k).map(String::as_str).with_context(|| format!("no {k} in {m:#?}"))
}

/// The values of `prefix.N.field` for every N.
fn column(m: &BTreeMap<String, String>, prefix: &str, field: &str) -> Vec<String> {
    m.iter()
        .filter(|(k, _)| {
            k.starts_with(&format!("{prefix}.")) && k.ends_with(&format!(".{field}")) && k.split('.').count() == 3
        })
        .map(|(_, v)| v.clone())
        .collect()
}

/// Log lines of `unit` at `level`.
fn logs(w: &World, unit: &str, level: &str) -> Result<Vec<String>> {
    Ok(w.sim.logs()?.into_iter().filter(|l| l.unit == unit && l.level == level).map(|l| l.message).collect())
}

fn trust_lines(w: &World) -> Result<usize> {
    Ok(w.sim.logs()?.iter().map(|l| l.message.lines().filter(|m| m.starts_with("trust: ")).count()).sum())
}

/// LXD's own record of a fingerprint.
fn entry(w: &World, fp: &str) -> Result<Option<Value>> {
    Ok(w.bed.cluster.trust_list()?.into_iter().find(|e| e["fingerprint"] == json!(fp)))
}

fn restriction(w: &World, fp: &str) -> Result<(bool, BTreeSet<String>)> {
    let e = entry(w, fp)?.with_context(|| format!("{} not in LXD's trust store", short(fp)))?;
    let projects =
        e["projects"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(String::from)).collect();
    Ok((e["restricted"] == json!(true), projects))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn o1_actions(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("op-actions")?;
    w.deploy_integrator(2, true)?;
    w.deploy_requirer(2)?;
    let rel = w.relate()?;
    let a = certs::client_cert("op-a")?;
    let b = certs::client_cert("op-b")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    w.send_raw(&unit(REQUIRER, 1), &json!([b.cert_pem, "junk"]).to_string())?;
    ensure!(w.owned_fps()? == set(&[&a.fingerprint, &b.fingerprint]), "{:?}", w.owned());
    let i1 = unit(INTEGRATOR, 1);

    // list-nodes: every member, on the leader and on a follower alike.
    let names: BTreeSet<String> = w.bed.cluster.member_names().into_iter().collect();
    let endpoints: BTreeSet<String> = w.bed.cluster.endpoints().iter().map(|e| format!("https://{e}")).collect();
    for u in [I0, i1.as_str()] {
        let r = act(&mut w, u, "list-nodes", json!({}))?;
        ensure!(get(&r, "count")? == MEMBERS.to_string(), "{r:#?}");
        ensure!(column(&r, "nodes", "name").into_iter().collect::<BTreeSet<_>>() == names, "{r:#?}");
        ensure!(column(&r, "nodes", "endpoint").into_iter().collect::<BTreeSet<_>>() == endpoints, "{r:#?}");
        ensure!(column(&r, "nodes", "status") == vec!["Online"; MEMBERS], "{r:#?}");
        ensure!(column(&r, "nodes", "published") == vec!["yes"; MEMBERS], "{r:#?}");
        ensure!(column(&r, "nodes", "message").iter().all(|m| !m.is_empty()), "LXD's member message: {r:#?}");
    }

    // list-trusted-clients: the owned entries with their owners, and the invalid input.
    let r = act(&mut w, I0, "list-trusted-clients", json!({}))?;
    ensure!(get(&r, "count")? == "2", "{r:#?}");
    let owned: BTreeMap<String, String> = w.owned()?.into_iter().map(|(name, fp)| (fp, name)).collect();
    for i in 0..2 {
        let k = |f: &str| format!("clients.{i}.{f}");
        let fp = get(&r, &k("fingerprint"))?;
        ensure!(
            owned.get(fp).map(String::as_str) == Some(get(&r, &k("name"))?),
            "clients.{i} names LXD's entry: {r:#?}"
        );
        let want_unit = if fp == a.fingerprint { unit(REQUIRER, 0) } else { unit(REQUIRER, 1) };
        ensure!(get(&r, &k("unit"))? == want_unit, "{r:#?}");
        ensure!(get(&r, &k("relation"))? == rel.to_string(), "{r:#?}");
        ensure!(get(&r, &k("restricted"))? == "no" && get(&r, &k("projects"))?.is_empty(), "{r:#?}");
    }
    ensure!(!r.keys().any(|k| k.starts_with("missing.")), "nothing is missing: {r:#?}");
    ensure!(get(&r, "invalid.0.unit")? == unit(REQUIRER, 1), "{r:#?}");
    ensure!(get(&r, "invalid.0.reason")?.contains("not a PEM certificate"), "{r:#?}");

    // check-connection: what the charm talks to.
    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(get(&r, "endpoint")? == format!("https://{}", w.bed.cluster.endpoint(0)), "{r:#?}");
    ensure!(get(&r, "trusted")? == "yes" && get(&r, "clustered")? == "yes", "{r:#?}");
    ensure!(names.contains(get(&r, "server-name")?), "{r:#?}");
    let version = w.bed.cluster.server_version()?;
    ensure!(get(&r, "server-version")? == version, "{r:#?}");
    ensure!(get(&r, "missing-extensions")? == "none", "{r:#?}");
    ensure!(!r.contains_key("error"), "{r:#?}");

    // Only the leader writes: a follower refuses reconcile, but may dry-run it.
    let refused = w.sim.run_action(&i1, "reconcile", json!({}))?;
    ensure!(refused.status == "failed", "{refused:?}");
    let message = refused.message.clone().unwrap_or_default();
    ensure!(message.contains("only the leader") && message.contains("leader unit"), "{message}");
    flat(&refused)?;
    let r = act(&mut w, &i1, "reconcile", json!({"dry-run": true}))?;
    ensure!(get(&r, "dry-run")? == "yes" && get(&r, "added.count")? == "0", "{r:#?}");
    // The leader in steady state: nothing to do, and it says so.
    let r = act(&mut w, I0, "reconcile", json!({}))?;
    ensure!(get(&r, "dry-run")? == "no", "{r:#?}");
    for k in ["added.count", "removed.count", "restricted.count"] {
        ensure!(get(&r, k)? == "0", "{k}: {r:#?}");
    }
    ensure!(
        get(&r, "status")?.starts_with(&format!("active: {MEMBERS}/{MEMBERS} members online, 2 clients trusted")),
        "{r:#?}"
    );

    // debug-log: each change at INFO with fingerprint and owner; the version from LXD.
    let info = logs(&w, I0, "INFO")?;
    for (pem, u) in [(&a, 0), (&b, 1)] {
        let want = format!("trust: added {} for req/{u} (relation {rel})", short(&pem.fingerprint));
        ensure!(info.iter().any(|l| l.lines().any(|l| l == want)), "no {want:?} in {info:#?}");
    }
    ensure!(w.sim.app_version(INTEGRATOR)? == version, "application version");
    w.check()
}

fn o2_dry_run(bed: &mut Bed) -> Result<()> {
    let mut w = bed.world("op-dry-run")?;
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("op-dry-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    let names_before = w.owned()?;
    ensure!(names_before.len() == 1, "{names_before:?}");

    // An operator deletes the entry by hand; an owned entry of a relation long gone lingers.
    let fp_a = a.fingerprint.clone();
    w.cluster().trust_remove(&fp_a)?;
    let stale = certs::client_cert("op-dry-stale")?;
    let stale_name = format!("juju.{}.{INTEGRATOR}.99.gone.0", w.sim.model_uuid());
    w.cluster().trust_add(&stale_name, &stale.cert_pem)?;
    let store_before = w.bed.cluster.trust_list()?;
    let status_before = w.status(I0)?;
    let lines_before = trust_lines(&w)?;

    let r = act(&mut w, I0, "reconcile", json!({"dry-run": true}))?;
    ensure!(get(&r, "dry-run")? == "yes", "{r:#?}");
    ensure!(
        get(&r, "added.count")? == "1" && get(&r, "added.entries")? == format!("{} (req/0)", short(&fp_a)),
        "{r:#?}"
    );
    ensure!(
        get(&r, "removed.count")? == "1"
            && get(&r, "removed.entries")? == format!("{} (gone/0)", short(&stale.fingerprint)),
        "{r:#?}"
    );
    ensure!(get(&r, "restricted.count")? == "0", "{r:#?}");
    // Nothing changed: LXD, the status, the log.
    ensure!(w.bed.cluster.trust_list()? == store_before, "a dry run changed LXD's trust store");
    ensure!(!w.store_fps()?.contains(&fp_a), "the dry run re-added the entry");
    ensure!(w.status(I0)? == status_before, "a dry run changed the status");
    ensure!(trust_lines(&w)? == lines_before, "a dry run logged a change");

    let r = act(&mut w, I0, "reconcile", json!({"dry-run": false}))?;
    ensure!(get(&r, "dry-run")? == "no", "{r:#?}");
    ensure!(get(&r, "added.count")? == "1" && get(&r, "removed.count")? == "1", "{r:#?}");
    ensure!(!get(&r, "added.entries")?.contains("failed"), "{r:#?}");
    ensure!(w.owned()? == names_before, "re-added under the same name: {:?}", w.owned());
    ensure!(!w.store_fps()?.contains(&stale.fingerprint), "the orphan is gone");
    ensure!(w.registered(rel, I0)? == std::slice::from_ref(&a.cert_pem));
    let info = logs(&w, I0, "INFO")?;
    for want in [
        format!("trust: added {} for req/0 (relation {rel})", short(&fp_a)),
        format!("trust: removed {} for gone/0 (relation 99)", short(&stale.fingerprint)),
    ] {
        ensure!(info.iter().any(|l| l.lines().any(|l| l == want)), "no {want:?} in {info:#?}");
    }
    // And now there is nothing left to do.
    let r = act(&mut w, I0, "reconcile", json!({"dry-run": true}))?;
    ensure!(get(&r, "added.count")? == "0" && get(&r, "removed.count")? == "0", "{r:#?}");
    w.check()
}

const PROJECTS: [&str; 2] = ["op-p1", "op-p2"];

fn o3_trust_projects(bed: &mut Bed) -> Result<()> {
    for p in PROJECTS {
        bed.cluster.lxc(&["project", "create", p])?;
    }
    let result = o3_inner(bed);
    for p in PROJECTS {
        let deleted = bed.cluster.lxc(&["project", "delete", p]);
        if result.is_ok() {
            deleted.with_context(|| format!("deleting project {p}"))?;
        }
    }
    result
}

fn o3_inner(bed: &mut Bed) -> Result<()> {
    let [p1, p2] = PROJECTS;
    let mut w = bed.world("op-projects")?;
    w.deploy_integrator(1, true)?;
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(format!("{p1}, {p2}"))))])?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("op-proj-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    let fp = a.fingerprint.clone();
    ensure!(restriction(&w, &fp)? == (true, set(&[p1, p2])), "added restricted: {:?}", entry(&w, &fp));
    let r = act(&mut w, I0, "list-trusted-clients", json!({}))?;
    ensure!(get(&r, "clients.0.restricted")? == "yes", "{r:#?}");
    ensure!(get(&r, "clients.0.projects")?.split(',').collect::<BTreeSet<_>>() == [p1, p2].into(), "{r:#?}");
    let owner = format!("req/0 (relation {rel})");
    let updated = format!("trust: updated restrictions of {} for {owner}", short(&fp));

    // Restricted → other projects → unrestricted → restricted again, each by the config alone.
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(p2)))])?;
    ensure!(restriction(&w, &fp)? == (true, set(&[p2])), "{:?}", entry(&w, &fp));
    w.sim.set_config(INTEGRATOR, &[("trust-projects", None)])?;
    ensure!(restriction(&w, &fp)? == (false, set(&[])), "{:?}", entry(&w, &fp));
    ensure!(
        act(&mut w, I0, "list-trusted-clients", json!({}))?.get("clients.0.restricted").map(String::as_str)
            == Some("no")
    );
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(p1)))])?;
    ensure!(restriction(&w, &fp)? == (true, set(&[p1])), "{:?}", entry(&w, &fp));
    let info = logs(&w, I0, "INFO")?;
    let n = info.iter().flat_map(|l| l.lines()).filter(|l| *l == updated).count();
    ensure!(n == 3, "{n} x {updated:?} in {info:#?}");
    ensure!(w.owned()?.len() == 1, "converged in place, no new entries: {:?}", w.owned());
    ensure!(w.status(I0)?.0 == "active");

    // A project LXD does not have: named by its place in the option (a config value is never
    // repeated) in the status and the log; nothing created or changed, whether LXD refuses
    // re-restricting an owned entry or adding a new one.
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(format!("{p1},op-nope"))))])?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message.contains(": entry 2 of 2") && !message.contains("op-nope"),
        "{status}: {message}"
    );
    ensure!(restriction(&w, &fp)? == (true, set(&[p1])), "the existing entry kept its projects: {:?}", entry(&w, &fp));
    let b = certs::client_cert("op-proj-b")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem, &b.cert_pem])?;
    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked"
            && message == "trust-projects names a project LXD does not have: entry 2 of 2 (Project not found)",
        "{status}: {message}"
    );
    ensure!(!w.store_fps()?.contains(&b.fingerprint), "nothing created for an unknown project");
    ensure!(restriction(&w, &fp)? == (true, set(&[p1])), "{:?}", entry(&w, &fp));
    let errors: Vec<String> =
        logs(&w, I0, "ERROR")?.iter().flat_map(|l| l.lines().map(String::from).collect::<Vec<_>>()).collect();
    ensure!(
        errors.iter().any(|l| l.contains("trust-projects names a project LXD does not have: entry 2 of 2")),
        "the unknown project in the log: {errors:#?}"
    );
    let add_failed = format!(
        "trust: failed to add {} for {owner}: LXD POST /1.0/certificates failed (404): Project not found",
        short(&b.fingerprint)
    );
    ensure!(errors.contains(&add_failed), "LXD's answer in the log: {errors:#?}");
    ensure!(
        errors.iter().any(|l| l.starts_with(&format!("trust: failed to update {} for {owner}: ", short(&fp)))
            && l.ends_with("Project not found")),
        "{errors:#?}"
    );
    let r = act(&mut w, I0, "list-trusted-clients", json!({}))?;
    // The action observes without writing, so it cannot know LXD's answer: it points to the log.
    ensure!(
        get(&r, "missing.0.fingerprint")? == b.fingerprint && get(&r, "missing.0.reason")?.contains("debug-log"),
        "{r:#?}"
    );

    // Fixed: the new certificate goes in, restricted.
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!(p1)))])?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message.ends_with("2 clients trusted"), "{status}: {message}");
    ensure!(restriction(&w, &b.fingerprint)? == (true, set(&[p1])), "{:?}", entry(&w, &b.fingerprint));
    w.check()
}

fn o4_no_certificate_project(bed: &mut Bed) -> Result<()> {
    let fake = FakeLxd::start("4.0.9", LXD_4_0_EXTENSIONS)?;
    let mut w = bed.world("op-lxd4")?;
    w.deploy_integrator(1, false)?;
    let spec = fake.cloud_spec(&w.identity);
    w.sim.set_cloud_spec(spec)?;
    w.sim.set_config(INTEGRATOR, &[("trust-projects", Some(json!("default")))])?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("op-lxd4-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    w.sim.trust(INTEGRATOR, true)?;
    w.update_status()?;

    let (status, message) = w.status(I0)?;
    ensure!(
        status == "blocked" && message.contains("certificate_project") && message.contains("trust-projects"),
        "{status}: {message}"
    );
    let requests = fake.requests();
    ensure!(
        requests.iter().any(|r| r.method == "GET" && r.path == "/1.0"),
        "the charm talked to the fake: {requests:?}"
    );
    ensure!(requests.iter().any(|r| r.method == "GET" && r.path == "/1.0/certificates?recursion=1"), "{requests:?}");
    let writes: Vec<_> = requests.iter().filter(|r| r.method != "GET").collect();
    ensure!(writes.is_empty(), "an LXD without certificate_project must get no write: {writes:?}");
    ensure!(w.registered(rel, I0)?.is_empty(), "nothing claimed as registered");

    let r = act(&mut w, I0, "check-connection", json!({}))?;
    ensure!(get(&r, "endpoint")? == fake.endpoint() && get(&r, "trusted")? == "yes", "{r:#?}");
    ensure!(get(&r, "server-version")? == "4.0.9" && get(&r, "clustered")? == "no", "{r:#?}");
    ensure!(get(&r, "missing-extensions")? == "certificate_project", "{r:#?}");
    let r = act(&mut w, I0, "list-trusted-clients", json!({}))?;
    ensure!(get(&r, "count")? == "0", "{r:#?}");
    ensure!(get(&r, "missing.0.fingerprint")? == a.fingerprint, "{r:#?}");
    ensure!(get(&r, "missing.0.reason")?.contains("certificate_project"), "{r:#?}");
    let r = act(&mut w, I0, "reconcile", json!({}))?;
    ensure!(get(&r, "added.count")? == "0" && get(&r, "status")?.starts_with("blocked: "), "{r:#?}");
    let r = act(&mut w, I0, "list-nodes", json!({}))?;
    ensure!(
        get(&r, "count")? == "1"
            && get(&r, "nodes.0.endpoint")? == fake.endpoint()
            && get(&r, "nodes.0.published")? == "yes",
        "{r:#?}"
    );
    ensure!(fake.requests().iter().all(|r| r.method == "GET"), "still no write after the actions");
    ensure!(w.sim.app_version(INTEGRATOR)? == "4.0.9", "application version from the fake");

    // Without trust-projects the same LXD is fine: the certificate goes in, unrestricted.
    w.sim.set_config(INTEGRATOR, &[("trust-projects", None)])?;
    let (status, message) = w.status(I0)?;
    ensure!(status == "active" && message == "1/1 members online, 1 client trusted", "{status}: {message}");
    let posts: Vec<Value> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| serde_json::from_str(&r.body).unwrap_or(Value::Null))
        .collect();
    ensure!(posts.len() == 1, "{posts:?}");
    ensure!(posts[0].get("restricted").is_none() && posts[0].get("projects").is_none(), "{}", posts[0]);
    ensure!(fake.store().iter().any(|e| e["fingerprint"] == json!(a.fingerprint)));
    ensure!(w.registered(rel, I0)? == std::slice::from_ref(&a.cert_pem));
    let info = logs(&w, I0, "INFO")?;
    let want = format!("trust: added {} for req/0 (relation {rel})", short(&a.fingerprint));
    ensure!(info.iter().any(|l| l.lines().any(|l| l == want)), "no {want:?} in {info:#?}");
    w.check()
}
