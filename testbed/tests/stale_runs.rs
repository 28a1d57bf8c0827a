//! Leftovers of crashed runs are removed, live runs are not.

#[test]
fn stale_runs_are_removed_only_when_their_owner_is_dead() {
    // 127.255.* is never allocated by the fixture (X is 1..=254).
    let base = std::env::temp_dir().join("lxd-testbed");
    std::fs::create_dir_all(&base).expect("base");
    let dead = base.join(format!("127.255.{}", std::process::id() % 128));
    let live = base.join(format!("127.255.{}", 128 + std::process::id() % 128));
    let mut child = std::process::Command::new("true").spawn().expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait");
    for (dir, owner) in [(&dead, format!("{dead_pid} 1\n")), (&live, format!("{} 0\n", std::process::id()))] {
        std::fs::create_dir_all(dir.join("n1")).expect("mkdir");
        std::fs::write(dir.join("owner"), owner).expect("owner");
    }
    // Our own start time, so the live owner really is alive.
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let start = stat[stat.rfind(')').expect(")") + 1..].split_whitespace().nth(19).expect("field").to_string();
    std::fs::write(live.join("owner"), format!("{} {start}\n", std::process::id())).expect("owner");

    testbed::remove_stale_runs().expect("cleanup");
    assert!(!dead.exists(), "run of a dead owner was kept");
    assert!(live.exists(), "run of a live owner was removed");
    std::fs::remove_dir_all(&live).expect("tidy");
}

/// A dead owner's Incus daemon is stopped with its run; an Incus daemon of someone else (its
/// `INCUS_DIR` outside the run) is left running.
#[test]
fn a_dead_runs_incus_daemon_is_stopped_and_no_other() {
    use std::os::unix::process::CommandExt;
    let Some(incusd) =
        ["/usr/libexec/incus/incusd", "/opt/incus/bin/incusd"].into_iter().find(|p| std::path::Path::new(p).is_file())
    else {
        panic!("incusd is not installed (scripts/setup installs it)");
    };
    let base = std::env::temp_dir().join("lxd-testbed");
    let run = base.join(format!("127.255.{}", 64 + std::process::id() % 64));
    let other = std::env::temp_dir().join(format!("not-a-testbed-run-{}", std::process::id()));
    let mut child = std::process::Command::new("true").spawn().expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("wait");
    std::fs::create_dir_all(run.join("n1")).expect("mkdir");
    std::fs::write(run.join("owner"), format!("{dead_pid} 1\n")).expect("owner");
    std::fs::create_dir_all(&other).expect("mkdir");
    let spawn = |dir: &std::path::Path| {
        let mut cmd = std::process::Command::new(incusd);
        cmd.args(["--group", "root", "--logfile"])
            .arg(dir.join("log"))
            .env("INCUS_DIR", dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: setsid() is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        cmd.spawn().expect("spawn incusd")
    };
    let mut ours = spawn(&run.join("n1"));
    let mut theirs = spawn(&other);

    testbed::remove_stale_runs().expect("cleanup");
    let stopped = ours.try_wait().expect("try_wait").is_some() || {
        std::thread::sleep(std::time::Duration::from_secs(1));
        ours.try_wait().expect("try_wait").is_some()
    };
    let other_alive = theirs.try_wait().expect("try_wait").is_none();
    // A clean stop, so it leaves no mount behind in `other`.
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(theirs.id() as i32, libc::SIGTERM);
    }
    let _ = theirs.wait();
    let _ = ours.kill();
    let _ = ours.wait();
    let _ = std::fs::remove_dir_all(&other);
    assert!(stopped, "the dead run's incusd still runs");
    assert!(!run.exists(), "the dead run was kept");
    assert!(other_alive, "an incusd outside any run was stopped");
}
