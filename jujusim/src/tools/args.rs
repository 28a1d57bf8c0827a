//! Every tool's flags, as one table, and the one parser that reads a command line against it
//! (issue #12). The flag syntax is gnuflag's ([`crate::flags`]); what a value must be is the
//! table's, checked as the flag is met, so a bad value fails with Juju's `invalid value "V"
//! for option -N: reason` before any later flag is looked at.
//!
//! Positional arguments stay with each tool: Juju checks them in `Init` interleaved with its
//! own validation, and the order of those errors is part of what the tools mirror.

use crate::flags::{self, Flag, FlagValue, Kind};
use crate::format::Format;

/// What a flag takes, and so how its value is checked when it is met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// A bool (`--app`, `--app=false`).
    Bool,
    /// Any string.
    Text,
    /// `cmd.Output`'s `--format`: smart, yaml or json.
    Format,
    /// The secret tools' `--format`: yaml or json only.
    SecretFormat,
    /// A relation id (`3` or `endpoint:3`) the running unit knows.
    Relation,
}

/// One flag: the key its value is kept under, its names, what it takes.
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    pub key: &'static str,
    pub names: &'static [&'static str],
    pub takes: Takes,
}

const fn opt(key: &'static str, names: &'static [&'static str], takes: Takes) -> Opt {
    Opt { key, names, takes }
}

/// `cmd.Output`'s two flags, first in every tool that prints.
const FORMAT: Opt = opt("format", &["format"], Takes::Format);
const OUTPUT: Opt = opt("output", &["o", "output"], Takes::Text);
const SECRET_FORMAT: Opt = opt("format", &["format"], Takes::SecretFormat);
const RELATION: Opt = opt("relation", &["r", "relation"], Takes::Relation);
const APP: Opt = opt("app", &["app"], Takes::Bool);
const FILE: Opt = opt("file", &["file"], Takes::Text);
/// `--format` where Juju only warns that it is deprecated.
const OLD_FORMAT: Opt = opt("format", &["format"], Takes::Text);
const LABEL: Opt = opt("label", &["label"], Takes::Text);
const APPLICATION: Opt = opt("application", &["application"], Takes::Bool);

/// Each tool's flags, in the order `--help` lists them.
pub const TABLE: &[(&str, &[Opt])] = &[
    ("relation-get", &[FORMAT, OUTPUT, RELATION, APP]),
    ("relation-set", &[RELATION, FILE, APP, OLD_FORMAT]),
    ("relation-ids", &[FORMAT, OUTPUT]),
    ("relation-list", &[FORMAT, OUTPUT, RELATION, APP]),
    ("config-get", &[FORMAT, OUTPUT, opt("all", &["a", "all"], Takes::Bool)]),
    ("credential-get", &[FORMAT, OUTPUT]),
    ("status-set", &[APPLICATION]),
    ("status-get", &[FORMAT, OUTPUT, opt("include-data", &["include-data"], Takes::Bool), APPLICATION]),
    ("juju-log", &[opt("debug", &["debug"], Takes::Bool), opt("level", &["l", "log-level"], Takes::Text), OLD_FORMAT]),
    ("is-leader", &[FORMAT, OUTPUT]),
    ("leader-get", &[FORMAT, OUTPUT]),
    ("leader-set", &[]),
    ("state-get", &[FORMAT, OUTPUT, opt("strict", &["strict"], Takes::Bool)]),
    ("state-set", &[FILE]),
    ("state-delete", &[]),
    ("action-get", &[FORMAT, OUTPUT]),
    ("action-set", &[]),
    ("action-fail", &[]),
    ("action-log", &[]),
    ("application-version-set", &[]),
    (
        "network-get",
        &[
            FORMAT,
            OUTPUT,
            RELATION,
            opt("primary-address", &["primary-address"], Takes::Bool),
            opt("bind-address", &["bind-address"], Takes::Bool),
            opt("ingress-address", &["ingress-address"], Takes::Bool),
            opt("egress-subnets", &["egress-subnets"], Takes::Bool),
        ],
    ),
    ("unit-get", &[FORMAT, OUTPUT]),
    (
        "secret-get",
        &[SECRET_FORMAT, OUTPUT, LABEL, opt("peek", &["peek"], Takes::Bool), opt("refresh", &["refresh"], Takes::Bool)],
    ),
    ("secret-info-get", &[SECRET_FORMAT, OUTPUT, LABEL]),
    ("goal-state", &[FORMAT, OUTPUT]),
];

/// The flags of `tool`, or `None` for a tool the table does not know.
pub fn flags_of(tool: &str) -> Option<&'static [Opt]> {
    TABLE.iter().find(|(t, _)| *t == tool).map(|(_, opts)| *opts)
}

/// A flag's value as it was met and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Met {
    Bool(bool),
    Text(String),
    Format(Format),
    Relation(u32),
}

/// A parsed command line: the positional arguments, and every flag in the order given.
#[derive(Debug, Default)]
pub struct Opts {
    pub args: Vec<String>,
    met: Vec<(&'static str, Met)>,
}

/// What a parse ends in.
pub enum Parsed {
    Opts(Opts),
    /// `-h`/`--help`: the usage text to print (the tool then does nothing else).
    Help(String),
}

/// Reads `argv` against `opts`; `known` are the relation ids the unit may name. An `Err` is
/// gnuflag's message (the tool exits 2 with it).
pub fn parse(tool: &str, opts: &[Opt], argv: &[String], known: &[u32]) -> Result<Parsed, String> {
    let defs: Vec<Flag> = opts
        .iter()
        .map(|o| Flag {
            names: o.names,
            kind: if o.takes == Takes::Bool { Kind::Bool } else { Kind::Value },
            key: o.key,
        })
        .collect();
    let mut met = Vec::new();
    let parsed = flags::parse(&defs, argv, &mut |key, _name, value| {
        let takes = opts.iter().find(|o| o.key == key).map(|o| o.takes).expect("a flag of the table");
        met.push((key, check(takes, value, known)?));
        Ok(())
    })?;
    if parsed.help {
        return Ok(Parsed::Help(usage(tool, opts)));
    }
    Ok(Parsed::Opts(Opts { args: parsed.args, met }))
}

fn check(takes: Takes, value: FlagValue, known: &[u32]) -> Result<Met, String> {
    Ok(match (takes, value) {
        (_, FlagValue::Bool(b)) => Met::Bool(b),
        (Takes::Format, FlagValue::Str(s)) => Met::Format(Format::parse(&s)?),
        (Takes::SecretFormat, FlagValue::Str(s)) if s == "smart" => return Err("unknown format \"smart\"".into()),
        (Takes::SecretFormat, FlagValue::Str(s)) => Met::Format(Format::parse(&s)?),
        (Takes::Relation, FlagValue::Str(s)) => Met::Relation(parse_relation(&s, known)?),
        (_, FlagValue::Str(s)) => Met::Text(s),
    })
}

/// What `-h` prints: every flag by its last (longest) name.
fn usage(tool: &str, opts: &[Opt]) -> String {
    let names: Vec<String> = opts
        .iter()
        .map(|o| {
            let n = o.names[o.names.len() - 1];
            if n.len() > 1 { format!("--{n}") } else { format!("-{n}") }
        })
        .collect();
    format!("Usage: {tool} [options]\n\nOptions: {}\n", names.join(" "))
}

/// A relation id as `-r` takes it (`endpoint:3` or `3`), among those the unit knows.
fn parse_relation(value: &str, known: &[u32]) -> Result<u32, String> {
    let trim = match value.rfind(':') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    let id = go_atoi(trim).ok_or_else(|| "invalid relation id".to_string())?;
    if id < 0 || id > u32::MAX as i64 || !known.contains(&(id as u32)) {
        return Err("relation not found".into());
    }
    Ok(id as u32)
}

/// Go's `strconv.Atoi`.
pub fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('+').or_else(|| s.strip_prefix('-').map(|_| s)).unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    if let Some(d) = s.strip_prefix('-') {
        if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return d.parse::<i64>().ok().map(|v| -v);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl Opts {
    fn last(&self, key: &str) -> Option<&Met> {
        self.met.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// A bool flag's last value (false when not given).
    pub fn on(&self, key: &str) -> bool {
        matches!(self.last(key), Some(Met::Bool(true)))
    }

    /// A text flag's last value.
    pub fn text(&self, key: &str) -> Option<String> {
        match self.last(key) {
            Some(Met::Text(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// `-r`'s last value.
    pub fn relation(&self) -> Option<u32> {
        match self.last("relation") {
            Some(Met::Relation(id)) => Some(*id),
            _ => None,
        }
    }

    /// `--format`'s last value, else `default`.
    pub fn format(&self, default: Format) -> Format {
        match self.last("format") {
            Some(Met::Format(f)) => *f,
            _ => default,
        }
    }

    /// The bool flags set true, in the order first given; a later `=false` takes one back.
    pub fn selected(&self) -> Vec<&'static str> {
        let mut sel = Vec::new();
        for (k, v) in &self.met {
            match v {
                Met::Bool(true) if !sel.contains(k) => sel.push(*k),
                Met::Bool(false) => sel.retain(|x| x != k),
                _ => {}
            }
        }
        sel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tool: &str, argv: &[&str]) -> Result<Parsed, String> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        parse(tool, flags_of(tool).unwrap(), &argv, &[0, 3])
    }

    fn opts(tool: &str, argv: &[&str]) -> Opts {
        match run(tool, argv) {
            Ok(Parsed::Opts(o)) => o,
            Ok(Parsed::Help(h)) => panic!("help: {h}"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_tool_has_a_row() {
        for tool in super::super::TOOLS {
            assert!(flags_of(tool).is_some(), "{tool}");
        }
    }

    #[test]
    fn values_are_checked_as_they_are_met() {
        let o = opts("relation-get", &["-r", "db:3", "--format=json", "--app", "key", "-r0"]);
        assert_eq!((o.relation(), o.format(Format::Smart), o.on("app")), (Some(0), Format::Json, true));
        assert_eq!(o.args, vec!["key"]);
        assert_eq!(
            run("relation-get", &["-r", "7", "-x"]).err().unwrap(),
            r#"invalid value "7" for option -r: relation not found"#
        );
        assert_eq!(
            run("relation-get", &["-r", "x:y"]).err().unwrap(),
            r#"invalid value "x:y" for option -r: invalid relation id"#
        );
        assert_eq!(
            run("secret-get", &["--format", "smart"]).err().unwrap(),
            r#"invalid value "smart" for option --format: unknown format "smart""#
        );
        assert_eq!(opts("relation-set", &["--format", "anything"]).text("format").as_deref(), Some("anything"));
    }

    #[test]
    fn selections_keep_their_order_and_help_lists_every_flag() {
        let o = opts(
            "network-get",
            &["--ingress-address", "--bind-address", "--ingress-address=false", "--ingress-address"],
        );
        assert_eq!(o.selected(), vec!["bind-address", "ingress-address"]);
        match run("config-get", &["-h"]) {
            Ok(Parsed::Help(h)) => assert_eq!(h, "Usage: config-get [options]\n\nOptions: --format --output --all\n"),
            _ => panic!("no help"),
        }
    }

    #[test]
    fn atoi() {
        assert_eq!(go_atoi("3"), Some(3));
        assert_eq!(go_atoi("+3"), Some(3));
        assert_eq!(go_atoi("-3"), Some(-3));
        assert_eq!(go_atoi("x"), None);
        assert_eq!(go_atoi(""), None);
    }
}
