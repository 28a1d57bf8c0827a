//! The TLS material the charm is given (config or `juju trust`) and the certificate an LXD
//! server presents: `pin::client_config`, `PinVerifier::new` and `PinVerifier::check`.
//!
//! Input: four NUL-separated parts: pinned server PEM, client certificate PEM, client key PEM,
//! raw DER the server presents.
#![no_main]

#[path = "common.rs"]
mod common;

use common::*;
use libfuzzer_sys::fuzz_target;
use lxd_integrator::credentials::TlsCredentials;
use lxd_integrator::pin::{self, PinError, PinRejection, PinVerifier};
use lxd_integrator::relation::ServerPin;
use rustls_pki_types::{CertificateDer, UnixTime};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == 0);
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (server, client, key) = (next(), next(), next());
    let presented = data.splitn(4, |b| *b == 0).nth(3).unwrap_or_default();

    let tls = TlsCredentials { server_cert_pem: server.clone(), client_cert_pem: client, client_key_pem: key.clone() };
    let built = pin::client_config(&tls);
    if let Err(e) = &built {
        let text = format!("{e} {e:?}");
        assert!(text.len() <= 2 * MAX_REASON, "error grows with the input ({} bytes)", text.len());
        // No line of the key's body (anything 16+ characters that is not armour) is echoed.
        for line in key.lines().map(str::trim).filter(|l| l.len() >= 16 && !l.starts_with("-----")) {
            if !matches!(e, PinError::ServerCert(_)) || !server.contains(line) {
                assert!(!text.contains(line), "key material in {e:?}");
            }
        }
    }

    let provider = rustls::crypto::ring::default_provider();
    let Ok(verifier) = PinVerifier::new(&server, provider.signature_verification_algorithms) else {
        assert!(matches!(built, Err(PinError::ServerCert(_))), "{built:?}");
        return;
    };
    // What requirers are told to pin is exactly what was pinned, and reads back the same from
    // the canonical PEM published.
    let published = ServerPin::from_pinned(&server);
    assert!(published.is_some(), "a pin the verifier took is published");
    if let Some(p) = &published {
        // Only CERTIFICATE blocks are published; "PRIVATE" may well occur inside base64.
        assert!(p.fingerprint.len() == 64 && !p.pem.contains("PRIVATE KEY-----"));
        assert!(p.pem.lines().filter(|l| l.starts_with("-----BEGIN ")).all(|l| l == "-----BEGIN CERTIFICATE-----"));
        assert_eq!(ServerPin::from_pinned(&p.pem).as_ref(), Some(p));
        assert_eq!(pin::pinned_ders(&p.pem), pin::pinned_ders(&server));
    }
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(NOW as u64));
    let end_entity = CertificateDer::from(presented);
    let first = verifier.check(&end_entity, &[], now);
    assert_eq!(first, verifier.check(&end_entity, &[], now), "deterministic");
    if let Err(rejection) = &first {
        let text = rejection.to_string();
        assert!(text.len() <= 4 * MAX_REASON);
        if let PinRejection::Mismatch { presented, pinned } = rejection {
            assert_eq!(presented.len(), 64);
            assert!(!pinned.is_empty());
        }
    }
});
