//! Juju's `--format smart|yaml|json` output (`internal/cmd/output.go`).
//!
//! * json: Go's `json.Marshal` + newline: map keys sorted, `<`, `>`, `&`, U+2028 and U+2029
//!   escaped as `\u003c` etc., nil → `null`.
//! * yaml: Go's `yaml.Marshal` (trailing newlines collapsed to one); nil → nothing.
//! * smart: strings raw + newline (empty → nothing), `[]string` one per line, bools
//!   `True`/`False`, nil → nothing, anything else as yaml.

use serde_json::Value;

/// A value to print, keeping the Go type distinctions the smart formatter cares about.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Nil,
    Str(String),
    StrList(Vec<String>),
    Bool(bool),
    Any(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Smart,
    Yaml,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "smart" => Ok(Format::Smart),
            "yaml" => Ok(Format::Yaml),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown format {}", crate::flags::go_quote(s))),
        }
    }
}

impl Out {
    fn to_value(&self) -> Value {
        match self {
            Out::Nil => Value::Null,
            Out::Str(s) => Value::String(s.clone()),
            Out::StrList(l) => Value::Array(l.iter().cloned().map(Value::String).collect()),
            Out::Bool(b) => Value::Bool(*b),
            Out::Any(v) => v.clone(),
        }
    }
}

pub fn render(format: Format, out: &Out) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut s = String::new();
            write_json(&mut s, &out.to_value());
            s.push('\n');
            s.into_bytes()
        }
        Format::Yaml => render_yaml(out),
        Format::Smart => {
            let text = match out {
                Out::Nil => return Vec::new(),
                Out::Str(s) => s.clone(),
                Out::StrList(l) => l.join("\n"),
                Out::Bool(true) => "True".into(),
                Out::Bool(false) => "False".into(),
                Out::Any(Value::Null) => return Vec::new(),
                Out::Any(_) => return render_yaml(out),
            };
            if text.is_empty() {
                return Vec::new();
            }
            format!("{text}\n").into_bytes()
        }
    }
}

fn render_yaml(out: &Out) -> Vec<u8> {
    if matches!(out, Out::Nil) {
        return Vec::new();
    }
    let mut s = String::new();
    emit_yaml(&mut s, &out.to_value(), 0, Ctx::Top);
    while s.ends_with('\n') {
        s.pop();
    }
    if s.is_empty() {
        return Vec::new();
    }
    s.push('\n');
    s.into_bytes()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    MapValue,
    SeqItem,
}

/// A small emitter reproducing Go's gopkg.in/yaml.v2 `Marshal` layout: sorted keys, block
/// sequences not indented under their key, literal blocks for multi-line strings, strings
/// that would resolve to another type double-quoted, other unsafe plain strings single-quoted.
fn emit_yaml(out: &mut String, v: &Value, indent: usize, ctx: Ctx) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut first = true;
            for k in keys {
                if !(first && ctx == Ctx::SeqItem) {
                    if ctx != Ctx::Top || !first {
                        out.push('\n');
                    }
                    out.push_str(&pad);
                }
                first = false;
                out.push_str(&yaml_scalar(k, indent));
                out.push(':');
                let child = &m[k];
                match child {
                    Value::Object(cm) if !cm.is_empty() => emit_yaml(out, child, indent + 2, Ctx::MapValue),
                    Value::Array(a) if !a.is_empty() => emit_yaml(out, child, indent, Ctx::MapValue),
                    _ => {
                        out.push(' ');
                        emit_yaml(out, child, indent + 2, Ctx::MapValue);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, item) in a.iter().enumerate() {
                if ctx != Ctx::Top || i > 0 {
                    out.push('\n');
                }
                out.push_str(&pad);
                out.push_str("- ");
                match item {
                    Value::Object(cm) if !cm.is_empty() => emit_yaml(out, item, indent + 2, Ctx::SeqItem),
                    Value::Array(ca) if !ca.is_empty() => {
                        // yaml.v2 writes nested sequences as "- - x".
                        let mut inner = String::new();
                        emit_yaml(&mut inner, item, indent + 2, Ctx::Top);
                        out.push_str(inner.trim_start());
                    }
                    _ => emit_yaml(out, item, indent + 2, Ctx::SeqItem),
                }
            }
        }
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                out.push_str(&n.to_string())
            } else {
                out.push_str(&go_float_g(n.as_f64().unwrap_or(0.0)))
            }
        }
        Value::String(s) => out.push_str(&yaml_scalar(s, indent)),
    }
}

/// Go's strconv.FormatFloat(f, 'g', -1, 64).
fn go_float_g(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+.inf".into() } else { "-.inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{f:e}");
        return match s.split_once('e') {
            Some((m, e)) => {
                let (sign, digits) = if let Some(d) = e.strip_prefix('-') { ('-', d) } else { ('+', e) };
                format!("{m}e{sign}{digits:0>2}")
            }
            None => s,
        };
    }
    format!("{f}")
}

/// Would yaml.v2 resolve this plain scalar to something other than a string?
fn resolves_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True",
        "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "+.inf",
        "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return false;
    }
    let plain = s.replace('_', "");
    let body = plain.trim_start_matches(['-', '+']);
    let int_like = |b: &str| -> bool {
        if let Some(h) = b.strip_prefix("0x") {
            return !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit());
        }
        if let Some(h) = b.strip_prefix("0b") {
            return !h.is_empty() && h.chars().all(|c| c == '0' || c == '1');
        }
        if let Some(h) = b.strip_prefix("0o") {
            return !h.is_empty() && h.chars().all(|c| ('0'..='7').contains(&c));
        }
        !b.is_empty() && b.chars().all(|c| c.is_ascii_digit())
    };
    if int_like(body) {
        return true;
    }
    // yamlStyleFloat: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
    let float_like = |b: &str| -> bool {
        let (mant, exp) = match b.find(['e', 'E']) {
            Some(i) => (&b[..i], Some(&b[i + 1..])),
            None => (b, None),
        };
        let mant_ok = match mant.split_once('.') {
            Some((i, f)) => {
                (i.is_empty() && !f.is_empty() && f.chars().all(|c| c.is_ascii_digit()))
                    || (!i.is_empty() && i.chars().all(|c| c.is_ascii_digit()) && f.chars().all(|c| c.is_ascii_digit()))
            }
            None => !mant.is_empty() && mant.chars().all(|c| c.is_ascii_digit()),
        };
        let exp_ok = match exp {
            None => true,
            Some(e) => {
                let d = e.trim_start_matches(['-', '+']);
                e.len() - d.len() <= 1 && !d.is_empty() && d.chars().all(|c| c.is_ascii_digit())
            }
        };
        mant_ok && exp_ok
    };
    if float_like(body) {
        return true;
    }
    // Base-60 numbers (1:20) and timestamps (2001-12-14...) are quoted too.
    let b = s.trim_start_matches(['-', '+']);
    if b.contains(':')
        && b.split(':').all(|p| !p.is_empty() && p.replace(['_', '.'], "").chars().all(|c| c.is_ascii_digit()))
    {
        return true;
    }
    let bytes = s.as_bytes();
    if bytes.len() >= 8 && bytes[..4].iter().all(u8::is_ascii_digit) && bytes[4] == b'-' {
        let date: String = s.chars().take_while(|c| *c != 'T' && *c != 't' && *c != ' ').collect();
        let parts: Vec<&str> = date.split('-').collect();
        if parts.len() == 3
            && parts.iter().all(|p| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit()))
        {
            return true;
        }
    }
    false
}

/// Whether libyaml's emitter accepts `s` as a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    if s.is_empty() || s.starts_with(' ') || s.ends_with(' ') || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let b = s.as_bytes();
    let first = b[0];
    if b"#,[]{}&*!|>'\"%@`".contains(&first) {
        return false;
    }
    if (first == b'-' || first == b'?' || first == b':') && (b.len() == 1 || b[1] == b' ' || b[1] == b'\t') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.contains('\t') {
        return false;
    }
    !s.chars().any(|c| {
        (c as u32) < 0x20 || c as u32 == 0x7f || c == '\u{feff}' || c == '\u{85}' || c == '\u{2028}' || c == '\u{2029}'
    })
}

fn yaml_scalar(s: &str, indent: usize) -> String {
    if s.contains('\n') {
        return yaml_literal(s, indent);
    }
    if resolves_non_string(s) {
        return yaml_double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    if s.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f) {
        return yaml_double_quoted(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn yaml_double_quoted(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\0' => o.push_str("\\0"),
            '\x07' => o.push_str("\\a"),
            '\x08' => o.push_str("\\b"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\x0b' => o.push_str("\\v"),
            '\x0c' => o.push_str("\\f"),
            '\r' => o.push_str("\\r"),
            '\x1b' => o.push_str("\\e"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => o.push_str(&format!("\\x{:02X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn yaml_literal(s: &str, indent: usize) -> String {
    let pad = " ".repeat(indent.max(2));
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    let hint = if s.starts_with(' ') || s.starts_with('\n') { "2" } else { "" };
    let mut o = format!("|{hint}{chomp}");
    let body = if chomp == "-" { s } else { &s[..s.len() - 1] };
    for line in body.split('\n') {
        o.push('\n');
        if !line.is_empty() {
            o.push_str(&pad);
            o.push_str(line);
        }
    }
    o
}

/// JSON → YAML value with map keys sorted (Go's yaml.v2 sorts keys).
pub fn json_to_yaml(v: &Value) -> serde_norway::Value {
    use serde_norway::Value as Y;
    match v {
        Value::Null => Y::Null,
        Value::Bool(b) => Y::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Y::Number(i.into())
            } else if let Some(u) = n.as_u64() {
                Y::Number(u.into())
            } else {
                Y::Number(n.as_f64().unwrap_or(0.0).into())
            }
        }
        Value::String(s) => Y::String(s.clone()),
        Value::Array(a) => Y::Sequence(a.iter().map(json_to_yaml).collect()),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_norway::Mapping::new();
            for k in keys {
                out.insert(Y::String(k.clone()), json_to_yaml(&m[k]));
            }
            Y::Mapping(out)
        }
    }
}

/// Go `json.Marshal` style output for a JSON value.
pub fn to_go_json(v: &Value) -> String {
    let mut s = String::new();
    write_json(&mut s, v);
    s
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                out.push_str(&n.to_string());
            } else {
                out.push_str(&go_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => write_json_str(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, k);
                out.push(':');
                write_json(out, &m[k]);
            }
            out.push('}');
        }
    }
}

fn go_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        // Go writes a sign on positive exponents.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else if f.fract() == 0.0 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(f: Format, o: Out) -> String {
        String::from_utf8(render(f, &o)).unwrap()
    }

    #[test]
    fn smart() {
        assert_eq!(s(Format::Smart, Out::Str("x".into())), "x\n");
        assert_eq!(s(Format::Smart, Out::Str("".into())), "");
        assert_eq!(s(Format::Smart, Out::Nil), "");
        assert_eq!(s(Format::Smart, Out::Bool(true)), "True\n");
        assert_eq!(s(Format::Smart, Out::Bool(false)), "False\n");
        assert_eq!(s(Format::Smart, Out::StrList(vec!["a:0".into(), "a:1".into()])), "a:0\na:1\n");
        assert_eq!(s(Format::Smart, Out::StrList(vec![])), "");
        assert_eq!(s(Format::Smart, Out::Any(json!({"b": "2", "a": "1"}))), "a: \"1\"\nb: \"2\"\n");
        assert_eq!(
            s(Format::Smart, Out::Any(json!({"k": "a: b", "e": "", "m": "x\ny", "t": "yes", "p": "plain text"}))),
            "e: \"\"\nk: 'a: b'\nm: |-\n  x\n  y\np: plain text\nt: \"yes\"\n"
        );
        assert_eq!(s(Format::Smart, Out::Any(json!(5))), "5\n");
    }

    #[test]
    fn json() {
        assert_eq!(s(Format::Json, Out::Nil), "null\n");
        assert_eq!(
            s(Format::Json, Out::Any(json!({"b": "<&>", "a": 1.5, "c": 2.0}))),
            "{\"a\":1.5,\"b\":\"\\u003c\\u0026\\u003e\",\"c\":2}\n"
        );
        assert_eq!(s(Format::Json, Out::StrList(vec![])), "[]\n");
        assert_eq!(s(Format::Json, Out::Bool(true)), "true\n");
        assert_eq!(s(Format::Json, Out::Str("".into())), "\"\"\n");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e-7), "1e-7");
    }

    #[test]
    fn yaml() {
        assert_eq!(s(Format::Yaml, Out::Nil), "");
        assert_eq!(s(Format::Yaml, Out::Any(json!({"k": "v"}))), "k: v\n");
        assert_eq!(s(Format::Yaml, Out::StrList(vec![])), "[]\n");
        assert_eq!(s(Format::Yaml, Out::Bool(true)), "true\n");
        assert_eq!(
            s(Format::Yaml, Out::Any(json!({"a": {"b": ["x", "y"], "c": {}}, "d": []}))),
            "a:\n  b:\n  - x\n  - \"y\"\n  c: {}\nd: []\n"
        );
        assert_eq!(s(Format::Yaml, Out::Any(json!([{"a": "1", "b": 2}, "z"]))), "- a: \"1\"\n  b: 2\n- z\n");
        assert_eq!(s(Format::Yaml, Out::Str("10.0.0.1".into())), "10.0.0.1\n");
        assert_eq!(s(Format::Yaml, Out::Str("1.5".into())), "\"1.5\"\n");
        assert_eq!(s(Format::Yaml, Out::Any(json!({"k": "end\n"}))), "k: |\n  end\n");
    }
}
