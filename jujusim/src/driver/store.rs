//! The model as the driver holds it: a cached copy of `model.json`, read and written under
//! the model lock, saved before every hook process and at the end of every public call.

use std::path::Path;

use anyhow::anyhow;

use crate::bags::{self, Bag};
use crate::model::{self, Databag, Model, ModelLock};

use super::Sim;

pub(super) struct Cached {
    pub(super) model: Model,
    pub(super) stamp: FileStamp,
    /// Changed in memory and not yet saved. While no hook runs, nothing else writes the
    /// model, so the in-memory copy is authoritative; it is saved before every hook process.
    pub(super) dirty: bool,
}

type FileStamp = (u64, std::time::SystemTime, u64);

fn file_stamp(p: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p).ok()?;
    Some((md.ino(), md.modified().ok()?, md.len()))
}

impl Sim {
    pub(super) fn read(&self) -> anyhow::Result<Model> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        Ok(self.cache.borrow().as_ref().unwrap().model.clone())
    }

    /// Loads model.json into the cache unless the cached copy is current. Lock held.
    pub(super) fn refresh(&self) -> anyhow::Result<()> {
        let mut cache = self.cache.borrow_mut();
        if let Some(c) = cache.as_ref()
            && (c.dirty || file_stamp(&self.paths.model()) == Some(c.stamp))
        {
            return Ok(());
        }
        let model = model::load_model(&self.paths)?;
        let stamp = file_stamp(&self.paths.model()).ok_or_else(|| anyhow!("model.json vanished"))?;
        *cache = Some(Cached { model, stamp, dirty: false });
        Ok(())
    }

    pub(super) fn write<R>(&self, f: impl FnOnce(&mut Model) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        let mut cache = self.cache.borrow_mut();
        let c = cache.as_mut().unwrap();
        match f(&mut c.model) {
            Ok(r) => {
                c.dirty = true;
                Ok(r)
            }
            Err(e) => {
                // The closure may have half-modified the cached copy: drop it.
                *cache = None;
                Err(e)
            }
        }
    }

    /// Saves the in-memory model if it changed (before any hook process, and at the end of
    /// every public call).
    pub(super) fn flush(&self) -> anyhow::Result<()> {
        let _l = ModelLock::acquire(&self.paths)?;
        let mut cache = self.cache.borrow_mut();
        if let Some(c) = cache.as_mut()
            && c.dirty
        {
            model::save_model(&self.paths, &c.model)?;
            c.stamp = file_stamp(&self.paths.model()).ok_or_else(|| anyhow!("model.json vanished"))?;
            c.dirty = false;
        }
        Ok(())
    }

    /// A snapshot of the whole model, every databag included (for assertions not covered
    /// by the helpers).
    pub fn model(&self) -> anyhow::Result<Model> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        let mut m = self.cache.borrow().as_ref().unwrap().model.clone();
        bags::fill(&self.paths, &mut m)?;
        Ok(m)
    }

    /// A committed databag (empty when it does not exist), once `owner` found what holds it.
    pub(super) fn read_bag(
        &self,
        owner: impl FnOnce(&Model) -> anyhow::Result<()>,
        bag: Bag,
    ) -> anyhow::Result<Databag> {
        let _l = ModelLock::acquire(&self.paths)?;
        self.refresh()?;
        owner(&self.cache.borrow().as_ref().unwrap().model)?;
        bags::read_or_empty(&self.paths, bag)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
