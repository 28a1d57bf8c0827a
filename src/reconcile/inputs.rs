//! Everything a pass reads from Juju, in a few batched rounds, each thing read once.

use super::quiet::RequestDigest;
use super::state::Cache;
use crate::bag_stream::{Sink, Value};
use crate::certs;
use crate::config::Config;
use crate::context::{Hook, HookContext, RelationEvent};
use crate::credentials::{self, CredentialProblem, Credentials};
use crate::hook_tools::{ConnectionInputs, Juju, RelationInputs, ToolError};
use crate::interfaces;
use crate::limits;
use crate::ownership::{Interface, Owner, Scope, app_of};
use crate::relation::{Databag, RelationView};
use crate::requests::{MemberIntake, MemberRead, Protected, Taking};
use crate::timeline;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// What the pass starts from, read before LXD can be reached: credentials, config, the state
/// cache.
#[derive(Debug)]
pub(crate) struct Start {
    pub(crate) credentials: Result<Credentials, CredentialProblem>,
    /// Why the cloud credential was passed over for config, for the log.
    pub(crate) note: Option<String>,
    pub(crate) config: Config,
    pub(crate) cache: Cache,
    /// This unit is being removed: from now on it leaves LXD alone.
    pub(crate) leaving: bool,
}

pub(crate) fn read(ctx: &HookContext, juju: &mut Juju) -> Result<Start, ToolError> {
    let ConnectionInputs { credentials: answer, config, state } = juju.connection_inputs()?;
    timeline::mark("inputs: read");
    let config = Config::from_values(&config);
    // A second read, only when the config names a secret and trust gave nothing usable: its
    // ID is known only now. In `secret-changed` the latest revision becomes the one tracked.
    let secret = match credentials::secret_to_read(&answer, &config) {
        Some(uri) => Some(juju.secret_get(uri.as_str(), ctx.hook() == Some(Hook::SecretChanged))?),
        None => None,
    };
    let read = secret.as_ref().map(|answer| credentials::SecretRead { app: ctx.app(), answer });
    let (resolved, note) = credentials::resolve(&answer, read, &config);
    let credentials = resolved.and_then(|c| {
        credentials::check_validity(&c, certs::now_unix())?;
        crate::pin::check_material(&c)?;
        Ok(c)
    });
    timeline::mark("inputs: credentials checked");
    let mut cache = Cache::new(state);
    // A unit being removed sees its own name as the departing unit (of whichever relation
    // departs first); from then on it must not act on LXD, or a departing leader would
    // withdraw every certificate on its way out. A relation in which it had joined no remote
    // unit has no departed hook: its first hook of the removal is `-relation-broken`, which
    // alone cannot tell a unit leaving from a relation removed; Juju's goal state can.
    let leaving = cache.leaving()
        || (ctx.is_relation_hook(RelationEvent::Departed) && ctx.departing_unit.as_deref() == Some(ctx.unit.as_str()))
        || (ctx.is_relation_hook(RelationEvent::Broken) && juju.unit_dying(&ctx.unit)?);
    if leaving {
        cache.mark_leaving();
    }
    Ok(Start { credentials, note, config, cache, leaving })
}

/// All a pass read from Juju, each thing once: with `Observed`, everything `decide` looks at.
#[derive(Debug)]
pub(crate) struct Inputs {
    /// Whose trust entries are ours: this model's application.
    pub(crate) scope: Scope,
    pub(crate) creds: Credentials,
    /// Certificates no requirer may have trusted or withdrawn on its behalf.
    pub(crate) protected: Protected,
    pub(crate) config: Config,
    /// This unit is being removed: from now on it leaves LXD alone.
    pub(crate) leaving: bool,
    pub(crate) relations: Relations,
}

/// The certificates no requirer may have trusted or withdrawn on its behalf: the integrator's
/// own credential (removing it would lock the charm out) and the server's certificate.
pub(crate) fn protected(creds: &Credentials) -> Protected {
    let mut out = Protected::default();
    let named = [
        (&creds.tls.client_cert_pem, "the integrator's own credential certificate"),
        (&creds.tls.server_cert_pem, "the LXD server's certificate"),
    ];
    for (pem, what) in named {
        for block in certs::pem_blocks(pem).unwrap_or_default() {
            out.fingerprints.insert(certs::fingerprint(&block.der), what);
        }
    }
    out
}

/// Leadership and the live relations, read while LXD is observed.
#[derive(Debug)]
pub(crate) struct Relations {
    pub(crate) leader: bool,
    /// Just before `is-leader` answered: leadership is guaranteed for 30 s from here.
    pub(crate) leadership_asked: Instant,
    /// The live relations: ids, endpoints, remote applications. Their databags are not kept
    /// (`units` and `app_data` stay empty): only what was read from them, below.
    pub(crate) views: Vec<RelationView>,
    /// What this unit last published: (relation id, is-app) → the keys its endpoint writes.
    pub(crate) ours: BTreeMap<(u32, bool), Databag>,
    /// What every remote member asked, read as its databag arrived; `interfaces::settle`
    /// settles it once LXD has answered.
    pub(crate) asked: Vec<MemberRead>,
    /// What each remote unit asked, digested (`quiet::request_digest`), for later change hooks.
    pub(crate) digests: Vec<String>,
}

/// Leadership and the ids of the live relations: all a quiet `update-status` reads of them.
#[derive(Debug, Clone)]
pub(crate) struct Leadership {
    pub(crate) leader: bool,
    /// Just before `is-leader` answered: leadership is guaranteed for 30 s from here.
    pub(crate) asked: Instant,
    /// Every relation of every endpoint (`api` first, then `https`), each id once.
    pub(crate) relation_ids: Vec<(Interface, u32)>,
}

pub(crate) fn read_leadership(juju: &mut Juju) -> Result<Leadership, ToolError> {
    let asked = Instant::now();
    let endpoints = Interface::ALL.map(Interface::endpoint);
    let RelationInputs { leader, relation_ids } = juju.relation_inputs(&endpoints)?;
    timeline::mark("inputs: leadership");
    let relation_ids = Interface::ALL
        .into_iter()
        .zip(relation_ids)
        .flat_map(|(i, ids)| ids.into_iter().map(move |id| (i, id)))
        .collect();
    Ok(Leadership { leader, asked, relation_ids })
}

/// Reads leadership, then every live relation of every endpoint.
pub(crate) fn read_relations(
    ctx: &HookContext,
    juju: &mut Juju,
    publish: bool,
    leaving: bool,
    protected: &Protected,
) -> Result<Relations, ToolError> {
    let leadership = read_leadership(juju)?;
    read_databags(ctx, juju, leadership, publish, leaving, protected)
}

/// Reads every live relation's databags: the breaking relation and departing units are left
/// out. With `publish`, this unit's own databags are read too (to write only what changed);
/// only a leader that stays may read its application's bag. Requests are read out of the
/// remote databags as they arrive (`protected`: certificates no requirer may ask for).
pub(crate) fn read_databags(
    ctx: &HookContext,
    juju: &mut Juju,
    leadership: Leadership,
    publish: bool,
    leaving: bool,
    protected: &Protected,
) -> Result<Relations, ToolError> {
    let Leadership { leader, asked, relation_ids } = leadership;
    let own = OwnBags { unit: publish, app: publish && leader && !leaving };
    let taking = Taking { now: certs::now_unix(), protected: Arc::new(protected.clone()) };
    let read = read_bags(ctx, juju, &relation_ids, own, &taking)?;
    Ok(Relations {
        leader,
        leadership_asked: asked,
        views: read.views,
        ours: read.ours,
        asked: read.asked,
        digests: read.digests,
    })
}

/// What remote `unit` of relation `rel` asks, digested as its databag is read: all a quiet
/// change hook reads of it.
pub(crate) fn unit_request_digest(juju: &mut Juju, rel: u32, unit: &str) -> Result<String, ToolError> {
    let bag = [(rel, unit.to_string(), false)];
    let mut read = juju.relation_gets_into(&bag, vec![RequestDigest::new(rel, unit)], limits::DATABAG_BYTES)?;
    let digest =
        read.pop().ok_or_else(|| ToolError::Output { tool: "relation-get".into(), detail: "no answer".into() })?;
    Ok(digest.finish())
}

#[derive(Debug, Clone, Copy)]
struct OwnBags {
    unit: bool,
    app: bool,
}

/// Whose databag a read is for.
enum Bag {
    RemoteUnit(String),
    RemoteApp,
    Own { app: bool },
}

/// What is kept of one databag as it arrives: never the databag itself.
enum Keep {
    /// A remote unit's or application's: what its endpoint reads there (nothing when the
    /// member's name names no owner), and for a unit the digest of its request.
    Remote { intake: Option<Box<dyn MemberIntake>>, digest: Option<RequestDigest> },
    /// This unit's own or its application's: the keys its endpoint writes, to write only what
    /// changed.
    Own { keys: &'static [&'static str], bag: Databag },
}

impl Sink for Keep {
    fn pair(&mut self, key: &str, value: Value<'_>) {
        match self {
            Keep::Remote { intake, digest } => {
                if let Some(digest) = digest {
                    digest.pair(key, value);
                }
                if let Some(intake) = intake {
                    intake.key(key, value);
                }
            }
            // What the charm wrote there is far inside the bound it is read with.
            Keep::Own { keys, bag } => {
                if let (true, Value::Text(text)) = (keys.contains(&key), value) {
                    bag.insert(key.to_string(), text.to_string());
                }
            }
        }
    }
}

/// All that is kept of the relations' databags.
struct Read {
    views: Vec<RelationView>,
    ours: BTreeMap<(u32, bool), Databag>,
    asked: Vec<MemberRead>,
    digests: Vec<String>,
}

/// Reads that do not depend on each other go out together: all unit lists, then all databags.
fn read_bags(
    ctx: &HookContext,
    juju: &mut Juju,
    ids: &[(Interface, u32)],
    own: OwnBags,
    taking: &Taking,
) -> Result<Read, ToolError> {
    let breaking = if ctx.is_relation_hook(RelationEvent::Broken) { ctx.relation_id } else { None };
    let ids: Vec<(Interface, u32)> = ids.iter().copied().filter(|(_, id)| Some(*id) != breaking).collect();
    let numbers: Vec<u32> = ids.iter().map(|(_, id)| *id).collect();
    let lists = juju.relation_lists(&numbers)?;
    let mut views = Vec::new();
    // Side by side: whose bag each read is for (relation index, whose), and the read itself.
    let mut whose: Vec<(usize, Bag)> = Vec::new();
    let mut reads: Vec<(u32, String, bool)> = Vec::new();
    for (i, ((interface, id), units)) in ids.into_iter().zip(lists).enumerate() {
        // The departing unit leaves the relation this hook is for; a unit of the same
        // application on another relation (`api` beside `https`) stays until its own hook.
        let departing = ctx.departing_unit.as_deref().filter(|_| ctx.relation_id == Some(id));
        let units: Vec<String> = units.into_iter().filter(|u| departing != Some(u.as_str())).collect();
        let remote_app = match units.first() {
            Some(u) => Some(app_of(u).to_string()),
            None if ctx.relation_id == Some(id) => ctx.remote_app.clone(),
            None => juju.relation_list_app(id)?,
        };
        for unit in units {
            whose.push((i, Bag::RemoteUnit(unit.clone())));
            reads.push((id, unit, false));
        }
        if let Some(app) = remote_app.as_ref().filter(|a| !a.is_empty()) {
            whose.push((i, Bag::RemoteApp));
            reads.push((id, app.clone(), true));
        }
        if own.unit {
            whose.push((i, Bag::Own { app: false }));
            reads.push((id, ctx.unit.clone(), false));
        }
        if own.app {
            whose.push((i, Bag::Own { app: true }));
            reads.push((id, ctx.app().to_string(), true));
        }
        views.push(RelationView { id, interface, remote_app: remote_app.unwrap_or_default(), ..Default::default() });
    }
    let sinks =
        whose.iter().zip(&reads).map(|((i, whose), (id, member, _))| keep(&views[*i], *id, member, whose, taking));
    let kept = juju.relation_gets_into(&reads, sinks.collect(), limits::DATABAG_BYTES)?;
    Ok(gather(views, whose, reads, kept))
}

/// The sink for one read of relation `view` (`id`), of `member`'s databag.
fn keep(view: &RelationView, id: u32, member: &str, whose: &Bag, taking: &Taking) -> Keep {
    let served = interfaces::served(view.interface);
    let intake = || Owner::from_member_on(view.interface, id, member).map(|owner| (served.intake)(owner, taking));
    match whose {
        Bag::RemoteUnit(unit) => Keep::Remote { intake: intake(), digest: Some(RequestDigest::new(id, unit)) },
        Bag::RemoteApp => Keep::Remote { intake: intake(), digest: None },
        Bag::Own { .. } => Keep::Own { keys: served.provider_keys, bag: Databag::new() },
    }
}

/// What was kept of each read, by whose it was.
fn gather(
    views: Vec<RelationView>,
    whose: Vec<(usize, Bag)>,
    reads: Vec<(u32, String, bool)>,
    kept: Vec<Keep>,
) -> Read {
    let mut read = Read { views, ours: BTreeMap::new(), asked: Vec::new(), digests: Vec::new() };
    for (((i, whose), (id, member, _)), keep) in whose.into_iter().zip(reads).zip(kept) {
        let Some(view) = read.views.get(i) else { continue };
        match (whose, keep) {
            (Bag::Own { app }, Keep::Own { bag, .. }) => {
                read.ours.insert((id, app), bag);
            }
            (whose, Keep::Remote { intake, digest }) => {
                read.digests.extend(digest.map(RequestDigest::finish));
                let app = matches!(whose, Bag::RemoteApp);
                if let Some(intake) = intake {
                    read.asked.push(MemberRead { interface: view.interface, relation: i, app, name: member, intake });
                }
            }
            _ => {}
        }
    }
    read
}

#[cfg(test)]
mod tests {
    use crate::context::HookContext;
    use crate::hook_tools::Juju;
    use crate::memory::{Agent, Cluster, MEMORY_CLIENT_CERT, MEMORY_CLIENT_KEY, MEMORY_SERVER_CERT, MemoryConnector};
    use crate::reconcile::{self, Mode};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// Where the operator pointed the `lxd_*` options: another cluster than the cloud's.
    const ELSEWHERE: &str = "https://10.9.9.9:8443";

    fn ctx(agent: &Agent, name: &str, is_action: bool) -> HookContext {
        HookContext { name: name.into(), is_action, unit: agent.unit.clone(), ..Default::default() }
    }

    fn hook(agent: &mut Agent, cluster: &Arc<Mutex<Cluster>>, name: &str) {
        let connector = MemoryConnector(cluster.clone());
        reconcile::run(&ctx(agent, name, false), &mut Juju::new(agent), &connector, Mode::HOOK).expect("hook tools");
    }

    fn check_connection(agent: &mut Agent, cluster: &Arc<Mutex<Cluster>>) -> BTreeMap<String, String> {
        agent.start_action(BTreeMap::new());
        let connector = MemoryConnector(cluster.clone());
        crate::actions::run(&ctx(agent, "check-connection", true), &mut Juju::new(agent), &connector).expect("action");
        agent.action.as_ref().map(|a| a.results.clone()).unwrap_or_default()
    }

    #[test]
    fn with_trust_granted_and_the_options_set_the_status_names_trust_and_the_log_names_the_options_once() {
        let mut agent = Agent::leader();
        let cluster = Cluster::new(&["https://127.0.0.1:8443"]).shared();
        let options = [
            ("lxd_endpoint", ELSEWHERE),
            ("lxd_client_cert", MEMORY_CLIENT_CERT),
            ("lxd_client_key", MEMORY_CLIENT_KEY),
            ("lxd_server_cert", MEMORY_SERVER_CERT),
        ];
        for (k, v) in options {
            agent.config.insert(k.into(), serde_json::json!(v));
        }
        for name in ["config-changed", "update-status", "config-changed"] {
            hook(&mut agent, &cluster, name);
        }
        assert_eq!(
            agent.status,
            ("active".to_string(), "1/1 members online, 0 clients trusted (credential: juju trust)".to_string())
        );
        let said = "the lxd_* options are ignored while the juju trust credential is in use \
                    (set: lxd_endpoint, lxd_client_cert, lxd_client_key, lxd_server_cert)";
        assert_eq!(agent.logs.iter().filter(|l| l.contains(said)).count(), 1, "once: {:?}", agent.logs);
        let key_line = MEMORY_CLIENT_KEY.lines().nth(1).unwrap_or(MEMORY_CLIENT_KEY);
        assert!(!agent.logs.iter().any(|l| l.contains("10.9.9.9") || l.contains(key_line)), "never the values");

        let r = check_connection(&mut agent, &cluster);
        let got = |k: &str| r.get(k).map(String::as_str);
        assert_eq!((got("credentials"), got("credentials-setting")), (Some("juju trust"), Some("juju trust")));
        assert_eq!(got("credentials-ignored"), Some("lxd_* options"));
        assert_eq!(
            (got("configured-endpoint"), got("endpoint")),
            (Some("https://127.0.0.1:8443"), Some("https://127.0.0.1:8443"))
        );

        // Only one source set: nothing to tell apart, so nothing added.
        for (k, _) in options {
            agent.config.remove(k);
        }
        hook(&mut agent, &cluster, "config-changed");
        assert_eq!(agent.status.1, "1/1 members online, 0 clients trusted");
        assert_eq!(check_connection(&mut agent, &cluster).get("credentials-ignored"), None);
    }
}
