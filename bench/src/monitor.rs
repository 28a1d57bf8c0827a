//! Counts the LXD API requests a given client certificate makes, from LXD's own log.
//!
//! LXD logs `Handling API request` at debug level with the caller's certificate fingerprint as
//! `username`. The test cluster's daemons do not run with `--debug`, but `lxc monitor
//! --type=logging --loglevel=debug` streams debug records to a listener anyway, so nothing
//! in the request path changes (no proxy, no extra hop). Counting is synchronised with a
//! sentinel request: after a hook, a `GET /1.0?bench-sentinel=K` over the unix socket is sent and
//! the count is read once the monitor has seen it.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use testbed::LxdCluster;

#[derive(Default)]
struct State {
    /// Requests by the watched fingerprint.
    count: usize,
    /// Highest sentinel seen.
    sentinel: u64,
}

pub struct Monitor {
    child: Child,
    state: Arc<(Mutex<State>, Condvar)>,
    next_sentinel: u64,
}

impl Monitor {
    pub fn start(cluster: &LxdCluster, member: usize, fingerprint: &str) -> Result<Monitor> {
        let home = cluster.run_dir().join("home");
        let mut child = Command::new("lxc")
            .args(["monitor", "--type=logging", "--loglevel=debug"])
            .env("LXD_DIR", cluster.lxd_dir(member))
            .env("HOME", &home)
            .env("LXD_CONF", home.join(".config/lxc"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting `lxc monitor`")?;
        let stdout = child.stdout.take().context("monitor stdout")?;
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let st = state.clone();
        let fp = fingerprint.to_string();
        std::thread::spawn(move || {
            // One YAML document per record; `type: logging` is its last top-level line.
            let mut doc = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let end = line.starts_with("type:");
                doc.push_str(&line);
                doc.push('\n');
                if !end {
                    continue;
                }
                if doc.contains("Handling API request") {
                    let (lock, cv) = &*st;
                    let mut s = lock.lock().unwrap();
                    if doc.contains(&fp) {
                        s.count += 1;
                    }
                    if let Some(i) = doc.find("bench-sentinel=") {
                        let digits: String = doc[i + 15..].chars().take_while(char::is_ascii_digit).collect();
                        if let Ok(n) = digits.parse::<u64>() {
                            s.sentinel = s.sentinel.max(n);
                        }
                        cv.notify_all();
                    }
                }
                doc.clear();
            }
        });
        let mut m = Monitor { child, state, next_sentinel: 0 };
        // The monitor's own event-listener connection takes a moment to be registered.
        let t = Instant::now();
        loop {
            match m.sync_timeout(cluster, member, Duration::from_millis(500)) {
                Ok(_) => break,
                Err(_) if t.elapsed() < Duration::from_secs(15) => continue,
                Err(e) => return Err(e.context("`lxc monitor` never showed a debug request record")),
            }
        }
        Ok(m)
    }

    /// The number of requests counted so far, once everything sent before this call is in.
    pub fn sync(&mut self, cluster: &LxdCluster, member: usize) -> Result<usize> {
        self.sync_timeout(cluster, member, Duration::from_secs(20))
    }

    fn sync_timeout(&mut self, cluster: &LxdCluster, member: usize, timeout: Duration) -> Result<usize> {
        self.next_sentinel += 1;
        let n = self.next_sentinel;
        cluster.query_on(member, "GET", &format!("/1.0?bench-sentinel={n}"), None)?;
        let (lock, cv) = &*self.state;
        let deadline = Instant::now() + timeout;
        let mut s = lock.lock().unwrap();
        while s.sentinel < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("sentinel {n} not seen in LXD's debug log within {timeout:?}");
            }
            s = cv.wait_timeout(s, left).unwrap().0;
        }
        Ok(s.count)
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
