//! The `adopt` action: take over the trust entries the Python charm made.
//!
//! canonical/lxd-integrator-operator named each entry after its certificate's subject CN
//! (`src/interface.py` `_register_cert`: `"name": x509_cert.get_subject().CN`) and never removed
//! one. To this charm such an entry is foreign: it counts the certificate as trusted but, the
//! name not saying who asked, it would leave the entry behind when the requirer goes. Adopting
//! renames the entry to the name this charm would have given it (`Scope::entry_name` of the
//! first requester, as `plan::plan` names new entries), after which the usual rules apply: it
//! stays while a live relation asks for the certificate and goes when none does.
//!
//! Taken over: `client` entries whose certificate a live relation of this application requests
//! and whose name no integrator claims. An entry for a certificate nobody requests is never
//! looked at, whoever made it. Entries other charms find again by their name are left to them.
//! The LXD write is `PATCH` of the name alone, so restrictions and projects stay as they were
//! (until the next hook brings them in line with `trust-projects`, as for any owned entry).

use crate::certs::short_fp;
use crate::dispatch::HookContext;
use crate::hook_tools::{Juju, LogLevel, ToolError};
use crate::limits;
use crate::lxd::{Connector, Lxd, TrustEntry, TrustKind};
use crate::ownership::{Owner, Scope};
use crate::reconcile::{self, Mode};
use crate::requests::Request;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Name prefixes of entries some other charm owns and looks up by name: renaming one would
/// strand it there. `juju.` is this charm's own scheme (another model or application, or a
/// name of ours this version cannot read); `juju-relation-` is the LXD charm's `https`
/// relation (`juju-relation-<app or unit>`, removed by that name) and lxd-integrator-k8s's
/// default `trust-name-prefix`.
const CLAIMED_PREFIXES: &[(&str, &str)] =
    &[("juju.", "named by another lxd-integrator"), ("juju-relation-", "named by the LXD charm or lxd-integrator-k8s")];

/// One entry to take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    pub fingerprint: String,
    pub old_name: String,
    pub new_name: String,
    /// The first requester of the certificate, whom the new name records.
    pub owner: Owner,
    /// The entry is named after the certificate's subject CN, as the Python charm named its
    /// entries; otherwise it may be an operator's grant for the same certificate.
    pub named_by_cn: bool,
}

/// A requested certificate held by an entry that is not taken over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub fingerprint: String,
    pub name: String,
    pub owner: Owner,
    pub reason: &'static str,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    pub adopt: Vec<Adoption>,
    pub skipped: Vec<Skipped>,
}

/// What to adopt, from the requests of the live relations and LXD's trust store. Pure.
pub fn choose(scope: &Scope, requests: &[Request], store: &[TrustEntry]) -> Choice {
    let by_fp: BTreeMap<&str, &TrustEntry> = store.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    let mut seen = BTreeSet::new();
    let mut out = Choice::default();
    // Requests come ordered by relation and unit: the first requester names the entry, as it
    // would have named a new one.
    for req in requests {
        let fp = req.cert.fingerprint.as_str();
        if !seen.insert(fp) {
            continue;
        }
        // Not in LXD: the reconcile adds it under our name. Ours already: nothing to do.
        let Some(entry) = by_fp.get(fp).filter(|e| scope.owner_of(&e.name).is_none()) else { continue };
        let reason = if entry.kind != TrustKind::Client {
            Some("not a client entry")
        } else {
            CLAIMED_PREFIXES.iter().find(|(prefix, _)| entry.name.starts_with(prefix)).map(|(_, why)| *why)
        };
        match reason {
            Some(reason) => out.skipped.push(Skipped {
                fingerprint: fp.to_string(),
                name: entry.name.clone(),
                owner: req.owner.clone(),
                reason,
            }),
            None => out.adopt.push(Adoption {
                fingerprint: fp.to_string(),
                old_name: entry.name.clone(),
                new_name: scope.entry_name(&req.owner),
                owner: req.owner.clone(),
                named_by_cn: entry.name == req.cert.common_name,
            }),
        }
    }
    out
}

/// What happened to one adoption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Dry run.
    WouldRename,
    Renamed,
    /// LXD's answer, or why it could not be reached.
    Failed(String),
    /// Left for another run (deadline, leadership).
    NotTried(&'static str),
}

impl Outcome {
    fn text(&self) -> String {
        match self {
            Outcome::WouldRename => "would rename".into(),
            Outcome::Renamed => "renamed".into(),
            Outcome::Failed(e) => format!("failed: {}", limits::cut(e, limits::ENTRY_NAME_SHOWN)),
            Outcome::NotTried(why) => format!("not tried: {why}"),
        }
    }
}

/// Runs the action. `dry-run` (actions.yaml default: true) lists without changing anything;
/// otherwise only the leader renames. An `Err` is a hook tool failing; everything else ends in
/// the action's results or `action-fail`.
pub fn run(
    ctx: &HookContext,
    juju: &mut Juju,
    connector: &dyn Connector,
    params: &BTreeMap<String, serde_json::Value>,
) -> Result<(), ToolError> {
    // Juju fills in the declared default; should it not, looking is the safe reading.
    let dry_run = params.get("dry-run").and_then(serde_json::Value::as_bool).unwrap_or(true);
    let leadership_asked = Instant::now();
    if !dry_run && !juju.is_leader()? {
        juju.action_fail("only the leader changes LXD trust; run adopt on the leader unit")?;
        return Ok(());
    }
    // The same observation a hook makes, writing nothing: requests and trust store.
    let report = reconcile::run(ctx, juju, connector, Mode::DRY_RUN)?;
    if let Some(error) = &report.error {
        let message = report.status.as_ref().map(|s| s.message.clone()).unwrap_or_else(|| error.to_string());
        juju.action_fail(&message)?;
        return Ok(());
    }
    let scope = ctx.scope();
    let choice = choose(&scope, &report.requests, &report.store);
    let outcomes = if dry_run || choice.adopt.is_empty() {
        vec![Outcome::WouldRename; choice.adopt.len()]
    } else {
        // The pass connected to this endpoint a moment ago with these credentials.
        let (Some(creds), Some(endpoint)) = (&report.credentials, &report.endpoint_used) else {
            juju.action_fail("LXD was not reached; nothing adopted")?;
            return Ok(());
        };
        let mut lxd = match connector.connect(endpoint, &creds.tls) {
            Ok(lxd) => lxd,
            Err(e) => {
                juju.action_fail(&format!("nothing adopted: {e}"))?;
                return Ok(());
            }
        };
        rename_all(juju, lxd.as_mut(), &choice.adopt, leadership_asked)?
    };
    juju.action_set(&results(dry_run, &choice, &outcomes))
}

/// Renames one entry after another (a few hundred at most in practice, each a small write),
/// under the same guards as a hook's changes: leadership asked again every
/// `LEADERSHIP_RECHECK_AFTER`, nothing started after `PASS_DEADLINE`. Each rename is logged.
fn rename_all(
    juju: &mut Juju,
    lxd: &mut dyn Lxd,
    adopt: &[Adoption],
    mut leadership_asked: Instant,
) -> Result<Vec<Outcome>, ToolError> {
    let started = Instant::now();
    let mut stop: Option<&'static str> = None;
    let (mut info, mut warnings) = (Vec::new(), Vec::new());
    let mut out = Vec::with_capacity(adopt.len());
    for a in adopt {
        if stop.is_none() && started.elapsed() > limits::PASS_DEADLINE {
            stop = Some("the action ran out of time; run adopt again");
        }
        if stop.is_none() && leadership_asked.elapsed() > limits::LEADERSHIP_RECHECK_AFTER {
            if !juju.is_leader()? {
                stop = Some("this unit is no longer the leader; run adopt on the leader");
            }
            leadership_asked = Instant::now();
        }
        if let Some(why) = stop {
            out.push(Outcome::NotTried(why));
            continue;
        }
        let what = format!("{} for {}, named \"{}\"", short_fp(&a.fingerprint), a.owner, shown(&a.old_name));
        match lxd.rename_trust(&a.fingerprint, &a.new_name) {
            Ok(()) => {
                info.push(format!("trust: adopted {what}"));
                out.push(Outcome::Renamed);
            }
            Err(e) => {
                warnings.push(format!("trust: failed to adopt {what}: {e}"));
                out.push(Outcome::Failed(e.to_string()));
            }
        }
    }
    juju.log_lines(LogLevel::Info, &info)?;
    juju.log_lines(LogLevel::Warning, &warnings)?;
    Ok(out)
}

/// An entry name as results and logs show it: cut, and escaped so that it stays one line
/// (anyone who can add a trust entry chooses its name). A plain name shows as it is.
fn shown(name: &str) -> String {
    limits::cut(name, limits::ENTRY_NAME_SHOWN).escape_debug().to_string()
}

fn yes(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

/// The action's results: every adoption (and every requested certificate left alone) up to
/// `limits::ADOPT_ITEMS` in all, the rest counted.
pub fn results(dry_run: bool, choice: &Choice, outcomes: &[Outcome]) -> Vec<(String, String)> {
    let mut out = vec![("dry-run".to_string(), yes(dry_run)), ("count".to_string(), choice.adopt.len().to_string())];
    if !dry_run {
        let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count().to_string();
        out.push(("renamed".into(), count(|o| *o == Outcome::Renamed)));
        out.push(("failed".into(), count(|o| matches!(o, Outcome::Failed(_)))));
        out.push(("not-tried".into(), count(|o| matches!(o, Outcome::NotTried(_)))));
    }
    let listed = choice.adopt.len().min(limits::ADOPT_ITEMS);
    for (i, (a, o)) in choice.adopt.iter().zip(outcomes).take(listed).enumerate() {
        let k = format!("entries.{i}");
        out.push((format!("{k}.fingerprint"), a.fingerprint.clone()));
        out.push((format!("{k}.old-name"), shown(&a.old_name)));
        out.push((format!("{k}.new-name"), a.new_name.clone()));
        out.push((format!("{k}.unit"), a.owner.member()));
        out.push((format!("{k}.relation"), a.owner.relation_id.to_string()));
        out.push((format!("{k}.named-by-cn"), yes(a.named_by_cn)));
        out.push((format!("{k}.result"), o.text()));
    }
    if choice.adopt.len() > listed {
        out.push(("entries.not-listed".into(), (choice.adopt.len() - listed).to_string()));
    }
    if !choice.skipped.is_empty() {
        out.push(("skipped.count".into(), choice.skipped.len().to_string()));
        let room = limits::ADOPT_ITEMS - listed;
        for (i, s) in choice.skipped.iter().take(room).enumerate() {
            let k = format!("skipped.{i}");
            out.push((format!("{k}.fingerprint"), s.fingerprint.clone()));
            out.push((format!("{k}.name"), shown(&s.name)));
            out.push((format!("{k}.unit"), s.owner.member()));
            out.push((format!("{k}.reason"), s.reason.to_string()));
        }
        if choice.skipped.len() > room {
            out.push(("skipped.not-listed".into(), (choice.skipped.len() - room).to_string()));
        }
    }
    if dry_run && !choice.adopt.is_empty() {
        out.push(("next".into(), "run adopt with dry-run=false on the leader to rename these entries".into()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{self, test_certs};
    use crate::hook_tools::Juju;
    use crate::memory::{Agent, Cluster, MemoryConnector};
    use crate::ownership::Interface;

    const UUID: &str = "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc";

    fn scope() -> Scope {
        Scope { model_uuid: UUID.into(), app: "lxd-integrator".into() }
    }

    /// Requests as the reconcile collects them: relation 3 with `req`, units in order.
    fn requests(units: &[(&str, &[&str])]) -> Vec<Request> {
        crate::requests::fixtures::requests_of(3, units)
    }

    fn entry(name: &str, pem: &test_certs::Pem) -> TrustEntry {
        TrustEntry {
            name: name.into(),
            fingerprint: certs::fingerprint(&pem.der),
            kind: "client".into(),
            ..Default::default()
        }
    }

    fn owner(unit: u32) -> Owner {
        Owner { relation_id: 3, remote_app: "req".into(), unit: Some(unit), interface: Interface::Lxd }
    }

    #[test]
    fn entries_named_by_cn_are_adopted_under_the_first_requesters_name() {
        let a = test_certs::self_signed("ams-a");
        let b = test_certs::self_signed("ams-b");
        // req/0 and req/1 both ask for `a`: req/0 names it, as it would name a new entry.
        let reqs = requests(&[("req/0", &[&a.cert_pem]), ("req/1", &[&a.cert_pem, &b.cert_pem])]);
        let store = [entry("ams-a", &a), entry("ams-b", &b)];
        let choice = choose(&scope(), &reqs, &store);
        assert!(choice.skipped.is_empty(), "{choice:?}");
        assert_eq!(
            choice.adopt,
            vec![
                Adoption {
                    fingerprint: certs::fingerprint(&a.der),
                    old_name: "ams-a".into(),
                    new_name: scope().entry_name(&owner(0)),
                    owner: owner(0),
                    named_by_cn: true,
                },
                Adoption {
                    fingerprint: certs::fingerprint(&b.der),
                    old_name: "ams-b".into(),
                    new_name: scope().entry_name(&owner(1)),
                    owner: owner(1),
                    named_by_cn: true,
                },
            ]
        );
        // Adopted, the entry is ours: a second run finds nothing.
        let renamed: Vec<TrustEntry> = choice
            .adopt
            .iter()
            .map(|x| TrustEntry {
                name: x.new_name.clone(),
                fingerprint: x.fingerprint.clone(),
                kind: "client".into(),
                ..Default::default()
            })
            .collect();
        assert_eq!(choose(&scope(), &reqs, &renamed), Choice::default());
    }

    #[test]
    fn only_requested_certificates_are_looked_at_and_other_charms_entries_stay_theirs() {
        let [ours, operators, other_integrator, charm_lxd, server, requested_admin, unrequested, absent] =
            ["ours", "op", "oi", "cl", "srv", "adm", "unreq", "absent"].map(test_certs::self_signed);
        let reqs = requests(&[(
            "req/0",
            &[
                &ours.cert_pem,
                &other_integrator.cert_pem,
                &charm_lxd.cert_pem,
                &server.cert_pem,
                &requested_admin.cert_pem,
                &absent.cert_pem,
            ],
        )]);
        let other_model = Scope { model_uuid: "11111111-1c2b-4f5e-8a9b-123456789abc".into(), ..scope() };
        let store = [
            entry(&scope().entry_name(&owner(0)), &ours),
            entry("operator-laptop", &operators),
            entry(&other_model.entry_name(&owner(0)), &other_integrator),
            entry("juju-relation-req", &charm_lxd),
            TrustEntry { kind: "server".into(), ..entry("node2", &server) },
            entry("admin", &requested_admin),
            entry("unreq", &unrequested),
        ];
        let choice = choose(&scope(), &reqs, &store);
        // An operator's entry for a requested certificate is adopted, flagged as not named by CN.
        assert_eq!(choice.adopt.len(), 1, "{choice:?}");
        assert_eq!((choice.adopt[0].old_name.as_str(), choice.adopt[0].named_by_cn), ("admin", false));
        let skipped: Vec<(&str, &str)> = choice.skipped.iter().map(|s| (s.name.as_str(), s.reason)).collect();
        assert_eq!(
            skipped,
            vec![
                (other_model.entry_name(&owner(0)).as_str(), "named by another lxd-integrator"),
                ("juju-relation-req", "named by the LXD charm or lxd-integrator-k8s"),
                ("node2", "not a client entry"),
            ]
        );
        // Unrequested entries ("operator-laptop", "unreq") are in neither list.
        let named: BTreeSet<&str> = choice
            .adopt
            .iter()
            .map(|a| a.old_name.as_str())
            .chain(choice.skipped.iter().map(|s| s.name.as_str()))
            .collect();
        assert!(!named.contains("operator-laptop") && !named.contains("unreq"), "{named:?}");
    }

    #[test]
    fn results_are_bounded_and_every_outcome_is_readable() {
        let adoption = |i: usize| Adoption {
            fingerprint: format!("{i:064x}"),
            old_name: if i == 0 { "evil\nname".into() } else { format!("cn-{i}") },
            new_name: scope().entry_name(&owner(i as u32)),
            owner: owner(i as u32),
            named_by_cn: i.is_multiple_of(2),
        };
        let choice = Choice {
            adopt: (0..limits::ADOPT_ITEMS + 50).map(adoption).collect(),
            skipped: vec![Skipped {
                fingerprint: "f".repeat(64),
                name: "juju-relation-x".into(),
                owner: owner(0),
                reason: "r",
            }],
        };
        let mut outcomes = vec![Outcome::Renamed; choice.adopt.len()];
        outcomes[1] = Outcome::Failed("LXD PATCH /1.0/certificates/x failed (404): Certificate not found".into());
        outcomes[2] = Outcome::NotTried("lost leadership");
        let r: BTreeMap<String, String> = results(false, &choice, &outcomes).into_iter().collect();
        assert_eq!(r["dry-run"], "no");
        assert_eq!(r["count"], (limits::ADOPT_ITEMS + 50).to_string());
        assert_eq!(
            (r["renamed"].as_str(), r["failed"].as_str(), r["not-tried"].as_str()),
            ((limits::ADOPT_ITEMS + 48).to_string().as_str(), "1", "1")
        );
        assert_eq!(r["entries.not-listed"], "50");
        assert_eq!(r["skipped.count"], "1");
        assert_eq!(r["skipped.not-listed"], "1", "the lists share one bound");
        assert_eq!(r["entries.0.old-name"], r"evil\nname");
        assert_eq!(r["entries.0.unit"], "req/0");
        assert_eq!(r["entries.1.result"], "failed: LXD PATCH /1.0/certificates/x failed (404): Certificate not found");
        assert_eq!(r["entries.2.result"], "not tried: lost leadership");
        assert!(!r.contains_key(&format!("entries.{}.fingerprint", limits::ADOPT_ITEMS)));
        assert!(r.values().all(|v| !v.contains('\n')));
        let bytes: usize = r.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        assert!(bytes < limits::ACTION_RESULTS_BYTES, "{bytes}");

        let dry = results(true, &Choice { adopt: vec![adoption(1)], skipped: vec![] }, &[Outcome::WouldRename]);
        let dry: BTreeMap<String, String> = dry.into_iter().collect();
        assert_eq!((dry["dry-run"].as_str(), dry["entries.0.result"].as_str()), ("yes", "would rename"));
        assert!(!dry.contains_key("renamed") && dry.contains_key("next"));
    }

    /// A unit of this charm related to `req` (relation 3) whose LXD holds the Python charm's
    /// entry for req/0's certificate and an operator's entry for a certificate nobody requests.
    struct World {
        agent: Agent,
        cluster: std::sync::Arc<std::sync::Mutex<Cluster>>,
        fp: String,
        operator: TrustEntry,
    }

    impl World {
        fn new() -> World {
            let a = test_certs::self_signed("ams-0");
            let nobody = test_certs::self_signed("laptop");
            let mut agent = Agent::leader();
            agent.relate(3, "req").units.insert(
                "req/0".into(),
                [("client_certificates".to_string(), serde_json::to_string(&[&a.cert_pem]).expect("json"))].into(),
            );
            let operator = entry("laptop", &nobody);
            let mut cluster = Cluster::new(&["https://127.0.0.1:8443"]);
            cluster.store = vec![entry("ams-0", &a), operator.clone()];
            World { agent, cluster: cluster.shared(), fp: certs::fingerprint(&a.der), operator }
        }

        fn adopt(&mut self, params: serde_json::Value) {
            let params: BTreeMap<String, serde_json::Value> = serde_json::from_value(params).expect("params");
            self.agent.start_action(params.clone());
            let ctx = HookContext {
                name: "adopt".into(),
                is_action: true,
                unit: self.agent.unit.clone(),
                model_uuid: UUID.into(),
                ..Default::default()
            };
            let connector = MemoryConnector(self.cluster.clone());
            run(&ctx, &mut Juju::new(&mut self.agent), &connector, &params).expect("hook tools work");
        }

        fn results(&self) -> BTreeMap<String, String> {
            self.agent.action.as_ref().map(|a| a.results.clone()).unwrap_or_default()
        }

        fn failed(&self) -> Option<String> {
            self.agent.action.as_ref().and_then(|a| a.failed.clone())
        }

        fn store(&self) -> Vec<TrustEntry> {
            self.cluster.lock().expect("lock").store.clone()
        }
    }

    #[test]
    fn the_action_lists_by_default_renames_on_the_leader_and_then_has_nothing_left() {
        let mut w = World::new();
        let before = w.store();
        let ours = scope().entry_name(&owner(0));

        // No parameter: a dry run.
        w.adopt(serde_json::json!({}));
        let r = w.results();
        assert_eq!(w.failed(), None);
        assert_eq!((r["dry-run"].as_str(), r["count"].as_str()), ("yes", "1"), "{r:#?}");
        assert_eq!(r["entries.0.fingerprint"], w.fp);
        assert_eq!((r["entries.0.old-name"].as_str(), r["entries.0.new-name"].as_str()), ("ams-0", ours.as_str()));
        assert_eq!((r["entries.0.unit"].as_str(), r["entries.0.named-by-cn"].as_str()), ("req/0", "yes"));
        assert_eq!(w.store(), before, "a dry run changes nothing");
        assert_eq!(w.agent.status, (String::new(), String::new()), "nor the status");

        // A follower may look but not rename.
        w.agent.leader = false;
        w.adopt(serde_json::json!({"dry-run": false}));
        assert!(w.failed().is_some_and(|m| m.contains("only the leader")), "{:?}", w.failed());
        assert_eq!(w.store(), before);

        w.agent.leader = true;
        w.adopt(serde_json::json!({"dry-run": false}));
        let r = w.results();
        assert_eq!(w.failed(), None);
        assert_eq!(
            (r["dry-run"].as_str(), r["renamed"].as_str(), r["entries.0.result"].as_str()),
            ("no", "1", "renamed"),
            "{r:#?}"
        );
        let store = w.store();
        let adopted = store.iter().find(|e| e.fingerprint == w.fp).expect("still trusted");
        assert_eq!((adopted.name.as_str(), adopted.restricted), (ours.as_str(), false));
        assert!(store.contains(&w.operator), "the operator's entry is untouched");
        let want = format!("trust: adopted {} for req/0 (relation 3), named \"ams-0\"", short_fp(&w.fp));
        assert!(w.agent.logs.iter().any(|l| l.contains(&want)), "{want:?} in {:?}", w.agent.logs);

        w.adopt(serde_json::json!({"dry-run": false}));
        assert_eq!(w.results()["count"], "0");
    }

    #[test]
    fn without_lxd_the_action_fails_naming_the_cause() {
        let mut w = World::new();
        w.cluster.lock().expect("lock").up.values_mut().for_each(|up| *up = false);
        w.adopt(serde_json::json!({"dry-run": false}));
        assert!(w.failed().is_some(), "{:?}", w.agent.action);
        assert!(w.results().is_empty());
    }
}
