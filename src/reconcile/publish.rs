//! What the pass writes to Juju: relation data (only the keys that changed), the member list
//! and version it remembers, the status, the state cache.

use super::Mode;
use super::inputs::Relations;
use super::state::Cache;
use crate::hook_tools::{Juju, ToolError};
use crate::https;
use crate::lxd::{Member, ServerInfo};
use crate::ownership::Interface;
use crate::relation::{self, Databag, OnlineMembers, Payload, ServerPin};
use crate::requests::Request;
use crate::status::Status;
use std::collections::BTreeSet;

/// Publishes to every live relation, in its interface's terms: this unit's databag, and the
/// application's on the leader. Returns how many items did not fit the relation data.
pub fn relation_data(
    juju: &mut Juju,
    relations: &Relations,
    online: &OnlineMembers,
    requests: &[Request],
    held: &BTreeSet<String>,
    pin: Option<&ServerPin>,
    writer: bool,
) -> Result<usize, ToolError> {
    let mut withheld = 0;
    for rel in &relations.views {
        let (payload, keys): (Payload, &[&str]) = match rel.interface {
            Interface::Lxd => (relation::payload(rel.id, online, requests, held, pin), &relation::PROVIDER_KEYS),
            Interface::LxdHttps => {
                (https::payload(online, pin, https::any_trusted(rel.id, requests, held)), &https::PROVIDER_KEYS)
            }
        };
        withheld += payload.withheld;
        changed_keys(juju, rel.id, false, relations.ours.get(&(rel.id, false)), &payload.bag, keys)?;
        if writer {
            changed_keys(juju, rel.id, true, relations.ours.get(&(rel.id, true)), &payload.bag, keys)?;
        }
    }
    Ok(withheld)
}

/// Writes only the keys that differ from what the databag held when the pass read it.
fn changed_keys(
    juju: &mut Juju,
    rel: u32,
    app: bool,
    have: Option<&Databag>,
    want: &Databag,
    keys: &[&str],
) -> Result<(), ToolError> {
    let empty = Databag::new();
    let diff = relation::changed_keys_among(have.unwrap_or(&empty), want, keys);
    if diff.is_empty() {
        return Ok(());
    }
    juju.relation_set(rel, app, &diff)
}

/// Remembers every member, so the next hook can fail over if the configured one is down, and
/// shows LXD's version in `juju status` when it changed.
pub fn lxd_facts(juju: &mut Juju, cache: &mut Cache, members: &[Member], server: &ServerInfo) -> Result<(), ToolError> {
    let urls: Vec<&String> = members.iter().map(|m| &m.url).collect();
    cache.remember_endpoints(&urls);
    let version = if server.server_version.is_empty() { "unknown" } else { server.server_version.as_str() };
    if cache.version_changed(version) {
        juju.application_version_set(version)?;
    }
    Ok(())
}

/// Sets the status when it changed, then saves the state cache.
pub fn finish(juju: &mut Juju, mode: Mode, cache: &mut Cache, status: &Status) -> Result<(), ToolError> {
    if !mode.publish {
        return Ok(());
    }
    if cache.status_changed(status) {
        juju.status_set(status)?;
    }
    cache.save(juju)
}
