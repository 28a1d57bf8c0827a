//! What the pass writes to Juju: relation data (only the keys that changed), the member list
//! and version it remembers, the status, the state cache.

use super::decide::{Decision, Outcome, Told};
use super::inputs::Relations;
use super::state::Cache;
use crate::hook_tools::{Juju, ToolError};
use crate::interfaces::{self, Publication};
use crate::relation::{self, Databag};
use crate::status::Status;

/// Tells Juju and the requirers what the pass decided and what came of it; returns how many
/// items did not fit the relation data.
pub(crate) fn publish(
    juju: &mut Juju,
    cache: &mut Cache,
    relations: &Relations,
    decision: &Decision,
    outcome: &Outcome,
) -> Result<usize, ToolError> {
    let told = &decision.told;
    lxd_facts(juju, cache, told)?;
    let what = Publication {
        online: &told.online,
        requests: &told.claimed,
        held: &outcome.held,
        pin: told.pin.as_ref(),
        presented: told.presented.as_ref(),
        refused: &outcome.refused,
        trust_projects: decision.trust.projects.as_deref(),
    };
    relation_data(juju, relations, &what, decision.trust.writer)
}

/// Publishes to every live relation, in its interface's terms (`interfaces::payload`), and
/// returns how many items did not fit the relation data. The leader also writes the
/// application databag: the payload where the endpoint publishes there, and otherwise only the
/// withdrawal of what an earlier revision wrote there.
fn relation_data(juju: &mut Juju, relations: &Relations, what: &Publication, writer: bool) -> Result<usize, ToolError> {
    let mut withheld = 0;
    for rel in &relations.views {
        let keys = interfaces::served(rel.interface).provider_keys;
        let (payload, app_bag) = interfaces::payload(rel, what);
        withheld += payload.withheld;
        changed_keys(juju, rel.id, false, relations.ours.get(&(rel.id, false)), &payload.bag, keys)?;
        if writer {
            changed_keys(juju, rel.id, true, relations.ours.get(&(rel.id, true)), &app_bag, keys)?;
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
fn lxd_facts(juju: &mut Juju, cache: &mut Cache, told: &Told) -> Result<(), ToolError> {
    let urls: Vec<&String> = told.member_urls.iter().collect();
    cache.remember_endpoints(&urls);
    if cache.version_changed(&told.version) {
        juju.application_version_set(&told.version)?;
    }
    Ok(())
}

/// Sets the status when it changed, then saves the state cache (unless the pass writes
/// nothing: `publish` false).
pub(crate) fn finish(juju: &mut Juju, publish: bool, cache: &mut Cache, status: &Status) -> Result<(), ToolError> {
    if !publish {
        return Ok(());
    }
    if cache.status_changed(status) {
        juju.status_set(status)?;
    }
    cache.save(juju)
}
