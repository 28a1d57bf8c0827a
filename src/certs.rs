//! Client certificates as requirers send them: strict PEM parsing, the checks LXD would make
//! (and a few it would not), and the SHA-256 fingerprint LXD keys its trust store by.
//!
//! A value is accepted only when it is exactly one PEM `CERTIFICATE` block, currently valid,
//! with an ECDSA key or an RSA key of at least 2048 bits. `basicConstraints CA:TRUE` is no
//! reason to refuse: LXD matches clients by fingerprint, and `openssl req -x509` (the way LXD's
//! documentation makes client certificates) sets it by default. Anything else is rejected with a
//! reason that is safe to log: it never quotes the input.

use base64::Engine as _;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use std::fmt;

/// A certificate a requirer asked us to trust, after validation.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Re-encoded from the DER (64-column base64, LF line ends), never the requirer's text: what
    /// the charm publishes grows with the distinct certificates, not with the bytes sent.
    pub pem: String,
    pub der: Vec<u8>,
    pub fingerprint: String,
    /// Subject common name, for logs; never key material.
    pub common_name: String,
    /// End of validity, Unix seconds: past it the certificate is no longer requested.
    pub not_after: i64,
}

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientCert({} {:?})", short_fp(&self.fingerprint), self.common_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertRejection {
    #[error("not a PEM certificate")]
    NotPem,
    #[error("a private key, not a certificate (the key was discarded, not logged)")]
    PrivateKey,
    #[error("a PEM {0} block, not a CERTIFICATE")]
    WrongBlock(BlockLabel),
    #[error("{0} certificates in one string; send one per list entry")]
    Several(usize),
    #[error("text outside the PEM block")]
    TrailingGarbage,
    #[error("PEM body is not valid base64")]
    BadBase64,
    #[error("not a valid X.509 certificate: {0}")]
    BadDer(String),
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("RSA key of {0} bits is too weak (LXD requires at least 2048)")]
    WeakRsa(usize),
    #[error("unsupported key type (LXD accepts ECDSA and RSA)")]
    UnsupportedKey,
}

const CERT_LABEL: &str = "CERTIFICATE";

/// The label of a PEM block that is not a certificate, as far as it is safe to repeat: a
/// short run of capitals (`PUBLIC KEY`, `X509 CRL`); anything else is only called unexpected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLabel(Option<String>);

impl BlockLabel {
    pub(crate) fn of(label: &str) -> BlockLabel {
        let plain =
            label.len() <= 32 && label.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ');
        BlockLabel(plain.then(|| label.to_string()))
    }
}

impl fmt::Display for BlockLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(label) => write!(f, "{label:?}"),
            None => f.write_str("(unexpected label)"),
        }
    }
}

/// SHA-256 of the DER bytes as 64 lowercase hex characters, the same as LXD's fingerprint.
pub fn fingerprint(der: &[u8]) -> String {
    hex(&Sha256::digest(der))
}

/// Bytes as lowercase hex, two digits each: how LXD and this charm write digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The first 12 hex digits: enough to find an entry in `lxc config trust list`, short enough
/// for a status line.
pub fn short_fp(fp: &str) -> &str {
    fp.get(..12).unwrap_or(fp)
}

/// One PEM block: its label and decoded body.
#[derive(Debug, PartialEq, Eq)]
pub struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
}

/// Splits text into PEM blocks. Text between or around blocks is an error (`TrailingGarbage`),
/// surrounding whitespace is not.
pub fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, CertRejection> {
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = lines.next() {
        let label = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .ok_or(if blocks.is_empty() { CertRejection::NotPem } else { CertRejection::TrailingGarbage })?;
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for inner in lines.by_ref() {
            if inner == end {
                closed = true;
                break;
            }
            body.push_str(inner);
        }
        if !closed {
            return Err(CertRejection::NotPem);
        }
        let der =
            base64::engine::general_purpose::STANDARD.decode(body.as_bytes()).map_err(|_| CertRejection::BadBase64)?;
        blocks.push(PemBlock { label: label.to_string(), der });
    }
    if blocks.is_empty() {
        return Err(CertRejection::NotPem);
    }
    Ok(blocks)
}

/// The fingerprint of a value that is exactly one decodable PEM certificate block, without
/// parsing the certificate: enough to tell a requirer which certificate was not read.
pub(crate) fn block_fingerprint(text: &str) -> Option<String> {
    match pem_blocks(text).ok()?.as_slice() {
        [one] if one.label == CERT_LABEL => Some(fingerprint(&one.der)),
        _ => None,
    }
}

/// The DER of every certificate `pin::PinVerifier::new` pins for `server_cert_pem`, in order (the
/// same parser, so the same blocks: other blocks and text around them are skipped alike).
/// What the charm tells requirers to pin (`relation::ServerPin`) is exactly this list.
pub fn pinned_ders(server_cert_pem: &str) -> Option<Vec<Vec<u8>>> {
    parse_certs(server_cert_pem).ok().map(|ders| ders.iter().map(|d| d.as_ref().to_vec()).collect())
}

/// Every CERTIFICATE block of `pem`, in order, by rustls' PEM reader: the one the TLS
/// verifier and the client configuration read certificates with.
pub(crate) fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        out.push(item.map_err(|e| format!("invalid PEM: {}", pem_error_kind(&e)))?);
    }
    if out.is_empty() {
        return Err("no CERTIFICATE block found".into());
    }
    Ok(out)
}

/// A description of a PEM error that cannot echo any of the input (some variants carry bytes
/// of it, which for a key file could be secret).
pub(crate) fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a BEGIN line without its END line",
        E::IllegalSectionStart { .. } => "a malformed BEGIN line",
        E::Base64Decode(_) => "the body is not valid base64",
        E::NoItemsFound => "no PEM block found",
        _ => "unreadable",
    }
}

/// Armours DER as a PEM certificate (64-column lines, trailing newline).
pub fn to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Validates one value from a requirer's `client_certificates`. `now` is Unix seconds.
pub fn parse_client_cert(text: &str, now: i64) -> Result<ClientCert, CertRejection> {
    examine_client_cert(text, now).map_err(|r| r.why)
}

/// A value refused as a client certificate, with what could still be learnt of it: the
/// fingerprint of its one certificate block (so a requirer can be told which of its
/// certificates was refused) and when a certificate that is not valid yet becomes valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub(crate) why: CertRejection,
    pub(crate) fingerprint: Option<String>,
    pub(crate) not_before: Option<i64>,
}

impl From<CertRejection> for Rejected {
    fn from(why: CertRejection) -> Rejected {
        Rejected { why, fingerprint: None, not_before: None }
    }
}

/// `parse_client_cert`, keeping the refused certificate's fingerprint and start of validity.
pub(crate) fn examine_client_cert(text: &str, now: i64) -> Result<ClientCert, Rejected> {
    // Look for key material first, so a key pasted with a certificate is called what it is.
    if text.contains("PRIVATE KEY-----") {
        return Err(CertRejection::PrivateKey.into());
    }
    let blocks = pem_blocks(text)?;
    if let Some(other) = blocks.iter().find(|b| b.label != CERT_LABEL) {
        return Err(CertRejection::WrongBlock(BlockLabel::of(&other.label)).into());
    }
    if blocks.len() > 1 {
        return Err(CertRejection::Several(blocks.len()).into());
    }
    let der = blocks.into_iter().next().map(|b| b.der).ok_or(CertRejection::NotPem)?;
    let fp = fingerprint(&der);
    let refuse = |why, not_before| Err(Rejected { why, fingerprint: Some(fp.clone()), not_before });
    let info = match inspect_der(&der) {
        Ok(info) => info,
        Err(why) => return refuse(why, None),
    };
    if now > info.not_after {
        return refuse(CertRejection::Expired, None);
    }
    if now < info.not_before {
        return refuse(CertRejection::NotYetValid, Some(info.not_before));
    }
    match info.key {
        KeyKind::Ec => {}
        KeyKind::Rsa(bits) if bits >= 2048 => {}
        KeyKind::Rsa(bits) => return refuse(CertRejection::WeakRsa(bits), None),
        KeyKind::Other => return refuse(CertRejection::UnsupportedKey, None),
    }
    Ok(ClientCert { pem: to_pem(&der), fingerprint: fp, der, common_name: info.common_name, not_after: info.not_after })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Ec,
    Rsa(usize),
    Other,
}

/// Why DER is not a certificate, in a few fixed words: the parser's own texts for a malformed
/// encoding quote tags and offsets, so each variation of garbage would be its own reason and a
/// summary of refused entries would grow with the variety of a requirer's input.
fn der_problem(e: &x509_parser::nom::Err<x509_parser::error::X509Error>) -> String {
    use x509_parser::error::X509Error;
    use x509_parser::nom::Err;
    match e {
        Err::Incomplete(_) => "truncated DER".into(),
        Err::Error(X509Error::Der(_) | X509Error::NomError(_))
        | Err::Failure(X509Error::Der(_) | X509Error::NomError(_)) => "malformed DER".into(),
        Err::Error(other) | Err::Failure(other) => other.to_string(),
    }
}

/// What the charm needs to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub common_name: String,
    pub(crate) is_ca: bool,
    pub not_before: i64,
    pub not_after: i64,
    pub key: KeyKind,
}

pub fn inspect_der(der: &[u8]) -> Result<CertInfo, CertRejection> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::public_key::PublicKey;
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| CertRejection::BadDer(der_problem(&e)))?;
    if !rest.is_empty() {
        return Err(CertRejection::BadDer("bytes after the certificate".into()));
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let key = match cert.public_key().parsed() {
        Ok(PublicKey::EC(_)) => KeyKind::Ec,
        Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa(rsa.key_size()),
        _ => KeyKind::Other,
    };
    Ok(CertInfo {
        common_name,
        is_ca: cert.is_ca(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        key,
    })
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod test_certs {
    //! `testbed::certs` for the unit tests of this crate, where a certificate that cannot be made
    //! is the test's panic.
    pub(crate) use testbed::certs::Pem;
    use testbed::certs::{self, CertSpec};

    /// ECDSA P-384, valid now, as `lxc` makes a client certificate.
    pub(crate) fn self_signed(cn: &str) -> Pem {
        certs::client_cert(cn).expect("certificate")
    }

    /// `CA:TRUE`, as `openssl req -x509` marks what it makes.
    pub(crate) fn ca(cn: &str) -> Pem {
        certs::ca_cert(cn).expect("CA certificate").pem
    }

    pub(crate) fn expired(cn: &str) -> Pem {
        CertSpec::client(cn).between_years(2000, 2001).self_signed().expect("expired certificate")
    }

    /// Valid from `secs` seconds from now: what a requirer whose clock runs ahead sends.
    pub(crate) fn starting_in(secs: i64) -> Pem {
        CertSpec::client("ahead").starting_in(secs).self_signed().expect("certificate")
    }

    pub(crate) fn future(cn: &str) -> Pem {
        CertSpec::client(cn).between_years(2090, 2091).self_signed().expect("future certificate")
    }
}

#[cfg(test)]
mod tests {
    use super::test_certs::*;
    use super::*;

    fn now() -> i64 {
        now_unix()
    }

    #[test]
    fn a_plain_client_certificate_is_accepted_with_lxds_fingerprint() {
        let made = self_signed("req-0");
        let cert = parse_client_cert(&made.cert_pem, now()).expect("valid");
        assert_eq!(cert.der, made.der);
        assert_eq!(cert.fingerprint.len(), 64);
        assert!(cert.fingerprint.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(cert.fingerprint, fingerprint(&made.der));
        assert_eq!(cert.pem, to_pem(&made.der), "published as canonical PEM");
        assert_eq!(cert.common_name, "req-0");
    }

    #[test]
    fn garbage_der_is_refused_in_the_same_few_words_whatever_its_bytes() {
        let reasons: std::collections::BTreeSet<String> =
            [&[0x30, 0x03, 0x02, 0x01][..], &[0x18, 0x00], &[0x03, 0x01, 0x00], &[0x30]]
                .iter()
                .map(|der| inspect_der(der).err().map(|e| e.to_string()).unwrap_or_default())
                .collect();
        assert!(reasons.len() <= 2, "{reasons:?}");
        assert!(reasons.iter().all(|r| r.len() < 60 && !r.contains("Tag")), "{reasons:?}");
    }

    #[test]
    fn known_fingerprint_of_fixed_bytes() {
        // sha256 of the empty string: proves format (lowercase, no colons), not x509.
        assert_eq!(fingerprint(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn whitespace_and_crlf_around_the_block_are_tolerated() {
        let made = self_signed("crlf");
        let text = format!("\n  {}\n\n", made.cert_pem.replace('\n', "\r\n"));
        assert_eq!(parse_client_cert(&text, now()).expect("valid").der, made.der);
    }

    #[test]
    fn garbage_is_rejected_with_a_reason() {
        let made = self_signed("x");
        let cases: Vec<(String, CertRejection)> = vec![
            ("hello".into(), CertRejection::NotPem),
            ("".into(), CertRejection::NotPem),
            (made.key_pem.clone(), CertRejection::PrivateKey),
            (format!("{}{}", made.cert_pem, made.key_pem), CertRejection::PrivateKey),
            (format!("{}{}", made.cert_pem, self_signed("y").cert_pem), CertRejection::Several(2)),
            (format!("{}trailing words", made.cert_pem), CertRejection::TrailingGarbage),
            ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into(), CertRejection::BadBase64),
            ("-----BEGIN CERTIFICATE-----\nAAAA\n".into(), CertRejection::NotPem),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
                CertRejection::WrongBlock(BlockLabel::of("PUBLIC KEY")),
            ),
            (expired("old").cert_pem, CertRejection::Expired),
            (future("new").cert_pem, CertRejection::NotYetValid),
        ];
        for (text, want) in cases {
            assert_eq!(parse_client_cert(&text, now()).map(|c| c.fingerprint), Err(want.clone()), "{want}");
        }
        let bad_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(parse_client_cert(bad_der, now()), Err(CertRejection::BadDer(_))));
    }

    #[test]
    fn rejection_reasons_never_quote_the_input() {
        let made = self_signed("secret-holder");
        let err = parse_client_cert(&made.key_pem, now()).expect_err("a key");
        assert!(!err.to_string().contains("BEGIN"));
        let odd = "-----BEGIN my password is hunter2-----\nAAAA\n-----END my password is hunter2-----\n";
        let err = parse_client_cert(odd, now()).expect_err("not a certificate");
        assert_eq!(err.to_string(), "a PEM (unexpected label) block, not a CERTIFICATE");
        assert_eq!(
            parse_client_cert("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", now())
                .expect_err("crl")
                .to_string(),
            "a PEM \"X509 CRL\" block, not a CERTIFICATE"
        );
    }

    #[test]
    fn a_self_signed_ca_certificate_is_a_client_certificate_like_any_other() {
        // LXD trusts clients by fingerprint; `openssl req -x509` marks its output CA:TRUE.
        let made = ca("openssl-style");
        let cert = parse_client_cert(&made.cert_pem, now()).expect("LXD would trust it");
        assert_eq!(cert.fingerprint, fingerprint(&made.der));
    }

    #[test]
    fn padding_and_line_endings_do_not_reach_the_published_text() {
        let made = self_signed("padded");
        let padded = format!("\r\n   {}   \n\n\n", made.cert_pem.replace('\n', "\r\n   "));
        assert_eq!(
            parse_client_cert(&padded, now()).expect("valid").pem,
            parse_client_cert(&made.cert_pem, now()).expect("valid").pem
        );
    }

    #[test]
    fn to_pem_round_trips() {
        let made = self_signed("rt");
        let pem = to_pem(&made.der);
        assert_eq!(parse_client_cert(&pem, now()).expect("valid").der, made.der);
    }
}
