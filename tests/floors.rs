//! The crate's floors, as `src/lib.rs` draws them: a module names only modules on its own
//! floor or below, modules on one floor name each other without a cycle, and nothing the charm
//! runs names the test support. Read from the source itself (`crate::` paths outside
//! `#[cfg(test)]` modules), so a new import that breaks a floor fails here, with its name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of `src/`, by floor (0 at the bottom). Keep in step with
/// `src/lib.rs`.
const FLOORS: &[(u8, &[&str])] = &[
    (
        0,
        &[
            "limits",
            "certs",
            "endpoint",
            "ownership",
            "parallel",
            "context",
            "databag",
            "bag_stream",
            "cluster",
            "refusal",
            "timeline",
        ],
    ),
    (
        1,
        &[
            "config",
            "credentials",
            "requests",
            "relation",
            "https",
            "plan",
            "access",
            "adoption",
            "status",
            "interfaces",
        ],
    ),
    (2, &["hook_tools", "pin", "lxd"]),
    (3, &["reconcile"]),
    (4, &["dispatch", "actions", "adopt", "legacy", "main", "lib"]),
];

/// Test support: compiled only for tests and the `testkit` feature. It may name anything;
/// nothing else may name it.
const TEST_SUPPORT: &str = "memory";

fn floor_of(module: &str) -> Option<u8> {
    FLOORS.iter().find(|(_, mods)| mods.contains(&module)).map(|(floor, _)| *floor)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/reconcile/apply.rs` → `reconcile`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/");
    let first = rel.components().next().expect("a file").as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Test files are named for it (`tests.rs`, `*_tests.rs`, anything under a `tests/` folder).
fn is_test_file(file: &Path) -> bool {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name == "tests.rs" || name.ends_with("_tests.rs") || file.components().any(|c| c.as_os_str() == "tests")
}

/// The text without comments, string and character literals, and `#[cfg(test)] mod … { … }`
/// blocks: what the charm itself compiles.
fn production_text(text: &str) -> String {
    let code = code_only(text);
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find(['{', ';']).filter(|&o| after[..o].contains("mod ") && after[o..].starts_with('{'))
        else {
            // `#[cfg(test)] mod tests;` or an attribute on something else: skip the line.
            rest = after.find('\n').map_or("", |n| &after[n..]);
            continue;
        };
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `text` with comments, string literals (plain and raw) and character literals blanked, so
/// that braces and `crate::` inside them count for nothing.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident(chars.get(i.wrapping_sub(1))) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            while i < chars.len() && !(chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|&h| h == '#')) {
                i += 1;
            }
            i += 1 + hashes;
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A character literal ('x' or an escape); a lifetime ('a) has no closing quote.
            i += if next == Some('\\') { 2 } else { 1 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || *c == '_')
}

/// The modules `text` names through `crate::name` or `crate::{a, b::c}`.
fn named(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let word: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !word.is_empty() && word != "self" {
                    out.insert(word);
                }
            }
        } else {
            let word: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !word.is_empty() {
                out.insert(word);
            }
        }
    }
    out
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !is_test_file(f)) {
        let module = module_of(&src, file);
        let text = std::fs::read_to_string(file).expect("readable");
        let names: Vec<String> = named(&production_text(&text)).into_iter().filter(|n| *n != module).collect();
        graph.entry(module).or_default().extend(names);
    }
    graph
}

#[test]
fn every_module_of_src_has_a_floor() {
    let unplaced: Vec<String> = imports().into_keys().filter(|m| m != TEST_SUPPORT && floor_of(m).is_none()).collect();
    assert!(unplaced.is_empty(), "give these a floor in FLOORS and in src/lib.rs's diagram: {unplaced:?}");
}

#[test]
fn no_module_names_one_on_a_higher_floor_or_the_test_support() {
    let mut wrong = Vec::new();
    for (module, names) in imports().iter().filter(|(m, _)| *m != TEST_SUPPORT) {
        let Some(floor) = floor_of(module) else { continue };
        for name in names {
            match floor_of(name) {
                _ if name == TEST_SUPPORT => wrong.push(format!("{module} names the test support {name}")),
                Some(higher) if higher > floor => {
                    wrong.push(format!("{module} (floor {floor}) names {name} (floor {higher})"))
                }
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn modules_on_one_floor_form_no_cycle() {
    let graph = imports();
    // Depth-first search for a path back to where it started, within one floor.
    fn back_to(start: &str, at: &str, graph: &BTreeMap<String, BTreeSet<String>>, seen: &mut BTreeSet<String>) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if floor_of(next) == floor_of(start) && seen.insert(next.clone()) && back_to(start, next, graph, seen) {
                return true;
            }
        }
        false
    }
    let cycles: Vec<&String> =
        graph.keys().filter(|m| *m != TEST_SUPPORT && back_to(m, m, &graph, &mut BTreeSet::new())).collect();
    assert!(cycles.is_empty(), "these modules are on an import cycle: {cycles:?}");
}

#[test]
fn the_reader_sees_imports_and_skips_test_modules() {
    let text = "use crate::a::B;\nuse crate::{c, d::E};\n// crate::comment\n#[cfg(test)]\nmod tests {\n    use crate::f;\n    let _ = \"}\";\n    let _ = '}';\n}\nfn g<'a>() { let _ = \"crate::x\"; crate::h::i(); }\n";
    let found: Vec<String> = named(&production_text(text)).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "h"]);
}

/// The longest a function the charm runs may be: past it, it is doing more than one job.
const MAX_FUNCTION_LINES: usize = 60;

#[test]
fn no_production_function_is_longer_than_sixty_lines() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long = Vec::new();
    for file in files.iter().filter(|f| !is_test_file(f) && !f.ends_with("memory.rs")) {
        let text = production_text(&std::fs::read_to_string(file).expect("readable"));
        for (name, lines) in function_lengths(&text) {
            if lines > MAX_FUNCTION_LINES {
                long.push(format!("{}: {name} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "split these: {long:#?}");
}

/// Every `fn` with a body in `code` (comments and literals already blanked), and how many lines
/// it spans from its signature to its closing brace.
fn function_lengths(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("fn ") {
        if at > 0 && code[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = code[at + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let Some(open) = code[at..].find(['{', ';']).map(|o| at + o) else { continue };
        if code[open..].starts_with(';') {
            continue;
        }
        let mut depth = 0usize;
        for (i, c) in code[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        out.push((name.clone(), code[at..open + i].lines().count()));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    out
}
