//! The packed artifact, not only the source tree: unzip the `.charm` with an independent tool
//! (Info-ZIP's `unzip`, as Juju's own expander keeps modes and symlinks), check what it holds,
//! and run its hooks in the simulator against the real cluster.
//!
//! `make test` builds the static release charm first and names it in `LXD_INTEGRATOR_CHARM`;
//! without it the test packs the binary cargo built for the tests.

use crate::bed::{Bed, I0, REQUIRER, unit};
use anyhow::{Context, Result, bail, ensure};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use testbed::certs;

pub fn all() -> Vec<(&'static str, crate::Scenario)> {
    vec![("p1_the_packed_charm_unzips_with_its_modes_and_works_end_to_end", p1_packed_charm_works)]
}

/// The `.charm` under test: `LXD_INTEGRATOR_CHARM`, or the test binary packed by xtask.
pub fn artifact(bed: &Bed) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("LXD_INTEGRATOR_CHARM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(path.is_file(), "LXD_INTEGRATOR_CHARM={} does not exist (run `make charm`)", path.display());
        return Ok(path);
    }
    let out = bed.work.join("packed");
    Ok(xtask::pack(Path::new(env!("CARGO_BIN_EXE_lxd-integrator")), &out)?)
}

/// Unzips `charm` into `<work>/<name>` (emptied first).
pub fn unpack(bed: &Bed, charm: &Path, name: &str) -> Result<PathBuf> {
    let dir = bed.work.join(name);
    unzip(charm, &dir)?;
    Ok(dir)
}

/// Unzips `charm` into `dir` (replacing it) with Info-ZIP's `unzip`.
pub fn unzip(charm: &Path, dir: &Path) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    let out = Command::new("unzip")
        .arg("-q")
        .arg(charm)
        .arg("-d")
        .arg(dir)
        .output()
        .context("running unzip (apt-get install unzip)")?;
    if !out.status.success() {
        bail!("unzip {}: {}", charm.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn p1_packed_charm_works(bed: &mut Bed) -> Result<()> {
    let charm = artifact(bed)?;
    let dir = unpack(bed, &charm, "unpacked")?;
    for file in ["metadata.yaml", "config.yaml", "actions.yaml", "manifest.yaml", "README.md", "LICENSE", "dispatch"] {
        ensure!(dir.join(file).is_file(), "{file} missing from {}", charm.display());
    }
    let mode = std::fs::metadata(dir.join("dispatch"))?.permissions().mode();
    ensure!(mode & 0o777 == 0o755, "dispatch mode {:o}", mode & 0o777);
    for hook in ["install", "update-status", "api-relation-changed", "api-relation-broken", "leader-elected"] {
        let link = std::fs::read_link(dir.join("hooks").join(hook))
            .with_context(|| format!("hooks/{hook} is not a symlink"))?;
        ensure!(link == Path::new("../dispatch"), "hooks/{hook} -> {}", link.display());
    }
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml"))?;
    for channel in xtask::BASES {
        ensure!(manifest.contains(&format!("channel: '{channel}'")), "manifest.yaml lacks ubuntu {channel}");
    }

    // Deploy what was unpacked, through dispatch (Juju >= 2.8) ...
    let mut w = bed.world("packed")?;
    w.charm_override = Some(dir.clone());
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    let rel = w.relate()?;
    let a = certs::client_cert("packed-a")?;
    w.send(&unit(REQUIRER, 0), &[&a.cert_pem])?;
    ensure!(w.owned_fps()? == [a.fingerprint.clone()].into(), "{:?}", w.owned());
    ensure!(w.registered(rel, I0)? == std::slice::from_ref(&a.cert_pem));
    let (status, message) = w.status(I0)?;
    ensure!(status == "active", "{status}: {message}");
    w.check()?;
    drop(w);

    // ... and through the hooks/ symlinks alone, as Juju before 2.8 runs a charm.
    std::fs::remove_file(dir.join("dispatch")).ok();
    let hooks_only = bed.work.join("unpacked-hooks-only");
    let _ = std::fs::remove_dir_all(&hooks_only);
    std::fs::rename(&dir, &hooks_only)?;
    let out = Command::new("unzip")
        .arg("-q")
        .arg("-o")
        .arg(&charm)
        .arg("dispatch")
        .arg("-d")
        .arg(bed.work.join("bin"))
        .output()?;
    ensure!(out.status.success(), "unzip dispatch");
    // Without a `dispatch` file Juju runs hooks/<name>; the symlinks then need their target
    // under another name, so point them at the binary directly.
    let binary = bed.work.join("bin/dispatch");
    for entry in std::fs::read_dir(hooks_only.join("hooks"))? {
        let path = entry?.path();
        std::fs::remove_file(&path)?;
        std::os::unix::fs::symlink(&binary, &path)?;
    }
    let mut w = bed.world("packed-hooks")?;
    w.charm_override = Some(hooks_only);
    w.deploy_integrator(1, true)?;
    w.deploy_requirer(1)?;
    w.relate()?;
    let b = certs::client_cert("packed-b")?;
    w.send(&unit(REQUIRER, 0), &[&b.cert_pem])?;
    ensure!(w.owned_fps()? == [b.fingerprint.clone()].into(), "{:?}", w.owned());
    ensure!(w.status(I0)?.0 == "active");
    ensure!(
        w.sim.hooks()?.iter().any(|h| h.unit == I0 && h.hook == "install" && h.ran),
        "install ran via hooks/install"
    );
    w.check()
}
