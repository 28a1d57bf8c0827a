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
