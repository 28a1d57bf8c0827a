//! A `relation-get --format=json` answer decoded as it is read: each key and its value are
//! handed on as soon as the value ends, and only that value is held, never the databag. A
//! value longer than the bound it is read with is scanned to its end and handed on by its
//! length alone: no agent that keeps Juju's 16 MiB limit sends one, and a broken one cannot make
//! the charm hold more than the bound.
//!
//! It takes what `serde_json` takes as `Option<BTreeMap<String, Value>>`: `null` (no data) or
//! one object, with whitespace around. Juju prints only strings; any other value is handed on
//! as its compact JSON text, as the charm always coerced it. Keys come in the order printed:
//! Juju prints each once, sorted (Go's `encoding/json`), and so do `serde_json` and the
//! simulator.

use std::io::{self, BufRead};

/// One value of a databag, as it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Text(&'a str),
    /// Longer than the bound (decoded bytes): only its length is known.
    TooLarge(usize),
}

/// Where a databag's keys go as they arrive.
pub(crate) trait Sink {
    /// One key and its value. A key printed twice comes twice; the last one is what a map of
    /// the answer would hold.
    fn pair(&mut self, key: &str, value: Value<'_>);
}

/// Collects the whole databag, for callers that want it as a map.
impl Sink for crate::databag::Databag {
    fn pair(&mut self, key: &str, value: Value<'_>) {
        let text = match value {
            Value::Text(text) => text.to_string(),
            // Only with a bound given: a collector means to hold the values, so it reads with none.
            Value::TooLarge(_) => String::new(),
        };
        self.insert(key.to_string(), text);
    }
}

/// Why an answer could not be read. Never quotes what was read: a databag is a requirer's.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    #[error("reading it: {0}")]
    Io(#[from] io::Error),
    #[error("not the JSON expected: {what} at byte {at}")]
    Syntax { what: &'static str, at: u64 },
    #[error("not valid JSON at byte {at}: {detail}")]
    Value { at: u64, detail: String },
}

/// Reads one answer from `input` into `sink`, holding at most `bound` bytes of any one key or
/// value (a key over it is an error: Juju's keys are short).
pub(crate) fn read(input: &mut dyn BufRead, bound: usize, sink: &mut dyn Sink) -> Result<(), StreamError> {
    let mut scan = Scanner { input, at: 0 };
    scan.skip_ws()?;
    match scan.peek()? {
        Some(b'n') => scan.literal(b"null")?,
        Some(b'{') => scan.object(bound, sink)?,
        _ => return Err(scan.syntax("expected an object or null")),
    }
    scan.skip_ws()?;
    if scan.peek()?.is_some() {
        return Err(scan.syntax("trailing characters"));
    }
    Ok(())
}

struct Scanner<'r> {
    input: &'r mut dyn BufRead,
    /// Bytes consumed so far, for errors.
    at: u64,
}

/// JSON's whitespace.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

impl Scanner<'_> {
    fn fill(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.input.fill_buf() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(_) => break,
            }
        }
        // Filled: this only hands back what is buffered.
        self.input.fill_buf()
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.fill()?.first().copied())
    }

    fn bump(&mut self, n: usize) {
        self.input.consume(n);
        self.at += n as u64;
    }

    fn next(&mut self) -> Result<u8, StreamError> {
        let byte = self.peek()?.ok_or_else(|| self.syntax("unexpected end"))?;
        self.bump(1);
        Ok(byte)
    }

    fn syntax(&self, what: &'static str) -> StreamError {
        StreamError::Syntax { what, at: self.at }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), StreamError> {
        if self.peek()? != Some(byte) {
            return Err(self.syntax(what));
        }
        self.bump(1);
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), StreamError> {
        for &b in word {
            self.expect(b, "expected an object or null")?;
        }
        Ok(())
    }

    fn skip_ws(&mut self) -> io::Result<()> {
        loop {
            let buf = self.fill()?;
            let n = buf.iter().take_while(|b| is_ws(**b)).count();
            let more = n > 0 && n == buf.len();
            self.bump(n);
            if !more {
                return Ok(());
            }
        }
    }

    /// `{ "key": value, ... }`, each pair handed to `sink` as its value ends.
    fn object(&mut self, bound: usize, sink: &mut dyn Sink) -> Result<(), StreamError> {
        self.expect(b'{', "expected an object")?;
        self.skip_ws()?;
        if self.peek()? == Some(b'}') {
            self.bump(1);
            return Ok(());
        }
        // Reused from pair to pair: the largest value read is the most ever held.
        let (mut key, mut value) = (Vec::new(), Vec::new());
        loop {
            self.skip_ws()?;
            self.expect(b'"', "expected a key")?;
            if self.string(&mut key, bound)? > bound {
                return Err(self.syntax("a key longer than a databag holds"));
            }
            let key = self.utf8(&key)?;
            self.skip_ws()?;
            self.expect(b':', "expected ':'")?;
            self.skip_ws()?;
            self.value(key, &mut value, bound, sink)?;
            self.skip_ws()?;
            match self.next()? {
                b',' => continue,
                b'}' => return Ok(()),
                _ => return Err(self.syntax("expected ',' or '}'")),
            }
        }
    }

    /// One value, handed to `sink` under `key`: a string as it is, anything else as its compact
    /// JSON text.
    fn value(&mut self, key: &str, buf: &mut Vec<u8>, bound: usize, sink: &mut dyn Sink) -> Result<(), StreamError> {
        if self.peek()? == Some(b'"') {
            self.bump(1);
            let len = self.string(buf, bound)?;
            if len > bound {
                sink.pair(key, Value::TooLarge(len));
            } else {
                sink.pair(key, Value::Text(self.utf8(buf)?));
            }
            return Ok(());
        }
        let at = self.at;
        let len = self.raw_value(buf, bound)?;
        if len > bound {
            sink.pair(key, Value::TooLarge(len));
            return Ok(());
        }
        let parsed: serde_json::Value =
            serde_json::from_slice(buf).map_err(|e| StreamError::Value { at, detail: e.to_string() })?;
        sink.pair(key, Value::Text(&parsed.to_string()));
        Ok(())
    }

    fn utf8<'b>(&self, bytes: &'b [u8]) -> Result<&'b str, StreamError> {
        std::str::from_utf8(bytes).map_err(|_| self.syntax("invalid UTF-8 in a string"))
    }

    /// The rest of a string whose opening quote is read, decoded into `out` while it fits
    /// `bound`; returns its decoded length, which may be over `bound` (then `out` is partial).
    fn string(&mut self, out: &mut Vec<u8>, bound: usize) -> Result<usize, StreamError> {
        out.clear();
        let mut len = 0usize;
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Err(self.syntax("unexpected end in a string"));
            }
            let stop = buf.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let run = stop.unwrap_or(buf.len());
            if len.saturating_add(run) <= bound {
                out.extend_from_slice(&buf[..run]);
            }
            len = len.saturating_add(run);
            self.bump(run);
            if stop.is_none() {
                continue;
            }
            match self.next()? {
                b'"' => return Ok(len),
                b'\\' => {
                    let mut utf8 = [0u8; 4];
                    let ch = self.escape()?.encode_utf8(&mut utf8).as_bytes();
                    if len.saturating_add(ch.len()) <= bound {
                        out.extend_from_slice(ch);
                    }
                    len = len.saturating_add(ch.len());
                }
                _ => return Err(self.syntax("control character in a string")),
            }
        }
    }

    /// What follows a backslash in a string.
    fn escape(&mut self) -> Result<char, StreamError> {
        Ok(match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode(),
            _ => return Err(self.syntax("invalid escape")),
        })
    }

    /// `\uXXXX`, a surrogate pair as two of them.
    fn unicode(&mut self) -> Result<char, StreamError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                self.expect(b'\\', "lone leading surrogate in a hex escape")?;
                self.expect(b'u', "lone leading surrogate in a hex escape")?;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.syntax("lone leading surrogate in a hex escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.syntax("lone trailing surrogate in a hex escape")),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.syntax("invalid hex escape"))
    }

    fn hex4(&mut self) -> Result<u32, StreamError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = (self.next()? as char).to_digit(16).ok_or_else(|| self.syntax("invalid hex escape"))?;
            code = code * 16 + digit;
        }
        Ok(code)
    }

    /// The text of a value that is not a string (a number, `true`, an array, ...), kept in
    /// `out` while it fits `bound`: to its closing bracket, or to the `,`, `}` or whitespace
    /// after a scalar. Returns its length. It is only delimited here; `serde_json` checks it.
    fn raw_value(&mut self, out: &mut Vec<u8>, bound: usize) -> Result<usize, StreamError> {
        out.clear();
        let (mut len, mut depth, mut in_string, mut escaped) = (0usize, 0usize, false, false);
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return if depth == 0 && len > 0 { Ok(len) } else { Err(self.syntax("unexpected end in a value")) };
            }
            let mut n = 0;
            let mut done = false;
            for &b in buf {
                if in_string {
                    (in_string, escaped) = match b {
                        _ if escaped => (true, false),
                        b'\\' => (true, true),
                        b'"' => (false, false),
                        _ => (true, false),
                    };
                } else if matches!(b, b'[' | b'{') {
                    depth += 1;
                } else if matches!(b, b']' | b'}') && depth > 0 {
                    depth -= 1;
                    done = depth == 0;
                } else if depth == 0 && (matches!(b, b',' | b']' | b'}') || is_ws(b)) {
                    done = true;
                    break;
                } else if b == b'"' {
                    in_string = true;
                }
                n += 1;
                if done {
                    break;
                }
            }
            if len.saturating_add(n) <= bound {
                out.extend_from_slice(&buf[..n]);
            }
            len = len.saturating_add(n);
            self.bump(n);
            if done {
                return Ok(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::databag::Databag;
    use std::collections::BTreeMap;

    /// What the charm decoded before it streamed: the whole answer into a map.
    fn whole(json: &[u8]) -> Option<Databag> {
        let bag: Option<BTreeMap<String, serde_json::Value>> = serde_json::from_slice(json).ok()?;
        Some(
            bag.unwrap_or_default()
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
        )
    }

    fn streamed(json: &[u8], chunk: usize) -> Option<Databag> {
        let mut input = io::BufReader::with_capacity(chunk, json);
        let mut bag = Databag::new();
        read(&mut input, usize::MAX, &mut bag).ok()?;
        Some(bag)
    }

    #[test]
    fn every_answer_reads_as_the_whole_decoder_read_it() {
        let answers: &[&str] = &[
            "null\n",
            "{}",
            " { } ",
            r#"{"a":"1","b":"two\nlines","c":"\"q\" \\ \/ \b\f\r\t \u00e9 \ud83d\ude00"}"#,
            r#"{"n": 12, "f": 1.50, "e": 1e2, "t": true, "z": null, "l": [1, "x]", {"k": [ ]}], "o": {"b":1,"a":2}}"#,
            r#"{"dup":"first","dup":"last"}"#,
            r#"{"a":"\u0000"}"#,
            // Not what the charm takes: each one an error for both.
            "",
            "[]",
            "\"x\"",
            "{\"a\":\"1\",}",
            "{\"a\" \"1\"}",
            "{\"a\":\"1\"} x",
            "{\"a\":\"unterminated",
            "{\"a\":\"raw\ncontrol\"}",
            r#"{"a":"\ud800"}"#,
            r#"{"a":"\udc00"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":[1,,2]}"#,
            r#"{"a":1e999}"#,
            "{\"a\":[1,2}",
            "{\"a\":tru}",
            "nul",
            "{\"a\":",
        ];
        for answer in answers {
            for chunk in [1, 2, 3, 7, 64, 8192] {
                assert_eq!(streamed(answer.as_bytes(), chunk), whole(answer.as_bytes()), "{answer:?} in {chunk}s");
            }
        }
        let invalid_utf8 = b"{\"a\":\"\xff\"}";
        assert_eq!(streamed(invalid_utf8, 3), None);
    }

    struct Seen(Vec<(String, Result<String, usize>)>);

    impl Sink for Seen {
        fn pair(&mut self, key: &str, value: Value<'_>) {
            let value = match value {
                Value::Text(t) => Ok(t.to_string()),
                Value::TooLarge(n) => Err(n),
            };
            self.0.push((key.to_string(), value));
        }
    }

    #[test]
    fn a_value_over_the_bound_is_handed_on_by_its_length_and_the_next_one_whole() {
        let json = format!(r#"{{"big":"{}\u00e9","list":[{}],"small":"ok"}}"#, "x".repeat(100), "1,".repeat(50) + "1");
        let mut seen = Seen(Vec::new());
        read(&mut io::BufReader::with_capacity(16, json.as_bytes()), 64, &mut seen).expect("reads");
        assert_eq!(
            seen.0,
            [("big".into(), Err(102)), ("list".into(), Err(103)), ("small".into(), Ok("ok".to_string()))]
        );
        let long_key = format!(r#"{{"{}":"v"}}"#, "k".repeat(65));
        assert!(read(&mut long_key.as_bytes(), 64, &mut Seen(Vec::new())).is_err());
    }

    #[test]
    fn errors_name_the_place_never_the_value() {
        let mut bag = Databag::new();
        let err = read(&mut &b"{\"a\":\"SECRET"[..], usize::MAX, &mut bag).expect_err("unterminated");
        assert_eq!(err.to_string(), "not the JSON expected: unexpected end in a string at byte 12");
        let err = read(&mut &br#"{"a":[SECRET]}"#[..], usize::MAX, &mut bag).expect_err("not JSON");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}
