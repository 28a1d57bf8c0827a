//! Counts the LXD API requests a hook makes: a TLS-terminating counting proxy in front of the
//! member the integrator uses.
//!
//! Why not a byte pass-through: the requests travel inside one TLS session, so a TCP proxy
//! sees records, not requests. Why not LXD's log: the test daemons run without `--debug`, and
//! LXD 5.0 only logs `Handling API request` at debug level (`lxc monitor --loglevel=debug`
//! then shows nothing). So the proxy (`testbed`'s TLS server) presents the cluster certificate
//! (the charm's pin holds), replays each request upstream over a kept-alive [`raw::Conn`] with
//! the same client identity, and answers with LXD's status and body. It is used only in the
//! instrumented runs (its hop would distort wall time).

use crate::raw;
use anyhow::Result;
use std::sync::{Arc, Mutex};
use testbed::certs::Pem;
use testbed::tls_server::{Reply, Request, TlsServer};

pub struct Proxy {
    pub addr: String,
    server: TlsServer,
}

impl Proxy {
    pub fn start(cert_pem: &str, key_pem: &str, upstream: String, client: Arc<rustls::ClientConfig>) -> Result<Proxy> {
        let cluster = Pem::from_pems(cert_pem, key_pem)?;
        // One upstream connection per request in flight, kept alive between them, as the charm's.
        let idle = Mutex::new(Vec::new());
        let server = TlsServer::presenting(&cluster).script(move |request| {
            match forward(&idle, &client, &upstream, request) {
                Ok((status, body)) => Reply::Answer(status, body),
                Err(e) => {
                    eprintln!("bench proxy: {e:#}");
                    Reply::HangUp
                }
            }
        })?;
        Ok(Proxy { addr: server.addr.to_string(), server })
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.server.log().requests.len()
    }
}

fn forward(
    idle: &Mutex<Vec<raw::Conn>>,
    client: &Arc<rustls::ClientConfig>,
    upstream: &str,
    request: &Request,
) -> Result<(u16, String)> {
    let kept = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut conn = match kept {
        Some(conn) => conn,
        None => raw::Conn::open(client, upstream)?,
    };
    let body = (!request.body.is_empty()).then_some(request.body.as_str());
    let (status, answer) = conn.call(&request.method, &request.path, body)?;
    idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
    Ok((status, String::from_utf8_lossy(&answer).into_owned()))
}
