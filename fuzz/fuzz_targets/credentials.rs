//! `credential-get --format=json`, `config-get --format=json` and `secret-get --format=json`
//! output, read through the real hook-tool wrappers (`Juju::credential_get`,
//! `Juju::config_get`, `Juju::secret_get`) from the in-memory agent (`memory::Agent`, its
//! answers fixed by `answer_always`) and resolved by `credentials::resolve`.
//!
//! Input: one mode byte, then the credential-get stdout, NUL, the config-get stdout.
//! Mode % 4: 0 granted (exit 0 with the stdout), 1 `permission denied`, 2 no credential-get
//! on this Juju, 3 another failure. Mode / 4 % 4, for the secret the config may name: 0 its
//! content is the credential-get stdout, 1 `permission denied`, 2 no secret-get, 3 not found.
#![no_main]

#[path = "common.rs"]
mod common;

use common::*;
use libfuzzer_sys::fuzz_target;
use lxd_integrator::config::SecretSetting;
use lxd_integrator::credentials::{self, CredentialProblem, OPT_CERT, OPT_ENDPOINT, OPT_KEY, OPT_SERVER_CERT, SecretRead, Source};
use lxd_integrator::endpoint::Endpoint;
use lxd_integrator::hook_tools::{CredentialAnswer, Juju, SecretAnswer, ToolError, ToolOutput};
use lxd_integrator::memory::{Agent, failed, printed};

/// The in-memory agent, its credential-get, config-get and secret-get answering as `mode` says.
fn agent(mode: u8, credential: &[u8], config: &[u8]) -> Agent {
    let mut agent = Agent::default();
    match mode % 4 {
        0 => agent.answer_always("credential-get", printed(credential)),
        1 => agent.answer_always("credential-get", failed(1, "cannot access cloud credentials: permission denied")),
        2 => {
            agent.missing.insert("credential-get".into());
        }
        _ => agent.answer_always("credential-get", ToolOutput { code: 1, stdout: vec![], stderr: credential.to_vec() }),
    }
    agent.answer_always("config-get", printed(config));
    match mode / 4 % 4 {
        0 => agent.answer_always("secret-get", printed(credential)),
        1 => agent.answer_always("secret-get", failed(1, "permission denied")),
        2 => {
            agent.missing.insert("secret-get".into());
        }
        _ => agent.answer_always("secret-get", failed(1, "secret \"secret:cn3q8gvmp25c7bt7nqkg\" not found")),
    }
    agent
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut parts = rest.splitn(2, |b| *b == 0);
    let credential = parts.next().unwrap_or_default();
    let config = parts.next().unwrap_or_default();
    let mut tools = agent(mode, credential, config);
    let mut juju = Juju::new(&mut tools);

    let answer = match juju.credential_get() {
        Ok(answer) => answer,
        Err(e) => {
            // Failed/Output errors are reported; they must still be bounded when not stderr.
            if let ToolError::Output { detail, .. } = &e {
                assert!(detail.len() <= MAX_REASON);
            }
            return;
        }
    };
    match (mode % 4, &answer) {
        (0, CredentialAnswer::Granted(_)) | (1, CredentialAnswer::NotTrusted) | (2, CredentialAnswer::Unsupported) => {}
        (3, CredentialAnswer::NotTrusted) if String::from_utf8_lossy(credential).contains("permission denied") => {}
        (m, a) => panic!("mode {m} gave {a:?}"),
    }
    let Ok(config) = juju.config_get() else { return };

    let parsed = lxd_integrator::config::Config::from_values(&config);
    let secret = match credentials::secret_to_read(&answer, &parsed).map(|uri| juju.secret_get(uri.as_str(), false)) {
        Some(Ok(secret)) => Some(secret),
        Some(Err(e)) => {
            // The secret's output is never quoted in an error.
            if let ToolError::Output { detail, .. } = &e {
                assert_eq!(detail, "not a JSON object of strings");
            }
            return;
        }
        None => None,
    };
    match (mode / 4 % 4, &secret) {
        (_, None) | (0, Some(SecretAnswer::Content(_))) | (1, Some(SecretAnswer::NotGranted)) => {}
        (2, Some(SecretAnswer::Unsupported)) | (3, Some(SecretAnswer::NotFound)) => {}
        (m, s) => panic!("secret mode {m} gave {s:?}"),
    }
    let read = || secret.as_ref().map(|answer| SecretRead { app: "lxd-integrator", answer });
    let (resolved, note) = credentials::resolve(&answer, read(), &parsed);
    assert_eq!((resolved.clone(), note.clone()), credentials::resolve(&answer, read(), &parsed), "deterministic");
    let secret_key = match &secret {
        Some(SecretAnswer::Content(c)) => c.0.get("client-key").map(|k| k.trim().to_string()).filter(|k| !k.is_empty()),
        _ => None,
    };
    let opt = |k: &str| config.get(k).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty());
    match resolved {
        Ok(creds) => {
            assert_eq!(Endpoint::parse(&creds.endpoint.url()).as_ref(), Ok(&creds.endpoint), "endpoint round trip");
            for pem in [&creds.tls.client_cert_pem, &creds.tls.client_key_pem, &creds.tls.server_cert_pem] {
                assert!(!pem.is_empty() && pem.trim() == pem.as_str());
            }
            assert_eq!(format!("{:?}", creds.tls), "TlsCredentials { <redacted> }");
            match creds.source {
                Source::Trust => {
                    assert!(matches!(answer, CredentialAnswer::Granted(_)));
                    assert!(secret.is_none(), "trust wins: the secret is not read");
                    // A note when something else is set and ignored (a secret, the lxd_* options).
                    assert_eq!(note.is_some(), parsed.credentials_secret.is_some() || !creds.ignored.is_empty());
                }
                Source::Secret => {
                    assert!(matches!(parsed.credentials_secret, Some(SecretSetting::Uri(_))));
                    assert_eq!(secret_key.as_deref(), Some(creds.tls.client_key_pem.as_str()));
                }
                Source::Config => {
                    assert!(parsed.credentials_secret.is_none(), "a set secret never falls through");
                    assert_eq!(opt(OPT_CERT), Some(creds.tls.client_cert_pem.as_str()));
                    assert_eq!(opt(OPT_KEY), Some(creds.tls.client_key_pem.as_str()));
                    assert_eq!(opt(OPT_SERVER_CERT), Some(creds.tls.server_cert_pem.as_str()));
                    assert_eq!(opt(OPT_ENDPOINT).map(Endpoint::parse), Some(Ok(creds.endpoint.clone())));
                    assert!(note.as_deref().is_some_and(|n| n.ends_with(credentials::MOVE_KEY_TO_SECRET)));
                }
            }
        }
        Err(problem) => {
            let text = problem.to_string();
            assert!(!text.is_empty());
            match &problem {
                CredentialProblem::Missing => assert!(!matches!(answer, CredentialAnswer::Granted(_))),
                CredentialProblem::IncompleteConfig(missing) => {
                    assert!(!missing.is_empty() && missing.len() < 4);
                    assert!(missing.iter().all(|k| opt(k).is_none()));
                }
                CredentialProblem::BadEndpoint { origin, .. } => assert!(matches!(origin, Source::Config | Source::Secret)),
                CredentialProblem::SecretIncomplete { missing, .. } => assert!(!missing.is_empty()),
                CredentialProblem::UnusableCloudCredential(_) => {
                    assert!(matches!(answer, CredentialAnswer::Granted(_)));
                }
                #[allow(unreachable_patterns)]
                _ => {}
            }
            // Key material never appears in the message: only the endpoint text may be quoted.
            if let Some(key) = secret_key.as_deref().filter(|k| k.len() >= 16) {
                if !String::from_utf8_lossy(config.get("lxd-credentials-secret").and_then(|v| v.as_str()).unwrap_or("").as_bytes()).contains(key) {
                    assert!(!text.contains(key), "the secret's key is quoted in {problem:?}");
                }
            }
            if let Some(key) = opt(OPT_KEY).filter(|k| k.len() >= 16) {
                let elsewhere = opt(OPT_ENDPOINT).is_some_and(|e| e.contains(key))
                    || String::from_utf8_lossy(credential).contains(key);
                if !elsewhere {
                    assert!(!text.contains(key), "the config key is quoted in {problem:?}");
                }
            }
        }
    }
});
