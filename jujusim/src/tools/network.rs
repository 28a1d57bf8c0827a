//! `network-get` and `unit-get`: the unit's one loopback address.

use serde_json::Value;

use crate::flags::{check_empty, go_quote};
use crate::format::{Format, Out};

use super::args::Opts;
use super::{Env, OutOpts, ToolResult, fail, usage};

pub(super) fn unit_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let args = o.args;
    if args.is_empty() {
        return Err(usage("no setting specified"));
    }
    if args[0] != "private-address" && args[0] != "public-address" {
        return Err(usage(format!("unknown setting {}", go_quote(&args[0]))));
    }
    check_empty(&args[1..]).map_err(usage)?;
    let addr = env.unit().address.clone();
    out.write(env, Out::Str(addr))
}

pub(super) fn network_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Smart);
    let sel = o.selected();
    let args = o.args;
    if args.is_empty() {
        return Err(usage("no arguments specified"));
    }
    let binding = args[0].clone();
    check_empty(&args[1..]).map_err(usage)?;
    let app = &env.model.apps[&env.app_name()];
    if !app.meta.endpoints.contains_key(&binding) && !app.meta.extra_bindings.contains(&binding) {
        return Err(fail(format!("no network config found for binding {}", go_quote(&binding))));
    }
    let addr = env.unit().address.clone();
    let cidr = format!("{}/32", addr);
    let info = serde_json::json!({
        "bind-addresses": [{
            "mac-address": "",
            "interface-name": "eth0",
            "addresses": [{"hostname": "", "value": addr, "cidr": cidr, "address": addr}],
            "macaddress": "",
            "interfacename": "eth0",
        }],
        "egress-subnets": [cidr],
        "ingress-addresses": [addr],
    });
    let value = match sel.as_slice() {
        [] => Out::Any(info),
        [one] => single_network_value(one, &addr, &cidr),
        many => {
            let mut m = serde_json::Map::new();
            for k in many {
                let v = match single_network_value(k, &addr, &cidr) {
                    Out::Str(s) => Value::String(s),
                    Out::StrList(l) => Value::Array(l.into_iter().map(Value::String).collect()),
                    _ => Value::Null,
                };
                m.insert(k.to_string(), v);
            }
            Out::Any(Value::Object(m))
        }
    };
    out.write(env, value)
}

fn single_network_value(k: &str, addr: &str, cidr: &str) -> Out {
    match k {
        "egress-subnets" => Out::StrList(vec![cidr.to_string()]),
        "ingress-address" => Out::Str(addr.to_string()),
        _ => Out::Str(addr.to_string()),
    }
}
