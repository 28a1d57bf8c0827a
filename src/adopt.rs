//! The `adopt` action: renames, on the leader, the entries `adoption` chooses (a dry run by
//! default), and reports what it takes and what it leaves.

use crate::certs::short_fp;
use crate::context::HookContext;
use crate::hook_tools::{Juju, LogLevel, ToolError};
use crate::limits;
use crate::lxd::{Connector, Lxd};
use crate::reconcile::{self, Mode};
use std::collections::BTreeMap;
use std::time::Instant;

use crate::adoption::{Adoption, Choice, choose};

/// What happened to one adoption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
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
pub(crate) fn run(
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

/// An entry name as results and logs show it: escaped so that it stays one line (anyone who
/// can add a trust entry chooses its name), then cut, so that escaping cannot outgrow
/// `limits::ENTRY_NAME_SHOWN`. A plain name shows as it is.
fn shown(name: &str) -> String {
    limits::cut(&name.escape_debug().to_string(), limits::ENTRY_NAME_SHOWN).into_owned()
}

fn yes(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

/// The action's results: every adoption, then every requested certificate left alone, up to
/// `limits::ADOPT_ITEMS` in all, the rest counted. Each says why in fixed words; names are
/// cut and escaped (`shown`).
pub(crate) fn results(dry_run: bool, choice: &Choice, outcomes: &[Outcome]) -> Vec<(String, String)> {
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
        out.push((format!("{k}.endpoint"), a.owner.interface.endpoint().to_string()));
        out.push((format!("{k}.why"), a.made_by.why().to_string()));
        out.push((format!("{k}.result"), o.text()));
    }
    if choice.adopt.len() > listed {
        out.push(("entries.not-listed".into(), (choice.adopt.len() - listed).to_string()));
    }
    if !choice.left.is_empty() {
        out.push(("left.count".into(), choice.left.len().to_string()));
        let room = limits::ADOPT_ITEMS - listed;
        for (i, l) in choice.left.iter().take(room).enumerate() {
            let k = format!("left.{i}");
            out.push((format!("{k}.fingerprint"), l.fingerprint.clone()));
            out.push((format!("{k}.name"), shown(&l.name)));
            out.push((format!("{k}.unit"), l.owner.member()));
            out.push((format!("{k}.endpoint"), l.owner.interface.endpoint().to_string()));
            out.push((format!("{k}.why"), l.why.why().to_string()));
        }
        if choice.left.len() > room {
            out.push(("left.not-listed".into(), (choice.left.len() - room).to_string()));
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
    use crate::adoption::*;
    use crate::certs::{self, test_certs};
    use crate::hook_tools::Juju;
    use crate::lxd::TrustEntry;
    use crate::memory::{Agent, Cluster, MemoryConnector};
    use crate::ownership::{Interface, Owner, Scope};
    use crate::relation::{Databag, RelationView};
    use crate::requests::Protected;
    use crate::requests::Request;

    const UUID: &str = "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc";

    fn scope() -> Scope {
        Scope { model_uuid: UUID.into(), app: "lxd-integrator".into() }
    }

    fn bag(pairs: &[(&str, &str)]) -> Databag {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// An `api` relation `id` with `app`, each unit sending `client_certificates`.
    fn api(id: u32, app: &str, units: &[(&str, &[&str])]) -> RelationView {
        let units = units
            .iter()
            .map(|(u, pems)| {
                (u.to_string(), bag(&[("client_certificates", &serde_json::to_string(pems).expect("json"))]))
            })
            .collect();
        RelationView { id, interface: Interface::Lxd, remote_app: app.into(), units, app_data: Databag::new() }
    }

    /// An `https` relation `id` with `app`: `lxd-https` databags from the application (if
    /// `app_cert`) and from the units given.
    fn https(id: u32, app: &str, app_cert: Option<&str>, units: &[(&str, &str)]) -> RelationView {
        let speaks = |pem: &str| bag(&[("version", "1.0"), ("certificate", pem)]);
        RelationView {
            id,
            interface: Interface::LxdHttps,
            remote_app: app.into(),
            units: units.iter().map(|(u, pem)| (u.to_string(), speaks(pem))).collect(),
            app_data: app_cert.map(speaks).unwrap_or_default(),
        }
    }

    /// Requests as a pass collects them: both endpoints, in relation order.
    fn asked(views: &[RelationView]) -> Vec<Request> {
        let (now, none) = (certs::now_unix(), Protected::default());
        let mut out = crate::requests::collect(views, now, &none).requests;
        out.extend(crate::https::collect(views, now, &none, crate::https::Bounds::default()).requests);
        out.sort_by_key(|r| r.owner.relation_id);
        out
    }

    fn entry(name: &str, pem: &test_certs::Pem) -> TrustEntry {
        TrustEntry {
            name: name.into(),
            fingerprint: certs::fingerprint(&pem.der),
            kind: "client".into(),
            ..Default::default()
        }
    }

    fn fp(pem: &test_certs::Pem) -> String {
        certs::fingerprint(&pem.der)
    }

    fn owner(interface: Interface, relation_id: u32, member: &str) -> Owner {
        Owner::from_member_on(interface, relation_id, member).expect("member")
    }

    /// (old name, new name, why) of each adoption.
    type Taken<'a> = Vec<(&'a str, String, MadeBy)>;

    /// What `c` takes, and (name, why) of each entry it leaves.
    fn summary(c: &Choice) -> (Taken<'_>, Vec<(&str, Leave)>) {
        (
            c.adopt.iter().map(|a| (a.old_name.as_str(), a.new_name.clone(), a.made_by)).collect(),
            c.left.iter().map(|l| (l.name.as_str(), l.why)).collect(),
        )
    }

    /// The store once `choice` is carried out.
    fn renamed(store: &[TrustEntry], choice: &Choice) -> Vec<TrustEntry> {
        let new: BTreeMap<&str, &str> =
            choice.adopt.iter().map(|a| (a.fingerprint.as_str(), a.new_name.as_str())).collect();
        store
            .iter()
            .map(|e| TrustEntry {
                name: new.get(e.fingerprint.as_str()).map_or(e.name.clone(), |n| n.to_string()),
                ..e.clone()
            })
            .collect()
    }

    #[test]
    fn after_a_refresh_from_the_python_charm_its_cn_named_entries_are_adopted_and_an_operators_grant_is_left() {
        let a = test_certs::self_signed("ams-a");
        let b = test_certs::self_signed("ams-b");
        let c = test_certs::self_signed("ams-c");
        // req/0 and req/1 both ask for `a`: the first names it, as it would name a new entry.
        // `c` is asked for the same way, but LXD holds it under the operator's own grant.
        let reqs =
            asked(&[api(3, "req", &[("req/0", &[&a.cert_pem]), ("req/1", &[&a.cert_pem, &b.cert_pem, &c.cert_pem])])]);
        let store = [entry("ams-a", &a), entry("ams-b", &b), entry("ops-admin", &c)];
        let choice = choose(&scope(), &reqs, &store);
        let name = |m: &str| scope().entry_name(&owner(Interface::Lxd, 3, m));
        assert_eq!(
            summary(&choice),
            (
                vec![("ams-a", name("req/0"), MadeBy::PythonCharm), ("ams-b", name("req/1"), MadeBy::PythonCharm)],
                vec![("ops-admin", Leave::OtherName)]
            )
        );
        assert_eq!(adoptable(&scope(), &reqs, &store), 2);
        // Adopted, the entries are ours: a second run takes nothing and still leaves the grant.
        let after = renamed(&store, &choice);
        assert_eq!(summary(&choose(&scope(), &reqs, &after)), (vec![], vec![("ops-admin", Leave::OtherName)]));
        assert_eq!(adoptable(&scope(), &reqs, &after), 0);
    }

    #[test]
    fn after_moving_from_charm_lxd_its_juju_relation_entries_are_adopted_for_their_requirer_and_an_operators_grant_is_left()
     {
        let [gw, hc0, hc1] = ["gateway", "hc-0", "hc-1"].map(test_certs::self_signed);
        let reqs = asked(&[
            // The gateway writes its application databag and a unit's, as it does.
            https(5, "gw", Some(&gw.cert_pem), &[("gw/0", &gw.cert_pem)]),
            // charm-lxd's https-client example writes unit databags only.
            https(6, "hc", None, &[("hc/0", &hc0.cert_pem), ("hc/1", &hc1.cert_pem)]),
        ]);
        let store = [entry("juju-relation-gw", &gw), entry("juju-relation-hc/0", &hc0), entry("ops-admin", &hc1)];
        let choice = choose(&scope(), &reqs, &store);
        let name = |id, m: &str| scope().entry_name(&owner(Interface::LxdHttps, id, m));
        assert_eq!(
            summary(&choice),
            (
                vec![
                    ("juju-relation-gw", name(5, "gw"), MadeBy::CharmLxd),
                    ("juju-relation-hc/0", name(6, "hc/0"), MadeBy::CharmLxd),
                ],
                vec![("ops-admin", Leave::OtherName)]
            )
        );
        // The new names are ones LXD 5.21.3+ accepts, unlike charm-lxd's unit names.
        assert!(choice.adopt.iter().all(|a| crate::ownership::lxd_accepts_name(&a.new_name)));
        let after = renamed(&store, &choice);
        assert_eq!(summary(&choose(&scope(), &reqs, &after)), (vec![], vec![("ops-admin", Leave::OtherName)]));
    }

    #[test]
    fn a_name_like_an_old_charms_is_taken_only_for_the_requester_the_old_charm_served() {
        let certs =
            ["gw-other", "gw-unit", "api-juju-relation", "cn-https", "cn-restricted", "cn-both", "other-model", "srv"];
        let [gw_other, gw_unit, api_jr, cn_https, cn_restricted, cn_both, other_model, server] =
            certs.map(test_certs::self_signed);
        let unrequested = test_certs::self_signed("unrequested");
        let reqs = asked(&[
            api(
                2,
                "req",
                &[("req/0", &[&api_jr.cert_pem, &cn_restricted.cert_pem, &other_model.cert_pem, &server.cert_pem])],
            ),
            // The gateway asks only from its application databag.
            https(4, "gw", Some(&gw_other.cert_pem), &[]),
            https(5, "gx", Some(&gw_unit.cert_pem), &[]),
            https(6, "hc", None, &[("hc/0", &cn_https.cert_pem), ("hc/1", &cn_both.cert_pem)]),
            api(7, "ams", &[("ams/0", &[&cn_both.cert_pem])]),
        ]);
        let elsewhere = Scope { model_uuid: "11111111-1c2b-4f5e-8a9b-123456789abc".into(), ..scope() };
        let store = [
            entry("juju-relation-other", &gw_other),
            // A unit's name where only the application asks.
            entry("juju-relation-gx/0", &gw_unit),
            // charm-lxd's name for an `api` requirer, which charm-lxd never served.
            entry("juju-relation-req", &api_jr),
            entry("cn-https", &cn_https),
            TrustEntry { restricted: true, projects: vec!["p1".into()], ..entry("cn-restricted", &cn_restricted) },
            // Asked for on `https` first, then on `api`: the Python charm's, for the `api` requester.
            entry("cn-both", &cn_both),
            entry(&elsewhere.entry_name(&owner(Interface::Lxd, 2, "req/0")), &other_model),
            TrustEntry { kind: "server".into(), ..entry("srv", &server) },
            entry("unrequested", &unrequested),
        ];
        let choice = choose(&scope(), &reqs, &store);
        let (taken, left) = summary(&choice);
        assert_eq!(
            taken,
            vec![("cn-both", scope().entry_name(&owner(Interface::Lxd, 7, "ams/0")), MadeBy::PythonCharm)]
        );
        let other_integrator = elsewhere.entry_name(&owner(Interface::Lxd, 2, "req/0"));
        assert_eq!(
            left,
            vec![
                ("juju-relation-req", Leave::CharmLxdOtherRequirer),
                ("cn-restricted", Leave::CnRestricted),
                (other_integrator.as_str(), Leave::OtherIntegrator),
                ("srv", Leave::NotClient),
                ("juju-relation-other", Leave::CharmLxdOtherRequirer),
                ("juju-relation-gx/0", Leave::CharmLxdOtherRequirer),
                ("cn-https", Leave::CnForHttpsOnly),
            ]
        );
    }

    #[test]
    fn a_cn_is_matched_whole_and_a_certificate_without_one_matches_no_name() {
        let long = "a".repeat(80);
        let [with_control, long_cn, empty] = ["ams\u{1}x", long.as_str(), ""].map(test_certs::self_signed);
        let reqs = asked(&[api(3, "req", &[("req/0", &[&with_control.cert_pem, &long_cn.cert_pem, &empty.cert_pem])])]);
        // The charm's display CN drops control characters and stops at 64 characters; the
        // Python charm's name did neither.
        let store = [entry("amsx", &with_control), entry(&long[..64], &long_cn), entry("", &empty)];
        let choice = choose(&scope(), &reqs, &store);
        let (taken, left) = summary(&choice);
        assert!(taken.is_empty(), "{taken:?}");
        assert_eq!(left.iter().map(|l| l.1).collect::<Vec<_>>(), vec![Leave::OtherName; 3]);
        let store = [entry("ams\u{1}x", &with_control), entry(&long, &long_cn)];
        assert_eq!(adoptable(&scope(), &reqs, &store), 2);
    }

    #[test]
    fn results_are_bounded_say_why_and_every_outcome_is_readable() {
        let lxd = |i: usize| owner(Interface::Lxd, 3, &format!("req/{i}"));
        let adoption = |i: usize| Adoption {
            fingerprint: format!("{i:064x}"),
            old_name: if i == 0 { "evil\nname".into() } else { format!("cn-{i}") },
            new_name: scope().entry_name(&lxd(i)),
            owner: lxd(i),
            made_by: MadeBy::PythonCharm,
        };
        let choice = Choice {
            adopt: (0..limits::ADOPT_ITEMS + 50).map(adoption).collect(),
            left: vec![Left {
                fingerprint: "f".repeat(64),
                name: "ops-admin".into(),
                owner: lxd(0),
                why: Leave::OtherName,
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
        assert_eq!(r["left.count"], "1");
        assert_eq!(r["left.not-listed"], "1", "the lists share one bound");
        assert_eq!(r["entries.0.old-name"], r"evil\nname");
        assert_eq!((r["entries.0.unit"].as_str(), r["entries.0.endpoint"].as_str()), ("req/0", "api"));
        assert_eq!(r["entries.0.why"], MadeBy::PythonCharm.why());
        assert_eq!(r["entries.1.result"], "failed: LXD PATCH /1.0/certificates/x failed (404): Certificate not found");
        assert_eq!(r["entries.2.result"], "not tried: lost leadership");
        assert!(!r.contains_key(&format!("entries.{}.fingerprint", limits::ADOPT_ITEMS)));
        assert!(r.values().all(|v| !v.contains('\n')));
        let bytes: usize = r.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        assert!(bytes < limits::ACTION_RESULTS_BYTES, "{bytes}");

        // A dry run with room lists what it leaves too, each with why; a long name is cut,
        // escapes included.
        let long = Left { name: "\u{1}".repeat(10_000), ..choice.left[0].clone() };
        let dry = Choice { adopt: vec![adoption(1)], left: vec![long] };
        let dry: BTreeMap<String, String> = results(true, &dry, &[Outcome::WouldRename]).into_iter().collect();
        assert_eq!((dry["dry-run"].as_str(), dry["entries.0.result"].as_str()), ("yes", "would rename"));
        assert_eq!((dry["left.0.unit"].as_str(), dry["left.0.why"].as_str()), ("req/0", Leave::OtherName.why()));
        assert!(dry["left.0.name"].len() <= limits::ENTRY_NAME_SHOWN, "{}", dry["left.0.name"].len());
        assert!(!dry.contains_key("renamed") && dry.contains_key("next"));
        // Fixed words, each short enough to read in `juju run` output.
        let whys = [MadeBy::PythonCharm.why(), MadeBy::CharmLxd.why()].into_iter().chain(
            [
                Leave::NotClient,
                Leave::OtherIntegrator,
                Leave::CnForHttpsOnly,
                Leave::CnRestricted,
                Leave::CharmLxdOtherRequirer,
                Leave::OtherName,
            ]
            .map(Leave::why),
        );
        assert!(whys.into_iter().all(|w| w.len() <= 120));
    }

    /// A unit of this charm related to `req` (relation 3, `api`) and `gw` (relation 4,
    /// `https`) whose LXD holds the Python charm's entry for req/0's certificate, charm-lxd's
    /// for gw's, an operator's grant for req/1's, and an operator's entry nobody asks for.
    struct World {
        agent: Agent,
        cluster: std::sync::Arc<std::sync::Mutex<Cluster>>,
        python: String,
        charm_lxd: String,
        operators: Vec<TrustEntry>,
    }

    impl World {
        fn new() -> World {
            let [a, b, g, nobody] = ["ams-0", "ams-1", "gateway", "laptop"].map(test_certs::self_signed);
            let mut agent = Agent::leader();
            let json = |p: &test_certs::Pem| serde_json::to_string(&[&p.cert_pem]).expect("json");
            let req = agent.relate(3, "req");
            req.units.insert("req/0".into(), [("client_certificates".to_string(), json(&a))].into());
            req.units.insert("req/1".into(), [("client_certificates".to_string(), json(&b))].into());
            agent.relate_on(Interface::LxdHttps, 4, "gw").app_bag =
                bag(&[("version", "1.0"), ("certificate", &g.cert_pem)]);
            let operators = vec![entry("ops-admin", &b), entry("laptop", &nobody)];
            let mut cluster = Cluster::new(&["https://127.0.0.1:8443"]);
            cluster.store = vec![entry("ams-0", &a), entry("juju-relation-gw", &g)];
            cluster.store.extend(operators.iter().cloned());
            World { agent, cluster: cluster.shared(), python: fp(&a), charm_lxd: fp(&g), operators }
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

        /// A hook's full pass, for the status it sets.
        fn hook(&mut self, name: &str) -> (String, String) {
            let ctx = HookContext {
                name: name.into(),
                unit: self.agent.unit.clone(),
                model_uuid: UUID.into(),
                ..Default::default()
            };
            let connector = MemoryConnector(self.cluster.clone());
            reconcile::run(&ctx, &mut Juju::new(&mut self.agent), &connector, Mode::HOOK).expect("hook tools work");
            self.agent.status.clone()
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
        let python = scope().entry_name(&owner(Interface::Lxd, 3, "req/0"));
        let charm_lxd = scope().entry_name(&owner(Interface::LxdHttps, 4, "gw"));

        // No parameter: a dry run, listing what it would take and what it leaves.
        w.adopt(serde_json::json!({}));
        let r = w.results();
        assert_eq!(w.failed(), None);
        assert_eq!((r["dry-run"].as_str(), r["count"].as_str()), ("yes", "2"), "{r:#?}");
        let taken = |i: usize| {
            let k = |f: &str| r[&format!("entries.{i}.{f}")].clone();
            (k("fingerprint"), k("old-name"), k("new-name"), k("unit"), k("endpoint"))
        };
        assert_eq!(taken(0), (w.python.clone(), "ams-0".into(), python.clone(), "req/0".into(), "api".into()));
        assert_eq!(
            taken(1),
            (w.charm_lxd.clone(), "juju-relation-gw".into(), charm_lxd.clone(), "gw".into(), "https".into())
        );
        assert_eq!(
            (r["left.count"].as_str(), r["left.0.name"].as_str(), r["left.0.unit"].as_str()),
            ("1", "ops-admin", "req/1")
        );
        assert_eq!(r["left.0.why"], Leave::OtherName.why());
        assert!(!r.values().any(|v| v == "laptop"), "an entry nobody asks for is not even listed");
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
            ("no", "2", "renamed")
        );
        let store = w.store();
        let name_of = |fp: &str| store.iter().find(|e| e.fingerprint == fp).map(|e| e.name.clone());
        assert_eq!((name_of(&w.python), name_of(&w.charm_lxd)), (Some(python), Some(charm_lxd)));
        for operators in &w.operators {
            assert!(store.contains(operators), "the operator's entry is untouched: {operators:?}");
        }
        let want = format!("trust: adopted {} for req/0 (relation 3), named \"ams-0\"", short_fp(&w.python));
        assert!(w.agent.logs.iter().any(|l| l.contains(&want)), "{want:?} in {:?}", w.agent.logs);

        w.adopt(serde_json::json!({"dry-run": false}));
        let r = w.results();
        assert_eq!((r["count"].as_str(), r["left.0.name"].as_str()), ("0", "ops-admin"));
    }

    #[test]
    fn the_status_points_to_adopt_only_while_it_would_take_something() {
        let mut w = World::new();
        let (kind, message) = w.hook("config-changed");
        assert_eq!(kind, "active");
        assert!(message.ends_with("3 held by entries not ours, 2 adoptable (run adopt)"), "{message}");
        w.adopt(serde_json::json!({"dry-run": false}));
        let (_, message) = w.hook("config-changed");
        // The operator's grant is still counted, but adopt would not take it: no advice.
        assert!(message.ends_with("1 held by entries not ours"), "{message}");
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
