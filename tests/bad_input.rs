//! Bad input, as requirers and operators really send it, through the library's public API.
//!
//! Every scenario asserts what the charm does with the bad value (skipped, with the exact
//! reason it logs), that every valid certificate beside it is still requested, and — planning
//! against a trust store that already holds this application's entries — that nothing owned and
//! still wanted would be removed.
//!
//! Certificates come from `testbed::certs`; the RSA-1024 one (which ring cannot generate) from
//! `openssl` when it is installed, else from the checked-in `tests/corpus/rsa1024-cert.pem`.

use lxd_integrator::certs;
use lxd_integrator::config::Config;
use lxd_integrator::credentials::{
    self, CredentialProblem, Credentials, OPT_CERT, OPT_ENDPOINT, OPT_KEY, OPT_SERVER_CERT, Source,
};
use lxd_integrator::endpoint::EndpointError;
use lxd_integrator::hook_tools::CredentialAnswer;
use lxd_integrator::lxd::client::HttpLxd;
use lxd_integrator::lxd::{LxdError, TrustEntry};
use lxd_integrator::ownership::{Interface, Owner, Scope};
use lxd_integrator::pin::{self, PinError};
use lxd_integrator::plan::plan;
use lxd_integrator::relation::{Databag, KEY_CLIENT_CERTS, KEY_NODES, KEY_REGISTERED, RelationView};
use lxd_integrator::requests::{Protected, Requests};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use testbed::certs::{self as testcerts, CertSpec, Curve, Key, Pem};

// ---------------------------------------------------------------------------------------------
// Fixtures

fn collect_requests(relations: &[RelationView], now: i64) -> Requests {
    lxd_integrator::requests::collect(relations, now, &Protected::default())
}

fn payload(
    rel: u32,
    members: &lxd_integrator::relation::OnlineMembers,
    requests: &[lxd_integrator::requests::Request],
    in_store: &BTreeSet<String>,
) -> Databag {
    lxd_integrator::relation::payload(rel, members, requests, in_store, None, None).bag
}

fn client(cn: &str) -> Pem {
    testcerts::client_cert(cn).expect("certificate")
}

/// RSA-1024, self-signed: fresh from openssl when available, else the fixture.
fn rsa_1024_pem() -> String {
    testcerts::rsa_client_cert("weak-rsa", 1024)
        .map(|made| made.cert_pem)
        .unwrap_or_else(|_| include_str!("corpus/rsa1024-cert.pem").to_string())
}

fn now() -> i64 {
    certs::now_unix()
}

fn list(pems: &[&str]) -> String {
    serde_json::to_string(pems).expect("json")
}

fn bag(value: impl Into<String>) -> Databag {
    [(KEY_CLIENT_CERTS.to_string(), value.into()), ("private-address".to_string(), "10.0.0.7".to_string())].into()
}

/// Relation `id` with application `app`; `units` are (unit number, client_certificates value).
fn relation(id: u32, app: &str, units: &[(u32, String)]) -> RelationView {
    RelationView {
        id,
        interface: Interface::Lxd,
        remote_app: app.into(),
        units: units.iter().map(|(n, v)| (format!("{app}/{n}"), bag(v.clone()))).collect(),
        app_data: Databag::new(),
    }
}

fn req(units: &[(u32, String)]) -> Vec<RelationView> {
    vec![relation(1, "req", units)]
}

/// What the charm logs, one line per problem.
fn said(got: &Requests) -> Vec<String> {
    got.problems.iter().map(|p| p.to_string()).collect()
}

/// (member, fingerprint) of every request, in order.
fn requested(got: &Requests) -> Vec<(String, String)> {
    got.requests.iter().map(|r| (r.owner.member(), r.cert.fingerprint.clone())).collect()
}

fn member_fp(member: &str, m: &Pem) -> (String, String) {
    (member.to_string(), m.fingerprint.clone())
}

fn scope() -> Scope {
    Scope { model_uuid: "0f6d3b1a-1c2b-4f5e-8a9b-123456789abc".into(), app: "lxd-integrator".into() }
}

fn unit(rel: u32, app: &str, n: u32) -> Owner {
    Owner { relation_id: rel, remote_app: app.into(), unit: Some(n), interface: Interface::Lxd }
}

fn entry(name: String, fingerprint: String) -> TrustEntry {
    TrustEntry { name, fingerprint, kind: "client".into(), restricted: false, projects: vec![] }
}

/// Plans against a store already holding an owned entry for every requested certificate (named
/// for its first requester, as `plan` names them), plus an operator's entry and the orphan of a
/// long-gone unit: only the orphan goes, and nothing needs adding.
fn assert_owned_and_wanted_entries_stay(got: &Requests) {
    let scope = scope();
    let mut store = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &got.requests {
        if seen.insert(r.cert.fingerprint.clone()) {
            store.push(entry(scope.entry_name(&r.owner), r.cert.fingerprint.clone()));
        }
    }
    store.push(entry("admin".into(), "ad".repeat(32)));
    let orphan = unit(99, "gone", 0);
    store.push(entry(scope.entry_name(&orphan), "0f".repeat(32)));
    let p = plan(&scope, &got.requests, &store, None);
    assert!(p.add.is_empty() && p.restrict.is_empty(), "{p:?}");
    assert_eq!(p.remove.iter().map(|r| r.owner.clone()).collect::<Vec<_>>(), [orphan], "only the orphan is removed");
}

// ---------------------------------------------------------------------------------------------
// Relation values that are not a JSON list of strings

#[test]
fn a_value_that_is_not_json_is_skipped_and_the_other_units_still_count() {
    let good = client("good");
    let got = collect_requests(&req(&[(0, "this is not json".into()), (1, list(&[&good.cert_pem]))]), now());
    assert_eq!(said(&got), ["req/0 (relation 1): client_certificates: not valid JSON (16 bytes; syntax error)",]);
    assert_eq!(requested(&got), [member_fp("req/1", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn json_of_the_wrong_type_is_named_per_unit_and_per_entry() {
    let good = client("good");
    let units = [
        (0, "42".to_string()),
        (1, r#"{"certificate": "x"}"#.to_string()),
        (2, "[1, 2]".to_string()),
        (3, "null".to_string()),
        // The PEM itself instead of a list holding it: a common requirer mistake.
        (4, serde_json::to_string(&good.cert_pem).expect("json")),
        (5, json!([null, ["nested"], {"pem": "x"}, true, good.cert_pem]).to_string()),
    ];
    let got = collect_requests(&req(&units), now());
    assert_eq!(
        said(&got),
        [
            "req/0 (relation 1): client_certificates: expected a JSON list of PEM strings, got a number",
            "req/1 (relation 1): client_certificates: expected a JSON list of PEM strings, got an object",
            "req/2 (relation 1): client_certificates: 2 entries refused: 2 expected a PEM string, got a number ([0], [1])",
            "req/4 (relation 1): client_certificates: expected a JSON list of PEM strings, got a string",
            "req/5 (relation 1): client_certificates: 4 entries refused: 1 expected a PEM string, got null ([0]); 1 expected a PEM string, got a list ([1]); 1 expected a PEM string, got an object ([2]); 1 expected a PEM string, got a boolean ([3])",
        ],
        "null means 'nothing requested' (req/3), not a problem"
    );
    assert_eq!(requested(&got), [member_fp("req/5", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

// ---------------------------------------------------------------------------------------------
// Strings that are not one client certificate

#[test]
fn strings_that_are_not_pem_are_skipped_entry_by_entry() {
    let good = client("good");
    let values = [
        "hello",
        "",
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        good.cert_pem.as_str(),
    ];
    let got = collect_requests(&req(&[(0, list(&values))]), now());
    assert_eq!(
        said(&got),
        [
            "req/0 (relation 1): client_certificates: 5 entries refused: 3 not a PEM certificate ([0], [1], [2]); 1 PEM body is not valid base64 ([3]); 1 a PEM \"PUBLIC KEY\" block, not a CERTIFICATE ([4])",
        ]
    );
    assert_eq!(requested(&got), [member_fp("req/0", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn a_certificate_block_that_is_not_x509_is_skipped_with_the_parser_reason() {
    let good = client("good");
    let not_x509 = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let got = collect_requests(&req(&[(0, list(&[not_x509, &good.cert_pem]))]), now());
    assert_eq!(got.problems.len(), 1);
    let line = got.problems[0].to_string();
    assert!(
        line.starts_with("req/0 (relation 1): client_certificates: 1 entry refused: 1 not a valid X.509 certificate: "),
        "{line}"
    );
    assert!(line.ends_with(" ([0])"), "{line}");
    assert_eq!(requested(&got), [member_fp("req/0", &good)]);
}

#[test]
fn pem_with_text_around_it_is_skipped() {
    let (a, b, good) = (client("a"), client("b"), client("good"));
    let trailing = format!("{}trailing words\n", a.cert_pem);
    let leading = format!("certificate for req/0:\n{}", b.cert_pem);
    let got = collect_requests(&req(&[(0, list(&[&trailing, &leading, &good.cert_pem]))]), now());
    assert_eq!(
        said(&got),
        [
            "req/0 (relation 1): client_certificates: 2 entries refused: 1 text outside the PEM block ([0]); 1 not a PEM certificate ([1])",
        ]
    );
    assert_eq!(requested(&got), [member_fp("req/0", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn whitespace_and_crlf_around_a_certificate_are_not_garbage() {
    let a = client("a");
    let padded = format!("\r\n  {}\r\n\n", a.cert_pem.replace('\n', "\r\n"));
    let got = collect_requests(&req(&[(0, list(&[&padded]))]), now());
    assert!(got.problems.is_empty(), "{:?}", said(&got));
    assert_eq!(requested(&got), [member_fp("req/0", &a)]);
    // Published re-encoded: the padding a requirer sends never reaches what the charm writes.
    assert_eq!(got.requests[0].cert.pem, certs::to_pem(&a.der), "registered_certificates carries canonical PEM");
}

#[test]
fn several_certificates_in_one_string_are_skipped_not_split() {
    let (a, b) = (client("a"), client("b"));
    let bundle = format!("{}{}", a.cert_pem, b.cert_pem);
    // req/0 sends a bundle; req/1 sends `a` properly.
    let got = collect_requests(&req(&[(0, list(&[&bundle])), (1, list(&[&a.cert_pem]))]), now());
    assert_eq!(
        said(&got),
        [
            "req/0 (relation 1): client_certificates: 1 entry refused: 1 2 certificates in one string; send one per list entry ([0])",
        ]
    );
    assert_eq!(requested(&got), [member_fp("req/1", &a)], "neither half of the bundle is taken from req/0");
    // `a` was added earlier under req/0's name; req/1 still wants it, so it stays.
    let store = [entry(scope().entry_name(&unit(1, "req", 0)), a.fingerprint.clone())];
    assert!(plan(&scope(), &got.requests, &store, None).is_empty());
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn a_private_key_or_a_cert_and_key_bundle_is_skipped_and_never_echoed() {
    let (a, good) = (client("a"), client("good"));
    let cert_and_key = format!("{}{}", a.cert_pem, a.key_pem);
    let key_and_cert = format!("{}{}", a.key_pem, a.cert_pem);
    let got = collect_requests(&req(&[(0, list(&[&a.key_pem, &cert_and_key, &key_and_cert, &good.cert_pem]))]), now());
    assert_eq!(
        said(&got),
        [
            "req/0 (relation 1): client_certificates: 3 entries refused: 3 a private key, not a certificate (the key was discarded, not logged) ([0], [1], [2])",
        ],
        "the certificate beside a key is not taken either"
    );
    assert_eq!(requested(&got), [member_fp("req/0", &good)]);
    let shown = format!("{got:?} {}", said(&got).join("\n"));
    for line in a.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!shown.contains(line), "key material in what the charm logs");
    }
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn a_self_signed_ca_certificate_is_taken_like_any_client_certificate() {
    // LXD matches clients by fingerprint; `openssl req -x509` marks its certificates CA:TRUE.
    let (ca, good) = (testcerts::ca_cert("Operator CA").expect("CA").pem, client("good"));
    let got = collect_requests(&req(&[(0, list(&[&ca.cert_pem, &good.cert_pem]))]), now());
    assert!(got.problems.is_empty(), "{:?}", said(&got));
    assert_eq!(requested(&got), [member_fp("req/0", &ca), member_fp("req/0", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn expired_and_not_yet_valid_certificates_are_skipped() {
    let expired = CertSpec::client("old").between_years(2000, 2001).self_signed().expect("expired");
    let future = CertSpec::client("new").between_years(2090, 2091).self_signed().expect("future");
    let good = client("good");
    let got = collect_requests(
        &req(&[(0, list(&[&expired.cert_pem, &future.cert_pem])), (1, list(&[&good.cert_pem]))]),
        now(),
    );
    assert_eq!(
        said(&got),
        ["req/0 (relation 1): client_certificates: 2 entries refused: 1 expired ([0]); 1 not valid yet ([1])",]
    );
    assert_eq!(requested(&got), [member_fp("req/1", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn an_rsa_key_under_2048_bits_is_skipped() {
    let weak = rsa_1024_pem();
    let good = client("good");
    let got = collect_requests(&req(&[(0, list(&[&weak, &good.cert_pem]))]), now());
    assert_eq!(
        said(&got),
        [
            "req/0 (relation 1): client_certificates: 1 entry refused: 1 RSA key of 1024 bits is too weak (LXD requires at least 2048) ([0])",
        ]
    );
    assert_eq!(requested(&got), [member_fp("req/0", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

// ---------------------------------------------------------------------------------------------
// Duplicates

#[test]
fn a_certificate_twice_in_one_list_is_requested_once_without_complaint() {
    let a = client("a");
    let crlf = a.cert_pem.replace('\n', "\r\n");
    let got = collect_requests(&req(&[(0, list(&[&a.cert_pem, &a.cert_pem, &crlf]))]), now());
    assert!(got.problems.is_empty(), "{:?}", said(&got));
    assert_eq!(requested(&got), [member_fp("req/0", &a)]);
    assert_eq!(got.requests[0].cert.pem, a.cert_pem, "the first spelling is kept");
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn a_certificate_two_units_send_is_added_once_and_stays_while_either_sends_it() {
    let a = client("shared");
    let both = collect_requests(&req(&[(0, list(&[&a.cert_pem])), (1, list(&[&a.cert_pem]))]), now());
    assert_eq!(requested(&both), [member_fp("req/0", &a), member_fp("req/1", &a)]);
    let p = plan(&scope(), &both.requests, &[], None);
    assert_eq!(p.add.iter().map(|x| x.name.clone()).collect::<Vec<_>>(), [scope().entry_name(&unit(1, "req", 0))]);

    let store = [entry(scope().entry_name(&unit(1, "req", 0)), a.fingerprint.clone())];
    assert!(plan(&scope(), &both.requests, &store, None).is_empty());
    // req/0 departs: the entry named for it stays, req/1 still wants it.
    let only_second = collect_requests(&req(&[(1, list(&[&a.cert_pem]))]), now());
    assert!(plan(&scope(), &only_second.requests, &store, None).is_empty());
    // req/1 departs as well: now it goes.
    let p = plan(&scope(), &[], &store, None);
    assert_eq!(p.remove.iter().map(|r| &r.fingerprint).collect::<Vec<_>>(), [&a.fingerprint]);
}

#[test]
fn a_certificate_another_application_also_sends_belongs_to_the_first_and_goes_with_it() {
    let (shared, own) = (client("shared"), client("own"));
    let rels = vec![
        relation(1, "req", &[(0, list(&[&shared.cert_pem, &own.cert_pem]))]),
        relation(2, "other", &[(3, list(&[&shared.cert_pem]))]),
    ];
    let got = collect_requests(&rels, now());
    assert!(got.problems.is_empty(), "{:?}", said(&got));
    assert_eq!(requested(&got), [member_fp("req/0", &shared), member_fp("req/0", &own), member_fp("other/3", &shared)]);

    let p = plan(&scope(), &got.requests, &[], None);
    let added: Vec<(String, String)> = p.add.iter().map(|x| (x.fingerprint.clone(), x.name.clone())).collect();
    assert_eq!(
        added,
        [
            (shared.fingerprint.clone(), scope().entry_name(&unit(1, "req", 0))),
            (own.fingerprint.clone(), scope().entry_name(&unit(1, "req", 0)))
        ],
        "added once, named for the first requester"
    );

    // Both relations are told the shared certificate is trusted: the owner's unrestricted grant
    // covers what the other asked.
    let in_store: BTreeSet<String> = [shared.fingerprint.clone(), own.fingerprint.clone()].into();
    let members = vec![("node1".to_string(), "https://10.0.0.1:8443".to_string())];
    // Published once per certificate, ordered by fingerprint.
    let mut both = vec![
        (shared.fingerprint.clone(), certs::to_pem(&shared.der)),
        (own.fingerprint.clone(), certs::to_pem(&own.der)),
    ];
    both.sort();
    let both: Vec<String> = both.into_iter().map(|(_, pem)| pem).collect();
    for (rel, want) in [(1, both), (2, vec![certs::to_pem(&shared.der)])] {
        let bag = payload(rel, &members, &got.requests, &in_store);
        let registered: Vec<String> = serde_json::from_str(&bag[KEY_REGISTERED]).expect("json");
        assert_eq!(registered, want, "relation {rel}");
        let nodes: serde_json::Value = serde_json::from_str(&bag[KEY_NODES]).expect("json");
        assert!(nodes[0]["trusted_certs_fp"].as_array().expect("list").contains(&json!(shared.fingerprint.clone())));
    }

    // Relation 1 is removed: both its entries go, the shared one too (its owner withdrew,
    // whoever else asks); relation 2's request is new once the entry is gone, under its name.
    let store = [
        entry(scope().entry_name(&unit(1, "req", 0)), shared.fingerprint.clone()),
        entry(scope().entry_name(&unit(1, "req", 0)), own.fingerprint.clone()),
    ];
    let left = collect_requests(&rels[1..], now());
    let p = plan(&scope(), &left.requests, &store, None);
    assert!(p.add.is_empty());
    let mut removed: Vec<&String> = p.remove.iter().map(|r| &r.fingerprint).collect();
    removed.sort();
    let mut want = vec![&shared.fingerprint, &own.fingerprint];
    want.sort();
    assert_eq!(removed, want);
    let next = plan(&scope(), &left.requests, &[], None);
    assert_eq!(next.add.iter().map(|a| a.name.clone()).collect::<Vec<_>>(), [scope().entry_name(&unit(2, "other", 3))]);
}

// ---------------------------------------------------------------------------------------------
// Size

#[test]
fn a_thousand_certificates_from_one_unit_are_all_requested() {
    // One key for all (keygen is the slow part); every certificate still differs (CN, serial).
    let key = Key::generate(Curve::P256).expect("keygen");
    let made: Vec<Pem> = (0..1000)
        .map(|i| {
            let spec = CertSpec { serial: Some(i + 1), ..CertSpec::client(&format!("bulk-{i}")) };
            spec.self_signed_with(&key).expect("certificate")
        })
        .collect();
    let pems: Vec<&str> = made.iter().map(|m| m.cert_pem.as_str()).collect();
    let got = collect_requests(&req(&[(0, list(&pems))]), now());
    assert!(got.problems.is_empty(), "{:?}", said(&got));
    assert_eq!(got.requests.len(), 1000);
    let fps: BTreeSet<String> = got.requests.iter().map(|r| r.cert.fingerprint.clone()).collect();
    assert_eq!(fps, made.iter().map(|m| m.fingerprint.clone()).collect());

    let p = plan(&scope(), &got.requests, &[], None);
    assert_eq!(p.add.len(), 1000);
    let bag = payload(1, &Vec::new(), &got.requests, &fps);
    assert_eq!(serde_json::from_str::<Vec<String>>(&bag[KEY_REGISTERED]).expect("json").len(), 1000);
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn a_one_mebibyte_value_is_skipped_with_a_short_reason_and_the_rest_still_counts() {
    const MIB: usize = 1 << 20;
    let good = client("good");
    let not_json = "A".repeat(MIB);
    let junk_entry = "B".repeat(MIB);
    let huge_block = format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", "QUFB".repeat(MIB / 4));
    let got = collect_requests(&req(&[(0, not_json), (1, list(&[&junk_entry, &huge_block, &good.cert_pem]))]), now());
    let lines = said(&got);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "req/0 (relation 1): client_certificates: not valid JSON (1,048,576 bytes; syntax error)");
    assert!(
        lines[1].starts_with("req/1 (relation 1): client_certificates: 2 entries refused: 1 not a PEM certificate ([0]); 1 not a valid X.509 certificate: "),
        "{}",
        lines[1]
    );
    assert!(lines.iter().all(|l| l.len() < 300), "reasons never grow with the value");
    assert_eq!(requested(&got), [member_fp("req/1", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Juju hands databag values over as JSON strings; invalid UTF-8 arrives as U+FFFD.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn non_utf8_bytes_arrive_lossy_and_are_skipped_for_what_they_became() {
    let (a, b, good) = (client("a"), client("b"), client("good"));
    // The whole value: three invalid bytes become three U+FFFD (nine bytes).
    let raw_garbage = lossy(b"\xff\xfe\xfd");
    // Inside a list entry: before the armour, and inside the base64 body.
    let mut before = b"[\"\xff".to_vec();
    before.extend_from_slice(serde_json::to_string(&a.cert_pem).expect("json").trim_matches('"').as_bytes());
    before.extend_from_slice(b"\"]");
    let mut body = b.cert_pem.clone().into_bytes();
    body[40] = 0xff;
    let got = collect_requests(
        &req(&[(0, raw_garbage), (1, lossy(&before)), (2, list(&[&lossy(&body), &good.cert_pem]))]),
        now(),
    );
    assert_eq!(
        said(&got),
        [
            "req/0 (relation 1): client_certificates: not valid JSON (9 bytes; syntax error)",
            "req/1 (relation 1): client_certificates: 1 entry refused: 1 not a PEM certificate ([0])",
            "req/2 (relation 1): client_certificates: 1 entry refused: 1 PEM body is not valid base64 ([0])",
        ]
    );
    assert_eq!(requested(&got), [member_fp("req/2", &good)]);
    assert_owned_and_wanted_entries_stay(&got);
}

#[test]
fn control_characters_are_refused_in_the_armour_and_stripped_from_names() {
    let (a, b, good) = (client("a"), client("b"), client("good"));
    let bell_after = format!("{}\u{7}", a.cert_pem);
    let nul_inside = b.cert_pem.replacen('\n', "\n\u{0}", 2);
    // Raw control characters inside a JSON string are not JSON.
    let raw = "[\"\u{1}\"]".to_string();
    // A certificate whose CN tries terminal escapes: accepted, but the name is cleaned for logs.
    let escapes = client("\u{1b}[31mred\u{7}");
    let got = collect_requests(
        &req(&[(0, list(&[&bell_after, &nul_inside, &escapes.cert_pem, &good.cert_pem])), (1, raw)]),
        now(),
    );
    assert_eq!(
        said(&got),
        [
            "req/0 (relation 1): client_certificates: 2 entries refused: 1 text outside the PEM block ([0]); 1 PEM body is not valid base64 ([1])",
            "req/1 (relation 1): client_certificates: not valid JSON (5 bytes; syntax error)",
        ]
    );
    assert_eq!(requested(&got), [member_fp("req/0", &escapes), member_fp("req/0", &good)]);
    assert_eq!(got.requests[0].cert.common_name, "[31mred");
    assert!(!format!("{:?}", got.requests[0].cert).chars().any(|c| c.is_control()));
    assert_owned_and_wanted_entries_stay(&got);
}

// ---------------------------------------------------------------------------------------------
// Config and credentials

/// The options as `config-get` gives them, parsed as the charm parses them.
fn config(pairs: &[(&str, &str)]) -> Config {
    let values: BTreeMap<String, serde_json::Value> = pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    Config::from_values(&values)
}

struct Tls {
    client: Pem,
    server: Pem,
}

fn tls() -> Tls {
    Tls { client: client("lxd-integrator"), server: client("root@lxd") }
}

fn option_mut<'a>(cfg: &'a mut Config, option: &str) -> &'a mut Option<String> {
    match option {
        OPT_ENDPOINT => &mut cfg.endpoint,
        OPT_CERT => &mut cfg.client_cert,
        OPT_KEY => &mut cfg.client_key,
        _ => &mut cfg.server_cert,
    }
}

fn full_config(t: &Tls, endpoint: &str) -> Config {
    config(&[
        (OPT_ENDPOINT, endpoint),
        (OPT_CERT, t.client.cert_pem.as_str()),
        (OPT_KEY, t.client.key_pem.as_str()),
        (OPT_SERVER_CERT, t.server.cert_pem.as_str()),
    ])
}

fn from_config(cfg: &Config) -> Result<Credentials, CredentialProblem> {
    credentials::resolve(&CredentialAnswer::NotTrusted, None, cfg).0
}

/// What the charm gets when it builds its HTTPS client (no network traffic).
fn connect_error(creds: &Credentials) -> Option<String> {
    HttpLxd::new(&creds.endpoint, &creds.tls).err().map(|e| e.to_string())
}

#[test]
fn a_config_endpoint_that_is_not_a_url_is_named() {
    let t = tls();
    // The message names the option and what is wrong, never the value: it could be a key.
    let cases = [
        (
            "not a url",
            EndpointError::Host,
            "lxd_endpoint has no valid host; set an https URL such as https://10.0.0.1:8443",
        ),
        (
            "ftp://lxd",
            EndpointError::Scheme,
            "lxd_endpoint uses a scheme other than https (LXD speaks https); set an https URL such as https://10.0.0.1:8443",
        ),
        (
            "lxd:99999",
            EndpointError::Port,
            "lxd_endpoint has an invalid port; set an https URL such as https://10.0.0.1:8443",
        ),
        (
            "admin@lxd",
            EndpointError::Host,
            "lxd_endpoint has no valid host; set an https URL such as https://10.0.0.1:8443",
        ),
        (
            "[zz::1]:8443",
            EndpointError::Host,
            "lxd_endpoint has no valid host; set an https URL such as https://10.0.0.1:8443",
        ),
    ];
    for (endpoint, error, text) in cases {
        let got = from_config(&full_config(&t, endpoint)).expect_err(endpoint);
        assert_eq!(got, CredentialProblem::BadEndpoint { origin: Source::Config, error }, "{endpoint}");
        assert_eq!(got.to_string(), text);
    }
    // Blank counts as unset, so the other three alone are an incomplete config.
    let got = from_config(&full_config(&t, "   ")).expect_err("blank");
    assert_eq!(got.to_string(), "config incomplete: set lxd_endpoint");
}

#[test]
fn a_cloud_endpoint_that_is_not_a_url_falls_back_to_config_or_says_why() {
    let t = tls();
    let spec = json!({"type": "lxd", "name": "localhost", "endpoint": "ftp://10.0.0.1",
        "credential": {"auth-type": "certificate", "attrs": {
            "client-cert": t.client.cert_pem, "client-key": t.client.key_pem, "server-cert": t.server.cert_pem}}});
    let answer = CredentialAnswer::Granted(spec);
    // The endpoint is named, not quoted: only its kind of defect is said.
    let why = "endpoint: uses a scheme other than https (LXD speaks https)";

    let (got, note) = credentials::resolve(&answer, None, &config(&[]));
    assert_eq!(
        got.expect_err("unusable").to_string(),
        format!("cloud credential unusable ({why}); set the lxd_* config options")
    );
    assert_eq!(note, None);

    let (got, note) = credentials::resolve(&answer, None, &full_config(&t, "10.0.0.9"));
    let creds = got.expect("config fallback");
    assert_eq!((creds.source, creds.endpoint.url()), (Source::Config, "https://10.0.0.9:8443".to_string()));
    // The key sits in plain config: the note also suggests a secret.
    let expected = format!("cloud credential not usable ({why}); using config; {}", credentials::MOVE_KEY_TO_SECRET);
    assert_eq!(note.as_deref(), Some(expected.as_str()));
}

#[test]
fn malformed_pem_in_config_is_refused_when_the_tls_client_is_built() {
    let t = tls();
    let secret_body = "c2VjcmV0LWtleS1tYXRlcmlhbC1kby1ub3QtbG9n";
    let bad_key = format!("-----BEGIN PRIVATE KEY-----\n{secret_body}!!\n-----END PRIVATE KEY-----\n");
    let cases: [(&str, String, PinError); 5] = [
        (OPT_CERT, "not a pem".into(), PinError::ClientCert("no CERTIFICATE block found".into())),
        (
            OPT_CERT,
            "-----BEGIN CERTIFICATE-----\nAAAA\n".into(),
            PinError::ClientCert("invalid PEM: a BEGIN line without its END line".into()),
        ),
        (OPT_SERVER_CERT, "garbage".into(), PinError::ServerCert("no CERTIFICATE block found".into())),
        (
            OPT_KEY,
            "garbage".into(),
            PinError::ClientKey("no PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY block found".into()),
        ),
        (OPT_KEY, bad_key, PinError::ClientKey("invalid PEM: the body is not valid base64".into())),
    ];
    for (option, value, want) in cases {
        let mut cfg = full_config(&t, "10.0.0.9");
        *option_mut(&mut cfg, option) = Some(value.to_string());
        // resolve only checks presence; the material is judged where it is used.
        let creds = from_config(&cfg).expect("resolve does not parse PEM");
        let got = pin::client_config(&creds.tls).map(drop).expect_err(option);
        assert_eq!(got, want, "{option}");
        let shown = connect_error(&creds).expect("HttpLxd refuses too");
        assert_eq!(shown, format!("client credentials are unusable: {want}"));
        assert!(!shown.contains(secret_body) && !format!("{got:?}").contains(secret_body), "key material echoed");
    }
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused_when_the_tls_client_is_built() {
    let t = tls();
    let stranger = client("stranger");
    let cfg = Config { client_key: Some(stranger.key_pem.clone()), ..full_config(&t, "10.0.0.9") };
    let creds = from_config(&cfg).expect("resolve cannot tell");
    assert_eq!(pin::client_config(&creds.tls).map(drop), Err(PinError::KeyMismatch));
    let err = HttpLxd::new(&creds.endpoint, &creds.tls).expect_err("mismatch");
    assert_eq!(err, LxdError::BadCredentials("the client key does not belong to the client certificate".into()));
    assert_eq!(
        err.to_string(),
        "client credentials are unusable: the client key does not belong to the client certificate"
    );

    // The matching key is fine, so the refusal above is about the pairing, not the formats.
    let creds = from_config(&full_config(&t, "10.0.0.9")).expect("usable");
    assert_eq!(connect_error(&creds), None);
}
