//! A fake LXD for what a real cluster cannot show: an older server. It speaks HTTPS (rustls, on
//! 127.0.0.1 with a `testbed::certs` server certificate the charm pins), answers as a trusted,
//! non-clustered server with the version and API extensions it was started with, keeps a tiny
//! trust store (`GET`/`POST`/`DELETE` on `/1.0/certificates`, stored the way LXD 4.0 does:
//! unrestricted, whatever the request said) and records every request it receives. It can also
//! trickle one path's answer for ever: headers at once, then a byte now and then.

use anyhow::{Context, Result};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testbed::certs::{self, Pem};

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

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: String,
}

#[derive(Default)]
struct State {
    requests: Vec<Request>,
    store: Vec<Value>,
    /// This path's answer is trickled, one byte per interval.
    trickle: Option<(String, Duration)>,
}

/// What a trickled answer is made of; scenarios check that none of it shows anywhere.
pub const TRICKLED: &[u8] = b"trickled-";

pub struct FakeLxd {
    pub addr: SocketAddr,
    /// The server certificate it presents (and the charm must pin).
    pub cert: Pem,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

struct Server {
    name: String,
    version: String,
    extensions: Vec<String>,
    cert_pem: String,
    addr: SocketAddr,
}

impl FakeLxd {
    pub fn start(version: &str, extensions: &[&str]) -> Result<FakeLxd> {
        let cert = certs::server_cert("fake-lxd", &[])?;
        let chain = vec![CertificateDer::from(cert.cert_der()?)];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certs::pem_to_der(&cert.key_pem)?));
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("fake LXD TLS config")?;
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let server = Arc::new(Server {
            name: "fake-lxd".into(),
            version: version.into(),
            extensions: extensions.iter().map(|e| e.to_string()).collect(),
            cert_pem: cert.cert_pem.clone(),
            addr,
        });
        let (thread_state, thread_stop) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                if thread_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(sock) = sock else { continue };
                let (config, state, server, stop) =
                    (config.clone(), thread_state.clone(), server.clone(), thread_stop.clone());
                std::thread::spawn(move || serve(config, sock, &state, &server, &stop));
            }
        });
        Ok(FakeLxd { addr, cert, state, stop })
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
        self.state.lock().unwrap_or_else(|p| p.into_inner()).requests.clone()
    }

    pub fn store(&self) -> Vec<Value> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).store.clone()
    }

    /// From now on, `path` (with its query) is answered 200 with a 1 GiB body announced, of
    /// which one byte of [`TRICKLED`] is sent every `every` until the client hangs up: never
    /// silent long enough for a per-read timeout, never done.
    pub fn trickle(&self, path: &str, every: Duration) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).trickle = Some((path.into(), every));
    }
}

impl Drop for FakeLxd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(config: Arc<ServerConfig>, sock: TcpStream, state: &Mutex<State>, server: &Server, stop: &AtomicBool) {
    let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let mut buf = Vec::new();
    loop {
        while let Some((request, used)) = parse_request(&buf) {
            buf.drain(..used);
            let trickle = state.lock().unwrap_or_else(|p| p.into_inner()).trickle.clone();
            if let Some((_, every)) = trickle.filter(|(path, _)| *path == request.path) {
                state.lock().unwrap_or_else(|p| p.into_inner()).requests.push(request);
                return trickle_for_ever(&mut tls, every, stop);
            }
            let (status, body) = answer(&request, state, server);
            state.lock().unwrap_or_else(|p| p.into_inner()).requests.push(request);
            let head = format!(
                "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if tls.write_all(head.as_bytes()).and_then(|_| tls.write_all(body.as_bytes())).and_then(|_| tls.flush()).is_err() {
                return;
            }
        }
        let mut chunk = [0u8; 16384];
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The head at once, then one byte of [`TRICKLED`] every `every` until the client hangs up or the
/// fake is dropped.
fn trickle_for_ever(tls: &mut impl Write, every: Duration, stop: &AtomicBool) {
    let head = "HTTP/1.1 200 Fake\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n";
    if tls.write_all(head.as_bytes()).and_then(|_| tls.flush()).is_err() {
        return;
    }
    for byte in TRICKLED.iter().cycle() {
        std::thread::sleep(every);
        if stop.load(Ordering::SeqCst) || tls.write_all(&[*byte]).and_then(|_| tls.flush()).is_err() {
            return;
        }
    }
}

fn parse_request(buf: &[u8]) -> Option<(Request, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let total = end + 4 + length;
    if buf.len() < total {
        return None;
    }
    let body = String::from_utf8_lossy(&buf[end + 4..total]).into_owned();
    Some((Request { method, path, body }, total))
}

fn sync(status: u16, metadata: Value) -> (u16, String) {
    (status, json!({"type": "sync", "status": "Success", "status_code": 200, "error_code": 0, "error": "", "metadata": metadata}).to_string())
}

fn error(status: u16, text: &str) -> (u16, String) {
    (status, json!({"type": "error", "error": text, "error_code": status}).to_string())
}

fn answer(request: &Request, state: &Mutex<State>, server: &Server) -> (u16, String) {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/1.0") => sync(
            200,
            json!({
                "api_extensions": server.extensions,
                "api_status": "stable",
                "api_version": "1.0",
                "auth": "trusted",
                "auth_methods": ["tls"],
                "public": false,
                "environment": {
                    "addresses": [server.addr.to_string()],
                    "certificate": server.cert_pem,
                    "server": "lxd",
                    "server_name": server.name,
                    "server_clustered": false,
                    "server_version": server.version,
                    "project": "default",
                },
            }),
        ),
        ("GET", "/1.0/certificates?recursion=1") => sync(200, Value::Array(state.store.clone())),
        ("POST", "/1.0/certificates") => {
            let Ok(body) = serde_json::from_str::<Value>(&request.body) else { return error(400, "invalid JSON") };
            let b64 = body["certificate"].as_str().unwrap_or("");
            let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
            let Ok(der) = certs::pem_to_der(&pem) else { return error(400, "Invalid certificate material") };
            let fp = certs::fingerprint(&der);
            if state.store.iter().any(|e| e["fingerprint"] == json!(fp)) {
                return error(400, "Certificate already in trust store");
            }
            // LXD 4.0 ignores `restricted` and `projects`.
            state.store.push(json!({
                "name": body["name"], "type": "client", "restricted": false, "projects": [],
                "certificate": pem, "fingerprint": fp,
            }));
            sync(201, json!({}))
        }
        ("DELETE", path) if path.starts_with("/1.0/certificates/") => {
            let fp = &path["/1.0/certificates/".len()..];
            let before = state.store.len();
            state.store.retain(|e| e["fingerprint"] != json!(fp));
            if state.store.len() == before { error(404, "not found") } else { sync(200, json!({})) }
        }
        _ => error(404, "not found"),
    }
}
