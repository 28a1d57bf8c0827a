//! What an `lxd-https` requirer sends (`version`, `certificate`, `projects`), against any
//! `trust-projects`, through `https::projects` and `https::collect`.
//!
//! Input: one flag byte, then up to four NUL-separated values (lossy UTF-8): the requirer's
//! `projects`, the `trust-projects` option, `certificate`, `version`. Flag bit 0: LXD lacks
//! `certificate_project`; bit 1: the application databag sends the same as unit `gw/0`.
#![no_main]

#[path = "common.rs"]
mod common;

use common::*;
use libfuzzer_sys::fuzz_target;
use lxd_integrator::https::{self, Bounds, Grant, KEY_CERTIFICATE, KEY_PROJECTS, KEY_VERSION};
use lxd_integrator::ownership::Interface;
use lxd_integrator::config::{parse_projects, plain_project_name};
use lxd_integrator::relation::RelationView;
use lxd_integrator::requests::Protected;
use std::collections::BTreeSet;

/// Characters no fixed text of a refusal uses: a token holding one, if it shows up in a
/// refusal, was quoted from the input.
fn foreign(token: &str) -> bool {
    token.chars().any(|c| !(c.is_ascii_alphanumeric() || " ,;().\"_-".contains(c)))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let values = split_lossy(rest, 4);
    let get = |i: usize| values.get(i).map(String::as_str);
    let ceiling = get(1).and_then(parse_projects);
    let bounds = Bounds { ceiling: ceiling.as_deref(), cannot_restrict: flags & 1 != 0 };

    let asked = https::projects(get(0), bounds);
    let allowed = |p: &String| ceiling.as_ref().is_none_or(|c| c.contains(p));
    if let Grant::Projects(list) = &asked.grant {
        assert!(!list.is_empty() && !bounds.cannot_restrict);
        assert!(list.iter().all(|p| plain_project_name(p) && allowed(p)), "granted beyond trust-projects: {list:?}");
        assert_eq!(list.iter().collect::<BTreeSet<_>>().len(), list.len(), "duplicates");
    }
    assert!(asked.outside.iter().all(|p| plain_project_name(p) && !allowed(p)));
    let refusal = asked.refusal().unwrap_or_default();
    assert!(refusal.len() <= 2 * MAX_REASON, "{} bytes", refusal.len());
    for token in get(0).unwrap_or("").split(',').map(str::trim).filter(|t| t.len() >= 4 && foreign(t)) {
        assert!(!refusal.contains(token), "quoted {token:?}");
    }

    let mut bag = lxd_integrator::relation::Databag::new();
    for (key, i) in [(KEY_PROJECTS, 0), (KEY_CERTIFICATE, 2), (KEY_VERSION, 3)] {
        if let Some(v) = get(i) {
            bag.insert(key.to_string(), v.to_string());
        }
    }
    let mut view = RelationView { id: 5, interface: Interface::LxdHttps, remote_app: "gw".into(), ..Default::default() };
    view.units.insert("gw/0".into(), bag.clone());
    if flags & 2 != 0 {
        view.app_data = bag;
    }
    let got = https::collect(&[view], NOW, &Protected::default(), bounds);
    for r in &got.requests {
        assert_eq!(r.owner.interface, Interface::LxdHttps);
        assert!(r.projects.as_ref().is_none_or(|l| !l.is_empty() && l.iter().all(|p| plain_project_name(p) && allowed(p))));
    }
    for p in &got.problems {
        let line = p.to_string();
        assert!(line.len() <= 3 * MAX_REASON, "{} bytes", line.len());
        for value in [get(2), get(3)].into_iter().flatten().filter(|v| v.len() >= 12 && foreign(v)) {
            assert!(!line.contains(value), "quoted a value");
        }
    }
});
