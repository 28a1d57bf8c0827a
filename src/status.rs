//! The workload status an operator sees in `juju status`: chosen from what the reconcile found.
//! Short, and naming the next step where there is one.

use crate::access::TrustAccess;
use crate::cluster::LxdError;
use crate::config::OPT_SECRET;
use crate::credentials::{CredentialProblem, Credentials};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Active,
    Blocked,
    Waiting,
    Maintenance,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Active => "active",
            Kind::Blocked => "blocked",
            Kind::Waiting => "waiting",
            Kind::Maintenance => "maintenance",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub(crate) kind: Kind,
    pub(crate) message: String,
}

impl Status {
    fn new(kind: Kind, message: impl Into<String>) -> Status {
        let mut message: String = message.into();
        // juju status shows one line; keep it readable there.
        if message.chars().count() > MAX_LEN {
            message = message.chars().take(MAX_LEN - 1).collect::<String>() + "…";
        }
        Status { kind, message }
    }
}

pub(crate) const MAX_LEN: usize = crate::limits::STATUS_CHARS;

/// LXD 4.0 would store a restricted certificate unrestricted; the charm then adds nothing.
pub(crate) const LACKS_CERTIFICATE_PROJECT: &str =
    "LXD lacks certificate_project; cannot honour trust-projects (unset it or upgrade LXD)";

/// The credential may not change LXD's trust store (LXD would answer every change 403): what it
/// lacks and the fix. `None` when it may, or when the server does not say.
pub(crate) fn cannot_manage_trust(access: &TrustAccess) -> Option<String> {
    match access {
        TrustAccess::Restricted => {
            Some("LXD credential is restricted to projects and cannot manage trust; trust it unrestricted".into())
        }
        TrustAccess::Missing(missing) => {
            Some(format!("LXD identity lacks {} on server; grant them", missing.join(", ")))
        }
        TrustAccess::Full | TrustAccess::Unknown(_) => None,
    }
}

/// What the operator reads about a credential problem: the cause and the fix, never a value.
impl fmt::Display for CredentialProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CredentialProblem as P;
        match self {
            P::Missing => f.write_str("Missing credentials access; grant with: juju trust"),
            P::IncompleteConfig(missing) => write!(f, "config incomplete: set {}", missing.join(", ")),
            P::BadEndpoint { origin, error } => {
                write!(f, "{} {error}; set an https URL such as https://10.0.0.1:8443", origin.endpoint_option())
            }
            P::UnusableCloudCredential(why) => {
                write!(f, "cloud credential unusable ({why}); set the lxd_* config options")
            }
            P::ClientCertOutsideValidity(source) => {
                write!(f, "{source} client certificate is expired or not yet valid; rotate the credential")
            }
            P::UnusableMaterial { where_, why } => write!(f, "{where_} is unusable: {why}"),
            P::BadSecretUri => {
                write!(f, "{OPT_SECRET} is not a secret URI; set it to the ID juju add-secret printed (secret:…)")
            }
            P::SecretsUnsupported => {
                write!(f, "{OPT_SECRET} needs Juju 3.3+ user secrets; unset it and use juju trust or the lxd_* options")
            }
            P::SecretNotGranted { secret, app } => {
                write!(f, "{secret} not granted; run: juju grant-secret {secret} {app}")
            }
            P::SecretNotFound(secret) => {
                write!(f, "{secret} not found; juju add-secret a new one and set {OPT_SECRET} to its ID")
            }
            P::SecretIncomplete { secret, missing } => write!(
                f,
                "{secret} lacks key{} {}; update it with all four keys",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ),
            P::SecretUnread(secret) => write!(f, "{secret} was not read; retrying"),
        }
    }
}

/// `trust-projects` names a project LXD does not have: which entries of the option (by place,
/// never by value: a key may have been pasted there), of how many, and LXD's own words.
pub(crate) fn unknown_project(places: &[usize], total: usize, lxd_message: &str) -> String {
    let places: Vec<String> = places.iter().map(|p| p.to_string()).collect();
    let named = match places.as_slice() {
        [one] => format!("entry {one} of {total}"),
        many => format!("one of entries {} of {total}", many.join(", ")),
    };
    format!("{UNKNOWN_PROJECT}: {named} ({})", crate::limits::cut(lxd_message, 200))
}

/// How a refusal for an unknown project begins.
pub(crate) const UNKNOWN_PROJECT: &str = "trust-projects names a project LXD does not have";

/// A unit being removed changes nothing in LXD from then on.
pub(crate) fn leaving() -> Status {
    Status::new(Kind::Maintenance, "unit is leaving; LXD left as it is")
}

pub(crate) fn credentials(problem: &CredentialProblem) -> Status {
    Status::new(Kind::Blocked, problem.to_string())
}

/// LXD could not be used at all this hook.
pub(crate) fn connection(error: &LxdError, tried: usize) -> Status {
    match error {
        LxdError::Unreachable { endpoint, .. } if tried > 1 => Status::new(
            Kind::Waiting,
            format!("LXD unreachable at {endpoint} and {} other known members; retrying", tried - 1),
        ),
        LxdError::Unreachable { endpoint, .. } => {
            Status::new(Kind::Waiting, format!("LXD unreachable at {endpoint}; retrying"))
        }
        LxdError::ServerCertMismatch { endpoint, .. } => {
            Status::new(Kind::Blocked, format!("LXD server certificate mismatch at {endpoint}; check server-cert"))
        }
        LxdError::Untrusted { endpoint } => Status::new(
            Kind::Blocked,
            format!("client certificate not trusted by LXD at {endpoint}; trust it or fix credentials"),
        ),
        LxdError::BadCredentials(detail) => {
            Status::new(Kind::Blocked, format!("unusable LXD client credentials: {detail}"))
        }
        LxdError::Api { status, message, .. } => {
            Status::new(Kind::Waiting, format!("LXD error ({status}): {message}; retrying"))
        }
        LxdError::Protocol { path, .. } => {
            Status::new(Kind::Waiting, format!("unexpected answer from LXD {path}; retrying"))
        }
    }
}

/// `status`, naming the credential source in use when another one is set too
/// (`Credentials::ignored`): with `juju trust` granted and the `lxd_*` options pointing at
/// another cluster, nothing else an operator looks at first says which LXD is managed. The
/// message is cut before the suffix, so the suffix always shows within `MAX_LEN`.
pub(crate) fn naming_credential(status: Status, creds: Option<&Credentials>) -> Status {
    let Some(creds) = creds.filter(|c| !c.ignored.is_empty()) else { return status };
    let suffix = format!(" (credential: {})", creds.source.setting());
    let room = MAX_LEN - suffix.chars().count();
    let mut message = status.message;
    if message.chars().count() > room {
        message = message.chars().take(room - 1).collect::<String>() + "…";
    }
    Status { kind: status.kind, message: message + &suffix }
}

/// What was wrong with what a requirer sent, as the status names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputProblem {
    /// `api`: unusable `client_certificates`.
    ClientCertificates,
    /// `https`: no `version: "1.0"`, or an unusable `certificate`.
    HttpsData,
    /// `https`: some `projects` outside `trust-projects` (or LXD cannot restrict).
    ProjectsRefused,
}

impl InputProblem {
    fn text(self) -> &'static str {
        match self {
            InputProblem::ClientCertificates => "invalid client_certificates from",
            InputProblem::HttpsData => "invalid lxd-https data from",
            InputProblem::ProjectsRefused => "projects refused for",
        }
    }
}

/// What a successful pass looked like.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    pub(crate) leader: bool,
    pub(crate) online: usize,
    pub(crate) members: usize,
    /// Certificates requested on live relations that LXD holds.
    pub(crate) trusted: usize,
    /// Members (`req/1`, or `req` for an application databag) whose data had a problem, by
    /// kind, in the order the endpoints register them.
    pub(crate) input_problems: Vec<(InputProblem, Vec<String>)>,
    /// LXD refused some changes (details in the log).
    pub(crate) failed_changes: usize,
    /// Changes left for a later hook (deadline or leadership).
    pub(crate) deferred: usize,
    /// Trusted certificates not published: the relation data would outgrow its bound.
    pub(crate) withheld: usize,
    /// Requested certificates trusted under entries this application does not own.
    pub(crate) held_elsewhere: usize,
    /// Requests for certificates another relation's entry holds with a grant that does not
    /// cover them: not claimed for their requirer, which is told.
    pub(crate) held_by_other: usize,
    /// Certificates that start later than this unit's clock: trusted once they are valid.
    pub(crate) not_yet_valid: usize,
    /// Of those, held by entries the `adopt` action would take over (`adopt::adoptable`).
    pub(crate) adoptable: usize,
    /// A reason the leader must not add certificates at all (e.g. missing API extension).
    pub(crate) refusal: Option<String>,
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(crate) fn ready(s: &Summary) -> Status {
    if let Some(refusal) = &s.refusal {
        return Status::new(Kind::Blocked, refusal.clone());
    }
    let mut msg = format!("{}/{} members online", s.online, s.members);
    if s.leader {
        msg.push_str(&format!(", {} client{} trusted", s.trusted, if s.trusted == 1 { "" } else { "s" }));
    } else {
        msg.push_str("; leader manages trust");
    }
    if s.failed_changes > 0 {
        msg.push_str(&format!(
            "; {} LXD change{} failed, see debug-log",
            s.failed_changes,
            if s.failed_changes == 1 { "" } else { "s" }
        ));
    }
    if s.deferred > 0 {
        msg.push_str(&format!("; {} change{} left for the next hook", s.deferred, plural(s.deferred)));
    }
    if s.withheld > 0 {
        msg.push_str(&format!("; {} trusted but not published (too many)", s.withheld));
    }
    if s.held_elsewhere > 0 {
        msg.push_str(&format!("; {} held by entries not ours", s.held_elsewhere));
        // Only then: advising `adopt` when it would take nothing sends an operator to rename
        // someone else's grant by hand.
        if s.adoptable > 0 {
            msg.push_str(&format!(", {} adoptable (run adopt)", s.adoptable));
        }
    }
    if s.held_by_other > 0 {
        msg.push_str(&format!("; {} held for another application, not granted", s.held_by_other));
    }
    if s.not_yet_valid > 0 {
        msg.push_str(&format!("; {} not valid yet, trusted once valid", s.not_yet_valid));
    }
    for (problem, who) in s.input_problems.iter().filter(|(_, who)| !who.is_empty()) {
        msg.push_str(&format!("; {} {}", problem.text(), who.join(", ")));
    }
    Status::new(Kind::Active, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_that_cannot_manage_trust_names_what_it_lacks_within_one_line() {
        let all = TrustAccess::Missing(crate::access::NEEDED_ENTITLEMENTS.to_vec());
        let text = cannot_manage_trust(&all).expect("blocked");
        assert_eq!(
            text,
            "LXD identity lacks can_create_identities, can_edit_identities, can_delete_identities on server; grant them"
        );
        assert!(text.chars().count() <= MAX_LEN);
        let one = cannot_manage_trust(&TrustAccess::Missing(vec!["can_delete_identities"])).expect("blocked");
        assert_eq!(one, "LXD identity lacks can_delete_identities on server; grant them");
        let restricted = cannot_manage_trust(&TrustAccess::Restricted).expect("blocked");
        assert!(restricted.contains("restricted") && restricted.chars().count() <= MAX_LEN, "{restricted}");
        assert_eq!(cannot_manage_trust(&TrustAccess::Full), None);
        assert_eq!(cannot_manage_trust(&TrustAccess::Unknown("not said".into())), None);
    }

    #[test]
    fn no_credentials_names_juju_trust() {
        let s = credentials(&CredentialProblem::Missing);
        assert_eq!((s.kind, s.message.as_str()), (Kind::Blocked, "Missing credentials access; grant with: juju trust"));
    }

    #[test]
    fn connection_failures_name_the_cause_and_the_endpoint() {
        let ep = "https://10.0.0.1:8443".to_string();
        let unreachable = LxdError::Unreachable { endpoint: ep.clone(), detail: "refused".into() };
        assert_eq!(
            connection(&unreachable, 1),
            Status { kind: Kind::Waiting, message: "LXD unreachable at https://10.0.0.1:8443; retrying".into() }
        );
        assert_eq!(
            connection(&unreachable, 3).message,
            "LXD unreachable at https://10.0.0.1:8443 and 2 other known members; retrying"
        );
        let mismatch = connection(&LxdError::ServerCertMismatch { endpoint: ep.clone(), detail: "x".into() }, 1);
        assert_eq!(mismatch.kind, Kind::Blocked);
        assert!(mismatch.message.contains("mismatch at https://10.0.0.1:8443"));
        let untrusted = connection(&LxdError::Untrusted { endpoint: ep }, 1);
        assert_eq!(untrusted.kind, Kind::Blocked);
        assert!(untrusted.message.starts_with("client certificate not trusted"));
    }

    #[test]
    fn active_messages_say_what_is_managed() {
        let s = Summary { leader: true, online: 3, members: 3, trusted: 2, ..Default::default() };
        assert_eq!(ready(&s), Status { kind: Kind::Active, message: "3/3 members online, 2 clients trusted".into() });
        let follower = Summary { leader: false, online: 2, members: 3, ..Default::default() };
        assert_eq!(ready(&follower).message, "2/3 members online; leader manages trust");
        let bad = Summary {
            input_problems: vec![(InputProblem::ClientCertificates, vec!["req/1".into(), "req/4".into()])],
            failed_changes: 1,
            ..s
        };
        assert_eq!(
            ready(&bad).message,
            "3/3 members online, 2 clients trusted; 1 LXD change failed, see debug-log; invalid client_certificates from req/1, req/4"
        );
    }

    #[test]
    fn https_requirers_are_named_by_what_was_wrong() {
        let s = Summary {
            leader: true,
            online: 1,
            members: 1,
            trusted: 1,
            input_problems: vec![
                (InputProblem::HttpsData, vec!["gw/1".into()]),
                (InputProblem::ProjectsRefused, vec!["gw".into()]),
            ],
            ..Default::default()
        };
        assert_eq!(
            ready(&s).message,
            "1/1 members online, 1 client trusted; invalid lxd-https data from gw/1; projects refused for gw"
        );
    }

    #[test]
    fn adopt_is_advised_only_when_it_would_take_something() {
        let s = Summary { leader: true, online: 1, members: 1, trusted: 3, held_elsewhere: 3, ..Default::default() };
        assert_eq!(ready(&s).message, "1/1 members online, 3 clients trusted; 3 held by entries not ours");
        let s = Summary { adoptable: 2, ..s };
        assert_eq!(
            ready(&s).message,
            "1/1 members online, 3 clients trusted; 3 held by entries not ours, 2 adoptable (run adopt)"
        );
    }

    #[test]
    fn long_messages_are_cut_for_juju_status() {
        let s = Summary {
            leader: true,
            input_problems: vec![(InputProblem::ClientCertificates, (0..50).map(|i| format!("req/{i}")).collect())],
            ..Default::default()
        };
        let st = ready(&s);
        assert_eq!(st.message.chars().count(), MAX_LEN);
        assert!(st.message.ends_with('…'));
    }

    #[test]
    fn the_credential_in_use_is_named_only_when_another_is_set_and_always_fits() {
        use crate::credentials::{Source, TlsCredentials};
        let creds = |source, ignored| Credentials {
            endpoint: crate::endpoint::Endpoint::parse("10.0.0.1").expect("endpoint"),
            tls: TlsCredentials {
                client_cert_pem: String::new(),
                client_key_pem: String::new(),
                server_cert_pem: String::new(),
            },
            source,
            ignored,
        };
        let active = ready(&Summary { leader: true, online: 3, members: 3, trusted: 2, ..Default::default() });
        let alone = creds(Source::Trust, vec![]);
        assert_eq!(naming_credential(active.clone(), Some(&alone)), active);
        assert_eq!(naming_credential(active.clone(), None), active);
        let trust = creds(Source::Trust, vec![Source::Config]);
        assert_eq!(
            naming_credential(active.clone(), Some(&trust)).message,
            "3/3 members online, 2 clients trusted (credential: juju trust)"
        );
        let secret = creds(Source::Secret, vec![Source::Trust, Source::Config]);
        let unreachable = LxdError::Unreachable { endpoint: "https://10.0.0.1:8443".into(), detail: "refused".into() };
        let named = naming_credential(connection(&unreachable, 1), Some(&secret));
        assert_eq!(
            (named.kind, named.message.as_str()),
            (Kind::Waiting, "LXD unreachable at https://10.0.0.1:8443; retrying (credential: lxd-credentials-secret)")
        );
        // A long message gives way to the suffix, never the other way round.
        let long = ready(&Summary {
            leader: true,
            input_problems: vec![(InputProblem::ClientCertificates, (0..50).map(|i| format!("req/{i}")).collect())],
            ..Default::default()
        });
        let named = naming_credential(long, Some(&creds(Source::Config, vec![Source::Trust])));
        assert_eq!(named.message.chars().count(), MAX_LEN);
        assert!(named.message.ends_with("… (credential: lxd_* options)"), "{}", named.message);
    }

    #[test]
    fn a_refusal_blocks() {
        let s = Summary {
            leader: true,
            refusal: Some("LXD lacks certificate_project; unset trust-projects".into()),
            ..Default::default()
        };
        assert_eq!(ready(&s).kind, Kind::Blocked);
    }
}
