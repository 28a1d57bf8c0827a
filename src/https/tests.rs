use super::*;
use crate::certs::{self, test_certs};
use crate::relation::changed_keys_among;
use crate::requests::fixtures::bag;

fn ceiling(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A relation on `https` with `gw` on the other side.
fn view(id: u32, units: Vec<(&str, Databag)>, app_data: Databag) -> RelationView {
    RelationView {
        id,
        interface: Interface::LxdHttps,
        remote_app: "gw".into(),
        units: units.into_iter().map(|(u, b)| (u.to_string(), b)).collect(),
        app_data,
    }
}

/// What charm-lxd's https-client writes: `version` and `certificate`, nothing else.
fn sends(pem: &str) -> Databag {
    bag(&[(KEY_VERSION, VERSION.into()), (KEY_CERTIFICATE, pem.into())])
}

fn with_projects(pem: &str, projects: &str) -> Databag {
    bag(&[(KEY_VERSION, VERSION.into()), (KEY_CERTIFICATE, pem.into()), (KEY_PROJECTS, projects.into())])
}

fn within(ceiling: Option<&[String]>) -> Bounds<'_> {
    Bounds { ceiling, cannot_restrict: false }
}

fn read(views: &[RelationView], limit: Option<&[String]>) -> Requests {
    collect(views, certs::now_unix(), &Protected::default(), within(limit))
}

fn said(got: &Requests) -> Vec<String> {
    got.problems.iter().map(|p| p.to_string()).collect()
}

#[test]
fn a_unit_only_requirer_gets_one_request_per_unit() {
    let (a, b) = (test_certs::self_signed("a"), test_certs::self_signed("b"));
    let got = read(&[view(5, vec![("gw/0", sends(&a.cert_pem)), ("gw/1", sends(&b.cert_pem))], Databag::new())], None);
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    let who: Vec<(String, Interface, Option<Vec<String>>)> =
        got.requests.iter().map(|r| (r.owner.member(), r.owner.interface, r.projects.clone())).collect();
    assert_eq!(who, [("gw/0".into(), Interface::LxdHttps, None), ("gw/1".into(), Interface::LxdHttps, None)]);
    assert_eq!(got.requests[0].cert.pem, certs::to_pem(&a.der), "canonical PEM, as for client_certificates");
}

#[test]
fn both_bags_are_read_application_first_and_one_certificate_is_one_fingerprint() {
    // The OpenShell gateway writes the same certificate and projects into both bags.
    let shared = test_certs::self_signed("gateway");
    let both = with_projects(&shared.cert_pem, "sandboxes");
    let got = read(&[view(5, vec![("gw/0", both.clone()), ("gw/1", both.clone())], both)], None);
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    let members: Vec<String> = got.requests.iter().map(|r| r.owner.member()).collect();
    assert_eq!(members, ["gw", "gw/0", "gw/1"], "the application's bag comes first: it names the entry");
    let fps: BTreeSet<&String> = got.requests.iter().map(|r| &r.cert.fingerprint).collect();
    assert_eq!(fps.len(), 1);
    assert!(got.requests.iter().all(|r| r.projects == Some(vec!["sandboxes".to_string()])));
}

#[test]
fn a_databag_without_version_1_0_is_ignored_and_named_without_its_value() {
    let a = test_certs::self_signed("a");
    let secretish = "2.0-with-a-secret-in-it";
    let views = [view(
        5,
        vec![
            ("gw/0", bag(&[(KEY_CERTIFICATE, a.cert_pem.clone())])),
            ("gw/1", bag(&[(KEY_VERSION, secretish.into()), (KEY_CERTIFICATE, a.cert_pem.clone())])),
            // Only Juju's own keys: not spoken to yet, so not named.
            ("gw/2", bag(&[("private-address", "10.0.0.9".into()), ("ingress-address", "10.0.0.9".into())])),
        ],
        Databag::new(),
    )];
    let got = read(&views, None);
    assert!(got.requests.is_empty());
    assert_eq!(
        said(&got),
        [
            "gw/0 (relation https:5): version: missing; this databag is ignored",
            "gw/1 (relation https:5): version: not \"1.0\", the version served; this databag is ignored",
        ]
    );
    assert!(!said(&got).concat().contains(secretish));
}

#[test]
fn certificate_problems_are_those_of_client_certificates_said_of_one_value() {
    let good = test_certs::self_signed("good");
    let key_only = test_certs::self_signed("leaked");
    let own = test_certs::self_signed("integrator");
    let mut protected = Protected::default();
    protected.fingerprints.insert(certs::fingerprint(&own.der), "the integrator's own credential certificate");
    let views = [view(
        5,
        vec![
            ("gw/0", sends("not a certificate")),
            ("gw/1", sends(&key_only.key_pem)),
            ("gw/2", bag(&[(KEY_VERSION, VERSION.into())])),
            ("gw/3", sends(&own.cert_pem)),
            ("gw/4", sends(&format!("{}{}", " \n".repeat(1000), good.cert_pem))),
        ],
        Databag::new(),
    )];
    let got = collect(&views, certs::now_unix(), &protected, within(None));
    assert_eq!(
        said(&got),
        [
            "gw/0 (relation https:5): certificate: not a PEM certificate",
            "gw/1 (relation https:5): certificate: a private key, not a certificate (the key was discarded, not logged)",
            "gw/2 (relation https:5): certificate: missing",
            "gw/3 (relation https:5): certificate: the integrator's own credential certificate; never added or removed for a requirer",
        ]
    );
    assert!(!said(&got).concat().contains("PRIVATE"));
    assert_eq!(got.requests.iter().map(|r| r.owner.member()).collect::<Vec<_>>(), ["gw/4"]);
}

#[test]
fn a_certificate_over_the_bound_is_refused_whole() {
    let huge = "x".repeat(crate::limits::CLIENT_CERTS_BYTES + 1);
    let got = read(&[view(5, vec![("gw/0", sends(&huge))], Databag::new())], None);
    assert_eq!(
        said(&got),
        ["gw/0 (relation https:5): certificate: too large (16,777,217 bytes; at most 16,777,216 are read)"]
    );
}

#[test]
fn api_relations_are_not_read_here_nor_https_ones_as_client_certificates() {
    let a = test_certs::self_signed("a");
    let api = RelationView { interface: Interface::Lxd, ..view(3, vec![("gw/0", sends(&a.cert_pem))], Databag::new()) };
    assert!(read(&[api], None).requests.is_empty());
    let https = view(
        5,
        vec![("gw/0", bag(&[("client_certificates", serde_json::json!([a.cert_pem]).to_string())]))],
        Databag::new(),
    );
    assert!(crate::requests::collect(&[https], certs::now_unix(), &Protected::default()).requests.is_empty());
}

#[test]
fn projects_are_read_as_charm_lxd_splits_them() {
    let p = |raw: &str| projects(Some(raw), within(None)).grant;
    assert_eq!(p("a, b,a,,c "), Grant::Projects(ceiling(&["a", "b", "c"])));
    assert_eq!(p("default"), Grant::Projects(ceiling(&["default"])));
    assert_eq!(projects(None, within(None)).grant, Grant::AsConfigured);
    assert_eq!(p("   "), Grant::AsConfigured, "blank is as if absent");
    // Not blank, yet naming nothing: never read as "unrestricted".
    let none = projects(Some(" , ,"), within(None));
    assert_eq!(none.grant, Grant::Nothing);
    assert_eq!(
        none.refusal().as_deref(),
        Some("names no project; nothing left to grant, so the certificate is not trusted")
    );
}

#[test]
fn trust_projects_is_a_ceiling_never_widened() {
    let limit = ceiling(&["default", "sandboxes"]);
    let inside = projects(Some("sandboxes"), within(Some(&limit)));
    assert_eq!((inside.grant.clone(), inside.refusal()), (Grant::Projects(ceiling(&["sandboxes"])), None));
    let partly = projects(Some("sandboxes,prod"), within(Some(&limit)));
    assert_eq!(partly.grant, Grant::Projects(ceiling(&["sandboxes"])));
    assert_eq!(partly.refusal().as_deref(), Some("prod not in trust-projects, refused"));
    let outside = projects(Some("prod, staging"), within(Some(&limit)));
    assert_eq!(outside.grant, Grant::Nothing);
    assert_eq!(
        outside.refusal().as_deref(),
        Some("prod, staging not in trust-projects, refused; nothing left to grant, so the certificate is not trusted")
    );
    assert_eq!(
        projects(None, within(Some(&limit))).grant,
        Grant::AsConfigured,
        "no projects asked: trust-projects applies"
    );
}

#[test]
fn a_project_value_that_is_not_a_project_name_is_counted_never_shown() {
    let key = test_certs::self_signed("k").key_pem;
    let limit = ceiling(&["default"]);
    for bound in [None, Some(limit.as_slice())] {
        let got = projects(Some(&format!("default,{key},has space")), within(bound));
        assert_eq!(got.grant, Grant::Projects(ceiling(&["default"])));
        let why = got.refusal().unwrap_or_default();
        assert_eq!(why, "2 names are not a project name, refused (not shown)");
    }
    let only_bad = projects(Some(&key), within(None));
    assert_eq!(only_bad.grant, Grant::Nothing);
    assert!(!only_bad.refusal().unwrap_or_default().contains("PRIVATE"));
    let huge = projects(Some(&"a,".repeat(PROJECTS_BYTES)), within(None));
    assert_eq!(huge.grant, Grant::Nothing);
    assert!(huge.refusal().unwrap_or_default().starts_with("too large (131,072 bytes; at most 65,536 are read)"));
}

#[test]
fn without_certificate_project_a_requirer_asking_for_projects_is_not_trusted_at_all() {
    let old_lxd = Bounds { ceiling: None, cannot_restrict: true };
    let got = projects(Some("sandboxes"), old_lxd);
    assert_eq!(got.grant, Grant::Nothing);
    assert_eq!(
        got.refusal().as_deref(),
        Some(
            "LXD lacks the certificate_project extension, so no entry can be restricted to projects; nothing left to grant, so the certificate is not trusted"
        )
    );
    assert_eq!(projects(None, old_lxd).grant, Grant::AsConfigured, "asking for none is served as on any LXD");
}

#[test]
fn a_requirer_whose_projects_are_all_refused_asks_for_nothing() {
    let a = test_certs::self_signed("a");
    let limit = ceiling(&["default"]);
    let views = [view(
        5,
        vec![
            ("gw/0", with_projects(&a.cert_pem, "prod")),
            ("gw/1", with_projects(&test_certs::self_signed("b").cert_pem, "default,prod")),
        ],
        Databag::new(),
    )];
    let got = read(&views, Some(&limit));
    assert_eq!(
        got.requests.iter().map(|r| (r.owner.member(), r.projects.clone())).collect::<Vec<_>>(),
        [("gw/1".to_string(), Some(ceiling(&["default"])))]
    );
    assert_eq!(
        said(&got),
        [
            "gw/0 (relation https:5): projects: prod not in trust-projects, refused; nothing left to grant, so the certificate is not trusted",
            "gw/1 (relation https:5): projects: prod not in trust-projects, refused",
        ]
    );
}

fn members() -> OnlineMembers {
    vec![
        ("node1".into(), "https://10.0.0.1:8443".into()),
        ("node2".into(), "https://[fd00::2]:8443".into()),
        ("node3".into(), "https://lxd3.example:9443".into()),
    ]
}

#[test]
fn the_payload_is_charm_lxds_with_the_pinned_certificate() {
    let server = test_certs::self_signed("root@lxd");
    let pin = ServerPin::from_pinned(&server.cert_pem).expect("pin");
    let bag = payload(&members(), served(Some(&pin), true)).bag;
    assert_eq!(bag[KEY_VERSION], "1.0");
    assert_eq!(bag[KEY_CERTIFICATE], certs::to_pem(&server.der));
    assert_eq!(bag[KEY_CERTIFICATE_FP], certs::fingerprint(&server.der));
    // charm-lxd: `member.url.replace("https://", "")` joined with ",".
    assert_eq!(bag[KEY_ADDRESSES], "10.0.0.1:8443,[fd00::2]:8443,lxd3.example:9443");
    assert_eq!(bag.len(), 4);
}

#[test]
fn nothing_is_published_before_lxd_trusts_a_certificate_or_without_a_pin() {
    let pin = ServerPin::from_pinned(&test_certs::self_signed("root@lxd").cert_pem).expect("pin");
    assert!(payload(&members(), served(Some(&pin), false)).bag.is_empty());
    assert!(payload(&members(), served(None, true)).bag.is_empty());
    assert!(payload(&Vec::new(), served(Some(&pin), true)).bag.is_empty(), "no member to name");
    // Withdrawn: every provider key deleted, Juju's own left alone.
    let mut have = payload(&members(), served(Some(&pin), true)).bag;
    have.insert("private-address".into(), "10.1.2.3".into());
    let diff = changed_keys_among(&have, &Databag::new(), &PROVIDER_KEYS);
    assert_eq!(diff.keys().collect::<Vec<_>>(), [KEY_ADDRESSES, KEY_CERTIFICATE, KEY_CERTIFICATE_FP, KEY_VERSION]);
    assert!(diff.values().all(String::is_empty));
}

#[test]
fn only_this_relations_certificates_count_as_trusted_here() {
    let a = test_certs::self_signed("a");
    let got = read(&[view(5, vec![("gw/0", sends(&a.cert_pem))], Databag::new())], None);
    let held: BTreeSet<String> = [certs::fingerprint(&a.der)].into();
    assert!(any_trusted(5, &got.requests, &held));
    assert!(!any_trusted(6, &got.requests, &held));
    assert!(!any_trusted(5, &got.requests, &BTreeSet::new()));
}

#[test]
fn addresses_past_the_databag_bound_are_counted_not_written() {
    let pin = ServerPin::from_pinned(&test_certs::self_signed("root@lxd").cert_pem).expect("pin");
    let many: OnlineMembers =
        (0..400_000).map(|i| (format!("n{i}"), format!("https://node-{i:07}.example:8443"))).collect();
    let p = payload(&many, served(Some(&pin), true));
    assert!(bag_bytes(&p.bag) <= PUBLISHED_BYTES);
    assert!(p.withheld > 0);
    assert_eq!(p.bag[KEY_ADDRESSES].split(',').count() + p.withheld, many.len());
}

fn schema(file: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas").join(file);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).expect("schema JSON");
    jsonschema::validator_for(&doc).expect("a valid schema")
}

fn as_json(bag: &Databag) -> serde_json::Value {
    serde_json::to_value(bag).expect("a map of strings")
}

#[test]
fn the_payload_matches_docs_schemas_https_provider_json() {
    let provider = schema("https-provider.json");
    let pin = ServerPin::from_pinned(&test_certs::self_signed("root@lxd").cert_pem).expect("pin");
    let mut bag = payload(&members(), served(Some(&pin), true)).bag;
    bag.insert("private-address".into(), "10.1.2.3".into());
    assert!(
        provider.is_valid(&as_json(&bag)),
        "{:?}",
        provider.iter_errors(&as_json(&bag)).map(|e| e.to_string()).collect::<Vec<_>>()
    );
    assert!(
        provider.is_valid(&as_json(&payload(&members(), served(Some(&pin), false)).bag)),
        "nothing published yet is valid"
    );
    for key in [KEY_VERSION, KEY_CERTIFICATE, KEY_CERTIFICATE_FP, KEY_ADDRESSES] {
        let mut partial = bag.clone();
        partial.remove(key);
        assert!(!provider.is_valid(&as_json(&partial)), "the four keys come together: {key}");
    }
    let mut told = bag.clone();
    told.insert(KEY_PROJECT.into(), "p1".into());
    told.insert(KEY_REFUSED.into(), r#"[{"fingerprint":"00","reason":"expired"}]"#.into());
    assert!(!provider.is_valid(&as_json(&told)), "a refused fingerprint is 64 hex digits");
    told.insert(KEY_REFUSED.into(), format!(r#"[{{"fingerprint":"{}","reason":"expired"}}]"#, "0".repeat(64)));
    assert!(
        provider.is_valid(&as_json(&told)),
        "{:?}",
        provider.iter_errors(&as_json(&told)).map(|e| e.to_string()).collect::<Vec<_>>()
    );
    let refused_only: Databag =
        told.iter().filter(|(k, _)| *k == KEY_REFUSED).map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(provider.is_valid(&as_json(&refused_only)), "a relation with nothing trusted is still told why");
    let mut schemed = bag.clone();
    schemed.insert(KEY_ADDRESSES.into(), "https://10.0.0.1:8443".into());
    assert!(!provider.is_valid(&as_json(&schemed)), "no scheme in addresses");
}

#[test]
fn what_the_test_requirers_send_matches_docs_schemas_https_requirer_json() {
    let requirer = schema("https-requirer.json");
    let pem = test_certs::self_signed("a").cert_pem;
    assert!(requirer.is_valid(&as_json(&sends(&pem))));
    assert!(requirer.is_valid(&as_json(&with_projects(&pem, "sandboxes, default"))));
    assert!(!requirer.is_valid(&as_json(&with_projects(&pem, "has space"))));
    assert!(!requirer.is_valid(&as_json(&bag(&[(KEY_CERTIFICATE, pem.clone())]))), "version is required");
    assert!(!requirer.is_valid(&as_json(&bag(&[(KEY_VERSION, "2.0".into()), (KEY_CERTIFICATE, pem)]))));
}

fn served(certificate: Option<&ServerPin>, trusted: bool) -> Served<'_> {
    Served { certificate, trusted, ..Served::default() }
}
