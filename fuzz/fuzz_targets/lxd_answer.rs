//! LXD's answers: any status and body, decoded as the client decodes `GET /1.0`, the member
//! list, the trust store and the caller's identity (5.21+). Never a panic; a success only for a
//! real envelope; fingerprints come out lowercase; 403 always means untrusted. Then checked as
//! `reconcile::observe` checks them (`lxd::checked`): what is kept is plain and bounded, what
//! is skipped is named in a few short lines that never repeat a value raw, and the version,
//! the databags and the state cache built from it stay inside their bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lxd_integrator::endpoint::Endpoint;
use lxd_integrator::lxd::client::answers;
use lxd_integrator::lxd::{LxdError, Member, ServerInfo, checked};
use lxd_integrator::relation::{self, ServerPin};
use lxd_integrator::{https, limits};
use std::collections::BTreeSet;

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
    if let Ok(info) = server {
        check_server(info);
    }
    if let Ok(list) = members {
        // The answer as it came, and grown past the member bound with names made distinct.
        check_members(list.clone());
        let many = list.iter().cycle().take(list.len().max(limits::MEMBERS + 2)).enumerate();
        check_members(many.map(|(i, m)| Member { name: format!("{}{i}", m.name), ..m.clone() }).collect());
    }
});

fn check_server(info: ServerInfo) {
    let (kept, problems) = checked::server(info);
    let version = kept.server_version.as_str();
    assert!(version == checked::UNKNOWN_VERSION || checked::version(version) == version);
    assert!(version.len() <= limits::SERVER_VERSION_BYTES && version.bytes().all(|b| b.is_ascii_graphic()));
    assert!(kept.server_name.is_empty() || checked::member_name(&kept.server_name).is_ok());
    assert!(kept.addresses.len() <= limits::MEMBERS);
    assert!(kept.addresses.iter().all(|a| a.len() <= limits::MEMBER_URL_BYTES));
    assert!(kept.kind.as_str().len() <= limits::MEMBER_NAME_SHOWN);
    assert!(problems.len() <= 1);
    problems.iter().for_each(|line| short_plain_line(line));
}

fn check_members(raw: Vec<Member>) {
    let out = checked::members(raw);
    assert!(out.kept.len() <= limits::MEMBERS);
    let names: BTreeSet<&str> = out.kept.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), out.kept.len(), "names are unique");
    for m in &out.kept {
        assert_eq!(checked::member(m.clone()).as_ref(), Ok(m), "checking is idempotent");
        assert!(m.name.len() <= limits::MEMBER_NAME_BYTES && !m.name.chars().any(char::is_control));
        assert!(m.url.len() <= limits::MEMBER_URL_BYTES);
        assert_eq!(Endpoint::parse(&m.url).map(|e| e.url()).as_deref(), Ok(m.url.as_str()), "canonical https");
        assert!(m.message.len() <= limits::MEMBER_MESSAGE_BYTES && !m.message.chars().any(char::is_control));
    }
    assert!(out.problems.len() <= limits::PROBLEMS_NAMED + 2, "{}", out.problems.len());
    out.problems.iter().for_each(|line| short_plain_line(line));
    check_what_is_built_from(&out.kept);
}

/// A log line naming what LXD sent: one line, short, so never a long value repeated raw.
fn short_plain_line(line: &str) {
    assert!(line.len() <= 512, "{} bytes", line.len());
    assert!(!line.chars().any(char::is_control), "{line:?}");
}

/// Databags and the state cache, whatever the members: within their bounds.
fn check_what_is_built_from(kept: &[Member]) {
    let online: relation::OnlineMembers = kept.iter().map(|m| (m.name.clone(), m.url.clone())).collect();
    let bag = relation::payload(0, &online, &[], &BTreeSet::new(), None, None).bag;
    assert!(relation::bag_bytes(&bag) <= limits::PUBLISHED_BYTES);
    let pin = ServerPin { pem: "-----BEGIN CERTIFICATE-----\n".into(), fingerprint: "0".repeat(64) };
    let served = https::Served { certificate: Some(&pin), trusted: true, project: Some("p"), refused: None };
    let bag = https::payload(&online, served).bag;
    assert!(relation::bag_bytes(&bag) <= limits::PUBLISHED_BYTES);
    let remembered = checked::failover(kept.iter().map(|m| &m.url));
    assert!(remembered.len() <= limits::FAILOVER_ENDPOINTS);
    let value = serde_json::to_string(&remembered).unwrap_or_default();
    assert!(value.len() <= limits::STATE_VALUE_BYTES);
}
