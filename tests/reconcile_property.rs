//! Hostile and oversized input against a leader's reconcile pass, on an in-memory unit agent
//! that refuses what a real unit refuses (`lxd_integrator::memory`).
//!
//! The scenario: up to three requirer applications with up to fifty units each, each related
//! on `api` or on `https` (where the first string of what a member sends is its one
//! `certificate`, and some ask for `projects`). Every databag's
//! `client_certificates` is drawn from valid certificates (leaves and self-signed CA:TRUE
//! ones), the same certificates padded with whitespace and sent again, and garbage up to a few
//! MiB (long lists of numbers, thousands of short strings, fake PEM blocks, private keys, a
//! huge string, text that is not JSON). The config may hold a private key or a password in
//! `lxd_endpoint`, the other `lxd_*` options or `trust-projects`. Every secret and every piece
//! of garbage carries `SECRET-MARKER`. The leader runs the pass twice over it.
//!
//! What must hold, one test each:
//! (a) every pass succeeds and no hook-tool call exceeds a limit of a real unit (E2BIG, 16 MiB
//!     databags, 2 MiB of unit state);
//! (b) LXD ends up trusting exactly the valid certificates sent, CA:TRUE ones included;
//! (c) what a pass sends is bounded by `FIXED_BYTES + BYTES_PER_CERT x distinct valid
//!     certificates`, not by the size of the input;
//! (d) no secret and no garbage is ever repeated in what the charm sends;
//! (e) once a pass over the same input found nothing to change, the next writes nothing.
//!
//! The seed and the number of cases are fixed so CI runs the same cases in well under a
//! minute; `PROPTEST_CASES` and `PROPTEST_RNG_SEED` explore further. A failure prints the
//! shrunk scenario in a few lines (the bytes are only made when it runs; see `scenario.rs`).

#[path = "reconcile_property/scenario.rs"]
mod scenario;
#[path = "reconcile_property/strategies.rs"]
mod strategies;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use scenario::*;
use strategies::small_value;

/// Enough cases to meet every kind of input several times, few enough for CI (each case runs
/// two passes over up to a few MiB in a debug build).
const CASES: u32 = 32;
const SEED: u64 = 0x11d_1a7e6;

/// Shrinking stops after a number of tries, so a counterexample is the same on a busy machine
/// and an idle one; the time limit only guards CI against a pathological case.
fn config() -> Config {
    let mut config =
        Config { failure_persistence: None, max_shrink_iters: 200, max_shrink_time: 15_000, ..Config::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    config
}

/// What a hostile or broken requirer sends in one databag: valid certificates, the same ones
/// padded with whitespace, and garbage up to a few MiB. Valid certificates come first so
/// shrinking heads for them.
fn large_item() -> impl Strategy<Value = Item> {
    prop_oneof![
        3 => (0..POOL_SIZE).prop_map(Item::Cert),
        3 => (0..POOL_SIZE, 1..=MIB / 2).prop_map(|(cert, pad)| Item::Padded { cert, pad }),
        1 => (0..POOL_SIZE, 2..=40usize, 1..=64 * 1024usize).prop_map(|(cert, copies, pad)| Item::Copies { cert, copies, pad }),
        2 => (1..=200_000usize).prop_map(Item::Numbers),
        3 => (1..=6_000usize).prop_map(Item::Strings),
        1 => (1..=600usize).prop_map(Item::FakePem),
        1 => (1..=60usize).prop_map(Item::Keys),
        1 => (1..=3 * MIB).prop_map(Item::Huge),
    ]
}

fn large_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::collection::vec(large_item(), 1..4).prop_map(Value::List),
        1 => (1..=2 * MIB).prop_map(Value::NotJson),
    ]
}

/// Up to fifty units, mostly a handful.
fn relation() -> impl Strategy<Value = Relation> {
    let units = prop_oneof![4 => 0..=4usize, 1 => 0..=MAX_UNITS];
    (any::<bool>(), small_value(), units.prop_flat_map(|n| prop::collection::vec(small_value(), n)))
        .prop_map(|(https, app_bag, units)| Relation { https, app_bag, units })
}

/// Up to two members send a large value instead of a small one; or many members send the same
/// certificate, each padded a little differently (one certificate, many spellings).
fn large() -> impl Strategy<Value = Vec<Large>> {
    let one = (0..MAX_RELATIONS, 0..=MAX_UNITS, large_value()).prop_map(|(relation, member, value)| Large {
        relation,
        member,
        members: 1,
        value,
    });
    let many = (0..MAX_RELATIONS, 0..=MAX_UNITS, 2..=MAX_UNITS, 0..POOL_SIZE, 1..=128 * 1024usize).prop_map(
        |(relation, member, members, cert, pad)| Large {
            relation,
            member,
            members,
            value: Value::List(vec![Item::Padded { cert, pad }]),
        },
    );
    // Any number down to none, so shrinking can drop a large value whole before cutting it.
    prop::collection::vec(prop_oneof![4 => one, 1 => many], 0..=2)
}

fn setting() -> impl Strategy<Value = Setting> {
    prop_oneof![Just(Setting::Unset), Just(Setting::Good), Just(Setting::Key), Just(Setting::Password)]
}

/// Mostly all four `lxd_*` options set or none, since that is what operators do; a partial
/// set now and then.
fn charm_config() -> impl Strategy<Value = CharmConfig> {
    let projects = prop_oneof![
        3 => Just(Projects::Unset),
        1 => Just(Projects::Empty),
        2 => Just(Projects::Default),
        1 => Just(Projects::Key),
        1 => Just(Projects::Password),
    ];
    let all_set = prop_oneof![Just(Setting::Good), Just(Setting::Key), Just(Setting::Password)];
    let options = prop_oneof![
        2 => Just([Setting::Unset; 4]),
        2 => prop::array::uniform4(all_set),
        1 => prop::array::uniform4(setting()),
    ];
    (options, projects).prop_map(|([endpoint, client_cert, client_key, server_cert], projects)| CharmConfig {
        endpoint,
        client_cert,
        client_key,
        server_cert,
        projects,
    })
}

/// The large values come first: proptest shrinks in order, and every try with megabytes in it
/// is slow, so they are cut down before anything else is tried.
fn scenario() -> impl Strategy<Value = Scenario> {
    (large(), any::<bool>(), charm_config(), prop::collection::vec(relation(), 1..=MAX_RELATIONS))
        .prop_map(|(large, trusted, config, relations)| Scenario { trusted, config, relations, large })
}

/// Two passes: the relation hook, then update-status over the same input.
const PASSES: usize = 2;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_no_pass_fails_or_exceeds_a_limit_of_a_real_unit(s in scenario()) {
        s.holds(PASSES, check_limits).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn b_every_valid_certificate_is_trusted_and_nothing_else(s in scenario()) {
        s.holds(PASSES, |o| check_trusted(&s, o)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn c_output_grows_with_valid_certificates_not_with_input(s in scenario()) {
        s.holds(PASSES, |o| check_output_bound(&s, o)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn d_no_secret_or_garbage_is_repeated(s in scenario()) {
        s.holds(PASSES, |o| check_no_echo(&s, o)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn e_a_steady_pass_over_the_same_input_writes_nothing(s in scenario()) {
        s.holds(PASSES + 2, check_idempotent).map_err(TestCaseError::fail)?;
    }
}
