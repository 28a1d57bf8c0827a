//! A fake LXD for what a real cluster cannot show: an older or newer server than Debian's. It
//! speaks HTTPS (`testbed::tls_server`, on 127.0.0.1 with a `testbed::certs` server certificate
//! the charm pins), answers as a trusted server with the version and API extensions it was
//! started with, and records every request it receives with the status it answered. It can also
//! trickle one path's answer for ever: headers at once, then a byte now and then.
//!
//! It is a thin HTTP front over the in-memory LXD of the in-process tests,
//! `lxd_integrator::memory::Cluster`: the trust store (each entry with its certificate), the
//! certificates fine-grained identities hold, the caller's identity, and the rules over them
//! (who may add, remove or patch an entry, what a duplicate is) are the model's, the ones
//! `MemoryLxd` applies. The front keeps only what is about HTTP: how the [`Era`] it plays
//! validates a request and words each answer (status codes and error texts, each rule copied
//! from the server's source, file and tag named at the rule: LXD 4.0 (the default), LXD
//! 5.21.3+, LXD 6.9, Incus 6.0.6), the member list it shows, the request record and trickling.

use anyhow::{Context, Result};
use lxd_integrator::lxd::Identity;
use lxd_integrator::lxd::client::answers;
use lxd_integrator::memory::{self, Added, Cluster, Patch, Refused};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use testbed::certs::{self, Pem};
use testbed::tls_server::{self, Reply, TlsServer};

/// API extensions of an LXD 4.0 LTS server: clustering and projects, no `certificate_project`.
pub const LXD_4_0_EXTENSIONS: &[&str] = &[
    "storage_zfs_remove_snapshots",
    "container_host_shutdown_timeout",
    "id_map",
    "certificate_update",
    "container_exec_recording",
    "clustering",
    "projects",
    "network_dhcp_expiry",
    "clustering_join",
    "cluster_internal_copy",
    "candid_authentication",
];

/// API extensions the charm looks at, as LXD 5.21.3 and 6.x have them (`shared/version/api.go`
/// in canonical/lxd): fine-grained authorization among them.
pub const LXD_5_21_EXTENSIONS: &[&str] = &[
    "clustering",
    "projects",
    "certificate_project",
    "certificate_token",
    "auth_user",
    "access_management",
    "cluster_member_state",
    "oidc",
    "explicit_trust_token",
    "access_management_tls",
];
pub const LXD_6_9_EXTENSIONS: &[&str] = &[
    "clustering",
    "projects",
    "certificate_project",
    "certificate_token",
    "auth_user",
    "access_management",
    "cluster_member_state",
    "oidc",
    "explicit_trust_token",
    "access_management_tls",
    "auth_bearer",
];
/// Incus 6.0 (`internal/version/api.go` in lxc/incus): no `access_management`.
pub const INCUS_6_0_EXTENSIONS: &[&str] = &[
    "clustering",
    "projects",
    "certificate_project",
    "certificate_token",
    "cluster_member_state",
    "oidc",
    "auth_user",
];

/// Which server the fake plays; it decides validation and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// LXD 4.0: duplicates 400; `restricted`/`projects` ignored (stored unrestricted).
    Lxd4_0,
    /// LXD 5.21.3+: fine-grained authorization, the name rule, `identities/current` without
    /// `fine_grained`, a fingerprint held by an identity → 409 `This "identity" entry already
    /// exists`.
    Lxd5_21,
    /// LXD 6.9: as 5.21, plus `password` → 501, `projects` without `restricted` → 400, the
    /// identity conflict reads `Certificate already exists`, `fine_grained` in the identity.
    Lxd6_9,
    /// Incus 6.0.6: `server: incus`, no identities and no name rule, `description` on entries.
    Incus6_0_6,
}

impl Era {
    fn fine_grained_auth(self) -> bool {
        matches!(self, Era::Lxd5_21 | Era::Lxd6_9)
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: String,
    /// The HTTP status the fake answered (0 for a trickled answer).
    pub status: u16,
}

/// What only the HTTP front has: the requests as they came, and a path to trickle.
#[derive(Default)]
struct Wire {
    requests: Vec<Request>,
    /// This path's answer is trickled, one byte per interval.
    trickle: Option<(String, Duration)>,
}

/// What a trickled answer is made of; scenarios check that none of it shows anywhere.
pub const TRICKLED: &[u8] = b"trickled-";

pub struct FakeLxd {
    pub addr: SocketAddr,
    /// The server certificate it presents (and the charm must pin).
    pub cert: Pem,
    /// The server's trust store, the certificates fine-grained identities hold, the caller's
    /// identity and the rules over them: the in-memory LXD the in-process tests use.
    cluster: Arc<Mutex<Cluster>>,
    wire: Arc<Mutex<Wire>>,
    /// Stops serving when the fake is dropped.
    _server: TlsServer,
}

struct Server {
    name: String,
    era: Era,
    version: String,
    cert_pem: String,
    /// Known once the server listens, before any request.
    addr: OnceLock<SocketAddr>,
    /// Other members and their statuses; empty: not clustered.
    members: Vec<(String, String)>,
}

impl Server {
    fn addr(&self) -> String {
        self.addr.get().map(SocketAddr::to_string).unwrap_or_default()
    }
}

impl FakeLxd {
    /// An LXD 4.0-like server of this version and extensions, not clustered.
    pub fn start(version: &str, extensions: &[&str]) -> Result<FakeLxd> {
        FakeLxd::start_as(Era::Lxd4_0, version, extensions, &[])
    }

    /// A server of `era`; with `members` (name, status), a cluster whose first member is this
    /// fake (`Online`) and whose others answer nothing.
    pub fn start_as(era: Era, version: &str, extensions: &[&str], members: &[(&str, &str)]) -> Result<FakeLxd> {
        let cert = certs::server_cert("fake-lxd", &[])?;
        let cluster = Cluster {
            trusted: true,
            extensions: extensions.iter().map(|e| e.to_string()).collect(),
            // Until told otherwise, the charm's credential is an unrestricted certificate.
            identity: era.fine_grained_auth().then(|| {
                decode_identity(json!({"type": "Client certificate (unrestricted)", "authentication_method": "tls", "name": "juju", "effective_permissions": []}))
            }),
            ..Cluster::default()
        }
        .shared();
        let wire = Arc::new(Mutex::new(Wire::default()));
        let server = Arc::new(Server {
            name: if members.is_empty() { "fake-lxd".into() } else { "node1".into() },
            era,
            version: version.into(),
            cert_pem: cert.cert_pem.clone(),
            addr: OnceLock::new(),
            members: members.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect(),
        });
        let (serving_cluster, serving_wire, serving) = (cluster.clone(), wire.clone(), server.clone());
        let tls = TlsServer::presenting(&cert)
            .script(move |request| reply(request, &serving_cluster, &serving_wire, &serving))
            .context("fake LXD server")?;
        let _ = server.addr.set(tls.addr);
        Ok(FakeLxd { addr: tls.addr, cert, cluster, wire, _server: tls })
    }

    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A cloud spec naming this fake, its certificate pinned, `identity` as the client.
    pub fn cloud_spec(&self, identity: &Pem) -> Value {
        json!({
            "type": "lxd", "name": "old-lxd", "region": "default",
            "endpoint": self.endpoint(),
            "credential": {"auth-type": "certificate", "attrs": {
                "client-cert": identity.cert_pem,
                "client-key": identity.key_pem,
                "server-cert": self.cert.cert_pem,
            }},
            "is-controller-cloud": false
        })
    }

    pub fn requests(&self) -> Vec<Request> {
        lock(&self.wire).requests.clone()
    }

    /// The trust store as `GET /1.0/certificates?recursion=1` lists it.
    pub fn store(&self) -> Vec<Value> {
        listed(&lock(&self.cluster))
    }

    /// An entry as an operator (or an older server) left it, any name.
    pub fn seed(&self, name: &str, pem: &str, restricted: bool) -> Result<String> {
        let der = certs::pem_to_der(pem).context("seed: not a PEM")?;
        Ok(lock(&self.cluster).seed(name, &der, restricted.then(|| vec!["default".to_string()])))
    }

    /// The certificate is held by a fine-grained identity (5.21+): trusted, not listed.
    pub fn hold_as_identity(&self, pem: &str) -> Result<()> {
        let fp = certs::fingerprint_pem(pem).context("not a PEM")?;
        lock(&self.cluster).held_by_identities.insert(fp);
        Ok(())
    }

    /// What `GET /1.0/auth/identities/current` answers from now on (a server of 5.21+); it
    /// also decides which writes the fake allows, as LXD's authorizer would.
    pub fn set_identity(&self, identity: Value) {
        lock(&self.cluster).identity = Some(decode_identity(identity));
    }

    /// From now on, `path` (with its query) is answered 200 with a 1 GiB body announced, of
    /// which one byte of [`TRICKLED`] is sent every `every` until the client hangs up: never
    /// silent long enough for a per-read timeout, never done.
    pub fn trickle(&self, path: &str, every: Duration) {
        lock(&self.wire).trickle = Some((path.into(), every));
    }
}

fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// An identity as LXD sends it, read by the charm's own decoder: the model holds what the
/// charm would see.
fn decode_identity(identity: Value) -> Identity {
    let (status, body) = sync(200, identity);
    answers::current_identity(status, body.as_bytes()).expect("an identity as LXD sends it")
}

/// The store's entries as LXD lists them, each with its certificate.
fn listed(cluster: &Cluster) -> Vec<Value> {
    cluster
        .store
        .iter()
        .map(|e| {
            let pem = cluster.certificates.get(&e.fingerprint).map(|der| lxd_integrator::certs::to_pem(der));
            json!({
                "name": e.name, "type": e.kind.to_string(), "restricted": e.restricted, "projects": e.projects,
                "certificate": pem.unwrap_or_default(), "fingerprint": e.fingerprint, "description": "",
            })
        })
        .collect()
}

/// The answer, recorded with its status; a path set to trickle gets [`TRICKLED`] for ever.
fn reply(request: &tls_server::Request, cluster: &Mutex<Cluster>, wire: &Mutex<Wire>, server: &Server) -> Reply {
    let request =
        Request { method: request.method.clone(), path: request.path.clone(), body: request.body.clone(), status: 0 };
    let trickle = lock(wire).trickle.clone();
    if let Some((_, every)) = trickle.filter(|(path, _)| *path == request.path) {
        lock(wire).requests.push(request);
        return Reply::TrickleForEver(TRICKLED, every);
    }
    let (status, body) = answer(&request, &mut lock(cluster), server);
    lock(wire).requests.push(Request { status, ..request });
    Reply::Answer(status, body)
}

fn sync(status: u16, metadata: Value) -> (u16, String) {
    (status, json!({"type": "sync", "status": "Success", "status_code": 200, "error_code": 0, "error": "", "metadata": metadata}).to_string())
}

fn error(status: u16, text: &str) -> (u16, String) {
    (status, json!({"type": "error", "error": text, "error_code": status}).to_string())
}

/// A 403 as LXD 5.21+ sends it for a denied caller (`response.Forbidden(nil)`).
fn forbidden() -> (u16, String) {
    error(403, "Forbidden")
}

/// The model's refusal as this server words it; `not_found` is the route's own 404 text.
fn refusal(refused: Refused, not_found: &str) -> (u16, String) {
    match refused {
        Refused::Forbidden => forbidden(),
        Refused::BadCertificate(_) => error(400, "Invalid certificate material"),
        Refused::NoSuchProject => error(404, "Project not found"),
        Refused::NotFound => error(404, not_found),
    }
}

fn answer(request: &Request, cluster: &mut Cluster, server: &Server) -> (u16, String) {
    let era = server.era;
    cluster.requests += 1;
    if request.method != "GET" {
        cluster.writes += 1;
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/1.0") => sync(
            200,
            json!({
                "api_extensions": cluster.extensions,
                "api_status": "stable",
                "api_version": "1.0",
                "auth": if cluster.trusted { "trusted" } else { "untrusted" },
                "auth_methods": ["tls"],
                "public": false,
                "environment": {
                    "addresses": [server.addr()],
                    "certificate": server.cert_pem,
                    "server": if era == Era::Incus6_0_6 { "incus" } else { "lxd" },
                    "server_name": server.name,
                    "server_clustered": !server.members.is_empty(),
                    "server_version": server.version,
                    "project": "default",
                },
            }),
        ),
        ("GET", "/1.0/cluster/members?recursion=1") if !server.members.is_empty() => members(server),
        ("GET", "/1.0/cluster/members?recursion=1") => error(500, "Server is not clustered"),
        ("GET", "/1.0/certificates?recursion=1") => sync(200, Value::Array(listed(cluster))),
        ("GET", "/1.0/auth/identities/current") if era.fine_grained_auth() => match &cluster.identity {
            Some(id) => sync(200, memory::identity_info(id)),
            None => error(404, "not found"),
        },
        ("POST", "/1.0/certificates") => add(request, cluster, era),
        ("PATCH", path) if path.starts_with("/1.0/certificates/") => patch(request, cluster, era),
        ("DELETE", path) if path.starts_with("/1.0/certificates/") => {
            match cluster.remove(&path["/1.0/certificates/".len()..]) {
                Ok(()) => sync(200, json!({})),
                Err(refused) => refusal(refused, "not found"),
            }
        }
        _ => error(404, "not found"),
    }
}

fn members(server: &Server) -> (u16, String) {
    // Incus 6.0.6's messages (`internal/server/db/node.go`): maintenance states share one.
    let members: Vec<Value> = server
        .members
        .iter()
        .enumerate()
        .map(|(i, (name, status))| {
            let url = if i == 0 { format!("https://{}", server.addr()) } else { format!("https://127.0.0.1:{}", 9 + i) };
            let message = match status.as_str() {
                "Online" => "Fully operational",
                "Evacuated" | "Evacuating" | "Restoring" => "Unavailable due to maintenance",
                _ => "",
            };
            json!({"server_name": name, "url": url, "status": status, "message": message, "description": "", "roles": [], "database": i == 0})
        })
        .collect();
    sync(200, Value::Array(members))
}

fn add(request: &Request, cluster: &mut Cluster, era: Era) -> (u16, String) {
    let Ok(body) = serde_json::from_str::<Value>(&request.body) else { return error(400, "invalid JSON") };
    let name = body["name"].as_str().unwrap_or("");
    let restricted = body["restricted"].as_bool().unwrap_or(false);
    let projects: Vec<String> =
        body["projects"].as_array().into_iter().flatten().filter_map(|p| p.as_str().map(String::from)).collect();
    // `lxd/certificates.go` `certificatesPost`, in this order (tag lxd-6.9).
    if era == Era::Lxd6_9 && body["password"].as_str().is_some_and(|p| !p.is_empty()) {
        return error(501, "Password authentication is no longer supported, please update your client");
    }
    if era.fine_grained_auth() && (name.starts_with('-') || name.contains('/')) {
        let text = format!(
            "Invalid certificate name {}, name must not start with a hyphen or contain forward slashes",
            json!(name)
        );
        return error(400, &text);
    }
    if era == Era::Lxd6_9 && !projects.is_empty() && !restricted {
        return error(
            400,
            "Projects can only be specified for restricted certificates. Set restricted=true or remove projects",
        );
    }
    // The authorizer runs before the certificate is read; the model checks it again.
    if !cluster.allows("can_create_identities") {
        return forbidden();
    }
    let b64 = body["certificate"].as_str().unwrap_or("");
    let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
    let Ok(der) = certs::pem_to_der(&pem) else { return error(400, "Invalid certificate material") };
    // LXD 4.0 ignores `restricted` and `projects`; later versions store them.
    let (restricted, projects) = if era == Era::Lxd4_0 { (false, vec![]) } else { (restricted, projects) };
    match cluster.add(name, &der, restricted, &projects) {
        Ok(Added::Added) => sync(201, json!({})),
        Ok(Added::InStore) => {
            let status = if era == Era::Lxd4_0 { 400 } else { 409 };
            error(status, "Certificate already in trust store")
        }
        Ok(Added::HeldByIdentity) => match era {
            // `lxd/db/cluster/identities.mapper.go` `CreateIdentity` (5.21.0-6.8).
            Era::Lxd5_21 => error(409, "This \"identity\" entry already exists"),
            // `lxd/db/cluster/certificates_legacy.go` (6.9+).
            _ => error(409, "Certificate already exists"),
        },
        Err(refused) => refusal(refused, "not found"),
    }
}

fn patch(request: &Request, cluster: &mut Cluster, era: Era) -> (u16, String) {
    let fp = &request.path["/1.0/certificates/".len()..];
    let Ok(patch) = serde_json::from_str::<Value>(&request.body) else { return error(400, "invalid JSON") };
    // The authorizer runs before the entry is looked up; the model checks it again.
    if !cluster.allows("can_edit_identities") {
        return forbidden();
    }
    let Some(entry) = cluster.store.iter().find(|e| e.fingerprint == fp) else {
        return error(404, "Certificate not found");
    };
    let patch = Patch {
        name: patch["name"].as_str().map(String::from),
        restricted: patch["restricted"].as_bool(),
        projects: patch["projects"].as_array().map(|p| p.iter().filter_map(|p| p.as_str().map(String::from)).collect()),
    };
    // PATCH decodes over the stored entry (`certificatePatch`), then 6.7+ refuses an
    // unrestricted entry with projects (`doCertificateUpdate`).
    let restricted = patch.restricted.unwrap_or(entry.restricted);
    let has_projects = patch.projects.as_ref().map_or(!entry.projects.is_empty(), |p| !p.is_empty());
    if era == Era::Lxd6_9 && has_projects && !restricted {
        return error(400, "Projects can only be specified for restricted certificates");
    }
    match cluster.patch(fp, &patch) {
        Ok(()) => sync(200, json!({})),
        Err(refused) => refusal(refused, "Certificate not found"),
    }
}
