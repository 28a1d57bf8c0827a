//! Realistic client and server certificates for tests, made with rcgen (ring backend).
//!
//! LXD's own `lxc` client makes ECDSA P-384 keys with a self-signed certificate whose CN is
//! `<user>@<host>`; [`client_cert`] does the same. Everything else here is a variation that a
//! test needs: other curves, bad validity windows, CA-signed clients, server-like certificates,
//! and "same CN, other key" copies.
//!
//! RSA: rcgen cannot *generate* RSA keys with the ring backend. [`rsa_client_cert`] shells out to
//! `openssl req -x509 -newkey rsa:BITS` at test time instead (also for weak 1024-bit keys, which
//! ring would refuse to sign with anyway); a [`Key`] read from an RSA PEM can still sign.
//!
//! This is the one certificate factory of the workspace's tests; [`fingerprint`] is the one
//! test-side SHA-256 fingerprint (the charm keeps its own, it cannot depend on this crate).

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, SerialNumber, SignatureAlgorithm,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// A certificate with its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pem {
    /// `-----BEGIN CERTIFICATE-----` armoured DER.
    pub cert_pem: String,
    /// `-----BEGIN PRIVATE KEY-----` (PKCS#8), or whatever openssl wrote for RSA.
    pub key_pem: String,
    /// SHA-256 of the certificate's DER, 64 lowercase hex characters (LXD's fingerprint).
    pub fingerprint: String,
    /// The certificate's DER bytes.
    pub der: Vec<u8>,
}

impl Pem {
    /// A certificate and key made elsewhere (a cluster's, openssl's), fingerprinted like ours.
    pub fn from_pems(cert_pem: &str, key_pem: &str) -> Result<Pem> {
        let der = pem_to_der(cert_pem)?;
        Ok(Pem { fingerprint: fingerprint(&der), cert_pem: cert_pem.to_string(), key_pem: key_pem.to_string(), der })
    }

    /// The key's DER bytes: PKCS#8 for every key made here.
    pub fn key_der(&self) -> Result<Vec<u8>> {
        pem_to_der(&self.key_pem)
    }

    /// Base64 of the DER bytes: the PEM body without armour or line breaks. This is what
    /// `POST /1.0/certificates` wants in its `certificate` field.
    pub fn cert_base64(&self) -> String {
        pem_body(&self.cert_pem)
    }

    /// The key as a traditional SEC1 `-----BEGIN EC PRIVATE KEY-----` block, the form `lxc`
    /// writes and Juju's `credential-get` returns. Converted with the `openssl` binary.
    pub fn key_pem_sec1(&self) -> Result<String> {
        run_openssl(&["pkey", "-traditional"], Some(&self.key_pem))
    }
}

/// Key algorithm of a generated certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// ECDSA P-384 with SHA-384, what LXD and `lxc` use.
    P384,
    /// ECDSA P-256 with SHA-256.
    P256,
}

impl Curve {
    fn alg(self) -> &'static SignatureAlgorithm {
        match self {
            Curve::P384 => &PKCS_ECDSA_P384_SHA384,
            Curve::P256 => &PKCS_ECDSA_P256_SHA256,
        }
    }
}

/// A private key, for certificates that must share one: the same name with the same key, or many
/// certificates where key generation would be the slow part.
pub struct Key(KeyPair);

impl Key {
    pub fn generate(curve: Curve) -> Result<Key> {
        Ok(Key(KeyPair::generate_for(curve.alg()).context("generating an ECDSA key")?))
    }

    /// A PKCS#8 key: how a test signs with an RSA key, which ring cannot generate.
    pub fn from_pem(pem: &str) -> Result<Key> {
        Ok(Key(KeyPair::from_pem(pem).context("loading a private key")?))
    }

    /// `-----BEGIN PRIVATE KEY-----` (PKCS#8).
    pub fn pem(&self) -> String {
        self.0.serialize_pem()
    }
}

/// Full control over one certificate. The convenience functions below all go through this.
#[derive(Clone, Debug)]
pub struct CertSpec {
    pub common_name: String,
    pub curve: Curve,
    /// Subject alternative names: IP addresses or DNS names.
    pub sans: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Extended key usage: `clientAuth` (client) or `serverAuth` (server); both when true/true.
    pub client_auth: bool,
    pub server_auth: bool,
    pub is_ca: bool,
    /// None: a random serial number.
    pub serial: Option<u64>,
}

impl CertSpec {
    /// A client certificate valid from a day ago for ten years, like `lxc` makes.
    pub fn client(cn: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        CertSpec {
            common_name: cn.to_string(),
            curve: Curve::P384,
            sans: Vec::new(),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(3650),
            client_auth: true,
            server_auth: false,
            is_ca: false,
            serial: None,
        }
    }

    /// Valid from 1 January `from` to 1 January `to`: a certificate long expired or not valid
    /// for decades, whatever day the test runs.
    pub fn between_years(self, from: i32, to: i32) -> Self {
        let jan_1 =
            |year| time::Date::from_calendar_date(year, time::Month::January, 1).map(|d| d.midnight().assume_utc());
        CertSpec {
            not_before: jan_1(from).unwrap_or(self.not_before),
            not_after: jan_1(to).unwrap_or(self.not_after),
            ..self
        }
    }

    /// Valid from `secs` seconds from now: a certificate made on a clock running ahead.
    pub fn starting_in(self, secs: i64) -> Self {
        CertSpec { not_before: OffsetDateTime::now_utc() + Duration::seconds(secs), ..self }
    }

    fn params(&self) -> Result<CertificateParams> {
        let mut params = CertificateParams::new(self.sans.clone())
            .with_context(|| format!("invalid subject alternative names {:?}", self.sans))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "linuxcontainers.org");
        dn.push(DnType::CommonName, self.common_name.as_str());
        params.distinguished_name = dn;
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.serial_number = self.serial.map(SerialNumber::from);
        if self.is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages =
                vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        } else {
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        }
        if self.client_auth {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        if self.server_auth {
            params.extended_key_usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        Ok(params)
    }

    /// Make a self-signed certificate.
    pub fn self_signed(&self) -> Result<Pem> {
        self.self_signed_with(&Key::generate(self.curve)?)
    }

    /// Make a self-signed certificate with `key` (its own algorithm, whatever `curve` says).
    pub fn self_signed_with(&self, key: &Key) -> Result<Pem> {
        let cert = self.params()?.self_signed(&key.0).context("self-signing a certificate")?;
        Ok(make_pem(cert.pem(), key.pem(), cert.der()))
    }

    /// Make a certificate signed by `ca`.
    pub fn signed_by(&self, ca: &Ca) -> Result<Pem> {
        let key = Key::generate(self.curve)?;
        let ca_key = KeyPair::from_pem(&ca.pem.key_pem).context("loading the CA key")?;
        let issuer = Issuer::new(ca.spec.params()?, ca_key);
        let cert = self.params()?.signed_by(&key.0, &issuer).context("signing a certificate")?;
        Ok(make_pem(cert.pem(), key.pem(), cert.der()))
    }
}

/// A certificate authority that can issue client certificates (for LXD's PKI mode, or to test
/// that CA certificates are handled sensibly when a requirer sends one).
#[derive(Clone, Debug)]
pub struct Ca {
    pub pem: Pem,
    spec: CertSpec,
}

impl Ca {
    /// A client certificate for `cn` signed by this CA.
    pub fn issue_client(&self, cn: &str) -> Result<Pem> {
        CertSpec::client(cn).signed_by(self)
    }

    /// A server certificate for `cn` signed by this CA, shaped like LXD's own (serverAuth,
    /// ECDSA P-384) with `sans` (IP addresses or DNS names): what LXD's PKI mode presents.
    pub fn issue_server(&self, cn: &str, sans: &[String]) -> Result<Pem> {
        let spec = CertSpec { sans: sans.to_vec(), client_auth: false, server_auth: true, ..CertSpec::client(cn) };
        spec.signed_by(self)
    }

    /// A CA signed by this one, to issue leaves whose chain needs the intermediate.
    pub fn intermediate(&self, cn: &str) -> Result<Ca> {
        let spec = ca_spec(cn);
        Ok(Ca { pem: spec.signed_by(self)?, spec })
    }
}

fn ca_spec(cn: &str) -> CertSpec {
    CertSpec { is_ca: true, client_auth: false, ..CertSpec::client(cn) }
}

/// ECDSA P-384 client certificate, self-signed, valid now (like `lxc` generates).
pub fn client_cert(cn: &str) -> Result<Pem> {
    CertSpec::client(cn).self_signed()
}

/// ECDSA P-256 client certificate, self-signed, valid now.
pub fn client_cert_p256(cn: &str) -> Result<Pem> {
    CertSpec { curve: Curve::P256, ..CertSpec::client(cn) }.self_signed()
}

/// A client certificate that expired yesterday (valid for a month before that).
pub fn expired_cert(cn: &str) -> Result<Pem> {
    let now = OffsetDateTime::now_utc();
    CertSpec { not_before: now - Duration::days(31), not_after: now - Duration::days(1), ..CertSpec::client(cn) }
        .self_signed()
}

/// A client certificate that only becomes valid in a week.
pub fn not_yet_valid_cert(cn: &str) -> Result<Pem> {
    let now = OffsetDateTime::now_utc();
    CertSpec { not_before: now + Duration::days(7), not_after: now + Duration::days(365), ..CertSpec::client(cn) }
        .self_signed()
}

/// A self-signed CA certificate (basicConstraints CA:TRUE, keyCertSign).
pub fn ca_cert(cn: &str) -> Result<Ca> {
    let spec = ca_spec(cn);
    let pem = spec.self_signed()?;
    Ok(Ca { pem, spec })
}

/// A self-signed server certificate shaped like LXD's own: CN `root@<hostname>`, SANs
/// `<hostname>`, `127.0.0.1`, `::1` plus `extra_sans`, serverAuth, ECDSA P-384.
pub fn server_cert(hostname: &str, extra_sans: &[&str]) -> Result<Pem> {
    let mut sans = vec![hostname.to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    sans.extend(extra_sans.iter().map(|s| s.to_string()));
    CertSpec {
        common_name: format!("root@{hostname}"),
        sans,
        client_auth: false,
        server_auth: true,
        ..CertSpec::client(hostname)
    }
    .self_signed()
}

/// `n` certificates with the same CN but distinct keys (hence distinct fingerprints).
pub fn same_cn_other_keys(cn: &str, n: usize) -> Result<Vec<Pem>> {
    (0..n).map(|_| client_cert(cn)).collect()
}

/// An RSA client certificate of `bits` bits, made by the `openssl` binary (rcgen with ring cannot
/// generate RSA keys). 1024 gives a key LXD rejects as too weak.
pub fn rsa_client_cert(cn: &str, bits: u32) -> Result<Pem> {
    let newkey = format!("rsa:{bits}");
    openssl_req_x509(cn, &["-newkey", &newkey, "-days", "365", "-addext", "extendedKeyUsage=clientAuth"])
}

/// An ECDSA P-256 client certificate made the way operators commonly make one by hand:
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30`, nothing
/// more. OpenSSL 3 applies its default `v3_ca` extensions, so it is marked `CA:TRUE`.
pub fn openssl_ec_client_cert(cn: &str) -> Result<Pem> {
    openssl_req_x509(cn, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "30"])
}

/// `openssl req -x509 -nodes -subj /CN=<cn> ARGS`, key and certificate read back.
fn openssl_req_x509(cn: &str, args: &[&str]) -> Result<Pem> {
    let dir = std::env::temp_dir().join(format!("testbed-openssl-{}-{}", std::process::id(), crate::random_u64()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = dir.join("key.pem");
    let crt = dir.join("cert.pem");
    let result = (|| {
        let subj = format!("/CN={cn}");
        let mut all = vec!["req", "-x509", "-nodes", "-subj", &subj];
        all.extend_from_slice(args);
        all.extend(["-keyout", path_str(&key)?, "-out", path_str(&crt)?]);
        run_openssl(&all, None)?;
        let cert_pem = std::fs::read_to_string(&crt).context("reading openssl's certificate")?;
        let key_pem = std::fs::read_to_string(&key).context("reading openssl's key")?;
        Pem::from_pems(&cert_pem, &key_pem)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// LXD's certificate fingerprint: SHA-256 of the DER as 64 lowercase hex characters.
pub fn fingerprint(der: &[u8]) -> String {
    to_hex(&Sha256::digest(der))
}

/// Fingerprint of the first certificate in a PEM string.
pub fn fingerprint_pem(pem: &str) -> Result<String> {
    Ok(fingerprint(&pem_to_der(pem)?))
}

/// DER bytes of the first PEM block in `pem`.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>> {
    let body = pem_body(pem);
    if body.is_empty() {
        bail!("no PEM block found");
    }
    base64_decode(&body)
}

fn make_pem(cert_pem: String, key_pem: String, der: &[u8]) -> Pem {
    Pem { fingerprint: fingerprint(der), cert_pem, key_pem, der: der.to_vec() }
}

/// The base64 body of the first PEM block (no armour, no whitespace).
fn pem_body(pem: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN") {
            inside = true;
        } else if line.starts_with("-----END") {
            if inside {
                break;
            }
        } else if inside {
            out.push_str(line);
        }
    }
    out
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base64_decode(text: &str) -> Result<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some((c - b'A') as u32),
            b'a'..=b'z' => Some((c - b'a' + 26) as u32),
            b'0'..=b'9' => Some((c - b'0' + 52) as u32),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    let mut acc = 0u32;
    let mut nbits = 0;
    for c in bytes {
        let v = val(c).with_context(|| format!("invalid base64 character {:?}", c as char))?;
        acc = (acc << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((acc >> nbits) as u8);
            acc &= (1 << nbits) - 1;
        }
    }
    Ok(out)
}

fn path_str(p: &std::path::Path) -> Result<&str> {
    p.to_str().with_context(|| format!("non-UTF-8 path {}", p.display()))
}

fn run_openssl(args: &[&str], stdin: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running openssl (is it installed?)")?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).context("writing to openssl")?;
    }
    let out = child.wait_with_output().context("waiting for openssl")?;
    if !out.status.success() {
        bail!("openssl {:?} failed: {}", args, String::from_utf8_lossy(&out.stderr).trim());
    }
    String::from_utf8(out.stdout).context("openssl printed non-UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip_matches_rcgen_der() {
        let pem = client_cert("t").expect("cert");
        let der = pem_to_der(&pem.cert_pem).expect("der");
        assert_eq!(fingerprint(&der), pem.fingerprint);
        assert_eq!(pem.fingerprint.len(), 64);
        assert!(pem.fingerprint.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
