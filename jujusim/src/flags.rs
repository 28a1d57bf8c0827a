//! A re-implementation of the parsing rules of `github.com/juju/gnuflag` as Juju's hook
//! tools use it: flags interspersed with positionals, `--` ends flags, `--name=value`,
//! `-r3` / `-r 3`, grouped single-rune bools, bools accepting `=true|false|1|0|...`.
//! Juju prints these failures as `ERROR option ...` and exits 2.

/// Whether a flag takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Value,
}

/// One flag, possibly with several names (`r` and `relation`) writing the same `key`.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    pub names: &'static [&'static str],
    pub kind: Kind,
    pub key: &'static str,
}

pub const fn bool_flag(key: &'static str, names: &'static [&'static str]) -> Flag {
    Flag { names, kind: Kind::Bool, key }
}

pub const fn value_flag(key: &'static str, names: &'static [&'static str]) -> Flag {
    Flag { names, kind: Kind::Value, key }
}

/// What a successful parse returns.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub args: Vec<String>,
    pub help: bool,
}

/// A value handed to the setter: bools already parsed with Go's `strconv.ParseBool`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlagValue {
    Bool(bool),
    Str(String),
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {}: invalid syntax", go_quote(s))),
    }
}

/// Go's `%q` for a string (close enough for the texts printed here).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", inner.join(" "))
}

/// `cmd.CheckEmpty`.
pub fn check_empty(args: &[String]) -> Result<(), String> {
    if args.is_empty() { Ok(()) } else { Err(format!("unrecognized args: {}", go_quote_list(args))) }
}

fn with_minus(name: &str) -> String {
    if name.chars().count() > 1 { format!("--{name}") } else { format!("-{name}") }
}

/// Parses `argv` (without the program name). `set` is called for every flag as it is met,
/// with the flag's key, the name it was given as, and its value; an `Err(reason)` from it
/// becomes `invalid value "V" for option -N: reason`.
pub fn parse(
    flags: &[Flag],
    argv: &[String],
    set: &mut dyn FnMut(&'static str, &str, FlagValue) -> Result<(), String>,
) -> Result<Parsed, String> {
    let find = |name: &str| flags.iter().find(|f| f.names.contains(&name));
    let mut out = Parsed::default();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        if a == "-" || a.is_empty() || !a.starts_with('-') {
            out.args.push(a.clone());
            continue;
        }
        if a == "--" {
            out.args.extend(argv[i..].iter().cloned());
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.find('=') {
                Some(p) => {
                    if p == 0 {
                        return Err(format!("empty flag in argument {}", go_quote(a)));
                    }
                    (&long[..p], Some(&long[p + 1..]))
                }
                None => (long, None),
            };
            let flag = match find(name) {
                Some(f) => f,
                None => {
                    if name == "help" || name == "h" {
                        out.help = true;
                        return Ok(out);
                    }
                    return Err(format!("option provided but not defined: {}", with_minus(name)));
                }
            };
            match (flag.kind, inline) {
                (Kind::Bool, None) => {
                    set(flag.key, name, FlagValue::Bool(true)).map_err(|e| invalid("true", name, &e))?
                }
                (Kind::Bool, Some(v)) => {
                    let b = parse_go_bool(v).map_err(|e| invalid(v, name, &e))?;
                    set(flag.key, name, FlagValue::Bool(b)).map_err(|e| invalid(v, name, &e))?;
                }
                (Kind::Value, Some(v)) => {
                    set(flag.key, name, FlagValue::Str(v.to_string())).map_err(|e| invalid(v, name, &e))?
                }
                (Kind::Value, None) => {
                    if i >= argv.len() {
                        return Err(format!("option needs an argument: {}", with_minus(name)));
                    }
                    let v = argv[i].clone();
                    i += 1;
                    set(flag.key, name, FlagValue::Str(v.clone())).map_err(|e| invalid(&v, name, &e))?;
                }
            }
            continue;
        }
        // One or more single-rune flags: -abc, -r3, -r 3.
        let mut rest: &str = &a[1..];
        while let Some(c) = rest.chars().next() {
            let name = &rest[..c.len_utf8()];
            rest = &rest[c.len_utf8()..];
            let flag = match find(name) {
                Some(f) => f,
                None => {
                    if name == "h" {
                        out.help = true;
                        return Ok(out);
                    }
                    return Err(format!("option provided but not defined: {}", with_minus(name)));
                }
            };
            if flag.kind == Kind::Bool && !rest.starts_with('=') {
                set(flag.key, name, FlagValue::Bool(true)).map_err(|e| invalid("true", name, &e))?;
                continue;
            }
            let value = if !rest.is_empty() {
                let v = rest.to_string();
                rest = "";
                v
            } else if i < argv.len() {
                i += 1;
                argv[i - 1].clone()
            } else {
                return Err(format!("option needs an argument: {}", with_minus(name)));
            };
            if flag.kind == Kind::Bool {
                let b = parse_go_bool(&value).map_err(|e| invalid(&value, name, &e))?;
                set(flag.key, name, FlagValue::Bool(b)).map_err(|e| invalid(&value, name, &e))?;
            } else {
                set(flag.key, name, FlagValue::Str(value.clone())).map_err(|e| invalid(&value, name, &e))?;
            }
        }
    }
    Ok(out)
}

fn invalid(value: &str, name: &str, reason: &str) -> String {
    format!("invalid value {} for option {}: {}", go_quote(value), with_minus(name), reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        value_flag("relation", &["r", "relation"]),
        bool_flag("app", &["app"]),
        bool_flag("a", &["a"]),
        bool_flag("b", &["b"]),
        value_flag("format", &["format"]),
    ];

    fn run(argv: &[&str]) -> Result<(Parsed, Vec<(String, FlagValue)>), String> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let mut seen = Vec::new();
        let p = parse(FLAGS, &argv, &mut |k, _n, v| {
            seen.push((k.to_string(), v));
            Ok(())
        })?;
        Ok((p, seen))
    }

    #[test]
    fn interspersed_and_double_dash() {
        let (p, seen) = run(&["x", "-r", "3", "y", "--app", "--", "--format", "-z"]).unwrap();
        assert_eq!(p.args, vec!["x", "y", "--format", "-z"]);
        assert_eq!(seen, vec![("relation".into(), FlagValue::Str("3".into())), ("app".into(), FlagValue::Bool(true))]);
    }

    #[test]
    fn value_forms() {
        let (_, seen) = run(&["-r3", "--relation=ep:4", "--format", "json"]).unwrap();
        assert_eq!(
            seen,
            vec![
                ("relation".into(), FlagValue::Str("3".into())),
                ("relation".into(), FlagValue::Str("ep:4".into())),
                ("format".into(), FlagValue::Str("json".into())),
            ]
        );
    }

    #[test]
    fn bool_forms() {
        for (arg, want) in [
            ("--app=true", true),
            ("--app=True", true),
            ("--app=1", true),
            ("--app=t", true),
            ("--app=false", false),
            ("--app=False", false),
            ("--app=0", false),
            ("--app=F", false),
        ] {
            let (_, seen) = run(&[arg]).unwrap();
            assert_eq!(seen, vec![("app".into(), FlagValue::Bool(want))], "{arg}");
        }
        let (_, seen) = run(&["-ab"]).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            run(&["--app=yes"]).unwrap_err(),
            r#"invalid value "yes" for option --app: strconv.ParseBool: parsing "yes": invalid syntax"#
        );
    }

    #[test]
    fn errors() {
        // gnuflag's flagWithMinus picks the dashes by name length, not by how it was typed.
        assert_eq!(run(&["--x"]).unwrap_err(), "option provided but not defined: -x");
        assert_eq!(run(&["--xy"]).unwrap_err(), "option provided but not defined: --xy");
        assert_eq!(run(&["-x"]).unwrap_err(), "option provided but not defined: -x");
        assert_eq!(run(&["-r"]).unwrap_err(), "option needs an argument: -r");
        assert_eq!(run(&["--format"]).unwrap_err(), "option needs an argument: --format");
        assert_eq!(run(&["--=x"]).unwrap_err(), r#"empty flag in argument "--=x""#);
        assert!(run(&["--help"]).unwrap().0.help);
        assert!(run(&["-h"]).unwrap().0.help);
    }

    #[test]
    fn lone_dash_and_empty_are_positionals() {
        let (p, _) = run(&["-", ""]).unwrap();
        assert_eq!(p.args, vec!["-", ""]);
    }

    #[test]
    fn setter_error_is_invalid_value() {
        let argv: Vec<String> = vec!["-r".into(), "7".into()];
        let err = parse(FLAGS, &argv, &mut |_, _, _| Err("relation not found".into())).unwrap_err();
        assert_eq!(err, r#"invalid value "7" for option -r: relation not found"#);
    }

    #[test]
    fn check_empty_text() {
        assert_eq!(check_empty(&["a".into()]).unwrap_err(), r#"unrecognized args: ["a"]"#);
        assert_eq!(check_empty(&["a".into(), "b c".into()]).unwrap_err(), r#"unrecognized args: ["a" "b c"]"#);
    }
}
