//! Packaging of the `lxd-integrator` charm without charmcraft.
//!
//! A `.charm` is a zip of the charm directory. This crate builds that directory from the
//! charm binary and the project's YAML files, then zips it keeping Unix modes and symlinks:
//!
//! ```text
//! metadata.yaml config.yaml actions.yaml manifest.yaml README.md LICENSE
//! dispatch                      the charm binary, mode 0755
//! hooks/<hook>   -> ../dispatch  (symlinks, for Juju < 2.8 which ignores dispatch)
//! actions/<name> -> ../dispatch
//! ```
//!
//! The project files are embedded at compile time (`include_str!`), so
//! [`assemble_charm_dir`] works from any working directory, e.g. from a test that has just
//! built the binary. Cargo rebuilds this crate whenever one of those files changes.
//!
//! `manifest.yaml` follows the shape charmcraft 4.x writes (`charmcraft-version`,
//! `charmcraft-started-at`, `bases`, `analysis.attributes`); see [`manifest_yaml`].

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The charm's name, as in metadata.yaml.
pub const CHARM_NAME: &str = "lxd-integrator";

/// metadata.yaml, embedded.
pub const METADATA_YAML: &str = include_str!("../../metadata.yaml");
/// config.yaml, embedded.
pub const CONFIG_YAML: &str = include_str!("../../config.yaml");
/// actions.yaml, embedded.
pub const ACTIONS_YAML: &str = include_str!("../../actions.yaml");
/// README.md, embedded (shipped in the charm, shown by Charmhub).
pub const README_MD: &str = include_str!("../../README.md");
/// LICENSE (Apache-2.0), embedded.
pub const LICENSE: &str = include_str!("../../LICENSE");

/// Ubuntu releases the charm runs on. The binary is static (musl), so one package serves all:
/// the releases the original Python charm supported (xenial, bionic, focal) and the later LTSs.
/// Juju 2.9 maps each channel to a series (16.04 -> xenial, 18.04 -> bionic, ...); Juju 3.x
/// deploys only on 20.04 and later and passes over the older two.
pub const BASES: &[&str] = &["16.04", "18.04", "20.04", "22.04", "24.04"];

/// The charmcraft release whose `manifest.yaml` format this crate reproduces. Written as
/// `charmcraft-version`, with a comment saying the file was not written by charmcraft.
pub const CHARMCRAFT_FORMAT_VERSION: &str = "4.5.0";

/// Hooks every machine charm may receive, besides relation hooks. `secret-changed` comes when
/// the operator updates the credentials secret (Juju >= 3.3; older agents never run it).
const UNIT_HOOKS: &[&str] = &[
    "install",
    "start",
    "config-changed",
    "upgrade-charm",
    "update-status",
    "leader-elected",
    "leader-settings-changed",
    "secret-changed",
    "stop",
    "remove",
];

/// Relation hook suffixes, in the order Juju fires them.
const RELATION_HOOK_SUFFIXES: &[&str] =
    &["relation-created", "relation-joined", "relation-changed", "relation-departed", "relation-broken"];

/// The endpoint names declared under `provides`, `requires` and `peers` in metadata.yaml.
pub fn relation_endpoints() -> Vec<String> {
    let mut endpoints = Vec::new();
    let mut in_relations = false;
    for line in METADATA_YAML.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            in_relations = matches!(line.trim_end(), "provides:" | "requires:" | "peers:");
            continue;
        }
        if in_relations {
            // Endpoint names are the keys indented by exactly two spaces.
            let rest = &line[2..];
            if !rest.starts_with(' ')
                && let Some((key, _)) = rest.split_once(':')
            {
                endpoints.push(key.trim().to_string());
            }
        }
    }
    endpoints
}

/// Every hook the charm handles: the unit hooks plus the five relation hooks of every
/// endpoint in metadata.yaml. Each becomes a `hooks/<name>` symlink to `../dispatch`.
pub fn hook_names() -> Vec<String> {
    let mut hooks: Vec<String> = UNIT_HOOKS.iter().map(|h| h.to_string()).collect();
    for endpoint in relation_endpoints() {
        for suffix in RELATION_HOOK_SUFFIXES {
            hooks.push(format!("{endpoint}-{suffix}"));
        }
    }
    hooks
}

/// The action names: the top-level keys of actions.yaml.
pub fn action_names() -> Vec<String> {
    ACTIONS_YAML
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.trim().to_string()))
        .collect()
}

/// Juju architecture name of an ELF executable (`amd64`, `arm64`, ...), read from its
/// header; `None` when the file is not an ELF file of a known machine.
pub fn elf_juju_arch(binary: &Path) -> io::Result<Option<&'static str>> {
    let mut header = [0u8; 20];
    let mut file = fs::File::open(binary)?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..])? {
            0 => return Ok(None),
            n => read += n,
        }
    }
    if &header[..4] != b"\x7fELF" {
        return Ok(None);
    }
    let machine = if header[5] == 2 {
        u16::from_be_bytes([header[18], header[19]])
    } else {
        u16::from_le_bytes([header[18], header[19]])
    };
    Ok(match machine {
        0x3e => Some("amd64"),
        0xb7 => Some("arm64"),
        0x15 => Some("ppc64el"),
        0x16 => Some("s390x"),
        0xf3 => Some("riscv64"),
        _ => None,
    })
}

/// The Juju architecture name of the machine running this code.
pub fn host_juju_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The contents of `manifest.yaml`, as charmcraft 4.x writes it (keys in charmcraft's
/// order): `charmcraft-version`, `charmcraft-started-at`, `bases` (one per Ubuntu release in
/// [`BASES`], each with the given architecture), and `analysis.attributes` with the two
/// attribute checkers charmcraft runs (`language` and `framework`; both are `unknown` for a
/// charm that is neither Python nor ops/reactive).
pub fn manifest_yaml(started_at: &str, arch: &str) -> String {
    let mut out = String::new();
    out.push_str("# Written by `cargo xtask pack` (xtask crate), not by charmcraft; the fields\n");
    out.push_str("# follow the manifest.yaml format of the charmcraft version named below.\n");
    out.push_str(&format!("charmcraft-version: {CHARMCRAFT_FORMAT_VERSION}\n"));
    out.push_str(&format!("charmcraft-started-at: '{started_at}'\n"));
    out.push_str("bases:\n");
    for channel in BASES {
        out.push_str(&format!("- name: ubuntu\n  channel: '{channel}'\n  architectures:\n  - {arch}\n"));
    }
    out.push_str("analysis:\n  attributes:\n");
    out.push_str("  - name: language\n    result: unknown\n");
    out.push_str("  - name: framework\n    result: unknown\n");
    out
}

/// Seconds since the epoch to use as the build time: `SOURCE_DATE_EPOCH` when set (for
/// reproducible packages), otherwise now.
fn build_time() -> (u64, u32) {
    if let Some(secs) = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.trim().parse().ok()) {
        return (secs, 0);
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (now.as_secs(), now.subsec_micros())
}

/// ISO 8601 UTC timestamp with microseconds, like Python's `datetime.isoformat()` of an
/// aware datetime: `2026-11-24T20:40:00.000000+00:00`.
pub fn iso8601_utc(secs: u64, micros: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    remove_if_present(path)?;
    fs::write(path, contents)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} is a directory", path.display())))
        }
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_symlink(target: &str, link: &Path) -> io::Result<()> {
    remove_if_present(link)?;
    symlink(target, link)
}

/// Build an unpacked charm directory at `dest` from the charm binary `binary`.
///
/// `dest` is created if needed; the files listed in the crate docs are (over)written, and
/// nothing else in `dest` is touched. The result is exactly what Juju expects in a unit's
/// charm directory, so it can be used directly by a hook-tool simulator, or zipped with
/// [`zip_charm_dir`]. `manifest.yaml` takes its architecture from the binary's ELF header
/// (falling back to the host's) and its timestamp from `SOURCE_DATE_EPOCH` or the clock.
pub fn assemble_charm_dir(binary: &Path, dest: &Path) -> io::Result<()> {
    let meta = fs::metadata(binary)
        .map_err(|e| io::Error::new(e.kind(), format!("charm binary {}: {e}", binary.display())))?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("charm binary {} is not a file", binary.display()),
        ));
    }
    let arch = elf_juju_arch(binary)?.unwrap_or_else(host_juju_arch);
    fs::create_dir_all(dest)?;

    write_file(&dest.join("metadata.yaml"), METADATA_YAML.as_bytes(), 0o644)?;
    write_file(&dest.join("config.yaml"), CONFIG_YAML.as_bytes(), 0o644)?;
    write_file(&dest.join("actions.yaml"), ACTIONS_YAML.as_bytes(), 0o644)?;
    write_file(&dest.join("README.md"), README_MD.as_bytes(), 0o644)?;
    write_file(&dest.join("LICENSE"), LICENSE.as_bytes(), 0o644)?;
    let (secs, micros) = build_time();
    let manifest = manifest_yaml(&iso8601_utc(secs, micros), arch);
    write_file(&dest.join("manifest.yaml"), manifest.as_bytes(), 0o644)?;

    let dispatch = dest.join("dispatch");
    remove_if_present(&dispatch)?;
    fs::copy(binary, &dispatch)?;
    fs::set_permissions(&dispatch, fs::Permissions::from_mode(0o755))?;

    for (dir, names) in [("hooks", hook_names()), ("actions", action_names())] {
        let dir = dest.join(dir);
        fs::create_dir_all(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
        for name in names {
            write_symlink("../dispatch", &dir.join(name))?;
        }
    }
    Ok(())
}

/// Every path under `dir`, relative to it, directories before their contents, sorted.
fn walk(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut entries: Vec<PathBuf> =
            fs::read_dir(dir.join(&rel))?.map(|e| e.map(|e| rel.join(e.file_name()))).collect::<io::Result<_>>()?;
        entries.sort();
        for entry in entries.into_iter().rev() {
            let meta = fs::symlink_metadata(dir.join(&entry))?;
            if meta.is_dir() {
                stack.push(entry.clone());
            }
            out.push(entry);
        }
    }
    out.sort();
    Ok(out)
}

fn zip_err(e: zip::result::ZipError) -> io::Error {
    io::Error::other(e)
}

/// Zip the charm directory `dir` into the `.charm` file `out`, keeping Unix modes, storing
/// symlinks as symlinks (Juju's charm extraction recreates them) and deflating files.
/// Entries are sorted and carry a fixed timestamp, so the same inputs give the same bytes.
pub fn zip_charm_dir(dir: &Path, out: &Path) -> io::Result<()> {
    if let Some(parent) = out.parent()
        && !parent.as_os_str().is_empty()
    {
        fs::create_dir_all(parent)?;
    }
    let file = fs::File::create(out)?;
    let mut zip = zip::ZipWriter::new(io::BufWriter::new(file));
    let base =
        zip::write::SimpleFileOptions::default().last_modified_time(zip::DateTime::default()).system(zip::System::Unix);
    for rel in walk(dir)? {
        let path = dir.join(&rel);
        let name =
            rel.to_str().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "non-UTF-8 path"))?.to_string();
        let meta = fs::symlink_metadata(&path)?;
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)?;
            let target = target
                .to_str()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "non-UTF-8 link"))?
                .to_string();
            zip.add_symlink(name, target, base.unix_permissions(0o777)).map_err(zip_err)?;
        } else if meta.is_dir() {
            zip.add_directory(name, base.unix_permissions(mode)).map_err(zip_err)?;
        } else {
            let options = base.unix_permissions(mode).compression_method(zip::CompressionMethod::Deflated);
            zip.start_file(name, options).map_err(zip_err)?;
            let mut f = fs::File::open(&path)?;
            io::copy(&mut f, &mut zip)?;
        }
    }
    zip.finish().map_err(zip_err)?.flush()
}

/// File name of the packed charm for an architecture: `lxd-integrator_<arch>.charm`.
pub fn charm_file_name(arch: &str) -> String {
    format!("{CHARM_NAME}_{arch}.charm")
}

/// Assemble `<build_dir>/charm/` (emptied first) from `binary` and zip it to
/// `<build_dir>/lxd-integrator_<arch>.charm`. Returns the `.charm` path.
pub fn pack(binary: &Path, build_dir: &Path) -> io::Result<PathBuf> {
    let charm_dir = build_dir.join("charm");
    if charm_dir.exists() {
        fs::remove_dir_all(&charm_dir)?;
    }
    assemble_charm_dir(binary, &charm_dir)?;
    let arch = elf_juju_arch(binary)?.unwrap_or_else(host_juju_arch);
    let out = build_dir.join(charm_file_name(arch));
    zip_charm_dir(&charm_dir, &out)?;
    Ok(out)
}

/// One entry of a packed charm, as [`list_charm`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharmEntry {
    /// Path inside the zip (directories end with `/`).
    pub name: String,
    /// Unix mode including the file type bits (`0o100755`, `0o120777`, `0o40755`).
    pub mode: u32,
    /// Symlink target, for symlinks.
    pub link_target: Option<String>,
    /// Uncompressed size in bytes.
    pub size: u64,
}

/// List the entries of a `.charm` file with their Unix modes and symlink targets.
pub fn list_charm(path: &Path) -> io::Result<Vec<CharmEntry>> {
    let mut archive = zip::ZipArchive::new(fs::File::open(path)?).map_err(zip_err)?;
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(zip_err)?;
        let mode = file.unix_mode().unwrap_or(0);
        let link_target = if mode & 0o170000 == 0o120000 {
            let mut target = String::new();
            file.read_to_string(&mut target)?;
            Some(target)
        } else {
            None
        };
        entries.push(CharmEntry {
            name: file.name().map_err(zip_err)?.to_string(),
            mode,
            link_target,
            size: file.size(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "xtask-test-{tag}-{}-{}",
            std::process::id(),
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn hooks_cover_the_api_and_https_endpoints() {
        assert_eq!(relation_endpoints(), vec!["api".to_string(), "https".to_string()]);
        let hooks = hook_names();
        assert_eq!(hooks.len(), 20);
        for h in [
            "install",
            "update-status",
            "secret-changed",
            "api-relation-created",
            "api-relation-broken",
            "https-relation-changed",
            "https-relation-departed",
        ] {
            assert!(hooks.iter().any(|x| x == h), "{h} missing");
        }
    }

    #[test]
    fn actions_are_the_five_declared_ones() {
        assert_eq!(
            action_names(),
            vec!["list-nodes", "list-trusted-clients", "reconcile", "check-connection", "adopt"]
        );
    }

    #[test]
    fn repo_hooks_and_actions_dirs_match_the_lists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for (dir, names) in [("hooks", hook_names()), ("actions", action_names())] {
            let mut found: Vec<String> =
                fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            found.sort();
            let mut want = names.clone();
            want.sort();
            assert_eq!(found, want, "{dir}/ differs from the list");
            for n in names {
                let target = fs::read_link(root.join(dir).join(&n)).unwrap();
                assert_eq!(target, Path::new("../dispatch"));
            }
        }
    }

    #[test]
    fn timestamps_format_like_python_isoformat() {
        assert_eq!(iso8601_utc(0, 0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(iso8601_utc(951_825_600, 5), "2000-02-29T12:00:00.000005+00:00");
        assert_eq!(iso8601_utc(1_798_761_599, 0), "2026-12-31T23:59:59.000000+00:00");
    }

    #[test]
    fn manifest_has_every_base_and_attributes() {
        let m = manifest_yaml("2026-01-01T00:00:00.000000+00:00", "amd64");
        assert!(m.contains("charmcraft-version: "));
        assert!(m.contains("charmcraft-started-at: '2026-01-01"));
        // Quoted: an unquoted 16.04 is a YAML float, which Juju's manifest schema refuses.
        for c in BASES {
            assert!(m.contains(&format!("channel: '{c}'")));
        }
        assert_eq!(m.matches("  - amd64").count(), BASES.len());
        assert!(m.contains("analysis:\n  attributes:\n  - name: language\n"));
    }

    #[test]
    fn assemble_and_zip_keep_modes_and_symlinks() {
        let tmp = tempdir("pack");
        // Any executable will do as the "binary"; use this test executable (ELF, host arch).
        let me = std::env::current_exe().unwrap();
        let out = pack(&me, &tmp).unwrap();
        assert_eq!(out, tmp.join(charm_file_name(host_juju_arch())));
        let dispatch = tmp.join("charm/dispatch");
        assert_eq!(fs::metadata(&dispatch).unwrap().permissions().mode() & 0o777, 0o755);
        assert_eq!(fs::read_link(tmp.join("charm/hooks/install")).unwrap(), Path::new("../dispatch"));

        let entries = list_charm(&out).unwrap();
        let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap_or_else(|| panic!("{n}"));
        assert_eq!(get("dispatch").mode, 0o100755);
        assert_eq!(get("metadata.yaml").mode, 0o100644);
        assert_eq!(get("hooks/").mode & 0o170000, 0o040000);
        let hook = get("hooks/api-relation-changed");
        assert_eq!(hook.mode & 0o170000, 0o120000);
        assert_eq!(hook.link_target.as_deref(), Some("../dispatch"));
        assert_eq!(get("actions/reconcile").link_target.as_deref(), Some("../dispatch"));
        for f in ["manifest.yaml", "config.yaml", "actions.yaml", "README.md", "LICENSE"] {
            get(f);
        }
        // Idempotent: assembling again over the same dir works.
        assemble_charm_dir(&me, &tmp.join("charm")).unwrap();
        fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let tmp = tempdir("missing");
        let err = assemble_charm_dir(&tmp.join("nope"), &tmp.join("charm")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        fs::remove_dir_all(&tmp).unwrap();
    }
}
