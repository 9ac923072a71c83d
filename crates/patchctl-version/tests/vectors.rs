//! Runs every comparison vector in `../shared/data/version-vectors` (beside the
//! checkout; ignored, with the reason, by the patchctl-testkit harness when absent): `debian-versions*.txt` under [`Scheme::Dpkg`], `redhat-versions*.txt` under
//! [`Scheme::Rpm`], `alpine-versions*.txt` under [`Scheme::Apk`].
//!
//! Format: one `A OP B` per line, OP one of `<`, `=`, `>`; blank lines and lines starting
//! with `#` are skipped, as is a trailing `# comment` after the three fields. The
//! expectation written in the file is the specification, also where a comment notes that
//! some apk release disagrees (see `patchctl_version::apk`). Each vector is also checked
//! reversed (`B` against `A` must give the opposite answer).

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use patchctl_testkit::{Harness, Need, trial};
use patchctl_version::Scheme;

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(shared_version_vectors).needs([Need::SharedData("version-vectors")]))
        .run()
}

fn vectors_dir() -> PathBuf {
    patchctl_testkit::shared_data("version-vectors")
}

fn scheme_for(file_name: &str) -> Option<Scheme> {
    if !file_name.ends_with(".txt") {
        return None;
    }
    if file_name.starts_with("debian-versions") {
        Some(Scheme::Dpkg)
    } else if file_name.starts_with("redhat-versions") {
        Some(Scheme::Rpm)
    } else if file_name.starts_with("alpine-versions") {
        Some(Scheme::Apk)
    } else {
        None
    }
}

fn parse_op(op: &str) -> Option<Ordering> {
    match op {
        "<" => Some(Ordering::Less),
        "=" => Some(Ordering::Equal),
        ">" => Some(Ordering::Greater),
        _ => None,
    }
}

fn symbol(order: Ordering) -> &'static str {
    match order {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

/// Runs one file; returns the number of vectors and the failures.
fn run_file(path: &Path, scheme: Scheme) -> (usize, Vec<String>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut count = 0;
    let mut failures = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (a, op, b) = match fields.as_slice() {
            [a, op, b] => (*a, *op, *b),
            [a, op, b, comment, ..] if comment.starts_with('#') => (*a, *op, *b),
            _ => panic!("{name}:{}: not `A OP B`: {line:?}", index + 1),
        };
        let expected =
            parse_op(op).unwrap_or_else(|| panic!("{name}:{}: bad operator {op:?}", index + 1));
        count += 1;
        let forward = scheme.compare(a, b);
        let backward = scheme.compare(b, a);
        match (forward, backward) {
            (Ok(f), Ok(r)) if f == expected && r == expected.reverse() => {}
            (f, r) => failures.push(format!(
                "{name}:{}: {a} {op} {b}: got {}, reversed {}",
                index + 1,
                f.map_or_else(|e| format!("error ({e})"), |o| symbol(o).to_owned()),
                r.map_or_else(|e| format!("error ({e})"), |o| symbol(o).to_owned()),
            )),
        }
    }
    (count, failures)
}

fn shared_version_vectors() {
    let dir = vectors_dir();
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();

    let mut per_scheme = [0usize; 4];
    let mut failures = Vec::new();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(scheme) = scheme_for(&name) else {
            println!("version vectors: {name}: not a vector file, ignored");
            continue;
        };
        let (count, file_failures) = run_file(&path, scheme);
        println!(
            "version vectors: {name}: {count} vectors under {scheme}, {} failed",
            file_failures.len()
        );
        assert!(count > 0, "{name}: no vectors in the file");
        per_scheme[Scheme::ALL.iter().position(|s| *s == scheme).unwrap()] += count;
        failures.extend(file_failures);
    }
    for (scheme, count) in Scheme::ALL.iter().zip(per_scheme) {
        println!("version vectors: {count} total under {scheme}");
    }
    for scheme in [Scheme::Dpkg, Scheme::Rpm, Scheme::Apk] {
        let count = per_scheme[Scheme::ALL.iter().position(|s| *s == scheme).unwrap()];
        assert!(
            count > 0,
            "no vector file for {scheme} in {}",
            dir.display()
        );
    }
    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
