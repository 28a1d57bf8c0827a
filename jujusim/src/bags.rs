//! Databags kept one file each, beside `model.json` (issue #11).
//!
//! A relation databag may hold 16 MiB, and a model a hundred of them: if they lived in
//! `model.json`, every hook-tool call would parse and every write would rewrite all of them.
//! Here a tool reads only the databags it is asked about, and the driver writes one only when a
//! hook's transaction commits a change to it (or an immediate write such as `leader-set`
//! makes one). Every read and write happens under the model lock, like `model.json`'s.
//!
//! ```text
//! <root>/bags/relation-<id>/unit-<app>-<n>.json        a unit's databag in relation <id>
//! <root>/bags/relation-<id>/application-<app>.json     an application's databag
//! <root>/bags/leader/application-<app>.json            leader settings (leader-get/-set)
//! <root>/bags/state/unit-<app>-<n>.json                committed charm state (state-get/-set)
//! ```
//!
//! A missing file is a databag that does not exist, which Juju tells apart from an empty one
//! (reading a unit that never joined is refused); an empty databag is the file `{}`.

use std::fs;
use std::path::PathBuf;

use crate::model::{self, Databag, Model, Paths};

/// One databag, named by what owns it.
#[derive(Clone, Copy, Debug)]
pub enum Bag<'a> {
    /// A unit's settings in a relation.
    Unit(u32, &'a str),
    /// An application's settings in a relation.
    App(u32, &'a str),
    /// An application's leader settings.
    Leader(&'a str),
    /// A unit's committed charm state.
    State(&'a str),
}

/// Juju's tag for a unit (`unit-app-3`) or an application (`application-app`): unambiguous as
/// a file name, since an application name never ends in a segment of digits.
fn unit_tag(unit: &str) -> String {
    format!("unit-{}", unit.replace('/', "-"))
}

fn app_tag(app: &str) -> String {
    format!("application-{app}")
}

fn relation_dir(paths: &Paths, rel: u32) -> PathBuf {
    paths.bags().join(format!("relation-{rel}"))
}

fn path(paths: &Paths, bag: Bag) -> PathBuf {
    let (dir, tag) = match bag {
        Bag::Unit(rel, unit) => (relation_dir(paths, rel), unit_tag(unit)),
        Bag::App(rel, app) => (relation_dir(paths, rel), app_tag(app)),
        Bag::Leader(app) => (paths.bags().join("leader"), app_tag(app)),
        Bag::State(unit) => (paths.bags().join("state"), unit_tag(unit)),
    };
    dir.join(format!("{tag}.json"))
}

/// The databag, or `None` when it does not exist.
pub fn read(paths: &Paths, bag: Bag) -> anyhow::Result<Option<Databag>> {
    let p = path(paths, bag);
    match fs::read(&p) {
        Ok(data) => Ok(Some(serde_json::from_slice(&data)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", p.display())),
    }
}

/// The databag, empty when it does not exist.
pub fn read_or_empty(paths: &Paths, bag: Bag) -> anyhow::Result<Databag> {
    Ok(read(paths, bag)?.unwrap_or_default())
}

/// Replaces the databag (creating it) atomically.
pub fn write(paths: &Paths, bag: Bag, content: &Databag) -> anyhow::Result<()> {
    let p = path(paths, bag);
    fs::create_dir_all(p.parent().expect("a bag file has a directory"))?;
    model::write_atomic(&p, &serde_json::to_vec(content)?)
}

/// Deletes the databag: a name that comes back (a redeployed application) starts empty.
pub fn remove(paths: &Paths, bag: Bag) -> anyhow::Result<()> {
    match fs::remove_file(path(paths, bag)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Deletes every databag of a relation that has gone (relation ids are never reused, so this
/// only frees the disk).
pub fn remove_relation(paths: &Paths, rel: u32) -> anyhow::Result<()> {
    match fs::remove_dir_all(relation_dir(paths, rel)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Fills a snapshot of the model with every databag it names, for a caller that looks at the
/// whole model at once ([`crate::Sim::model`], the hook observer).
pub fn fill(paths: &Paths, m: &mut Model) -> anyhow::Result<()> {
    for (id, r) in m.relations.iter_mut() {
        let dir = relation_dir(paths, *id);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", dir.display())),
        };
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let Some(tag) = name.strip_suffix(".json") else { continue };
            if let Some(app) = tag.strip_prefix("application-") {
                r.app_data.insert(app.to_string(), read_or_empty(paths, Bag::App(*id, app))?);
            } else if let Some((app, n)) = tag.strip_prefix("unit-").and_then(|u| u.rsplit_once('-')) {
                let unit = format!("{app}/{n}");
                r.unit_data.insert(unit.clone(), read_or_empty(paths, Bag::Unit(*id, &unit))?);
            }
        }
    }
    for (name, a) in m.apps.iter_mut() {
        a.leader_settings = read_or_empty(paths, Bag::Leader(name))?;
    }
    for (name, u) in m.units.iter_mut() {
        u.state = read_or_empty(paths, Bag::State(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bag_round_trips_and_missing_differs_from_empty() {
        let root = std::env::temp_dir().join(format!("jujusim-bags-{}", std::process::id()));
        let paths = Paths::new(&root);
        assert_eq!(read(&paths, Bag::Unit(3, "my-app/12")).unwrap(), None);
        write(&paths, Bag::Unit(3, "my-app/12"), &Databag::new()).unwrap();
        assert_eq!(read(&paths, Bag::Unit(3, "my-app/12")).unwrap(), Some(Databag::new()));
        let bag: Databag = [("k".to_string(), "v".to_string())].into();
        write(&paths, Bag::App(3, "my-app"), &bag).unwrap();
        write(&paths, Bag::State("my-app/12"), &bag).unwrap();

        let mut m = Model::default();
        m.relations.insert(3, model::Relation { id: 3, ..Default::default() });
        fill(&paths, &mut m).unwrap();
        assert_eq!(m.relations[&3].unit_data["my-app/12"], Databag::new());
        assert_eq!(m.relations[&3].app_data["my-app"], bag);
        assert_eq!(read(&paths, Bag::State("my-app/12")).unwrap(), Some(bag));

        remove(&paths, Bag::State("my-app/12")).unwrap();
        remove_relation(&paths, 3).unwrap();
        assert_eq!(read(&paths, Bag::App(3, "my-app")).unwrap(), None);
        assert_eq!(read(&paths, Bag::State("my-app/12")).unwrap(), None);
        let _ = fs::remove_dir_all(&root);
    }
}
