//! Which trust entries the `adopt` action takes over: those the charms this one replaces made,
//! and nothing else. Pure: from the requests and the trust store.
//!
//! Two charms made entries a requirer of this charm may still be using, each recognisable only
//! by its name and only for the requirers it served:
//!
//! - canonical/lxd-integrator-operator served `api` (interface `lxd`) and named each entry
//!   after the certificate's subject CN (`src/interface.py` `_register_cert`:
//!   `"name": x509_cert.get_subject().CN`, pyOpenSSL's first CN), unrestricted, and never
//!   removed one.
//! - canonical/charm-lxd served `https` (interface `lxd-https`) and named each entry
//!   `juju-relation-<bag.name>` (`src/charm.py` `_on_https_relation_changed`:
//!   `cert_name = f"juju-relation-{bag.name}"`, `bag` the remote application, or the remote
//!   unit when the application's databag lacked `version: "1.0"`), with no sanitising; it
//!   removed them by that name when the unit departed or the relation broke.
//!
//! So an entry is adopted only when a live relation asks for its certificate and its name is
//! exactly what the old charm would have given it for that request: the CN for an `api`
//! request; `juju-relation-<remote app>` for an `https` request from that application (from
//! its databag or a unit's), `juju-relation-<remote unit>` for one from that unit's databag.
//! A CN-named entry is not taken for an `https` request alone: the Python charm never served
//! that interface, so such an entry was made by someone else (an operator naming a grant
//! after its CN, say), and taking it would hand its scope to a requirer that never had it.
//! Nor is a restricted CN-named entry: the Python charm never restricted one, so someone has
//! decided its projects since. Every other name (an operator's `ops-admin`, another
//! integrator's `juju.…`) is left as it is, with the reason listed. A name is a weak proof
//! (an operator may have named a grant exactly like the old charm would); the dry run, the
//! default, shows every entry and why before anything is renamed.
//!
//! Adopting renames the entry to the name this charm gives the requester it was made for
//! (`Scope::entry_name`): the first `api` requester for a CN-named entry, the matching `https`
//! requester for a `juju-relation-` one. From then on the usual rules apply: it stays while
//! its requester asks for the certificate and goes when it stops. The LXD write is `PATCH` of
//! the name alone, so restrictions and projects stay as they were until the next hook brings
//! them in line, as for any owned entry.

use crate::cluster::{TrustEntry, TrustKind};
use crate::ownership::{Interface, Owner, Scope};
use crate::requests::Request;
use std::collections::BTreeMap;

/// charm-lxd's prefix for the entries of its `https` relation.
const CHARM_LXD_PREFIX: &str = "juju-relation-";
/// This charm's own naming scheme (`ownership`): a name of it that is not ours is another
/// model's or another integrator's, which finds it again by that name.
const OWN_SCHEME_PREFIX: &str = "juju.";

/// Which old charm made an entry, as its name shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MadeBy {
    /// canonical/lxd-integrator-operator: the certificate's CN, for an `api` requester.
    PythonCharm,
    /// canonical/charm-lxd: `juju-relation-<app or unit>`, for an `https` requester.
    CharmLxd,
}

impl MadeBy {
    pub(crate) fn why(self) -> &'static str {
        match self {
            MadeBy::PythonCharm => {
                "named by the certificate's CN, as the Python lxd-integrator named it for an api requirer"
            }
            MadeBy::CharmLxd => "named juju-relation-<requirer>, as charm-lxd named it for this https requirer",
        }
    }
}

/// Why a requested certificate's entry is left as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    NotClient,
    OtherIntegrator,
    /// Named by the CN, but only `https` requirers ask: the Python charm served `api` only.
    CnForHttpsOnly,
    /// Named by the CN, but restricted: the Python charm never restricted an entry.
    CnRestricted,
    /// charm-lxd's prefix, for an application or unit that does not ask for this certificate.
    CharmLxdOtherRequirer,
    /// Any other name: an operator's or another tool's grant.
    OtherName,
}

impl Leave {
    pub(crate) fn why(self) -> &'static str {
        match self {
            Leave::NotClient => "not a client entry",
            Leave::OtherIntegrator => "named by another lxd-integrator (juju.…)",
            Leave::CnForHttpsOnly => {
                "named by the certificate's CN, but only https requirers ask for it; the Python charm served api only"
            }
            Leave::CnRestricted => {
                "named by the certificate's CN, but restricted; the Python charm never restricted one"
            }
            Leave::CharmLxdOtherRequirer => "named juju-relation-…, but not for an https requirer asking for it",
            Leave::OtherName => "not named as an old charm named its entries; an operator's or another tool's",
        }
    }
}

/// One entry to take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Adoption {
    pub(crate) fingerprint: String,
    pub(crate) old_name: String,
    pub(crate) new_name: String,
    /// The requester the old charm made the entry for, whom the new name records.
    pub(crate) owner: Owner,
    pub(crate) made_by: MadeBy,
}

/// A requested certificate held by an entry that is not taken over, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Left {
    pub(crate) fingerprint: String,
    pub(crate) name: String,
    /// The first requester of the certificate.
    pub(crate) owner: Owner,
    pub(crate) why: Leave,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Choice {
    pub(crate) adopt: Vec<Adoption>,
    pub(crate) left: Vec<Left>,
}

/// What to adopt and what to leave, from the requests of the live relations and LXD's trust
/// store: one item for every requested certificate LXD holds under a name this application
/// does not own. Pure.
pub(crate) fn choose(scope: &Scope, requests: &[Request], store: &[TrustEntry]) -> Choice {
    let by_fp: BTreeMap<&str, &TrustEntry> = store.iter().map(|e| (e.fingerprint.as_str(), e)).collect();
    // Every requester of each certificate, in request order (relation, then application
    // databag, then units), certificates in order of their first request.
    let mut order: Vec<&str> = Vec::new();
    let mut asking: BTreeMap<&str, Vec<&Request>> = BTreeMap::new();
    for req in requests {
        let fp = req.cert.fingerprint.as_str();
        let list = asking.entry(fp).or_default();
        if list.is_empty() {
            order.push(fp);
        }
        list.push(req);
    }
    let mut out = Choice::default();
    for fp in order {
        // Not in LXD: the reconcile adds it under our name. Ours already: nothing to do.
        let Some(entry) = by_fp.get(fp).filter(|e| scope.owner_of(&e.name).is_none()) else { continue };
        let Some(reqs) = asking.get(fp).filter(|r| !r.is_empty()) else { continue };
        match judge(entry, reqs) {
            Ok((owner, made_by)) => out.adopt.push(Adoption {
                fingerprint: fp.to_string(),
                old_name: entry.name.clone(),
                new_name: scope.entry_name(owner),
                owner: owner.clone(),
                made_by,
            }),
            Err(why) => out.left.push(Left {
                fingerprint: fp.to_string(),
                name: entry.name.clone(),
                owner: reqs[0].owner.clone(),
                why,
            }),
        }
    }
    out
}

/// How many entries `adopt` would take now: for the status, which points to the action only
/// when this is not zero. Pure.
pub(crate) fn adoptable(scope: &Scope, requests: &[Request], store: &[TrustEntry]) -> usize {
    choose(scope, requests, store).adopt.len()
}

/// Whether `entry` was made by an old charm for one of `asking` (all requests for its
/// certificate, never empty), and for whom. charm-lxd's names are tried first: they name one
/// requester, where a CN names only the certificate.
fn judge<'r>(entry: &TrustEntry, asking: &[&'r Request]) -> Result<(&'r Owner, MadeBy), Leave> {
    if entry.kind != TrustKind::Client {
        return Err(Leave::NotClient);
    }
    if entry.name.starts_with(OWN_SCHEME_PREFIX) {
        return Err(Leave::OtherIntegrator);
    }
    if let Some(req) = asking.iter().find(|r| charm_lxd_named(&entry.name, &r.owner)) {
        return Ok((&req.owner, MadeBy::CharmLxd));
    }
    if asking.first().and_then(|r| python_charm_name(&r.cert.der)).is_some_and(|cn| cn == entry.name) {
        let Some(req) = asking.iter().find(|r| r.owner.interface == Interface::Lxd) else {
            return Err(Leave::CnForHttpsOnly);
        };
        if entry.restricted {
            return Err(Leave::CnRestricted);
        }
        return Ok((&req.owner, MadeBy::PythonCharm));
    }
    if entry.name.starts_with(CHARM_LXD_PREFIX) {
        return Err(Leave::CharmLxdOtherRequirer);
    }
    Err(Leave::OtherName)
}

/// Whether charm-lxd would have named the entry for `owner`'s request `name`: its
/// application's name for a request from the application or any of its units (charm-lxd took
/// the application's databag when it had `version: "1.0"`), the unit's own name for a
/// request from that unit's databag. Only on `https`: charm-lxd served nothing else.
fn charm_lxd_named(name: &str, owner: &Owner) -> bool {
    let Some(member) = name.strip_prefix(CHARM_LXD_PREFIX) else { return false };
    owner.interface == Interface::LxdHttps
        && (member == owner.remote_app || (owner.unit.is_some() && member == owner.member()))
}

/// The name the Python charm gave a certificate's entry: pyOpenSSL's `get_subject().CN`, the
/// first CN of the subject, whole. `None` when there is none, it is empty, or it is a string
/// type read here only approximately: such an entry is left rather than risk a wrong match.
fn python_charm_name(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    (!cn.is_empty()).then(|| cn.to_string())
}
