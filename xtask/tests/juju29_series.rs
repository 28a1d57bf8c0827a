//! The Ubuntu series Juju 2.9 derives from the packed charm, computed the way Juju 2.9 does.
//!
//! Juju 2.9 reads a charm's supported series from `manifest.yaml`, not from `metadata.yaml`,
//! when the manifest lists bases. Each step below ports the code Juju 2.9 runs for that, read
//! at its source:
//!
//! * juju/charm v8 (v8.0.6 is what juju 2.9's go.mod requires; same files on its `v8` branch):
//!   - `charmarchive.go` `readCharmArchive`: `metadata.yaml` is required, `manifest.yaml` is
//!     optional and parsed with `ReadManifest`.
//!   - `manifest.go` `ReadManifest`/`UnmarshalYAML`/`parseBases`: YAML, then `bases` coerced
//!     with `schema.List(baseSchema)` (`name`, `channel` strings, `architectures` a list of
//!     strings, each optional), the channel through `ParseChannelNormalize`, every base checked
//!     by `Base.Validate`.
//!   - `channel.go` `ParseChannel`/`Normalize`: `track[/risk[/branch]]`, risk defaults to
//!     `stable`.
//!   - `base.go` `Validate`: a name from `validOSForBase`, a non-empty channel, supported
//!     architectures.
//!   - `charm.go` `MetaFormatReasons`: format v2 needs bases (or containers) and no `series`.
//! * juju/juju 2.9:
//!   - `core/charm/format.go` `Format`: v2 when the manifest has at least one base.
//!   - `core/charm/computedseries.go` `ComputedSeries`: for v2, each base's
//!     `Channel.Track` through `coreseries.VersionSeries`, first occurrence kept, in manifest
//!     order (`kubernetes` appended only for charms with containers).
//!   - `core/series/supportedseries.go` `VersionSeries` over the `ubuntuSeries` table of
//!     `core/series/supported.go` (copied in [`UBUNTU_SERIES`]).
//!
//! The charm is packed with `xtask::pack`, the code `make charm` runs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_norway::Value;

/// `ubuntuSeries` of juju/juju 2.9 `core/series/supported.go`: version -> series.
const UBUNTU_SERIES: &[(&str, &str)] = &[
    ("12.04", "precise"),
    ("12.10", "quantal"),
    ("13.04", "raring"),
    ("13.10", "saucy"),
    ("14.04", "trusty"),
    ("14.10", "utopic"),
    ("15.04", "vivid"),
    ("15.10", "wily"),
    ("16.04", "xenial"),
    ("16.10", "yakkety"),
    ("17.04", "zesty"),
    ("17.10", "artful"),
    ("18.04", "bionic"),
    ("18.10", "cosmic"),
    ("19.04", "disco"),
    ("19.10", "eoan"),
    ("20.04", "focal"),
    ("20.10", "groovy"),
    ("21.04", "hirsute"),
    ("21.10", "impish"),
    ("22.04", "jammy"),
    ("22.10", "kinetic"),
    ("23.04", "lunar"),
    ("23.10", "mantic"),
    ("24.04", "noble"),
];

/// `validOSForBase` of juju/charm v8 `base.go` (juju/os `os.*.String()`, lower-cased).
const VALID_OS: &[&str] = &["ubuntu", "centos", "windows", "osx", "opensuse", "genericlinux"];

/// Architectures every juju/utils `arch.AllSupportedArches` of the 2.9 era recognises. Later
/// lists add and drop 32-bit ones; those never appear in this charm's manifest.
const SUPPORTED_ARCHES: &[&str] = &["amd64", "arm64", "ppc64el", "s390x"];

const RISKS: &[&str] = &["stable", "candidate", "beta", "edge"];

#[derive(Debug, PartialEq, Eq)]
struct Channel {
    track: String,
    risk: String,
    branch: String,
}

#[derive(Debug)]
struct Base {
    name: String,
    channel: Channel,
}

/// `ParseChannelNormalize` (juju/charm v8 `channel.go`): which component is which depends on
/// the count and on whether the first one is a risk; a component given must not be empty.
fn parse_channel_normalize(s: &str) -> Result<Channel, String> {
    if s.is_empty() {
        return Err("empty channel not valid".into());
    }
    let p: Vec<&str> = s.split('/').collect();
    let is_risk = |x: &str| RISKS.contains(&x);
    let (track, risk, branch): (Option<&str>, Option<&str>, Option<&str>) = match p.as_slice() {
        [a] if is_risk(a) => (None, Some(a), None),
        [a] => (Some(a), None, None),
        [a, b] if is_risk(a) => (None, Some(a), Some(b)),
        [a, b] => (Some(a), Some(b), None),
        [a, b, c] => (Some(a), Some(b), Some(c)),
        _ => return Err(format!("channel is malformed and has too many components {s:?}")),
    };
    if risk.is_some_and(|r| !is_risk(r)) {
        return Err(format!("risk in channel {s:?} not valid"));
    }
    if track == Some("") {
        return Err(format!("track in channel {s:?} not valid"));
    }
    if branch == Some("") {
        return Err(format!("branch in channel {s:?} not valid"));
    }
    // `Normalize`: the risk defaults to stable.
    Ok(Channel {
        track: track.unwrap_or_default().into(),
        risk: risk.unwrap_or("stable").into(),
        branch: branch.unwrap_or_default().into(),
    })
}

/// `schema.String()` accepts only strings: an unquoted `16.04` is a YAML float and fails.
fn string_field(base: &serde_norway::Mapping, key: &str) -> Result<Option<String>, String> {
    match base.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("coerce: bases[].{key}: expected string, got {other:?}")),
    }
}

/// `ReadManifest` + `parseBases` + `Base.Validate` (juju/charm v8 `manifest.go`, `base.go`).
fn read_manifest(text: &str) -> Result<Vec<Base>, String> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| format!("manifest: {e}"))?;
    let raw = match doc {
        Value::Mapping(m) => m,
        Value::Null => return Err("invalid base in manifest".into()),
        other => return Err(format!("manifest: not a map: {other:?}")),
    };
    let list = match raw.get("bases") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Sequence(s)) => s.clone(),
        Some(other) => return Err(format!("coerce: bases: expected list, got {other:?}")),
    };
    let mut bases = Vec::new();
    for item in list {
        let Value::Mapping(m) = item else {
            return Err(format!("coerce: bases[]: expected map, got {item:?}"));
        };
        let name = string_field(&m, "name")?.unwrap_or_default();
        let channel = match string_field(&m, "channel")? {
            Some(c) => parse_channel_normalize(&c).map_err(|e| format!("parsing channel {c:?}: {e}"))?,
            None => Channel { track: String::new(), risk: String::new(), branch: String::new() },
        };
        let arches = match m.get("architectures") {
            None => Vec::new(),
            Some(Value::Sequence(s)) => s
                .iter()
                .map(|a| {
                    a.as_str().map(String::from).ok_or_else(|| format!("coerce: architectures: {a:?} is not a string"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => return Err(format!("coerce: architectures: expected list, got {other:?}")),
        };
        if name.is_empty() {
            return Err("base without name not valid".into());
        }
        if !VALID_OS.contains(&name.as_str()) {
            return Err(format!("os {name:?} not valid"));
        }
        if channel.track.is_empty() && channel.risk.is_empty() && channel.branch.is_empty() {
            return Err("channel not valid".into());
        }
        if let Some(a) = arches.iter().find(|a| !SUPPORTED_ARCHES.contains(&a.as_str())) {
            return Err(format!("architecture {a:?} not valid"));
        }
        bases.push(Base { name, channel });
    }
    Ok(bases)
}

/// `ComputedSeries` (juju/juju 2.9 `core/charm/computedseries.go`), given the charm's
/// metadata and manifest.
fn computed_series(metadata: &str, bases: &[Base]) -> Result<Vec<String>, String> {
    let meta: Value = serde_norway::from_str(metadata).map_err(|e| format!("metadata: {e}"))?;
    let meta_series: Vec<String> = match meta.get("series") {
        Some(Value::Sequence(s)) => s.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
        _ => Vec::new(),
    };
    // juju/charm v8 `MetaFormatReasons`: `series` next to bases makes the charm v1 (and
    // `Meta.Check` then refuses "metadata v2 manifest.yaml with series slice").
    if !meta_series.is_empty() {
        return Err(format!("metadata.yaml declares series {meta_series:?}: Juju 2.9 would ignore the manifest"));
    }
    // `Format`: v1 (series from metadata, here none) unless the manifest has bases.
    if bases.is_empty() {
        return Ok(meta_series);
    }
    // `IsKubernetes` holds only for charms with containers; this is a machine charm.
    if meta.get("containers").is_some() {
        return Err("containers in metadata: Juju would add `kubernetes`".into());
    }
    let mut out: Vec<String> = Vec::new();
    for base in bases {
        let version = &base.channel.track;
        let series = UBUNTU_SERIES
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, s)| s.to_string())
            .ok_or_else(|| format!("unknown series for version: {version:?}"))?;
        if !out.contains(&series) {
            out.push(series);
        }
    }
    Ok(out)
}

fn tempdir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("xtask-juju29-{tag}-{}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A file of the packed `.charm`, read from the zip as Juju's charm archive reader does.
fn read_from_charm(charm: &Path, name: &str) -> String {
    let mut zip = zip::ZipArchive::new(fs::File::open(charm).expect("open .charm")).expect("a zip");
    let mut file = zip.by_name(name).unwrap_or_else(|e| panic!("{name} in {}: {e}", charm.display()));
    let mut text = String::new();
    file.read_to_string(&mut text).expect("UTF-8");
    text
}

#[test]
fn juju_2_9_derives_every_series_the_original_supported_and_the_later_ltss() {
    let tmp = tempdir("pack");
    // Any ELF executable stands in for the charm binary; the manifest does not depend on it.
    let me = std::env::current_exe().expect("test executable");
    let charm = xtask::pack(&me, &tmp).expect("pack");
    let manifest = read_from_charm(&charm, "manifest.yaml");
    let metadata = read_from_charm(&charm, "metadata.yaml");

    let bases = read_manifest(&manifest).expect("Juju 2.9 reads the manifest");
    assert!(
        bases.iter().all(|b| b.name == "ubuntu" && b.channel.risk == "stable" && b.channel.branch.is_empty()),
        "{bases:?}"
    );
    let series = computed_series(&metadata, &bases).expect("Juju 2.9 computes the series");
    assert_eq!(series, ["xenial", "bionic", "focal", "jammy", "noble"]);
    fs::remove_dir_all(&tmp).expect("clean up");
}

#[test]
fn the_port_refuses_what_juju_2_9_refuses() {
    let base = |channel: &str| format!("bases:\n- name: ubuntu\n  channel: {channel}\n  architectures: [amd64]\n");
    // An unquoted channel is a float to YAML, and juju/schema's String checker refuses it.
    assert!(read_manifest(&base("16.04")).unwrap_err().contains("expected string"));
    assert!(read_manifest(&base("'16.04'")).is_ok());
    assert!(read_manifest(&base("''")).unwrap_err().contains("empty channel"));
    assert!(read_manifest("bases:\n- name: debian\n  channel: '12'\n").unwrap_err().contains("os \"debian\""));
    assert!(
        read_manifest("bases:\n- name: ubuntu\n  channel: '22.04'\n  architectures: [sparc]\n")
            .unwrap_err()
            .contains("sparc")
    );
    assert_eq!(parse_channel_normalize("22.04/edge").map(|c| c.risk), Ok("edge".to_string()));
    assert!(parse_channel_normalize("22.04/nope").is_err());
    // A version Juju 2.9's table does not know fails the whole computation, not just one base.
    let unknown = read_manifest(&base("'26.04'")).expect("parses");
    assert!(computed_series("name: x\n", &unknown).unwrap_err().contains("26.04"));
    // `series` in metadata.yaml next to manifest bases: Juju 2.9 would use the metadata.
    let ok = read_manifest(&base("'20.04'")).expect("parses");
    assert!(computed_series("name: x\nseries: [focal]\n", &ok).is_err());
    // Duplicates (one base per architecture) collapse, order kept.
    let two = read_manifest("bases:\n- {name: ubuntu, channel: '22.04'}\n- {name: ubuntu, channel: '20.04'}\n- {name: ubuntu, channel: '22.04'}\n").expect("parses");
    assert_eq!(computed_series("name: x\n", &two), Ok(vec!["jammy".to_string(), "focal".to_string()]));
}
