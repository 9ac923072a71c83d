//! Builds the agent's release roots into the binary.
//!
//! The roots come from `dist/release-roots.pub` (the project's), from every file named
//! in `PATCHCTL_RELEASE_ROOTS` (colon-separated paths of `.pub` files: a builder's own
//! roots), and, in debug builds only, from the test root in
//! `crates/patchctl-release/testdata/test-root.pub` (whose secret is in the repository,
//! so that tests can sign releases). Each key lands in the binary as its 64 hex digits,
//! so `grep -F <hex> patchctl-agent` tells whether a binary trusts a root (the package
//! builder refuses a binary that trusts the test root). Nothing at run time adds one.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn keys_of(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read release roots from {}: {e}", path.display()));
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let hex = line
            .strip_prefix("ed25519:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .unwrap_or_else(|| {
                panic!(
                    "{}:{}: expected `ed25519:` and 64 hex digits (a .pub file from `patchctl release keygen`)",
                    path.display(),
                    i + 1
                )
            });
        keys.push(hex.to_ascii_lowercase());
    }
    keys
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest.join("../..");
    let mut roots: Vec<(String, String)> = Vec::new();
    let project = workspace.join("dist/release-roots.pub");
    println!("cargo:rerun-if-changed={}", project.display());
    for k in keys_of(&project) {
        roots.push((k, "project".into()));
    }
    println!("cargo:rerun-if-env-changed=PATCHCTL_RELEASE_ROOTS");
    if let Ok(list) = env::var("PATCHCTL_RELEASE_ROOTS") {
        for p in list.split(':').filter(|p| !p.is_empty()) {
            println!("cargo:rerun-if-changed={p}");
            for k in keys_of(Path::new(p)) {
                roots.push((k, format!("build:{p}")));
            }
        }
    }
    if env::var("PROFILE").as_deref() == Ok("debug") {
        let test = workspace.join("crates/patchctl-release/testdata/test-root.pub");
        println!("cargo:rerun-if-changed={}", test.display());
        for k in keys_of(&test) {
            roots.push((k, "test (debug builds only)".into()));
        }
    }
    let mut out = String::from(
        "/// The release roots built into this binary: (public key hex, where it came from).\npub const BUILTIN_ROOTS: &[(&str, &str)] = &[\n",
    );
    for (k, src) in &roots {
        writeln!(out, "    ({k:?}, {src:?}),").expect("write to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("release_roots.rs");
    fs::write(dest, out).expect("write release_roots.rs");
    println!(
        "cargo:rustc-env=PATCHCTL_TARGET={}",
        env::var("TARGET").expect("cargo sets it")
    );
}
