//! Every bound on what crosses a process boundary, with where it comes from. A value the charm
//! sends or takes is cut, summarised or refused against one of these, never left to the size
//! of its input. (`../shared/reference/juju-hooks.md`, "Limits a charm meets on a real unit".)

use std::time::Duration;

// --- What the machine and Juju impose.

/// Linux refuses a single argv string over `MAX_ARG_STRLEN` (32 pages: 128 KiB, NUL included)
/// with `E2BIG`: a hook tool argument never reaches this.
pub const ARG_MAX_BYTES: usize = 128 * 1024 - 1;
/// argv + environment together: a quarter of the usual 8 MiB stack limit.
pub const ARGV_TOTAL_BYTES: usize = 2 * 1024 * 1024;
/// Juju stores a relation databag as one MongoDB document: 16 MiB.
pub const DATABAG_BYTES: usize = 16 * 1024 * 1024;
/// The controller's `max-charm-state-size` default: all of a unit's `state-set` data.
pub const UNIT_STATE_BYTES: usize = 2 * 1024 * 1024;
/// One `state-set` key (Juju's `quota.MaxCharmStateKeySize`).
pub const STATE_KEY_BYTES: usize = 256;
/// One `state-set` value (Juju's `quota.MaxCharmStateValueSize`).
pub const STATE_VALUE_BYTES: usize = 64 * 1024;
/// `is-leader` answering true guarantees leadership for this long from that call.
pub const LEADERSHIP_GUARANTEE: Duration = Duration::from_secs(30);

// --- What the charm allows itself, well inside the above.

/// One `juju-log` message. Longer lists are split over several calls.
pub const LOG_MESSAGE_BYTES: usize = 8 * 1024;
/// At most this many `juju-log` calls for one list of lines; the rest is counted, not listed.
pub const LOG_CALLS_PER_LIST: usize = 4;
/// A status message, in characters: `juju status` shows one line.
pub const STATUS_CHARS: usize = 120;
/// One `action-set` value; lists are counted and shown up to this size.
pub const ACTION_VALUE_BYTES: usize = 16 * 1024;
/// All of one action's results together (argv of one `action-set` call).
pub const ACTION_RESULTS_BYTES: usize = 256 * 1024;
/// Items listed one by one in an action's results before the rest is only counted.
pub const ACTION_ITEMS: usize = 500;
/// Problems named one by one (per kind) in a summary before the rest is only counted.
pub const PROBLEMS_NAMED: usize = 3;

// --- What the charm takes from a requirer.

/// Bytes of `client_certificates` parsed from one databag: what Juju lets a databag hold, so
/// nothing a real controller delivers is cut; larger values (only a broken agent sends them)
/// are refused whole and named.
pub const CLIENT_CERTS_BYTES: usize = DATABAG_BYTES;
/// Distinct certificates taken from one databag. The benchmark's largest case (1,000 from one
/// unit) fits; entries past it are named as one problem.
pub const CERTS_PER_DATABAG: usize = 1_000;
/// What the charm writes into one databag of its own: half of Juju's limit, so Juju's own keys
/// and any growth in the JSON around the values never push a `relation-set` over.
pub const PUBLISHED_BYTES: usize = DATABAG_BYTES / 2;

// --- Time.

/// One request to LXD, from connecting to the last byte of its answer.
pub const LXD_REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// A whole pass: past this, no further change is started and the rest waits for the next hook.
/// Above the benchmark's 1,000 adds (~190 s on LXD 5.0), far below "forever".
pub const PASS_DEADLINE: Duration = Duration::from_secs(300);
/// A leader that has run this long since `is-leader` asks again before writing to LXD.
pub const LEADERSHIP_RECHECK_AFTER: Duration = Duration::from_secs(5);
