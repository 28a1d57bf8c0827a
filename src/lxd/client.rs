//! The HTTPS implementation of [`Lxd`]: `reqwest::blocking` over rustls, with the server
//! authenticated by `crate::pin` and our client certificate presented in the handshake.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use reqwest::blocking::Client;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{AddOutcome, Connector, Lxd, LxdError, Member, NewTrustEntry, ServerInfo, TrustEntry};
use crate::credentials::TlsCredentials;
use crate::endpoint::Endpoint;
use crate::pin::{self, PinHandle};

/// TCP connect plus TLS handshake budget. LXD answers a handshake in milliseconds on any network
/// a cluster can live on; a member that does not is down or filtered, and the reconcile should
/// move on to the next one instead of holding the hook (and so the Juju agent) hostage.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Whole-request budget (send, wait, read the body). The calls made here are small database
/// reads and writes that LXD serves in well under a second even on a busy cluster; 15 s leaves
/// room for a slow leader election while guaranteeing a hook never hangs the agent.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Larger answers than this are not something LXD sends to these calls; refuse rather than
/// buffer without bound.
const MAX_BODY: u64 = 32 * 1024 * 1024;

/// Opens [`HttpLxd`] connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConnector {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for HttpConnector {
    fn default() -> Self {
        HttpConnector { connect_timeout: CONNECT_TIMEOUT, request_timeout: REQUEST_TIMEOUT }
    }
}

impl Connector for HttpConnector {
    /// Builds the client only (no network traffic); connection errors surface on the first call.
    fn connect(&self, endpoint: &Endpoint, tls: &TlsCredentials) -> Result<Box<dyn Lxd>, LxdError> {
        Ok(Box::new(HttpLxd::with_timeouts(endpoint, tls, self.connect_timeout, self.request_timeout)?))
    }
}

/// One LXD server over HTTPS. All requests share one kept-alive connection.
pub struct HttpLxd {
    endpoint: Endpoint,
    base: String,
    client: Client,
    pin: PinHandle,
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
        HttpLxd::with_timeouts(endpoint, tls, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    pub fn with_timeouts(
        endpoint: &Endpoint,
        tls: &TlsCredentials,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<HttpLxd, LxdError> {
        let (config, pin) = pin::client_config(tls).map_err(|e| LxdError::BadCredentials(e.to_string()))?;
        let client = Client::builder()
            .tls_backend_preconfigured(config)
            // LXD is reached directly; an HTTPS_PROXY meant for the charm's downloads must not
            // see (or break) the mutual-TLS session.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .pool_max_idle_per_host(1)
            .user_agent(concat!("lxd-integrator/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LxdError::BadCredentials(format!("cannot set up the HTTPS client: {}", error_chain(&e))))?;
        Ok(HttpLxd { endpoint: endpoint.clone(), base: endpoint.url(), client, pin })
    }

    fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer, LxdError> {
        self.pin.take_rejection();
        let mut request = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let response = request.send().map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        response
            .take(MAX_BODY + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.unreachable(format!("reading the answer to {path}: {}", error_chain(&e))))?;
        if bytes.len() as u64 > MAX_BODY {
            return Err(LxdError::Protocol { path: path.into(), detail: format!("answer larger than {MAX_BODY} bytes") });
        }
        let envelope = serde_json::from_slice::<Envelope>(&bytes).map_err(|e| {
            format!("HTTP {status} with a body that is not an LXD envelope ({e}): {}", snippet(&bytes))
        });
        Ok(Answer { status, envelope })
    }

    fn transport_error(&self, e: &reqwest::Error) -> LxdError {
        if let Some(rejection) = self.pin.take_rejection() {
            return LxdError::ServerCertMismatch { endpoint: self.base.clone(), detail: rejection.to_string() };
        }
        let detail = error_chain(e);
        if e.is_timeout() { self.unreachable(format!("timed out: {detail}")) } else { self.unreachable(detail) }
    }

    fn unreachable(&self, detail: String) -> LxdError {
        LxdError::Unreachable { endpoint: self.base.clone(), detail }
    }

    /// The error for an answer that is not a success.
    fn failure(&self, method: &Method, path: &str, answer: Answer) -> LxdError {
        if answer.status == 403 {
            return LxdError::Untrusted { endpoint: self.base.clone() };
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

    /// A synchronous call whose `metadata` is decoded as `T`.
    fn sync<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<Value>) -> Result<T, LxdError> {
        let answer = self.call(method.clone(), path, body)?;
        if !is_success(&answer) {
            return Err(self.failure(&method, path, answer));
        }
        let metadata = answer.envelope.ok().and_then(|e| e.metadata).unwrap_or(Value::Null);
        serde_json::from_value(metadata)
            .map_err(|e| LxdError::Protocol { path: path.into(), detail: format!("unexpected metadata: {e}") })
    }

    /// A call whose answer carries nothing we need beyond success.
    fn unit(&self, method: Method, path: &str, body: Option<Value>, also_ok: &[u16]) -> Result<(), LxdError> {
        let answer = self.call(method.clone(), path, body)?;
        if is_success(&answer) || also_ok.contains(&answer.status) {
            return Ok(());
        }
        Err(self.failure(&method, path, answer))
    }
}

fn is_success(answer: &Answer) -> bool {
    (200..300).contains(&answer.status)
        && matches!(&answer.envelope, Ok(env) if env.kind.as_deref() != Some("error"))
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
    #[serde(default)]
    server_name: Option<String>,
    #[serde(default)]
    server_version: Option<String>,
    #[serde(default)]
    server_clustered: Option<bool>,
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

impl Lxd for HttpLxd {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `auth: untrusted` is not an error here: the answer says `trusted: false` and carries no
    /// `environment` fields. Calls that need trust fail with `Untrusted` (LXD answers 403).
    fn server(&mut self) -> Result<ServerInfo, LxdError> {
        let raw: RawServer = self.sync(Method::GET, "/1.0", None)?;
        let env = raw.environment;
        Ok(ServerInfo {
            trusted: raw.auth.as_deref() == Some("trusted"),
            api_extensions: raw.api_extensions.unwrap_or_default(),
            server_name: env.as_ref().and_then(|e| e.server_name.clone()).unwrap_or_default(),
            server_version: env.as_ref().and_then(|e| e.server_version.clone()).unwrap_or_default(),
            clustered: env.as_ref().and_then(|e| e.server_clustered).unwrap_or(false),
            addresses: env.and_then(|e| e.addresses).unwrap_or_default(),
        })
    }

    fn members(&mut self) -> Result<Vec<Member>, LxdError> {
        let raw: Option<Vec<RawMember>> = self.sync(Method::GET, "/1.0/cluster/members?recursion=1", None)?;
        Ok(raw
            .unwrap_or_default()
            .into_iter()
            .map(|m| Member {
                name: m.server_name.unwrap_or_default(),
                url: m.url.unwrap_or_default(),
                status: m.status.unwrap_or_default(),
                message: m.message.unwrap_or_default(),
            })
            .collect())
    }

    fn trust_store(&mut self) -> Result<Vec<TrustEntry>, LxdError> {
        let raw: Option<Vec<RawCertificate>> = self.sync(Method::GET, "/1.0/certificates?recursion=1", None)?;
        Ok(raw
            .unwrap_or_default()
            .into_iter()
            .map(|c| TrustEntry {
                name: c.name.unwrap_or_default(),
                fingerprint: c.fingerprint.unwrap_or_default().to_ascii_lowercase(),
                kind: c.kind.unwrap_or_default(),
                restricted: c.restricted.unwrap_or(false),
                projects: c.projects.unwrap_or_default(),
            })
            .collect())
    }

    fn add_trust(&mut self, entry: &NewTrustEntry) -> Result<AddOutcome, LxdError> {
        const PATH: &str = "/1.0/certificates";
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
        let answer = self.call(Method::POST, PATH, Some(body))?;
        if is_success(&answer) {
            return Ok(AddOutcome::Added);
        }
        // The duplicate answer moved between versions: 400 (3.x, 4.x, 5.0.0), 500 (5.0.1,
        // 5.1-5.7), 409 (5.0.2+, 5.8+, 6.x, Incus). The text stayed the same.
        if matches!(answer.status, 400 | 409 | 500)
            && let Ok(env) = &answer.envelope
            && env.error.as_deref().is_some_and(|m| m.to_ascii_lowercase().contains("already in trust store"))
        {
            return Ok(AddOutcome::AlreadyPresent);
        }
        Err(self.failure(&Method::POST, PATH, answer))
    }

    fn remove_trust(&mut self, fingerprint: &str) -> Result<(), LxdError> {
        let path = certificate_path(fingerprint)?;
        self.unit(Method::DELETE, &path, None, &[404])
    }

    fn restrict_trust(&mut self, fingerprint: &str, projects: Option<&[String]>) -> Result<(), LxdError> {
        let path = certificate_path(fingerprint)?;
        let body = match projects {
            Some(p) => json!({ "restricted": true, "projects": p }),
            None => json!({ "restricted": false, "projects": [] }),
        };
        self.unit(Method::PATCH, &path, Some(body), &[])
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

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}
