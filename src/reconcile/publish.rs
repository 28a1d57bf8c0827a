//! What the pass writes to Juju: relation data (only the keys that changed), the member list
//! and version it remembers, the status, the state cache.

use super::Mode;
use super::inputs::Relations;
use super::state::Cache;
use crate::hook_tools::{Juju, ToolError};
use crate::https;
use crate::lxd::{Member, ServerInfo};
use crate::ownership::Interface;
use crate::refusal::{self, RefusedCert};
use crate::relation::{self, Databag, OnlineMembers, Payload, ServerPin};
use crate::requests::Request;
use crate::status::Status;
use std::collections::BTreeSet;

/// What a pass tells requirers.
pub struct Publication<'a> {
    pub online: &'a OnlineMembers,
    /// The requests that may be claimed for their requirer (not those held for another).
    pub requests: &'a [Request],
    pub held: &'a BTreeSet<String>,
    /// The pin the pass connected with.
    pub pin: Option<&'a ServerPin>,
    /// What LXD presents, when it said.
    pub presented: Option<&'a ServerPin>,
    pub refused: &'a [RefusedCert],
    pub trust_projects: Option<&'a [String]>,
}

/// Publishes to every live relation, in its interface's terms, and returns how many items did
/// not fit the relation data. `api` is written to this unit's databag only, as the original
/// charm wrote it: its requirers read the remote unit's databag in `-relation-changed`, and a
/// change to the application databag reaches them as a hook with no remote unit, which they do
/// not survive. What an earlier revision wrote there is withdrawn by the leader. `https` goes to
/// both, its requirers reading the application's first, as charm-lxd writes it.
pub fn relation_data(
    juju: &mut Juju,
    relations: &Relations,
    what: &Publication,
    writer: bool,
) -> Result<usize, ToolError> {
    let mut withheld = 0;
    for rel in &relations.views {
        let refused = refusal::published(rel.interface, rel.id, what.refused);
        let (payload, keys): (Payload, &[&str]) = match rel.interface {
            Interface::Lxd => (
                relation::payload(rel.id, what.online, what.requests, what.held, what.pin, refused.as_deref()),
                &relation::PROVIDER_KEYS,
            ),
            Interface::LxdHttps => {
                let project = https::project(rel.id, what.requests, what.held, what.trust_projects);
                let served = https::Served {
                    certificate: what.pin.and(what.presented.or(what.pin)),
                    trusted: https::any_trusted(rel.id, what.requests, what.held),
                    project: project.as_deref(),
                    refused: refused.as_deref(),
                };
                (https::payload(what.online, served), &https::PROVIDER_KEYS)
            }
        };
        withheld += payload.withheld;
        changed_keys(juju, rel.id, false, relations.ours.get(&(rel.id, false)), &payload.bag, keys)?;
        if writer {
            let app_bag = if rel.interface == Interface::Lxd { &Databag::new() } else { &payload.bag };
            changed_keys(juju, rel.id, true, relations.ours.get(&(rel.id, true)), app_bag, keys)?;
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
