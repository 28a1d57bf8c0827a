//! Counts the LXD API requests a hook makes: a TLS-terminating counting proxy in front of the
//! member the integrator uses.
//!
//! Why not a byte pass-through: the requests travel inside one TLS session, so a TCP proxy
//! sees records, not requests. Why not LXD's log: the test daemons run without `--debug`, and
//! LXD 5.0 only logs `Handling API request` at debug level (`lxc monitor --loglevel=debug`
//! then shows nothing). So the proxy presents the cluster certificate (the charm's pin holds),
//! reads each HTTP/1.1 request, replays it upstream over one kept-alive [`raw::Conn`] with the
//! same client identity, and answers with LXD's status and body. It is used only in the
//! instrumented runs (its hop would distort wall time).

use crate::raw;
use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Proxy {
    pub addr: String,
    count: Arc<AtomicUsize>,
}

impl Proxy {
    pub fn start(cert_pem: &str, key_pem: &str, upstream: String, client: Arc<rustls::ClientConfig>) -> Result<Proxy> {
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("cluster key")?;
        let cfg = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let cfg = Arc::new(cfg);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (cfg, c, up, client) = (cfg.clone(), c.clone(), upstream.clone(), client.clone());
                std::thread::spawn(move || {
                    // A hook exits without TLS close_notify: that EOF is the normal end.
                    if let Err(e) = serve(tcp, cfg, &c, &up, &client)
                        && !e.chain().any(|c| {
                            c.downcast_ref::<std::io::Error>()
                                .is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof)
                        })
                    {
                        eprintln!("bench proxy: {e:#}");
                    }
                });
            }
        });
        Ok(Proxy { addr, count })
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

fn serve(
    tcp: TcpStream,
    cfg: Arc<ServerConfig>,
    count: &AtomicUsize,
    upstream: &str,
    client: &Arc<rustls::ClientConfig>,
) -> Result<()> {
    tcp.set_nodelay(true)?;
    let mut io = BufReader::new(StreamOwned::new(ServerConnection::new(cfg)?, tcp));
    let mut up: Option<raw::Conn> = None;
    loop {
        let mut line = String::new();
        if io.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next().map(String::from), parts.next().map(String::from)) else {
            bail!("bad request line {line:?}");
        };
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if io.read_line(&mut h)? == 0 {
                bail!("closed in headers");
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse()?;
            }
        }
        let mut body = vec![0u8; length];
        io.read_exact(&mut body)?;
        if up.is_none() {
            up = Some(raw::Conn::open(client, upstream)?);
        }
        let conn = up.as_mut().unwrap();
        let body = (length > 0).then(|| String::from_utf8_lossy(&body).into_owned());
        let (status, answer) = conn.call(&method, &path, body.as_deref())?;
        count.fetch_add(1, Ordering::SeqCst);
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        let s = io.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(&answer)?;
        s.flush()?;
    }
}
