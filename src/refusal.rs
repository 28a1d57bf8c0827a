//! Why a requested certificate is not trusted for the requirer that asked: a closed set of
//! reasons, published to that requirer (`refused`, an additive key of both interfaces at
//! version 1.0) and counted in the status. Only the fingerprint and a fixed code cross the
//! boundary, never what was sent.

use crate::certs::CertRejection;
use crate::limits::REFUSED_PUBLISHED;
use crate::ownership::{Interface, Owner};
use serde::Serialize;
use std::collections::BTreeMap;

/// The key both interfaces publish the refusals of a relation under.
pub(crate) const KEY_REFUSED: &str = "refused";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Reason {
    /// A PEM block whose content is not an X.509 certificate.
    NotACertificate,
    Expired,
    /// Starts later than this unit's clock (within `limits::CLOCK_SKEW_ALLOWANCE` it is trusted
    /// by the first full pass after it starts).
    NotYetValid,
    /// A key LXD refuses: RSA under 2048 bits, or neither RSA nor ECDSA.
    UnsupportedKey,
    /// The integrator's own credential or LXD's server certificate.
    Reserved,
    /// Past the number of certificates read from one databag.
    TooMany,
    /// Held under another relation's entry whose grant does not cover this request.
    HeldByAnotherApplication,
    /// `projects` named only projects outside `trust-projects`.
    ProjectsOutsideCeiling,
    /// `projects` could not be granted otherwise (no project named, too large, or an LXD that
    /// cannot restrict an entry).
    ProjectsRefused,
    /// LXD answered the add with an error.
    RejectedByLxd,
}

impl Reason {
    /// The code requirers read: lowercase words joined by `-`, stable within version 1.0.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Reason::NotACertificate => "not-a-certificate",
            Reason::Expired => "expired",
            Reason::NotYetValid => "not-yet-valid",
            Reason::UnsupportedKey => "unsupported-key",
            Reason::Reserved => "reserved",
            Reason::TooMany => "too-many",
            Reason::HeldByAnotherApplication => "held-by-another-application",
            Reason::ProjectsOutsideCeiling => "projects-outside-ceiling",
            Reason::ProjectsRefused => "projects-refused",
            Reason::RejectedByLxd => "rejected-by-lxd",
        }
    }

    /// The reason for a certificate block that did not pass `certs::examine_client_cert`.
    pub(crate) fn of(why: &CertRejection) -> Reason {
        match why {
            CertRejection::Expired => Reason::Expired,
            CertRejection::NotYetValid => Reason::NotYetValid,
            CertRejection::WeakRsa(_) | CertRejection::UnsupportedKey => Reason::UnsupportedKey,
            _ => Reason::NotACertificate,
        }
    }
}

/// One certificate refused for one requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefusedCert {
    pub(crate) owner: Owner,
    pub(crate) fingerprint: String,
    pub(crate) reason: Reason,
    /// When a certificate that is not valid yet starts: the quiet path wakes then.
    pub(crate) not_before: Option<i64>,
}

#[derive(Serialize)]
struct Published<'a> {
    fingerprint: &'a str,
    reason: &'static str,
}

/// The `refused` value for relation `relation_id` of `interface`: a JSON list of
/// `{"fingerprint", "reason"}` sorted by fingerprint, one per certificate (its first reason in
/// the order of `Reason`), at most `REFUSED_PUBLISHED`; `None` when nothing was refused there.
pub(crate) fn published(interface: Interface, relation_id: u32, refused: &[RefusedCert]) -> Option<String> {
    let mut by_fp: BTreeMap<&str, Reason> = BTreeMap::new();
    for r in refused.iter().filter(|r| r.owner.interface == interface && r.owner.relation_id == relation_id) {
        by_fp.entry(r.fingerprint.as_str()).and_modify(|had| *had = (*had).min(r.reason)).or_insert(r.reason);
    }
    if by_fp.is_empty() {
        return None;
    }
    let list: Vec<Published> = by_fp
        .iter()
        .take(REFUSED_PUBLISHED)
        .map(|(fp, reason)| Published { fingerprint: fp, reason: reason.code() })
        .collect();
    serde_json::to_string(&list).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(relation_id: u32, fp: &str, reason: Reason) -> RefusedCert {
        let owner = Owner { relation_id, remote_app: "req".into(), unit: Some(0), interface: Interface::Lxd };
        RefusedCert { owner, fingerprint: fp.into(), reason, not_before: None }
    }

    #[test]
    fn a_relation_is_told_only_its_own_refusals_once_each_in_fingerprint_order() {
        let all = [
            refused(1, "bb", Reason::Expired),
            refused(1, "aa", Reason::HeldByAnotherApplication),
            refused(1, "bb", Reason::NotACertificate),
            refused(2, "cc", Reason::Reserved),
        ];
        assert_eq!(
            published(Interface::Lxd, 1, &all).as_deref(),
            Some(
                r#"[{"fingerprint":"aa","reason":"held-by-another-application"},{"fingerprint":"bb","reason":"not-a-certificate"}]"#
            )
        );
        assert_eq!(published(Interface::LxdHttps, 1, &all), None, "another endpoint's relation 1");
        assert_eq!(published(Interface::Lxd, 3, &all), None);
    }

    #[test]
    fn what_is_published_is_bounded() {
        let many: Vec<RefusedCert> =
            (0..REFUSED_PUBLISHED + 50).map(|i| refused(1, &format!("{i:064x}"), Reason::Expired)).collect();
        let value = published(Interface::Lxd, 1, &many).expect("some");
        let list: Vec<serde_json::Value> = serde_json::from_str(&value).expect("json");
        assert_eq!(list.len(), REFUSED_PUBLISHED);
    }

    #[test]
    fn codes_are_lowercase_words() {
        for r in [Reason::NotACertificate, Reason::HeldByAnotherApplication, Reason::RejectedByLxd] {
            assert!(r.code().bytes().all(|b| b.is_ascii_lowercase() || b == b'-'), "{}", r.code());
        }
    }
}
