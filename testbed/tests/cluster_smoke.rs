//! Starts real 3-member LXD and Incus clusters. Fails (never skips) when a server cannot start.

use std::time::{Duration, Instant};

use testbed::{LxdCluster, ServerKind, certs};

fn status_of(cluster: &LxdCluster, name: &str) -> String {
    let members = cluster.members().expect("listing members");
    members
        .iter()
        .find(|m| m["server_name"] == name)
        .and_then(|m| m["status"].as_str())
        .unwrap_or_else(|| panic!("{name} not in {members:?}"))
        .to_string()
}

#[test]
fn three_member_cluster_lifecycle() {
    lifecycle(ServerKind::Lxd);
}

#[test]
fn three_member_incus_cluster_lifecycle() {
    lifecycle(ServerKind::Incus);
}

fn lifecycle(kind: ServerKind) {
    let mut cluster = LxdCluster::start_kind(kind, 3).expect("starting a 3-member cluster");
    assert_eq!(cluster.kind(), kind);
    eprintln!("start(3) took {:?}", cluster.startup_time());
    let run_dir = cluster.run_dir().to_path_buf();

    // Membership and addresses.
    assert_eq!(cluster.member_names(), ["node1", "node2", "node3"]);
    let members = cluster.members().expect("members");
    assert_eq!(members.len(), 3);
    for (i, m) in members.iter().enumerate() {
        assert_eq!(m["status"], "Online", "{m}");
        let name = m["server_name"].as_str().expect("server_name");
        let idx = cluster.member_names().iter().position(|n| n == name).expect("known member");
        assert_eq!(m["url"], format!("https://{}", cluster.endpoint(idx)), "member {i}: {m}");
    }
    let ep = cluster.endpoint(0);
    assert!(ep.starts_with("127.") && !ep.starts_with("127.0.") && ep.ends_with(":8443"), "{ep}");

    // The pinned certificate is the shared cluster cert, as GET /1.0 reports it.
    let info = cluster.query("GET", "/1.0", None).expect("GET /1.0");
    assert_eq!(info["environment"]["server_clustered"], true);
    assert_eq!(info["environment"]["server"], kind.name());
    let version = cluster.server_version().expect("version");
    let series = match kind {
        ServerKind::Lxd => "5.0.",
        ServerKind::Incus => "6.0.",
    };
    assert!(version.starts_with(series), "{kind} {version}");
    let reported = info["environment"]["certificate"].as_str().expect("certificate");
    assert_eq!(
        certs::fingerprint_pem(reported).expect("fp"),
        certs::fingerprint_pem(cluster.cluster_cert_pem()).expect("fp")
    );

    // The admin identity is trusted; trust add/remove round trip.
    let trust = cluster.trust_list().expect("trust list");
    assert!(trust.iter().any(|c| c["fingerprint"] == cluster.admin().fingerprint.as_str()), "{trust:?}");
    let client = certs::client_cert("smoke-client").expect("cert");
    let fp = cluster.trust_add("smoke-client", &client.cert_pem).expect("trust add");
    assert_eq!(fp, client.fingerprint);
    let entry = cluster
        .trust_list()
        .expect("trust list")
        .into_iter()
        .find(|c| c["fingerprint"] == fp.as_str())
        .expect("added entry is listed");
    assert_eq!(entry["name"], "smoke-client");
    assert_eq!(entry["type"], "client");
    cluster.trust_remove(&fp).expect("trust remove");
    assert!(!cluster.trust_list().expect("trust list").iter().any(|c| c["fingerprint"] == fp.as_str()));

    // Failure and recovery of a member.
    let t = Instant::now();
    cluster.stop_member(2).expect("stop node3");
    assert!(!cluster.is_running(2));
    cluster.wait_member_status(2, "Offline", Duration::from_secs(60)).expect("node3 Offline");
    eprintln!("node3 seen Offline {:?} after stop", t.elapsed());
    assert_eq!(status_of(&cluster, "node3"), "Offline");
    // The trust store still works with a member down.
    let fp2 = cluster.trust_add("while-degraded", &client.cert_pem).expect("trust add while degraded");
    let t = Instant::now();
    cluster.start_member(2).expect("restart node3");
    eprintln!("node3 Online again {:?} after restart", t.elapsed());
    assert_eq!(status_of(&cluster, "node3"), "Online");
    // The restarted member sees the entry added while it was down.
    let seen = cluster.query_on(2, "GET", &format!("/1.0/certificates/{fp2}"), None).expect("get on node3");
    assert_eq!(seen["name"], "while-degraded");

    drop(cluster);
    assert!(!run_dir.exists(), "{} left behind", run_dir.display());
}

#[test]
fn standalone_server_is_not_clustered() {
    standalone(ServerKind::Lxd);
}

#[test]
fn standalone_incus_server_is_not_clustered() {
    standalone(ServerKind::Incus);
}

fn standalone(kind: ServerKind) {
    let cluster = LxdCluster::start_standalone_kind(kind).expect("starting a standalone server");
    eprintln!("start_standalone() took {:?}", cluster.startup_time());
    let info = cluster.query("GET", "/1.0", None).expect("GET /1.0");
    assert_eq!(info["environment"]["server_clustered"], false);
    let err = cluster.members().expect_err("members of a non-clustered server");
    assert!(format!("{err:#}").contains("not clustered"), "{err:#}");
}

#[test]
fn stopping_the_first_member_keeps_the_cluster_usable() {
    let mut cluster = LxdCluster::start(3).expect("starting a 3-member LXD cluster");
    // node1 bootstrapped the cluster and is the database leader.
    let t = Instant::now();
    cluster.stop_member(0).expect("stop node1");
    let client = certs::client_cert("after-leader-loss").expect("cert");
    let fp = cluster.trust_add("after-leader-loss", &client.cert_pem).expect("trust add without node1");
    eprintln!("trust add {:?} after stopping node1", t.elapsed());
    assert!(cluster.trust_list().expect("list").iter().any(|c| c["fingerprint"] == fp.as_str()));
    cluster.wait_member_status(0, "Offline", Duration::from_secs(60)).expect("node1 Offline");
    cluster.start_member(0).expect("restart node1");
    let seen = cluster.query_on(0, "GET", &format!("/1.0/certificates/{fp}"), None).expect("get on node1");
    assert_eq!(seen["name"], "after-leader-loss");
}

#[test]
fn crash_restart_and_cleanup_on_panic() {
    crash_restart_and_cleanup(ServerKind::Lxd);
}

#[test]
fn incus_crash_restart_and_cleanup_on_panic() {
    crash_restart_and_cleanup(ServerKind::Incus);
}

fn crash_restart_and_cleanup(kind: ServerKind) {
    let mut holder = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut cluster = LxdCluster::start_kind(kind, 1).expect("starting a 1-member cluster");
        cluster.kill_member(0).expect("crash node1");
        cluster.start_member(0).expect("restart node1 after a crash");
        assert_eq!(status_of(&cluster, "node1"), "Online");
        let pid = cluster.pid(0).expect("running");
        holder = Some((cluster.run_dir().to_path_buf(), pid));
        panic!("deliberate panic with a live cluster");
    }));
    assert!(result.is_err());
    let (run_dir, pid) = holder.expect("cluster was started");
    assert!(!run_dir.exists(), "{} left behind after a panic", run_dir.display());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "{kind} daemon {pid} still running");
}
