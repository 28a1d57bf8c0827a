//! The test bed every scenario of one suite shares: one real cluster (LXD or Incus, as the
//! suite says), the charm assembled from the binary cargo just built, and the Python `ops`
//! requirer charm. Each scenario gets a `World`:
//! its own simulated Juju model (own model UUID, so its trust entries are its own) and its own
//! integrator identity trusted in LXD. A scenario about LXD's PKI mode starts a bed of its own
//! on a cluster in that mode ([`Bed::pki`]).

use anyhow::{Context, Result, anyhow, bail, ensure};
use jujusim::{RelationId, Sim};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::certs::{self, Pem};
use testbed::{LxdCluster, ServerKind};

pub const INTEGRATOR: &str = "lxd-integrator";
pub const REQUIRER: &str = "req";
pub const MEMBERS: usize = 3;
/// The integrator's first unit, the leader unless a scenario moves leadership.
pub const I0: &str = "lxd-integrator/0";

pub type Databag = BTreeMap<String, String>;

pub struct Bed {
    pub cluster: LxdCluster,
    pub charm_dir: PathBuf,
    pub requirer_dir: PathBuf,
    pub work: PathBuf,
    provider_schema: jsonschema::Validator,
    requirer_schema: jsonschema::Validator,
    next_world: usize,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `{"$defs": ..., "$ref": "#/$defs/decoded"}`: the schema of a databag after its JSON-holding
/// values are decoded (validators do not apply `contentSchema` themselves).
fn decoded_validator(file: &str) -> Result<jsonschema::Validator> {
    let text =
        std::fs::read_to_string(repo().join("docs/schemas").join(file)).with_context(|| format!("reading {file}"))?;
    let doc: Value = serde_json::from_str(&text)?;
    let schema = json!({"$defs": doc["$defs"].clone(), "$ref": "#/$defs/decoded"});
    jsonschema::validator_for(&schema).map_err(|e| anyhow!("{file}: {e}"))
}

impl Bed {
    pub fn start(kind: ServerKind) -> Result<Bed> {
        let work = std::env::temp_dir().join(format!("lxd-integrator-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        let charm_dir = work.join("charm");
        xtask::assemble_charm_dir(Path::new(env!("CARGO_BIN_EXE_lxd-integrator")), &charm_dir)
            .context("assembling the charm")?;
        let requirer_dir = repo().join("tests/requirer-charm");
        let setup =
            std::process::Command::new("sh").arg(requirer_dir.join("setup.sh")).current_dir(&requirer_dir).status()?;
        ensure!(setup.success(), "tests/requirer-charm/setup.sh failed: {setup}");
        let cluster = LxdCluster::start_kind(kind, MEMBERS)
            .with_context(|| format!("starting the {kind} cluster (the e2e scenarios need a real one)"))?;
        eprintln!("e2e: {kind} cluster of {MEMBERS} up in {:.1?} at {:?}", cluster.startup_time(), cluster.endpoints());
        Ok(Bed {
            cluster,
            charm_dir,
            requirer_dir,
            work,
            provider_schema: decoded_validator("provider.json")?,
            requirer_schema: decoded_validator("requirer.json")?,
            next_world: 0,
        })
    }

    /// A bed of its own beside this one, on a new cluster of the same kind in LXD's PKI mode
    /// (`LxdCluster::start_pki_kind`): the same charm; its worlds' credentials pin the CA, as an
    /// operator in PKI mode does, and their identities are issued by the CA. Its cluster and
    /// files go when it is dropped.
    pub fn pki(&self) -> Result<Bed> {
        let kind = self.cluster.kind();
        let cluster = LxdCluster::start_pki_kind(kind, MEMBERS)
            .with_context(|| format!("starting a {kind} cluster in PKI mode"))?;
        eprintln!("e2e: {kind} PKI cluster of {MEMBERS} up in {:.1?}", cluster.startup_time());
        // Named after the cluster's run dir (`127.X.Y`), unique while the cluster runs.
        let run = cluster.run_dir().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let work = self.work.join(format!("pki-{run}"));
        std::fs::create_dir_all(&work)?;
        Ok(Bed {
            cluster,
            charm_dir: self.charm_dir.clone(),
            requirer_dir: self.requirer_dir.clone(),
            work,
            provider_schema: decoded_validator("provider.json")?,
            requirer_schema: decoded_validator("requirer.json")?,
            next_world: 0,
        })
    }

    /// What a credential pins: the CA in PKI mode, else the certificate every member presents.
    pub fn pinned_pem(&self) -> &str {
        self.cluster.ca().map_or(self.cluster.cluster_cert_pem(), |ca| ca.pem.cert_pem.as_str())
    }

    pub fn world(&mut self, name: &str) -> Result<World<'_>> {
        self.next_world += 1;
        let root = self.work.join(format!("{:02}-{name}", self.next_world));
        let sim = Sim::new(&root, name)?;
        let cn = format!("integrator-{name}");
        let identity = match self.cluster.ca() {
            Some(ca) => ca.issue_client(&cn)?,
            None => certs::client_cert(&cn)?,
        };
        let identity_name = format!("e2e-integrator-{}", self.next_world);
        self.cluster.trust_add(&identity_name, &identity.cert_pem)?;
        Ok(World { bed: self, sim, identity, endpoint: 0, charm_override: None })
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

pub struct World<'a> {
    pub bed: &'a mut Bed,
    pub sim: Sim,
    /// The integrator's own LXD client identity (trusted at creation).
    pub identity: Pem,
    /// Which member the cloud credential names.
    pub endpoint: usize,
    /// Deploy this charm directory instead of the one assembled from the test binary.
    pub charm_override: Option<PathBuf>,
}

impl World<'_> {
    pub fn cluster(&mut self) -> &mut LxdCluster {
        &mut self.bed.cluster
    }

    pub fn cloud_spec(&self) -> Value {
        json!({
            "type": "lxd", "name": "localhost", "region": "localhost",
            "endpoint": format!("https://{}", self.bed.cluster.endpoint(self.endpoint)),
            "credential": {"auth-type": "certificate", "attrs": {
                "client-cert": self.identity.cert_pem,
                "client-key": self.identity.key_pem,
                "server-cert": self.bed.pinned_pem(),
            }},
            "is-controller-cloud": false
        })
    }

    /// `juju deploy lxd-integrator -n units` (+ `juju trust` when `trusted`).
    pub fn deploy_integrator(&mut self, units: u32, trusted: bool) -> Result<()> {
        let spec = self.cloud_spec();
        self.sim.set_cloud_spec(spec)?;
        let dir = self.charm_override.clone().unwrap_or_else(|| self.bed.charm_dir.clone());
        self.sim.deploy(INTEGRATOR, &dir, units)?;
        if trusted {
            self.sim.trust(INTEGRATOR, true)?;
        }
        Ok(())
    }

    pub fn deploy_requirer(&mut self, units: u32) -> Result<()> {
        let dir = self.bed.requirer_dir.clone();
        self.sim.deploy(REQUIRER, &dir, units)?;
        Ok(())
    }

    pub fn relate(&mut self) -> Result<RelationId> {
        self.sim.relate(&format!("{INTEGRATOR}:api"), &format!("{REQUIRER}:lxd"))
    }

    /// The requirer unit sends `value` verbatim as `client_certificates`.
    pub fn send_raw(&mut self, unit: &str, value: &str) -> Result<()> {
        let r = self.sim.run_action(unit, "set-certificates", json!({"value": value}))?;
        ensure!(r.status == "completed", "set-certificates on {unit}: {r:?}");
        Ok(())
    }

    /// A well-behaved requirer: the value it sends must match docs/schemas/requirer.json.
    pub fn send(&mut self, unit: &str, pems: &[&str]) -> Result<()> {
        if let Err(e) = self.bed.requirer_schema.validate(&json!({"client_certificates": pems})) {
            bail!("test requirer payload violates docs/schemas/requirer.json: {e}");
        }
        self.send_raw(unit, &serde_json::to_string(pems)?)
    }

    /// A unit's workload status; a unit in error fails the scenario with the hook's output.
    pub fn status(&self, unit: &str) -> Result<(String, String)> {
        let st = self.sim.unit_status(unit)?;
        if st.0 == "error" {
            self.check()?;
        }
        Ok(st)
    }

    pub fn update_status(&mut self) -> Result<()> {
        self.sim.update_status(INTEGRATOR)
    }

    /// The integrator unit's databag on `rel`, checked against the interface schema.
    pub fn payload(&self, rel: RelationId, unit: &str) -> Result<Databag> {
        let bag = self.sim.relation_data(rel, unit)?;
        self.validate_provider(&bag)?;
        Ok(bag.into_iter().collect())
    }

    pub fn validate_provider(&self, bag: &BTreeMap<String, String>) -> Result<()> {
        let mut decoded = serde_json::Map::new();
        for (k, v) in bag {
            let value = match k.as_str() {
                "nodes" | "registered_certificates" => {
                    serde_json::from_str(v).with_context(|| format!("{k} is not JSON"))?
                }
                _ => Value::String(v.clone()),
            };
            decoded.insert(k.clone(), value);
        }
        let instance = Value::Object(decoded);
        if let Err(e) = self.bed.provider_schema.validate(&instance) {
            bail!("provider payload violates docs/schemas/provider.json: {e}\n{instance:#}");
        }
        // What the schema cannot say: the fingerprint is the first certificate's.
        if let (Some(pem), Some(fp)) = (bag.get("server_certificate"), bag.get("server_certificate_fingerprint")) {
            ensure!(&certs::fingerprint_pem(pem)? == fp, "server_certificate_fingerprint is not server_certificate's");
        }
        Ok(())
    }

    /// The integrator's endpoint in relation `rel` (`api`, `https`).
    pub fn integrator_endpoint(&self, rel: RelationId) -> Result<String> {
        let model = self.sim.model()?;
        let ep = model.relations.get(&rel).and_then(|r| r.endpoints.iter().find(|e| e.app == INTEGRATOR));
        Ok(ep.ok_or_else(|| anyhow!("relation {rel} has no {INTEGRATOR} endpoint"))?.endpoint.clone())
    }

    pub fn nodes(&self, rel: RelationId, unit: &str) -> Result<Vec<Value>> {
        let bag = self.payload(rel, unit)?;
        Ok(serde_json::from_str(bag.get("nodes").ok_or_else(|| anyhow!("no nodes published on {rel} by {unit}"))?)?)
    }

    pub fn node_names(&self, rel: RelationId, unit: &str) -> Result<BTreeSet<String>> {
        Ok(self.nodes(rel, unit)?.iter().filter_map(|n| n["name"].as_str().map(String::from)).collect())
    }

    pub fn registered(&self, rel: RelationId, unit: &str) -> Result<Vec<String>> {
        let bag = self.payload(rel, unit)?;
        Ok(serde_json::from_str(bag.get("registered_certificates").map(String::as_str).unwrap_or("[]"))?)
    }

    /// Every fingerprint in LXD's trust store.
    pub fn store_fps(&self) -> Result<BTreeSet<String>> {
        Ok(self.bed.cluster.trust_list()?.iter().filter_map(|e| e["fingerprint"].as_str().map(String::from)).collect())
    }

    /// Trust entries this world's integrator owns: (name, fingerprint).
    pub fn owned(&self) -> Result<Vec<(String, String)>> {
        let marker = format!("juju.{}.{INTEGRATOR}.", self.sim.model_uuid());
        Ok(self
            .bed
            .cluster
            .trust_list()?
            .iter()
            .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with(&marker)))
            .map(|e| {
                (e["name"].as_str().unwrap_or("").to_string(), e["fingerprint"].as_str().unwrap_or("").to_string())
            })
            .collect())
    }

    pub fn owned_fps(&self) -> Result<BTreeSet<String>> {
        Ok(self.owned()?.into_iter().map(|(_, fp)| fp).collect())
    }

    /// Runs update-status until `done` holds, for facts LXD only learns with time (a member
    /// is seen offline after its heartbeat threshold).
    pub fn update_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&World) -> Result<bool>,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            self.update_status()?;
            if done(self)? {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!(
                    "{what}: not true after {limit:?}; integrator status {:?}",
                    self.status(&format!("{INTEGRATOR}/0"))
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// What every scenario must hold at its end: every hook exited 0, every payload matches the
    /// schema, every requirer payload too, and no key material leaked anywhere Juju shows.
    pub fn check(&self) -> Result<()> {
        self.check_hiding(&[])
    }

    /// [`check`](Self::check), with more strings that must appear nowhere the integrator
    /// writes: its logs, hook output, status, unit directory, action results, relation data,
    /// unit state, and the arguments and stdin of every hook tool it called.
    pub fn check_hiding(&self, secrets: &[&str]) -> Result<()> {
        let failed: Vec<String> = self
            .sim
            .failed_hooks()?
            .iter()
            .map(|h| format!("{} {} exit {} {:?}: {}", h.unit, h.hook, h.exit_code, h.error, h.stderr.trim()))
            .collect();
        ensure!(failed.is_empty(), "hooks failed:\n{}", failed.join("\n"));
        for rel in self.sim.relation_ids(INTEGRATOR)? {
            let https = self.integrator_endpoint(rel)? == "https";
            for unit in self.sim.units(INTEGRATOR)? {
                let bag = self.sim.relation_data(rel, &unit)?;
                if https {
                    crate::https::validate_provider(&bag)?;
                } else if bag.contains_key("version") {
                    self.validate_provider(&bag)?;
                }
            }
        }
        self.assert_no_secrets(secrets)
    }

    fn assert_no_secrets(&self, secrets: &[&str]) -> Result<()> {
        let key_body: String = self.identity.key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let probe = &key_body[key_body.len().saturating_sub(40)..];
        let leaks = |text: &str| {
            text.contains("PRIVATE KEY")
                || (!probe.is_empty() && text.contains(probe))
                || secrets.iter().any(|s| text.contains(s))
        };
        for log in self.sim.logs()? {
            ensure!(!leaks(&log.message), "key material in a log line of {}: {}", log.unit, log.hook);
            ensure!(!log.message.contains("BEGIN CERTIFICATE"), "a full certificate in a log line of {}", log.unit);
        }
        for hook in self.sim.hooks()? {
            ensure!(
                !leaks(&hook.stdout) && !leaks(&hook.stderr),
                "key material in the output of {} {}",
                hook.unit,
                hook.hook
            );
        }
        for unit in self.sim.units(INTEGRATOR)? {
            let (_, message) = self.status(&unit)?;
            ensure!(!leaks(&message) && !message.contains("BEGIN"), "key material in the status of {unit}");
            let dir = self.sim.unit_dir(&unit)?;
            let shipped = self.charm_override.as_ref().unwrap_or(&self.bed.charm_dir);
            scan_dir_for_keys(&dir, &dir, shipped, probe, secrets)?;
            for (k, v) in self.sim.unit_state(&unit)? {
                ensure!(!leaks(&k) && !leaks(&v), "key material in the state of {unit} ({k})");
            }
            for rel in self.sim.relation_ids(INTEGRATOR)? {
                for (k, v) in self.sim.relation_data(rel, &unit)? {
                    ensure!(!leaks(&v), "key material in {unit}'s databag on relation {rel} ({k})");
                }
            }
        }
        for rel in self.sim.relation_ids(INTEGRATOR)? {
            for (k, v) in self.sim.relation_app_data(rel, INTEGRATOR)? {
                ensure!(!leaks(&v), "key material in the application databag on relation {rel} ({k})");
            }
        }
        for call in self.sim.tool_calls()? {
            if call.unit.starts_with(INTEGRATOR) {
                let sent = call.args.iter().any(|a| leaks(a)) || call.stdin.as_deref().is_some_and(leaks);
                ensure!(!sent, "key material passed to {} by {} in {}", call.tool, call.unit, call.hook);
            }
        }
        for action in self.sim.actions()? {
            if action.unit.starts_with(INTEGRATOR) {
                ensure!(!leaks(&action.results.to_string()), "key material in action {} results", action.name);
            }
        }
        Ok(())
    }
}

/// The charm must keep credentials in memory: no file under its unit directory may hold them.
/// Files shipped in the charm itself are skipped (the binary names "PRIVATE KEY" in its code);
/// the identity's own key bytes are looked for everywhere.
fn scan_dir_for_keys(top: &Path, dir: &Path, shipped: &Path, probe: &str, secrets: &[&str]) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        let path = entry.path();
        let is_shipped = path.strip_prefix(top).ok().and_then(|rel| {
            let twin = shipped.join(rel);
            Some(std::fs::read(&twin).ok()? == std::fs::read(&path).ok()?)
        });
        if ft.is_dir() {
            scan_dir_for_keys(top, &path, shipped, probe, secrets)?;
        } else if ft.is_file() && is_shipped == Some(true) {
            let text = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
            ensure!(!text.contains(probe), "the integrator's key on disk in {}", path.display());
        } else if ft.is_file() {
            let data = std::fs::read(entry.path())?;
            let text = String::from_utf8_lossy(&data);
            ensure!(
                !text.contains("PRIVATE KEY") && !text.contains(probe) && !secrets.iter().any(|s| text.contains(s)),
                "key material on disk in {}",
                entry.path().display()
            );
        }
    }
    Ok(())
}

impl Drop for World<'_> {
    /// Leaves the shared trust store as it was: this world's entries and identity go.
    fn drop(&mut self) {
        if let Ok(owned) = self.owned() {
            for (_, fp) in owned {
                let _ = self.bed.cluster.trust_remove(&fp);
            }
        }
        let _ = self.bed.cluster.trust_remove(&self.identity.fingerprint);
        // Together: after a full outage a member waits for the others before it is ready.
        let stopped: Vec<usize> = (0..self.bed.cluster.len()).filter(|&i| !self.bed.cluster.is_running(i)).collect();
        if !stopped.is_empty() {
            let _ = self.bed.cluster.start_members(&stopped);
        }
    }
}

pub fn unit(app: &str, n: u32) -> String {
    format!("{app}/{n}")
}
