//! Small process helpers: identity of a PID (PID + start time, to survive PID reuse), signals,
//! commands with a deadline, and unmounting what a dead LXD left behind.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat), or None when the
/// process does not exist (or is a zombie: it has exited and only waits to be reaped).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces; fields after it are
    // plain. Field 3 is the state, field 22 the start time.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the process identified by (pid, start time) is still running.
pub fn alive(pid: u32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

pub fn signal(pid: u32, sig: i32) {
    if pid == 0 || pid > i32::MAX as u32 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Poll until `(pid, start)` has gone, up to `timeout`. True when gone.
pub fn wait_gone(pid: u32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid, start) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Stop a process we did not spawn (a leftover): SIGTERM, then SIGKILL after `grace`.
pub fn terminate(pid: u32, start: u64, grace: Duration) {
    if !alive(pid, start) {
        return;
    }
    signal(pid, libc::SIGTERM);
    if !wait_gone(pid, start, grace) {
        signal(pid, libc::SIGKILL);
        wait_gone(pid, start, Duration::from_secs(5));
    }
}

/// Run `cmd`, feeding `stdin`, and give up (killing it) after `timeout`.
pub fn run(cmd: &mut Command, stdin: Option<&str>, timeout: Duration) -> Result<Output> {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {desc}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).with_context(|| format!("writing stdin of {desc}"))?;
    }
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.with_context(|| format!("waiting for {desc}")),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            let partial = rx.recv_timeout(Duration::from_secs(5)).ok().and_then(|r| r.ok());
            let stderr = partial.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_default();
            bail!("timed out after {timeout:?}: {desc}; stderr: {}", stderr.trim())
        }
    }
}

/// Lazily unmount every mount point strictly below `dir` (deepest first). LXD mounts small
/// tmpfs at `shmounts` and `devlxd`; a daemon that was killed leaves them behind, and
/// `remove_dir_all` cannot delete a mounted directory.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for p in points {
        let Ok(c) = std::ffi::CString::new(p) else { continue };
        // SAFETY: c is a valid NUL-terminated path.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as \ooo octal.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The last `lines` lines of a text file, or a note saying why there are none.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            if all.is_empty() { format!("({} is empty)", path.display()) } else { all[start..].join("\n") }
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
