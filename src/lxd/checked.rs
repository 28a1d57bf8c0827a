//! What LXD says, checked like a requirer's input before any of it is published, remembered or
//! handed to a hook tool (`limits`, "What the charm takes from LXD"). A member with a value
//! that fails is skipped and named in the log, its name shown cut and escaped, never as sent;
//! a version that is not a plain one becomes `unknown`. `reconcile::observe` checks every
//! answer once, so every later stage sees only bounded, plain values.
//!
//! The rules refuse nothing a real cluster has: LXD validates no member name (its default is
//! the hostname), Incus allows 64 bytes without spaces or slashes (`validate.IsAPIName`);
//! member URLs are `https://` and the member's `cluster.https_address`; statuses are one word
//! (`Online`, `Evacuated`, Incus's `Evacuating`); versions are `5.0.2`, `5.21.3`, `6.9`.

use super::{Member, MemberStatus, ServerInfo};
use crate::endpoint::{Endpoint, EndpointError};
use crate::limits;
use std::collections::BTreeSet;

/// What `application-version-set` is given for a version that is missing or not plain.
pub const UNKNOWN_VERSION: &str = "unknown";

/// Why a member was skipped. It never carries the value: that is what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemberProblem {
    #[error("it has no name")]
    NoName,
    #[error("its name is longer than {} bytes", limits::MEMBER_NAME_BYTES)]
    LongName,
    #[error("its name holds a control, space, slash or invisible character")]
    NameCharacters,
    #[error("an earlier member has the same name")]
    DuplicateName,
    #[error("its URL is longer than {} bytes", limits::MEMBER_URL_BYTES)]
    LongUrl,
    #[error("its URL is not an https endpoint: it {0}")]
    Url(EndpointError),
    #[error("its status is not one word of at most {} letters and digits", limits::MEMBER_STATUS_BYTES)]
    Status,
}

/// The members worth using, and one log line for each kind of thing skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    pub kept: Vec<Member>,
    /// The first few skipped members named (`limits::PROBLEMS_NAMED`), the rest counted.
    pub problems: Vec<String>,
}

/// Checks every member, in LXD's order: each kept one has a plain bounded name, an https URL
/// in canonical form, a one-word status and a bounded message; at most `limits::MEMBERS` are
/// kept. Duplicate names keep the first.
pub fn members(raw: Vec<Member>) -> Members {
    let total = raw.len();
    let mut names = BTreeSet::new();
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    let mut past_bound = 0;
    for (i, m) in raw.into_iter().enumerate() {
        let shown_name = shown(&m.name);
        match member(m) {
            Ok(_) if kept.len() >= limits::MEMBERS => past_bound += 1,
            Ok(m) if !names.insert(m.name.clone()) => skipped.push((i, shown_name, MemberProblem::DuplicateName)),
            Ok(m) => kept.push(m),
            Err(why) => skipped.push((i, shown_name, why)),
        }
    }
    let mut problems: Vec<String> = skipped
        .iter()
        .take(limits::PROBLEMS_NAMED)
        .map(|(i, name, why)| format!("LXD cluster member {} of {total} (\"{name}\") skipped: {why}", i + 1))
        .collect();
    if skipped.len() > limits::PROBLEMS_NAMED {
        problems.push(format!("… and {} more LXD cluster members skipped", skipped.len() - limits::PROBLEMS_NAMED));
    }
    if past_bound > 0 {
        problems.push(format!("{past_bound} LXD cluster members past the first {} skipped", limits::MEMBERS));
    }
    Members { kept, problems }
}

/// One member, checked; its URL in canonical form, its message cut to one bounded line.
pub fn member(raw: Member) -> Result<Member, MemberProblem> {
    member_name(&raw.name)?;
    let url = member_url(&raw.url)?;
    if !plain_status(&raw.status) {
        return Err(MemberProblem::Status);
    }
    let message = one_line(&raw.message, limits::MEMBER_MESSAGE_BYTES);
    Ok(Member { name: raw.name, url, status: raw.status, message })
}

/// A member name (or a server's): 1 to `limits::MEMBER_NAME_BYTES` bytes, no control,
/// whitespace, slash (LXD's API could not address the member) or invisible character (a
/// name must read in a log as what it is).
pub fn member_name(name: &str) -> Result<(), MemberProblem> {
    if name.is_empty() {
        return Err(MemberProblem::NoName);
    }
    if name.len() > limits::MEMBER_NAME_BYTES {
        return Err(MemberProblem::LongName);
    }
    if name.chars().any(|c| c.is_control() || c.is_whitespace() || c == '/' || invisible(c)) {
        return Err(MemberProblem::NameCharacters);
    }
    Ok(())
}

/// A member URL as the charm publishes and remembers it: `https://host:port`.
pub(crate) fn member_url(url: &str) -> Result<String, MemberProblem> {
    if url.len() > limits::MEMBER_URL_BYTES {
        return Err(MemberProblem::LongUrl);
    }
    Endpoint::parse(url).map(|ep| ep.url()).map_err(MemberProblem::Url)
}

/// LXD's statuses are one word of letters; a later version's new one still is.
fn plain_status(status: &MemberStatus) -> bool {
    let text = status.to_string();
    !text.is_empty() && text.len() <= limits::MEMBER_STATUS_BYTES && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `raw` when it is a plain version (a digit, then letters, digits and `.+~_-`, at most
/// `limits::SERVER_VERSION_BYTES`), else `unknown`.
pub fn version(raw: &str) -> &str {
    let plain = raw.len() <= limits::SERVER_VERSION_BYTES
        && raw.starts_with(|c: char| c.is_ascii_digit())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b));
    if plain { raw } else { UNKNOWN_VERSION }
}

/// The server's facts, checked: a plain version (or `unknown`), a name that passes as a
/// member's (or none), and listen addresses as bounded as member URLs. Problems come as log
/// lines.
pub fn server(raw: ServerInfo) -> (ServerInfo, Vec<String>) {
    let mut problems = Vec::new();
    let server_version = version(&raw.server_version).to_string();
    let server_name = match member_name(&raw.server_name) {
        Ok(()) => raw.server_name,
        Err(MemberProblem::NoName) => String::new(),
        Err(why) => {
            problems.push(format!("LXD's server name (\"{}\") is not used: {why}", shown(&raw.server_name)));
            String::new()
        }
    };
    let mut addresses: Vec<String> = raw.addresses.into_iter().filter(|a| member_url(a).is_ok()).collect();
    addresses.truncate(limits::MEMBERS);
    (ServerInfo { server_version, server_name, addresses, ..raw }, problems)
}

/// The member URLs the unit remembers for failover: the first `limits::FAILOVER_ENDPOINTS`
/// that are https endpoints, in canonical form, so the state cache holds a bounded list.
pub fn failover<'a>(urls: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    urls.into_iter().filter_map(|u| member_url(u).ok()).take(limits::FAILOVER_ENDPOINTS).collect()
}

pub(crate) use crate::limits::shown;

/// `text` on one line (control, invisible and line-breaking characters as spaces), cut to
/// `max` bytes.
fn one_line(text: &str, max: usize) -> String {
    let blank = |c: char| c.is_control() || invisible(c) || (c.is_whitespace() && c != ' ');
    let line: String = text.chars().map(|c| if blank(c) { ' ' } else { c }).collect();
    limits::cut(&line, max).into_owned()
}

/// Characters that show as nothing, or turn the text around them: a name holding them reads
/// as another one (zero-width spaces and joiners, bidirectional overrides and isolates, the
/// byte-order mark, the soft hyphen).
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests;
