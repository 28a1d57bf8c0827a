//! Where the LXD credentials come from.
//!
//! Precedence: the cloud credential Juju grants with `juju trust` (`credential-get`) wins when it
//! is an LXD certificate credential; otherwise the four `lxd_*` config options, which must then
//! be set together. Both are re-read on every hook, so rotation and revocation are noticed.

use crate::config::Config;
use crate::endpoint::{Endpoint, EndpointError};
use crate::hook_tools::CredentialAnswer;

/// The TLS material for one LXD: kept in memory only, never logged (Debug redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsCredentials {
    pub client_cert_pem: String,
    pub client_key_pem: String,
    /// The LXD server (or cluster) certificate to pin, or a CA in PKI mode.
    pub server_cert_pem: String,
}

impl std::fmt::Debug for TlsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsCredentials { <redacted> }")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `juju trust` and `credential-get`.
    Trust,
    /// The `lxd_*` config options.
    Config,
}

impl Source {
    /// Where the endpoint of this source is set, as an operator would look for it.
    fn endpoint_option(self) -> &'static str {
        match self {
            Source::Trust => "the cloud credential's endpoint",
            Source::Config => OPT_ENDPOINT,
        }
    }
}

/// A short identifier from Juju (a cloud type, an auth type) is quoted; anything else is only
/// called unexpected, so a status can never carry an arbitrary value.
fn word(value: &str) -> String {
    let plain = value.len() <= 32 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain && !value.is_empty() { format!("{value:?}") } else { "(unexpected value)".into() }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::Trust => "juju trust",
            Source::Config => "config",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub endpoint: Endpoint,
    pub tls: TlsCredentials,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialProblem {
    /// Neither trust nor config: the operator must do something.
    #[error("Missing credentials access; grant with: juju trust")]
    Missing,
    /// Some `lxd_*` options set, others not.
    #[error("config incomplete: set {}", .0.join(", "))]
    IncompleteConfig(Vec<String>),
    #[error("{} {error}; set an https URL such as https://10.0.0.1:8443", origin.endpoint_option())]
    BadEndpoint { origin: Source, error: EndpointError },
    /// The trusted credential is not one we can use and there is no config fallback.
    #[error("cloud credential unusable ({0}); set the lxd_* config options")]
    UnusableCloudCredential(String),
    /// LXD would treat an expired client certificate as untrusted; say the real cause.
    #[error("{0} client certificate is expired or not yet valid; rotate the credential")]
    ClientCertOutsideValidity(Source),
    /// TLS material that cannot be used, named by where it is set; the reason never quotes it.
    #[error("{where_} is unusable: {why}")]
    UnusableMaterial { where_: &'static str, why: String },
}

/// Refuses a client certificate outside its validity period. Unparsable material is left to
/// the TLS layer, which names the problem more precisely.
pub fn check_validity(creds: &Credentials, now: i64) -> Result<(), CredentialProblem> {
    let Ok(blocks) = crate::certs::pem_blocks(&creds.tls.client_cert_pem) else { return Ok(()) };
    let Some(info) = blocks.first().and_then(|b| crate::certs::inspect_der(&b.der).ok()) else { return Ok(()) };
    if now < info.not_before || now > info.not_after {
        return Err(CredentialProblem::ClientCertOutsideValidity(creds.source));
    }
    Ok(())
}

pub use crate::config::{OPT_CERT, OPT_ENDPOINT, OPT_KEY, OPT_SERVER_CERT};

/// Refuses TLS material the client could not be built from, naming the option (or the cloud
/// credential's attribute) that holds it, so an operator who pasted the wrong thing knows
/// where to look; the reason is the parser's and never quotes the value.
pub fn check_material(creds: &Credentials) -> Result<(), CredentialProblem> {
    use crate::pin::PinError;
    let Err(e) = crate::pin::client_config(&creds.tls) else { return Ok(()) };
    let (config, cloud) = match &e {
        PinError::ServerCert(_) => (OPT_SERVER_CERT, "the cloud credential's server-cert"),
        PinError::ClientCert(_) => (OPT_CERT, "the cloud credential's client-cert"),
        PinError::ClientKey(_) | PinError::KeyMismatch => (OPT_KEY, "the cloud credential's client-key"),
        PinError::Tls(_) => (OPT_CERT, "the cloud credential"),
    };
    let where_ = if creds.source == Source::Config { config } else { cloud };
    let why = match e {
        PinError::ServerCert(why) | PinError::ClientCert(why) | PinError::ClientKey(why) | PinError::Tls(why) => why,
        PinError::KeyMismatch => "the key does not belong to the client certificate".into(),
    };
    Err(CredentialProblem::UnusableMaterial { where_, why })
}

/// Reads the cloud credential (`credential-get --format=json`), returning why it is unusable.
fn from_cloud(spec: &serde_json::Value, config: &Config) -> Result<Credentials, String> {
    let kind = spec.get("type").and_then(|v| v.as_str()).unwrap_or("");
    if kind != "lxd" {
        return Err(format!("cloud type {} is not lxd", word(kind)));
    }
    let cred = spec.get("credential").ok_or("no credential")?;
    let auth = cred.get("auth-type").and_then(|v| v.as_str()).unwrap_or("");
    if auth != "certificate" {
        return Err(format!("auth-type {} is not certificate", word(auth)));
    }
    let attrs = cred.get("attrs").ok_or("no attrs")?;
    let attr = |k: &str| attrs.get(k).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty());
    let missing: Vec<&str> = ["client-cert", "client-key", "server-cert"].into_iter().filter(|k| attr(k).is_none()).collect();
    if !missing.is_empty() {
        return Err(format!("missing {}", missing.join(", ")));
    }
    // Some local clouds give no endpoint; the config may name it.
    let raw_endpoint = spec
        .get("endpoint")
        .and_then(|v| v.as_str())
        .filter(|s| !s.trim().is_empty())
        .or(config.endpoint.as_deref())
        .ok_or("no endpoint; set lxd_endpoint")?;
    let endpoint = Endpoint::parse(raw_endpoint).map_err(|e| format!("endpoint: {e}"))?;
    Ok(Credentials {
        endpoint,
        tls: TlsCredentials {
            client_cert_pem: attr("client-cert").unwrap_or_default().to_string(),
            client_key_pem: attr("client-key").unwrap_or_default().to_string(),
            server_cert_pem: attr("server-cert").unwrap_or_default().to_string(),
        },
        source: Source::Trust,
    })
}

fn from_config(config: &Config) -> Result<Option<Credentials>, CredentialProblem> {
    let opts = [OPT_ENDPOINT, OPT_CERT, OPT_KEY, OPT_SERVER_CERT];
    let set: Vec<Option<&str>> =
        [&config.endpoint, &config.client_cert, &config.client_key, &config.server_cert].into_iter().map(|v| v.as_deref()).collect();
    if set.iter().all(Option::is_none) {
        return Ok(None);
    }
    let missing: Vec<String> = opts.iter().zip(&set).filter(|(_, v)| v.is_none()).map(|(k, _)| k.to_string()).collect();
    if !missing.is_empty() {
        return Err(CredentialProblem::IncompleteConfig(missing));
    }
    let [Some(ep), Some(cert), Some(key), Some(server)] = set.as_slice() else {
        return Err(CredentialProblem::IncompleteConfig(vec![]));
    };
    let endpoint = Endpoint::parse(ep).map_err(|error| CredentialProblem::BadEndpoint { origin: Source::Config, error })?;
    Ok(Some(Credentials {
        endpoint,
        tls: TlsCredentials { client_cert_pem: cert.to_string(), client_key_pem: key.to_string(), server_cert_pem: server.to_string() },
        source: Source::Config,
    }))
}

/// What the charm should use, and a note for the log when the cloud credential was passed over.
pub fn resolve(answer: &CredentialAnswer, config: &Config) -> (Result<Credentials, CredentialProblem>, Option<String>) {
    let cloud = match answer {
        CredentialAnswer::Granted(spec) => Some(from_cloud(spec, config)),
        CredentialAnswer::NotTrusted | CredentialAnswer::Unsupported => None,
    };
    match cloud {
        Some(Ok(creds)) => (Ok(creds), None),
        Some(Err(why)) => match from_config(config) {
            Ok(Some(creds)) => (Ok(creds), Some(format!("cloud credential not usable ({why}); using config"))),
            Ok(None) => (Err(CredentialProblem::UnusableCloudCredential(why)), None),
            Err(e) => (Err(e), None),
        },
        None => match from_config(config) {
            Ok(Some(creds)) => (Ok(creds), None),
            Ok(None) => (Err(CredentialProblem::Missing), None),
            Err(e) => (Err(e), None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unusable_material_names_the_option_not_the_value() {
        let secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n";
        let creds = Credentials {
            endpoint: Endpoint::parse("10.0.0.1").expect("endpoint"),
            tls: TlsCredentials { client_cert_pem: secret.into(), client_key_pem: secret.into(), server_cert_pem: secret.into() },
            source: Source::Config,
        };
        let said = check_material(&creds).expect_err("unusable").to_string();
        assert!(said.starts_with("lxd_server_cert is unusable: "), "{said}");
        assert!(!said.contains("TOPSECRET"), "{said}");
    }

    fn spec() -> serde_json::Value {
        json!({"type": "lxd", "name": "localhost", "endpoint": "https://10.0.0.1",
               "credential": {"auth-type": "certificate", "attrs": {
                   "client-cert": "CERT", "client-key": "KEY", "server-cert": "SERVER"}}})
    }

    fn config(pairs: &[(&str, &str)]) -> Config {
        let values: std::collections::BTreeMap<String, serde_json::Value> = pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        Config::from_values(&values)
    }

    fn full_config() -> Config {
        config(&[(OPT_ENDPOINT, "10.0.0.9:9443"), (OPT_CERT, "C"), (OPT_KEY, "K"), (OPT_SERVER_CERT, "S")])
    }

    #[test]
    fn trust_wins_over_config() {
        let (got, note) = resolve(&CredentialAnswer::Granted(spec()), &full_config());
        let creds = got.expect("usable");
        assert_eq!(creds.source, Source::Trust);
        assert_eq!(creds.endpoint.url(), "https://10.0.0.1:8443");
        assert_eq!(creds.tls.client_key_pem, "KEY");
        assert_eq!(note, None);
    }

    #[test]
    fn config_is_the_fallback_when_not_trusted_or_unsupported() {
        for answer in [CredentialAnswer::NotTrusted, CredentialAnswer::Unsupported] {
            let creds = resolve(&answer, &full_config()).0.expect("usable");
            assert_eq!(creds.source, Source::Config);
            assert_eq!(creds.endpoint.url(), "https://10.0.0.9:9443");
        }
    }

    #[test]
    fn nothing_at_all_asks_for_juju_trust() {
        let (got, _) = resolve(&CredentialAnswer::NotTrusted, &config(&[]));
        let err = got.expect_err("missing");
        assert_eq!(err.to_string(), "Missing credentials access; grant with: juju trust");
    }

    #[test]
    fn a_partial_config_names_what_is_missing() {
        let (got, _) = resolve(&CredentialAnswer::NotTrusted, &config(&[(OPT_ENDPOINT, "x"), (OPT_KEY, " ")]));
        assert_eq!(got.expect_err("partial").to_string(), "config incomplete: set lxd_client_cert, lxd_client_key, lxd_server_cert");
    }

    #[test]
    fn a_bad_config_endpoint_is_named() {
        let c = Config { endpoint: Some("ftp://x".into()), ..full_config() };
        let (got, _) = resolve(&CredentialAnswer::NotTrusted, &c);
        let said = got.expect_err("bad").to_string();
        assert!(said.starts_with("lxd_endpoint uses a scheme other than https"), "{said}");
        assert!(!said.contains("ftp"), "the value is never quoted: {said}");
    }

    #[test]
    fn a_non_lxd_cloud_falls_back_to_config_and_says_why() {
        let aws = json!({"type": "ec2", "credential": {"auth-type": "access-key", "attrs": {}}});
        let (got, note) = resolve(&CredentialAnswer::Granted(aws.clone()), &full_config());
        assert_eq!(got.expect("config").source, Source::Config);
        assert!(note.expect("note").contains("\"ec2\""));
        let (got, _) = resolve(&CredentialAnswer::Granted(aws), &config(&[]));
        assert!(matches!(got, Err(CredentialProblem::UnusableCloudCredential(_))));
    }

    #[test]
    fn a_cloud_without_endpoint_may_take_it_from_config() {
        let mut s = spec();
        s["endpoint"] = json!("");
        let (got, _) = resolve(&CredentialAnswer::Granted(s.clone()), &config(&[(OPT_ENDPOINT, "[fd00::1]")]));
        assert_eq!(got.expect("usable").endpoint.url(), "https://[fd00::1]:8443");
        let (got, _) = resolve(&CredentialAnswer::Granted(s), &config(&[]));
        assert!(matches!(got, Err(CredentialProblem::UnusableCloudCredential(_))));
    }

    #[test]
    fn an_expired_client_certificate_is_named_as_such() {
        let old = crate::certs::test_certs::expired("old");
        let fresh = crate::certs::test_certs::client("fresh");
        let mut creds = resolve(&CredentialAnswer::Granted(spec()), &config(&[])).0.expect("usable");
        creds.tls.client_cert_pem = old.cert_pem;
        let err = check_validity(&creds, crate::certs::now_unix()).expect_err("expired");
        assert_eq!(err.to_string(), "juju trust client certificate is expired or not yet valid; rotate the credential");
        creds.tls.client_cert_pem = fresh.cert_pem;
        assert_eq!(check_validity(&creds, crate::certs::now_unix()), Ok(()));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let creds = resolve(&CredentialAnswer::Granted(spec()), &config(&[])).0.expect("usable");
        let shown = format!("{creds:?}");
        assert!(!shown.contains("KEY") && !shown.contains("CERT"), "{shown}");
    }
}
