//! A scripted HTTPS server on 127.0.0.1 (rustls, ring provider), for tests of what a TLS client
//! does: the charm's pinned connection, the requirer library, the bench's request counter.
//!
//! Like LXD it asks for a client certificate and takes any or none; it answers each HTTP/1.1
//! request with what the test's handler returns, and logs what it saw: connections, completed
//! handshakes, the client certificate each presented, the plaintext bytes and the requests. A
//! test that proves a refusal "before any request" reads the log, so it counts what arrived
//! whether or not it parsed as HTTP.
//!
//! What a real server cannot be made to do on demand is a [`Builder`] option or a [`Reply`]:
//! TLS 1.2 only, a certificate replaced after the first handshake, a handshake signed with a key
//! that is not the certificate's, an answer trickled byte by byte (for ever, if asked), a
//! connection dropped instead of answered.
//!
//! The server stops accepting when dropped; connections it is serving end with their client,
//! or after 10 s without a byte from it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DistinguishedName, ServerConfig, ServerConnection, SupportedProtocolVersion};

use crate::certs::Pem;

/// How long a connection may stay silent before the server hangs up: longer than any pause
/// between two requests of one hook, so a kept-alive connection is the client's to close.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What a [`Reply::TrickleForEver`] announces: far more than anyone will wait for.
const FOR_EVER: usize = 1 << 30;

/// One HTTP/1.1 request as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// With its query, as sent.
    pub path: String,
    pub body: String,
}

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An answer of this status with this JSON body.
    Answer(u16, String),
    /// The head at once, then the body one byte every `Duration`: never silent long enough for a
    /// per-read timeout, slow in total.
    Trickle(u16, String, Duration),
    /// A 200 announcing 1 GiB at once, then these bytes over and over, one every `Duration`,
    /// until the client hangs up or the server is dropped: an answer that never ends.
    TrickleForEver(&'static [u8], Duration),
    /// No answer: the connection is closed.
    HangUp,
}

/// What the server saw, over all its connections.
#[derive(Debug, Default, Clone)]
pub struct Log {
    pub connections: usize,
    /// Connections that have ended on the server's side.
    pub closed: usize,
    pub handshakes_ok: usize,
    /// Why connections ended, where they ended in an error (a client's TLS alert shows here).
    pub errors: Vec<String>,
    /// Plaintext bytes received after a handshake: a request would show here, parsed or not.
    pub app_bytes: usize,
    pub requests: Vec<Request>,
    /// DER of the client certificate each completed handshake presented (empty: none).
    pub client_certs: Vec<Vec<u8>>,
}

/// A running server; see the module documentation.
pub struct TlsServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

/// How the server presents itself; [`Builder::start`] or [`Builder::script`] runs it.
pub struct Builder {
    /// One certificate per handshake, in turn; the last one for good.
    presents: Vec<Presented>,
    versions: Vec<&'static SupportedProtocolVersion>,
}

struct Presented {
    cert_pem: String,
    key_pem: String,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

struct Shared {
    log: Mutex<Log>,
    stop: AtomicBool,
    handler: Box<Handler>,
}

impl TlsServer {
    /// A server presenting `identity`, answering every request with `handler`'s status and body.
    pub fn start(
        identity: &Pem,
        handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) -> Result<TlsServer> {
        TlsServer::presenting(identity).start(handler)
    }

    /// A server presenting `identity` (its certificate chain, signed with its key) in every
    /// handshake, TLS 1.3 and 1.2, unless the builder says otherwise.
    pub fn presenting(identity: &Pem) -> Builder {
        Builder {
            presents: vec![Presented { cert_pem: identity.cert_pem.clone(), key_pem: identity.key_pem.clone() }],
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.shared.log()
    }

    /// The log once `n` connections have ended on the server's side, or after 3 s.
    pub fn wait_closed(&self, n: usize) -> MutexGuard<'_, Log> {
        self.wait_until(|log| log.closed >= n)
    }

    /// The log once every connection accepted so far has ended, or after 3 s.
    pub fn settled(&self) -> Log {
        self.wait_until(|log| log.closed >= log.connections).clone()
    }

    fn wait_until(&self, done: impl Fn(&Log) -> bool) -> MutexGuard<'_, Log> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let log = self.log();
            if done(&log) || Instant::now() > deadline {
                return log;
            }
            drop(log);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // The accept loop only sees the flag with the next connection.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl Builder {
    /// Only these protocol versions.
    pub fn versions(mut self, versions: &[&'static SupportedProtocolVersion]) -> Builder {
        self.versions = versions.to_vec();
        self
    }

    /// Signs the handshake with `key_pem` whatever certificate it presents: a server replaying a
    /// certificate it does not hold the key of (rustls' own `with_single_cert` would refuse).
    pub fn signing_with(mut self, key_pem: &str) -> Builder {
        for presented in &mut self.presents {
            presented.key_pem = key_pem.to_string();
        }
        self
    }

    /// Presents `next` in every handshake after those before: a server whose certificate is
    /// replaced while a client holds a connection open.
    pub fn then_presenting(mut self, next: &Pem) -> Builder {
        self.presents.push(Presented { cert_pem: next.cert_pem.clone(), key_pem: next.key_pem.clone() });
        self
    }

    /// Runs the server, answering every request with `handler`'s status and body.
    pub fn start(self, handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static) -> Result<TlsServer> {
        self.script(move |request| {
            let (status, body) = handler(request);
            Reply::Answer(status, body)
        })
    }

    /// Runs the server, doing with every request what `handler` says.
    pub fn script(self, handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Result<TlsServer> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = self
            .presents
            .iter()
            .map(|p| certified(&provider, p))
            .collect::<Result<Vec<_>>>()
            .context("the test server's certificate")?;
        let algs = provider.signature_verification_algorithms;
        let config = Arc::new(
            ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&self.versions)?
                .with_client_cert_verifier(Arc::new(AnyClientCert(algs)))
                .with_cert_resolver(Arc::new(InTurn { certs, handshakes: AtomicUsize::new(0) })),
        );
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared =
            Arc::new(Shared { log: Mutex::default(), stop: AtomicBool::new(false), handler: Box::new(handler) });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(sock) = sock else { continue };
                accepting.log().connections += 1;
                let (config, shared) = (config.clone(), accepting.clone());
                std::thread::spawn(move || serve(config, sock, &shared));
            }
        });
        Ok(TlsServer { addr, shared })
    }
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        // A handler that panicked must not hide what the server saw.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn certified(provider: &rustls::crypto::CryptoProvider, presented: &Presented) -> Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_slice_iter(presented.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(presented.key_pem.as_bytes())?;
    let signer = provider.key_provider.load_private_key(key)?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// Asks for a client certificate and accepts any, or none, as LXD does: who is trusted is
/// decided per request, not in the handshake.
#[derive(Debug)]
struct AnyClientCert(rustls::crypto::WebPkiSupportedAlgorithms);

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Presents its certificates in turn, one per handshake, then the last one for good.
#[derive(Debug)]
struct InTurn {
    certs: Vec<Arc<CertifiedKey>>,
    handshakes: AtomicUsize,
}

impl ResolvesServerCert for InTurn {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let n = self.handshakes.fetch_add(1, Ordering::SeqCst);
        self.certs.get(n).or(self.certs.last()).cloned()
    }
}

fn serve(config: Arc<ServerConfig>, sock: TcpStream, shared: &Shared) {
    let _ = sock.set_read_timeout(Some(READ_TIMEOUT));
    if let Ok(conn) = ServerConnection::new(config) {
        converse(&mut rustls::StreamOwned::new(conn, sock), shared);
    }
    shared.log().closed += 1;
}

fn converse(tls: &mut rustls::StreamOwned<ServerConnection, TcpStream>, shared: &Shared) {
    let mut handshake_seen = false;
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 16384];
        let read = tls.read(&mut chunk);
        if !handshake_seen && !tls.conn.is_handshaking() {
            handshake_seen = true;
            let mut log = shared.log();
            log.handshakes_ok += 1;
            let cert = tls.conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
            log.client_certs.push(cert.unwrap_or_default());
        }
        match read {
            Ok(0) => return,
            Ok(n) => {
                shared.log().app_bytes += n;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) => {
                shared.log().errors.push(e.to_string());
                return;
            }
        }
        while let Some((request, used)) = parse_request(&buf) {
            buf.drain(..used);
            let reply = (shared.handler)(&request);
            shared.log().requests.push(request);
            if send(tls, reply, &shared.stop).is_err() {
                return;
            }
        }
    }
}

/// Sends `reply`; an error ends the connection (the client is gone, or the reply says so).
fn send(tls: &mut impl Write, reply: Reply, stop: &AtomicBool) -> std::io::Result<()> {
    let head = |status: u16, length: usize| {
        format!("HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
    };
    let trickle = |tls: &mut dyn Write, bytes: &mut dyn Iterator<Item = &u8>, every: Duration| {
        tls.flush()?;
        for byte in bytes {
            std::thread::sleep(every);
            if stop.load(Ordering::SeqCst) {
                return Err(std::io::ErrorKind::ConnectionAborted.into());
            }
            tls.write_all(&[*byte])?;
            tls.flush()?;
        }
        Ok(())
    };
    match reply {
        Reply::Answer(status, body) => {
            tls.write_all(head(status, body.len()).as_bytes())?;
            tls.write_all(body.as_bytes())?;
            tls.flush()
        }
        Reply::Trickle(status, body, every) => {
            tls.write_all(head(status, body.len()).as_bytes())?;
            trickle(tls, &mut body.as_bytes().iter(), every)
        }
        Reply::TrickleForEver(bytes, every) => {
            tls.write_all(head(200, FOR_EVER).as_bytes())?;
            trickle(tls, &mut bytes.iter().cycle(), every)?;
            Err(std::io::ErrorKind::ConnectionAborted.into())
        }
        Reply::HangUp => Err(std::io::ErrorKind::ConnectionAborted.into()),
    }
}

/// One whole request at the start of `buf`, and how many bytes it took.
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
