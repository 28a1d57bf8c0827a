//! What the setting tools read: `key=value` arguments and `--file` YAML.

use std::collections::BTreeMap;

use crate::flags::go_quote;

/// `keyvalues.Parse(args, allowEmptyValues=true)`.
pub(super) fn parse_key_values(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for kv in args {
        let (k, v) = match kv.split_once('=') {
            Some(p) => p,
            None => return Err(format!("expected \"key=value\", got {}", go_quote(kv))),
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(format!("expected \"key=value\", got \"{k}={v}\""));
        }
        if out.contains_key(k) {
            return Err(format!("key {} specified more than once", go_quote(k)));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Reads a `--file` for relation-set/state-set: a YAML (or JSON) map whose scalar values are
/// taken as strings (Go yaml.v2 into `map[string]string`); null → "" (which deletes).
pub(super) fn parse_settings_file(data: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = String::from_utf8_lossy(data);
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let y: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| format!("yaml: {e}"))?;
    let mut out = BTreeMap::new();
    match y {
        serde_norway::Value::Null => {}
        serde_norway::Value::Mapping(m) => {
            for (k, v) in m {
                let key = crate::charm::yaml_scalar_text(&k);
                let val = match &v {
                    serde_norway::Value::Sequence(_) => {
                        return Err("yaml: unmarshal errors:\n  cannot unmarshal !!seq into string".into());
                    }
                    serde_norway::Value::Mapping(_) => {
                        return Err("yaml: unmarshal errors:\n  cannot unmarshal !!map into string".into());
                    }
                    other => crate::charm::yaml_scalar_text(other),
                };
                out.insert(key, val);
            }
        }
        other => {
            let tag = match other {
                serde_norway::Value::Sequence(_) => "!!seq",
                serde_norway::Value::String(_) => "!!str",
                serde_norway::Value::Number(_) => "!!int",
                serde_norway::Value::Bool(_) => "!!bool",
                _ => "value",
            };
            return Err(format!("yaml: unmarshal errors:\n  cannot unmarshal {tag} into map[string]string"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values() {
        let kv = parse_key_values(&["a=1".into(), " b = 2 ".into(), "c=".into(), "d=x=y".into()]).unwrap();
        assert_eq!(kv["a"], "1");
        assert_eq!(kv["b"], "2");
        assert_eq!(kv["c"], "");
        assert_eq!(kv["d"], "x=y");
        assert_eq!(parse_key_values(&["foo".into()]).unwrap_err(), r#"expected "key=value", got "foo""#);
        assert_eq!(parse_key_values(&["=x".into()]).unwrap_err(), r#"expected "key=value", got "=x""#);
        assert_eq!(parse_key_values(&["a=1".into(), "a=2".into()]).unwrap_err(), r#"key "a" specified more than once"#);
    }

    #[test]
    fn settings_file_yaml_and_json() {
        let y = parse_settings_file(b"a: b\nc: '1'\nn: 5\nz: null\n").unwrap();
        assert_eq!(y["a"], "b");
        assert_eq!(y["c"], "1");
        assert_eq!(y["n"], "5");
        assert_eq!(y["z"], "");
        let j = parse_settings_file(br#"{"a": "multi\nline", "b": ""}"#).unwrap();
        assert_eq!(j["a"], "multi\nline");
        assert_eq!(j["b"], "");
        assert!(parse_settings_file(b"a: [1, 2]").is_err());
        assert!(parse_settings_file(b"- a").is_err());
        assert!(parse_settings_file(b"").unwrap().is_empty());
    }
}
