//! The workspace's shape, checked: no module of a crate depends on a module that depends
//! back on it (directly or around a longer loop), and no source file outgrows what a reader
//! can hold in mind. Both rules are in ARCHITECTURE.md; this keeps them true.
//!
//! A module depends on another when it names it in a path (`use crate::oidc::tokens`,
//! `crate::clock::now()`, `super::browser::see_other`); declaring a child (`mod x;`) is not
//! a dependency, and neither is a module's use of what its own ancestors define (a type
//! declared in `mod.rs` whose parts are implemented in the files below it). What must not
//! happen is two modules, neither inside the other, that lean on each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a source file may have, its unit tests (a trailing `#[cfg(test)]` module) aside.
const MAX_LINES: usize = 700;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn crate_sources() -> Vec<(String, PathBuf)> {
    let mut crates: Vec<(String, PathBuf)> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("src").is_dir())
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path.join("src"),
            )
        })
        .collect();
    crates.sort();
    crates
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are module `a::b`; `src/lib.rs`, `src/main.rs` the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Where a file's unit-test module begins (`#[cfg(test)]` on a `mod`, perhaps after more
/// attributes); the file's end when it has none. A `#[cfg(test)]` on anything else is code.
fn unit_tests_start(text: &str) -> usize {
    let mut from = 0;
    while let Some(found) = text[from..].find("#[cfg(test)]") {
        let at = from + found;
        let after = text[at + "#[cfg(test)]".len()..]
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with("#["));
        if after.is_some_and(|line| line.starts_with("mod ")) {
            return at;
        }
        from = at + 1;
    }
    text.len()
}

/// The source without comments, string and character literals, and the unit-test module.
fn code_of(text: &str) -> String {
    let without_tests = &text[..unit_tests_start(text)];
    let mut code = String::with_capacity(without_tests.len());
    let mut chars = without_tests.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // A character literal (`'"'`, `'\''`) is no string's start; a lifetime, or a
            // longer escape (which holds no quote), stays as it is.
            '\'' => {
                let mut ahead = chars.clone();
                match (ahead.next(), ahead.next(), ahead.next()) {
                    (Some('\\'), Some(_), Some('\'')) => {
                        chars.nth(2);
                        code.push_str("' '");
                    }
                    (Some(first), Some('\''), _) if first != '\\' => {
                        chars.nth(1);
                        code.push_str("' '");
                    }
                    _ => code.push('\''),
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        code.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                code.push_str("\"\"");
            }
            _ => code.push(c),
        }
    }
    code
}

/// The paths (`crate::a::b::C`, `super::x`) named in `code`, with `use` groups expanded.
fn named_paths(code: &str) -> Vec<Vec<String>> {
    let tokens = tokenize(code);
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let word = tokens[i].chars().all(|c| c.is_alphanumeric() || c == '_');
        if word && tokens.get(i + 1).is_some_and(|t| t == "::") && (i == 0 || tokens[i - 1] != "::")
        {
            let (found, next) = expand(&tokens, i, Vec::new());
            paths.extend(found);
            i = next;
        } else {
            i += 1;
        }
    }
    paths
}

fn tokenize(code: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || c == '_' {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(word);
        } else if c == ':' {
            chars.next();
            if chars.peek() == Some(&':') {
                chars.next();
                tokens.push("::".into());
            } else {
                tokens.push(":".into());
            }
        } else if c.is_whitespace() {
            chars.next();
        } else {
            tokens.push(c.to_string());
            chars.next();
        }
    }
    tokens
}

/// Reads a path starting at `tokens[i]` under `prefix`; a `{…}` group yields one path per
/// member. Returns the paths and the index after them.
fn expand(tokens: &[String], mut i: usize, mut prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    loop {
        let Some(token) = tokens.get(i) else {
            return (vec![prefix], i);
        };
        if token == "{" {
            let mut found = Vec::new();
            i += 1;
            while i < tokens.len() && tokens[i] != "}" {
                let (member, next) = expand(tokens, i, prefix.clone());
                found.extend(member);
                i = next;
                if tokens.get(i).is_some_and(|t| t == ",") {
                    i += 1;
                }
            }
            return (found, i + 1);
        }
        if token.chars().all(|c| c.is_alphanumeric() || c == '_') {
            prefix.push(token.clone());
            i += 1;
            if tokens.get(i).is_some_and(|t| t == "::") {
                i += 1;
                continue;
            }
        }
        return (vec![prefix], i);
    }
}

/// The module a path names: its longest prefix that is a module of the crate.
fn resolve(
    from: &[String],
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let (mut absolute, mut rest): (Vec<String>, &[String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" | "super" => (from.to_vec(), &path[1..]),
        // A child module by its own name (`use inner::X` in `a/mod.rs`); anything else
        // (`std::…`, `Vec::new`) is not a module of this crate.
        _ => (from.to_vec(), path),
    };
    if path[0] == "super" {
        absolute.pop();
        while rest.first().is_some_and(|p| p == "super") {
            absolute.pop();
            rest = &rest[1..];
        }
    }
    let base = absolute.len();
    absolute.extend(rest.iter().cloned());
    // A relative path must name at least a child; `crate::`, `super::` and `self::` paths
    // name at least the module they start from.
    let shortest = if matches!(path[0].as_str(), "crate" | "self" | "super") {
        base
    } else {
        base + 1
    };
    (shortest..=absolute.len())
        .rev()
        .map(|n| absolute[..n].to_vec())
        .find(|candidate| modules.contains(candidate))
}

/// Strongly connected components of more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        graph: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        found: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a Vec<String>) {
        let n = state.index.len();
        state.index.insert(node, n);
        state.low.insert(node, n);
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(edges) = state.graph.get(node) {
            for next in edges {
                let next = state.graph.get_key_value(next).map_or(next, |(k, _)| k);
                if !state.index.contains_key(next) {
                    visit(state, next);
                    let low = state.low[node].min(state.low[next]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(next) {
                    let low = state.low[node].min(state.index[next]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.clone());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.found
}

fn dependency_graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let from = module_of(src, file);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let edges: BTreeSet<Vec<String>> = named_paths(&code)
            .iter()
            .filter_map(|path| resolve(&from, path, &modules))
            .filter(|to| !from.starts_with(to))
            .collect();
        graph.insert(from, edges);
    }
    graph
}

fn show(module: &[String]) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let mut loops = Vec::new();
    for (name, src) in crate_sources() {
        for component in cycles(&dependency_graph(&src)) {
            let members: Vec<String> = component.iter().map(|m| show(m)).collect();
            loops.push(format!("{name}: {}", members.join(" ↔ ")));
        }
    }
    assert!(
        loops.is_empty(),
        "modules that depend on each other:\n{}",
        loops.join("\n")
    );
}

#[test]
fn source_files_stay_readable() {
    let mut long = Vec::new();
    for (_, src) in crate_sources() {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let lines = text[..unit_tests_start(&text)].lines().count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{} ({lines} lines)",
                    file.strip_prefix(workspace()).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "source files over {MAX_LINES} lines (tests aside): {long:?}"
    );
}

/// The checker itself: it finds a loop through a `use` group and a `super::` path, and
/// none where a module only declares its children.
#[test]
fn the_checker_sees_loops_and_only_loops() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "mod inner;\npub use inner::X;\npub struct Z;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/inner.rs"),
        "use crate::{b::{self, Y}};\n// crate::lib is a comment\npub struct X;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "pub struct Y;\n#[cfg(test)]\nfn only_in_tests() {}\n\
         fn f() { let _ = ('\"', '\\''); let _ = \"crate::nothing\"; super::a::X; }\n\
         fn g<'a>(x: &'a str) -> &'a str { x }\n",
    )
    .unwrap();
    let found = cycles(&dependency_graph(src));
    let shown: Vec<Vec<String>> = found
        .iter()
        .map(|c| c.iter().map(|m| show(m)).collect())
        .collect();
    assert_eq!(shown, vec![vec!["a", "a::inner", "b"]]);

    // A child using what its parent defines is no loop.
    std::fs::write(src.join("b.rs"), "pub struct Y;\n").unwrap();
    std::fs::write(
        src.join("a/inner.rs"),
        "use super::Z;\nuse crate::b::Y;\npub struct X;\n",
    )
    .unwrap();
    assert!(cycles(&dependency_graph(src)).is_empty());
}
