//! Every bound on what crosses a process boundary, with where it comes from. A value the charm
//! sends or takes is cut, summarised or refused against one of these, never left to the size
//! of its input. (`../shared/reference/juju-hooks.md`, "Limits a charm meets on a real unit".)

use std::time::Duration;

// --- What the machine and Juju impose. The charm stays inside the argv and state-key bounds by
// its own, smaller ones below, and never checks them itself: only the in-memory agent
// (`memory`) does, refusing what a real unit would.

/// Linux refuses a single argv string over `MAX_ARG_STRLEN` (32 pages: 128 KiB, NUL included)
/// with `E2BIG`: a hook tool argument never reaches this.
#[cfg(any(test, feature = "testkit"))]
pub(crate) const ARG_MAX_BYTES: usize = 128 * 1024 - 1;
/// argv + environment together: a quarter of the usual 8 MiB stack limit.
#[cfg(any(test, feature = "testkit"))]
pub(crate) const ARGV_TOTAL_BYTES: usize = 2 * 1024 * 1024;
/// Juju stores a relation databag as one MongoDB document: 16 MiB.
pub(crate) const DATABAG_BYTES: usize = 16 * 1024 * 1024;
/// The controller's `max-charm-state-size` default: all of a unit's `state-set` data.
pub const UNIT_STATE_BYTES: usize = 2 * 1024 * 1024;
/// One `state-set` key (Juju's `quota.MaxCharmStateKeySize`).
#[cfg(any(test, feature = "testkit"))]
pub(crate) const STATE_KEY_BYTES: usize = 256;
/// One `state-set` value (Juju's `quota.MaxCharmStateValueSize`).
pub const STATE_VALUE_BYTES: usize = 64 * 1024;
/// `is-leader` answering true guarantees leadership for this long from that call.
pub(crate) const LEADERSHIP_GUARANTEE: Duration = Duration::from_secs(30);

// --- What the charm allows itself, well inside the above.

/// One `juju-log` message. Longer lists are split over several calls.
pub const LOG_MESSAGE_BYTES: usize = 8 * 1024;
/// At most this many `juju-log` calls for one list of lines; the rest is counted, not listed.
pub const LOG_CALLS_PER_LIST: usize = 4;
/// A status message, in characters: `juju status` shows one line.
pub(crate) const STATUS_CHARS: usize = 120;
/// One `action-set` value; lists are counted and shown up to this size.
pub(crate) const ACTION_VALUE_BYTES: usize = 16 * 1024;
/// All of one action's results together (argv of one `action-set` call).
pub(crate) const ACTION_RESULTS_BYTES: usize = 256 * 1024;
/// Items listed one by one in an action's results before the rest is only counted.
pub(crate) const ACTION_ITEMS: usize = 500;
/// Entries the `adopt` action lists one by one, its two lists together. An entry takes up to
/// ~900 bytes of results (two names of `ENTRY_NAME_SHOWN`, an LXD error), so 200 stay well
/// inside `ACTION_RESULTS_BYTES`; the rest are counted.
pub(crate) const ADOPT_ITEMS: usize = 200;
/// Bytes of a trust entry's name (or of LXD's error text) shown in results and logs: names
/// are chosen by whoever adds the entry, and LXD puts no bound on them.
pub(crate) const ENTRY_NAME_SHOWN: usize = 256;
/// Problems named one by one (per kind) in a summary before the rest is only counted.
pub const PROBLEMS_NAMED: usize = 3;

// --- What the charm takes from a requirer.

/// Bytes of `client_certificates` parsed from one databag: what Juju lets a databag hold, so
/// nothing a real controller delivers is cut; larger values (only a broken agent sends them)
/// are refused whole and named.
pub(crate) const CLIENT_CERTS_BYTES: usize = DATABAG_BYTES;
/// Distinct certificates taken from one databag. The benchmark's largest case (1,000 from one
/// unit) fits; entries past it are named as one problem.
pub(crate) const CERTS_PER_DATABAG: usize = 1_000;
/// Bytes of an `lxd-https` requirer's `projects` read: LXD project names are short, so this
/// holds thousands of them; a longer value is refused whole, and grants nothing.
pub(crate) const PROJECTS_BYTES: usize = 64 * 1024;
/// What the charm writes into one databag of its own: half of Juju's limit, so Juju's own keys
/// and any growth in the JSON around the values never push a `relation-set` over.
pub const PUBLISHED_BYTES: usize = DATABAG_BYTES / 2;
/// Refused certificates named in one relation's `refused` key (about 100 bytes each): as many
/// as one databag may ask for; past it the rest are counted in the status only.
pub(crate) const REFUSED_PUBLISHED: usize = CERTS_PER_DATABAG;
/// How far ahead of this unit's clock a requirer's certificate may start and still count as a
/// request rather than bad input. Requirers make certificates with notBefore = now, so a clock a
/// little ahead sends one LXD refuses for a moment ("isn't valid yet", LXD 5.0 and Incus alike);
/// ten minutes covers two `update-status` periods of drift on a machine without time
/// synchronisation, and a clock further off is a fault the operator should hear of.
pub(crate) const CLOCK_SKEW_ALLOWANCE: Duration = Duration::from_secs(600);

// --- What the charm takes from LXD. A misbehaving server (or anything answering with the
// pinned certificate) is outside input like a requirer: its values go into argv, databags and
// the state cache, so each is checked (`lxd::checked`); a member that fails is skipped and
// named, never published.

/// Cluster members taken from one answer; the rest are skipped and counted. LXD documents no
/// limit, and real clusters have tens of members; 256 of the longest names and URLs below
/// stay under 150 KiB in a `nodes` value, far inside `PUBLISHED_BYTES`.
pub const MEMBERS: usize = 256;
/// Bytes of a member's name. LXD validates none (`lxd/api_cluster.go` refuses only `none` and
/// a leading `@`; the default is the hostname, at most 64 bytes); Incus allows 64
/// (`validate.IsAPIName`). 255, the longest DNS name, refuses no name a real member has.
pub const MEMBER_NAME_BYTES: usize = 255;
/// Bytes of a member's URL: `https://`, a 253-byte DNS name and `:65535` make 267.
pub const MEMBER_URL_BYTES: usize = 267;
/// Bytes of a member's status: LXD's and Incus's are single words (`Online`, `Evacuating`).
pub(crate) const MEMBER_STATUS_BYTES: usize = 32;
/// Bytes of a member's message (`Fully operational`, `No heartbeat for 41s (...)`) kept for
/// `list-nodes`; a longer one is cut.
pub const MEMBER_MESSAGE_BYTES: usize = 256;
/// Bytes of a skipped member's name shown in the log: enough to recognise it.
pub const MEMBER_NAME_SHOWN: usize = 64;
/// Bytes of LXD's `server_version` (`5.0.2`, `5.21.3`, `6.9`), which becomes an argument of
/// `application-version-set`; anything longer, or not a plain version, is shown as `unknown`.
pub const SERVER_VERSION_BYTES: usize = 32;
/// Member endpoints the unit remembers, and tries, for failover when the configured one is
/// down. Each unreachable one may cost a connect timeout (3 s) of a hook, and any one member
/// that answers is enough.
pub const FAILOVER_ENDPOINTS: usize = 10;

// --- Time.

/// One read from LXD, from connecting to the last byte of its answer. LXD serves the charm's
/// small reads in well under a second even on a busy cluster; this leaves room for a slow
/// leader election.
pub const LXD_REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// No write to LXD starts later than this after the last `is-leader` that answered true
/// (timed from just before that call). Between any two writes, a leader whose answer is older
/// asks again; the parallel writers check the same clock before each request they start.
/// Well under `LEADERSHIP_GUARANTEE`, so that a write started at the very end of the window
/// still has `LXD_WRITE_DEADLINE` to finish inside the guarantee (see below).
pub(crate) const LEADERSHIP_WINDOW: Duration = Duration::from_secs(10);
/// A leader whose last answer is this old asks again before the next batch of writes, so a
/// batch has at least half the window to run in rather than being cut off at once. Asking
/// costs one hook tool (tens of milliseconds); a batch of changes takes seconds.
pub(crate) const LEADERSHIP_RECHECK_AFTER: Duration = Duration::from_secs(5);
/// One write to LXD (add, remove, re-restrict, rename), from connecting to the last byte of
/// its answer. A write starts at most `LEADERSHIP_WINDOW` (10 s) after the last `is-leader`
/// that answered true and ends by this deadline: 10 s + 10 s = 20 s, inside the 30 s that
/// answer guarantees, with 10 s to spare for the timer firing late on a loaded machine and for
/// LXD finishing a write the charm has stopped waiting for (a deadline ends the wait, not the
/// server's work). LXD answers these small writes in well under a second; one that takes 10 s
/// is treated as unreachable, and the next hook retries it.
pub(crate) const LXD_WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// A whole pass: past this, no further change is started and the rest waits for the next hook.
/// Above the benchmark's 1,000 adds (~190 s on LXD 5.0), far below "forever".
pub(crate) const PASS_DEADLINE: Duration = Duration::from_secs(300);
/// A quiet `update-status` (nothing changed since a steady pass) still runs the full pass this
/// often, so that nothing its digest might miss stays wrong for longer.
pub(crate) const FULL_PASS_EVERY: Duration = Duration::from_secs(3600);

// The arithmetic above, checked by the compiler: a write started at the end of the window
// ends inside the guarantee with the stated margin, and a batch is started inside the window.
const _: () = assert!(
    LEADERSHIP_WINDOW.as_secs() + LXD_WRITE_DEADLINE.as_secs() + 10 <= LEADERSHIP_GUARANTEE.as_secs()
        && LEADERSHIP_RECHECK_AFTER.as_secs() < LEADERSHIP_WINDOW.as_secs()
);

/// A name as a log line may show it: printable ASCII as it is, anything else as `?`, cut to
/// `MEMBER_NAME_SHOWN` bytes. What LXD sent is never repeated raw.
pub(crate) fn shown(name: &str) -> String {
    let plain: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' { c } else { '?' }).collect();
    cut(&plain, MEMBER_NAME_SHOWN).into_owned()
}

/// `text` cut to at most `max` bytes on a character boundary, saying how much was left out.
pub(crate) fn cut(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    const NOTE: usize = 40;
    let mut end = max.saturating_sub(NOTE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_short_text_and_bounds_long_text() {
        assert_eq!(cut("short", 10), "short");
        let long = "é".repeat(10_000);
        let got = cut(&long, 1000);
        assert!(got.len() <= 1000, "{}", got.len());
        assert!(got.ends_with("bytes cut)"));
    }
}
