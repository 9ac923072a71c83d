//! Checks of the workspace's shape that keep it readable as it grows: no crate's
//! top-level modules import each other in a cycle, no source file grows past what one
//! person holds in mind, and library code has typed errors, no `anyhow` (ARCHITECTURE.md,
//! the rules at the head of the code map).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file under `src/` (an inline test module counts; one moved out to a
/// `tests.rs` of its own does not).
const MAX_SOURCE_LINES: usize = 800;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every crate's `src/` directory.
fn crate_sources() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    assert!(v.len() >= 8, "layout found too few crates: {v:?}");
    v
}

/// The file without its `#[cfg(test)]` part: test code may reach anywhere.
fn non_test(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

/// The text without its comment lines: a doc link (`[crate::x::Y]`) is no import.
fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which top-level module a file under `src/` belongs to (`None` for a crate root).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts = rel.components();
    let first = parts.next()?.as_os_str().to_str()?.to_owned();
    if parts.next().is_some() {
        return Some(first); // src/<module>/...
    }
    let stem = first.strip_suffix(".rs")?;
    match stem {
        "lib" | "main" => None,
        s => Some(s.to_owned()),
    }
}

/// The first path segments after `crate::` (including inside `crate::{a, b::c}`), and,
/// in a top-level module's own file, after `super::` (which is the crate root there).
fn crate_paths(text: &str, super_is_root: bool) -> Vec<String> {
    let mut out = Vec::new();
    let prefixes: &[&str] = if super_is_root {
        &["crate::", "super::"]
    } else {
        &["crate::"]
    };
    for prefix in prefixes {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().next_back();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `$crate::` or an identifier ending in "crate"
            }
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level items of the brace group.
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push(first_ident(&item));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        item.push(c);
                    }
                }
                out.push(first_ident(&item));
            } else {
                out.push(first_ident(rest));
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn first_ident(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Names the crate root re-exports from a module (`pub use module::{A, B}`), so that
/// `crate::A` counts as a use of `module`.
fn root_reexports(src: &Path) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for root in ["lib.rs", "main.rs"] {
        let Ok(text) = std::fs::read_to_string(src.join(root)) else {
            continue;
        };
        for stmt in text.split(';') {
            let Some(i) = stmt.find("pub use ") else {
                continue;
            };
            let path = stmt[i + "pub use ".len()..].trim();
            let path = path.strip_prefix("crate::").unwrap_or(path);
            let module = first_ident(path);
            if module.is_empty() || module == "self" {
                continue;
            }
            let tail = &path[module.len()..];
            let names: Vec<String> = if let Some(b) = tail.find('{') {
                tail[b + 1..]
                    .split([',', '}'])
                    .map(|s| {
                        let s = s.trim();
                        let s = s.rsplit("::").next().unwrap_or(s);
                        match s.split_once(" as ") {
                            Some((_, alias)) => alias.trim().to_owned(),
                            None => s.to_owned(),
                        }
                    })
                    .filter(|s| !s.is_empty())
                    .collect()
            } else {
                let last = path.rsplit("::").next().unwrap_or(path);
                let last = last.split_once(" as ").map_or(last, |(_, a)| a).trim();
                vec![last.to_owned()]
            };
            for n in names {
                map.insert(n, module.clone());
            }
        }
    }
    map
}

/// Module → the sibling modules it uses (non-test code).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| top_module(src, f)).collect();
    let reexports = root_reexports(src);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = top_module(src, f) else {
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        let code = without_comments(non_test(&text));
        let own_file = f.parent() == Some(src);
        for seg in crate_paths(&code, own_file) {
            let target = if modules.contains(&seg) {
                Some(seg)
            } else {
                reexports.get(&seg).cloned()
            };
            if let Some(t) = target.filter(|t| *t != m && modules.contains(t)) {
                graph.entry(m.clone()).or_default().insert(t);
            }
        }
        graph.entry(m).or_default();
    }
    graph
}

/// The cycles of a graph, as the strongly connected components with more than one node.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(n) = stack.pop() {
            for next in graph.get(&n).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|k| (k, reach(k))).collect();
    let mut done = BTreeSet::new();
    let mut out = Vec::new();
    for k in graph.keys() {
        if done.contains(k) {
            continue;
        }
        let scc: Vec<String> = graph
            .keys()
            .filter(|o| *o == k || (reachable[k].contains(*o) && reachable[o].contains(k)))
            .cloned()
            .collect();
        done.extend(scc.iter().cloned());
        if scc.len() > 1 {
            out.push(scc);
        }
    }
    out
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let mut bad = Vec::new();
    for src in crate_sources() {
        let graph = module_graph(&src);
        for c in cycles(&graph) {
            let edges: Vec<String> = c
                .iter()
                .map(|m| {
                    let uses: Vec<&str> = graph[m]
                        .iter()
                        .filter(|t| c.contains(t))
                        .map(String::as_str)
                        .collect();
                    format!("{m} -> {}", uses.join(", "))
                })
                .collect();
            bad.push(format!("{}: {}", src.display(), edges.join("; ")));
        }
    }
    assert!(bad.is_empty(), "module import cycles:\n{}", bad.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // Positive control: the parser and the cycle finder on a made-up pair.
    let a = crate_paths("use crate::{b::X, c};\nfn f() { crate::d::g(); }", false);
    assert_eq!(a, ["b", "c", "d"]);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.insert("a".into(), ["b".to_owned()].into());
    g.insert("b".into(), ["a".to_owned()].into());
    g.insert("c".into(), ["a".to_owned()].into());
    assert_eq!(cycles(&g), vec![vec!["a".to_owned(), "b".to_owned()]]);
}

#[test]
fn no_source_file_is_too_long() {
    let mut bad = Vec::new();
    for src in crate_sources() {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        // A `tests.rs` is a unit-test module moved out of its parent: test code.
        for f in files.into_iter().filter(|f| !f.ends_with("tests.rs")) {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > MAX_SOURCE_LINES {
                bad.push(format!("{} ({n} lines)", f.display()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "source files over {MAX_SOURCE_LINES} lines (split them along their domain, or move \
         a big test module to its own file):\n{}",
        bad.join("\n")
    );
}

#[test]
fn anyhow_is_only_for_binaries() {
    // A library's errors are typed (thiserror); `anyhow` belongs to a binary's `main`.
    let mut bad = Vec::new();
    for src in crate_sources() {
        if !src.join("lib.rs").exists() {
            continue; // a binary crate
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for f in files {
            if f == src.join("main.rs") || f.starts_with(src.join("bin")) {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            if without_comments(non_test(&text)).contains("anyhow") {
                bad.push(f.display().to_string());
            }
        }
    }
    assert!(
        bad.is_empty(),
        "library code using anyhow (give it a thiserror enum):\n{}",
        bad.join("\n")
    );
}
