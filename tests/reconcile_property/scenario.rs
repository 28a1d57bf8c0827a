//! The scenario behind `tests/reconcile_property.rs` (proptest) and
//! `fuzz/fuzz_targets/reconcile.rs` (libFuzzer): what a leader unit is given, the passes it
//! runs over it, and the invariants every pass must keep.
//!
//! A scenario is a small description (which pool certificate, how many bytes of padding,
//! how many garbage entries), rendered into megabytes only when run: a shrunk counterexample
//! prints as a few readable lines instead of the bytes it stands for.
#![allow(dead_code)]

use lxd_integrator::certs;
use lxd_integrator::dispatch::HookContext;
use lxd_integrator::hook_tools::Juju;
use lxd_integrator::https;
use lxd_integrator::limits;
use lxd_integrator::memory::{
    Agent, Call, Cluster, Excerpt, MEMORY_CLIENT_KEY, MEMORY_SERVER_CERT, MemoryConnector, cloud_credential,
};
use lxd_integrator::ownership::Interface;
use lxd_integrator::reconcile::{self, Mode};
use lxd_integrator::relation::KEY_CLIENT_CERTS;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};

/// In every secret and every piece of garbage: none of it may ever appear in what the charm
/// sends, since any of it may be a key.
pub const MARKER: &str = "SECRET-MARKER";

pub const MIB: usize = 1024 * 1024;

// --- Certificates.

/// A certificate a requirer may send, and the key it was made with.
pub struct PoolCert {
    pub pem: String,
    pub fingerprint: String,
    /// Self-signed with `CA:TRUE`: LXD trusts these as client certificates too.
    pub ca: bool,
}

/// Leaves first, then CAs; P-256 and P-384 alternate.
pub const POOL_SIZE: usize = 8;
const POOL_CAS: usize = 3;

pub static POOL: LazyLock<Vec<PoolCert>> = LazyLock::new(|| {
    (0..POOL_SIZE)
        .map(|i| {
            let ca = i >= POOL_SIZE - POOL_CAS;
            let alg = if i % 2 == 0 { &rcgen::PKCS_ECDSA_P256_SHA256 } else { &rcgen::PKCS_ECDSA_P384_SHA384 };
            let (pem, der, _) = make_cert(&format!("requirer-{i}"), ca, alg);
            PoolCert { fingerprint: certs::fingerprint(&der), pem, ca }
        })
        .collect()
});

/// A real private key pasted into `lxd_client_key` (where it belongs) and one a requirer
/// pasted into `client_certificates` (where it does not).
pub static RELATION_KEY: LazyLock<String> = LazyLock::new(p256_key);
/// The charm's own client certificate and its key, for `lxd_client_cert` and `lxd_client_key`:
/// a matching pair, as the charm checks.
static CONFIG_PAIR: LazyLock<(String, Vec<u8>, String)> =
    LazyLock::new(|| make_cert("lxd-integrator", false, &rcgen::PKCS_ECDSA_P256_SHA256));
pub static CONFIG_CERT: LazyLock<String> = LazyLock::new(|| CONFIG_PAIR.0.clone());
pub static CONFIG_KEY: LazyLock<String> = LazyLock::new(|| CONFIG_PAIR.2.clone());

fn make_cert(cn: &str, ca: bool, alg: &'static rcgen::SignatureAlgorithm) -> (String, Vec<u8>, String) {
    let key = rcgen::KeyPair::generate_for(alg).expect("key generation");
    let mut params = rcgen::CertificateParams::new(vec![cn.to_string()]).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let cert = params.self_signed(&key).expect("self-signed");
    (cert.pem(), cert.der().to_vec(), key.serialize_pem())
}

fn p256_key() -> String {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key generation").serialize_pem()
}

/// The part of a P-256 PKCS#8 PEM that is secret: base64 characters 48..80 of the body are
/// the private scalar. (The first 48 encode a header every P-256 key shares; the tail is the
/// public key, which the certificate publishes anyway.)
pub fn key_secret(pem: &str) -> String {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    body.get(48..80).unwrap_or(&body).to_string()
}

/// A PEM private key whose body is a marker: recognisably a key, to the charm and to us.
pub fn marker_key(label: &str, tag: &str) -> String {
    format!("-----BEGIN {label}-----\n{MARKER}-{tag}\n-----END {label}-----\n")
}

// --- What a scenario is made of.

/// One entry (or a run of entries) of a `client_certificates` list.
#[derive(Clone, PartialEq, Eq)]
pub enum Item {
    /// Pool certificate `i`, exactly as made.
    Cert(usize),
    /// Pool certificate `i` with `pad` bytes of whitespace around it, which LXD and the charm
    /// both ignore: the same certificate, spelled longer.
    Padded { cert: usize, pad: usize },
    /// `copies` entries of pool certificate `i`, each padded differently (`pad`, `pad + 1`,
    /// ...): one certificate, many spellings.
    Copies { cert: usize, copies: usize, pad: usize },
    /// `n` JSON numbers.
    Numbers(usize),
    /// `n` short strings that are no PEM at all.
    Strings(usize),
    /// `n` PEM blocks that are no certificate: marker labels, marker bodies.
    FakePem(usize),
    /// `n` private keys, real and marker ones.
    Keys(usize),
    /// One string of `n` bytes.
    Huge(usize),
}

/// One databag's `client_certificates`.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Absent,
    List(Vec<Item>),
    /// `n` bytes that are not JSON.
    NotJson(usize),
}

/// What the operator put in one of the `lxd_*` options.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Setting {
    Unset,
    /// What belongs there.
    Good,
    /// A PEM private key pasted in by mistake.
    Key,
    /// A URL or text with a password in it.
    Password,
}

/// What the operator put in `trust-projects`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Projects {
    Unset,
    Empty,
    /// `default`, which the cluster has.
    Default,
    /// A key pasted in: no LXD project is called that.
    Key,
    /// Text with a password in it (spaces and a `/`: no project can be called that either).
    Password,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CharmConfig {
    pub endpoint: Setting,
    pub client_cert: Setting,
    pub client_key: Setting,
    pub server_cert: Setting,
    pub projects: Projects,
}

/// A relation with one requirer application: on `api` each member's value is its
/// `client_certificates`; on `https` (`lxd-https`) the first string of it is its `certificate`,
/// beside `version: "1.0"`, and every other such relation also asks for `projects` (`default`
/// and a value that is no project name, carrying the marker).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Relation {
    pub https: bool,
    pub app_bag: Value,
    /// Unit `j` of the application is `req<i>/<j>`.
    pub units: Vec<Value>,
}

/// A large value that replaces what one member of one relation sends. Kept apart from the
/// many small values so that shrinking cuts its size first, where each try is expensive.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Large {
    /// Index into `Scenario::relations` (modulo their number).
    pub relation: usize,
    /// Index of the unit (modulo their number plus one; the one past the last is the
    /// application's bag).
    pub member: usize,
    /// How many members from there on send it (each spelling its padding one byte longer).
    pub members: usize,
    pub value: Value,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Scenario {
    /// `juju trust` granted: `credential-get` answers, and the config is not used.
    pub trusted: bool,
    pub config: CharmConfig,
    pub relations: Vec<Relation>,
    pub large: Vec<Large>,
}

pub const MAX_RELATIONS: usize = 3;
pub const MAX_UNITS: usize = 50;

const N1: &str = "https://127.0.0.1:8443";
const N2: &str = "https://127.0.0.2:8443";
const UNIT: &str = "lxd-integrator/0";

fn relation_id(i: usize) -> u32 {
    i as u32 + 1
}

fn app_name(i: usize) -> String {
    format!("req{}", i + 1)
}

// --- Rendering.

fn padding(n: usize) -> String {
    // Whitespace PEM readers skip; vertical tabs because JSON spells each in six bytes
    // (`\u000b`), which a hostile requirer would pick to make an echo as large as it can.
    repeat_to("\x0b \n\x0b\t\x0b\r\n", n)
}

/// `text` repeated to exactly `n` bytes (`text` is ASCII).
fn repeat_to(text: &str, n: usize) -> String {
    let mut out = text.repeat(n / text.len() + 1);
    out.truncate(n);
    out
}

impl Item {
    /// `spelling` lengthens every padding, so members sending "the same" value differ.
    fn render(&self, spelling: usize, out: &mut Vec<String>) {
        match *self {
            Item::Cert(i) => out.push(POOL[i % POOL_SIZE].pem.clone()),
            Item::Padded { cert, pad } => {
                let pad = pad + spelling;
                let p = padding(pad);
                let (before, after) = p.split_at(pad / 3);
                out.push(format!("{before}{}{after}", POOL[cert % POOL_SIZE].pem));
            }
            Item::Copies { cert, copies, pad } => {
                for k in 0..copies {
                    Item::Padded { cert, pad: pad + k }.render(spelling * copies, out);
                }
            }
            Item::Numbers(_) => {}
            Item::Strings(n) => out.extend((0..n).map(|k| format!("{MARKER}-{k}"))),
            Item::FakePem(n) => out.extend((0..n).map(|k| match k % 3 {
                0 => format!("-----BEGIN {MARKER}-{k}-----\nAAAA\n-----END {MARKER}-{k}-----\n"),
                1 => format!("-----BEGIN CERTIFICATE-----\n{MARKER}{k}\n-----END CERTIFICATE-----\n"),
                _ => format!("-----BEGIN CERTIFICATE-----\nMIIB{MARKER}{k}AAAA\n-----END CERTIFICATE-----\n{MARKER}"),
            })),
            Item::Keys(n) => out.extend((0..n).map(|k| match k % 3 {
                0 => RELATION_KEY.clone(),
                1 => marker_key("PRIVATE KEY", &format!("relation-key-{k}")),
                _ => format!("{}{}", POOL[k % POOL_SIZE].pem, marker_key("EC PRIVATE KEY", &format!("with-cert-{k}"))),
            })),
            Item::Huge(n) => out.push(repeat_to(&format!("{MARKER} "), n)),
        }
    }
}

impl Value {
    /// The databag value, or `None` when the key is absent.
    pub fn render(&self, spelling: usize) -> Option<String> {
        match self {
            Value::Absent => None,
            Value::NotJson(n) => Some(repeat_to(&format!("{MARKER} {{not json: "), (*n).max(1))),
            Value::List(items) => {
                let mut json = String::from("[");
                for item in items {
                    if let Item::Numbers(n) = item {
                        for k in 0..*n {
                            json.push_str(&format!("{k},"));
                        }
                        continue;
                    }
                    let mut strings = Vec::new();
                    item.render(spelling, &mut strings);
                    for s in strings {
                        json.push_str(&serde_json::to_string(&s).expect("a string is JSON"));
                        json.push(',');
                    }
                }
                if json.ends_with(',') {
                    json.pop();
                }
                json.push(']');
                Some(json)
            }
        }
    }

    /// The value as one `certificate` (`lxd-https`): the first string the list holds.
    pub fn render_one(&self, spelling: usize) -> Option<String> {
        match self {
            Value::Absent => None,
            Value::NotJson(_) => self.render(spelling),
            Value::List(items) => {
                let mut strings = Vec::new();
                for item in items {
                    item.render(spelling, &mut strings);
                    if let Some(first) = strings.first() {
                        return Some(first.clone());
                    }
                }
                Some(format!("{MARKER} no string"))
            }
        }
    }

    /// The pool certificate a correct charm must find in `render_one`'s value.
    pub fn valid_one(&self) -> Option<usize> {
        let Value::List(items) = self else { return None };
        // The item `render_one` takes its string from: the first that renders any.
        let first = items.iter().find(|i| {
            let mut strings = Vec::new();
            i.render(0, &mut strings);
            !strings.is_empty()
        })?;
        match first {
            Item::Cert(c) | Item::Padded { cert: c, .. } | Item::Copies { cert: c, .. } => Some(c % POOL_SIZE),
            _ => None,
        }
    }

    /// Pool certificates a correct charm must find in this value.
    pub fn valid(&self) -> BTreeSet<usize> {
        let Value::List(items) = self else { return BTreeSet::new() };
        items
            .iter()
            .filter_map(|i| match i {
                Item::Cert(c) | Item::Padded { cert: c, .. } | Item::Copies { cert: c, .. } => Some(c % POOL_SIZE),
                _ => None,
            })
            .collect()
    }
}

impl Setting {
    fn render(self, option: &str, good: impl FnOnce() -> String) -> Option<String> {
        match self {
            Setting::Unset => None,
            Setting::Good => Some(good()),
            Setting::Key => Some(marker_key("EC PRIVATE KEY", option)),
            Setting::Password => Some(format!("https://admin:{MARKER}-{option}@127.0.0.1:8443 password/{MARKER}")),
        }
    }
}

impl CharmConfig {
    pub fn render(&self) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        let mut set = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.insert(k.to_string(), serde_json::Value::String(v));
            }
        };
        set("lxd_endpoint", self.endpoint.render("lxd_endpoint", || N1.to_string()));
        set("lxd_client_cert", self.client_cert.render("lxd_client_cert", || CONFIG_CERT.clone()));
        set("lxd_client_key", self.client_key.render("lxd_client_key", || CONFIG_KEY.clone()));
        // Not a pool certificate: the server's certificate is never trusted for a requirer.
        set("lxd_server_cert", self.server_cert.render("lxd_server_cert", || MEMORY_SERVER_CERT.to_string()));
        set(
            "trust-projects",
            match self.projects {
                Projects::Unset => None,
                Projects::Empty => Some(String::new()),
                Projects::Default => Some("default".into()),
                Projects::Key => Some(marker_key("PRIVATE KEY", "trust-projects")),
                Projects::Password => Some(format!("default, {MARKER} password/hunter2")),
            },
        );
        out
    }

    /// The four `lxd_*` options together are usable credentials.
    fn credentials_usable(&self) -> bool {
        [self.endpoint, self.client_cert, self.client_key, self.server_cert].iter().all(|s| *s == Setting::Good)
    }
}

impl Scenario {
    /// Whether a correct charm can reach LXD and act on every request: usable credentials
    /// (trust, or four good options) and `trust-projects` naming only projects LXD has.
    pub fn workable(&self) -> bool {
        (self.trusted || self.config.credentials_usable())
            && matches!(self.config.projects, Projects::Unset | Projects::Empty | Projects::Default)
    }

    /// What every member sends: (relation index, unit index or `None` for the application,
    /// value, spelling), and whether a large value stands in for the small one.
    pub fn values(&self) -> Vec<(usize, Option<usize>, &Value, usize, bool)> {
        let mut out = Vec::new();
        for (i, rel) in self.relations.iter().enumerate() {
            let slots = rel.units.len() + 1;
            let large = |slot: usize| {
                self.large.iter().rev().find_map(|l| {
                    let k = (slot + slots - l.member % slots) % slots;
                    (l.relation % self.relations.len() == i && k < l.members.max(1)).then_some((&l.value, k))
                })
            };
            for slot in 0..slots {
                let (unit, small) = match rel.units.get(slot) {
                    Some(v) => (Some(slot), v),
                    None => (None, &rel.app_bag),
                };
                match large(slot) {
                    Some((value, spelling)) => out.push((i, unit, value, spelling, true)),
                    None => out.push((i, unit, small, 0, false)),
                }
            }
        }
        out
    }

    /// Fingerprints of every valid certificate sent anywhere.
    pub fn valid_fingerprints(&self) -> BTreeSet<String> {
        self.values()
            .into_iter()
            .flat_map(
                |(i, _, v, _, _)| if self.relations[i].https { v.valid_one().into_iter().collect() } else { v.valid() },
            )
            .map(|i| POOL[i].fingerprint.clone())
            .collect()
    }

    /// What must never appear in anything the charm sends.
    pub fn secrets(&self) -> Vec<String> {
        vec![MARKER.to_string(), key_secret(&CONFIG_KEY), key_secret(&RELATION_KEY), key_secret(MEMORY_CLIENT_KEY)]
    }

    /// The unit agent and the cluster this scenario starts from.
    pub fn world(&self) -> (Agent, Arc<Mutex<Cluster>>) {
        let mut agent = Agent::leader();
        agent.unit = UNIT.into();
        agent.trusted = self.trusted;
        // The cloud credential is real TLS material (the charm refuses anything else); its key
        // is one of the secrets scanned for.
        agent.credential = cloud_credential("127.0.0.1");
        agent.config = self.config.render();
        for (i, unit, value, spelling, _) in self.values() {
            let app = app_name(i);
            let https = self.relations[i].https;
            let remote =
                agent.relate_on(if https { Interface::LxdHttps } else { Interface::Lxd }, relation_id(i), &app);
            let bag = match unit {
                Some(j) => remote
                    .units
                    .entry(format!("{app}/{j}"))
                    .or_insert_with(|| [("private-address".to_string(), format!("10.0.{i}.{j}"))].into()),
                None => &mut remote.app_bag,
            };
            match (https, value.render_one(spelling)) {
                (false, _) => bag.extend(value.render(spelling).map(|v| (KEY_CLIENT_CERTS.to_string(), v))),
                (true, None) => {}
                (true, Some(v)) => {
                    bag.insert(https::KEY_VERSION.into(), https::VERSION.into());
                    bag.insert(https::KEY_CERTIFICATE.into(), v);
                    if i % 2 == 0 {
                        bag.insert(https::KEY_PROJECTS.into(), format!("default, {MARKER} password/x"));
                    }
                }
            }
        }
        let mut cluster = Cluster::new(&[N1, N2]);
        cluster.projects = Some(BTreeSet::from(["default".to_string()]));
        (agent, cluster.shared())
    }

    /// Runs the leader's pass `passes` times: a relation hook, then update-status ones.
    pub fn run(&self, passes: usize) -> Outcome {
        let mut out = self.start();
        for _ in 0..passes {
            out.pass();
        }
        out
    }

    /// The world before any pass; `Outcome::pass` runs the next one.
    pub fn start(&self) -> Outcome {
        let (agent, cluster) = self.world();
        let first_relation =
            self.relations.first().map(|r| (relation_id(0), app_name(0), if r.https { "https" } else { "api" }));
        Outcome { passes: Vec::new(), agent, cluster, first_relation }
    }

    /// Runs the passes one by one and checks after each, stopping at the first violation: a
    /// failing pass is not run again, which halves what shrinking costs.
    pub fn holds(&self, passes: usize, check: impl Fn(&Outcome) -> Result<(), String>) -> Result<(), String> {
        let mut out = self.start();
        for _ in 0..passes {
            out.pass();
            check(&out)?;
        }
        Ok(())
    }
}

fn context() -> HookContext {
    HookContext {
        unit: UNIT.into(),
        model_uuid: "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc".into(),
        ..HookContext::default()
    }
}

/// What one pass did.
pub struct Pass {
    pub result: Result<(), String>,
    /// Its calls in `Outcome::agent.calls`.
    pub calls: std::ops::Range<usize>,
    /// Fingerprints in the trust store after it.
    pub store: BTreeSet<String>,
    /// Those of entries not restricted to projects.
    pub unrestricted: BTreeSet<String>,
    /// Changes LXD refused (the next pass tries them again, and may say so again).
    pub lxd_refused: usize,
}

pub struct Outcome {
    pub passes: Vec<Pass>,
    pub agent: Agent,
    pub cluster: Arc<Mutex<Cluster>>,
    /// The relation (id, application, endpoint) the first pass runs the `-relation-changed`
    /// hook of.
    first_relation: Option<(u32, String, &'static str)>,
}

impl Outcome {
    /// Runs the next pass: the relation hook first, then update-status.
    pub fn pass(&mut self) {
        let ctx = match (&self.first_relation, self.passes.is_empty()) {
            (Some((id, app, endpoint)), true) => HookContext {
                name: format!("{endpoint}-relation-changed"),
                relation_id: Some(*id),
                remote_app: Some(app.clone()),
                ..context()
            },
            _ => HookContext { name: "update-status".into(), ..context() },
        };
        let first = self.agent.calls.len();
        let connector = MemoryConnector(self.cluster.clone());
        let report = reconcile::run(&ctx, &mut Juju::new(&mut self.agent), &connector, Mode::HOOK);
        let lxd_refused = report.as_ref().map_or(0, |r| r.changes.iter().filter(|c| c.error.is_some()).count());
        let (store, unrestricted) = match self.cluster.lock() {
            Ok(c) => {
                (c.fingerprints(), c.store.iter().filter(|e| !e.restricted).map(|e| e.fingerprint.clone()).collect())
            }
            Err(_) => Default::default(),
        };
        self.passes.push(Pass {
            result: report.map(drop).map_err(|e| e.to_string()),
            calls: first..self.agent.calls.len(),
            store,
            unrestricted,
            lxd_refused,
        });
    }

    fn calls(&self, pass: &Pass) -> &[Call] {
        &self.agent.calls[pass.calls.clone()]
    }
}

// --- The invariants.

/// (a) Every pass succeeds, and no call it makes would be refused on a real unit.
pub fn check_limits(o: &Outcome) -> Result<(), String> {
    for (n, pass) in o.passes.iter().enumerate() {
        let refused: Vec<&Call> = o.calls(pass).iter().filter(|c| c.refused.is_some()).collect();
        if let Some(first) = refused.first() {
            return Err(format!("pass {}: {} call(s) over a limit, first: {first:?}", n + 1, refused.len()));
        }
        if let Err(e) = &pass.result {
            return Err(format!("pass {} failed: {e}", n + 1));
        }
    }
    Ok(())
}

/// (b) When the charm can work, LXD trusts exactly the valid certificates sent (CA:TRUE ones
/// too: LXD trusts them) after every pass, the first included. When `trust-projects` is set
/// to something that names no project, nothing is trusted more widely than asked: no entry
/// is unrestricted.
pub fn check_trusted(s: &Scenario, o: &Outcome) -> Result<(), String> {
    let Some(last) = o.passes.last() else { return Ok(()) };
    if matches!(s.config.projects, Projects::Key | Projects::Password) && !last.unrestricted.is_empty() {
        return Err(format!("{} entries unrestricted although trust-projects is set", last.unrestricted.len()));
    }
    if !s.workable() {
        return Ok(());
    }
    let want = s.valid_fingerprints();
    if last.store == want {
        return Ok(());
    }
    let name = |fp: &String| match POOL.iter().position(|c| &c.fingerprint == fp) {
        Some(i) if POOL[i].ca => format!("cert#{i} (CA)"),
        Some(i) => format!("cert#{i}"),
        None => certs::short_fp(fp).to_string(),
    };
    let missing: Vec<String> = want.difference(&last.store).map(name).collect();
    let extra: Vec<String> = last.store.difference(&want).map(name).collect();
    Err(format!("trust store: missing {missing:?}, unexpected {extra:?}; last pass: {:?}", last.result))
}

/// Fixed cost of one pass, whatever the input: up to `LOG_CALLS_PER_LIST` messages of
/// `LOG_MESSAGE_BYTES` for each of four lists it may log (problems, changes, failures, a
/// note) is 128 KiB; reading up to 153 databags (~100 bytes of argv each), the status, the
/// state cache and the `nodes` lists fit in the other 128 KiB many times over.
pub const FIXED_BYTES: usize = 4 * limits::LOG_CALLS_PER_LIST * limits::LOG_MESSAGE_BYTES + 128 * 1024;
/// Cost of one more distinct valid certificate in one pass: its canonical PEM (~0.8 KiB,
/// ~1 KiB once JSON-escaped twice) in the unit and application databags of up to three
/// relations is 6 KiB; its fingerprint in `nodes` for two members and a log line add well
/// under 1 KiB per relation. 16 KiB is twice that.
pub const BYTES_PER_CERT: usize = 16 * 1024;

/// (c) What one pass sends (all argv and stdin) is bounded by the distinct valid certificates
/// it was given, never by how large the input was.
pub fn check_output_bound(s: &Scenario, o: &Outcome) -> Result<(), String> {
    let certs = s.valid_fingerprints().len();
    let bound = FIXED_BYTES + BYTES_PER_CERT * certs;
    for (n, pass) in o.passes.iter().enumerate() {
        let calls = o.calls(pass);
        let sent: usize = calls.iter().map(Call::bytes).sum();
        if sent > bound {
            let mut by_tool: BTreeMap<&str, usize> = BTreeMap::new();
            for c in calls {
                *by_tool.entry(c.tool.as_str()).or_default() += c.bytes();
            }
            let largest = calls.iter().max_by_key(|c| c.bytes());
            return Err(format!(
                "pass {}: sent {sent} bytes > {bound} ({FIXED_BYTES} + {BYTES_PER_CERT} x {certs} distinct valid certificates); by tool: {by_tool:?}; largest call: {largest:?}",
                n + 1
            ));
        }
    }
    Ok(())
}

/// (d) Nothing from the config or from relation data that is not a valid certificate (keys,
/// passwords, garbage, PEM labels) appears in anything the charm sends: logs, statuses,
/// relation data, state, action results.
pub fn check_no_echo(s: &Scenario, o: &Outcome) -> Result<(), String> {
    for secret in s.secrets() {
        if let Some(call) = o.agent.calls_containing(&secret).next() {
            return Err(format!("{} sent {secret:?}: {}", call.tool, around(call, &secret)));
        }
    }
    Ok(())
}

/// The text around the first `needle` in `call`.
fn around(call: &Call, needle: &str) -> String {
    let texts = call.args.iter().map(|a| a.as_bytes()).chain(call.stdin.as_deref());
    for t in texts {
        let Some(at) = t.windows(needle.len()).position(|w| w == needle.as_bytes()) else { continue };
        let start = at.saturating_sub(60);
        let end = (at + needle.len() + 20).min(t.len());
        return format!("…{:?}… (in {} bytes)", Excerpt(&t[start..end]), t.len());
    }
    format!("{call:?}")
}

/// (e) A second pass over the same input changes nothing: no LXD change, no relation data,
/// no state, no status, no log. (Only after a pass that did all its work: one that failed, or
/// that LXD refused a change to, left something for the next to try again.)
/// A pass that changed LXD is followed by one that may still write its state cache (it
/// records that the unit is steady, for a quiet `update-status`); once a pass found nothing
/// to change, the next writes nothing at all.
pub fn check_idempotent(o: &Outcome) -> Result<(), String> {
    for w in o.passes.windows(3) {
        let [earlier, before, after] = w else { continue };
        if before.result.is_err() || before.lxd_refused > 0 || earlier.result.is_err() || earlier.store != before.store
        {
            continue;
        }
        if after.store != before.store {
            return Err("the trust store changed on a pass with the same input".into());
        }
        let writes: Vec<&Call> = o
            .calls(after)
            .iter()
            .filter(|c| matches!(c.tool.as_str(), "relation-set" | "state-set" | "status-set" | "juju-log"))
            .collect();
        if !writes.is_empty() {
            return Err(format!("a pass with the same input wrote again: {writes:?}"));
        }
    }
    Ok(())
}

// --- Readable counterexamples.

fn member_name(app: &str, unit: Option<usize>) -> String {
    unit.map_or(format!("{app} (application bag)"), |j| format!("{app}/{j}"))
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Item::Cert(i) if POOL_SIZE - i % POOL_SIZE <= POOL_CAS => write!(f, "cert#{} (CA)", i % POOL_SIZE),
            Item::Cert(i) => write!(f, "cert#{}", i % POOL_SIZE),
            Item::Padded { cert, pad } => write!(f, "cert#{} padded with {pad} B of whitespace", cert % POOL_SIZE),
            Item::Copies { cert, copies, pad } => {
                write!(f, "{copies} copies of cert#{} padded with {pad}+ B each", cert % POOL_SIZE)
            }
            Item::Numbers(n) => write!(f, "{n} numbers"),
            Item::Strings(n) => write!(f, "{n} short strings"),
            Item::FakePem(n) => write!(f, "{n} fake PEM blocks"),
            Item::Keys(n) => write!(f, "{n} private keys"),
            Item::Huge(n) => write!(f, "one {n} B string"),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Absent => write!(f, "no client_certificates"),
            Value::NotJson(n) => write!(f, "{n} B of non-JSON"),
            Value::List(items) => write!(f, "{items:?}"),
        }
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "juju trust: {}; config: {:?}", if self.trusted { "granted" } else { "not granted" }, self.config)?;
        let values = self.values();
        for (i, rel) in self.relations.iter().enumerate() {
            let app = app_name(i);
            let (endpoint, key) = if rel.https {
                ("https", "certificate (the first string below)")
            } else {
                ("api", "client_certificates")
            };
            writeln!(
                f,
                "  {endpoint} relation {} with {app} ({} units; those not listed send no {key}):",
                relation_id(i),
                rel.units.len()
            )?;
            for (_, unit, v, _, _) in values.iter().filter(|x| x.0 == i && !x.4 && *x.2 != Value::Absent) {
                writeln!(f, "    {}: {v:?}", member_name(&app, *unit))?;
            }
            // A large value is one line, however many members send it.
            let large: Vec<_> = values.iter().filter(|x| x.0 == i && x.4).collect();
            let mut k = 0;
            while let Some((_, unit, v, _, _)) = large.get(k) {
                let n = large[k..].iter().take_while(|x| x.2 == *v).count();
                let who = if n > 1 {
                    format!("{} members from {}", n, member_name(&app, *unit))
                } else {
                    member_name(&app, *unit)
                };
                let spelled = if n > 1 { ", each padded one byte more than the last" } else { "" };
                writeln!(f, "    {who}: {v:?}{spelled}")?;
                k += n;
            }
        }
        Ok(())
    }
}
