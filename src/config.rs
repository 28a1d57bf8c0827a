//! The charm's options (`config.yaml`), parsed once per pass into one typed value.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

pub const OPT_ENDPOINT: &str = "lxd_endpoint";
pub const OPT_CERT: &str = "lxd_client_cert";
pub const OPT_KEY: &str = "lxd_client_key";
pub const OPT_SERVER_CERT: &str = "lxd_server_cert";
/// Restricts every added entry to some LXD projects.
pub(crate) const OPT_TRUST_PROJECTS: &str = "trust-projects";
/// The URI of a Juju user secret holding the credentials (Juju >= 3.3).
pub(crate) const OPT_SECRET: &str = "lxd-credentials-secret";

/// A Juju secret URI in one of the forms Juju's `ParseURI` takes (juju/juju
/// `core/secrets/secret.go`): `secret:<id>`, a bare `<id>`, `secret://<model-uuid>/<id>`, where
/// the ID is an xid: 20 characters of `0-9a-v`. Checked here so that only such a string ever
/// reaches `secret-get`'s argv or a status message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUri(String);

impl SecretUri {
    pub(crate) fn parse(s: &str) -> Option<SecretUri> {
        let xid = |id: &str| id.len() == 20 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b));
        let uuid = |u: &str| {
            let groups: Vec<&str> = u.split('-').collect();
            groups.len() == 5
                && groups
                    .iter()
                    .zip([8, 4, 4, 4, 12])
                    .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        };
        let rest = match s.split_once(':') {
            Some(("secret", rest)) => rest,
            Some(_) => return None,
            None => s,
        };
        // `secret://<uuid>/<id>` names the model as the URL's host, `secret:<uuid>/<id>` in
        // its path; either way the model part must be a UUID.
        let (model, id) = match rest.strip_prefix("//") {
            Some(authority) => match authority.split_once('/') {
                Some((model, id)) => (Some(model), id),
                None => return None,
            },
            None => match rest.split_once('/') {
                Some((model, id)) => (Some(model), id),
                None => (None, rest),
            },
        };
        (model.is_none_or(uuid) && xid(id)).then(|| SecretUri(s.to_string()))
    }

    /// As the operator wrote it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `lxd-credentials-secret` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSetting {
    Uri(SecretUri),
    /// Set, but not a secret URI: never passed on, never quoted.
    Malformed,
}

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
    /// `lxd-credentials-secret`; `None` when unset or blank.
    pub credentials_secret: Option<SecretSetting>,
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
            .field(OPT_SECRET, &self.credentials_secret)
            .finish()
    }
}

impl Config {
    /// From `config-get --format=json`. A value of the wrong type counts as unset: Juju checks
    /// option types itself, so only a broken agent sends one.
    pub fn from_values(values: &BTreeMap<String, serde_json::Value>) -> Config {
        let text = |key: &str| {
            values.get(key).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty()).map(String::from)
        };
        Config {
            endpoint: text(OPT_ENDPOINT),
            client_cert: text(OPT_CERT),
            client_key: text(OPT_KEY),
            server_cert: text(OPT_SERVER_CERT),
            trust_projects: text(OPT_TRUST_PROJECTS).as_deref().and_then(parse_projects),
            credentials_secret: text(OPT_SECRET)
                .map(|s| SecretUri::parse(&s).map_or(SecretSetting::Malformed, SecretSetting::Uri)),
        }
    }
}

/// Parses `trust-projects`: comma-separated, blanks ignored, duplicates folded, order kept.
pub fn parse_projects(raw: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let list: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && seen.insert(p.to_string()))
        .map(String::from)
        .collect();
    if list.is_empty() { None } else { Some(list) }
}

/// A name short and plain enough to be an LXD project's, and so safe to repeat in a status or
/// a log: a value from config or from a requirer may hold anything, a key included.
pub fn plain_project_name(name: &str) -> bool {
    name.len() <= 63
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blank_and_mistyped_options_are_unset() {
        let values: BTreeMap<String, serde_json::Value> = [
            (OPT_ENDPOINT, json!("  ")),
            (OPT_KEY, json!(42)),
            (OPT_CERT, json!(" C ")),
            (OPT_TRUST_PROJECTS, json!(" a, ,b,a ")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let c = Config::from_values(&values);
        assert_eq!((c.endpoint, c.client_key, c.client_cert.as_deref()), (None, None, Some("C")));
        assert_eq!(c.trust_projects, Some(vec!["a".to_string(), "b".to_string()]));
    }

    #[test]
    fn the_secret_option_takes_the_uri_forms_juju_does() {
        let id = "cn3q8gvmp25c7bt7nqkg";
        let uuid = "deadbeef-0bad-400d-8000-4b1d0d06f00d";
        for ok in
            [format!("secret:{id}"), id.to_string(), format!("secret://{uuid}/{id}"), format!("secret:{uuid}/{id}")]
        {
            assert_eq!(SecretUri::parse(&ok).map(|u| u.to_string()), Some(ok.clone()), "{ok}");
        }
        for bad in [
            "",
            "secret:",
            "secret:short",
            "http://x",
            "secret://host/cn3q8gvmp25c7bt7nqkg",
            "secret://cn3q8gvmp25c7bt7nqkg",
            "secret:CN3Q8GVMP25C7BT7NQKG",
            "secret:cn3q8gvmp25c7bt7nqkg x",
        ] {
            assert_eq!(SecretUri::parse(bad), None, "{bad}");
        }
        let config = |v: &str| Config::from_values(&[(OPT_SECRET.to_string(), json!(v))].into_iter().collect());
        assert_eq!(
            config(&format!(" secret:{id} ")).credentials_secret,
            SecretUri::parse(&format!("secret:{id}")).map(SecretSetting::Uri)
        );
        assert_eq!(config("my-creds").credentials_secret, Some(SecretSetting::Malformed));
        assert_eq!(config("  ").credentials_secret, None);
    }

    #[test]
    fn debug_never_shows_a_value() {
        // (The option `lxd-credentials-secret` is named in it: look for the value itself.)
        let c = Config { client_key: Some("-----BEGIN PRIVATE KEY-----hidden".into()), ..Default::default() };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hidden") && !shown.contains("PRIVATE") && shown.contains("lxd_client_key: \"set\""),
            "{shown}"
        );
    }
}
