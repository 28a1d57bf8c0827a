//! A timeline of the pass, for profiling a hook from the inside (`make bench`, docs/benchmarks.md):
//! when `LXD_INTEGRATOR_TIMELINE` names a file, every `mark` appends one line to it, the
//! wall clock in microseconds since the Unix epoch (comparable with `strace -tt` and the
//! simulator's records), the thread, and what happened. Juju never sets the variable: then a
//! mark costs one check of a value read once.

use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The variable naming the file.
pub(crate) const VAR: &str = "LXD_INTEGRATOR_TIMELINE";

fn file() -> Option<&'static File> {
    static FILE: OnceLock<Option<File>> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os(VAR).filter(|p| !p.is_empty())?;
        std::fs::OpenOptions::new().create(true).append(true).open(path).ok()
    })
    .as_ref()
}

/// Notes `what` now, when the timeline is on.
pub(crate) fn mark(what: &str) {
    mark_of(what, "");
}

/// Notes `what` of `subject` (`config-get` `done`) now, when the timeline is on: nothing is
/// formatted when it is off.
pub(crate) fn mark_of(subject: &str, what: &str) {
    let Some(mut file) = file() else { return };
    let us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let thread = std::thread::current();
    let name = thread.name().map_or_else(|| format!("{:?}", thread.id()), str::to_string);
    // One write per line, to a file opened for appending: lines of several threads never mix.
    let line =
        if what.is_empty() { format!("{us} {name} {subject}\n") } else { format!("{us} {name} {subject} {what}\n") };
    let _ = file.write_all(line.as_bytes());
}
