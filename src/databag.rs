//! Relation data as a hook reads it: every value a string, one databag per unit or
//! application, and one relation as this unit sees it.

use crate::ownership::Interface;
use std::collections::BTreeMap;

pub type Databag = BTreeMap<String, String>;

/// One relation (on `api` or `https`) as this unit sees it during the current hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelationView {
    pub id: u32,
    /// The endpoint the relation is on.
    pub interface: Interface,
    pub remote_app: String,
    /// Remote unit name → its databag. Departing units are already left out.
    pub units: BTreeMap<String, Databag>,
    pub app_data: Databag,
}
