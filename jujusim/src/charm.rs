//! Reading a charm directory: `metadata.yaml`, `config.yaml`, `actions.yaml`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct CharmMeta {
    pub name: String,
    pub endpoints: BTreeMap<String, EndpointMeta>,
    pub extra_bindings: Vec<String>,
    pub config: BTreeMap<String, ConfigOption>,
    pub actions: BTreeMap<String, ActionSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct EndpointMeta {
    /// `provider`, `requirer` or `peer`.
    pub role: String,
    pub interface: String,
    pub limit: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ConfigOption {
    /// `string`, `int`, `float`, `boolean` or `secret`.
    pub ty: String,
    pub default: Option<Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ActionSpec {
    /// JSON-schema-ish properties: name → schema (with optional `default`, `type`).
    pub params: BTreeMap<String, Value>,
    pub required: Vec<String>,
    pub additional_properties: bool,
}

/// Converts parsed YAML to JSON values (map keys become strings).
pub fn yaml_to_json(v: &serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(s) => Value::Array(s.iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                out.insert(yaml_scalar_text(k), yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(&t.value),
    }
}

/// The text of a YAML scalar, as Go's yaml.v2 would put it into a string.
pub fn yaml_scalar_text(v: &serde_norway::Value) -> String {
    use serde_norway::Value as Y;
    match v {
        Y::Null => String::new(),
        Y::Bool(b) => b.to_string(),
        Y::Number(n) => n.to_string(),
        Y::String(s) => s.clone(),
        Y::Tagged(t) => yaml_scalar_text(&t.value),
        other => serde_norway::to_string(other).unwrap_or_default().trim_end().to_string(),
    }
}

fn read_yaml(path: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            if text.trim().is_empty() {
                return Ok(Some(Value::Null));
            }
            let y: serde_norway::Value =
                serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
            Ok(Some(yaml_to_json(&y)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads the charm's metadata, config schema and actions.
pub fn read_charm(dir: &Path) -> anyhow::Result<CharmMeta> {
    let meta = read_yaml(&dir.join("metadata.yaml"))?
        .ok_or_else(|| anyhow!("charm missing from disk: no metadata.yaml in {}", dir.display()))?;
    let name =
        meta.get("name").and_then(Value::as_str).ok_or_else(|| anyhow!("metadata.yaml: missing name"))?.to_string();
    let mut endpoints = BTreeMap::new();
    for (section, role) in [("provides", "provider"), ("requires", "requirer"), ("peers", "peer")] {
        if let Some(Value::Object(eps)) = meta.get(section) {
            for (ep, spec) in eps {
                let (interface, limit) = match spec {
                    Value::String(s) => (s.clone(), None),
                    Value::Object(o) => (
                        o.get("interface")
                            .and_then(Value::as_str)
                            .ok_or_else(|| anyhow!("metadata.yaml: endpoint {ep} has no interface"))?
                            .to_string(),
                        o.get("limit").and_then(Value::as_u64),
                    ),
                    _ => bail!("metadata.yaml: bad endpoint {ep}"),
                };
                if endpoints.contains_key(ep) {
                    bail!("metadata.yaml: endpoint {ep} defined twice");
                }
                endpoints.insert(ep.clone(), EndpointMeta { role: role.into(), interface, limit });
            }
        }
    }
    let extra_bindings = match meta.get("extra-bindings") {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };

    let mut config = BTreeMap::new();
    if let Some(cfg) = read_yaml(&dir.join("config.yaml"))?
        && let Some(Value::Object(opts)) = cfg.get("options")
    {
        for (name, spec) in opts {
            let ty = spec.get("type").and_then(Value::as_str).unwrap_or("string").to_string();
            if !["string", "int", "float", "boolean", "secret"].contains(&ty.as_str()) {
                bail!("config.yaml: option {name:?} has unknown type {ty:?}");
            }
            let default = match spec.get("default") {
                None | Some(Value::Null) => None,
                Some(v) => {
                    Some(coerce_config(&ty, v).map_err(|e| anyhow!("config.yaml: option {name:?} default: {e}"))?)
                }
            };
            config.insert(name.clone(), ConfigOption { ty, default });
        }
    }

    let mut actions = BTreeMap::new();
    if let Some(Value::Object(acts)) = read_yaml(&dir.join("actions.yaml"))? {
        for (name, spec) in acts {
            let params = match spec.get("params") {
                Some(Value::Object(p)) => p.clone().into_iter().collect(),
                _ => BTreeMap::new(),
            };
            let required = match spec.get("required") {
                Some(Value::Array(r)) => r.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
                _ => Vec::new(),
            };
            let additional_properties = spec.get("additionalProperties").and_then(Value::as_bool).unwrap_or(true);
            actions.insert(name.clone(), ActionSpec { params, required, additional_properties });
        }
    }
    Ok(CharmMeta { name, endpoints, extra_bindings, config, actions })
}

/// Checks (and where Juju would, converts) a config value for an option type.
pub fn coerce_config(ty: &str, v: &Value) -> Result<Value, String> {
    match ty {
        "string" => match v {
            Value::String(_) => Ok(v.clone()),
            other => Err(format!("expected string, got {other}")),
        },
        // A secret URI, or empty to unset (juju/juju `internal/charm/config.go` `secretC`, and
        // the application facade's `validateSecretConfig`, which parses it with `ParseURI`).
        "secret" => match v {
            Value::String(s) if s.is_empty() || crate::secrets::Uri::parse(s).is_some() => Ok(v.clone()),
            other => Err(format!("expected secret, got {other}")),
        },
        "int" => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                Ok(Value::from(n.as_f64().unwrap() as i64))
            }
            Value::String(s) => {
                s.trim().parse::<i64>().map(Value::from).map_err(|_| format!("expected int, got {s:?}"))
            }
            other => Err(format!("expected int, got {other}")),
        },
        "float" => match v {
            Value::Number(n) => {
                Ok(serde_json::Number::from_f64(n.as_f64().unwrap_or(0.0)).map(Value::Number).unwrap_or(Value::Null))
            }
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("expected float, got {s:?}")),
            other => Err(format!("expected float, got {other}")),
        },
        "boolean" => match v {
            Value::Bool(_) => Ok(v.clone()),
            Value::String(s) => match s.as_str() {
                "true" | "True" | "TRUE" => Ok(Value::Bool(true)),
                "false" | "False" | "FALSE" => Ok(Value::Bool(false)),
                _ => Err(format!("expected boolean, got {s:?}")),
            },
            other => Err(format!("expected boolean, got {other}")),
        },
        other => Err(format!("unknown option type {other:?}")),
    }
}
