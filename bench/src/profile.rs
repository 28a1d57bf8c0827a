//! Where a steady hook's time goes, from the inside: the charm's own timeline
//! (`LXD_INTEGRATOR_TIMELINE`, src/timeline.rs) of several runs of one hook, each mark placed
//! by its offset from the charm's `main`, medians over the runs.
//!
//! The simulator gives a hook a clean environment, as Juju does, so the variable is set by a
//! wrapper put in place of the unit's `dispatch` for these runs only: a `sh` that sets it and
//! `exec`s the charm. The wrapper's own start is outside `main`, and so outside every offset.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use jujusim::Sim;

/// One mark of the timeline: what it says, on which thread, and when in each run.
struct Mark {
    what: String,
    thread: String,
    at_ms: Vec<f64>,
}

/// The timelines of `runs` runs of one hook.
pub struct Profile {
    pub title: String,
    marks: Vec<Mark>,
    /// The hook as the simulator timed it (with the wrapper's `sh`), per run.
    hook_ms: Vec<f64>,
    /// Runs left out: they did more than the most common shape of run.
    other: usize,
}

/// Runs `hook` on `unit` `runs` times with the timeline on, and reads the marks.
pub fn record(sim: &mut Sim, unit: &str, hook: &str, runs: usize, title: &str) -> Result<Profile> {
    let dispatch = sim.unit_dir(unit)?.join("dispatch");
    let real = dispatch.with_file_name("dispatch.bench-real");
    let file = dispatch.with_file_name("bench-timeline.txt");
    std::fs::rename(&dispatch, &real)?;
    let ran = wrap_and_run(sim, unit, hook, runs, (&dispatch, &real, &file));
    std::fs::rename(&real, &dispatch)?;
    let hook_ms = ran?;
    let text = std::fs::read_to_string(&file).context("reading the timeline")?;
    std::fs::remove_file(&file)?;
    let (marks, other) = marks(&text)?;
    ensure!(other < runs, "no run of {hook} had a timeline");
    Ok(Profile { title: title.to_string(), marks, hook_ms, other })
}

fn wrap_and_run(sim: &mut Sim, unit: &str, hook: &str, runs: usize, paths: (&Path, &Path, &Path)) -> Result<Vec<f64>> {
    let (dispatch, real, file) = paths;
    let script = format!("#!/bin/sh\nLXD_INTEGRATOR_TIMELINE='{}' exec '{}' \"$@\"\n", file.display(), real.display());
    std::fs::write(dispatch, script)?;
    std::fs::set_permissions(dispatch, std::fs::Permissions::from_mode(0o755))?;
    let mut hook_ms = Vec::new();
    for _ in 0..runs {
        let before = sim.hooks()?.len();
        sim.run_hook(unit, hook)?;
        let recs = sim.hooks()?.split_off(before);
        let rec = recs.iter().find(|h| h.unit == unit && h.hook == hook && h.ran).context("the hook did not run")?;
        ensure!(!rec.failed(), "{hook} failed: {}", rec.stderr.trim());
        hook_ms.push(rec.duration_ms);
    }
    std::fs::remove_file(dispatch)?;
    Ok(hook_ms)
}

/// One run's marks: text, thread, ms after `main`.
type Run = Vec<(String, String, f64)>;

/// The runs (each starts at `main`), and of them those of the most common shape only: a run
/// that did more (a full pass after all) is not the steady hook. Marks are ordered by median
/// offset; the n-th mark of the same text on the same thread is the same mark in every run.
fn marks(text: &str) -> Result<(Vec<Mark>, usize)> {
    let mut runs: Vec<Run> = Vec::new();
    let mut start = 0u64;
    for line in text.lines() {
        let mut fields = line.splitn(3, ' ');
        let (Some(us), Some(thread), Some(what)) = (fields.next(), fields.next(), fields.next()) else { continue };
        let us: u64 = us.parse().context("a timeline line without its time")?;
        if what == "main" {
            start = us;
            runs.push(Vec::new());
        }
        let thread = if thread == "main" { "main" } else { "LXD" };
        let at = us.saturating_sub(start) as f64 / 1e3;
        runs.last_mut().context("a mark before `main`")?.push((what.to_string(), thread.to_string(), at));
    }
    // The threads' marks interleave differently from run to run: a shape is the sorted marks.
    let shape = |r: &Run| {
        let mut s = r.iter().map(|(w, t, _)| (w.clone(), t.clone())).collect::<Vec<_>>();
        s.sort();
        s
    };
    let mut shapes: Vec<Vec<(String, String)>> = runs.iter().map(shape).collect();
    shapes.sort();
    let common = shapes.iter().max_by_key(|s| shapes.iter().filter(|o| o == s).count()).cloned().unwrap_or_default();
    let kept: Vec<&Run> = runs.iter().filter(|r| shape(r) == common).collect();
    let mut marks: Vec<Mark> = Vec::new();
    for run in &kept {
        let mut sorted = (*run).clone();
        sorted.sort_by(|a, b| (&a.0, &a.1, a.2).partial_cmp(&(&b.0, &b.1, b.2)).unwrap_or(std::cmp::Ordering::Equal));
        for (i, (what, thread, at)) in sorted.into_iter().enumerate() {
            match marks.get_mut(i) {
                Some(m) => m.at_ms.push(at),
                None => marks.push(Mark { what, thread, at_ms: vec![at] }),
            }
        }
    }
    marks.sort_by(|a, b| median(&a.at_ms).total_cmp(&median(&b.at_ms)));
    Ok((marks, runs.len() - kept.len()))
}

fn median(v: &[f64]) -> f64 {
    crate::stat(v).0
}

impl Profile {
    /// A table of the marks: when each happened after `main` (median, min–max) and the time
    /// since the previous mark of its thread.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "**{}**: the charm's timeline, {} runs ({} left out: they did more); ms after the charm's `main` (median, min–max). The hook as the simulator timed it (with the wrapper's `sh`, all runs): {} ms.\n",
            self.title,
            self.hook_ms.len() - self.other,
            self.other,
            crate::fmt_stat(&self.hook_ms, 2)
        );
        let _ = writeln!(o, "| mark | thread | at ms | since the thread's previous mark |");
        let _ = writeln!(o, "|---|---|---|---|");
        for (i, m) in self.marks.iter().enumerate() {
            let previous = self.marks[..i].iter().rev().find(|p| p.thread == m.thread);
            let since = previous.map_or(String::from("–"), |p| format!("{:.2}", median(&m.at_ms) - median(&p.at_ms)));
            let _ = writeln!(o, "| {} | {} | {} | {since} |", m.what, m.thread, crate::fmt_stat(&m.at_ms, 2));
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_the_same_shape_align_whatever_the_threads_interleaving_and_a_longer_run_is_left_out() {
        let text = "\
1000 main main
1100 main config-get
1400 ThreadId(2) observe
1500 main config-get
2000 main exit
5000 main main
5100 main config-get
5150 main config-get
5200 ThreadId(3) observe
7000 main exit
9000 main main
9100 main config-get
9200 main config-get
9300 ThreadId(2) observe
9400 main state-set
20000 main exit
";
        let (marks, left_out) = marks(text).expect("marks");
        assert_eq!(left_out, 1);
        let at: Vec<(&str, &str, usize)> =
            marks.iter().map(|m| (m.what.as_str(), m.thread.as_str(), m.at_ms.len())).collect();
        assert_eq!(
            at,
            [
                ("main", "main", 2),
                ("config-get", "main", 2),
                ("observe", "LXD", 2),
                ("config-get", "main", 2),
                ("exit", "main", 2)
            ]
        );
        // The second config-get of each run is the same mark: 0.5 and 0.15 ms after main.
        assert_eq!(marks[3].at_ms, [0.5, 0.15]);
    }
}
