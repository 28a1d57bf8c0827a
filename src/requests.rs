//! What requirers ask for: `client_certificates` from every `api` databag, read within named
//! bounds. The `lxd-https` interface (`https`) reads its one `certificate` per databag through
//! the same reader (`MemberReader::read_one`), so both endpoints share the limits, the canonical
//! PEM, the protected certificates and the summaries.
//!
//! A databag's value is streamed entry by entry (never held as a tree of JSON values, which for
//! `[0,0,0,…]` would cost 16× its size) and what is wrong is counted per kind with the first few
//! indices: the report of 10,000 bad entries is as long as the report of three.

use crate::bag_stream::Value;
use crate::certs::{self, ClientCert};
use crate::databag::RelationView;
use crate::limits::{CERTS_PER_DATABAG, CLIENT_CERTS_BYTES, CLOCK_SKEW_ALLOWANCE, PROBLEMS_NAMED};
use crate::ownership::{Interface, Owner};
use crate::refusal::{Reason, RefusedCert};
use serde::de::{self, Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// The key an `lxd` requirer sends its certificates under (docs/interface-lxd.md).
pub const KEY_CLIENT_CERTS: &str = "client_certificates";

/// A certificate a requirer wants trusted, and who wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub owner: Owner,
    pub cert: ClientCert,
    /// The projects the requirer asked for, as far as `trust-projects` allows them (never
    /// empty); `None`: it asked for none, so `trust-projects` decides. Only `lxd-https`
    /// requirers ask (`projects`); `lxd` ones never do.
    pub projects: Option<Vec<String>>,
}

/// Certificates no requirer may have added or removed on its behalf, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protected {
    /// Fingerprint → what the certificate is (`the integrator's own credential`, …).
    pub(crate) fingerprints: BTreeMap<String, &'static str>,
}

/// Everything wrong with one key of what one member (unit or application) sent. Safe to log: it
/// counts and points at indices, never quotes a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProblems {
    pub owner: Owner,
    /// The databag key the problems are with (`client_certificates`, `certificate`, ...).
    pub(crate) key: &'static str,
    /// The value as a whole is unusable (not JSON, not a list, too large).
    pub whole: Option<String>,
    /// Entries refused, by reason, in order of first appearance.
    pub entries: Vec<Refused>,
}

/// Entries refused for one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub(crate) reason: String,
    pub count: usize,
    /// The first few indices, for the operator to look at.
    pub first: Vec<usize>,
}

impl MemberProblems {
    /// How many entries were refused (a whole-value problem counts as one).
    #[cfg(test)]
    fn count(&self) -> usize {
        self.entries.iter().map(|r| r.count).sum::<usize>() + usize::from(self.whole.is_some())
    }
}

/// At most this many reasons are listed for one member; the rest are counted.
const REASONS_NAMED: usize = 6;

impl fmt::Display for MemberProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.owner, self.key)?;
        if let Some(whole) = &self.whole {
            return write!(f, ": {whole}");
        }
        let total: usize = self.entries.iter().map(|r| r.count).sum();
        write!(f, ": {} refused", entries(total))?;
        for (i, r) in self.entries.iter().take(REASONS_NAMED).enumerate() {
            let at: Vec<String> = r.first.iter().map(|i| format!("[{i}]")).collect();
            let more = if r.count > r.first.len() { ", …" } else { "" };
            write!(
                f,
                "{} {} {} ({}{more})",
                if i == 0 { ":" } else { ";" },
                thousands(r.count),
                r.reason,
                at.join(", ")
            )?;
        }
        let rest: usize = self.entries.iter().skip(REASONS_NAMED).map(|r| r.count).sum();
        if rest > 0 {
            write!(f, "; {} for other reasons", thousands(rest))?;
        }
        Ok(())
    }
}

fn entries(n: usize) -> String {
    format!("{} entr{}", thousands(n), if n == 1 { "y" } else { "ies" })
}

/// `1650` → `1,650`: counts in logs are read by people.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Everything requested on all relations, plus what was wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub requests: Vec<Request>,
    pub problems: Vec<MemberProblems>,
    /// Certificates refused, by fingerprint, for the requirer to be told.
    pub(crate) refused: Vec<RefusedCert>,
}

/// What is known before LXD answers, for reading requests as databags arrive.
#[derive(Debug, Clone)]
pub(crate) struct Taking {
    pub(crate) now: i64,
    /// Shared by every member being read, on whichever thread reads it.
    pub(crate) protected: Arc<Protected>,
}

/// What LXD and the config allow, known once LXD has answered: what a member's requests are
/// settled against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bounds<'a> {
    /// `trust-projects`, when set: nothing outside it is granted.
    pub ceiling: Option<&'a [String]>,
    /// LXD lacks the `certificate_project` extension. Without it (LXD 4.0) an entry is stored
    /// unrestricted whatever is sent, so a requirer asking for projects is not trusted at all.
    pub cannot_restrict: bool,
}

/// One member's databag as its endpoint reads it: key by key as it arrives, keeping only what
/// it asks (requests in canonical PEM, problems, refusals, a few short values), never the
/// databag itself.
pub(crate) trait MemberIntake: Send + fmt::Debug {
    /// One key and its value. The same key again replaces what it said, as in a map.
    fn key(&mut self, key: &str, value: Value<'_>);
    /// What the member asks for, once every key is in.
    fn settle(&self, bounds: &Bounds) -> Requests;
}

/// Starts reading one member's databag for an endpoint (`interfaces::Served::intake`).
pub(crate) type Intake = fn(Owner, &Taking) -> Box<dyn MemberIntake>;

/// One member (unit or application) of one relation, being read.
#[derive(Debug)]
pub(crate) struct MemberRead {
    pub(crate) interface: Interface,
    /// Where the relation stands among those read: requests are collected relation by relation.
    pub(crate) relation: usize,
    pub(crate) app: bool,
    pub(crate) name: String,
    pub(crate) intake: Box<dyn MemberIntake>,
}

/// What `members` of one endpoint ask, relation by relation; within a relation the application
/// first when `app_first`, else last, and the units by name. A member read twice counts once,
/// as read last.
pub(crate) fn settle(members: &[&MemberRead], app_first: bool, bounds: &Bounds) -> Requests {
    let mut ordered: BTreeMap<(usize, u8, &str), &dyn MemberIntake> = BTreeMap::new();
    for m in members {
        let rank = match (m.app, app_first) {
            (true, true) => 0,
            (false, _) => 1,
            (true, false) => 2,
        };
        ordered.insert((m.relation, rank, m.name.as_str()), m.intake.as_ref());
    }
    let mut out = Requests::default();
    for intake in ordered.into_values() {
        out.append(intake.settle(bounds));
    }
    out
}

impl Requests {
    /// Appends `other`, in order.
    pub(crate) fn append(&mut self, other: Requests) {
        self.requests.extend(other.requests);
        self.problems.extend(other.problems);
        self.refused.extend(other.refused);
    }
}

/// Every member's databag of `interface`'s relations in `relations`, through `intake`: what a
/// pass reads as it arrives, from databags already whole (tests, fuzzing, benchmarks).
pub(crate) fn collect_views(
    relations: &[RelationView],
    interface: Interface,
    app_first: bool,
    intake: Intake,
    taking: &Taking,
    bounds: &Bounds,
) -> Requests {
    let mut members = Vec::new();
    for (i, rel) in relations.iter().enumerate().filter(|(_, r)| r.interface == interface) {
        let units = rel.units.iter().map(|(unit, bag)| (unit.as_str(), false, bag));
        let app = std::iter::once((rel.remote_app.as_str(), true, &rel.app_data)).filter(|(app, ..)| !app.is_empty());
        for (name, is_app, bag) in units.chain(app) {
            let Some(owner) = Owner::from_member_on(interface, rel.id, name) else { continue };
            let mut reading = intake(owner, taking);
            for (key, value) in bag {
                reading.key(key, Value::Text(value));
            }
            members.push(MemberRead { interface, relation: i, app: is_app, name: name.to_string(), intake: reading });
        }
    }
    settle(&members.iter().collect::<Vec<_>>(), app_first, bounds)
}

/// Reads `client_certificates` from every databag of every `api` relation. What is wrong is
/// reported and skipped; valid entries beside it are kept.
pub fn collect(relations: &[RelationView], now: i64, protected: &Protected) -> Requests {
    let taking = Taking { now, protected: Arc::new(protected.clone()) };
    collect_views(relations, Interface::Lxd, false, intake, &taking, &Bounds::default())
}

/// What a member read through `MemberReader` comes to.
type Outcome = (Vec<Request>, Option<MemberProblems>, Vec<RefusedCert>);

/// `client_certificates` of one `lxd` member, read as its databag arrives.
#[derive(Debug)]
struct LxdIntake {
    owner: Owner,
    taking: Taking,
    read: Option<Outcome>,
}

/// Starts reading one `lxd` member's databag.
pub(crate) fn intake(owner: Owner, taking: &Taking) -> Box<dyn MemberIntake> {
    Box::new(LxdIntake { owner, taking: taking.clone(), read: None })
}

impl MemberIntake for LxdIntake {
    fn key(&mut self, key: &str, value: Value<'_>) {
        if key != KEY_CLIENT_CERTS {
            return;
        }
        let mut reader =
            MemberReader::new(self.owner.clone(), KEY_CLIENT_CERTS, self.taking.now, &self.taking.protected);
        match value {
            Value::Text(raw) => reader.read(raw),
            Value::TooLarge(len) => reader.too_large(len),
        }
        self.read = Some(reader.finish());
    }

    fn settle(&self, _: &Bounds) -> Requests {
        let Some((taken, problems, refused)) = &self.read else { return Requests::default() };
        Requests { requests: taken.clone(), problems: problems.iter().cloned().collect(), refused: refused.clone() }
    }
}

/// The state of reading one member's value.
pub(crate) struct MemberReader<'p> {
    owner: Owner,
    key: &'static str,
    now: i64,
    protected: &'p Protected,
    seen: BTreeSet<String>,
    taken: Vec<Request>,
    whole: Option<String>,
    refused: Vec<Refused>,
    refused_certs: Vec<RefusedCert>,
}

impl<'p> MemberReader<'p> {
    pub(crate) fn new(owner: Owner, key: &'static str, now: i64, protected: &'p Protected) -> MemberReader<'p> {
        MemberReader {
            owner,
            key,
            now,
            protected,
            seen: BTreeSet::new(),
            taken: Vec::new(),
            whole: None,
            refused: Vec::new(),
            refused_certs: Vec::new(),
        }
    }

    /// False, with the value named as too large, when it is over what is read.
    fn fits(&mut self, raw: &str) -> bool {
        if raw.len() > CLIENT_CERTS_BYTES {
            self.too_large(raw.len());
            return false;
        }
        true
    }

    /// The value, `len` bytes long, is over what is read (and was never held whole).
    pub(crate) fn too_large(&mut self, len: usize) {
        self.whole =
            Some(format!("too large ({} bytes; at most {} are read)", thousands(len), thousands(CLIENT_CERTS_BYTES)));
    }

    fn read(&mut self, raw: &str) {
        if !self.fits(raw) {
            return;
        }
        let mut de = serde_json::Deserializer::from_str(raw);
        let outcome = de.deserialize_any(ListVisitor { reader: self }).and_then(|()| de.end());
        if let Err(e) = outcome {
            // A value that is not JSON is unusable as a whole, even if it starts like a list:
            // trusting half of a truncated list would be a guess about what was meant.
            self.taken.clear();
            self.refused.clear();
            self.refused_certs.clear();
            self.whole = Some(format!("not valid JSON ({} bytes; {})", thousands(raw.len()), category(&e)));
        }
    }

    /// A value that is one PEM certificate, not a list (`lxd-https`'s `certificate`): read as a
    /// list of one would be, with the same bound, checks and canonical PEM; what is wrong with it
    /// is said of the value as a whole.
    pub(crate) fn read_one(&mut self, raw: &str) {
        if !self.fits(raw) {
            return;
        }
        self.entry(0, Entry::Text(raw.to_string()));
        if let Some(refused) = self.refused.pop() {
            self.whole = Some(refused.reason);
        }
    }

    /// What was taken, what was wrong and which certificates were refused, once the value is
    /// read.
    pub(crate) fn finish(mut self) -> (Vec<Request>, Option<MemberProblems>, Vec<RefusedCert>) {
        let problems = self.problems();
        (self.taken, problems, self.refused_certs)
    }

    fn entry(&mut self, index: usize, entry: Entry) {
        let text = match entry {
            Entry::Text(text) => text,
            Entry::Other(kind) => return self.refuse(index, format!("expected a PEM string, got {kind}")),
        };
        if self.seen.len() >= CERTS_PER_DATABAG {
            if let Some(fp) = certs::block_fingerprint(&text) {
                self.note(fp, Reason::TooMany, None);
            }
            return self
                .refuse(index, format!("not read: over {} certificates in one databag", thousands(CERTS_PER_DATABAG)));
        }
        match certs::examine_client_cert(&text, self.now) {
            Ok(cert) => {
                if let Some(what) = self.protected.fingerprints.get(&cert.fingerprint) {
                    self.note(cert.fingerprint, Reason::Reserved, None);
                    return self.refuse(index, format!("{what}; never added or removed for a requirer"));
                }
                // The same certificate twice (however it is padded) is harmless; keep the first.
                if self.seen.insert(cert.fingerprint.clone()) {
                    self.taken.push(Request { owner: self.owner.clone(), cert, projects: None });
                }
            }
            Err(rejected) => {
                if let Some(fp) = rejected.fingerprint.clone() {
                    self.note(fp, Reason::of(&rejected.why), rejected.not_before);
                }
                // A certificate that starts within the clock-skew allowance is a requirer whose
                // clock runs a little ahead, not bad input: it is told, and trusted once valid.
                if rejected.not_before.is_none_or(|t| t - self.now > CLOCK_SKEW_ALLOWANCE.as_secs() as i64) {
                    self.refuse(index, rejected.why.to_string());
                }
            }
        }
    }

    fn note(&mut self, fingerprint: String, reason: Reason, not_before: Option<i64>) {
        self.refused_certs.push(RefusedCert { owner: self.owner.clone(), fingerprint, reason, not_before });
    }

    fn refuse(&mut self, index: usize, reason: String) {
        let slot = match self.refused.iter().position(|r| r.reason == reason) {
            Some(i) => &mut self.refused[i],
            None => {
                self.refused.push(Refused { reason, count: 0, first: Vec::new() });
                let last = self.refused.len() - 1;
                &mut self.refused[last]
            }
        };
        slot.count += 1;
        if slot.first.len() < PROBLEMS_NAMED {
            slot.first.push(index);
        }
    }

    fn problems(&mut self) -> Option<MemberProblems> {
        if self.whole.is_none() && self.refused.is_empty() {
            return None;
        }
        Some(MemberProblems {
            owner: self.owner.clone(),
            key: self.key,
            whole: self.whole.take(),
            entries: std::mem::take(&mut self.refused),
        })
    }
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "data error",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// One list entry: a string to parse, or what else it was. Anything but a string is skipped
/// without being built (`IgnoredAny`), so nested garbage costs no memory.
enum Entry {
    Text(String),
    Other(&'static str),
}

impl<'de> de::Deserialize<'de> for Entry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Entry, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a PEM string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
        Ok(Entry::Text(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Entry, E> {
        Ok(Entry::Text(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry, E> {
        Ok(Entry::Other("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry, E> {
        Ok(Entry::Other("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry, E> {
        Ok(Entry::Other("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry, E> {
        Ok(Entry::Other("a number"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Entry::Other("a list"))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Entry::Other("an object"))
    }
}

/// The top-level value: a list is read entry by entry into the reader; `null` means nothing
/// requested; anything else is named.
struct ListVisitor<'r, 'p> {
    reader: &'r mut MemberReader<'p>,
}

impl ListVisitor<'_, '_> {
    fn not_a_list<E: de::Error>(self, kind: &str) -> Result<(), E> {
        self.reader.whole = Some(format!("expected a JSON list of PEM strings, got {kind}"));
        Ok(())
    }
}

impl<'de> Visitor<'de> for ListVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of PEM strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(entry) = seq.next_element::<Entry>()? {
            self.reader.entry(index, entry);
            index += 1;
        }
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_a_list("a string")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_a_list("a boolean")
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_a_list("a number")
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_a_list("a number")
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_a_list("a number")
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        self.not_a_list("an object")
    }
}

/// Databags and relations as tests build them.
#[cfg(test)]
pub(crate) mod fixtures {
    use crate::relation::{Databag, RelationView};

    pub(crate) fn bag(pairs: &[(&str, String)]) -> Databag {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    pub(crate) fn certs_json(pems: &[&str]) -> String {
        serde_json::to_string(pems).expect("json")
    }

    /// What relation `id` with `req` asks, as the reconcile collects it: each unit sends
    /// `client_certificates`, units in the order given.
    pub(crate) fn requests_of(id: u32, units: &[(&str, &[&str])]) -> Vec<super::Request> {
        let units = units.iter().map(|(u, pems)| (*u, bag(&[("client_certificates", certs_json(pems))]))).collect();
        let rel = view(id, units, Databag::new());
        super::collect(&[rel], crate::certs::now_unix(), &super::Protected::default()).requests
    }

    /// Relation `id` with the remote application `req`.
    pub(crate) fn view(id: u32, units: Vec<(&str, Databag)>, app_data: Databag) -> RelationView {
        RelationView {
            id,
            remote_app: "req".into(),
            units: units.into_iter().map(|(u, b)| (u.to_string(), b)).collect(),
            app_data,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::certs::test_certs;
    use crate::relation::Databag;

    fn one_unit(value: String) -> Requests {
        collect(
            &[view(1, vec![("req/0", bag(&[(KEY_CLIENT_CERTS, value)]))], Databag::new())],
            certs::now_unix(),
            &Protected::default(),
        )
    }

    #[test]
    fn certificates_from_units_and_the_app_databag_are_requested() {
        let a = test_certs::self_signed("a");
        let b = test_certs::self_signed("b");
        let c = test_certs::self_signed("c");
        let rel = view(
            3,
            vec![
                ("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&a.cert_pem]))])),
                ("req/1", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&b.cert_pem]))])),
                ("req/2", bag(&[("private-address", "10.0.0.1".into())])),
            ],
            bag(&[(KEY_CLIENT_CERTS, certs_json(&[&c.cert_pem]))]),
        );
        let got = collect(&[rel], certs::now_unix(), &Protected::default());
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        let members: Vec<String> = got.requests.iter().map(|r| r.owner.member()).collect();
        assert_eq!(members, ["req/0", "req/1", "req"]);
    }

    #[test]
    fn garbage_is_named_per_unit_and_entry_while_good_certificates_still_count() {
        let good = test_certs::self_signed("good");
        let other = test_certs::self_signed("other");
        let rel = view(
            1,
            vec![
                ("req/0", bag(&[(KEY_CLIENT_CERTS, "this is not json".into())])),
                (
                    "req/1",
                    bag(&[(
                        KEY_CLIENT_CERTS,
                        serde_json::json!(["nope", 42, good.cert_pem, other.key_pem]).to_string(),
                    )]),
                ),
                ("req/2", bag(&[(KEY_CLIENT_CERTS, "{\"a\": 1}".into())])),
                ("req/3", bag(&[(KEY_CLIENT_CERTS, "[]".into())])),
                ("req/4", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&other.cert_pem, &other.cert_pem]))])),
            ],
            Databag::new(),
        );
        let got = collect(&[rel], certs::now_unix(), &Protected::default());
        let said: Vec<String> = got.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            said,
            [
                "req/0 (relation 1): client_certificates: not valid JSON (16 bytes; syntax error)",
                "req/1 (relation 1): client_certificates: 3 entries refused: 1 not a PEM certificate ([0]); 1 expected a PEM string, got a number ([1]); 1 a private key, not a certificate (the key was discarded, not logged) ([3])",
                "req/2 (relation 1): client_certificates: expected a JSON list of PEM strings, got an object",
            ]
        );
        let fps: Vec<(String, String)> =
            got.requests.iter().map(|r| (r.owner.member(), r.cert.fingerprint.clone())).collect();
        assert_eq!(
            fps,
            [
                ("req/1".to_string(), certs::fingerprint(&good.der)),
                ("req/4".to_string(), certs::fingerprint(&other.der))
            ]
        );
    }

    #[test]
    fn ten_thousand_bad_entries_are_one_short_line() {
        let good = test_certs::self_signed("good");
        let mut list: Vec<serde_json::Value> = (0..10_000).map(|i| serde_json::json!([i])).collect();
        list.push(serde_json::json!(good.cert_pem));
        list.extend(
            (0..5_000).map(|i| {
                serde_json::json!(format!("-----BEGIN CERTIFICATE-----\nAAAA{i}\n-----END CERTIFICATE-----\n"))
            }),
        );
        let got = one_unit(serde_json::to_string(&list).expect("json"));
        assert_eq!(got.requests.len(), 1, "the good certificate among them is taken");
        let line = got.problems[0].to_string();
        assert_eq!(got.problems[0].count(), 15_000);
        assert!(line.starts_with("req/0 (relation 1): client_certificates: 15,000 entries refused: 10,000 expected a PEM string, got a list ([0], [1], [2], …)"), "{line}");
        assert!(line.len() < 1024, "{} bytes", line.len());
    }

    #[test]
    fn padded_and_repeated_copies_are_one_request() {
        let a = test_certs::self_signed("a");
        let padded = format!("{}{}{}", " \n".repeat(50_000), a.cert_pem.replace('\n', "\r\n"), "\n\t ".repeat(50_000));
        let got = one_unit(serde_json::to_string(&vec![padded; 20]).expect("json"));
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        assert_eq!(got.requests.len(), 1);
        assert_eq!(got.requests[0].cert.pem, certs::to_pem(&a.der));
    }

    #[test]
    fn certificates_past_the_cap_are_named_once_and_the_first_ones_kept() {
        // Distinct certificates are costly to make; the cap is exercised with a small pool by
        // counting what is taken, then the overflow with a cap-sized list of one good entry each.
        let pool: Vec<test_certs::Pem> = (0..3).map(|i| test_certs::self_signed(&format!("c{i}"))).collect();
        let pems: Vec<&str> = pool.iter().map(|m| m.cert_pem.as_str()).collect();
        let got = one_unit(certs_json(&pems));
        assert_eq!(got.requests.len(), 3);
        let owner = Owner { relation_id: 1, remote_app: "req".into(), unit: Some(0), interface: Interface::Lxd };
        let protected = Protected::default();
        let mut reader = MemberReader::new(owner, KEY_CLIENT_CERTS, certs::now_unix(), &protected);
        reader.seen = (0..CERTS_PER_DATABAG).map(|i| format!("{i:064x}")).collect();
        reader.read(&certs_json(&pems));
        let problems = reader.problems().expect("named");
        assert_eq!(
            problems.to_string(),
            "req/0 (relation 1): client_certificates: 3 entries refused: 3 not read: over 1,000 certificates in one databag ([0], [1], [2])"
        );
    }

    #[test]
    fn a_value_over_the_databag_limit_is_refused_whole() {
        let got = one_unit(" ".repeat(CLIENT_CERTS_BYTES + 1));
        assert!(
            got.problems[0].to_string().ends_with("too large (16,777,217 bytes; at most 16,777,216 are read)"),
            "{}",
            got.problems[0]
        );
    }

    #[test]
    fn the_integrators_own_and_the_servers_certificates_are_never_requests() {
        let own = test_certs::self_signed("integrator");
        let mut protected = Protected::default();
        protected.fingerprints.insert(certs::fingerprint(&own.der), "the integrator's own credential certificate");
        let rel = view(1, vec![("req/0", bag(&[(KEY_CLIENT_CERTS, certs_json(&[&own.cert_pem]))]))], Databag::new());
        let got = collect(&[rel], certs::now_unix(), &protected);
        assert!(got.requests.is_empty());
        assert_eq!(
            got.problems[0].to_string(),
            "req/0 (relation 1): client_certificates: 1 entry refused: 1 the integrator's own credential certificate; never added or removed for a requirer ([0])"
        );
    }

    #[test]
    fn deep_nesting_is_skipped_without_exhausting_the_stack() {
        // serde_json skips an ignored value with a loop, not recursion: any depth is one entry.
        let deep = format!("[{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        let got = one_unit(deep);
        assert!(
            got.problems[0].to_string().ends_with("1 entry refused: 1 expected a PEM string, got a list ([0])"),
            "{}",
            got.problems[0]
        );
    }

    #[test]
    fn counts_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_650), "1,650");
        assert_eq!(thousands(16_777_216), "16,777,216");
    }
}
