//! LXD's answers: any status and body, decoded as the client decodes `GET /1.0`, the member
//! list, the trust store and the caller's identity (5.21+). Never a panic; a success only for a real envelope; fingerprints
//! come out lowercase; 403 always means untrusted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lxd_integrator::lxd::LxdError;
use lxd_integrator::lxd::client::answers;

fuzz_target!(|data: &[u8]| {
    let Some((&[hi, lo], body)) = data.split_first_chunk::<2>().map(|(s, b)| (s, b)) else { return };
    let status = 100 + (u16::from_be_bytes([hi, lo]) % 500);
    let server = answers::server(status, body);
    let members = answers::members(status, body);
    let store = answers::trust_store(status, body);
    let identity = answers::current_identity(status, body).err();
    if status == 403 {
        for e in [server.err(), members.err(), store.err(), identity] {
            assert!(matches!(e, Some(LxdError::Untrusted { .. })), "{e:?}");
        }
        return;
    }
    if !(200..300).contains(&status) {
        assert!(server.is_err() && members.is_err() && store.is_err() && identity.is_some());
    }
    if let Ok(entries) = store {
        assert!(entries.iter().all(|e| e.fingerprint == e.fingerprint.to_ascii_lowercase()));
    }
});
