//! The layering, checked on the source text: the HTTP adapters talk to the application, not to
//! storage or to the actor system (no `Store`, no `keys::`, no `sled`, no `Registry`, no
//! `crate::storage` or `crate::actors` path in `src/http`, `src/web` or `src/edge`); the JSON
//! API and the pages share only the edge (`src/http` names nothing of `crate::web`, `src/web`
//! nothing of `crate::http`, and `src/edge` neither of them nor the wiring above them); and the
//! domain is plain Rust that knows nothing of JSON (no `serde_json` in `src/domain`). Comments
//! do not count; code and string literals do.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir` (recursively), sorted; none if `dir` does not exist.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The source with comments blanked out, line by line (line numbers are kept). String and
/// char literals are skipped over so that `"//"` inside one does not start a comment.
fn code_lines(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut code = String::with_capacity(source.len());
    let (mut i, mut block_depth) = (0, 0usize);
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        if block_depth > 0 {
            if c == '*' && next == Some('/') {
                block_depth -= 1;
                i += 2;
            } else if c == '/' && next == Some('*') {
                block_depth += 1;
                i += 2;
            } else {
                if c == '\n' {
                    code.push('\n');
                }
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            block_depth = 1;
            i += 2;
        } else if c == 'r'
            && !(i > 0 && is_ident_char(chars[i - 1]))
            && chars[i + 1..].iter().position(|&h| h != '#').is_some_and(|n| chars[i + 1 + n] == '"')
        {
            // A raw string literal r"…" or r#"…"#: no escapes, ends at a quote and as many #s.
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            let body = i + 2 + hashes;
            let closing: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let end =
                (body..chars.len()).find(|&j| chars[j..].starts_with(&closing)).map_or(chars.len() - 1, |j| j + hashes);
            code.extend(&chars[i..=end]);
            i = end + 1;
        } else if c == '"' {
            // A string literal, escapes included, up to its closing quote.
            let mut end = i + 1;
            while end < chars.len() && chars[end] != '"' {
                end += if chars[end] == '\\' { 2 } else { 1 };
            }
            let end = end.min(chars.len() - 1);
            code.extend(&chars[i..=end]);
            i = end + 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\'', '"'); a lifetime ('a) has no closing quote.
            let from = if next == Some('\\') { i + 3 } else { i + 2 };
            let end = (from..chars.len()).find(|&j| chars[j] == '\'').unwrap_or(chars.len() - 1);
            code.extend(&chars[i..=end]);
            i = end + 1;
        } else {
            code.push(c);
            i += 1;
        }
    }
    code.split('\n').map(str::to_string).collect()
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The forbidden names one line of code mentions: whole identifiers from `idents`, and
/// `paths` (like `keys::`) where they start a path segment.
fn mentions(line: &str, idents: &[&str], paths: &[&str]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for token in line.split(|c: char| !is_ident_char(c)).filter(|t| idents.contains(t)) {
        if !found.iter().any(|f| f == token) {
            found.push(token.to_string());
        }
    }
    for path in paths {
        let starts_segment =
            line.match_indices(path).any(|(at, _)| !line[..at].chars().next_back().is_some_and(is_ident_char));
        if starts_segment {
            found.push(path.to_string());
        }
    }
    found
}

/// `file:line: [names] code` for every line of every file under `dirs` that mentions a name.
fn offences(dirs: &[&str], idents: &[&str], paths: &[&str]) -> (Vec<String>, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut files = 0;
    for dir in dirs {
        for file in rust_files(&root.join(dir)) {
            files += 1;
            let source = std::fs::read_to_string(&file).unwrap();
            let original: Vec<&str> = source.lines().collect();
            for (n, line) in code_lines(&source).iter().enumerate() {
                let names = mentions(line, idents, paths);
                if !names.is_empty() {
                    let shown = original.get(n).map(|l| l.trim()).unwrap_or_default();
                    let rel = file.strip_prefix(root).unwrap_or(&file).display();
                    out.push(format!("{rel}:{}: {names:?}  {shown}", n + 1));
                }
            }
        }
    }
    (out, files)
}

/// `file:line` for every line of code under `dirs` that contains one of `needles` as text.
fn calls(dirs: &[&str], needles: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in dirs {
        for file in rust_files(&root.join(dir)) {
            let source = std::fs::read_to_string(&file).unwrap();
            for (n, line) in code_lines(&source).iter().enumerate() {
                if let Some(needle) = needles.iter().find(|needle| line.contains(*needle)) {
                    let rel = file.strip_prefix(root).unwrap_or(&file).display();
                    out.push(format!("{rel}:{}: [{needle:?}]  {}", n + 1, line.trim()));
                }
            }
        }
    }
    out
}

#[test]
fn adapters_do_not_reach_storage_or_actors() {
    let (found, files) = offences(
        &["src/http", "src/web", "src/edge"],
        &["Store", "sled", "Registry"],
        &["keys::", "crate::storage", "crate::actors"],
    );
    assert!(files > 0, "no adapter sources found under src/http or src/web");
    // The application's handles on storage, entities and the gateway exist for tests and tools.
    let found: Vec<String> = found
        .into_iter()
        .chain(calls(&["src/http", "src/web", "src/edge"], &[".store()", ".router()", ".gateway()"]))
        .collect();
    assert!(
        found.is_empty(),
        "{} lines in the HTTP adapters reach storage or the actor system directly:\n  {}",
        found.len(),
        found.join("\n  ")
    );
}

/// The top-level modules of this crate that a piece of code names through `crate::`: a path
/// (`crate::web::layout`), a group (`crate::{http, web}`, over several lines too) or a glob.
fn crate_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].chars().next_back().is_some_and(is_ident_char) {
            continue; // `my_crate::`, not this crate
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: the first segment of each.
            let (mut depth, mut item_start, mut items) = (0usize, 0usize, Vec::new());
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        items.push(&group[item_start..i]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&group[item_start..i]);
                        item_start = i + 1;
                    }
                    _ => {}
                }
            }
            found.extend(items.iter().map(|item| first_segment(item)).filter(|s| !s.is_empty()));
        } else {
            found.push(first_segment(rest));
        }
    }
    found
}

fn first_segment(path: &str) -> String {
    path.trim_start().chars().take_while(|&c| is_ident_char(c)).collect()
}

/// `file: module` for every file under `dirs` whose code names one of `modules` of this crate.
fn names_modules(dirs: &[&str], modules: &[&str]) -> (Vec<String>, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut out, mut files) = (Vec::new(), 0);
    for dir in dirs {
        for file in rust_files(&root.join(dir)) {
            files += 1;
            let code = code_lines(&std::fs::read_to_string(&file).unwrap()).join("\n");
            let rel = file.strip_prefix(root).unwrap_or(&file).display().to_string();
            for module in crate_modules(&code).into_iter().filter(|m| modules.contains(&m.as_str())) {
                out.push(format!("{rel}: crate::{module}"));
            }
        }
    }
    (out, files)
}

#[test]
fn the_api_and_the_pages_share_only_the_edge() {
    let rules: [(&str, &[&str]); 3] =
        [("src/http", &["web", "routes"]), ("src/web", &["http", "routes"]), ("src/edge", &["http", "web", "routes"])];
    let mut found = Vec::new();
    for (dir, forbidden) in rules {
        let (named, files) = names_modules(&[dir], forbidden);
        assert!(files > 0, "no sources found under {dir}");
        found.extend(named);
    }
    assert!(
        found.is_empty(),
        "the JSON API, the pages and the edge below them must not name each other (an import circle):\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn the_module_scanner_sees_paths_groups_and_globs_but_not_other_crates() {
    let code = code_lines(
        "use crate::web::layout;\nuse crate::{\n    edge::{page, ApiError},\n    http,\n};\n// crate::routes\nlet x = actix_web::web::Data::new(my_crate::http::X); crate::json::*;",
    )
    .join("\n");
    assert_eq!(crate_modules(&code), ["web", "edge", "http", "json"]);
}

#[test]
fn the_transport_carries_bytes_and_knows_no_application_type() {
    let layers = ["crate::app", "crate::actors", "crate::domain", "crate::http", "crate::web", "crate::routing"];
    let (found, files) = offences(&["src/cluster"], &[], &layers);
    assert!(files > 0, "no transport sources found under src/cluster");
    assert!(
        found.is_empty(),
        "{} lines of the transport name a layer above it:\n  {}",
        found.len(),
        found.join("\n  ")
    );
}

#[test]
fn the_domain_speaks_rust_not_json() {
    let (found, files) = offences(&["src/domain"], &["serde_json"], &[]);
    assert!(files > 0, "no sources found under src/domain");
    assert!(found.is_empty(), "{} lines of the domain mention serde_json:\n  {}", found.len(), found.join("\n  "));
}

#[test]
fn the_source_scanner_sees_code_and_skips_comments() {
    let lines = code_lines("let s: Store = x; // Store\n/* sled\n Registry */ keys::ticket(\"//\"); '\"'; Stored\n");
    assert_eq!(mentions(&lines[0], &["Store"], &[]), vec!["Store"]);
    assert!(mentions(&lines[1], &["sled"], &[]).is_empty(), "a block comment is not code");
    assert_eq!(mentions(&lines[2], &["Registry", "Store"], &["keys::"]), vec!["keys::"]);
    assert!(mentions("storage_keys::x; StoreX; my_sled", &["Store", "sled"], &["keys::"]).is_empty());
    let raw = code_lines("let p = r#\"a \"//\" b\"#; Registry::x(); 'a'; for<'b> // sled\n");
    assert_eq!(mentions(&raw[0], &["Registry", "sled"], &[]), vec!["Registry"]);
}
