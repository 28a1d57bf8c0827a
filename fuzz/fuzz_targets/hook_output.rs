//! What the Juju hook tools print, through the typed wrappers in `hook_tools`: every reader is
//! handed the same fuzzed stdout, by the in-memory agent (`memory::Agent::answer_always`).
//! Input: the stdout bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lxd_integrator::hook_tools::{Juju, parse_relation_id};
use lxd_integrator::memory::{Agent, printed};

/// Every tool the readers call prints `data`.
const TOOLS: &[&str] =
    &["config-get", "is-leader", "relation-ids", "relation-list", "relation-get", "state-get", "action-get", "credential-get"];

fuzz_target!(|data: &[u8]| {
    let mut tools = Agent::default();
    for tool in TOOLS {
        tools.answer_always(tool, printed(data));
    }
    let mut juju = Juju::new(&mut tools);
    let _ = juju.config_get();
    let _ = juju.is_leader();
    if let Ok(ids) = juju.relation_ids("api") {
        // Every id came from an entry of the list.
        let list: Vec<String> = serde_json::from_slice::<Option<Vec<String>>>(data).ok().flatten().unwrap_or_default();
        assert!(ids.len() <= list.len());
    }
    let _ = juju.relation_list(1);
    if let Ok(Some(app)) = juju.relation_list_app(1) {
        assert!(!app.is_empty());
    }
    let _ = juju.relation_get(1, "req/0", false);
    let _ = juju.state_get();
    let _ = juju.action_get();
    let _ = juju.credential_get();
    // The batched reads decode with the same functions, answer by answer.
    if let Ok(inputs) = juju.relation_inputs(&["api", "https"]) {
        assert_eq!(Ok(inputs.leader), juju.is_leader().map_err(|e| e.to_string()));
        assert_eq!(inputs.relation_ids.len(), 2, "one list per endpoint asked");
    }
    let _ = juju.connection_inputs();
    if let Ok(bags) = juju.relation_gets(&[(1, "req/0".into(), false), (1, "req".into(), true)]) {
        assert_eq!(bags.len(), 2);
    }
    let text = String::from_utf8_lossy(data);
    if let Some(id) = parse_relation_id(&text) {
        assert_eq!(text.rsplit(':').next().and_then(|t| t.parse().ok()), Some(id));
    }
});
