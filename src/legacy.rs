//! What the Python charm (canonical/lxd-integrator-operator) left on a unit, removed when this
//! charm takes its place.
//!
//! `juju refresh` deletes only the files the old charm shipped (Juju's manifest deployer removes
//! the old archive's members that the new one lacks); files a charm wrote at run time stay. The
//! Python charm wrote its client key and both certificates next to its code
//! (`src/interface.py`: `$JUJU_CHARM_DIR/client.crt`, `client.key`, `server.crt`, mode 0600,
//! and it only removed them after a successful registration), and `ops` kept its `StoredState`
//! — endpoint, client key and certificates in clear — in `$JUJU_CHARM_DIR/.unit-state.db`
//! (`ops/main.py` `CHARM_STATE_FILE`). This charm keeps credentials in memory only, so left
//! behind those files are a stale copy of a secret that nothing reads and nobody rotates.
//!
//! Only these exact names, only in the charm dir: anything else there is the new charm's or an
//! operator's.

use crate::context::Hook;
use crate::hook_tools::{Juju, LogLevel};
use std::io;
use std::path::Path;

/// The files, by name in the charm dir.
pub(crate) const LEFTOVERS: &[&str] = &["client.crt", "client.key", "server.crt", ".unit-state.db"];

/// Hooks that look for them: `upgrade-charm` is the refresh itself; `install` covers a unit
/// whose charm dir was carried over some other way (a re-run install after a failed one).
pub(crate) const CLEAN_ON: [Hook; 2] = [Hook::Install, Hook::UpgradeCharm];

/// One file that could not be removed. Names the file and the OS's reason, never its content.
#[derive(Debug, thiserror::Error)]
#[error("cannot remove {name}: {source}")]
pub(crate) struct RemoveError {
    pub(crate) name: &'static str,
    #[source]
    pub(crate) source: io::Error,
}

/// What one clean-up did.
#[derive(Debug, Default)]
pub(crate) struct Cleanup {
    pub(crate) removed: Vec<&'static str>,
    pub(crate) failed: Vec<RemoveError>,
}

/// Removes every leftover present in `charm_dir`. A missing file is the normal case, not a
/// failure. `remove_file` unlinks a symlink itself, never what it points to, and refuses a
/// directory, so nothing outside these names goes.
pub(crate) fn remove_leftovers(charm_dir: &Path) -> Cleanup {
    let mut out = Cleanup::default();
    for &name in LEFTOVERS {
        match std::fs::remove_file(charm_dir.join(name)) {
            Ok(()) => out.removed.push(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => out.failed.push(RemoveError { name, source }),
        }
    }
    out
}

/// Removes the leftovers and says so in the Juju log. Never fails the hook: a file that stays
/// is reported (at WARNING, every time, until someone removes it) and the hook goes on to
/// its normal pass, which does not depend on it.
pub(crate) fn clean(juju: &mut Juju, charm_dir: &Path) -> Cleanup {
    let done = remove_leftovers(charm_dir);
    let mut lines = Vec::new();
    if !done.removed.is_empty() {
        lines.push((
            LogLevel::Info,
            format!("removed files the Python lxd-integrator charm left in the charm dir: {}", done.removed.join(", ")),
        ));
    }
    for e in &done.failed {
        lines.push((
            LogLevel::Warning,
            format!("the Python lxd-integrator charm's {e}; remove it by hand, it may hold LXD credentials"),
        ));
    }
    for (level, line) in lines {
        if juju.log(level, &line).is_err() {
            // stderr reaches the unit's log too (at WARNING).
            eprintln!("lxd-integrator: {line}");
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Agent;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("lxd-integrator-legacy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn exactly_the_python_charms_files_go_and_are_named_without_content() {
        let d = dir("exact");
        for name in ["client.crt", "client.key", "server.crt"] {
            write(&d.join(name), "-----BEGIN PRIVATE KEY-----\nsecret\n", 0o600);
        }
        write(&d.join(".unit-state.db"), "SQLite format 3\0secret", 0o644);
        // The new charm's files and an operator's notes stay.
        for keep in ["dispatch", "metadata.yaml", "client.crt.bak", "notes"] {
            write(&d.join(keep), "keep", 0o644);
        }
        std::fs::create_dir(d.join("src")).expect("mkdir");

        let mut agent = Agent::leader();
        let done = clean(&mut Juju::new(&mut agent), &d);
        assert_eq!(done.removed, vec!["client.crt", "client.key", "server.crt", ".unit-state.db"]);
        assert!(done.failed.is_empty(), "{:?}", done.failed);
        for name in LEFTOVERS {
            assert!(!d.join(name).exists(), "{name} still there");
        }
        for keep in ["dispatch", "metadata.yaml", "client.crt.bak", "notes", "src"] {
            assert!(d.join(keep).exists(), "{keep} was removed");
        }
        assert_eq!(agent.logs.len(), 1, "{:?}", agent.logs);
        assert!(agent.logs[0].contains("client.crt, client.key, server.crt, .unit-state.db"), "{:?}", agent.logs);
        assert_eq!(agent.calls_containing("secret").count(), 0);

        // Run again: nothing there, nothing logged.
        let again = clean(&mut Juju::new(&mut agent), &d);
        assert!(again.removed.is_empty() && again.failed.is_empty());
        assert_eq!(agent.logs.len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlink_goes_but_not_its_target_and_a_directory_is_a_logged_failure() {
        let d = dir("odd");
        let outside = dir("odd-target").join("kept.key");
        write(&outside, "secret", 0o600);
        std::os::unix::fs::symlink(&outside, d.join("client.key")).expect("symlink");
        std::fs::create_dir(d.join("server.crt")).expect("mkdir");

        let mut agent = Agent::leader();
        let done = clean(&mut Juju::new(&mut agent), &d);
        assert_eq!(done.removed, vec!["client.key"]);
        assert!(outside.exists(), "the link's target must stay");
        assert_eq!(done.failed.len(), 1);
        assert_eq!(done.failed[0].name, "server.crt");
        assert!(d.join("server.crt").is_dir());
        assert_eq!(agent.logs.len(), 2, "{:?}", agent.logs);
        assert!(agent.logs[1].contains("cannot remove server.crt"), "{:?}", agent.logs);
        let _ = std::fs::remove_dir_all(&d);
        let _ = outside.parent().map(std::fs::remove_dir_all);
    }
}
