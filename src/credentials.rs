//! Where the LXD credentials come from.
//!
//! Precedence, first usable wins:
//! 1. the cloud credential Juju grants with `juju trust` (`credential-get`), when it is an LXD
//!    certificate credential;
//! 2. the Juju user secret named by `lxd-credentials-secret` (Juju >= 3.3), whose keys
//!    `endpoint`, `client-cert`, `client-key` and `server-cert` must all be set. A secret that
//!    is set but cannot be used (malformed URI, not granted, removed, a key missing) blocks:
//!    it never falls through to the options below, which the operator meant to replace;
//! 3. the four `lxd_*` config options, which must then be set together.
//!
//! All are re-read on every hook, so rotation and revocation are noticed.
//!
//! A source that is set but not the one in use is never silent: an operator who pointed the
//! `lxd_*` options at one cluster while `juju trust` is granted for another would otherwise
//! manage the wrong LXD without a word. `Credentials::ignored` names such sources; the log
//! says which settings are ignored (never their values), the status names the source in use,
//! and `check-connection` reports both.

use crate::config::{Config, OPT_SECRET, SecretSetting, SecretUri};
use crate::endpoint::{Endpoint, EndpointError};

/// The keys of the credentials secret. They match Juju's secret key pattern
/// `^([a-z](?:-?[a-z0-9]){2,})$` (juju/juju `core/secrets/createsecret.go` `keyRegExp`) and
/// mirror `credential-get`'s attribute names.
pub(crate) const SECRET_ENDPOINT: &str = "endpoint";
pub(crate) const SECRET_CERT: &str = "client-cert";
pub(crate) const SECRET_KEY: &str = "client-key";
pub(crate) const SECRET_SERVER_CERT: &str = "server-cert";
pub(crate) const SECRET_KEYS: [&str; 4] = [SECRET_ENDPOINT, SECRET_CERT, SECRET_KEY, SECRET_SERVER_CERT];

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
    /// The Juju user secret named by `lxd-credentials-secret`.
    Secret,
    /// The `lxd_*` config options.
    Config,
}

impl Source {
    /// What an operator sets to use this source, as the status and `check-connection` name it.
    pub(crate) fn setting(self) -> &'static str {
        match self {
            Source::Trust => "juju trust",
            Source::Secret => OPT_SECRET,
            Source::Config => "lxd_* options",
        }
    }

    /// Where the endpoint of this source is set, as an operator would look for it.
    pub(crate) fn endpoint_option(self) -> &'static str {
        match self {
            Source::Trust => "the cloud credential's endpoint",
            Source::Secret => "the secret's endpoint key",
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
            Source::Secret => "secret",
            Source::Config => "config",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub endpoint: Endpoint,
    pub tls: TlsCredentials,
    pub source: Source,
    /// Other sources that are set (granted, configured) but not used, in precedence order.
    pub ignored: Vec<Source>,
}

/// Why the pass has no credentials to use. What the operator reads is `status.rs`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialProblem {
    /// Neither trust nor config: the operator must do something.
    Missing,
    /// Some `lxd_*` options set, others not.
    IncompleteConfig(Vec<String>),
    BadEndpoint {
        origin: Source,
        error: EndpointError,
    },
    /// The trusted credential is not one we can use and there is no config fallback.
    UnusableCloudCredential(String),
    /// LXD would treat an expired client certificate as untrusted; say the real cause.
    ClientCertOutsideValidity(Source),
    /// TLS material that cannot be used, named by where it is set; the reason never quotes it.
    UnusableMaterial {
        where_: &'static str,
        why: String,
    },
    /// `lxd-credentials-secret` is set to something that is not a secret URI (never quoted:
    /// it may be a value pasted in the wrong place).
    BadSecretUri,
    /// No `secret-get` here: a Juju before 3.0 (user secrets need 3.3).
    SecretsUnsupported,
    SecretNotGranted {
        secret: SecretUri,
        app: String,
    },
    SecretNotFound(SecretUri),
    /// Keys of the secret that are missing or blank, in `SECRET_KEYS` order.
    SecretIncomplete {
        secret: SecretUri,
        missing: Vec<&'static str>,
    },
    /// The secret was not read although the config names it (a caller's mistake; the next
    /// hook reads it).
    SecretUnread(SecretUri),
}

impl std::error::Error for CredentialProblem {}

/// Refuses a client certificate outside its validity period. Unparsable material is left to
/// the TLS layer, which names the problem more precisely.
pub(crate) fn check_validity(creds: &Credentials, now: i64) -> Result<(), CredentialProblem> {
    let Ok(blocks) = crate::certs::pem_blocks(&creds.tls.client_cert_pem) else { return Ok(()) };
    let Some(info) = blocks.first().and_then(|b| crate::certs::inspect_der(&b.der).ok()) else { return Ok(()) };
    if now < info.not_before || now > info.not_after {
        return Err(CredentialProblem::ClientCertOutsideValidity(creds.source));
    }
    Ok(())
}

pub use crate::config::{OPT_CERT, OPT_ENDPOINT, OPT_KEY, OPT_SERVER_CERT};

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
    let missing: Vec<&str> =
        ["client-cert", "client-key", "server-cert"].into_iter().filter(|k| attr(k).is_none()).collect();
    if !missing.is_empty() {
        return Err(format!("missing {}", missing.join(", ")));
    }
    // Some local clouds give no endpoint; the config may name it.
    let raw_endpoint = cloud_endpoint(spec).or(config.endpoint.as_deref()).ok_or("no endpoint; set lxd_endpoint")?;
    let endpoint = Endpoint::parse(raw_endpoint).map_err(|e| format!("endpoint: {e}"))?;
    Ok(Credentials {
        endpoint,
        tls: TlsCredentials {
            client_cert_pem: attr("client-cert").unwrap_or_default().to_string(),
            client_key_pem: attr("client-key").unwrap_or_default().to_string(),
            server_cert_pem: attr("server-cert").unwrap_or_default().to_string(),
        },
        source: Source::Trust,
        ignored: Vec::new(),
    })
}

/// The cloud credential's own endpoint, when it names one.
fn cloud_endpoint(spec: &serde_json::Value) -> Option<&str> {
    spec.get("endpoint").and_then(|v| v.as_str()).filter(|s| !s.trim().is_empty())
}

/// Whether a cloud credential, were it used, would take its endpoint from `lxd_endpoint`.
fn borrows_endpoint(answer: &CredentialAnswer) -> bool {
    matches!(answer, CredentialAnswer::Granted(spec) if cloud_endpoint(spec).is_none())
}

/// The `lxd_*` options that are set, by name; `lxd_endpoint` left out when `endpoint_in_use`
/// (the cloud credential named no endpoint and took it from there).
fn options_set(config: &Config, endpoint_in_use: bool) -> Vec<&'static str> {
    [
        (OPT_ENDPOINT, &config.endpoint),
        (OPT_CERT, &config.client_cert),
        (OPT_KEY, &config.client_key),
        (OPT_SERVER_CERT, &config.server_cert),
    ]
    .into_iter()
    .filter(|(name, value)| value.is_some() && !(endpoint_in_use && *name == OPT_ENDPOINT))
    .map(|(name, _)| name)
    .collect()
}

/// The sources other than `used` that are set: trust granted (usable or not), the secret
/// option, any `lxd_*` option the credential in use does not take its endpoint from.
fn ignored(answer: &CredentialAnswer, config: &Config, used: Source) -> Vec<Source> {
    let endpoint_in_use = used == Source::Trust && borrows_endpoint(answer);
    let set = [
        (Source::Trust, matches!(answer, CredentialAnswer::Granted(_))),
        (Source::Secret, config.credentials_secret.is_some()),
        (Source::Config, !options_set(config, endpoint_in_use).is_empty()),
    ];
    set.into_iter().filter(|(source, is_set)| *is_set && *source != used).map(|(source, _)| source).collect()
}

fn from_config(config: &Config) -> Result<Option<Credentials>, CredentialProblem> {
    let opts = [OPT_ENDPOINT, OPT_CERT, OPT_KEY, OPT_SERVER_CERT];
    let set: Vec<Option<&str>> = [&config.endpoint, &config.client_cert, &config.client_key, &config.server_cert]
        .into_iter()
        .map(|v| v.as_deref())
        .collect();
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
    let endpoint =
        Endpoint::parse(ep).map_err(|error| CredentialProblem::BadEndpoint { origin: Source::Config, error })?;
    Ok(Some(Credentials {
        endpoint,
        tls: TlsCredentials {
            client_cert_pem: cert.to_string(),
            client_key_pem: key.to_string(),
            server_cert_pem: server.to_string(),
        },
        source: Source::Config,
        ignored: Vec::new(),
    }))
}

/// The secret named by the config, as this application read it.
#[derive(Debug, Clone, Copy)]
pub struct SecretRead<'a> {
    /// This application, for the `juju grant-secret` a status names.
    pub app: &'a str,
    pub answer: &'a SecretAnswer,
}

/// The secret a pass must read, if any: the one the config names, only when the cloud
/// credential is not usable (trust wins, so the secret is not even read then).
pub fn secret_to_read<'c>(answer: &CredentialAnswer, config: &'c Config) -> Option<&'c SecretUri> {
    if let CredentialAnswer::Granted(spec) = answer
        && from_cloud(spec, config).is_ok()
    {
        return None;
    }
    match &config.credentials_secret {
        Some(SecretSetting::Uri(uri)) => Some(uri),
        _ => None,
    }
}

/// Logged (once) when the private key sits in plain charm config.
pub const MOVE_KEY_TO_SECRET: &str = "the LXD client key is plain charm config (lxd_client_key); with Juju 3.3+ keep the credentials in a user secret instead (lxd-credentials-secret, see the README, Credentials)";

/// What the charm should use, and a note for the log: why the cloud credential was passed
/// over, what was set but not used, that the key would be safer in a secret. `secret` is the
/// answer for `secret_to_read`'s secret, when it asked for one.
pub fn resolve(
    answer: &CredentialAnswer,
    secret: Option<SecretRead>,
    config: &Config,
) -> (Result<Credentials, CredentialProblem>, Option<String>) {
    let mut notes: Vec<String> = Vec::new();
    let cloud = match answer {
        CredentialAnswer::Granted(spec) => Some(from_cloud(spec, config)),
        CredentialAnswer::NotTrusted | CredentialAnswer::Unsupported => None,
    };
    let unusable_cloud = match cloud {
        Some(Ok(creds)) => {
            if config.credentials_secret.is_some() {
                notes.push(format!("{OPT_SECRET} is set but not read: the juju trust credential is in use"));
            }
            let options = options_set(config, borrows_endpoint(answer));
            if !options.is_empty() {
                notes.push(format!(
                    "the lxd_* options are ignored while the juju trust credential is in use (set: {})",
                    options.join(", ")
                ));
            }
            return (Ok(with_ignored(creds, answer, config)), join(notes));
        }
        Some(Err(why)) => Some(why),
        None => None,
    };
    let result = match &config.credentials_secret {
        // Set: the secret or a status, never the plain options.
        Some(setting) => {
            if !options_set(config, false).is_empty() {
                notes.push(format!("the lxd_* options are ignored while {OPT_SECRET} is set"));
            }
            from_secret(setting, secret)
        }
        None => match from_config(config) {
            Ok(Some(creds)) => {
                notes.push(MOVE_KEY_TO_SECRET.to_string());
                Ok(creds)
            }
            Ok(None) => Err(match &unusable_cloud {
                Some(why) => CredentialProblem::UnusableCloudCredential(why.clone()),
                None => CredentialProblem::Missing,
            }),
            Err(e) => Err(e),
        },
    };
    if let (Some(why), Ok(creds)) = (&unusable_cloud, &result) {
        notes.insert(0, format!("cloud credential not usable ({why}); using {}", creds.source));
    }
    (result.map(|c| with_ignored(c, answer, config)), join(notes))
}

fn with_ignored(creds: Credentials, answer: &CredentialAnswer, config: &Config) -> Credentials {
    Credentials { ignored: ignored(answer, config, creds.source), ..creds }
}

fn join(notes: Vec<String>) -> Option<String> {
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// Credentials from the secret's content: all four keys, or a status naming what is wrong.
fn from_secret(setting: &SecretSetting, read: Option<SecretRead>) -> Result<Credentials, CredentialProblem> {
    let uri = match setting {
        SecretSetting::Malformed => return Err(CredentialProblem::BadSecretUri),
        SecretSetting::Uri(uri) => uri,
    };
    let Some(read) = read else { return Err(CredentialProblem::SecretUnread(uri.clone())) };
    let content = match read.answer {
        SecretAnswer::Unsupported => return Err(CredentialProblem::SecretsUnsupported),
        SecretAnswer::NotGranted => {
            return Err(CredentialProblem::SecretNotGranted { secret: uri.clone(), app: read.app.to_string() });
        }
        SecretAnswer::NotFound => return Err(CredentialProblem::SecretNotFound(uri.clone())),
        SecretAnswer::Content(content) => content,
    };
    let value = |k: &str| content.0.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let missing: Vec<&'static str> = SECRET_KEYS.into_iter().filter(|k| value(k).is_none()).collect();
    let (Some(ep), Some(cert), Some(key), Some(server)) =
        (value(SECRET_ENDPOINT), value(SECRET_CERT), value(SECRET_KEY), value(SECRET_SERVER_CERT))
    else {
        return Err(CredentialProblem::SecretIncomplete { secret: uri.clone(), missing });
    };
    let endpoint =
        Endpoint::parse(ep).map_err(|error| CredentialProblem::BadEndpoint { origin: Source::Secret, error })?;
    Ok(Credentials {
        endpoint,
        tls: TlsCredentials {
            client_cert_pem: cert.to_string(),
            client_key_pem: key.to_string(),
            server_cert_pem: server.to_string(),
        },
        source: Source::Secret,
        ignored: Vec::new(),
    })
}

// --- What the hook tools answered (filled in by `hook_tools`).

/// What `credential-get` said.
#[derive(Debug)]
pub enum CredentialAnswer {
    Granted(serde_json::Value),
    /// `permission denied`: the application is not trusted.
    NotTrusted,
    /// No `credential-get` on this Juju.
    Unsupported,
}

/// The content of a secret revision, key → value. It holds the client key: kept in memory,
/// and Debug names the keys only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretContent(pub std::collections::BTreeMap<String, String>);

impl std::fmt::Debug for SecretContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What `secret-get` said about a user secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretAnswer {
    Content(SecretContent),
    /// `ERROR permission denied`: the secret is not granted to this application
    /// (juju/juju `apiserver/facades/agent/secretsmanager/secrets.go`: `canRead` fails with
    /// `apiservererrors.ErrPerm`).
    NotGranted,
    /// `ERROR secret "secret:<id>" not found`: no such secret, or it was removed
    /// (`state/secrets.go` `GetSecret`: `errors.NotFoundf("secret %q", uri)`).
    NotFound,
    /// No `secret-get` on this Juju (before 3.0).
    Unsupported,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pin::check_material;
    use serde_json::json;

    #[test]
    fn unusable_material_names_the_option_not_the_value() {
        let secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRET\n-----END PRIVATE KEY-----\n";
        let creds = Credentials {
            endpoint: Endpoint::parse("10.0.0.1").expect("endpoint"),
            tls: TlsCredentials {
                client_cert_pem: secret.into(),
                client_key_pem: secret.into(),
                server_cert_pem: secret.into(),
            },
            source: Source::Config,
            ignored: Vec::new(),
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
        let values: std::collections::BTreeMap<String, serde_json::Value> =
            pairs.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        Config::from_values(&values)
    }

    fn full_config() -> Config {
        config(&[(OPT_ENDPOINT, "10.0.0.9:9443"), (OPT_CERT, "C"), (OPT_KEY, "K"), (OPT_SERVER_CERT, "S")])
    }

    #[test]
    fn trust_wins_over_config_and_the_ignored_options_are_named_never_their_values() {
        let (got, note) = resolve(&CredentialAnswer::Granted(spec()), None, &full_config());
        let creds = got.expect("usable");
        assert_eq!(creds.source, Source::Trust);
        assert_eq!(creds.endpoint.url(), "https://10.0.0.1:8443");
        assert_eq!(creds.tls.client_key_pem, "KEY");
        assert_eq!(creds.ignored, vec![Source::Config]);
        assert_eq!(
            note.as_deref(),
            Some(
                "the lxd_* options are ignored while the juju trust credential is in use \
                 (set: lxd_endpoint, lxd_client_cert, lxd_client_key, lxd_server_cert)"
            )
        );
        // Alone, nothing is ignored and nothing said.
        let (got, note) = resolve(&CredentialAnswer::Granted(spec()), None, &config(&[]));
        assert_eq!((got.expect("usable").ignored, note), (vec![], None));
    }

    #[test]
    fn lxd_endpoint_is_not_ignored_when_the_cloud_credential_takes_its_endpoint_from_it() {
        let mut s = spec();
        s["endpoint"] = json!("");
        let granted = CredentialAnswer::Granted(s);
        let (got, note) = resolve(&granted, None, &config(&[(OPT_ENDPOINT, "10.0.0.9")]));
        let creds = got.expect("usable");
        assert_eq!((creds.source, creds.ignored, note), (Source::Trust, vec![], None));
        // Another option beside it is ignored, and only that one is named.
        let (got, note) = resolve(&granted, None, &config(&[(OPT_ENDPOINT, "10.0.0.9"), (OPT_CERT, "C")]));
        assert_eq!(got.expect("usable").ignored, vec![Source::Config]);
        assert!(note.is_some_and(|n| n.ends_with("(set: lxd_client_cert)")));
    }

    #[test]
    fn every_source_set_but_not_used_is_listed_in_precedence_order() {
        let secret = full_secret();
        let ignored = |answer: &CredentialAnswer, read: Option<SecretRead>, c: &Config| {
            let creds = resolve(answer, read, c).0.expect("usable");
            (creds.source, creds.ignored)
        };
        let trusted = CredentialAnswer::Granted(spec());
        let all = with_secret(full_config());
        assert_eq!(ignored(&trusted, None, &all), (Source::Trust, vec![Source::Secret, Source::Config]));
        assert_eq!(ignored(&trusted, None, &with_secret(config(&[]))), (Source::Trust, vec![Source::Secret]));
        assert_eq!(ignored(&CredentialAnswer::NotTrusted, read(&secret), &all), (Source::Secret, vec![Source::Config]));
        // Granted but unusable (another cloud's credential) is set, and passed over.
        let aws = CredentialAnswer::Granted(json!({"type": "ec2", "credential": {"auth-type": "access-key"}}));
        assert_eq!(ignored(&aws, read(&secret), &all), (Source::Secret, vec![Source::Trust, Source::Config]));
        assert_eq!(ignored(&aws, None, &full_config()), (Source::Config, vec![Source::Trust]));
        assert_eq!(ignored(&CredentialAnswer::NotTrusted, None, &full_config()), (Source::Config, vec![]));
        // What the status and check-connection call each.
        assert_eq!(
            [Source::Trust, Source::Secret, Source::Config].map(Source::setting),
            ["juju trust", "lxd-credentials-secret", "lxd_* options"]
        );
    }

    #[test]
    fn config_is_the_fallback_when_not_trusted_or_unsupported() {
        for answer in [CredentialAnswer::NotTrusted, CredentialAnswer::Unsupported] {
            let creds = resolve(&answer, None, &full_config()).0.expect("usable");
            assert_eq!(creds.source, Source::Config);
            assert_eq!(creds.endpoint.url(), "https://10.0.0.9:9443");
        }
    }

    #[test]
    fn nothing_at_all_asks_for_juju_trust() {
        let (got, _) = resolve(&CredentialAnswer::NotTrusted, None, &config(&[]));
        let err = got.expect_err("missing");
        assert_eq!(err.to_string(), "Missing credentials access; grant with: juju trust");
    }

    #[test]
    fn a_partial_config_names_what_is_missing() {
        let (got, _) = resolve(&CredentialAnswer::NotTrusted, None, &config(&[(OPT_ENDPOINT, "x"), (OPT_KEY, " ")]));
        assert_eq!(
            got.expect_err("partial").to_string(),
            "config incomplete: set lxd_client_cert, lxd_client_key, lxd_server_cert"
        );
    }

    #[test]
    fn a_bad_config_endpoint_is_named() {
        let c = Config { endpoint: Some("ftp://x".into()), ..full_config() };
        let (got, _) = resolve(&CredentialAnswer::NotTrusted, None, &c);
        let said = got.expect_err("bad").to_string();
        assert!(said.starts_with("lxd_endpoint uses a scheme other than https"), "{said}");
        assert!(!said.contains("ftp"), "the value is never quoted: {said}");
    }

    #[test]
    fn a_non_lxd_cloud_falls_back_to_config_and_says_why() {
        let aws = json!({"type": "ec2", "credential": {"auth-type": "access-key", "attrs": {}}});
        let (got, note) = resolve(&CredentialAnswer::Granted(aws.clone()), None, &full_config());
        assert_eq!(got.expect("config").source, Source::Config);
        assert!(note.expect("note").contains("\"ec2\""));
        let (got, _) = resolve(&CredentialAnswer::Granted(aws), None, &config(&[]));
        assert!(matches!(got, Err(CredentialProblem::UnusableCloudCredential(_))));
    }

    #[test]
    fn a_cloud_without_endpoint_may_take_it_from_config() {
        let mut s = spec();
        s["endpoint"] = json!("");
        let (got, _) = resolve(&CredentialAnswer::Granted(s.clone()), None, &config(&[(OPT_ENDPOINT, "[fd00::1]")]));
        assert_eq!(got.expect("usable").endpoint.url(), "https://[fd00::1]:8443");
        let (got, _) = resolve(&CredentialAnswer::Granted(s), None, &config(&[]));
        assert!(matches!(got, Err(CredentialProblem::UnusableCloudCredential(_))));
    }

    #[test]
    fn an_expired_client_certificate_is_named_as_such() {
        let old = crate::certs::test_certs::expired("old");
        let fresh = crate::certs::test_certs::self_signed("fresh");
        let mut creds = resolve(&CredentialAnswer::Granted(spec()), None, &config(&[])).0.expect("usable");
        creds.tls.client_cert_pem = old.cert_pem;
        let err = check_validity(&creds, crate::certs::now_unix()).expect_err("expired");
        assert_eq!(err.to_string(), "juju trust client certificate is expired or not yet valid; rotate the credential");
        creds.tls.client_cert_pem = fresh.cert_pem;
        assert_eq!(check_validity(&creds, crate::certs::now_unix()), Ok(()));
    }

    const URI: &str = "secret:cn3q8gvmp25c7bt7nqkg";

    fn with_secret(mut c: Config) -> Config {
        c.credentials_secret = crate::config::SecretUri::parse(URI).map(SecretSetting::Uri);
        c
    }

    fn content(pairs: &[(&str, &str)]) -> SecretAnswer {
        SecretAnswer::Content(crate::hook_tools::SecretContent(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ))
    }

    fn full_secret() -> SecretAnswer {
        content(&[(SECRET_ENDPOINT, "10.0.0.7"), (SECRET_CERT, "SC"), (SECRET_KEY, "SK\n"), (SECRET_SERVER_CERT, "SS")])
    }

    fn read(answer: &SecretAnswer) -> Option<SecretRead<'_>> {
        Some(SecretRead { app: "lxd-integrator", answer })
    }

    #[test]
    fn the_secret_comes_between_trust_and_the_plain_options() {
        let secret = full_secret();
        // Trust wins, and the secret is not even read.
        let trusted = CredentialAnswer::Granted(spec());
        assert_eq!(secret_to_read(&trusted, &with_secret(full_config())), None);
        let (got, note) = resolve(&trusted, None, &with_secret(full_config()));
        assert_eq!(got.expect("usable").source, Source::Trust);
        assert!(
            note.as_deref().is_some_and(|n| n.starts_with(
                "lxd-credentials-secret is set but not read: the juju trust credential is in use; \
                 the lxd_* options are ignored while the juju trust credential is in use"
            )),
            "{note:?}"
        );
        // Without trust the secret wins over the plain options, which are said to be ignored.
        let cfg = with_secret(full_config());
        assert_eq!(secret_to_read(&CredentialAnswer::NotTrusted, &cfg).map(|u| u.as_str()), Some(URI));
        let (got, note) = resolve(&CredentialAnswer::NotTrusted, read(&secret), &cfg);
        let creds = got.expect("usable");
        assert_eq!(
            (creds.source, creds.endpoint.url(), creds.tls.client_key_pem.as_str()),
            (Source::Secret, "https://10.0.0.7:8443".to_string(), "SK")
        );
        assert_eq!(note.as_deref(), Some("the lxd_* options are ignored while lxd-credentials-secret is set"));
        // A cloud credential of another cloud is passed over for the secret, and said so.
        let aws =
            CredentialAnswer::Granted(json!({"type": "ec2", "credential": {"auth-type": "access-key", "attrs": {}}}));
        assert!(secret_to_read(&aws, &cfg).is_some());
        let (got, note) = resolve(&aws, read(&secret), &with_secret(config(&[])));
        assert_eq!(got.expect("usable").source, Source::Secret);
        assert!(note.is_some_and(|n| {
            n.starts_with("cloud credential not usable (cloud type \"ec2\" is not lxd); using secret")
        }));
        // No secret option: nothing to read.
        assert_eq!(secret_to_read(&CredentialAnswer::NotTrusted, &full_config()), None);
    }

    #[test]
    fn a_secret_that_cannot_be_used_blocks_naming_the_fix_and_never_falls_through() {
        let config = with_secret(full_config());
        let said = |answer: &SecretAnswer| {
            resolve(&CredentialAnswer::NotTrusted, read(answer), &config).0.expect_err("blocked").to_string()
        };
        assert_eq!(
            said(&SecretAnswer::NotGranted),
            format!("{URI} not granted; run: juju grant-secret {URI} lxd-integrator")
        );
        assert_eq!(
            said(&SecretAnswer::NotFound),
            format!("{URI} not found; juju add-secret a new one and set lxd-credentials-secret to its ID")
        );
        assert_eq!(
            said(&SecretAnswer::Unsupported),
            "lxd-credentials-secret needs Juju 3.3+ user secrets; unset it and use juju trust or the lxd_* options"
        );
        assert_eq!(
            said(&content(&[(SECRET_ENDPOINT, "10.0.0.7"), (SECRET_CERT, "C"), (SECRET_KEY, " ")])),
            format!("{URI} lacks keys client-key, server-cert; update it with all four keys")
        );
        assert_eq!(
            said(&content(&[(SECRET_ENDPOINT, "x"), (SECRET_CERT, "C"), (SECRET_KEY, "K")])),
            format!("{URI} lacks key server-cert; update it with all four keys")
        );
        let bad_endpoint = said(&content(&[
            (SECRET_ENDPOINT, "ftp://x"),
            (SECRET_CERT, "C"),
            (SECRET_KEY, "K"),
            (SECRET_SERVER_CERT, "S"),
        ]));
        assert!(bad_endpoint.starts_with("the secret's endpoint key uses a scheme other than https"), "{bad_endpoint}");
        // Not a URI: said, never quoted, never read.
        let mut malformed = full_config();
        malformed.credentials_secret = Some(SecretSetting::Malformed);
        assert_eq!(secret_to_read(&CredentialAnswer::NotTrusted, &malformed), None);
        let err = resolve(&CredentialAnswer::NotTrusted, None, &malformed).0.expect_err("blocked");
        assert_eq!(err, CredentialProblem::BadSecretUri);
        // Every message fits juju status whole.
        for answer in [SecretAnswer::NotGranted, SecretAnswer::NotFound, SecretAnswer::Unsupported, content(&[])] {
            assert!(said(&answer).chars().count() <= crate::limits::STATUS_CHARS, "{}", said(&answer));
        }
    }

    #[test]
    fn plain_key_options_suggest_a_secret() {
        let (got, note) = resolve(&CredentialAnswer::NotTrusted, None, &full_config());
        assert_eq!(got.expect("usable").source, Source::Config);
        assert_eq!(note.as_deref(), Some(MOVE_KEY_TO_SECRET));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let creds = resolve(&CredentialAnswer::Granted(spec()), None, &config(&[])).0.expect("usable");
        let shown = format!("{creds:?}");
        assert!(!shown.contains("KEY") && !shown.contains("CERT"), "{shown}");
    }
}
