use super::*;
use crate::lxd::ServerKind;

fn raw(name: &str, url: &str, status: &str) -> Member {
    Member { name: name.into(), url: url.into(), status: status.into(), message: String::new() }
}

fn raw_server(name: &str, version: &str) -> ServerInfo {
    ServerInfo {
        trusted: true,
        kind: ServerKind::Lxd,
        server_name: name.into(),
        server_version: version.into(),
        clustered: true,
        ..ServerInfo::default()
    }
}

#[test]
fn members_of_real_lxd_and_incus_clusters_are_all_kept() {
    let raw = vec![
        raw("node1", "https://10.0.0.1:8443", "Online"),
        raw("lxd-2.maas", "https://[fd42:1::2]:8443", "Evacuated"),
        raw("Micro_Cloud-03", "https://micro3.example.com:8443", "Offline"),
        raw("inçus-4", "https://10.0.0.4:8443", "Evacuating"),
        raw(&"n".repeat(limits::MEMBER_NAME_BYTES), "https://10.0.0.5:8443", "Blocked"),
    ];
    let checked = members(raw.clone());
    assert_eq!(checked.kept, raw);
    assert!(checked.problems.is_empty(), "{:?}", checked.problems);
}

#[test]
fn a_member_with_a_bad_name_is_skipped_and_named_escaped() {
    let raw = vec![
        raw("node1", "https://10.0.0.1:8443", "Online"),
        raw("evil\nline", "https://10.0.0.2:8443", "Online"),
        raw("", "https://10.0.0.3:8443", "Online"),
        raw("a b", "https://10.0.0.4:8443", "Online"),
    ];
    let checked = members(raw);
    assert_eq!(checked.kept.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["node1"]);
    assert_eq!(
        checked.problems,
        [
            "LXD cluster member 2 of 4 (\"evil?line\") skipped: its name holds a control, space, slash or invisible character",
            "LXD cluster member 3 of 4 (\"\") skipped: it has no name",
            "LXD cluster member 4 of 4 (\"a?b\") skipped: its name holds a control, space, slash or invisible character",
        ]
    );
}

#[test]
fn an_oversized_name_is_skipped_and_shown_cut() {
    let long = "x".repeat(1024 * 1024);
    let checked = members(vec![raw(&long, "https://10.0.0.1:8443", "Online")]);
    assert!(checked.kept.is_empty());
    let [line] = checked.problems.as_slice() else { panic!("{:?}", checked.problems) };
    assert!(line.len() < 200 && line.contains("longer than 255 bytes"), "{line}");
}

#[test]
fn invisible_and_slashed_names_are_refused() {
    for name in ["admin\u{202E}nimda", "zero\u{200B}width", "a/b", "tab\there", "\u{FEFF}bom"] {
        assert_eq!(member_name(name), Err(MemberProblem::NameCharacters), "{name:?}");
    }
}

#[test]
fn urls_must_be_bounded_https_endpoints_and_are_kept_canonical() {
    let ok = |url: &str| member(raw("m", url, "Online")).map(|m| m.url);
    assert_eq!(ok("https://10.0.0.1:8443"), Ok("https://10.0.0.1:8443".into()));
    assert_eq!(ok("https://LXD1.Example.com:8443/1.0?x#y"), Ok("https://lxd1.example.com:8443".into()));
    assert_eq!(ok("https://[FD42::1]"), Ok("https://[fd42::1]:8443".into()));
    assert_eq!(ok("http://10.0.0.1:8443"), Err(MemberProblem::Url(EndpointError::Scheme)));
    assert_eq!(ok(""), Err(MemberProblem::Url(EndpointError::Empty)));
    assert_eq!(ok("https://a b:8443"), Err(MemberProblem::Url(EndpointError::Host)));
    let longest = format!("https://{}:65535", "a".repeat(253));
    assert_eq!(ok(&longest), Ok(longest.clone()));
    assert_eq!(ok(&format!("{longest}/")), Err(MemberProblem::LongUrl));
}

#[test]
fn statuses_must_be_one_short_word() {
    let status = |s: &str| member(raw("m", "https://10.0.0.1:8443", s)).map(|m| m.status);
    for good in ["Online", "Offline", "Evacuated", "Blocked", "Broken", "Evacuating", "Restoring", "Upgrading"] {
        assert_eq!(status(good), Ok(MemberStatus::from(good)));
    }
    for bad in ["", "On line", "Online\n", &"A".repeat(33), "Ön"] {
        assert_eq!(status(bad), Err(MemberProblem::Status), "{bad:?}");
    }
}

#[test]
fn a_message_is_kept_on_one_bounded_line() {
    let mut m = raw("m", "https://10.0.0.1:8443", "Offline");
    m.message = format!("No heartbeat\n{}", "z".repeat(10_000));
    let kept = member(m).expect("kept");
    assert!(kept.message.starts_with("No heartbeat z") && kept.message.len() <= limits::MEMBER_MESSAGE_BYTES);
}

#[test]
fn duplicate_names_keep_the_first() {
    let checked = members(vec![
        raw("node1", "https://10.0.0.1:8443", "Online"),
        raw("node1", "https://10.0.0.66:8443", "Online"),
    ]);
    assert_eq!(checked.kept.len(), 1);
    assert_eq!(checked.kept[0].url, "https://10.0.0.1:8443");
    assert!(checked.problems[0].contains("same name"), "{:?}", checked.problems);
}

#[test]
fn the_member_count_is_bounded_and_the_rest_counted_in_few_lines() {
    let good: Vec<Member> = (0..10_000)
        .map(|i| raw(&format!("n{i}"), &format!("https://10.0.{}.{}:8443", i / 250, i % 250), "Online"))
        .collect();
    let bad: Vec<Member> = (0..50).map(|i| raw(&format!("bad {i}"), "https://10.1.0.1:8443", "Online")).collect();
    let checked = members(bad.into_iter().chain(good).collect());
    assert_eq!(checked.kept.len(), limits::MEMBERS);
    assert_eq!(checked.kept[0].name, "n0");
    assert_eq!(checked.problems.len(), limits::PROBLEMS_NAMED + 2, "{:?}", checked.problems);
    assert_eq!(checked.problems[3], "… and 47 more LXD cluster members skipped");
    assert_eq!(checked.problems[4], format!("{} LXD cluster members past the first 256 skipped", 10_000 - 256));
}

#[test]
fn a_version_that_is_not_plain_is_unknown() {
    for good in ["5.0.2", "5.21.3", "6.9", "4.0.9", "3.0.3", "6.0.4+git20250101", "5.0.2-1ubuntu1"] {
        assert_eq!(version(good), good);
    }
    let huge = "5".repeat(200_000);
    for bad in ["", "v5.0", "5.0 LTS", "5.0\n--help", &huge, "latest", "5.0.2;rm"] {
        assert_eq!(version(bad), UNKNOWN_VERSION, "{bad:?}");
    }
}

#[test]
fn the_server_s_facts_are_checked_and_a_bad_name_is_named_not_used() {
    let (info, problems) = server(raw_server("node1", "5.21.3"));
    assert_eq!((info.server_name.as_str(), info.server_version.as_str(), problems.len()), ("node1", "5.21.3", 0));
    let (info, problems) = server(raw_server("bad\u{1b}[31mname", &"9".repeat(100)));
    assert_eq!((info.server_name.as_str(), info.server_version.as_str()), ("", UNKNOWN_VERSION));
    assert_eq!(
        problems,
        [
            "LXD's server name (\"bad?[31mname\") is not used: its name holds a control, space, slash or invisible character"
        ]
    );
    let (info, problems) = server(ServerInfo {
        addresses: vec!["10.0.0.1:8443".into(), "x".repeat(10_000), "[::1]:8443".into()],
        ..raw_server("", "")
    });
    assert_eq!(info.addresses, ["10.0.0.1:8443", "[::1]:8443"]);
    assert!(problems.is_empty(), "no name is not a problem: a standalone server may have none");
}

#[test]
fn failover_endpoints_are_few_and_canonical() {
    let urls: Vec<String> = (0..100).map(|i| format!("https://10.0.0.{i}:8443/")).collect();
    let kept = failover(std::iter::once(&"garbage url".to_string()).chain(&urls));
    assert_eq!(kept.len(), limits::FAILOVER_ENDPOINTS);
    assert_eq!(kept[0], "https://10.0.0.0:8443");
}
