//! Mechanical checks over the workspace's source: every module says what it is for,
//! the agent never names a shell, only the executor may start a process, no test is
//! switched off with the `ignore` attribute, and a test whose prerequisite may be missing
//! declares it to the patchctl-testkit harness instead of skipping by a printed line.

use std::path::{Path, PathBuf};

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
            if p.file_name().is_some_and(|n| n != "target" && n != "data") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn all_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    rust_files(&workspace().join("crates"), &mut v);
    assert!(v.len() > 20, "tidy found too few files: {v:?}");
    v
}

/// The file without its `#[cfg(test)]` module (tests may spell out what they refuse).
fn non_test(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let bad: Vec<_> = all_files()
        .into_iter()
        .filter(|p| {
            let t = std::fs::read_to_string(p).unwrap();
            !t.trim_start().starts_with("//!")
        })
        .collect();
    assert!(bad.is_empty(), "files without a `//!` paragraph: {bad:#?}");
}

#[test]
fn the_agent_never_names_a_shell() {
    let src = workspace().join("crates/patchctl-agent/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // Shell paths, and the `sh -c` spelling. (A package may be called `bash`; a
    // program path may not be a shell.)
    let shells = [
        "\"sh\"",
        "\"-c\"",
        "/bin/sh\"",
        "/bin/bash\"",
        "/bin/dash\"",
        "/bin/zsh\"",
        "/bin/busybox\"",
    ];
    // A `tests.rs` is a unit-test module moved out of its parent: test code, which may
    // spell out what it refuses.
    for f in files.iter().filter(|f| !f.ends_with("tests.rs")) {
        let text = std::fs::read_to_string(f).unwrap();
        for line in non_test(&text)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
        {
            for s in shells {
                assert!(!line.contains(s), "{} names a shell: {line}", f.display());
            }
        }
    }
    // The executor's allow-list holds no shell either.
    for p in patchctl_agent::exec::ALLOWED_PROGRAMS {
        assert!(
            !["sh", "bash", "dash", "zsh", "busybox", "env"]
                .iter()
                .any(|s| p.ends_with(&format!("/{s}"))),
            "{p}"
        );
    }
}

#[test]
fn only_the_executor_may_start_processes() {
    let mut files = Vec::new();
    for krate in [
        "patchctl-agent",
        "patchctl-proto",
        "patchctl-net",
        "patchctl-storage",
        "patchctl-version",
        "patchctl-vuln",
        "patchctl-server",
        "patchctl-release",
        "patchctl",
    ] {
        rust_files(
            &workspace().join("crates").join(krate).join("src"),
            &mut files,
        );
    }
    let allowed = workspace().join("crates/patchctl-agent/src/exec.rs");
    let mut escapes = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if text.contains("disallowed_methods") && *f != allowed {
            escapes.push(f.clone());
        }
    }
    assert!(
        escapes.is_empty(),
        "process spawning allowed outside the executor: {escapes:#?}"
    );
    let exec = std::fs::read_to_string(&allowed).unwrap();
    // Three places start a process: the executor (allow-listed programs), and the
    // agent's own life cycle in `exec::own`: the trial of a new binary and the
    // hand-over to it. A fourth is a new way to start a process: review it.
    assert_eq!(
        non_test(&exec)
            .matches("allow(clippy::disallowed_methods)")
            .count(),
        3
    );
    // And clippy is what enforces it.
    let clippy = std::fs::read_to_string(workspace().join("clippy.toml")).unwrap();
    assert!(
        clippy.contains("std::process::Command::new")
            && clippy.contains("tokio::process::Command::new")
    );
}

#[test]
fn no_test_is_ignored() {
    let needle = ["#[", "ignore"].concat();
    let bad: Vec<_> = all_files()
        .into_iter()
        .filter(|p| !p.ends_with("tidy.rs"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains(&needle))
        .collect();
    assert!(bad.is_empty(), "ignored tests: {bad:#?}");
}

/// The integration-test files (`crates/*/tests/**.rs`).
fn test_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
    {
        let tests = e.path().join("tests");
        if tests.is_dir() {
            rust_files(&tests, &mut v);
        }
    }
    v
}

#[test]
fn runtime_skips_go_through_the_harness() {
    // A test that returns early when a prerequisite is missing passes in the summary a
    // person reads; patchctl-testkit reports it as ignored with its reason instead.
    let needle = ["SKIP", "PED"].concat();
    let bad: Vec<_> = test_files()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            text.contains(&format!("eprintln!(\"{needle}"))
                || text.contains(&format!("eprintln!(\"\\n!!! {needle}"))
                || text.contains(&format!("{needle}: "))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "tests that skip by printing instead of declaring a patchctl_testkit::Need: {bad:#?}"
    );
}

#[test]
fn harness_test_files_hold_no_test_attribute() {
    // In a `harness = false` binary the `test` attribute compiles to nothing: such a test
    // would silently never run. Register it in the file's `main` instead.
    let attrs = [["#[", "test]"].concat(), ["#[", "tokio::test"].concat()];
    let mut bad = Vec::new();
    let mut harnessed = 0;
    for e in std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
    {
        let Ok(manifest) = std::fs::read_to_string(e.path().join("Cargo.toml")) else {
            continue;
        };
        for entry in manifest.split("[[test]]").skip(1) {
            let entry = entry.split("\n[").next().unwrap_or(entry);
            if !entry.contains("harness = false") {
                continue;
            }
            let name = entry
                .lines()
                .find_map(|l| l.trim().strip_prefix("name = "))
                .expect("a [[test]] entry has a name")
                .trim_matches('"');
            let file = e.path().join("tests").join(format!("{name}.rs"));
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
            harnessed += 1;
            assert!(
                text.contains("patchctl_testkit"),
                "{} is `harness = false` but does not run on patchctl_testkit",
                file.display()
            );
            if attrs.iter().any(|a| text.contains(a.as_str())) {
                bad.push(file);
            }
        }
    }
    assert!(
        harnessed > 10,
        "tidy found too few harness tests: {harnessed}"
    );
    assert!(
        bad.is_empty(),
        "test attributes that would never run: {bad:#?}"
    );
}
