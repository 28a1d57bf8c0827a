//! User secrets as Juju 3.3+ keeps them: IDs, URIs, content keys and base64 values.
//!
//! Sources (juju/juju): `core/secrets/secret.go` (`ParseURI`, `URI.String`),
//! `core/secrets/createsecret.go` (`keyRegExp`, `encodeBase64`),
//! `core/secrets/secretvalue.go` (`Values`, `KeyValue`).

use std::collections::BTreeMap;

/// The alphabet of an xid (`github.com/rs/xid`): base32hex, lowercase.
const XID_ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// A new secret ID: 12 random bytes in xid's 20-character base32hex form, like the IDs
/// `juju add-secret` prints (`secret:d0mbcnvmp25c77cd1arg`).
pub fn new_id() -> String {
    let hex = crate::random::random_hex(12);
    let bytes: Vec<u8> = (0..12).map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap_or(0)).collect();
    let mut out = String::with_capacity(20);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(XID_ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    // 96 bits: one bit is left, padded with zeros to a last character.
    if bits > 0 {
        out.push(XID_ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Whether `id` has an xid's shape: 20 characters of `0-9a-v`. (rs/xid also rejects
/// characters outside its alphabet; the padding bits of the last character are not checked
/// here.)
pub fn is_id(id: &str) -> bool {
    id.len() == 20 && id.bytes().all(|b| XID_ALPHABET.contains(&b))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(lens)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A parsed secret URI: the secret's ID and, for a URI that names it, the model it lives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub source: Option<String>,
    pub id: String,
}

impl Uri {
    /// `ParseURI`: `secret:<id>`, a bare `<id>`, `secret://<model-uuid>/<id>` or
    /// `secret:<model-uuid>/<id>`. `None` for anything else.
    pub fn parse(s: &str) -> Option<Uri> {
        let rest = match s.split_once(':') {
            Some(("secret", rest)) => rest,
            Some(_) => return None,
            None => s,
        };
        let (host, path) = match rest.strip_prefix("//") {
            Some(authority) => {
                let (host, path) = authority.split_once('/').unwrap_or((authority, ""));
                if !host.is_empty() && !is_uuid(host) {
                    return None;
                }
                (Some(host).filter(|h| !h.is_empty()), path.trim_start_matches('/'))
            }
            None => (None, rest.trim_start_matches('/')),
        };
        let (source, id) = match path.split_once('/') {
            Some((uuid, id)) if is_uuid(uuid) => (Some(uuid), id),
            Some(_) => return None,
            None => (host, path),
        };
        is_id(id).then(|| Uri { source: source.map(String::from), id: id.to_string() })
    }

    /// `URI.String`: `secret:<id>` for a local secret, `secret://<uuid>/<id>` otherwise.
    pub fn display(&self) -> String {
        match &self.source {
            None => format!("secret:{}", self.id),
            Some(uuid) => format!("secret://{uuid}/{}", self.id),
        }
    }

    /// Whether this URI names a secret of the model `uuid` (`URI.IsLocal`).
    pub fn is_local(&self, uuid: &str) -> bool {
        self.source.as_deref().is_none_or(|s| s == uuid)
    }
}

/// `keyRegExp` (`^([a-z](?:-?[a-z0-9]){2,})$`): a lowercase letter, then at least two
/// lowercase letters or digits, each optionally preceded by one hyphen.
pub fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    if !b.first().is_some_and(u8::is_ascii_lowercase) {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let (mut groups, mut i) = (0, 1);
    while i < b.len() {
        if b[i] == b'-' {
            i += 1;
        }
        if !b.get(i).is_some_and(|c| alnum(*c)) {
            return false;
        }
        groups += 1;
        i += 1;
    }
    groups >= 2
}

/// A secret name (`juju add-secret <name>`): a lowercase letter, then lowercase letters,
/// digits and single hyphens, not ending with a hyphen (Juju's secret name rule).
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.first().is_some_and(u8::is_ascii_lowercase)
        && !name.ends_with('-')
        && !name.contains("--")
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Go's `base64.StdEncoding`.
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The inverse of [`b64_encode`]; `None` for anything that is not standard padded base64.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (ci, chunk) in b.chunks(4).enumerate() {
        let last = ci + 1 == b.len() / 4;
        let pad = chunk.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let v = if i >= 4 - pad { 0 } else { B64.iter().position(|x| x == c)? as u32 };
            n |= v << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// `CreateSecretData` for values given as text: every key checked, every value base64.
pub fn encode_content(content: &[(&str, &str)]) -> Result<BTreeMap<String, String>, String> {
    if content.is_empty() {
        return Err("missing secret value".into());
    }
    let mut out = BTreeMap::new();
    for (k, v) in content {
        if !is_valid_key(k) {
            return Err(format!("key {} not valid", crate::flags::go_quote(k)));
        }
        out.insert(k.to_string(), b64_encode(v.as_bytes()));
    }
    Ok(out)
}

/// `SecretValue.Values`: every value decoded (lossily for bytes that are not UTF-8).
pub fn decode_content(content: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    content
        .iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&b64_decode(v).unwrap_or_default()).into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_xids() {
        let id = new_id();
        assert!(is_id(&id), "{id}");
        assert!(id.ends_with('0') || id.ends_with('g'), "the last character carries one bit: {id}");
        assert_ne!(new_id(), id);
        assert!(!is_id("d0mbcnvmp25c77cd1ar"), "19 characters");
        assert!(!is_id("d0mbcnvmp25c77cd1arw"), "w is not base32hex");
    }

    #[test]
    fn uris_parse_like_juju() {
        let id = "d0mbcnvmp25c77cd1arg";
        let uuid = "deadbeef-0bad-400d-8000-4b1d0d06f00d";
        let local = Uri { source: None, id: id.into() };
        assert_eq!(Uri::parse(&format!("secret:{id}")), Some(local.clone()));
        assert_eq!(Uri::parse(id), Some(local.clone()));
        let remote = Uri { source: Some(uuid.into()), id: id.into() };
        assert_eq!(Uri::parse(&format!("secret://{uuid}/{id}")), Some(remote.clone()));
        assert_eq!(Uri::parse(&format!("secret:{uuid}/{id}")), Some(remote.clone()));
        assert_eq!(local.display(), format!("secret:{id}"));
        assert_eq!(remote.display(), format!("secret://{uuid}/{id}"));
        for bad in [
            "",
            "secret:",
            "http://x",
            "secret:nope",
            "secret://host/d0mbcnvmp25c77cd1arg",
            "secret:D0MBCNVMP25C77CD1ARG",
        ] {
            assert_eq!(Uri::parse(bad), None, "{bad}");
        }
        assert!(remote.is_local(uuid) && local.is_local(uuid) && !remote.is_local("other"));
    }

    #[test]
    fn keys_follow_juju_key_regexp() {
        for ok in ["endpoint", "client-key", "server-cert", "abc", "a1b", "a-b-c"] {
            assert!(is_valid_key(ok), "{ok}");
        }
        for bad in ["", "ab", "Key", "1ab", "a--b", "ab-", "-ab", "a_b", "client key"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
        assert!(
            is_valid_name("lxd-creds") && !is_valid_name("lxd-") && !is_valid_name("Lxd") && !is_valid_name("a--b")
        );
    }

    #[test]
    fn base64_round_trips_like_go() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("s3cret!", "czNjcmV0IQ=="),
        ] {
            assert_eq!(b64_encode(plain.as_bytes()), enc);
            assert_eq!(b64_decode(enc).as_deref(), Some(plain.as_bytes()));
        }
        assert_eq!(b64_decode("Zg="), None);
        assert_eq!(b64_decode("Z==g"), None);
        assert_eq!(b64_decode("Zg==Zg=="), None);
        let pem = "-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n";
        assert_eq!(b64_decode(&b64_encode(pem.as_bytes())).as_deref(), Some(pem.as_bytes()));
    }

    #[test]
    fn content_keys_are_checked_and_values_encoded() {
        let enc = encode_content(&[("client-key", "K"), ("endpoint", "https://x")]).unwrap();
        assert_eq!(enc["client-key"], "Sw==");
        assert_eq!(decode_content(&enc)["endpoint"], "https://x");
        assert_eq!(encode_content(&[("Bad", "x")]).unwrap_err(), "key \"Bad\" not valid");
        assert_eq!(encode_content(&[]).unwrap_err(), "missing secret value");
    }
}
