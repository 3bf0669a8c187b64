//! The schema is the contract: the store's SQL reads columns, never a path inside a JSON
//! value. A JSON path in a query would tie the store to a serialisation it does not own
//! (a field renamed elsewhere would silently stop matching), and PostgreSQL's JSON
//! operators have no index behind them. Migrations may read old JSON once, to convert it;
//! they are `.sql` files, and only the Rust sources are scanned here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// What reads inside JSON, in SQLite or PostgreSQL.
const JSON_READS: [&str; 9] = [
    "json_extract",
    "json_each",
    "json_tree",
    "json_array",
    "jsonb",
    "->>",
    "->",
    "#>",
    "?|",
];

#[test]
fn no_query_reads_inside_json() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "{files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, literal) in string_literals(&text) {
            let lower = literal.to_ascii_lowercase();
            for read in JSON_READS.iter().filter(|read| lower.contains(*read)) {
                found.push(format!("{}:{line}: {read} in {literal:?}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL reading inside JSON:\n{}",
        found.join("\n")
    );
}

/// The scanner finds what it is meant to find, and only in literals.
#[test]
fn the_scan_sees_string_literals_only() {
    let source = r####"
        // a comment -> not SQL
        fn f<'a>(x: &'a str) -> char { let _ = "SELECT a ->> 'b'"; '"' }
        const Q: &str = r#"UPDATE t SET "c" = json_extract(d, '$.e')"#;
        let escaped = "say \"->\" here";
        let b = b"bytes";
        let q = br#"x "->" y"#;
    "####;
    let literals: Vec<String> = string_literals(source)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(
        literals,
        [
            "SELECT a ->> 'b'",
            r#"UPDATE t SET "c" = json_extract(d, '$.e')"#,
            r#"say \"->\" here"#,
            "bytes",
            r#"x "->" y"#,
        ]
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The string literals of Rust source `text` (plain, byte and raw), each with the line it
/// starts on; comments, character literals and lifetimes are passed over.
fn string_literals(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut literals = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && at(i + 1) == '/') {
                line += usize::from(chars[i] == '\n');
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (at(i + 1) == '"' || at(i + 1) == '#') && raw_prefix(&chars, i) {
            // r"…", r#"…"#: ends at a quote followed by as many hashes.
            let mut j = i + 1;
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            if at(j) != '"' {
                i += 1;
                continue;
            }
            let start = j + 1;
            let mut k = start;
            while k < chars.len() {
                if chars[k] == '"' && (1..=hashes).all(|h| at(k + h) == '#') {
                    break;
                }
                k += 1;
            }
            let literal: String = chars[start..k.min(chars.len())].iter().collect();
            literals.push((line, literal.clone()));
            line += literal.matches('\n').count();
            i = k + 1 + hashes;
        } else if c == '"' {
            let start = i + 1;
            let mut k = start;
            while k < chars.len() && chars[k] != '"' {
                k += if chars[k] == '\\' { 2 } else { 1 };
            }
            let literal: String = chars[start..k.min(chars.len())].iter().collect();
            literals.push((line, literal.clone()));
            line += literal.matches('\n').count();
            i = k + 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\''), or else a lifetime or label.
            if at(i + 1) == '\\' {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    literals
}

fn at_before(chars: &[char], i: usize) -> char {
    i.checked_sub(1).map_or(' ', |j| chars[j])
}

/// Whether the `r` at `i` begins a raw string (`r"`, `br"`), not ends an identifier.
fn raw_prefix(chars: &[char], i: usize) -> bool {
    match at_before(chars, i) {
        'b' => !ident(at_before(chars, i - 1)),
        before => !ident(before),
    }
}

fn ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}
