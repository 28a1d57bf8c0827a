//! When Incus cannot start, `start_kind` says why (with the tail of the daemon's output) instead
//! of skipping. One test per binary: it changes PATH for the whole process, and a fake `incusd`
//! on PATH is found before the packaged one.

use std::os::unix::fs::PermissionsExt;

use testbed::{LxdCluster, ServerKind};

#[test]
fn incus_start_failure_reports_the_daemon_output() {
    let fake = std::env::temp_dir().join(format!("testbed-fake-incus-{}", std::process::id()));
    std::fs::create_dir_all(&fake).expect("fake bin dir");
    for tool in ["incusd", "incus"] {
        let path = fake.join(tool);
        std::fs::write(&path, "#!/bin/sh\necho \"fake $0: cannot open the database\" >&2\nexit 1\n")
            .expect("write fake tool");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap_or_default());
    // SAFETY: this test binary runs this single test; no other thread reads the environment.
    unsafe { std::env::set_var("PATH", path) };

    let err = match LxdCluster::start_kind(ServerKind::Incus, 2) {
        Ok(_) => panic!("a fake incusd cannot make a cluster"),
        Err(e) => format!("{e:#}"),
    };
    let _ = std::fs::remove_dir_all(&fake);
    eprintln!("{err}");
    assert!(err.contains("incusd for node1 exited during start-up"), "{err}");
    assert!(err.contains("cannot open the database"), "{err}");
}
