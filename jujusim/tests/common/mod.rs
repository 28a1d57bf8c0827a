//! Helpers for the simulator's integration tests: temp dirs and small bash charms.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use jujusim::{HookRecord, Sim};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory removed on drop (kept when JUJUSIM_KEEP is set).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("jujusim-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("JUJUSIM_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn new_sim(tmp: &TempDir) -> Sim {
    Sim::with_binary(tmp.path().join("sim"), "test-model", env!("CARGO_BIN_EXE_jujusim")).unwrap()
}

/// The generic test dispatch: logs every hook (with relation-list/relation-ids in relation
/// hooks) to `events.log`, then sources `on-<hook>.sh` and `on-any.sh` if present; runs
/// `probe.sh` (and exits with its status) on update-status when present.
pub const DISPATCH: &str = r#"#!/bin/bash
set -u
hook="${JUJU_DISPATCH_PATH#*/}"
log="$JUJU_CHARM_DIR/events.log"
case "$JUJU_DISPATCH_PATH" in
  hooks/*-relation-*)
    echo "$hook remote=${JUJU_REMOTE_UNIT} app=${JUJU_REMOTE_APP} departing=${JUJU_DEPARTING_UNIT:-} list=[$(relation-list | tr '\n' ' ')] ids=[$(relation-ids "${JUJU_RELATION}" | tr '\n' ' ')]" >> "$log";;
  *) echo "$hook" >> "$log";;
esac
if [ "$JUJU_DISPATCH_PATH" = "hooks/update-status" ] && [ -f "$JUJU_CHARM_DIR/probe.sh" ]; then
  bash "$JUJU_CHARM_DIR/probe.sh"
  exit $?
fi
if [ -f "$JUJU_CHARM_DIR/on-$hook.sh" ]; then . "$JUJU_CHARM_DIR/on-$hook.sh"; fi
if [ -f "$JUJU_CHARM_DIR/on-any.sh" ]; then . "$JUJU_CHARM_DIR/on-any.sh"; fi
exit 0
"#;

/// Builds a charm directory: metadata, optional config/actions YAML, the generic dispatch,
/// and `on-<hook>.sh` snippets.
pub struct CharmBuilder {
    pub dir: PathBuf,
}

impl CharmBuilder {
    pub fn new(parent: &Path, name: &str, metadata_extra: &str) -> CharmBuilder {
        let dir = parent.join(format!("charm-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("metadata.yaml"),
            format!("name: {name}\nsummary: test\ndescription: test\n{metadata_extra}"),
        )
        .unwrap();
        let b = CharmBuilder { dir };
        b.file("dispatch", DISPATCH, true);
        b
    }
    pub fn config(self, yaml: &str) -> Self {
        self.file("config.yaml", yaml, false);
        self
    }
    pub fn actions(self, yaml: &str) -> Self {
        self.file("actions.yaml", yaml, false);
        self
    }
    pub fn on(self, hook: &str, script: &str) -> Self {
        self.file(&format!("on-{hook}.sh"), script, false);
        self
    }
    pub fn file(&self, rel: &str, content: &str, exec: bool) -> &Self {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        if exec {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        self
    }
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// Runs `script` (bash) in an update-status hook of `unit` and returns that hook's record.
pub fn probe(sim: &mut Sim, unit: &str, script: &str) -> HookRecord {
    let dir = sim.unit_dir(unit).unwrap();
    std::fs::write(dir.join("probe.sh"), script).unwrap();
    sim.run_hook(unit, "update-status").unwrap();
    std::fs::remove_file(dir.join("probe.sh")).unwrap();
    sim.hooks().unwrap().into_iter().rev().find(|h| h.unit == unit && h.hook == "update-status").unwrap()
}

/// The events.log lines of a unit.
pub fn events(sim: &Sim, unit: &str) -> Vec<String> {
    let p = sim.unit_dir(unit).unwrap().join("events.log");
    std::fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect()
}

pub const PROVIDER_META: &str = "provides:\n  api:\n    interface: lxd\npeers:\n  cluster:\n    interface: lxd-peers\n";
pub const REQUIRER_META: &str = "requires:\n  lxd:\n    interface: lxd\n";
