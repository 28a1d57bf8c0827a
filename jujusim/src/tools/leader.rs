//! `is-leader`, `leader-get`, `leader-set` (immediate, leader only).

use crate::bags::{self, Bag};
use crate::flags::check_empty;
use crate::format::{Format, Out};

use super::args::Opts;
use super::input::parse_key_values;
use super::{Env, OutOpts, ToolResult, bag_out, fail, key_arg, usage};

pub(super) fn is_leader(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    check_empty(&args).map_err(usage)?;
    let l = env.is_leader();
    out.write(env, Out::Bool(l))
}

pub(super) fn leader_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    let key = key_arg(&args)?;
    let settings = env.committed(Bag::Leader(&env.app_name()))?;
    out.write(env, bag_out(settings, &key))
}

pub(super) fn leader_set(env: &mut Env, o: Opts) -> ToolResult {
    let args = o.args;
    let settings = parse_key_values(&args).map_err(usage)?;
    if !env.is_leader() {
        return Err(fail("cannot write leadership settings: cannot write settings: not the leader"));
    }
    let app = env.app_name();
    let mut bag = env.committed(Bag::Leader(&app))?;
    for (k, v) in settings {
        if v.is_empty() {
            bag.remove(&k);
        } else {
            bag.insert(k, v);
        }
    }
    // Immediate, not staged: Juju writes leader settings at once (the driver tells the
    // minions once the hook is over).
    bags::write(&env.paths, Bag::Leader(&app), &bag).map_err(|e| fail(e.to_string()))
}
