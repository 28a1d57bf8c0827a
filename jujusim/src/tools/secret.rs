//! `secret-get` and `secret-info-get`: a consumer's view of user secrets (Juju >= 3.3).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::flags::{check_empty, go_quote};
use crate::format::{Format, Out};
use crate::model;

use super::args::Opts;
use super::{Env, OutOpts, ToolError, ToolResult, fail, usage};

/// The secret a `secret-*` command names: the URI in its first argument, if any (one of a URI
/// and `--label` is required), and the arguments after it.
fn secret_target<'a>(
    args: &'a [String],
    label: &str,
) -> Result<(Option<crate::secrets::Uri>, &'a [String]), ToolError> {
    let uri = match args.first() {
        Some(first) => Some(
            crate::secrets::Uri::parse(first)
                .ok_or_else(|| usage(format!("secret URI {} not valid", go_quote(first))))?,
        ),
        None => None,
    };
    if uri.is_none() && label.is_empty() {
        return Err(usage("require either a secret URI or label"));
    }
    Ok((uri, args.get(1..).unwrap_or_default()))
}

/// `secret-get <ID> [key[#base64]] [--label L] [--peek|--refresh] [--format yaml|json]`
/// (juju/juju `internal/worker/uniter/runner/jujuc/secret-get.go`; the revision rules of
/// `apiserver/facades/agent/secretsmanager/secrets.go` `getSecretContent` and
/// `getConsumedRevision`).
pub(super) fn secret_get(env: &mut Env, o: Opts) -> ToolResult {
    let out = OutOpts::of(&o, Format::Yaml);
    let label = o.text("label").unwrap_or_default();
    let (peek, refresh) = (o.on("peek"), o.on("refresh"));
    let args = o.args;
    // Init
    let (uri, rest) = secret_target(&args, &label)?;
    if peek && refresh {
        return Err(usage("specify one of --peek or --refresh but not both"));
    }
    let key = rest.first().cloned();
    if !rest.is_empty() {
        check_empty(&rest[1..]).map_err(usage)?;
    }
    // Run: which secret. A consumer's own label stands for the URI it was saved with.
    let unit = env.ctx.unit.clone();
    let uri = match uri {
        Some(u) => u,
        None => {
            let found = env.model.secrets.values().find(|s| s.consumers.get(&unit).is_some_and(|c| c.label == label));
            match found {
                Some(s) => crate::secrets::Uri { source: None, id: s.id.clone() },
                None => return Err(fail(format!("consumer label {} not found", go_quote(&label)))),
            }
        }
    };
    // Cross-model secrets are not modelled: a URI naming another model finds nothing.
    let model_uuid = env.model.uuid.clone();
    let not_found = || fail(format!("secret {} not found", go_quote(&uri.display())));
    if !uri.is_local(&model_uuid) {
        return Err(not_found());
    }
    let app = env.app_name();
    let secret = env.model.secrets.get_mut(&uri.id).ok_or_else(not_found)?;
    if !secret.grants.contains(&app) {
        return Err(fail("permission denied"));
    }
    let latest = secret.latest();
    let known = secret.consumers.get(&unit).cloned();
    // The first read makes the unit a consumer that tracks the latest revision.
    let refresh = refresh || known.is_none();
    let mut consumer =
        known.unwrap_or(model::SecretConsumer { current: latest, label: String::new(), notified: latest });
    let revision = if refresh || peek { latest } else { consumer.current };
    if refresh {
        consumer.current = latest;
    }
    // Saved on --refresh (and first read) or when a label comes with the URI.
    if refresh || !label.is_empty() {
        if !label.is_empty() {
            consumer.label = label;
        }
        secret.consumers.insert(unit, consumer);
        env.model_dirty = true;
    }
    let content = secret.revisions.get(revision.saturating_sub(1) as usize).cloned().ok_or_else(not_found)?;
    let value = secret_value(&content, key)?;
    out.write(env, value)
}

/// The whole content, or one key's value (`key#base64`: as stored, still encoded).
fn secret_value(content: &BTreeMap<String, String>, key: Option<String>) -> Result<Out, ToolError> {
    let Some(k) = key else {
        return Ok(Out::Any(Value::Object(
            crate::secrets::decode_content(content).into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
        )));
    };
    let (name, raw) = match k.strip_suffix("#base64") {
        Some(n) => (n.to_string(), true),
        None => (k.clone(), false),
    };
    let encoded = content.get(&name).ok_or_else(|| fail(format!("secret key value {} not found", go_quote(&name))))?;
    if raw {
        return Ok(Out::Str(encoded.clone()));
    }
    let bytes = crate::secrets::b64_decode(encoded).unwrap_or_default();
    Ok(Out::Str(String::from_utf8_lossy(&bytes).into_owned()))
}

/// `secret-info-get <ID> | --label L`: the metadata of a secret this unit or its application
/// owns (`jujuc/secret-info-get.go`, which looks only in `SecretMetadata`, the owned
/// secrets). A user secret is owned by the model, so a consumer always gets "not found".
pub(super) fn secret_info_get(_env: &mut Env, o: Opts) -> ToolResult {
    let label = o.text("label").unwrap_or_default();
    let args = o.args;
    let (uri, rest) = secret_target(&args, &label)?;
    if uri.is_some() && !label.is_empty() {
        return Err(usage("specify either a secret URI or label but not both"));
    }
    check_empty(rest).map_err(usage)?;
    let want = uri.map(|u| u.id).unwrap_or(label);
    Err(fail(format!("secret {} not found", go_quote(&want))))
}
