//! Whether the charm's credential may manage LXD's trust store, read from what the server says
//! about it: pure, so the status can say what is missing before any change is tried.

use crate::cluster::{Identity, LxdError, ServerInfo, TrustEntry};

/// The LXD API extension that makes `restricted`/`projects` mean something.
pub(crate) const EXT_CERTIFICATE_PROJECT: &str = "certificate_project";
/// LXD 5.21+: identities, fine-grained authorization and `/1.0/auth/identities/current`.
/// Incus has none of it.
pub(crate) const EXT_ACCESS_MANAGEMENT: &str = "access_management";

/// What the charm needs on the server to manage trust with fine-grained authorization: add,
/// re-restrict or rename, and remove entries (`POST /1.0/certificates` checks
/// `can_create_identities` on the server; `PATCH` and `DELETE` check `can_edit`/`can_delete` on
/// the certificate, which the server's `can_edit_identities`/`can_delete_identities` grant:
/// `lxd/certificates.go` and `lxd/auth/drivers/openfga_model.openfga` in canonical/lxd).
pub(crate) const NEEDED_ENTITLEMENTS: &[&str] =
    &["can_create_identities", "can_edit_identities", "can_delete_identities"];
/// Server entitlements that imply every one of `NEEDED_ENTITLEMENTS` (same model file).
const IMPLYING_ENTITLEMENTS: &[&str] = &["admin", "permission_manager"];
/// Identity types whose rights come from their permissions (`shared/api/auth.go`): TLS
/// identities made through `/1.0/auth/identities/tls` (5.21.3+, 6.2+), OIDC, bearer tokens.
const FINE_GRAINED_TYPES: &[&str] = &["Client certificate", "OIDC client", "Client token bearer"];
const UNRESTRICTED_CERTIFICATE: &str = "Client certificate (unrestricted)";
const RESTRICTED_CERTIFICATE: &str = "Client certificate (restricted)";

/// Whether the charm's credential may manage LXD's trust store, as far as the server says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TrustAccess {
    /// An unrestricted certificate, or an identity with every needed entitlement.
    Full,
    /// A certificate restricted to projects: LXD refuses it any change to the trust store.
    Restricted,
    /// A fine-grained identity without these server entitlements.
    Missing(Vec<&'static str>),
    /// The server does not say (why, for `check-connection`); LXD's answers will tell.
    Unknown(String),
}

/// Reads the credential's rights from what the server said. With `access_management` (LXD
/// 5.21+), from `identities/current`: an unrestricted certificate may do anything, a restricted
/// one nothing to trust, a fine-grained identity what its server-wide permissions grant. Without
/// it (LXD 5.0, Incus) a trusted certificate is an admin unless its own trust entry (found by
/// `own_fingerprint`) is restricted.
pub(crate) fn trust_access(
    server: &ServerInfo,
    identity: Option<&Result<Identity, LxdError>>,
    store: &[TrustEntry],
    own_fingerprint: &str,
) -> TrustAccess {
    match identity {
        Some(Ok(id)) => identity_access(id),
        Some(Err(e)) => {
            TrustAccess::Unknown(format!("{EXT_ACCESS_MANAGEMENT}: the current identity is unreadable: {e}"))
        }
        None if server.has_extension(EXT_ACCESS_MANAGEMENT) => {
            TrustAccess::Unknown("the current identity was not read".into())
        }
        None => match store.iter().find(|e| e.fingerprint == own_fingerprint) {
            Some(e) if e.restricted => TrustAccess::Restricted,
            Some(_) => TrustAccess::Full,
            None => TrustAccess::Unknown("its certificate is not in the trust store (CA-signed?)".into()),
        },
    }
}

fn identity_access(id: &Identity) -> TrustAccess {
    let fine_grained = id.fine_grained.unwrap_or_else(|| FINE_GRAINED_TYPES.contains(&id.kind.as_str()));
    match id.kind.as_str() {
        UNRESTRICTED_CERTIFICATE => return TrustAccess::Full,
        RESTRICTED_CERTIFICATE => return TrustAccess::Restricted,
        _ if !fine_grained => {
            return TrustAccess::Unknown(format!("identity type {:?}", crate::limits::cut(&id.kind, 64)));
        }
        _ => {}
    }
    let on_server: Vec<&str> = id
        .permissions
        .iter()
        .filter(|p| p.entity_type == "server" && p.url.trim_end_matches('/') == "/1.0")
        .map(|p| p.entitlement.as_str())
        .collect();
    if on_server.iter().any(|e| IMPLYING_ENTITLEMENTS.contains(e)) {
        return TrustAccess::Full;
    }
    let missing: Vec<&'static str> = NEEDED_ENTITLEMENTS.iter().copied().filter(|n| !on_server.contains(n)).collect();
    if missing.is_empty() { TrustAccess::Full } else { TrustAccess::Missing(missing) }
}
