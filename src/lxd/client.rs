//! The HTTPS implementation of [`Lxd`]: reqwest over rustls, with the server authenticated by
//! `crate::pin` and our client certificate presented in the handshake.
//!
//! reqwest's async client runs on a current-thread runtime that each call drives from the
//! calling thread (`Runtime::block_on`). `reqwest::blocking` would start a runtime thread when
//! the client is built, make the caller wait for it to come up, and hand every request to it
//! and its answer back: about a millisecond of a steady hook, which makes three requests
//! (docs/benchmarks.md). Several threads may call at once (`spread`): the first to enter
//! drives the sockets of all of them, as tokio documents for a current-thread runtime.

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::{Client, Method};
use rustls::ClientConfig;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use super::{
    AddOutcome, Connection, Connector, Identity, Lxd, LxdError, Member, MemberStatus, NewTrustEntry, Permission,
    ServerInfo, ServerKind, TrustEntry, TrustKind,
};
use crate::credentials::TlsCredentials;
use crate::endpoint::Endpoint;
use crate::limits::{LXD_REQUEST_DEADLINE, LXD_WRITE_DEADLINE};
use crate::pin;

/// TCP connect plus TLS handshake budget. LXD answers a handshake in milliseconds on any network
/// a cluster can live on; a member that does not is down or filtered, and the reconcile should
/// move on to the next one instead of holding the hook (and so the Juju agent) hostage.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Requests in flight at once when many entries change. LXD 5.0 served 100 adds over 4
/// connections in 0.54-0.91x the time of one (bench/, docs/benchmarks.md); 8 were no faster.
const MAX_IN_FLIGHT: usize = 4;
/// From this many changes on, they are spread over `MAX_IN_FLIGHT` connections.
const MIN_TO_SPREAD: usize = 8;

/// Larger answers than this are not something LXD sends to these calls; refuse rather than
/// buffer without bound.
const MAX_BODY: u64 = 32 * 1024 * 1024;

/// Opens [`HttpLxd`] connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpConnector {
    pub(crate) connect_timeout: Duration,
    /// Each read, from connecting to the last byte of its answer, ends by then.
    pub(crate) request_timeout: Duration,
    /// Each write (POST, PATCH, DELETE) ends by then: shorter, so that one started inside the
    /// leader's window cannot outlast its guarantee (`limits::LXD_WRITE_DEADLINE`).
    pub(crate) write_timeout: Duration,
}

impl Default for HttpConnector {
    fn default() -> Self {
        HttpConnector {
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: LXD_REQUEST_DEADLINE,
            write_timeout: LXD_WRITE_DEADLINE,
        }
    }
}

impl Connector for HttpConnector {
    /// Builds the client only (no network traffic); connection errors surface on the first call.
    fn connect(&self, endpoint: &Endpoint, tls: &TlsCredentials) -> Result<Connection, LxdError> {
        Ok(Box::new(HttpLxd::with_timeouts(endpoint, tls, *self)?))
    }
}

/// One LXD server over HTTPS. All requests share one kept-alive connection.
pub struct HttpLxd {
    endpoint: Endpoint,
    base: String,
    client: Client,
    runtime: Runtime,
    /// Of a read, and of a write.
    read_deadline: Duration,
    write_deadline: Duration,
}

impl fmt::Debug for HttpLxd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpLxd").field("endpoint", &self.base).finish_non_exhaustive()
    }
}

/// LXD's answer envelope. Every field is optional: LXD 3.0 error answers carry only `type`,
/// `error` and `error_code`.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    metadata: Option<Value>,
}

struct Answer {
    status: u16,
    envelope: Result<Envelope, String>,
}

impl HttpLxd {
    pub fn new(endpoint: &Endpoint, tls: &TlsCredentials) -> Result<HttpLxd, LxdError> {
        HttpLxd::with_timeouts(endpoint, tls, HttpConnector::default())
    }

    pub(crate) fn with_timeouts(
        endpoint: &Endpoint,
        tls: &TlsCredentials,
        timeouts: HttpConnector,
    ) -> Result<HttpLxd, LxdError> {
        let config = pin::shared_client_config(tls).map_err(|e| LxdError::BadCredentials(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LxdError::BadCredentials(format!("cannot set up the HTTPS client: {e}")))?;
        let client = Client::builder()
            .tls_backend_preconfigured(ClientConfig::clone(&config))
            // LXD is reached directly; an HTTPS_PROXY meant for the charm's downloads must not
            // see (or break) the mutual-TLS session.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect_timeout)
            // One per request in flight, or `spread` would close and reopen connections.
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .user_agent(concat!("lxd-integrator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LxdError::BadCredentials(format!("cannot set up the HTTPS client: {}", error_chain(&e))))?;
        Ok(HttpLxd {
            endpoint: endpoint.clone(),
            base: endpoint.url(),
            client,
            runtime,
            read_deadline: timeouts.request_timeout,
            write_deadline: timeouts.write_timeout,
        })
    }

    /// The status and the bytes of the answer.
    async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Vec<u8>), LxdError> {
        let started = Instant::now();
        let deadline = if method == Method::GET { self.read_deadline } else { self.write_deadline };
        // The deadline is set on the request, not with `ClientBuilder::timeout`, so that reads
        // and writes have their own. It is one timer started before connecting, which keeps
        // running into the body (reqwest's `TotalTimeoutBody`) and fails the read that outlives
        // it: a server trickling its answer a byte at a time is cut off at the deadline.
        let mut request = self.client.request(method, format!("{}{}", self.base, path)).timeout(deadline);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let mut response = request.send().await.map_err(|e| self.transport_error(&e, path, started, deadline))?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        loop {
            let chunk = response.chunk().await.map_err(|e| {
                if started.elapsed() >= deadline {
                    self.timed_out(path, deadline)
                } else {
                    self.unreachable(format!("reading the answer to {path}: {}", error_chain(&e)))
                }
            })?;
            let Some(chunk) = chunk else { break };
            if (bytes.len() + chunk.len()) as u64 > MAX_BODY {
                return Err(LxdError::Protocol {
                    path: path.into(),
                    detail: format!("answer larger than {MAX_BODY} bytes"),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, bytes))
    }

    /// The refusal is read from this request's own error: the verifier is shared by every
    /// connection of the client, and `spread` runs several handshakes at once.
    /// reqwest's timer starts after `started`, so an error once `deadline` has passed is that
    /// timer's (or comes too late to matter).
    fn transport_error(&self, e: &reqwest::Error, path: &str, started: Instant, deadline: Duration) -> LxdError {
        if let Some(rejection) = pin::rejection_in(e) {
            return LxdError::ServerCertMismatch { endpoint: self.base.clone(), detail: rejection.to_string() };
        }
        if started.elapsed() >= deadline {
            return self.timed_out(path, deadline);
        }
        let detail = error_chain(e);
        if e.is_timeout() { self.unreachable(format!("timed out: {detail}")) } else { self.unreachable(detail) }
    }

    fn timed_out(&self, path: &str, deadline: Duration) -> LxdError {
        self.unreachable(format!("timed out after {} on {path}", duration_text(deadline)))
    }

    fn unreachable(&self, detail: String) -> LxdError {
        LxdError::Unreachable { endpoint: self.base.clone(), detail }
    }

    /// The error for an answer that is not a success.
    fn failure(&self, method: &Method, path: &str, answer: Answer) -> LxdError {
        failure(&self.base, method, path, answer)
    }

    /// A synchronous call whose `metadata` is decoded as `T`.
    fn sync<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<Value>) -> Result<T, LxdError> {
        let (status, bytes) = self.runtime.block_on(self.request(method.clone(), path, body))?;
        decode(&self.base, &method, path, status, &bytes)
    }

    /// A call whose answer carries nothing we need beyond success.
    fn unit(&self, method: Method, path: &str, body: Option<Value>, also_ok: &[u16]) -> Result<(), LxdError> {
        self.runtime.block_on(self.unit_request(method, path, body, also_ok))
    }

    async fn unit_request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        also_ok: &[u16],
    ) -> Result<(), LxdError> {
        let (status, bytes) = self.request(method.clone(), path, body).await?;
        let answer = Answer::parse(status, &bytes);
        if is_success(&answer) || also_ok.contains(&answer.status) {
            return Ok(());
        }
        Err(self.failure(&method, path, answer))
    }
}

impl HttpLxd {
    async fn add_one(&self, entry: &NewTrustEntry) -> Result<AddOutcome, LxdError> {
        const PATH: &str = "/1.0/certificates";
        let (status, bytes) = self.request(Method::POST, PATH, Some(add_body(entry))).await?;
        let answer = Answer::parse(status, &bytes);
        if is_success(&answer) {
            return Ok(AddOutcome::Added);
        }
        if let Ok(env) = &answer.envelope
            && is_duplicate(answer.status, env.error.as_deref().unwrap_or(""))
        {
            return Ok(AddOutcome::AlreadyPresent);
        }
        Err(self.failure(&Method::POST, PATH, answer))
    }

    async fn remove_one(&self, fingerprint: &str) -> Result<(), LxdError> {
        let path = certificate_path(fingerprint)?;
        self.unit_request(Method::DELETE, &path, None, &[404]).await
    }

    /// Runs `op` over `items` with up to `MAX_IN_FLIGHT` requests at once, each on its own
    /// kept-alive connection from the client's pool, none started at or after `until` (the
    /// clock is read as each one is about to start, so what started is a prefix); the answers
    /// are those of the first items, in order. Short lists stay on the one open connection: a
    /// new one costs a full TLS handshake, which is more than a change. All of them run in one
    /// `block_on`, so a connection an answer frees goes back to the pool before the next
    /// request looks for one.
    fn spread<'a, T, R, F: Future<Output = R>>(
        &'a self,
        items: &'a [T],
        until: Instant,
        op: impl Fn(&'a HttpLxd, &'a T) -> F,
    ) -> Vec<R> {
        let at_once = if items.len() < MIN_TO_SPREAD { 1 } else { MAX_IN_FLIGHT };
        let answers = futures_util::stream::iter(items)
            .take_while(|_| std::future::ready(Instant::now() < until))
            .map(|item| op(self, item))
            .buffered(at_once)
            .collect();
        self.runtime.block_on(answers)
    }
}

/// The body of `POST /1.0/certificates`, the same for every version: exactly `name`, `type`,
/// `certificate`, and `restricted` with `projects` only together. Never anything else:
/// - no `password`: LXD 6.2+ answers any non-empty one with 501 `Password authentication is no
///   longer supported` (`lxd/certificates.go` `certificatesPost` in canonical/lxd);
/// - no `projects` without `restricted: true`: LXD 6.7+ answers 400 `Projects can only be
///   specified for restricted certificates. Set restricted=true or remove projects` (same
///   function); LXD 4.0 would ignore both anyway;
/// - the name is the caller's and is sent as it is: the planner's names never start with `-`
///   nor contain `/`, which 5.21.3+ and 6.2+ refuse with 400 (`ownership::lxd_accepts_name`).
fn add_body(entry: &NewTrustEntry) -> Value {
    let mut body = json!({
        "name": entry.name,
        "type": "client",
        // Base64 of the DER: LXD refuses the PEM armour lines (400).
        "certificate": base64::engine::general_purpose::STANDARD.encode(&entry.der),
    });
    if let Some(projects) = &entry.projects {
        body["restricted"] = json!(true);
        body["projects"] = json!(projects);
    }
    body
}

/// Whether an add's refusal means LXD already holds the certificate.
///
/// The legacy duplicate check (a `client`/`server`/`metrics` entry with that fingerprint) kept
/// its text while its status moved: 400 (3.x, 4.x, 5.0.0), 500 (5.0.1, 5.1-5.7), 409 (5.0.2+,
/// 5.8+, 6.x, Incus; `lxd/certificates.go` `certificatesPost`). From 5.21 the fingerprint may
/// instead belong to a fine-grained identity that `GET /1.0/certificates` does not list; the
/// insert then conflicts with 409 `This "identity" entry already exists` (5.21.0-6.8,
/// `lxd/db/cluster/identities.mapper.go` `CreateIdentity`) or 409 `Certificate already
/// exists` (6.9+, `lxd/db/cluster/certificates_legacy.go` `CreateCertificateLegacy`). Either
/// way LXD trusts that certificate: it counts as present.
fn is_duplicate(status: u16, message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    let legacy = matches!(status, 400 | 409 | 500) && message.contains("already in trust store");
    let identity = status == 409
        && (message.contains("certificate already exists") || message.contains("\"identity\" entry already exists"));
    legacy || identity
}

impl Answer {
    fn parse(status: u16, bytes: &[u8]) -> Answer {
        let envelope = serde_json::from_slice::<Envelope>(bytes)
            .map_err(|e| format!("HTTP {status} with a body that is not an LXD envelope ({e}): {}", snippet(bytes)));
        Answer { status, envelope }
    }
}

/// What an answer means: its `metadata` as `T` when it is a success, else the error.
fn decode<T: DeserializeOwned>(
    base: &str,
    method: &Method,
    path: &str,
    status: u16,
    body: &[u8],
) -> Result<T, LxdError> {
    // A success is read straight into its type, one pass over the bytes: the trust store is a
    // steady hook's largest answer, and a tree of JSON values first would double the work.
    // Anything else takes the general way, whose errors say what the answer was.
    // The envelope's other fields are checked as `Envelope` checks them, so that both ways
    // accept the same answers.
    #[derive(Deserialize)]
    struct Success<T> {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(rename = "error", default)]
        _error: Option<String>,
        #[serde(rename = "error_code", default)]
        _error_code: Option<u16>,
        #[serde(default = "Option::default")]
        metadata: Option<T>,
    }
    if (200..300).contains(&status)
        && let Ok(Success { kind, metadata: Some(metadata), .. }) = serde_json::from_slice::<Success<T>>(body)
        && kind.as_deref() != Some("error")
    {
        return Ok(metadata);
    }
    decode_answer(base, method, path, Answer::parse(status, body))
}

/// The `metadata` of a successful answer decoded as `T`, or the error the answer means.
fn decode_answer<T: DeserializeOwned>(base: &str, method: &Method, path: &str, answer: Answer) -> Result<T, LxdError> {
    if !is_success(&answer) {
        return Err(failure(base, method, path, answer));
    }
    let metadata = answer.envelope.ok().and_then(|e| e.metadata).unwrap_or(Value::Null);
    serde_json::from_value(metadata)
        .map_err(|e| LxdError::Protocol { path: path.into(), detail: format!("unexpected metadata: {e}") })
}

/// What LXD's answers mean, without a connection: the same decoding the client applies to
/// `GET /1.0`, the member list and the trust store, for fuzzing and tests.
#[cfg(any(test, feature = "testkit"))]
pub mod answers {
    use super::*;

    const BASE: &str = "https://lxd.invalid:8443";

    pub fn server(status: u16, body: &[u8]) -> Result<ServerInfo, LxdError> {
        decode(BASE, &Method::GET, "/1.0", status, body).map(server_info)
    }

    pub fn members(status: u16, body: &[u8]) -> Result<Vec<Member>, LxdError> {
        decode(BASE, &Method::GET, "/1.0/cluster/members?recursion=1", status, body).map(member_list)
    }

    pub fn trust_store(status: u16, body: &[u8]) -> Result<Vec<TrustEntry>, LxdError> {
        decode(BASE, &Method::GET, "/1.0/certificates?recursion=1", status, body).map(trust_entries)
    }

    pub fn current_identity(status: u16, body: &[u8]) -> Result<Identity, LxdError> {
        decode(BASE, &Method::GET, "/1.0/auth/identities/current", status, body).map(identity)
    }
}

fn failure(base: &str, method: &Method, path: &str, answer: Answer) -> LxdError {
    if answer.status == 403 {
        return LxdError::Untrusted { endpoint: base.to_string() };
    }
    match answer.envelope {
        Ok(env) => {
            let status = if (200..300).contains(&answer.status) {
                env.error_code.unwrap_or(answer.status)
            } else {
                answer.status
            };
            let message = env.error.filter(|m| !m.is_empty()).unwrap_or_else(|| format!("HTTP {status}"));
            LxdError::Api { method: method.to_string(), path: path.into(), status, message }
        }
        Err(detail) => LxdError::Protocol { path: path.into(), detail },
    }
}

fn is_success(answer: &Answer) -> bool {
    (200..300).contains(&answer.status) && matches!(&answer.envelope, Ok(env) if env.kind.as_deref() != Some("error"))
}

/// `/1.0/certificates/<fp>` for a full fingerprint only: LXD matches a prefix, so anything
/// shorter could address (and delete) another certificate.
fn certificate_path(fingerprint: &str) -> Result<String, LxdError> {
    let fp = fingerprint.to_ascii_lowercase();
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LxdError::Protocol {
            path: "/1.0/certificates".into(),
            detail: format!("refusing to address a certificate by {fingerprint:?}: not a 64-hex SHA-256 fingerprint"),
        });
    }
    Ok(format!("/1.0/certificates/{fp}"))
}

#[derive(Deserialize)]
struct RawServer {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    api_extensions: Option<Vec<String>>,
    #[serde(default)]
    environment: Option<RawEnvironment>,
}

#[derive(Deserialize)]
struct RawEnvironment {
    #[serde(default)]
    addresses: Option<Vec<String>>,
    /// `lxd` or `incus`.
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    server_version: Option<String>,
    #[serde(default)]
    server_clustered: Option<bool>,
    /// PEM of what the server presents (the cluster certificate; in PKI mode, the CA-issued one).
    #[serde(default)]
    certificate: Option<String>,
}

#[derive(Deserialize)]
struct RawMember {
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// `IdentityInfo` of LXD 5.21+ (`shared/api/auth.go`): the identity's fields, its effective
/// groups and permissions, and (6.x) `fine_grained`.
#[derive(Deserialize)]
struct RawIdentity {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    fine_grained: Option<bool>,
    #[serde(default)]
    effective_permissions: Option<Vec<RawPermission>>,
}

#[derive(Deserialize)]
struct RawPermission {
    #[serde(default)]
    entity_type: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    entitlement: Option<String>,
}

/// Incus adds `description` to each entry (ignored here, like any unknown field).
#[derive(Deserialize)]
struct RawCertificate {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    restricted: Option<bool>,
    #[serde(default)]
    projects: Option<Vec<String>>,
    #[serde(default)]
    fingerprint: Option<String>,
}

fn server_info(raw: RawServer) -> ServerInfo {
    let env = raw.environment;
    ServerInfo {
        trusted: raw.auth.as_deref() == Some("trusted"),
        api_extensions: raw.api_extensions.unwrap_or_default(),
        kind: ServerKind::from_environment(env.as_ref().and_then(|e| e.server.as_deref()).unwrap_or("")),
        server_name: env.as_ref().and_then(|e| e.server_name.clone()).unwrap_or_default(),
        server_version: env.as_ref().and_then(|e| e.server_version.clone()).unwrap_or_default(),
        clustered: env.as_ref().and_then(|e| e.server_clustered).unwrap_or(false),
        certificate: env.as_ref().and_then(|e| presented_der(e.certificate.as_deref()?)),
        addresses: env.and_then(|e| e.addresses).unwrap_or_default(),
    }
}

/// The DER of the certificate LXD says it presents: its one CERTIFICATE block, or nothing.
fn presented_der(pem: &str) -> Option<Vec<u8>> {
    match crate::certs::pem_blocks(pem).ok()?.as_slice() {
        [one] if one.label == "CERTIFICATE" && crate::certs::inspect_der(&one.der).is_ok() => Some(one.der.clone()),
        _ => None,
    }
}

fn member_list(raw: Option<Vec<RawMember>>) -> Vec<Member> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|m| Member {
            name: m.server_name.unwrap_or_default(),
            url: m.url.unwrap_or_default(),
            status: MemberStatus::from(m.status.unwrap_or_default().as_str()),
            message: m.message.unwrap_or_default(),
        })
        .collect()
}

fn identity(raw: RawIdentity) -> Identity {
    Identity {
        kind: raw.kind.unwrap_or_default(),
        name: raw.name.unwrap_or_default(),
        fine_grained: raw.fine_grained,
        permissions: raw
            .effective_permissions
            .unwrap_or_default()
            .into_iter()
            .map(|p| Permission {
                entity_type: p.entity_type.unwrap_or_default(),
                url: p.url.unwrap_or_default(),
                entitlement: p.entitlement.unwrap_or_default(),
            })
            .collect(),
    }
}

fn trust_entries(raw: Option<Vec<RawCertificate>>) -> Vec<TrustEntry> {
    raw.unwrap_or_default()
        .into_iter()
        .map(|c| TrustEntry {
            name: c.name.unwrap_or_default(),
            fingerprint: c.fingerprint.unwrap_or_default().to_ascii_lowercase(),
            kind: TrustKind::from(c.kind.unwrap_or_default().as_str()),
            restricted: c.restricted.unwrap_or(false),
            projects: c.projects.unwrap_or_default(),
        })
        .collect()
}

impl Lxd for HttpLxd {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `auth: untrusted` is not an error here: the answer says `trusted: false` and carries no
    /// `environment` fields. Calls that need trust fail with `Untrusted` (LXD answers 403).
    fn server(&mut self) -> Result<ServerInfo, LxdError> {
        self.sync(Method::GET, "/1.0", None).map(server_info)
    }

    fn members(&mut self) -> Result<Vec<Member>, LxdError> {
        self.sync(Method::GET, "/1.0/cluster/members?recursion=1", None).map(member_list)
    }

    fn trust_store(&mut self) -> Result<Vec<TrustEntry>, LxdError> {
        self.sync(Method::GET, "/1.0/certificates?recursion=1", None).map(trust_entries)
    }

    fn current_identity(&mut self) -> Result<Identity, LxdError> {
        self.sync(Method::GET, "/1.0/auth/identities/current", None).map(identity)
    }

    fn add_trust(&mut self, entry: &NewTrustEntry) -> Result<AddOutcome, LxdError> {
        self.runtime.block_on(self.add_one(entry))
    }

    fn remove_trust(&mut self, fingerprint: &str) -> Result<(), LxdError> {
        self.runtime.block_on(self.remove_one(fingerprint))
    }

    fn add_trust_all(&mut self, entries: &[NewTrustEntry], until: Instant) -> Vec<Result<AddOutcome, LxdError>> {
        self.spread(entries, until, HttpLxd::add_one)
    }

    fn remove_trust_all(&mut self, fingerprints: &[String], until: Instant) -> Vec<Result<(), LxdError>> {
        self.spread(fingerprints, until, |lxd, fp| lxd.remove_one(fp))
    }

    fn restrict_trust(&mut self, fingerprint: &str, projects: Option<&[String]>) -> Result<(), LxdError> {
        let path = certificate_path(fingerprint)?;
        // Unrestricting sends `projects: []` as well: LXD's PATCH decodes over the stored entry,
        // and 6.7+ refuses an unrestricted entry that keeps a project list (400 `Projects can
        // only be specified for restricted certificates`, `lxd/certificates.go`
        // `doCertificateUpdate`).
        let body = match projects {
            Some(p) => json!({ "restricted": true, "projects": p }),
            None => json!({ "restricted": false, "projects": [] }),
        };
        self.unit(Method::PATCH, &path, Some(body), &[])
    }

    fn rename_trust(&mut self, fingerprint: &str, name: &str) -> Result<(), LxdError> {
        let path = certificate_path(fingerprint)?;
        // Only `name`: PUT would replace every field (and LXD >= 5.21.7 refuses a PUT without
        // `type`); PATCH keeps what is not sent.
        self.unit(Method::PATCH, &path, Some(json!({ "name": name })), &[])
    }
}

/// An error with all its sources, the only way to see e.g. "connection refused" under reqwest's
/// "error sending request".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// `15 s`, `200 ms`.
fn duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format!("{} s", d.as_secs()) } else { format!("{} ms", d.as_millis()) }
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use testbed::certs::{CertSpec, Curve, Key, Pem};
    use testbed::tls_server::{Reply, Request, TlsServer};

    use super::*;
    use crate::pin::testing::*;

    const SERVER_UNTRUSTED: &str = r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{"api_extensions":["certificate_project"],"api_status":"stable","api_version":"1.0","auth":"untrusted","public":false,"auth_methods":["tls"]}}"#;
    const SERVER_TRUSTED: &str = r#"{"type":"sync","status":"Success","status_code":200,"error_code":0,"error":"","metadata":{"api_extensions":["clustering","certificate_project"],"auth":"trusted","environment":{"addresses":["127.0.77.1:8443"],"certificate":"-----BEGIN CERTIFICATE-----\n...","server":"lxd","server_name":"node1","server_clustered":true,"server_version":"5.0.2"}}}"#;

    struct Fixture {
        server: TlsServer,
        client_id: Pem,
        lxd: Box<dyn Lxd>,
    }

    /// A server presenting `server_id`, a client pinning `pinned_pem`.
    fn fixture(
        server_id: &Pem,
        pinned_pem: &str,
        handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) -> Fixture {
        connect(TlsServer::start(server_id, handler).expect("server"), pinned_pem)
    }

    /// A client pinning `pinned_pem`, for `server`.
    fn connect(server: TlsServer, pinned_pem: &str) -> Fixture {
        let client_id = self_signed("juju-client");
        let lxd =
            HttpConnector::default().connect(&endpoint(&server), &creds(&client_id, pinned_pem)).expect("connect");
        Fixture { server, client_id, lxd }
    }

    fn endpoint(server: &TlsServer) -> Endpoint {
        Endpoint { host: server.addr.ip().to_string(), port: server.addr.port() }
    }

    fn lxd_server() -> Pem {
        self_signed("root@lxd")
    }

    fn sync(metadata: &str) -> (u16, String) {
        (
            200,
            format!(
                r#"{{"type":"sync","status":"Success","status_code":200,"error_code":0,"error":"","metadata":{metadata}}}"#
            ),
        )
    }

    /// A leader's window that stays open for the whole test.
    fn open_window() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn error(status: u16, text: &str) -> (u16, String) {
        (
            status,
            format!(
                r#"{{"type":"error","status":"","status_code":0,"error_code":{status},"error":"{text}","metadata":null}}"#
            ),
        )
    }

    #[test]
    fn matching_pin_presents_the_client_cert_and_reuses_one_connection() {
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |_| (200, SERVER_TRUSTED.into()));
        let info = f.lxd.server().expect("server");
        assert_eq!(
            info,
            ServerInfo {
                trusted: true,
                api_extensions: vec!["clustering".into(), "certificate_project".into()],
                kind: ServerKind::Lxd,
                server_name: "node1".into(),
                server_version: "5.0.2".into(),
                clustered: true,
                certificate: None,
                addresses: vec!["127.0.77.1:8443".into()],
            }
        );
        f.lxd.server().unwrap();
        f.lxd.server().unwrap();
        let log = f.server.log();
        assert_eq!(log.connections, 1, "one kept-alive connection");
        assert_eq!(log.requests.len(), 3);
        assert_eq!(log.requests[0].method, "GET");
        assert_eq!(log.requests[0].path, "/1.0");
        assert_eq!(log.client_certs, vec![f.client_id.der.clone()]);
        assert_eq!(f.lxd.endpoint(), &endpoint(&f.server));
    }

    #[test]
    fn many_adds_spread_over_a_few_connections_and_answer_in_order() {
        let id = lxd_server();
        // Odd-numbered entries are already in the trust store; a little delay lets requests overlap.
        let mut f = fixture(&id, &id.cert_pem, |req| {
            std::thread::sleep(Duration::from_millis(5));
            let odd = req.body.contains("\"name\":\"e1")
                || req.body.contains("\"name\":\"e3")
                || req.body.contains("\"name\":\"e5");
            if odd { error(409, "Certificate already in trust store") } else { sync("{}") }
        });
        let entries: Vec<NewTrustEntry> = (0..30)
            .map(|i| NewTrustEntry { name: format!("e{}{}", i % 10, i), der: vec![1, 2, i as u8], projects: None })
            .collect();
        let answers = f.lxd.add_trust_all(&entries, open_window());
        let want: Vec<AddOutcome> = (0..30)
            .map(|i| if matches!(i % 10, 1 | 3 | 5) { AddOutcome::AlreadyPresent } else { AddOutcome::Added })
            .collect();
        assert_eq!(answers.into_iter().map(|a| a.expect("add")).collect::<Vec<_>>(), want);
        let log = f.server.log();
        assert_eq!(log.requests.len(), 30);
        assert!(log.connections > 1 && log.connections <= MAX_IN_FLIGHT, "{} connections", log.connections);
    }

    #[test]
    fn a_batch_whose_window_has_closed_sends_nothing() {
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |_| sync("{}"));
        let fps: Vec<String> = (0..4 * MIN_TO_SPREAD).map(|i| format!("{i:064x}")).collect();
        assert!(f.lxd.remove_trust_all(&fps, Instant::now()).is_empty());
        let entries = [NewTrustEntry { name: "e".into(), der: vec![1], projects: None }];
        assert!(f.lxd.add_trust_all(&entries, Instant::now()).is_empty());
        assert!(f.server.log().requests.is_empty());
    }

    #[test]
    fn a_batch_on_a_slow_server_stops_starting_writes_when_the_window_closes() {
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |_| {
            std::thread::sleep(Duration::from_millis(100));
            sync("{}")
        });
        let fps: Vec<String> = (0..40).map(|i| format!("{i:064x}")).collect();
        let until = Instant::now() + Duration::from_millis(250);
        let answers = f.lxd.remove_trust_all(&fps, until);
        // Four at a time, 100 ms each: about three rounds fit, never all 40.
        assert!((MAX_IN_FLIGHT..fps.len()).contains(&answers.len()), "{} answers", answers.len());
        assert!(answers.iter().all(Result::is_ok));
        let log = f.server.log();
        assert_eq!(log.requests.len(), answers.len(), "every request started was answered");
        let paths: Vec<&str> = log.requests.iter().map(|r| r.path.as_str()).collect();
        for fp in &fps[..answers.len()] {
            assert!(paths.contains(&format!("/1.0/certificates/{fp}").as_str()), "the first ones were sent");
        }
    }

    #[test]
    fn writes_end_at_the_write_deadline_and_reads_at_the_read_deadline() {
        let id = lxd_server();
        let server = TlsServer::start(&id, |_| {
            std::thread::sleep(Duration::from_millis(700));
            sync("{}")
        })
        .unwrap();
        let connector = HttpConnector {
            request_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_millis(200),
            ..HttpConnector::default()
        };
        let mut lxd = connector.connect(&endpoint(&server), &creds(&self_signed("c"), &id.cert_pem)).unwrap();
        let err = lxd.remove_trust(&"0".repeat(64)).unwrap_err();
        assert!(
            matches!(&err, LxdError::Unreachable { detail, .. } if detail.starts_with("timed out after 200 ms")),
            "{err:?}"
        );
        let err = lxd.restrict_trust(&"0".repeat(64), None).unwrap_err();
        assert!(matches!(&err, LxdError::Unreachable { .. }), "{err:?}");
        lxd.server().expect("a read waits for its slower answer");
    }

    #[test]
    fn a_few_changes_stay_on_the_open_connection() {
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |_| sync("{}"));
        let fps: Vec<String> = (0..MIN_TO_SPREAD - 1).map(|i| format!("{i:064x}")).collect();
        assert!(f.lxd.remove_trust_all(&fps, open_window()).iter().all(Result::is_ok));
        let log = f.server.log();
        assert_eq!((log.connections, log.requests.len()), (1, MIN_TO_SPREAD - 1));
    }

    #[test]
    fn tls12_only_servers_work_too() {
        let id = lxd_server();
        let server = TlsServer::presenting(&id)
            .versions(&[&rustls::version::TLS12])
            .start(|_| (200, SERVER_UNTRUSTED.into()))
            .unwrap();
        let mut f = connect(server, &id.cert_pem);
        assert!(!f.lxd.server().unwrap().trusted);
        assert_eq!(f.server.log().client_certs, vec![f.client_id.der.clone()]);
    }

    fn assert_refused_before_any_request(presented: &Pem, pinned: &Pem) -> String {
        let f = fixture(presented, &pinned.cert_pem, |_| (200, SERVER_TRUSTED.into()));
        assert_refused(f)
    }

    fn assert_refused(mut f: Fixture) -> String {
        let err = f.lxd.server().unwrap_err();
        let LxdError::ServerCertMismatch { endpoint, detail } = &err else { panic!("{err:?}") };
        assert_eq!(endpoint, &f.server.url());
        let log = f.server.wait_closed(1);
        assert_eq!(log.closed, 1);
        assert_eq!(log.handshakes_ok, 0, "{log:?}");
        assert_eq!(log.app_bytes, 0, "{log:?}");
        assert!(log.requests.is_empty());
        // The server saw our refusal as a TLS alert, not as a dropped connection.
        assert!(log.errors.iter().any(|e| e.contains("alert")), "{log:?}");
        detail.clone()
    }

    #[test]
    fn another_self_signed_certificate_is_refused_before_any_request() {
        let detail = assert_refused_before_any_request(&lxd_server(), &lxd_server());
        assert!(detail.contains("the pin is"), "{detail}");
    }

    #[test]
    fn replaying_the_pinned_certificate_without_its_key_is_refused() {
        let pinned = lxd_server();
        let thief = self_signed("thief");
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
            let server = TlsServer::presenting(&pinned)
                .signing_with(&thief.key_pem)
                .versions(versions)
                .start(|_| (200, SERVER_TRUSTED.into()))
                .unwrap();
            let detail = assert_refused(connect(server, &pinned.cert_pem));
            assert!(detail.contains("handshake signature"), "{detail}");
        }
    }

    #[test]
    fn same_name_other_key_is_refused() {
        let (pinned, impostor) = (self_signed("root@lxd"), self_signed("root@lxd"));
        assert_refused_before_any_request(&impostor, &pinned);
    }

    #[test]
    fn expired_copy_of_the_pinned_certificate_is_refused() {
        let key = Key::generate(Curve::P384).unwrap();
        let pinned = CertSpec::client("root@lxd").self_signed_with(&key).unwrap();
        let expired = CertSpec::client("root@lxd").between_years(2019, 2020).self_signed_with(&key).unwrap();
        assert_refused_before_any_request(&expired, &pinned);
        // Pinning the expired certificate itself does not help either.
        let detail = assert_refused_before_any_request(&expired, &expired);
        assert!(detail.contains("not valid now"), "{detail}");
    }

    #[test]
    fn ca_mode_accepts_a_leaf_of_the_pinned_ca() {
        let ca = testbed::certs::ca_cert("Operator CA").unwrap();
        let mut f = fixture(&leaf_of(&ca, "root@node1"), &ca.pem.cert_pem, |_| (200, SERVER_TRUSTED.into()));
        assert!(f.lxd.server().unwrap().trusted);

        let stranger = leaf_of(&testbed::certs::ca_cert("Operator CA").unwrap(), "root@node1");
        let detail = assert_refused_before_any_request(&stranger, &ca.pem);
        assert!(detail.contains("does not chain"), "{detail}");
    }

    #[test]
    fn untrusted_server_info_and_403_untrusted() {
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |r| match r.path.as_str() {
            "/1.0" => (200, SERVER_UNTRUSTED.into()),
            _ => error(403, "not authorized"),
        });
        let info = f.lxd.server().unwrap();
        assert_eq!(
            info,
            ServerInfo { trusted: false, api_extensions: vec!["certificate_project".into()], ..Default::default() }
        );
        let untrusted = LxdError::Untrusted { endpoint: f.server.url() };
        assert_eq!(f.lxd.trust_store().unwrap_err(), untrusted);
        assert_eq!(f.lxd.members().unwrap_err(), untrusted);
        let entry = NewTrustEntry { name: "x".into(), der: vec![1], projects: None };
        assert_eq!(f.lxd.add_trust(&entry).unwrap_err(), untrusted);
    }

    #[test]
    fn trust_store_and_members_parse_with_nulls_and_missing_fields() {
        let id = lxd_server();
        let fp = "ab".repeat(32);
        let fp_upper = fp.to_uppercase();
        let mut f = fixture(&id, &id.cert_pem, move |r| match r.path.as_str() {
            "/1.0/certificates?recursion=1" => sync(&format!(
                r#"[{{"name":"admin","type":"client","restricted":false,"projects":null,"certificate":"-----BEGIN CERTIFICATE-----\n","fingerprint":"{fp_upper}"}},
                    {{"name":"juju","type":"client","restricted":true,"projects":["default","p2"],"fingerprint":"{fp_upper}"}},
                    {{"name":"node2","type":"server","fingerprint":"00"}}]"#
            )),
            "/1.0/cluster/members?recursion=1" => sync(
                r#"[{"server_name":"node1","url":"https://127.0.77.1:8443","database":true,"status":"Online","message":"Fully operational","roles":["database"]},
                    {"server_name":"node2","url":"https://127.0.77.2:8443","status":"Offline"}]"#,
            ),
            _ => error(404, "not found"),
        });
        let store = f.lxd.trust_store().unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(
            store[0],
            TrustEntry {
                name: "admin".into(),
                fingerprint: "ab".repeat(32),
                kind: "client".into(),
                restricted: false,
                projects: vec![]
            }
        );
        assert!(store[1].restricted);
        assert_eq!(store[1].projects, vec!["default".to_string(), "p2".into()]);
        assert_eq!(store[2].kind, TrustKind::Server);
        let members = f.lxd.members().unwrap();
        assert_eq!(
            members,
            vec![
                Member {
                    name: "node1".into(),
                    url: "https://127.0.77.1:8443".into(),
                    status: "Online".into(),
                    message: "Fully operational".into()
                },
                Member {
                    name: "node2".into(),
                    url: "https://127.0.77.2:8443".into(),
                    status: "Offline".into(),
                    message: String::new()
                },
            ]
        );
    }

    #[test]
    fn add_trust_sends_base64_der_and_restrictions_only_when_asked() {
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |_| {
            (201, r#"{"type":"sync","status":"Success","status_code":200,"metadata":{}}"#.into())
        });
        let der = self_signed("juju-req").der.to_vec();
        let plain = NewTrustEntry { name: "juju-a".into(), der: der.clone(), projects: None };
        assert_eq!(f.lxd.add_trust(&plain).unwrap(), AddOutcome::Added);
        let restricted = NewTrustEntry { projects: Some(vec!["p1".into()]), ..plain.clone() };
        assert_eq!(f.lxd.add_trust(&restricted).unwrap(), AddOutcome::Added);
        let none = NewTrustEntry { projects: Some(vec![]), ..plain };
        assert_eq!(f.lxd.add_trust(&none).unwrap(), AddOutcome::Added);

        let log = f.server.log();
        let bodies: Vec<Value> = log.requests.iter().map(|r| serde_json::from_str(&r.body).unwrap()).collect();
        assert!(log.requests.iter().all(|r| r.method == "POST" && r.path == "/1.0/certificates"));
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert_eq!(bodies[0], json!({"name": "juju-a", "type": "client", "certificate": b64}));
        assert_eq!(
            bodies[1],
            json!({"name": "juju-a", "type": "client", "certificate": b64, "restricted": true, "projects": ["p1"]})
        );
        assert_eq!(bodies[2]["restricted"], json!(true));
        assert_eq!(bodies[2]["projects"], json!([]));
    }

    #[test]
    fn duplicate_answers_of_every_version_mean_already_present() {
        for status in [400, 409, 500] {
            let id = lxd_server();
            let mut f = fixture(&id, &id.cert_pem, move |_| error(status, "Certificate already in trust store"));
            let entry = NewTrustEntry { name: "juju-a".into(), der: vec![1, 2], projects: None };
            assert_eq!(f.lxd.add_trust(&entry).unwrap(), AddOutcome::AlreadyPresent, "{status}");
        }
        // The same text under another status, or another 400, is an error.
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |r| {
            if r.body.contains("\"weak\"") {
                error(400, "RSA key is too weak (minimum of 2048bit)")
            } else {
                error(404, "Certificate already in trust store")
            }
        });
        let weak = NewTrustEntry { name: "weak".into(), der: vec![1], projects: None };
        assert_eq!(
            f.lxd.add_trust(&weak).unwrap_err(),
            LxdError::Api {
                method: "POST".into(),
                path: "/1.0/certificates".into(),
                status: 400,
                message: "RSA key is too weak (minimum of 2048bit)".into()
            }
        );
        let other = NewTrustEntry { name: "other".into(), der: vec![1], projects: None };
        assert!(matches!(f.lxd.add_trust(&other).unwrap_err(), LxdError::Api { status: 404, .. }));
    }

    #[test]
    fn lxd30_minimal_error_envelope_and_delete_of_a_missing_entry() {
        let id = lxd_server();
        let fp = "0123456789abcdef".repeat(4);
        let mut f = fixture(&id, &id.cert_pem, |r| match r.method.as_str() {
            "DELETE" => (404, r#"{"type":"error","error":"not found","error_code":404}"#.into()),
            _ => (500, r#"{"type":"error","error":"Server is not clustered","error_code":500}"#.into()),
        });
        assert_eq!(f.lxd.remove_trust(&fp), Ok(()));
        assert_eq!(f.lxd.remove_trust(&fp.to_uppercase()), Ok(()));
        assert_eq!(
            f.lxd.members().unwrap_err(),
            LxdError::Api {
                method: "GET".into(),
                path: "/1.0/cluster/members?recursion=1".into(),
                status: 500,
                message: "Server is not clustered".into()
            }
        );
        assert_eq!(f.server.log().requests[0].path, format!("/1.0/certificates/{fp}"));
        assert_eq!(f.server.log().requests[1].path, format!("/1.0/certificates/{fp}"));
    }

    #[test]
    fn short_fingerprints_are_never_sent() {
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |_| sync("{}"));
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            assert!(matches!(f.lxd.remove_trust(bad), Err(LxdError::Protocol { .. })), "{bad:?}");
            assert!(matches!(f.lxd.restrict_trust(bad, None), Err(LxdError::Protocol { .. })), "{bad:?}");
            assert!(matches!(f.lxd.rename_trust(bad, "juju.x"), Err(LxdError::Protocol { .. })), "{bad:?}");
        }
        assert_eq!(f.server.log().connections, 0);
    }

    #[test]
    fn restrict_trust_patches_restricted_and_projects() {
        let id = lxd_server();
        let fp = "cd".repeat(32);
        let mut f = fixture(&id, &id.cert_pem, |_| sync("{}"));
        f.lxd.restrict_trust(&fp, Some(&["p1".to_string(), "p2".to_string()])).unwrap();
        f.lxd.restrict_trust(&fp, None).unwrap();
        let log = f.server.log();
        assert_eq!(log.requests[0].method, "PATCH");
        assert_eq!(log.requests[0].path, format!("/1.0/certificates/{fp}"));
        let b0: Value = serde_json::from_str(&log.requests[0].body).unwrap();
        let b1: Value = serde_json::from_str(&log.requests[1].body).unwrap();
        assert_eq!(b0, json!({"restricted": true, "projects": ["p1", "p2"]}));
        assert_eq!(b1, json!({"restricted": false, "projects": []}));
    }

    #[test]
    fn rename_trust_patches_the_name_alone_and_a_missing_entry_is_an_error() {
        let id = lxd_server();
        let fp = "ef".repeat(32);
        let gone = "01".repeat(32);
        let gone_path = format!("/1.0/certificates/{gone}");
        let mut f = fixture(&id, &id.cert_pem, move |r| {
            if r.path == gone_path { error(404, "Certificate not found") } else { sync("{}") }
        });
        let name = "juju.0f6d3b1a-1c2b-4f5e-8a9b-123456789abc.lxd-integrator.7.req.0";
        f.lxd.rename_trust(&fp.to_uppercase(), name).unwrap();
        assert_eq!(
            f.lxd.rename_trust(&gone, name).unwrap_err(),
            LxdError::Api {
                method: "PATCH".into(),
                path: format!("/1.0/certificates/{gone}"),
                status: 404,
                message: "Certificate not found".into()
            }
        );
        let log = f.server.log();
        assert_eq!(
            (log.requests[0].method.as_str(), log.requests[0].path.as_str()),
            ("PATCH", format!("/1.0/certificates/{fp}").as_str())
        );
        let body: Value = serde_json::from_str(&log.requests[0].body).unwrap();
        // Nothing but the name: restrictions, projects and type are LXD's to keep.
        assert_eq!(body, json!({ "name": name }));
    }

    /// `POST /1.0/certificates` as LXD 6.9 validates it, texts and statuses exact
    /// (`lxd/certificates.go` `certificatesPost` in canonical/lxd, tag lxd-6.9; the name rule
    /// since 5.21.3 and 6.2, the password refusal since 6.2, the projects rule since 6.7), then
    /// the duplicate checks: a legacy entry (409 `Certificate already in trust store`) or a
    /// fine-grained identity holding the fingerprint (409 `Certificate already exists`,
    /// `lxd/db/cluster/certificates_legacy.go`).
    fn lxd_6_9_post(body: &str, legacy: &[&str], identities: &[&str]) -> (u16, String) {
        let Ok(req) = serde_json::from_str::<Value>(body) else { return error(400, "invalid JSON") };
        if req.get("password").and_then(Value::as_str).is_some_and(|p| !p.is_empty()) {
            return error(501, "Password authentication is no longer supported, please update your client");
        }
        let name = req["name"].as_str().unwrap_or("");
        if name.starts_with('-') || name.contains('/') {
            return error(
                400,
                &format!(
                    "Invalid certificate name \\\"{name}\\\", name must not start with a hyphen or contain forward slashes"
                ),
            );
        }
        let restricted = req["restricted"].as_bool().unwrap_or(false);
        if req["projects"].as_array().is_some_and(|p| !p.is_empty()) && !restricted {
            return error(
                400,
                "Projects can only be specified for restricted certificates. Set restricted=true or remove projects",
            );
        }
        let cert = req["certificate"].as_str().unwrap_or("");
        if legacy.contains(&cert) {
            return error(409, "Certificate already in trust store");
        }
        if identities.contains(&cert) {
            return error(409, "Certificate already exists");
        }
        (201, r#"{"type":"sync","status":"Success","status_code":200,"metadata":{}}"#.into())
    }

    #[test]
    fn adds_keep_every_rule_of_lxd_6_and_its_duplicates_count_as_present() {
        let id = lxd_server();
        let (held_legacy, held_fine) = (self_signed("legacy").der.to_vec(), self_signed("fine").der.to_vec());
        let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
        let (legacy, fine) = (b64(&held_legacy), b64(&held_fine));
        let mut f = fixture(&id, &id.cert_pem, move |r| lxd_6_9_post(&r.body, &[&legacy], &[&fine]));
        let scope = crate::ownership::Scope {
            model_uuid: "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc".into(),
            app: "lxd-integrator".into(),
        };
        let owners = [Some(0), Some(17), None].map(|unit| crate::ownership::Owner {
            relation_id: 3,
            remote_app: "anbox-ams".into(),
            unit,
            interface: Default::default(),
        });
        for (i, owner) in owners.iter().enumerate() {
            let der = self_signed(&format!("req-{i}")).der.to_vec();
            let name = scope.entry_name(owner);
            for projects in [None, Some(vec!["default".to_string()]), Some(vec![])] {
                let entry = NewTrustEntry { name: name.clone(), der: der.clone(), projects };
                assert_eq!(f.lxd.add_trust(&entry), Ok(AddOutcome::Added), "{entry:?}");
            }
        }
        for der in [held_legacy, held_fine] {
            let entry = NewTrustEntry { name: scope.entry_name(&owners[0]), der, projects: None };
            assert_eq!(f.lxd.add_trust(&entry), Ok(AddOutcome::AlreadyPresent));
        }
        // The fake is LXD: a name it refuses comes back as LXD's own error.
        let slash = NewTrustEntry { name: "juju-req/0".into(), der: vec![1], projects: None };
        let err = f.lxd.add_trust(&slash).unwrap_err();
        assert!(
            matches!(&err, LxdError::Api { status: 400, message, .. } if message.starts_with("Invalid certificate name")),
            "{err:?}"
        );
        // No body ever carried anything but these keys.
        for r in &f.server.log().requests {
            let body: Value = serde_json::from_str(&r.body).expect("JSON");
            let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
            assert!(
                keys.iter().all(|k| ["name", "type", "certificate", "restricted", "projects"].contains(&k.as_str())),
                "{keys:?}"
            );
            assert_eq!(body.get("projects").is_some(), body.get("restricted") == Some(&json!(true)), "{body}");
        }
    }

    #[test]
    fn the_duplicate_answers_of_lxd_5_21_and_later_count_as_present_and_only_as_409() {
        // 5.21.0-6.8: `lxd/db/cluster/identities.mapper.go` `CreateIdentity`; 6.9+:
        // `lxd/db/cluster/certificates_legacy.go` `CreateCertificateLegacy`.
        for text in [
            "This \"identity\" entry already exists",
            "Certificate already exists",
            "Certificate already in trust store",
        ] {
            assert!(is_duplicate(409, text), "{text}");
        }
        for (status, text) in [
            (400, "Certificate already exists"),
            (500, "This \"identity\" entry already exists"),
            (409, "Client is already trusted"),
            (409, "An identity with name \"x\" already exists"),
        ] {
            assert!(!is_duplicate(status, text), "{status} {text}");
        }
    }

    /// `GET /1.0` of a real Incus 6.0.4 member (Debian's `incus-base` from bookworm-backports, run
    /// by the testbed), trimmed: `environment.server` is `incus`.
    const INCUS_SERVER: &str = r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{"api_extensions":["clustering","certificate_project","certificate_token","cluster_member_state","oidc","auth_user"],"api_status":"stable","api_version":"1.0","auth":"trusted","public":false,"auth_methods":["tls"],"auth_user_method":"unix","auth_user_name":"root","config":{"cluster.https_address":"127.0.99.1:8443","core.https_address":"127.0.99.1:8443"},"environment":{"addresses":["127.0.99.1:8443"],"architectures":["x86_64","i686"],"certificate":"-----BEGIN CERTIFICATE-----\n...","certificate_fingerprint":"a94bbaf05f069456909538ef4c8535b5b84b96914ad61945b38dd10f1297f4a1","driver":"lxc","driver_version":"5.0.2","firewall":"nftables","kernel":"Linux","os_name":"Debian GNU/Linux","os_version":"12","project":"default","server":"incus","server_clustered":true,"server_event_mode":"full-mesh","server_name":"node1","server_pid":1662,"server_version":"6.0.4","storage":"dir","storage_version":"1"}}}"#;
    /// Its member list and trust store (with Incus' `description`), as it answered them.
    const INCUS_MEMBERS: &[u8] = br#"{"type":"sync","status":"Success","status_code":200,"metadata":[{"architecture":"x86_64","config":{},"database":true,"description":"","failure_domain":"default","groups":["default"],"message":"Fully operational","roles":["database-leader","database"],"server_name":"node1","status":"Online","url":"https://127.0.99.1:8443"},{"architecture":"x86_64","config":{},"database":true,"description":"","failure_domain":"default","groups":["default"],"message":"Unavailable due to maintenance","roles":["database-standby"],"server_name":"node2","status":"Evacuating","url":"https://127.0.99.2:8443"}]}"#;
    const INCUS_TRUST: &[u8] = br#"{"type":"sync","status":"Success","status_code":200,"metadata":[{"certificate":"-----BEGIN CERTIFICATE-----\n...","description":"","fingerprint":"1b24f805e08231c93ab04dd1c9604c03b52d322a4aef851b233c5a8fe3961c9c","name":"node1","projects":[],"restricted":false,"type":"server"},{"certificate":"-----BEGIN CERTIFICATE-----\n...","description":"added by hand","fingerprint":"81b4a750ed07030541cfc4389a3ee26dd06a709fbd461043192408117226491e","name":"op/odd","projects":[],"restricted":false,"type":"client"}]}"#;

    #[test]
    fn incus_answers_decode_as_lxd_s_with_the_server_named() {
        let info = answers::server(200, INCUS_SERVER.as_bytes()).expect("GET /1.0");
        assert_eq!((info.kind.as_str(), info.server_version.as_str(), info.clustered), ("incus", "6.0.4", true));
        assert_eq!(info.addresses, ["127.0.99.1:8443"]);
        let members = answers::members(200, INCUS_MEMBERS).expect("members");
        assert_eq!(members.iter().map(|m| m.status.to_string()).collect::<Vec<_>>(), ["Online", "Evacuating"]);
        let store = answers::trust_store(200, INCUS_TRUST).expect("trust store");
        assert_eq!(
            (store[1].name.as_str(), store[1].kind.clone(), store[1].restricted),
            ("op/odd", TrustKind::Client, false)
        );
        let lxd = answers::server(200, SERVER_TRUSTED.as_bytes()).expect("GET /1.0");
        assert_eq!(lxd.kind, ServerKind::Lxd);
        assert_eq!(answers::server(200, SERVER_UNTRUSTED.as_bytes()).expect("untrusted").kind, ServerKind::Unknown);
    }

    #[test]
    fn the_current_identity_of_lxd_5_21_and_6_decodes() {
        // 5.21.0 `IdentityInfo` (`shared/api/auth.go`): no `fine_grained`.
        let v521 = br#"{"type":"sync","status":"Success","status_code":200,"metadata":{"authentication_method":"tls","type":"Client certificate (unrestricted)","id":"ab","name":"juju","groups":null,"effective_groups":null,"effective_permissions":[]}}"#;
        let id = answers::current_identity(200, v521).expect("5.21");
        assert_eq!(
            (id.kind.as_str(), id.fine_grained, id.permissions.len()),
            ("Client certificate (unrestricted)", None, 0)
        );
        // 6.x: `fine_grained`, `tls_certificate`, permissions with the entity URL.
        let v6 = br#"{"type":"sync","status":"Success","status_code":200,"metadata":{"access_entitlements":null,"authentication_method":"tls","type":"Client certificate","id":"ab","name":"juju","groups":["trust-managers"],"tls_certificate":"-----BEGIN CERTIFICATE-----\n...","effective_groups":["trust-managers"],"effective_permissions":[{"entity_type":"server","url":"/1.0","entitlement":"can_create_identities"}],"fine_grained":true}}"#;
        let id = answers::current_identity(200, v6).expect("6.x");
        assert_eq!(id.fine_grained, Some(true));
        assert_eq!(
            id.permissions,
            [Permission {
                entity_type: "server".into(),
                url: "/1.0".into(),
                entitlement: "can_create_identities".into()
            }]
        );
        assert!(matches!(
            answers::current_identity(404, br#"{"type":"error","error":"not found","error_code":404}"#),
            Err(LxdError::Api { status: 404, .. })
        ));
    }

    #[test]
    fn answers_decode_without_a_connection_as_the_client_does() {
        let body = br#"{"type":"sync","metadata":[{"name":"a","type":"client","fingerprint":"ABCD","projects":null}]}"#;
        let store = answers::trust_store(200, body).expect("decodes");
        assert_eq!((store[0].fingerprint.as_str(), store[0].restricted), ("abcd", false));
        assert!(matches!(answers::server(403, b"{}"), Err(LxdError::Untrusted { .. })));
        let dup = br#"{"type":"error","error":"Certificate already in trust store","error_code":409}"#;
        assert!(matches!(answers::members(409, dup), Err(LxdError::Api { status: 409, .. })));
        assert!(matches!(answers::server(200, b"<html>"), Err(LxdError::Protocol { .. })));
    }

    #[test]
    fn garbage_answers_are_protocol_errors() {
        let id = lxd_server();
        let mut f = fixture(&id, &id.cert_pem, |r| match r.path.as_str() {
            "/1.0" => (200, "<html>proxy</html>".into()),
            "/1.0/certificates?recursion=1" => sync(r#"{"not":"a list"}"#),
            _ => (502, "Bad Gateway".into()),
        });
        assert!(matches!(f.lxd.server().unwrap_err(), LxdError::Protocol { path, .. } if path == "/1.0"));
        assert!(matches!(f.lxd.trust_store().unwrap_err(), LxdError::Protocol { .. }));
        let err = f.lxd.members().unwrap_err();
        assert!(
            matches!(&err, LxdError::Protocol { detail, .. } if detail.contains("HTTP 502") && detail.contains("Bad Gateway")),
            "{err:?}"
        );
    }

    #[test]
    fn refused_connection_is_unreachable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let id = lxd_server();
        let endpoint = Endpoint { host: addr.ip().to_string(), port: addr.port() };
        let mut lxd = HttpConnector::default()
            .connect(&endpoint, &creds(&self_signed("c"), &id.cert_pem))
            .expect("connect is lazy");
        let err = lxd.server().unwrap_err();
        let LxdError::Unreachable { endpoint: ep, detail } = &err else { panic!("{err:?}") };
        assert_eq!(ep, &endpoint.url());
        assert!(detail.to_lowercase().contains("refused"), "{detail}");
    }

    #[test]
    fn a_server_that_never_answers_times_out_as_unreachable() {
        let id = lxd_server();
        let server = TlsServer::start(&id, |_| {
            std::thread::sleep(Duration::from_millis(600));
            sync("{}")
        })
        .unwrap();
        let connector = HttpConnector {
            connect_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(200),
            ..HttpConnector::default()
        };
        let mut lxd = connector.connect(&endpoint(&server), &creds(&self_signed("c"), &id.cert_pem)).unwrap();
        let err = lxd.server().unwrap_err();
        assert!(matches!(&err, LxdError::Unreachable { detail, .. } if detail.starts_with("timed out")), "{err:?}");
    }

    #[test]
    fn an_answer_trickled_past_the_deadline_is_unreachable_at_the_deadline() {
        let id = lxd_server();
        let metadata = format!("\"{}\"", "x".repeat(1000));
        // Headers at once, then 1 byte per 200 ms: every read gets a byte well within a second.
        let server = TlsServer::presenting(&id)
            .script(move |_| {
                let (status, body) = sync(&metadata);
                Reply::Trickle(status, body, Duration::from_millis(200))
            })
            .unwrap();
        let connector = HttpConnector { request_timeout: Duration::from_secs(1), ..HttpConnector::default() };
        let mut lxd = connector.connect(&endpoint(&server), &creds(&self_signed("c"), &id.cert_pem)).unwrap();
        let start = Instant::now();
        let err = lxd.server().unwrap_err();
        let took = start.elapsed();
        let LxdError::Unreachable { detail, .. } = &err else { panic!("{err:?}") };
        assert_eq!(detail, "timed out after 1 s on /1.0");
        // The whole body would take ~200 s; the bound only has to tell the deadline from that.
        assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "{took:?}");
        assert!(!err.to_string().contains("sync"), "{err}");
        assert_eq!(server.log().requests.len(), 1);
    }

    #[test]
    fn every_item_of_a_batch_refused_by_the_pin_is_a_mismatch() {
        let f = fixture(&lxd_server(), &lxd_server().cert_pem, |_| sync("{}"));
        let mut lxd = f.lxd;
        let fps: Vec<String> = (0..4 * MIN_TO_SPREAD).map(|i| format!("{i:064x}")).collect();
        for answer in lxd.remove_trust_all(&fps, open_window()) {
            let err = answer.unwrap_err();
            assert!(
                matches!(&err, LxdError::ServerCertMismatch { detail, .. } if detail.contains("the pin is")),
                "{err:?}"
            );
        }
        let log = f.server.log();
        assert!(log.connections > 1 && log.requests.is_empty(), "{log:?}");
    }

    #[test]
    fn a_certificate_replaced_mid_batch_is_named_on_the_connections_that_saw_it() {
        let (old, new) = (lxd_server(), lxd_server());
        // A little delay per answer keeps the open connection busy, so the batch opens more.
        let server = TlsServer::presenting(&old)
            .then_presenting(&new)
            .start(|_| {
                std::thread::sleep(Duration::from_millis(20));
                sync("{}")
            })
            .unwrap();
        let mut lxd =
            HttpConnector::default().connect(&endpoint(&server), &creds(&self_signed("c"), &old.cert_pem)).unwrap();
        lxd.remove_trust(&"0".repeat(64)).expect("the first connection presents the pinned certificate");
        let fps: Vec<String> = (0..4 * MIN_TO_SPREAD).map(|i| format!("{i:064x}")).collect();
        let (mut served, mut refused) = (0, 0);
        for answer in lxd.remove_trust_all(&fps, open_window()) {
            match answer {
                Ok(()) => served += 1,
                Err(LxdError::ServerCertMismatch { detail, .. }) if detail.contains("the pin is") => refused += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert!(served >= 1 && refused >= 1, "{served} served, {refused} refused");
        let log = server.log();
        assert_eq!(log.handshakes_ok, 1, "{log:?}");
        assert_eq!(log.requests.len(), 1 + served);
    }

    #[test]
    fn bad_credentials_are_reported_at_connect_without_key_material() {
        let id = lxd_server();
        let client = self_signed("c");
        let other = self_signed("c");
        let tls = TlsCredentials { client_key_pem: other.key_pem.clone(), ..creds(&client, &id.cert_pem) };
        let endpoint = Endpoint { host: "127.0.0.1".into(), port: 1 };
        let err = HttpConnector::default().connect(&endpoint, &tls).err().expect("refused");
        assert!(matches!(&err, LxdError::BadCredentials(m) if m.contains("does not belong")), "{err:?}");
        let body: String = other.key_pem.lines().nth(1).unwrap().into();
        assert!(!format!("{err:?} {err}").contains(&body));
        let lxd = HttpLxd::new(&endpoint, &creds(&client, &id.cert_pem)).unwrap();
        let debug = format!("{lxd:?}");
        assert!(!debug.contains(client.key_pem.lines().nth(1).unwrap()), "{debug}");
    }
}

/// Against a real LXD started by hand (see `lxd-api.md` for the recipe):
/// `PIN_LXD_DIR=/tmp/d PIN_LXD_ADDR=127.0.77.1:8443 cargo test --lib real_lxd -- --ignored --nocapture`.
/// It trusts a fresh client certificate with `lxc config trust add`, so only point it at a
/// throwaway daemon.
#[cfg(test)]
mod real_lxd {
    use super::*;
    use crate::pin::testing::*;

    #[test]
    #[ignore = "needs a throwaway LXD: PIN_LXD_DIR and PIN_LXD_ADDR"]
    fn real_lxd_round_trip() {
        let dir = std::env::var("PIN_LXD_DIR").expect("PIN_LXD_DIR");
        let addr = std::env::var("PIN_LXD_ADDR").expect("PIN_LXD_ADDR");
        let endpoint = Endpoint::parse(&addr).unwrap();
        let cluster_crt = format!("{dir}/cluster.crt");
        let pin_path =
            if std::path::Path::new(&cluster_crt).exists() { cluster_crt } else { format!("{dir}/server.crt") };
        let pinned = std::fs::read_to_string(&pin_path).unwrap();
        let client = self_signed("pin-test-client");
        let tls = creds(&client, &pinned);
        let connector = HttpConnector::default();

        let mut lxd = connector.connect(&endpoint, &tls).unwrap();
        let info = lxd.server().unwrap();
        println!(
            "untrusted GET /1.0 -> {:?}",
            ServerInfo { api_extensions: vec![format!("{} extensions", info.api_extensions.len())], ..info.clone() }
        );
        assert!(!info.trusted);
        println!("untrusted trust_store -> {:?}", lxd.trust_store());

        let file = format!("{dir}.pin-client.crt");
        std::fs::write(&file, &client.cert_pem).unwrap();
        let out = std::process::Command::new("lxc")
            .args(["config", "trust", "add", &file, "--name", "pin-test-client"])
            .env("LXD_DIR", &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let mut lxd = connector.connect(&endpoint, &tls).unwrap();
        let info = lxd.server().unwrap();
        println!(
            "trusted GET /1.0 -> {:?}",
            ServerInfo { api_extensions: vec![format!("{} extensions", info.api_extensions.len())], ..info.clone() }
        );
        assert!(info.trusted);
        println!("members -> {:?}", lxd.members());
        let store = lxd.trust_store().unwrap();
        println!("trust store -> {store:#?}");

        let req = self_signed("juju-req");
        let fp = req.fingerprint.clone();
        let entry = NewTrustEntry { name: "juju-req-0".into(), der: req.der.clone(), projects: None };
        println!("add -> {:?}", lxd.add_trust(&entry));
        println!("add again -> {:?}", lxd.add_trust(&entry));
        println!("restrict -> {:?}", lxd.restrict_trust(&fp, Some(&["default".to_string()])));
        let e = lxd.trust_store().unwrap().into_iter().find(|e| e.fingerprint == fp);
        println!("after restrict -> {e:?}");
        println!("unrestrict -> {:?}", lxd.restrict_trust(&fp, None));
        println!("remove -> {:?}", lxd.remove_trust(&fp));
        println!("remove again -> {:?}", lxd.remove_trust(&fp));
        println!("restrict missing -> {:?}", lxd.restrict_trust(&fp, None));

        let other = self_signed("juju-other");
        let restricted =
            NewTrustEntry { name: "juju-other".into(), der: other.der.clone(), projects: Some(vec!["default".into()]) };
        println!("add restricted -> {:?}", lxd.add_trust(&restricted));
        let e = lxd.trust_store().unwrap().into_iter().find(|e| e.name == "juju-other");
        println!("restricted entry -> {e:?}");
        println!("remove -> {:?}", lxd.remove_trust(&other.fingerprint));
        let bad_project = NewTrustEntry { projects: Some(vec!["nope".into()]), ..restricted.clone() };
        println!("add with unknown project -> {:?}", lxd.add_trust(&bad_project));
        let slash = NewTrustEntry { name: "juju-req/0".into(), ..restricted.clone() };
        println!("add with a slash in the name -> {:?}", lxd.add_trust(&slash));
        println!("remove -> {:?}", lxd.remove_trust(&other.fingerprint));
        let garbage = NewTrustEntry { name: "garbage".into(), der: vec![1, 2, 3], projects: None };
        println!("add garbage DER -> {:?}", lxd.add_trust(&garbage));

        let wrong = creds(&client, &self_signed("root@vm").cert_pem);
        let mut lxd = connector.connect(&endpoint, &wrong).unwrap();
        let err = lxd.server().unwrap_err();
        println!("wrong pin -> {err}");
        assert!(matches!(err, LxdError::ServerCertMismatch { .. }));

        if pin_path.ends_with("cluster.crt") {
            // Clustered: the daemon serves cluster.crt; a pin of its own server.crt is refused.
            let member_pin = std::fs::read_to_string(format!("{dir}/server.crt")).unwrap();
            let err = connector.connect(&endpoint, &creds(&client, &member_pin)).unwrap().server().unwrap_err();
            println!("pinning server.crt of a clustered member -> {err}");
            assert!(matches!(err, LxdError::ServerCertMismatch { .. }));
        }

        let mut lxd = connector.connect(&endpoint, &tls).unwrap();
        println!("remove self -> {:?}", lxd.remove_trust(&client.fingerprint));
        std::fs::remove_file(&file).ok();
    }
}
