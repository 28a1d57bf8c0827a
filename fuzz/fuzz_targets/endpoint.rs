//! Endpoint strings from config, `credential-get` and LXD's own member URLs: `Endpoint::parse`,
//! and the round trip `parse(url()) == self` (also through `authority()` and `Display`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lxd_integrator::endpoint::{Endpoint, EndpointError};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Endpoint::parse(&text) {
        Ok(ep) => {
            assert_ne!(ep.port, 0);
            assert!(!ep.host.is_empty());
            assert_eq!(ep.host, ep.host.to_ascii_lowercase());
            assert!(!ep.host.contains(['[', ']', '/', '@', '?', '#']) && !ep.host.chars().any(char::is_whitespace));
            if ep.host.contains(':') {
                assert!(ep.host.parse::<std::net::Ipv6Addr>().is_ok(), "only IPv6 literals hold ':'");
            }
            let url = ep.url();
            assert!(url.starts_with("https://"));
            assert_eq!(ep.to_string(), url);
            assert_eq!(Endpoint::parse(&url).as_ref(), Ok(&ep), "parse(url()) for {url}");
            assert_eq!(Endpoint::parse(&ep.authority()).as_ref(), Ok(&ep));
            assert_eq!(Endpoint::parse(&format!("{url}/1.0")).as_ref(), Ok(&ep));
            assert_eq!(Endpoint::parse(&url.to_ascii_uppercase()).as_ref(), Ok(&ep));
        }
        Err(e) => {
            if let EndpointError::Empty = e {
                assert!(text.trim().is_empty());
            }
            let _ = e.to_string();
        }
    }
});
