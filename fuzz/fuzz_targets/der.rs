//! Raw DER bytes: `inspect_der`, and `parse_client_cert` on the same bytes armoured with
//! `to_pem`, whose verdict must follow from what `inspect_der` saw.
#![no_main]

#[path = "common.rs"]
mod common;

use common::*;
use libfuzzer_sys::fuzz_target;
use lxd_integrator::certs::{self, CertRejection, KeyKind};

fuzz_target!(|der: &[u8]| {
    let inspected = certs::inspect_der(der);
    let parsed = certs::parse_client_cert(&certs::to_pem(der), NOW);
    match inspected {
        Err(CertRejection::BadDer(reason)) => {
            assert!(reason.len() <= MAX_REASON, "reason grows with the input ({} bytes)", reason.len());
            assert!(matches!(parsed, Err(CertRejection::BadDer(_))), "{parsed:?}");
        }
        Err(other) => panic!("inspect_der only fails with BadDer, got {other:?}"),
        Ok(info) => {
            assert!(info.common_name.chars().count() <= 64);
            assert!(!info.common_name.chars().any(char::is_control));
            // CA:TRUE is no reason to refuse: LXD matches clients by fingerprint.
            let want = if NOW > info.not_after {
                Err(CertRejection::Expired)
            } else if NOW < info.not_before {
                Err(CertRejection::NotYetValid)
            } else {
                match info.key {
                    KeyKind::Ec => Ok(()),
                    KeyKind::Rsa(bits) if bits >= 2048 => Ok(()),
                    KeyKind::Rsa(bits) => Err(CertRejection::WeakRsa(bits)),
                    KeyKind::Other => Err(CertRejection::UnsupportedKey),
                }
            };
            assert_eq!(parsed.as_ref().map(|_| ()).map_err(Clone::clone), want);
            if let Ok(cert) = parsed {
                assert_eq!(cert.der, der);
                assert_eq!(cert.fingerprint, certs::fingerprint(der));
                assert_eq!(cert.common_name, info.common_name);
            }
        }
    }
});
