//! The charm's options (`config.yaml`), parsed once per pass into one typed value.

use crate::plan;
use std::collections::BTreeMap;

pub const OPT_ENDPOINT: &str = "lxd_endpoint";
pub const OPT_CERT: &str = "lxd_client_cert";
pub const OPT_KEY: &str = "lxd_client_key";
pub const OPT_SERVER_CERT: &str = "lxd_server_cert";
/// Restricts every added entry to some LXD projects.
pub const OPT_TRUST_PROJECTS: &str = "trust-projects";

/// Everything the charm reads from `config-get`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The fallback credential, each option trimmed; blank counts as unset.
    pub endpoint: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub server_cert: Option<String>,
    /// `trust-projects`: comma-separated, blanks ignored, duplicates folded, order kept;
    /// `None` when unset or blank.
    pub trust_projects: Option<Vec<String>>,
}

/// Config values can hold a private key: Debug names which options are set, never a value.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "set" } else { "unset" };
        f.debug_struct("Config")
            .field(OPT_ENDPOINT, &set(&self.endpoint))
            .field(OPT_CERT, &set(&self.client_cert))
            .field(OPT_KEY, &set(&self.client_key))
            .field(OPT_SERVER_CERT, &set(&self.server_cert))
            .field(OPT_TRUST_PROJECTS, &self.trust_projects)
            .finish()
    }
}

impl Config {
    /// From `config-get --format=json`. A value of the wrong type counts as unset: Juju checks
    /// option types itself, so only a broken agent sends one.
    pub fn from_values(values: &BTreeMap<String, serde_json::Value>) -> Config {
        let text = |key: &str| values.get(key).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(String::from);
        Config {
            endpoint: text(OPT_ENDPOINT),
            client_cert: text(OPT_CERT),
            client_key: text(OPT_KEY),
            server_cert: text(OPT_SERVER_CERT),
            trust_projects: text(OPT_TRUST_PROJECTS).as_deref().and_then(plan::parse_projects),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blank_and_mistyped_options_are_unset() {
        let values: BTreeMap<String, serde_json::Value> =
            [(OPT_ENDPOINT, json!("  ")), (OPT_KEY, json!(42)), (OPT_CERT, json!(" C ")), (OPT_TRUST_PROJECTS, json!(" a, ,b,a "))]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let c = Config::from_values(&values);
        assert_eq!((c.endpoint, c.client_key, c.client_cert.as_deref()), (None, None, Some("C")));
        assert_eq!(c.trust_projects, Some(vec!["a".to_string(), "b".to_string()]));
    }

    #[test]
    fn debug_never_shows_a_value() {
        let c = Config { client_key: Some("-----BEGIN PRIVATE KEY-----secret".into()), ..Default::default() };
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret") && shown.contains("lxd_client_key: \"set\""), "{shown}");
    }
}
