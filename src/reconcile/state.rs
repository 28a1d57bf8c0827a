//! The unit's state cache (`state-get`/`state-set`). Nothing in it matters for correctness: it
//! saves hook-tool calls and repeated log lines. It holds digests and short values only, far
//! inside the controller's `max-charm-state-size` (`limits::UNIT_STATE_BYTES`): what comes from
//! LXD is checked and bounded (`lxd::checked`), and a value that would still outgrow
//! `limits::STATE_VALUE_BYTES` is dropped rather than written.

use super::quiet::Steady;
use crate::certs;
use crate::hook_tools::{Juju, LogLevel, ToolError};
use crate::limits;
use crate::lxd::checked;
use crate::status::Status;
use std::collections::BTreeMap;

const STATUS: &str = "status";
const ENDPOINTS: &str = "known-endpoints";
const VERSION: &str = "app-version";
const LEAVING: &str = "leaving";
const STEADY: &str = "steady";
/// Digests of what each remote unit asked in the last steady pass, one per line.
const REQUESTS: &str = "requests";
/// Digests of what was logged last, so the same lines are not logged every five minutes.
pub(crate) const LOGGED_PROBLEMS: &str = "logged-problems";
pub(crate) const LOGGED_NOTE: &str = "note";
/// What LXD said that was not taken (`lxd::checked`), logged once until it changes.
pub(crate) const LOGGED_LXD: &str = "logged-lxd";

/// The cache as read at the start of the pass, and as it should be at the end.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cache {
    before: BTreeMap<String, String>,
    after: BTreeMap<String, String>,
}

impl Cache {
    pub(crate) fn new(read: BTreeMap<String, String>) -> Cache {
        let mut after = read.clone();
        // Only a pass that finds the unit steady again keeps it steady (`remember_steady`):
        // one that could not reach LXD or had no credentials set another status, which a
        // quiet `update-status` must not keep once the world looks as it did before.
        after.remove(STEADY);
        after.remove(REQUESTS);
        Cache { after, before: read }
    }

    pub(crate) fn leaving(&self) -> bool {
        self.before.contains_key(LEAVING)
    }

    pub(crate) fn mark_leaving(&mut self) {
        self.after.insert(LEAVING.into(), "true".into());
    }

    /// Member endpoints seen before, for failover when the configured one is down.
    pub(crate) fn known_endpoints(&self) -> Vec<String> {
        self.before.get(ENDPOINTS).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
    }

    /// Remembers the first few member URLs (`limits::FAILOVER_ENDPOINTS`), however many LXD
    /// lists: a bounded value, and a bounded number of endpoints a later hook may try.
    pub(crate) fn remember_endpoints(&mut self, urls: &[&String]) {
        let urls = checked::failover(urls.iter().copied());
        self.after.insert(ENDPOINTS.into(), serde_json::to_string(&urls).unwrap_or_default());
    }

    /// True when `version` differs from the one last set, and remembers it.
    pub(crate) fn version_changed(&mut self, version: &str) -> bool {
        let changed = self.before.get(VERSION).map(String::as_str) != Some(version);
        self.after.insert(VERSION.into(), version.into());
        changed
    }

    /// What the last steady full pass left, if the last full pass was steady.
    pub(crate) fn steady(&self) -> Option<Steady> {
        let text = self.before.get(STEADY)?;
        let mut parts = text.split(' ');
        let digest = parts.next()?.to_string();
        let at = parts.next()?.parse().ok()?;
        let first_expiry = parts.next()?.parse().ok()?;
        Some(Steady { digest, at, first_expiry })
    }

    /// Remembers `steady`, keeping the time of the one before when it said the same and is
    /// less than half `limits::FULL_PASS_EVERY` old: a pass over the same input then writes
    /// nothing, and the periodic full pass still comes within the hour.
    pub(crate) fn remember_steady(&mut self, steady: Option<&Steady>) {
        let Some(new) = steady else {
            self.after.remove(STEADY);
            return;
        };
        let half = limits::FULL_PASS_EVERY.as_secs() as i64 / 2;
        let at = match self.steady() {
            Some(old)
                if old.digest == new.digest
                    && old.first_expiry == new.first_expiry
                    && (0..half).contains(&(new.at - old.at)) =>
            {
                old.at
            }
            _ => new.at,
        };
        self.after.insert(STEADY.into(), format!("{} {} {}", new.digest, at, new.first_expiry));
    }

    /// Whether the last steady pass saw this request digest (`quiet::request_digest`).
    pub(crate) fn saw_request(&self, digest: &str) -> bool {
        self.before.get(REQUESTS).is_some_and(|text| text.lines().any(|line| line == digest))
    }

    /// Remembers the request digests of a steady pass, when they fit one state value (about
    /// 1,900 remote units); past that, relation hooks simply run the full pass.
    pub(crate) fn remember_requests(&mut self, mut digests: Vec<String>) {
        digests.sort();
        let text = digests.join("\n");
        if text.len() <= limits::STATE_VALUE_BYTES {
            self.after.insert(REQUESTS.into(), text);
        }
    }

    /// True when `status` differs from the one last set, and remembers it.
    pub(crate) fn status_changed(&mut self, status: &Status) -> bool {
        let key = format!("{}:{}", status.kind.as_str(), status.message);
        let changed = self.before.get(STATUS) != Some(&key);
        self.after.insert(STATUS.into(), key);
        changed
    }

    /// Whether `status` is the one the last pass set.
    pub(crate) fn is_last_status(&self, status: &Status) -> bool {
        self.before.get(STATUS) == Some(&format!("{}:{}", status.kind.as_str(), status.message))
    }

    /// Logs `lines` at `level` only when they differ from what was logged last time under
    /// `key`, so a requirer's garbage is reported once, not every five minutes.
    pub(crate) fn log_once(
        &mut self,
        juju: &mut Juju,
        key: &str,
        level: LogLevel,
        lines: &[String],
    ) -> Result<(), ToolError> {
        let digest = if lines.is_empty() { String::new() } else { certs::fingerprint(lines.join("\n").as_bytes()) };
        if self.before.get(key).map(String::as_str).unwrap_or("") == digest {
            return Ok(());
        }
        juju.log_lines(level, lines)?;
        self.after.insert(key.into(), digest);
        Ok(())
    }

    /// Writes the keys that changed, in one `state-set`; a removed key is written empty. A value
    /// past `limits::STATE_VALUE_BYTES` (none is, by the bounds above) is written empty too:
    /// the cache only saves work, and `state-set` refusing it would fail the hook.
    pub(crate) fn save(&self, juju: &mut Juju) -> Result<(), ToolError> {
        let fits = |v: &String| if v.len() <= limits::STATE_VALUE_BYTES { v.clone() } else { String::new() };
        let mut changed: BTreeMap<String, String> = self
            .after
            .iter()
            .map(|(k, v)| (k.clone(), fits(v)))
            .filter(|(k, v)| self.before.get(k) != Some(v))
            .collect();
        for gone in self.before.keys().filter(|k| !self.after.contains_key(*k) && !self.before[*k].is_empty()) {
            changed.insert(gone.clone(), String::new());
        }
        if changed.is_empty() {
            return Ok(());
        }
        juju.state_set(&changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Agent;

    #[test]
    fn only_the_first_few_member_urls_are_remembered_however_many_lxd_lists() {
        let urls: Vec<String> = (0..5_000).map(|i| format!("https://10.{}.{}.1:8443", i / 250, i % 250)).collect();
        let refs: Vec<&String> = urls.iter().collect();
        let mut cache = Cache::default();
        cache.remember_endpoints(&refs);
        let mut agent = Agent::leader();
        cache.save(&mut Juju::new(&mut agent)).expect("state-set takes it");
        let remembered = Cache::new(agent.state.clone()).known_endpoints();
        assert_eq!(remembered, urls[..limits::FAILOVER_ENDPOINTS]);
        assert!(agent.refused().next().is_none());
    }

    #[test]
    fn a_value_past_the_state_quota_is_never_written() {
        let mut agent = Agent::leader();
        agent.state.insert(VERSION.into(), "5.0.2".into());
        let mut cache = Cache::new(agent.state.clone());
        assert!(cache.version_changed(&"9".repeat(limits::STATE_VALUE_BYTES + 1)));
        cache.save(&mut Juju::new(&mut agent)).expect("state-set takes it");
        assert!(agent.refused().next().is_none());
        assert_eq!(agent.state.get(VERSION).map(String::len).unwrap_or(0), 0, "dropped, not written");
    }
}
