//! PEM text as a requirer sends it: `pem_blocks` and `parse_client_cert` on lossy UTF-8.
#![no_main]

#[path = "common.rs"]
mod common;

use common::*;
use libfuzzer_sys::fuzz_target;
use lxd_integrator::certs::{self, CertRejection, KeyKind};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    match certs::pem_blocks(&text) {
        Ok(blocks) => {
            assert!(!blocks.is_empty());
            for block in &blocks {
                // Re-armouring a CERTIFICATE body gives back exactly that one block.
                if block.label == "CERTIFICATE" {
                    let again = certs::pem_blocks(&certs::to_pem(&block.der)).expect("to_pem output is PEM");
                    assert_eq!(again.len(), 1);
                    assert_eq!(again[0], *block);
                }
            }
        }
        Err(e) => {
            assert!(matches!(e, CertRejection::NotPem | CertRejection::TrailingGarbage | CertRejection::BadBase64))
        }
    }

    match certs::parse_client_cert(&text, NOW) {
        Ok(cert) => {
            assert!(!text.contains("PRIVATE KEY-----"));
            // Published as canonical PEM, never as the requirer spelled it.
            assert_eq!(cert.pem, certs::to_pem(&cert.der), "canonical PEM");
            assert_eq!(cert.fingerprint.len(), 64);
            assert!(cert.fingerprint.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            assert_eq!(cert.fingerprint, certs::fingerprint(&cert.der));
            assert!(cert.common_name.chars().count() <= 64);
            assert!(!cert.common_name.chars().any(char::is_control));
            let info = certs::inspect_der(&cert.der).expect("accepted DER inspects");
            // CA:TRUE is accepted (LXD matches clients by fingerprint); validity is not.
            assert!(info.not_before <= NOW && NOW <= info.not_after);
            assert!(matches!(info.key, KeyKind::Ec) || matches!(info.key, KeyKind::Rsa(b) if b >= 2048));
            // Debug names the certificate, never the PEM text.
            assert!(!format!("{cert:?}").contains("BEGIN"));
            // Canonical re-armouring is accepted as the same certificate.
            let again = certs::parse_client_cert(&certs::to_pem(&cert.der), NOW).expect("re-armoured");
            assert_eq!((again.der, again.fingerprint), (cert.der, cert.fingerprint));
        }
        Err(why) => {
            let reason = why.to_string();
            assert!(reason.len() <= MAX_REASON, "reason grows with the input ({} bytes)", reason.len());
            assert!(!reason.contains("-----BEGIN"));
        }
    }
});
