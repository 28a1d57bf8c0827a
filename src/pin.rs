//! TLS for talking to LXD: the server is authenticated by a pinned certificate (or, in LXD's PKI
//! mode, a pinned CA), and we authenticate with a client certificate held in memory.
//!
//! LXD server certificates are self-signed and their names (`root@host`, `127.0.0.1`, `::1`)
//! almost never match the address we dial, so hostname checks are never done. What is checked:
//!
//! * **Pin mode** (the pinned certificate is not a CA): SHA-256 of the presented end-entity DER
//!   equals SHA-256 of a pinned DER (compared in constant time), and the presented certificate
//!   is inside its validity period at handshake time.
//! * **CA mode** (the pinned PEM holds a certificate with `basicConstraints CA:TRUE`): an exact
//!   pin match is still accepted as above; otherwise the presented chain must verify with webpki
//!   up to the pinned CA (signatures, validity dates, `serverAuth` usage), without a name check.
//! * In both modes the handshake signature is verified against the presented certificate's key,
//!   so a server that merely replays the pinned certificate without its key is refused.
//!
//! A rejection aborts the handshake (rustls sends a fatal alert), so not a single byte of the
//! HTTP request is written. Why it refused travels inside the handshake's own error, however
//! deeply the HTTP stack wraps it: [`rejection_in`] finds it there. That ties the reason to the
//! connection that was refused, which a slot shared by every connection of a client could not,
//! once several handshakes run at once.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crate::certs::hex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::credentials::{CredentialProblem, Credentials, OPT_CERT, OPT_KEY, OPT_SERVER_CERT, Source, TlsCredentials};

/// Why a TLS client configuration could not be built. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("pinned server certificate: {0}")]
    ServerCert(String),
    #[error("client certificate: {0}")]
    ClientCert(String),
    #[error("client key: {0}")]
    ClientKey(String),
    #[error("the client key does not belong to the client certificate")]
    KeyMismatch,
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// Why the verifier refused a server during a handshake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinRejection {
    #[error("it presented the certificate with SHA-256 {presented}, the pin is {}", pinned.join(" or "))]
    Mismatch { presented: String, pinned: Vec<String> },
    #[error("the server certificate {fingerprint} is not valid now (valid {not_before} to {not_after})")]
    OutsideValidity { fingerprint: String, not_before: String, not_after: String },
    #[error("the server certificate {fingerprint} does not chain to the pinned CA: {reason}")]
    Chain { fingerprint: String, reason: String },
    #[error("the server certificate cannot be parsed: {0}")]
    Unparsable(String),
    #[error("the server's handshake signature does not verify: {0}")]
    BadSignature(String),
}

struct Pin {
    sha256: [u8; 32],
}

/// The rustls server certificate verifier described in the module documentation.
pub struct PinVerifier {
    pins: Vec<Pin>,
    /// Pinned certificates that are CAs; empty in pin mode.
    anchors: RootCertStore,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for PinVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pins: Vec<String> = self.pins.iter().map(|p| hex(&p.sha256)).collect();
        f.debug_struct("PinVerifier").field("pins", &pins).field("ca_anchors", &self.anchors.len()).finish()
    }
}

impl PinVerifier {
    /// Parses the pinned PEM (one or more certificates). Certificates with `CA:TRUE` are also
    /// trust anchors for chain verification.
    pub fn new(server_cert_pem: &str, algorithms: WebPkiSupportedAlgorithms) -> Result<PinVerifier, PinError> {
        let ders = parse_certs(server_cert_pem).map_err(PinError::ServerCert)?;
        let mut pins = Vec::new();
        let mut anchors = RootCertStore::empty();
        for der in ders {
            let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
                .map_err(|e| PinError::ServerCert(format!("not an X.509 certificate: {e}")))?;
            if cert.is_ca() {
                anchors
                    .add(der.clone())
                    .map_err(|e| PinError::ServerCert(format!("CA certificate unusable as trust anchor: {e}")))?;
            }
            pins.push(Pin { sha256: sha256(der.as_ref()) });
        }
        Ok(PinVerifier { pins, anchors, algorithms })
    }

    /// The check behind `verify_server_cert`, as a plain function of its inputs.
    pub fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), PinRejection> {
        let presented = sha256(end_entity.as_ref());
        // No early exit: the time taken does not depend on which pin (or which byte) differs.
        let matched = self.pins.iter().fold(false, |acc, pin| acc | ct_eq(&pin.sha256, &presented));
        if matched {
            return check_validity(end_entity, now);
        }
        if self.anchors.is_empty() {
            return Err(PinRejection::Mismatch {
                presented: hex(&presented),
                pinned: self.pins.iter().map(|p| hex(&p.sha256)).collect(),
            });
        }
        // CA mode. `verify_server_cert_signed_by_trust_anchor` is webpki path building and
        // validation (signatures, validity dates of every certificate, basic constraints,
        // `serverAuth` EKU when present) and nothing else; the name check is a separate step
        // (`verify_server_name`) that we deliberately never call. This is preferable to running
        // `WebPkiServerVerifier` and swallowing `NotValidForName`, which would rely on webpki
        // reporting a name error only after the chain had been fully validated.
        let parsed = ParsedCertificate::try_from(end_entity).map_err(|e| PinRejection::Unparsable(e.to_string()))?;
        verify_server_cert_signed_by_trust_anchor(&parsed, &self.anchors, intermediates, now, self.algorithms.all)
            .map_err(|e| PinRejection::Chain { fingerprint: hex(&presented), reason: e.to_string() })
    }

    /// The error rustls aborts the handshake with. It carries the rejection itself, so
    /// [`rejection_in`] can read it back from that connection's error. A bad handshake signature
    /// keeps rustls' own `BadSignature`, whose alert (`decrypt_error`) says what went wrong.
    fn reject(&self, rejection: PinRejection) -> rustls::Error {
        match rejection {
            PinRejection::BadSignature(_) => rustls::Error::InvalidCertificate(CertificateError::BadSignature),
            other => rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(other)))),
        }
    }
}

/// Why a [`PinVerifier`] refused the handshake behind `error`, if it did: the rejection is looked
/// for in a rustls error anywhere in `error`'s chain.
pub(crate) fn rejection_in(error: &(dyn std::error::Error + 'static)) -> Option<PinRejection> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<rustls::Error>().and_then(rejection_of) {
            return Some(found);
        }
        // reqwest hands the rustls error up inside an `io::Error`, whose `source()` skips the
        // error it wraps: step into that one instead.
        next = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    None
}

fn rejection_of(error: &rustls::Error) -> Option<PinRejection> {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(reason))) => {
            reason.downcast_ref::<PinRejection>().cloned()
        }
        // Only the verifier judges the server's certificate on a client connection, so this is
        // its refusal of the handshake signature (see `reject`).
        rustls::Error::InvalidCertificate(CertificateError::BadSignature) => {
            Some(PinRejection::BadSignature(error.to_string()))
        }
        _ => None,
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.check(end_entity, intermediates, now) {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(rejection) => Err(self.reject(rejection)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
            .map_err(|e| self.reject(PinRejection::BadSignature(e.to_string())))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
            .map_err(|e| self.reject(PinRejection::BadSignature(e.to_string())))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A rustls client configuration for one LXD: ring provider, TLS 1.3 and 1.2, the pinning
/// verifier, our client certificate, no session resumption (every connection is verified).
pub fn client_config(tls: &TlsCredentials) -> Result<ClientConfig, PinError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinVerifier::new(&tls.server_cert_pem, provider.signature_verification_algorithms)?;

    let chain = parse_certs(&tls.client_cert_pem).map_err(PinError::ClientCert)?;
    let key = parse_key(&tls.client_key_pem)?;

    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| PinError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        // Checks that the key's public half equals the certificate's SubjectPublicKeyInfo.
        .with_client_auth_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => PinError::KeyMismatch,
            // rustls' own messages here are fixed strings ("failed to parse private key as ...").
            other => PinError::ClientKey(other.to_string()),
        })?;
    config.resumption = Resumption::disabled();
    Ok(config)
}

/// [`client_config`], built once per process for the same credentials. A hook checks its
/// material (`check_material`) and then connects with it; each build parses every certificate
/// and loads the private key (for P-384, LXD's default, a scalar multiplication: a few hundred
/// microseconds of a steady hook). The last configuration built is kept with what it was built
/// from, so other credentials (a test's, a rotated secret's) are never served a stale one.
pub fn shared_client_config(tls: &TlsCredentials) -> Result<Arc<ClientConfig>, PinError> {
    static LAST: Mutex<Option<(TlsCredentials, Arc<ClientConfig>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((from, config)) = last.as_ref()
        && from == tls
    {
        return Ok(Arc::clone(config));
    }
    let config = Arc::new(client_config(tls)?);
    *last = Some((tls.clone(), Arc::clone(&config)));
    Ok(config)
}

pub use crate::certs::pinned_ders;
use crate::certs::{parse_certs, pem_error_kind};

/// PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, PinError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        PinError::ClientKey(match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block found".to_string()
            }
            other => format!("invalid PEM: {}", pem_error_kind(&other)),
        })
    })
}

fn check_validity(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), PinRejection> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| PinRejection::Unparsable(e.to_string()))?;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return Err(PinRejection::OutsideValidity {
            fingerprint: hex(&sha256(der.as_ref())),
            not_before: validity.not_before.to_string(),
            not_after: validity.not_after.to_string(),
        });
    }
    Ok(())
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Constant-time equality of two digests: every byte is always looked at.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What the tests of `pin` and `lxd::client` need beyond `testbed`'s certificates and server:
/// credentials and DER as this crate takes them.
/// Refuses TLS material the client could not be built from, naming the option (or the cloud
/// credential's attribute) that holds it, so an operator who pasted the wrong thing knows
/// where to look; the reason is the parser's and never quotes the value.
pub(crate) fn check_material(creds: &Credentials) -> Result<(), CredentialProblem> {
    let Err(e) = shared_client_config(&creds.tls) else { return Ok(()) };
    let (config, cloud) = match &e {
        PinError::ServerCert(_) => (OPT_SERVER_CERT, "the cloud credential's server-cert"),
        PinError::ClientCert(_) => (OPT_CERT, "the cloud credential's client-cert"),
        PinError::ClientKey(_) | PinError::KeyMismatch => (OPT_KEY, "the cloud credential's client-key"),
        PinError::Tls(_) => (OPT_CERT, "the cloud credential"),
    };
    let where_ = if creds.source == Source::Config { config } else { cloud };
    let why = match e {
        PinError::ServerCert(why) | PinError::ClientCert(why) | PinError::ClientKey(why) | PinError::Tls(why) => why,
        PinError::KeyMismatch => "the key does not belong to the client certificate".into(),
    };
    Err(CredentialProblem::UnusableMaterial { where_, why })
}

#[cfg(test)]
pub(crate) mod testing {
    use rustls::pki_types::CertificateDer;
    use testbed::certs::{Ca, CertSpec, Pem};

    pub(crate) use crate::certs::test_certs::self_signed;
    use crate::credentials::TlsCredentials;

    pub(crate) fn creds(client: &Pem, pinned_pem: &str) -> TlsCredentials {
        TlsCredentials {
            client_cert_pem: client.cert_pem.clone(),
            client_key_pem: client.key_pem.clone(),
            server_cert_pem: pinned_pem.to_string(),
        }
    }

    pub(crate) fn der(cert: &Pem) -> CertificateDer<'static> {
        CertificateDer::from(cert.der.clone())
    }

    /// A server certificate whose only name is `lxd.invalid`: a check of the name we dial would
    /// refuse it.
    pub(crate) fn leaf_spec(cn: &str) -> CertSpec {
        CertSpec { sans: vec!["lxd.invalid".into()], client_auth: false, server_auth: true, ..CertSpec::client(cn) }
    }

    /// A [`leaf_spec`] certificate issued by `ca`.
    pub(crate) fn leaf_of(ca: &Ca, cn: &str) -> Pem {
        leaf_spec(cn).signed_by(ca).expect("leaf certificate")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::Engine as _;
    use testbed::certs::{self, CertSpec, Key};

    use super::testing::*;
    use super::*;

    /// A 2048-bit RSA key (PKCS#8) made for these tests only; ring cannot generate RSA keys.
    const RSA_PKCS8_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCskMtZl0+lPjfc
TtaX/dR2XdHW1BwhQwI0wXCLnAdCq0vhZ6GNJaO1xbFLfT7Az00iDKZrZJNi/sYd
XXyzfUYgbFZe2pNqEChj/FwdkyCREBW+VPw4Xpd38QrXfm17oFSIJx/c/t0ZmFvQ
HsL/Q5vRrIAt+bvYwG3ODVcSzmkLlsgpHvbQ8LLZhQEmN1DZMZtBc7k6bqNlvA4u
My1tvQQaDlQdLFETRCYM3BoR6etcTd7ksGK10hD6DWKfER2D0Y43IM9UaB9DZho+
smr7ekKfJotVsfsfqBhH+mW3deBi5b04+DH6zHRe9NYlq8nSyiUiFoHrCeQADC8F
bStORZgDAgMBAAECggEAULty70irYcbgcmjN25DMh83vwH4+ZM9JJm5DXYVTHj0u
hFcrzPGJjB5fik4fgCvbzay2ZPLKQ1unSxC0KPLYTo3wwHKo2cuSYeisHcf5yfQJ
ACEZWLPkUCBMbrG+vcIuGf6X2RfBT9qoRY9Gsg6qxObblubJm6e3F1nFXU6E9X7C
Hp/Tza+voGGuk/WlH2m8dfTrTCg0r6zGvIIYpHdwiXhdv9Z3AF1Ar19ez3xQReza
PJP2FK3kF5Nefit0O9irFIltrcNtybL33BFFnAdq7hXCvRTEDDptuOpwQi0Y4gkO
tqX0IGdna6jgu0scR40E6JDJnIzWHSEnQ+3+/rMGkQKBgQDSymFNO5u7cJISbxdz
8ySdZv7N5RPNjTD756jZl9D/M/L2b3OoA+QuC6tpokgNQIWhaQm8X8w6QYUKJTwW
+1rOhiaVK3Yq6SZrbTp3uJvELlG26+xaRSrWDAIngELEl9lzVE0OGJanWG3gtnYv
9Ja63u1DgEMPUbjeRnMQN0lPkQKBgQDRk6TOeswZR3cBWrss7q1NnEIRk+NvPnUm
h3FD4zazhWqQNletlS6Sm3Jj0nw3sDkKZrzsxoQTqxcYtd2ScXY4HmKXC+zvnxi9
hGn/KkNNT+7G/Q2UQQ4H/UnjIDCKZM38mrULaIL+V2CLJvIbcl9yUJKs+4uF25Tr
GTMVXmYMUwKBgHghis6fWCO9BiKnWXBlc8qY9kKVeXG+M9p8rkhEM4IeMyurXPi2
Lwbm86viJroWuZHB8SCAYD4bNR0RF2vpmFj3L2n4OQI/mfvDZnzwoyVtWHitgCf6
H22ZrmigumycNft6YefUr5dz2DsnAbhW5shdYE8F/DHw2zEiaVUmjQthAoGAAlWc
rlgb0eRD5RX3o8Z807J74eo9zE1rzKQRlOoA//rqdvTEAUD6JdPpcEc17wDdgcon
LJQBgJ6VQUc1Up5E7NcZzgjp+LlS8zl4XMlBuqi7RigncJFQ8LHXktoW8FOzH68x
eREO9HpQrvweEkQx3/oZyCd9JF6PyBadxQ0qIdUCgYEAk3zxGXvLPaFakGobrxMC
LQMtYpXfDiDhQBH/KS1VPesMh195uUSxzTwtiRT2sreMWs+Byzk5e9kt9t3Sdkyu
lylbtxrBKDc9G5gJVpknGs+3mXh/dPnzyoPtegSu2CTvFG+PBW5fAZsHW00y45Q8
rR3vre7YLmjlNsrn8FaqefI=
-----END PRIVATE KEY-----
";

    fn verifier(pinned_pem: &str) -> PinVerifier {
        PinVerifier::new(pinned_pem, rustls::crypto::ring::default_provider().signature_verification_algorithms)
            .expect("verifier")
    }

    fn now() -> UnixTime {
        UnixTime::now()
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    /// One DER TLV: (tag, content, rest).
    fn tlv(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let (len, header) = if input[1] < 0x80 {
            (input[1] as usize, 2)
        } else {
            let n = (input[1] & 0x7f) as usize;
            (input[2..2 + n].iter().fold(0usize, |l, b| (l << 8) | *b as usize), 2 + n)
        };
        (input[0], &input[header..header + len], &input[header + len..])
    }

    /// The algorithm-specific key inside a PKCS#8 `PrivateKeyInfo`: SEC1 `ECPrivateKey` for EC
    /// keys, PKCS#1 `RSAPrivateKey` for RSA keys.
    fn pkcs8_inner(pkcs8: &[u8]) -> Vec<u8> {
        let (_, info, _) = tlv(pkcs8);
        let (_, _, rest) = tlv(info); // version
        let (_, _, rest) = tlv(rest); // algorithm
        let (tag, key, _) = tlv(rest);
        assert_eq!(tag, 0x04, "privateKey OCTET STRING");
        key.to_vec()
    }

    #[test]
    fn exact_pin_is_accepted_and_anything_else_refused() {
        let server = self_signed("root@lxd");
        let v = verifier(&server.cert_pem);
        assert_eq!(v.check(&der(&server), &[], now()), Ok(()));

        let other = self_signed("root@lxd");
        let err = v.check(&der(&other), &[], now()).unwrap_err();
        assert!(matches!(err, PinRejection::Mismatch { .. }), "{err:?}");
        assert!(err.to_string().contains(&server.fingerprint), "{err}");

        // Through the rustls trait: the refusal is an error that carries its reason.
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let refused = v.verify_server_cert(&der(&other), &[], &name, &[], now()).unwrap_err();
        assert!(matches!(rejection_in(&refused), Some(PinRejection::Mismatch { .. })), "{refused:?}");
        assert!(v.verify_server_cert(&der(&server), &[], &name, &[], now()).is_ok());
    }

    #[test]
    fn a_rejection_is_found_in_the_error_of_its_own_handshake() {
        let server = self_signed("root@lxd");
        let v = verifier(&server.cert_pem);
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let refused = v.verify_server_cert(&der(&self_signed("root@lxd")), &[], &name, &[], now()).unwrap_err();
        // As an HTTP stack hands it up: an io::Error in an io::Error.
        let wrapped = std::io::Error::other(std::io::Error::new(std::io::ErrorKind::InvalidData, refused));
        assert!(matches!(rejection_in(&wrapped), Some(PinRejection::Mismatch { .. })));
        assert_eq!(rejection_in(&std::io::Error::other("connection refused")), None);
        let other_tls = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(rejection_in(&other_tls), None);
    }

    #[test]
    fn pinned_certificate_outside_its_validity_is_refused() {
        let old = CertSpec::client("root@lxd").between_years(2020, 2021).self_signed().unwrap();
        let v = verifier(&old.cert_pem);
        let err = v.check(&der(&old), &[], now()).unwrap_err();
        assert!(matches!(err, PinRejection::OutsideValidity { .. }), "{err:?}");
        // ...and accepted while it was valid, so the date check uses the handshake's clock.
        assert_eq!(v.check(&der(&old), &[], at(1_600_000_000)), Ok(()));
        assert!(matches!(v.check(&der(&old), &[], at(1_500_000_000)), Err(PinRejection::OutsideValidity { .. })));
    }

    #[test]
    fn ca_mode_accepts_leaves_of_the_ca_without_a_name_check() {
        let ca = certs::ca_cert("Operator CA").unwrap();
        // The leaf's only name is lxd.invalid; we dial 127.0.0.1 and never check names.
        let leaf = leaf_of(&ca, "root@node1");
        let v = verifier(&ca.pem.cert_pem);
        assert_eq!(v.check(&der(&leaf), &[], now()), Ok(()));
        // The CA itself, presented as-is, matches the pin.
        assert_eq!(v.check(&der(&ca.pem), &[], now()), Ok(()));

        let stranger = leaf_of(&certs::ca_cert("Operator CA").unwrap(), "root@node1");
        assert!(matches!(v.check(&der(&stranger), &[], now()), Err(PinRejection::Chain { .. })));

        let expired = leaf_spec("root@node1").between_years(2020, 2021).signed_by(&ca).unwrap();
        assert!(matches!(v.check(&der(&expired), &[], now()), Err(PinRejection::Chain { .. })));
    }

    #[test]
    fn intermediates_are_used_in_ca_mode() {
        let root = certs::ca_cert("Root").unwrap();
        let intermediate = root.intermediate("Intermediate").unwrap();
        let leaf = leaf_of(&intermediate, "root@node1");
        let v = verifier(&root.pem.cert_pem);
        assert!(v.check(&der(&leaf), &[], now()).is_err());
        assert_eq!(v.check(&der(&leaf), &[der(&intermediate.pem)], now()), Ok(()));
    }

    #[test]
    fn client_key_formats_pkcs8_sec1_pkcs1() {
        let server = self_signed("root@lxd");
        let ec = self_signed("client");
        let sec1 = pem("EC PRIVATE KEY", &pkcs8_inner(&ec.key_der().unwrap()));
        for key_pem in [ec.key_pem.clone(), sec1] {
            let tls = TlsCredentials { client_key_pem: key_pem, ..creds(&ec, &server.cert_pem) };
            client_config(&tls).expect("EC key");
        }

        let rsa_key = Key::from_pem(RSA_PKCS8_PEM).expect("rsa key");
        let rsa = CertSpec::client("client").self_signed_with(&rsa_key).unwrap();
        let pkcs1 = pem("RSA PRIVATE KEY", &pkcs8_inner(&rsa.key_der().unwrap()));
        for key_pem in [RSA_PKCS8_PEM.to_string(), pkcs1] {
            let tls = TlsCredentials { client_key_pem: key_pem, ..creds(&rsa, &server.cert_pem) };
            client_config(&tls).expect("RSA key");
        }
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let server = self_signed("root@lxd");
        let a = self_signed("client");
        let b = self_signed("client");
        let tls = TlsCredentials { client_key_pem: b.key_pem.clone(), ..creds(&a, &server.cert_pem) };
        assert_eq!(client_config(&tls).unwrap_err(), PinError::KeyMismatch);
    }

    #[test]
    fn broken_inputs_are_refused_without_echoing_them() {
        let server = self_signed("root@lxd");
        let client = self_signed("client");
        let secret = "c2VjcmV0LWtleS1tYXRlcmlhbA";
        let bad_keys = [
            String::new(),
            format!("-----BEGIN PRIVATE KEY-----\n{secret}!!\n-----END PRIVATE KEY-----\n"),
            format!("-----BEGIN PRIVATE KEY-----\n{secret}\n"),
            format!("-----BEGIN PRIVATE KEY-----\n{secret}AAAA\n-----END PRIVATE KEY-----\n"),
        ];
        for key_pem in bad_keys {
            let tls = TlsCredentials { client_key_pem: key_pem, ..creds(&client, &server.cert_pem) };
            let err = client_config(&tls).unwrap_err();
            assert!(matches!(err, PinError::ClientKey(_)), "{err:?}");
            assert!(!err.to_string().contains(secret) && !format!("{err:?}").contains(secret), "{err:?}");
        }
        let no_cert = TlsCredentials { client_cert_pem: "nothing".into(), ..creds(&client, &server.cert_pem) };
        assert!(matches!(client_config(&no_cert).unwrap_err(), PinError::ClientCert(_)));
        let no_pin = TlsCredentials { server_cert_pem: String::new(), ..creds(&client, &server.cert_pem) };
        assert!(matches!(client_config(&no_pin).unwrap_err(), PinError::ServerCert(_)));
        let junk_pin = pem("CERTIFICATE", b"not a certificate");
        let junk = TlsCredentials { server_cert_pem: junk_pin, ..creds(&client, &server.cert_pem) };
        assert!(matches!(client_config(&junk).unwrap_err(), PinError::ServerCert(_)));
    }

    #[test]
    fn constant_time_equality() {
        let a = [7u8; 32];
        let mut b = a;
        assert!(ct_eq(&a, &b));
        b[31] ^= 1;
        assert!(!ct_eq(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!ct_eq(&a, &b));
    }
}
