//! Tools run at once whose output is taken as it arrives (`HookTools::stream_reads`), with the
//! bytes read and not yet done with capped across all of them.

use super::{Read, StreamFn, ToolError, spawn_error};
use std::collections::BTreeSet;
use std::io::{self, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Output read from the tools running at once and not yet done with: what a pass holds of what
/// requirers send, whatever they send. A read that is done (its sink kept what it needed) gives
/// its bytes back.
pub(super) const BYTES_IN_FLIGHT: usize = 4 * 1024 * 1024;
/// One read from a tool's pipe: what a pipe holds.
const CHUNK: usize = 64 * 1024;

/// The bytes held by the reads running at once.
pub(super) struct Budget {
    cap: usize,
    held: Mutex<Held>,
    freed: Condvar,
}

#[derive(Default)]
struct Held {
    bytes: usize,
    /// The reads started and not done, by index.
    running: BTreeSet<usize>,
}

impl Budget {
    pub(super) fn new(cap: usize) -> Budget {
        Budget { cap, held: Mutex::new(Held::default()), freed: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts read `i`: what it reads from `inner` counts until the meter is dropped.
    fn meter<R>(&self, i: usize, inner: R) -> Meter<'_, R> {
        self.lock().running.insert(i);
        Meter { budget: self, i, inner, held: 0 }
    }

    /// Waits until read `i` may read more: while the bytes held are under the cap, or when it is
    /// the first read still running, which never waits. So the reads cannot all wait for each
    /// other: the first one always finishes, and gives back what it held. (A tool blocked on its
    /// full pipe holds nothing another tool waits for: the agent answered it before it writes.)
    fn wait_for_room(&self, i: usize) {
        let mut held = self.lock();
        while held.bytes >= self.cap && held.running.first() != Some(&i) {
            held = self.freed.wait(held).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn took(&self, n: usize) {
        self.lock().bytes += n;
    }

    fn done(&self, i: usize, n: usize) {
        let mut held = self.lock();
        held.bytes = held.bytes.saturating_sub(n);
        held.running.remove(&i);
        drop(held);
        self.freed.notify_all();
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// A tool's stdout, counted against the budget.
struct Meter<'b, R> {
    budget: &'b Budget,
    i: usize,
    inner: R,
    held: usize,
}

impl<R: io::Read> io::Read for Meter<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.budget.wait_for_room(self.i);
        let n = self.inner.read(buf)?;
        self.held += n;
        self.budget.took(n);
        Ok(n)
    }
}

impl<R> Drop for Meter<'_, R> {
    fn drop(&mut self) {
        self.budget.done(self.i, self.held);
    }
}

/// Runs read `i` and hands its stdout to `each` as it arrives. Its stderr is read on a thread of
/// its own, so a tool that writes much of it can never stall on a pipe nobody reads.
pub(super) fn run(i: usize, read: &Read, budget: &Budget, each: &StreamFn) -> Result<(), ToolError> {
    let tool = read.tool;
    let io_error = |source| ToolError::Io { tool: tool.to_string(), source };
    let mut child = Command::new(tool)
        .args(&read.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(tool, e))?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        return Err(io_error(io::Error::other("no pipe to the tool")));
    };
    let (taken, errors) = std::thread::scope(|s| {
        let errors = s.spawn(move || {
            let mut text = Vec::new();
            io::Read::read_to_end(&mut stderr, &mut text).map(|_| text)
        });
        let mut input = BufReader::with_capacity(CHUNK, budget.meter(i, stdout));
        let taken = each(i, &mut input);
        // What `each` left (it stopped at an error) is read and dropped, so the tool can exit.
        let _ = io::copy(&mut input.get_mut().inner, &mut io::sink());
        drop(input);
        (taken, errors.join())
    });
    let status = child.wait().map_err(io_error)?;
    let stderr = match errors {
        Ok(read) => read.map_err(io_error)?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    match status.code() {
        Some(0) => taken,
        code => Err(ToolError::Failed {
            tool: tool.to_string(),
            code: code.unwrap_or(-1),
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn reads_past_the_cap_wait_for_the_first_and_never_all_wait() {
        let budget = Budget::new(100);
        let peak = AtomicUsize::new(0);
        let order: Vec<usize> = (0..6).collect();
        let sizes = crate::parallel::map_bounded(&order, 6, |&i| {
            let data = vec![b'x'; 80 + i];
            let mut meter = budget.meter(i, data.as_slice());
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            loop {
                let n = meter.read(&mut buf).expect("reads");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                peak.fetch_max(budget.bytes(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(200));
            }
            got.len()
        });
        assert_eq!(sizes, (0..6).map(|i| 80 + i).collect::<Vec<_>>());
        // Each read may take one chunk past the cap before it waits.
        assert!(peak.load(Ordering::SeqCst) <= 100 + 6 * 16, "{}", peak.load(Ordering::SeqCst));
        assert_eq!(budget.bytes(), 0, "all given back");
    }
}
