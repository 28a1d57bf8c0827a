//! The thinnest possible LXD client: HTTP/1.1 written by hand over one kept-alive rustls
//! connection on a std `TcpStream`, presenting the same client certificate as the charm and
//! pinning the same cluster certificate. This is "the limit" a hook's LXD work is compared with.

use anyhow::{Context, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use rustls_pki_types::pem::PemObject;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

#[derive(Debug)]
struct Pin {
    der: Vec<u8>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("server certificate is not the pinned one".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// TLS settings shared by every raw connection. Session resumption is off: a hook is a new
/// process with no session cache, so every connection of the charm pays a full handshake
/// (with LXD checking the client certificate); the limit must pay it too.
pub fn config(client_cert_pem: &str, client_key_pem: &str, server_cert_der: Vec<u8>) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_slice_iter(client_cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(client_key_pem.as_bytes()).context("client key")?;
    let mut cfg = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pin { der: server_cert_der, provider }))
        .with_client_auth_cert(certs, key)?;
    cfg.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(cfg))
}

pub struct Conn {
    io: BufReader<StreamOwned<ClientConnection, TcpStream>>,
    host: String,
    pub requests: usize,
}

impl Conn {
    /// TCP connect + (lazily, on the first write) the TLS handshake: the same work the charm's
    /// first request pays.
    pub fn open(cfg: &Arc<ClientConfig>, addr: &str) -> Result<Conn> {
        let tcp = TcpStream::connect(addr).with_context(|| format!("connecting {addr}"))?;
        tcp.set_nodelay(true)?;
        let ip: std::net::IpAddr = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr).parse()?;
        let conn = ClientConnection::new(cfg.clone(), ServerName::IpAddress(ip.into()))?;
        Ok(Conn { io: BufReader::new(StreamOwned::new(conn, tcp)), host: addr.to_string(), requests: 0 })
    }

    /// One request; returns (status, body).
    pub fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> Result<(u16, Vec<u8>)> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bench-raw\r\n", self.host);
        if let Some(b) = body {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n", b.len()));
            req.push_str(b);
        } else {
            req.push_str("\r\n");
        }
        let s = self.io.get_mut();
        s.write_all(req.as_bytes())?;
        s.flush()?;
        self.requests += 1;
        self.read_response().with_context(|| format!("{method} {path}"))
    }

    fn read_response(&mut self) -> Result<(u16, Vec<u8>)> {
        let mut line = String::new();
        self.io.read_line(&mut line)?;
        let status: u16 = line.split_whitespace().nth(1).context("no status line")?.parse()?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.io.read_line(&mut line)? == 0 {
                bail!("connection closed in headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = Some(v.parse::<usize>()?);
                } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.io.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)?;
                let start = body.len();
                body.resize(start + size, 0);
                self.io.read_exact(&mut body[start..])?;
                line.clear();
                self.io.read_line(&mut line)?; // CRLF after the chunk (or the trailer end)
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.io.read_exact(&mut body)?;
        }
        Ok((status, body))
    }

    pub fn expect(&mut self, method: &str, path: &str, body: Option<&str>, ok: &[u16]) -> Result<Vec<u8>> {
        let (status, body_out) = self.call(method, path, body)?;
        if !(200..300).contains(&status) && !ok.contains(&status) {
            bail!("{method} {path}: HTTP {status}: {}", String::from_utf8_lossy(&body_out));
        }
        Ok(body_out)
    }
}

/// What the charm's pass reads before it changes anything: `/1.0`, the members, the store.
pub fn observe(c: &mut Conn) -> Result<()> {
    c.expect("GET", "/1.0", None, &[])?;
    c.expect("GET", "/1.0/cluster/members?recursion=1", None, &[])?;
    c.expect("GET", "/1.0/certificates?recursion=1", None, &[])?;
    Ok(())
}

pub fn add_body(name: &str, cert_base64: &str) -> String {
    serde_json::json!({"name": name, "type": "client", "certificate": cert_base64}).to_string()
}

pub fn add(c: &mut Conn, name: &str, cert_base64: &str) -> Result<()> {
    c.expect("POST", "/1.0/certificates", Some(&add_body(name, cert_base64)), &[])?;
    Ok(())
}

pub fn remove(c: &mut Conn, fp: &str) -> Result<()> {
    c.expect("DELETE", &format!("/1.0/certificates/{fp}"), None, &[404])?;
    Ok(())
}

/// Every trust entry: (name, fingerprint).
pub fn list(c: &mut Conn) -> Result<Vec<(String, String)>> {
    let body = c.expect("GET", "/1.0/certificates?recursion=1", None, &[])?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["metadata"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (e["name"].as_str().unwrap_or("").to_string(), e["fingerprint"].as_str().unwrap_or("").to_string())
                })
                .collect()
        })
        .unwrap_or_default())
}
