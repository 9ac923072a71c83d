//! `Scheme::{Dpkg, Rpm, Pacman}::compare` against each family's own tool on this
//! machine: `dpkg` (its binary, and for the large batches dpkg's own Perl module
//! `Dpkg::Version`, which `dpkg-dev` scripts use), `rpm` (its embedded Lua `rpm.vercmp`,
//! which parses full `[E:]V-R` strings) and pacman's `vercmp`.
//!
//! Two kinds of input, both run through the tool in batches (one process per batch, not
//! per pair, except pacman's `vercmp`, which takes one pair per run and is given a
//! bounded number of pairs):
//!
//! * every vector of `../shared/data/version-vectors` for the schemes a tool exists for
//!   (the file's expectation is checked by `tests/vectors.rs`; here the tool is the
//!   judge, and a vector the tool itself disagrees with is reported as such);
//! * a few thousand versions per scheme from proptest generators of *realistic* version
//!   strings (epochs, `~`, `^`, letters, `+deb12u1`, `.el9_4.1`, `module+el8…`, pkgrel,
//!   SUSE and Amazon releases), paired with independent versions and with small
//!   mutations of themselves (one character more, a digit changed, a tilde, an epoch) so
//!   that most pairs differ in one place, where the orderings disagree if they ever do.
//!
//! apk has no tool on this machine (apk-tools is not packaged for Debian): Alpine is
//! held to the shared vectors only (`tests/vectors.rs`).

// Test harness: runs dpkg, perl, rpm and vercmp as the reference, not agent code.
#![allow(clippy::disallowed_methods)]

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use patchctl_testkit::{Check, Harness, Need, trial};
use patchctl_version::Scheme;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// Generated pairs per scheme run through a batched tool.
const GENERATED: usize = 4_000;
/// Generated pairs run through pacman's `vercmp` (one process per pair).
const PACMAN_GENERATED: usize = 1_500;

static DPKG_PERL: Check = Check {
    what: "dpkg's Perl module Dpkg::Version (libdpkg-perl)",
    missing: || {
        let ok = Command::new("perl")
            .args(["-MDpkg::Version", "-e", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        (!ok).then(|| "perl -MDpkg::Version fails (apt-get install libdpkg-perl)".to_owned())
    },
};

fn main() -> std::process::ExitCode {
    Harness::new()
        .test(trial!(dpkg_vectors_against_dpkg).needs([
            Need::Program("dpkg"),
            Need::Check(&DPKG_PERL),
            Need::SharedData("version-vectors"),
        ]))
        .test(
            trial!(rpm_vectors_against_rpm)
                .needs([Need::Program("rpm"), Need::SharedData("version-vectors")]),
        )
        .test(
            trial!(generated_dpkg_versions_against_dpkg)
                .needs([Need::Program("dpkg"), Need::Check(&DPKG_PERL)]),
        )
        .test(trial!(generated_rpm_versions_against_rpm).needs([Need::Program("rpm")]))
        .test(trial!(generated_pacman_versions_against_vercmp).needs([Need::Program("vercmp")]))
        .run()
}

// ---------------------------------------------------------------------------------------
// The tools, batched.

/// `dpkg --compare-versions` itself, one run per pair (used on a bounded sample, to hold
/// the Perl module to the binary).
fn dpkg_binary(a: &str, b: &str) -> Ordering {
    let run = |op: &str| {
        Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("dpkg: {e}"))
            .success()
    };
    if run("lt") {
        Ordering::Less
    } else if run("eq") {
        Ordering::Equal
    } else {
        Ordering::Greater
    }
}

/// Runs `program args` with `input` on stdin and returns its stdout lines, one per pair.
fn batch(program: &str, args: &[&str], input: &str, pairs: usize) -> Vec<Ordering> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write pairs");
    assert!(out.status.success(), "{program} failed: {:?}", out.status);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let got: Vec<Ordering> = text
        .split_whitespace()
        .map(|n| match n.parse::<i32>() {
            Ok(x) => x.cmp(&0),
            Err(_) => panic!("{program}: unexpected output {n:?}"),
        })
        .collect();
    assert_eq!(got.len(), pairs, "{program}: one answer per pair");
    got
}

/// dpkg's own ordering for many pairs in one process: `Dpkg::Version::version_compare`,
/// except for pairs with a run of more than 15 digits, which the Perl module compares as
/// floating-point numbers (`18446744073709551616 == 18446744073709551716` there, `<`
/// for the dpkg binary, which compares digit by digit): those go to the binary.
fn dpkg_batch(pairs: &[(String, String)]) -> Vec<Ordering> {
    let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    let script = "use Dpkg::Version; while (<STDIN>) { my ($a, $b) = split; \
                  print version_compare($a, $b), \"\\n\" }";
    let mut answers = batch("perl", &["-e", script], &input, pairs.len());
    let long_run = |v: &str| {
        v.split(|c: char| !c.is_ascii_digit())
            .any(|run| run.len() > 15)
    };
    for ((a, b), answer) in pairs.iter().zip(answers.iter_mut()) {
        if long_run(a) || long_run(b) {
            *answer = dpkg_binary(a, b);
        }
    }
    answers
}

/// rpm's own ordering for many pairs in one process: its Lua `rpm.vercmp` over a file.
fn rpm_batch(pairs: &[(String, String)]) -> Vec<Ordering> {
    let dir = tempfile_dir();
    let file = dir.join("pairs");
    let input: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    std::fs::write(&file, input).expect("write pairs");
    let lua = format!(
        "%{{lua: local out = {{}} \
         for line in io.lines('{}') do \
           local a, b = line:match('^(%S+) (%S+)$') \
           out[#out + 1] = tostring(rpm.vercmp(a, b)) \
         end \
         print(table.concat(out, ' ')) }}",
        file.display()
    );
    let got = batch("rpm", &["--eval", &lua], "", pairs.len());
    let _ = std::fs::remove_dir_all(&dir);
    got
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "patchctl-native-tools-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// pacman's `vercmp A B`, one run per pair.
fn vercmp(a: &str, b: &str) -> Ordering {
    let out = Command::new("vercmp")
        .args([a, b])
        .output()
        .unwrap_or_else(|e| panic!("vercmp: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<i32>() {
        Ok(x) => x.cmp(&0),
        Err(_) => panic!("vercmp {a} {b}: unexpected output {text:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Checking.

fn sym(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

/// Compares the scheme with the tool's answers; returns the disagreements.
fn disagreements(
    scheme: Scheme,
    pairs: &[(String, String)],
    tool: &[Ordering],
    label: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for ((a, b), want) in pairs.iter().zip(tool) {
        match scheme.compare(a, b) {
            Ok(got) if got == *want => {}
            got => out.push(format!(
                "{label}: {a} vs {b}: tool says {}, {scheme} says {}",
                sym(*want),
                got.map_or_else(|e| format!("error ({e})"), |o| sym(o).to_owned())
            )),
        }
    }
    out
}

fn assert_none(what: &str, checked: usize, failures: &[String]) {
    println!(
        "native tools: {what}: {checked} pairs, {} disagreements",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{what}: {} disagreement(s):\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The pairs of the vector files whose names start with `prefix` (both directions), and
/// the lines whose written expectation the tool contradicts.
fn vector_pairs(prefix: &str) -> Vec<(String, String, Ordering, String)> {
    let dir = patchctl_testkit::shared_data("version-vectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".txt"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {prefix}*.txt in {}", dir.display());
    let mut out = Vec::new();
    for f in files {
        read_vectors(&f, &mut out);
    }
    out
}

fn read_vectors(path: &Path, out: &mut Vec<(String, String, Ordering, String)>) {
    let text = std::fs::read_to_string(path).expect("read vectors");
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let want = match f.get(1) {
            Some(&"<") => Ordering::Less,
            Some(&"=") => Ordering::Equal,
            Some(&">") => Ordering::Greater,
            _ => panic!("{name}:{}: not `A OP B`", i + 1),
        };
        let at = format!("{name}:{}", i + 1);
        out.push((f[0].to_owned(), f[2].to_owned(), want, at.clone()));
        out.push((f[2].to_owned(), f[0].to_owned(), want.reverse(), at));
    }
}

/// Checks the vectors against the tool; the file's own expectation contradicting the
/// tool is reported (printed) but judged by `tests/vectors.rs`, not here.
fn check_vectors(scheme: Scheme, prefix: &str, tool: fn(&[(String, String)]) -> Vec<Ordering>) {
    let v = vector_pairs(prefix);
    let pairs: Vec<(String, String)> = v
        .iter()
        .map(|(a, b, _, _)| (a.clone(), b.clone()))
        .collect();
    let answers = tool(&pairs);
    let mut file_vs_tool = 0;
    for ((a, b, want, at), got) in v.iter().zip(&answers) {
        if want != got {
            file_vs_tool += 1;
            println!(
                "native tools: note: {at}: the file says {a} {} {b}, the tool says {}",
                sym(*want),
                sym(*got)
            );
        }
    }
    let mut failures = Vec::new();
    for i in 0..pairs.len() {
        failures.extend(disagreements(
            scheme,
            &pairs[i..=i],
            &answers[i..=i],
            &v[i].3,
        ));
    }
    println!(
        "native tools: {prefix}*: {file_vs_tool} vectors whose file expectation the tool contradicts"
    );
    assert_none(
        &format!("{prefix}* vectors under {scheme}"),
        pairs.len(),
        &failures,
    );
}

fn dpkg_vectors_against_dpkg() {
    check_vectors(Scheme::Dpkg, "debian-versions", dpkg_batch);
}

fn rpm_vectors_against_rpm() {
    check_vectors(Scheme::Rpm, "redhat-versions", rpm_batch);
}

// ---------------------------------------------------------------------------------------
// Generators of realistic versions.

fn digits() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..20).prop_map(|n| n.to_string()),
        1 => (0u32..100_000).prop_map(|n| n.to_string()),
        1 => Just("0".to_owned()),
        1 => Just("00".to_owned()),
        1 => Just("01".to_owned()),
        1 => Just("18446744073709551616".to_owned()),
    ]
}

fn dotted() -> impl Strategy<Value = String> {
    prop::collection::vec(digits(), 1..5).prop_map(|v| v.join("."))
}

fn epoch() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(String::new()),
        1 => Just("0:".to_owned()),
        1 => (1u32..3).prop_map(|e| format!("{e}:")),
        1 => Just("32:".to_owned()),
    ]
}

fn dpkg_upstream() -> impl Strategy<Value = String> {
    let tail = prop_oneof![
        6 => Just(String::new()),
        1 => (0u32..5).prop_map(|n| format!("~rc{n}")),
        1 => Just("~beta1".to_owned()),
        1 => Just("~~".to_owned()),
        1 => Just("~".to_owned()),
        1 => Just("+dfsg".to_owned()),
        1 => Just("+dfsg1".to_owned()),
        1 => Just("+really1.0".to_owned()),
        1 => Just("a".to_owned()),
        1 => Just("p1".to_owned()),
        1 => Just("+git20240101.abcdef".to_owned()),
        1 => Just(".1".to_owned()),
    ];
    (dotted(), tail).prop_map(|(d, t)| format!("{d}{t}"))
}

fn dpkg_revision() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        3 => (0u32..6).prop_map(|n| format!("-{n}")),
        2 => (1u32..6, 1u32..4).prop_map(|(n, u)| format!("-{n}+deb12u{u}")),
        1 => (1u32..6, 1u32..4).prop_map(|(n, u)| format!("-{n}+deb11u{u}")),
        1 => (1u32..4).prop_map(|n| format!("-{n}~bpo11+1")),
        2 => (0u32..4, 0u32..3).prop_map(|(n, u)| format!("-{n}ubuntu{u}")),
        1 => (0u32..4, 0u32..3).prop_map(|(n, u)| format!("-{n}ubuntu0.{u}")),
        1 => (0u32..4).prop_map(|n| format!("-0ubuntu1~22.04.{n}")),
        1 => (0u32..4).prop_map(|n| format!("-1ubuntu0.22.04.{n}+esm1")),
        1 => (1u32..4).prop_map(|n| format!("-3build{n}")),
        1 => (1u32..4).prop_map(|n| format!("-1+b{n}")),
        1 => Just("-1.1".to_owned()),
        1 => Just("-a".to_owned()),
    ]
}

fn dpkg_version() -> impl Strategy<Value = String> {
    (epoch(), dpkg_upstream(), dpkg_revision()).prop_map(|(e, u, r)| format!("{e}{u}{r}"))
}

fn rpm_upstream() -> impl Strategy<Value = String> {
    let tail = prop_oneof![
        6 => Just(String::new()),
        1 => (0u32..5).prop_map(|n| format!("~rc{n}")),
        1 => Just("~beta".to_owned()),
        1 => Just("~~".to_owned()),
        1 => (0u32..3).prop_map(|n| format!("^{n}")),
        1 => Just("^20230101git1234abc".to_owned()),
        1 => Just("a".to_owned()),
        1 => Just("p1".to_owned()),
        1 => Just("_1".to_owned()),
        1 => Just("+git".to_owned()),
        1 => Just(".b".to_owned()),
    ];
    (dotted(), tail).prop_map(|(d, t)| format!("{d}{t}"))
}

fn rpm_release() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        2 => (1u32..40).prop_map(|n| format!("-{n}.el9")),
        2 => (1u32..40, 0u32..6, 0u32..3).prop_map(|(n, m, z)| format!("-{n}.el9_{m}.{z}")),
        1 => (1u32..40, 0u32..6).prop_map(|(n, m)| format!("-{n}.el8_{m}")),
        1 => (1u32..3, 0u32..10, 10_000u32..20_000).prop_map(|(n, m, b)| {
            format!("-{n}.module+el8.{m}.0+{b}+f1bef313")
        }),
        1 => (1u32..3, 0u32..4, 1u32..40).prop_map(|(n, m, b)| format!("-{n}.module_el9.{m}.0+{b}+91bc168f")),
        1 => (1u32..4).prop_map(|n| format!("-0.rc{n}.fc40")),
        1 => (1u32..4).prop_map(|n| format!("-{n}.fc40")),
        1 => (1u32..6, 1u32..4).prop_map(|(a, b)| format!("-150500.{a}.{b}")),
        1 => (1u32..6, 0u32..3).prop_map(|(a, b)| format!("-{a}.amzn2023.0.{b}")),
        1 => (1u32..6).prop_map(|a| format!("-{a}.amzn2")),
        1 => Just("-1.el9~bootstrap".to_owned()),
    ]
}

fn rpm_version() -> impl Strategy<Value = String> {
    (epoch(), rpm_upstream(), rpm_release()).prop_map(|(e, u, r)| format!("{e}{u}{r}"))
}

fn pacman_version() -> impl Strategy<Value = String> {
    let tail = prop_oneof![
        6 => Just(String::new()),
        1 => (0u32..4).prop_map(|n| format!("rc{n}")),
        1 => Just("a".to_owned()),
        1 => Just("alpha".to_owned()),
        1 => Just(".r12.g1234abc".to_owned()),
        1 => (0u32..30).prop_map(|n| format!(".r{n}")),
        1 => Just("+3+g8e0d8a1".to_owned()),
        1 => Just("_1".to_owned()),
        1 => Just("p1".to_owned()),
        1 => Just(".b".to_owned()),
    ];
    let rel = prop_oneof![
        1 => Just(String::new()),
        5 => (1u32..6).prop_map(|n| format!("-{n}")),
        1 => (1u32..4, 1u32..3).prop_map(|(n, m)| format!("-{n}.{m}")),
    ];
    (epoch(), dotted(), tail, rel).prop_map(|(e, d, t, r)| format!("{e}{d}{t}{r}"))
}

/// A small change of `v`, so that a pair differs in one place.
fn mutate(v: &str, k: usize) -> String {
    let mut s = v.to_owned();
    let digit_at: Vec<usize> = s
        .char_indices()
        .filter(|(_, c)| c.is_ascii_digit())
        .map(|(i, _)| i)
        .collect();
    match k % 12 {
        0 => s + "~",
        1 => s + ".1",
        2 => s + "a",
        3 => s + "0",
        4 => format!("1:{}", s.split_once(':').map_or(s.as_str(), |(_, r)| r)),
        5 => s.split_once(':').map_or(s.clone(), |(_, r)| r.to_owned()),
        6 if !digit_at.is_empty() => {
            let i = digit_at[k / 12 % digit_at.len()];
            let d = s.as_bytes()[i] - b'0';
            s.replace_range(i..=i, &((d + 1) % 10).to_string());
            s
        }
        7 if !digit_at.is_empty() => {
            let i = digit_at[k / 12 % digit_at.len()];
            s.insert(i, '0');
            s
        }
        8 => s + "^1",
        9 => s + "+1",
        10 => s.replacen('.', "_", 1),
        _ => s.clone(),
    }
}

/// `n` pairs: half independent versions, half a version and a small change of it.
fn pairs_of<S: Strategy<Value = String>>(
    strategy: fn() -> S,
    n: usize,
    valid: fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let pair = (strategy(), strategy(), 0usize..1_000, any::<bool>());
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (a, b, k, independent) = pair.new_tree(&mut runner).expect("generate").current();
        let b = if independent { b } else { mutate(&a, k) };
        if valid(&a) && valid(&b) {
            out.push((a, b));
        }
    }
    out
}

fn dpkg_valid(v: &str) -> bool {
    Scheme::Dpkg.parse_check(v).is_ok()
}

/// rpm's Lua reads `%S+` tokens; every generated version is one.
fn any_valid(v: &str) -> bool {
    !v.is_empty() && !v.contains(char::is_whitespace)
}

fn generated_dpkg_versions_against_dpkg() {
    let pairs = pairs_of(dpkg_version, GENERATED, dpkg_valid);
    let perl = dpkg_batch(&pairs);
    // the Perl module is dpkg's; hold it to the binary on a bounded sample
    let mut binary_vs_perl = Vec::new();
    for ((a, b), p) in pairs.iter().zip(&perl).step_by(20) {
        let bin = dpkg_binary(a, b);
        if bin != *p {
            binary_vs_perl.push(format!(
                "{a} vs {b}: dpkg {} Dpkg::Version {}",
                sym(bin),
                sym(*p)
            ));
        }
    }
    assert!(binary_vs_perl.is_empty(), "{binary_vs_perl:?}");
    print_spread("dpkg", &perl);
    let failures = disagreements(Scheme::Dpkg, &pairs, &perl, "generated");
    assert_none("generated dpkg versions", pairs.len(), &failures);
}

fn generated_rpm_versions_against_rpm() {
    let pairs = pairs_of(rpm_version, GENERATED, any_valid);
    let tool = rpm_batch(&pairs);
    print_spread("rpm", &tool);
    let failures = disagreements(Scheme::Rpm, &pairs, &tool, "generated");
    assert_none("generated rpm versions", pairs.len(), &failures);
}

fn generated_pacman_versions_against_vercmp() {
    let pairs = pairs_of(pacman_version, PACMAN_GENERATED, any_valid);
    let tool: Vec<Ordering> = pairs.iter().map(|(a, b)| vercmp(a, b)).collect();
    print_spread("pacman", &tool);
    let failures = disagreements(Scheme::Pacman, &pairs, &tool, "generated");
    assert_none("generated pacman versions", pairs.len(), &failures);
}

/// How the tool's answers spread (a generator giving only `<` would test little).
fn print_spread(what: &str, answers: &[Ordering]) {
    let mut s = String::new();
    for o in [Ordering::Less, Ordering::Equal, Ordering::Greater] {
        let _ = write!(
            s,
            " {} {}",
            sym(o),
            answers.iter().filter(|a| **a == o).count()
        );
    }
    println!("native tools: generated {what} pairs by the tool's answer:{s}");
    for o in [Ordering::Less, Ordering::Greater] {
        assert!(
            answers.contains(&o),
            "{what}: the generator never gives {}",
            sym(o)
        );
    }
}
