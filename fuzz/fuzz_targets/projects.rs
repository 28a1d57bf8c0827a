//! The `trust-projects` option: `config::parse_projects` is normalising and idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lxd_integrator::config::parse_projects;
use std::collections::BTreeSet;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_projects(&text) {
        None => assert!(text.split(',').all(|p| p.trim().is_empty())),
        Some(list) => {
            assert!(!list.is_empty());
            let mut seen = BTreeSet::new();
            for p in &list {
                assert!(!p.is_empty() && p.trim() == p && !p.contains(','));
                assert!(seen.insert(p), "duplicate {p:?}");
            }
            // Every project named in the text is in the list, in first-seen order.
            let named: Vec<&str> = text.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            assert!(named.iter().all(|p| seen.contains(&p.to_string())));
            assert_eq!(parse_projects(&list.join(",")), Some(list.clone()), "idempotent");
            assert_eq!(parse_projects(&list.join(" , ")), Some(list));
        }
    }
});
