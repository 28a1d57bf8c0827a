//! The endpoints this charm serves, each registered here once: what its requirers send and how
//! it is read, what it publishes and in which databags, and how problems with what requirers
//! sent are summarised in the status. The pass only iterates `SERVED`.
//!
//! | endpoint | interface | module |
//! |---|---|---|
//! | `api` | `lxd` | `requests` (reads `client_certificates`), `relation` (payload) |
//! | `https` | `lxd-https` | `https` (reads and publishes) |
//!
//! A third endpoint is its own module (read requests, build the payload) plus one row here,
//! a variant of `ownership::Interface` (its endpoint name, which also names its entries),
//! its relation hooks in `dispatch::RECONCILE_HOOKS` and its entry in `metadata.yaml`.

use crate::databag::{Databag, RelationView};
use crate::https;
use crate::ownership::Interface;
use crate::refusal;
use crate::relation::{self, OnlineMembers, Payload, ServerPin};
use crate::requests::{self, Bounds, MemberRead, Request, Requests};
use crate::status::InputProblem;
use std::collections::BTreeSet;

/// What a pass tells requirers, for every endpoint's payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Publication<'a> {
    pub(crate) online: &'a OnlineMembers,
    /// The requests that may be claimed for their requirer (not those held for another).
    pub(crate) requests: &'a [Request],
    pub(crate) held: &'a BTreeSet<String>,
    /// The pin the pass connected with.
    pub(crate) pin: Option<&'a ServerPin>,
    /// What LXD presents, when it said.
    pub(crate) presented: Option<&'a ServerPin>,
    pub(crate) refused: &'a [refusal::RefusedCert],
    pub(crate) trust_projects: Option<&'a [String]>,
}

/// One endpoint, registered.
pub(crate) struct Served {
    pub(crate) interface: Interface,
    /// Starts reading one member's databag as it arrives: requests, what was wrong and what
    /// was refused are all that is kept of it.
    pub(crate) intake: requests::Intake,
    /// Whether a relation's application databag is read before its units' (else after): the
    /// first request for a certificate names its entry.
    pub(crate) app_first: bool,
    /// The provider's databag for one relation (`refused` already encoded for it).
    pub(crate) payload: fn(u32, &Publication, Option<&str>) -> Payload,
    /// Every key the provider writes there (one no longer wanted is deleted).
    pub(crate) provider_keys: &'static [&'static str],
    /// Whether the leader also writes the payload to the application databag (otherwise it
    /// keeps that databag empty of provider keys).
    pub(crate) app_databag: bool,
    /// Which keys' problems the status names, and how.
    pub(crate) problems: &'static [(&'static [&'static str], InputProblem)],
}

pub(crate) const SERVED: [Served; 2] = [
    Served {
        interface: Interface::Lxd,
        intake: requests::intake,
        app_first: false,
        payload: |rel, p, refused| relation::payload(rel, p.online, p.requests, p.held, p.pin, refused),
        provider_keys: &relation::PROVIDER_KEYS,
        // The original charm's requirers read the remote unit's databag and do not survive a
        // change of the application's (docs/interface-lxd.md).
        app_databag: false,
        problems: &[(&[requests::KEY_CLIENT_CERTS], InputProblem::ClientCertificates)],
    },
    Served {
        interface: Interface::LxdHttps,
        intake: https::intake,
        // charm-lxd reads the application's databag first.
        app_first: true,
        payload: https_payload,
        provider_keys: &https::PROVIDER_KEYS,
        // charm-lxd's requirers read the application databag first.
        app_databag: true,
        problems: &[
            (&[https::KEY_VERSION, https::KEY_CERTIFICATE], InputProblem::HttpsData),
            (&[https::KEY_PROJECTS], InputProblem::ProjectsRefused),
        ],
    },
];

fn https_payload(rel: u32, p: &Publication, refused: Option<&str>) -> Payload {
    let project = https::project(rel, p.requests, p.held, p.trust_projects);
    let served = https::Served {
        certificate: p.pin.and(p.presented.or(p.pin)),
        trusted: https::any_trusted(rel, p.requests, p.held),
        project: project.as_deref(),
        refused,
    };
    https::payload(p.online, served)
}

/// The registration of `interface`.
pub(crate) fn served(interface: Interface) -> &'static Served {
    SERVED.iter().find(|s| s.interface == interface).unwrap_or(&SERVED[0])
}

/// Every endpoint's requests from `members`, read as their databags arrived and settled
/// against `bounds`: relation by relation within each endpoint (the first request for a
/// certificate names its entry), each relation's members in its endpoint's order.
pub(crate) fn settle(members: &[MemberRead], bounds: &Bounds) -> Requests {
    let mut out = Requests::default();
    for served in &SERVED {
        let ours: Vec<&MemberRead> = members.iter().filter(|m| m.interface == served.interface).collect();
        out.append(requests::settle(&ours, served.app_first, bounds));
    }
    // Stable: within a relation the endpoint's own order stays.
    out.requests.sort_by_key(|r| r.owner.relation_id);
    out.problems.sort_by_key(|p| p.owner.relation_id);
    out
}

/// What one relation's databags should hold: this unit's, and the application's (what the
/// leader writes there: the payload, or nothing of ours).
pub(crate) fn payload(view: &RelationView, what: &Publication) -> (Payload, Databag) {
    let served = served(view.interface);
    let refused = refusal::published(view.interface, view.id, what.refused);
    let payload = (served.payload)(view.id, what, refused.as_deref());
    let app = if served.app_databag { payload.bag.clone() } else { Databag::new() };
    (payload, app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_is_registered_once() {
        for interface in Interface::ALL {
            assert_eq!(SERVED.iter().filter(|s| s.interface == interface).count(), 1, "{interface:?}");
        }
        assert_eq!(SERVED.len(), Interface::ALL.len());
    }
}
