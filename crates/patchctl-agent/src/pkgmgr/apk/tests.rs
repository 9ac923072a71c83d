//! Unit tests of the apk backend: golden argument vectors, the parsers on fixtures under
//! `tests/data/apk/` and generated input, and the backend's steps through a scripted
//! executor.

use super::*;
use crate::exec::{ExecError, ExecOutput};
use crate::pkgmgr::Change;
use patchctl_proto::command::AvailableUpdate;
use proptest::prelude::*;
use std::sync::Mutex;

fn t(name: &str, version: &str) -> PackageTarget {
    PackageTarget {
        name: PackageName::parse(name).unwrap(),
        version: patchctl_proto::validate::PackageVersion::parse(version).unwrap(),
    }
}

#[test]
fn the_world_file_loses_the_pins_an_install_added() {
    let targets = [t("openssl", "3.3.2-r0"), t("libcrypto3", "3.3.2-r0")];
    let before = "alpine-base\nopenssl\ncurl\n";
    // apk replaced `openssl` by the pin and added the dependency's pin.
    let after = "alpine-base\ncurl\nlibcrypto3=3.3.2-r0\nopenssl=3.3.2-r0\n";
    assert_eq!(
        unpinned_world(before, after, &targets),
        Ok(Some(before.to_owned()))
    );
    assert_eq!(unpinned_world(before, before, &targets), Ok(None));
    // Anything else changed: left alone, with a reason.
    assert!(unpinned_world(before, "alpine-base\nopenssl=3.3.2-r0\nvim\n", &targets).is_err());
    assert!(unpinned_world(before, "openssl=3.3.2-r0\ncurl\n", &targets).is_err());
}

#[test]
fn the_world_file_is_rewritten_in_place_with_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    std::fs::write(&world, "a=1\n").unwrap();
    std::fs::set_permissions(&world, std::fs::Permissions::from_mode(0o644)).unwrap();
    rewrite_keeping_mode(&world, b"a\n").unwrap();
    assert_eq!(std::fs::read_to_string(&world).unwrap(), "a\n");
    assert_eq!(
        std::fs::metadata(&world).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

const LIST: &str = include_str!("../../../tests/data/apk/list-upgradable-alpine3.20.txt");
const POLICY: &str = include_str!("../../../tests/data/apk/policy-openssl.txt");
const SIM_OK: &str = include_str!("../../../tests/data/apk/add-simulate-openssl.txt");
const SIM_REFUSED: &str = include_str!("../../../tests/data/apk/add-simulate-refused.txt");
const UNABLE: &str = include_str!("../../../tests/data/apk/add-error-unable-to-select.txt");
const LOCKED: &str = include_str!("../../../tests/data/apk/add-error-locked.txt");
const UP_COMPLICATED4: &str =
    include_str!("../../../tests/data/apk/apk-tools-test-complicated4.txt");
const UP_SWAP: &str = include_str!("../../../tests/data/apk/apk-tools-test-provides-swap.txt");
const UP_PINNING12: &str = include_str!("../../../tests/data/apk/apk-tools-test-pinning12.txt");
const UP_ERROR1: &str = include_str!("../../../tests/data/apk/apk-tools-test-error1.txt");
const INSTALLED: &str =
    include_str!("../../../../patchctl-proto/tests/data/inventory/installed-alpine3.20-x86_64");

fn target(n: &str, v: &str) -> PackageTarget {
    PackageTarget {
        name: PackageName::parse(n).unwrap(),
        version: patchctl_proto::validate::PackageVersion::parse(v).unwrap(),
    }
}

fn private() -> ApkOptions {
    ApkOptions {
        root: PathBuf::from("/tmp/alpine"),
        kernel_release: PathBuf::from("/tmp/osrelease"),
        lock_wait_secs: 30,
    }
}

/// Orders the versions the fixtures use; a test stand-in for the apk comparison
/// that `Family::compare` gets from patchctl-version.
fn fixture_order(a: &str, b: &str) -> Option<Ordering> {
    const ORDER: [&str; 6] = [
        "3.3.1-r3",
        "3.3.2-r0",
        "3.4.0-r1",
        "8.9.0-r0",
        "8.9.1-r0",
        "8.10.0-r0",
    ];
    let pos = |v: &str| ORDER.iter().position(|o| *o == v);
    Some(pos(a)?.cmp(&pos(b)?))
}

#[test]
fn golden_argv() {
    let d = ApkOptions::default();
    assert_eq!(d.root, PathBuf::from("/"));
    assert_eq!(d.lock_wait_secs, 300);
    assert_eq!(
        update_argv(&d),
        ["/sbin/apk", "update", "--no-progress", "--wait", "300"]
    );
    assert_eq!(
        update_argv(&private()),
        [
            "/sbin/apk",
            "update",
            "--root",
            "/tmp/alpine",
            "--no-progress",
            "--wait",
            "30"
        ]
    );
    assert_eq!(
        upgradable_argv(&d),
        ["/sbin/apk", "list", "--no-progress", "--upgradable"]
    );
    let name = PackageName::parse("libcrypto3").unwrap();
    assert_eq!(
        policy_argv(&d, &name),
        ["/sbin/apk", "policy", "--no-progress", "--", "libcrypto3"]
    );
    assert_eq!(
        policy_argv(&private(), &name),
        [
            "/sbin/apk",
            "policy",
            "--root",
            "/tmp/alpine",
            "--no-progress",
            "--",
            "libcrypto3"
        ]
    );
    let t = [target("openssl", "3.3.2-r0"), target("libssl3", "3.3.2-r0")];
    assert_eq!(
        add_simulate_argv(&d, &t),
        [
            "/sbin/apk",
            "add",
            "--no-progress",
            "--wait",
            "300",
            "--simulate",
            "--",
            "openssl=3.3.2-r0",
            "libssl3=3.3.2-r0"
        ]
    );
    assert_eq!(
        add_argv(&d, &t[..1]),
        [
            "/sbin/apk",
            "add",
            "--no-progress",
            "--wait",
            "300",
            "--",
            "openssl=3.3.2-r0"
        ]
    );
    assert_eq!(
        add_argv(&private(), &t[1..]),
        [
            "/sbin/apk",
            "add",
            "--root",
            "/tmp/alpine",
            "--no-progress",
            "--wait",
            "30",
            "--",
            "libssl3=3.3.2-r0"
        ]
    );
    // The requests: no extra environment, timeouts past the lock wait.
    let r = install_request(&d, &t);
    assert!(r.env.is_empty());
    assert_eq!(r.program, APK);
    assert_eq!(r.timeout, Duration::from_secs(2100));
    assert_eq!(simulate_request(&d, &t).timeout, Duration::from_secs(600));
    assert_eq!(update_request(&d).timeout, Duration::from_secs(900));
    assert!(update_request(&d).env.is_empty());
    assert_eq!(d.installed_path(), PathBuf::from("/lib/apk/db/installed"));
    assert_eq!(
        private().installed_path(),
        PathBuf::from("/tmp/alpine/lib/apk/db/installed")
    );
}

#[test]
fn versions() {
    for v in [
        "1",
        "1.0",
        "3.3.1-r3",
        "20240705-r0",
        "1.2.5_git20230424-r1",
        "1.0_rc1_p2-r10",
        "1.36.1-r29",
        "2.3a",
        "1.2a3",
        "1.0_alpha",
        "1.0_alpha1",
        "0.0.0",
        "1.0~a1b2c3-r0",
        "1.0.007",
    ] {
        assert!(valid_version(v), "{v} is valid");
    }
    for v in [
        "",
        "r1",
        "-r1",
        "1-",
        "1-r",
        "1..2",
        "1.",
        "1.2-r1-r2",
        "1_foo",
        "1ab",
        "1a.2",
        "1.0-1",
        "1.0 ",
        "a1",
        "1-r1a",
        "1~",
        "1_rc1.2",
    ] {
        assert!(!valid_version(v), "{v:?} is invalid");
    }
}

#[test]
fn name_version_splits() {
    for (s, want) in [
        ("libcrypto3-3.3.2-r0", Some(("libcrypto3", "3.3.2-r0"))),
        (
            "busybox-binsh-1.36.1-r29",
            Some(("busybox-binsh", "1.36.1-r29")),
        ),
        ("py3-foo-2-1.0-r0", Some(("py3-foo-2", "1.0-r0"))),
        ("lua5.1-lpeg-1.1.0-r0", Some(("lua5.1-lpeg", "1.1.0-r0"))),
        (
            "gcc-13.2.1_git20240309-r0",
            Some(("gcc", "13.2.1_git20240309-r0")),
        ),
        (
            "ca-certificates-bundle-20240705-r0",
            Some(("ca-certificates-bundle", "20240705-r0")),
        ),
        ("a-1", Some(("a", "1"))),
        ("foo", None),
        ("foo-", None),
        ("-1.0-r0", None),
        ("foo-bar-baz", None),
        ("foo-1.0-r0-x-y", None),
        ("foo-1.0.", None),
        ("", None),
        ("-", None),
    ] {
        assert_eq!(split_pkgver(s), want, "{s}");
    }
}

#[test]
fn upgradable_fixture() {
    let u = parse_upgradable(LIST);
    assert!(u.skipped.is_empty(), "{:?}", u.skipped);
    assert_eq!(u.listed.len(), 9);
    assert_eq!(
        u.listed[4],
        Listed {
            name: "libcrypto3".into(),
            version: "3.3.2-r0".into(),
            arch: "x86_64".into(),
            origin: "openssl".into(),
            license: "Apache-2.0".into(),
            from: "3.3.1-r3".into(),
        }
    );
    assert_eq!(u.listed[2].license, "MPL-2.0 AND MIT");
    assert_eq!(u.listed[2].name, "ca-certificates-bundle");
    let up = u.updates(|_, _| None);
    assert!(up.skipped.is_empty());
    assert!(up.removals.is_empty());
    assert_eq!(up.updates.len(), 9);
    let ssl = &up.updates[6];
    assert_eq!(
        *ssl,
        AvailableUpdate {
            name: "libssl3".into(),
            arch: "x86_64".into(),
            current_version: Some("3.3.1-r3".into()),
            candidate_version: "3.3.2-r0".into(),
            origins: Vec::new(),
            security: false,
            advisories: Vec::new(),
        }
    );
    assert!(
        up.updates
            .iter()
            .all(|u| !u.security && u.advisories.is_empty())
    );
    // Every installed version listed is the one in the database of that host.
    let inv = crate::inventory::apk::parse_installed(INSTALLED).packages;
    for u in &up.updates {
        let p = inv.iter().find(|p| p.name == u.name).unwrap();
        assert_eq!(Some(&p.version), u.current_version.as_ref(), "{}", u.name);
    }
}

#[test]
fn upgradable_lines() {
    let bad = [
        "",
        "ERROR: something",
        "libfoo-1.0-r0",
        "libfoo-1.0-r0 x86_64",
        "libfoo-1.0-r0 x86_64 {foo} (MIT) [installed]",
        "libfoo-1.0-r0 x86_64 {foo} (MIT) [upgradable from: libbar-0.9-r0]",
        "libfoo-1.0-r0 x86_64 {foo} (MIT) [upgradable from: libfoo-0.9-r0",
        "libfoo x86_64 {foo} (MIT) [upgradable from: libfoo-0.9-r0]",
        "libfoo-1.0-r0 x86_64 foo (MIT) [upgradable from: libfoo-0.9-r0]",
    ];
    for line in bad {
        let u = parse_upgradable(line);
        assert!(u.listed.is_empty(), "{line}");
        assert_eq!(u.skipped.len(), usize::from(!line.is_empty()), "{line}");
    }
    // A license with parentheses of its own.
    let u = parse_upgradable(
        "libx-2.0-r1 aarch64 {x} (MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)) [upgradable from: libx-1.9-r0]\r\n",
    );
    assert!(u.skipped.is_empty(), "{:?}", u.skipped);
    assert_eq!(
        u.listed[0].license,
        "MIT AND (LGPL-2.1-or-later OR BSD-3-Clause)"
    );
    assert_eq!(u.listed[0].arch, "aarch64");
}

#[test]
fn several_candidates_keep_the_highest() {
    let out = "curl-8.9.1-r0 x86_64 {curl} (curl) [upgradable from: curl-8.9.0-r0]\n\
               curl-8.10.0-r0 x86_64 {curl} (curl) [upgradable from: curl-8.9.0-r0]\n";
    let up = parse_upgradable(out).updates(fixture_order);
    assert_eq!(up.updates.len(), 1);
    assert_eq!(up.updates[0].candidate_version, "8.10.0-r0");
    assert!(up.skipped.is_empty());
    // Without a comparison the first is kept and the choice is said.
    let up = parse_upgradable(out).updates(|_, _| None);
    assert_eq!(up.updates[0].candidate_version, "8.9.1-r0");
    assert_eq!(up.skipped.len(), 1);
}

#[test]
fn policy_fixture() {
    let p = parse_policy(POLICY, "openssl");
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(p.installed(), Some("3.3.1-r3"));
    assert_eq!(p.versions.len(), 3);
    assert!(p.versions[0].repos.is_empty());
    assert_eq!(
        p.versions[2].repos,
        ["@edge https://mirror.example/alpine/edge/main"]
    );
    // The tagged 3.4.0 is not a candidate; 3.3.2 from the untagged repository is.
    let c = p.candidate(fixture_order).unwrap();
    assert_eq!(c.version, "3.3.2-r0");
    assert_eq!(c.repos, ["https://mirror.example/alpine/v3.20/main"]);
    // Without a comparison, two eligible versions leave the candidate unknown.
    assert_eq!(p.candidate(|_, _| None), None);
    // Another package's block is not read.
    assert_eq!(parse_policy(POLICY, "libssl3"), Policy::default());
    // Installed only.
    let p = parse_policy("x policy:\n  1.0-r0:\n    lib/apk/db/installed\n", "x");
    assert_eq!(p.candidate(|_, _| None).unwrap().version, "1.0-r0");
    // Nothing at all.
    assert_eq!(parse_policy("", "x").candidate(fixture_order), None);
    // Unreadable lines.
    let p = parse_policy(
        "x policy:\n    https://orphan\n  not a version:\nnoise\n",
        "x",
    );
    assert_eq!(p.skipped.len(), 3, "{:?}", p.skipped);
}

#[test]
fn simulation_fixtures() {
    let sim = parse_simulation(SIM_OK);
    assert!(sim.skipped.is_empty());
    let ch = |n: &str, f: Option<&str>, t: Option<&str>| Change {
        name: n.into(),
        from: f.map(Into::into),
        to: t.map(Into::into),
    };
    assert_eq!(
        sim.changes,
        [
            ch("libcrypto3", Some("3.3.1-r3"), Some("3.3.2-r0")),
            ch("libssl3", Some("3.3.1-r3"), Some("3.3.2-r0")),
            ch("openssl", Some("3.3.1-r3"), Some("3.3.2-r0")),
        ]
    );
    let sim = parse_simulation(SIM_REFUSED);
    assert!(sim.skipped.is_empty());
    assert_eq!(
        sim.changes,
        [
            ch("libressl3.8-libcrypto", Some("3.8.2-r0"), None),
            ch("libcrypto3", None, Some("3.3.2-r0")),
            ch("curl", Some("8.9.0-r0"), Some("8.5.0-r0")),
            ch("busybox", Some("1.36.1-r29"), Some("1.36.1-r29")),
            ch("ssl_client", Some("1.36.1-r29"), Some("1.36.1-r29")),
        ]
    );
    // apk-tools' own test expectations.
    let sim = parse_simulation(UP_COMPLICATED4);
    assert_eq!(sim.changes.len(), 4);
    assert_eq!(sim.changes[0], ch("d", Some("1.0"), Some("1.5")));
    assert_eq!(sim.changes[3], ch("a", None, Some("2")));
    let sim = parse_simulation(UP_SWAP);
    assert_eq!(sim.changes[0], ch("mailreadplus", Some("1"), None));
    let sim = parse_simulation(UP_PINNING12);
    assert_eq!(sim.changes[1], ch("a", None, Some("3")));
    assert!(parse_simulation(UP_ERROR1).changes.is_empty());
    // Other step kinds and garbage.
    let sim = parse_simulation(
        "(1/4) Updating pinning foo@edge (1.0-r0)\n\
         (2/4) [APK unavailable, skipped] Re-installing bar (2.0-r0)\n\
         (3/4) Frobnicating baz (1.0)\n\
         (4/4) Upgrading qux (1.0 ->)\n\
         Executing busybox-1.36.1-r29.trigger\n\
         (a/b) Installing x (1)\n\
         OK: 13 MiB in 27 packages\n",
    );
    assert_eq!(
        sim.changes,
        [
            ch("foo", Some("1.0-r0"), Some("1.0-r0")),
            ch("bar", Some("2.0-r0"), Some("2.0-r0")),
        ]
    );
    assert_eq!(sim.skipped.len(), 2, "{:?}", sim.skipped);
}

#[test]
fn the_gate_on_apk_plans() {
    let approved = [
        target("openssl", "3.3.2-r0"),
        target("libssl3", "3.3.2-r0"),
        target("libcrypto3", "3.3.2-r0"),
    ];
    let tx = parse_simulation(SIM_REFUSED).transaction();
    let why = super::super::refusals(Family::Apk, &tx, &approved);
    assert!(
        why.contains(&"would remove libressl3.8-libcrypto".to_string()),
        "{why:?}"
    );
    assert!(
        why.iter()
            .any(|w| w.starts_with("would install curl 8.5.0-r0")),
        "{why:?}"
    );
    assert!(
        why.iter()
            .any(|w| w == "would downgrade curl from 8.9.0-r0 to 8.5.0-r0"),
        "{why:?}"
    );
    let tx = parse_simulation("(1/1) Frobnicating x (1)\n").transaction();
    assert_eq!(super::super::refusals(Family::Apk, &tx, &[]).len(), 1);
    // Only approved packages at their approved versions: nothing but the
    // downgrade check is left, and that needs the apk comparison.
    let tx = parse_simulation(SIM_OK).transaction();
    let why = super::super::refusals(Family::Apk, &tx, &approved);
    assert!(
        why.iter().all(|w| w.starts_with("would downgrade")),
        "{why:?}"
    );
}

#[test]
fn errors_and_locks() {
    assert_eq!(
        error_reason("", UNABLE),
        "unable to select packages: openssl-3.3.1-r3: breaks: world[openssl=3.9.9-r0] \
         nosuchpkg (no such package): required by: world[nosuchpkg=1.0-r0]"
    );
    assert_eq!(
        error_reason(UP_ERROR1, ""),
        "unable to select packages: d-2.0: breaks: b-1[d<2.0] satisfies: world[d>1.5] a-3[d>1.5] c-1[d>1.0]"
    );
    assert!(is_locked(LOCKED));
    assert_eq!(
        error_reason("Waiting for repository lock\n", LOCKED),
        "Unable to lock database: Interrupted system call; \
         Failed to open apk database: Interrupted system call"
    );
    assert!(!is_locked(UNABLE));
    assert!(!is_locked(
        "ERROR: Failed to open apk database: Permission denied"
    ));
    assert_eq!(error_reason("", "  something odd\n"), "something odd");
}

#[test]
fn reboot_after_a_kernel_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let release = dir.path().join("osrelease");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(&release, "6.6.49-0-lts\n").unwrap();
    // A container: no /lib/modules at all.
    assert!(!kernel_reboot_required(&root, &release));
    // The running kernel's modules are there.
    std::fs::create_dir_all(root.join("lib/modules/6.6.49-0-lts")).unwrap();
    assert!(!kernel_reboot_required(&root, &release));
    // linux-lts was upgraded: the old modules are gone, new ones are there.
    std::fs::remove_dir(root.join("lib/modules/6.6.49-0-lts")).unwrap();
    std::fs::create_dir_all(root.join("lib/modules/6.6.58-0-lts")).unwrap();
    assert!(kernel_reboot_required(&root, &release));
    // No readable release: do not claim a reboot.
    assert!(!kernel_reboot_required(&root, &dir.path().join("missing")));
    std::fs::write(&release, "../../etc\n").unwrap();
    assert!(!kernel_reboot_required(&root, &release));
}

/// An executor that answers from a script and records what was asked.
struct Scripted {
    answers: Mutex<Vec<ExecOutput>>,
    seen: Mutex<Vec<ExecRequest>>,
}

impl Scripted {
    fn new(answers: Vec<(i32, &str, &str)>) -> Self {
        Scripted {
            answers: Mutex::new(
                answers
                    .into_iter()
                    .rev()
                    .map(|(code, out, err)| ExecOutput {
                        code: Some(code),
                        stdout: out.into(),
                        stderr: err.into(),
                        truncated: false,
                    })
                    .collect(),
            ),
            seen: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Executor for Scripted {
    async fn run(&self, req: ExecRequest) -> Result<ExecOutput, ExecError> {
        self.seen.lock().unwrap().push(req.clone());
        self.answers
            .lock()
            .unwrap()
            .pop()
            .ok_or(ExecError::NotAllowed("no scripted answer".into()))
    }
    fn history(&self) -> Vec<Vec<String>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                let mut v = vec![r.program.clone()];
                v.extend(r.args.iter().cloned());
                v
            })
            .collect()
    }
}

fn backend_with_db() -> (tempfile::TempDir, ApkBackend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lib/apk/db/installed");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, INSTALLED).unwrap();
    let b = ApkBackend::new(ApkOptions {
        root: dir.path().to_owned(),
        kernel_release: dir.path().join("osrelease"),
        lock_wait_secs: 5,
    });
    (dir, b)
}

#[tokio::test]
async fn backend_runs_the_plans() {
    let (dir, b) = backend_with_db();
    let root = dir.path().display().to_string();
    let exec = Scripted::new(vec![
        (0, "", ""),
        (0, LIST, ""),
        (0, POLICY, ""),
        (0, SIM_OK, ""),
        (0, "OK: 13 MiB in 27 packages\n", ""),
    ]);
    let inv = b.inventory(&exec).await.unwrap();
    assert_eq!(inv.len(), 20);
    b.refresh(&exec).await.unwrap();
    let up = b.updates(&exec).await.unwrap();
    assert_eq!(up.updates.len(), 9);
    let name = PackageName::parse("openssl").unwrap();
    let c = b.candidate(&exec, &name).await.unwrap();
    // Family::compare decides between 3.3.1-r3 and 3.3.2-r0; without it the
    // candidate is unknown rather than guessed.
    match Family::Apk.compare("3.3.2-r0", "3.3.1-r3") {
        Some(_) => assert_eq!(c.version.as_deref(), Some("3.3.2-r0")),
        None => assert_eq!(c, Candidate::default()),
    }
    assert!(!c.security);
    let t = [target("openssl", "3.3.2-r0")];
    let tx = b.simulate(&exec, &t).await.unwrap();
    assert_eq!(tx.changes.len(), 3);
    let run = b.install(&exec, &t).await;
    assert_eq!(run.code, Some(0));
    assert!(!run.locked);
    assert!(run.output.contains("OK: 13 MiB"));
    let h = exec.history();
    let o = b.options();
    assert_eq!(
        h,
        [
            update_argv(o),
            upgradable_argv(o),
            policy_argv(o, &name),
            add_simulate_argv(o, &t),
            add_argv(o, &t),
        ]
    );
    assert!(h.iter().all(|a| a[2] == "--root" && a[3] == root));
    assert!(!b.reboot_required(&exec).await);
}

#[tokio::test]
async fn backend_refuses_clearly() {
    let (_dir, b) = backend_with_db();
    // Not installed: nothing runs.
    let exec = Scripted::new(vec![]);
    let e = b
        .simulate(&exec, &[target("nginx", "1.26.2-r0")])
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not installed") && e.contains("nginx"), "{e}");
    assert!(exec.history().is_empty());
    // apk cannot select the packages.
    let exec = Scripted::new(vec![(1, "", UNABLE)]);
    let e = b
        .simulate(&exec, &[target("openssl", "3.9.9-r0")])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("apk cannot plan the install (exit 1): unable to select packages: openssl-3.3.1-r3: breaks:"),
        "{e}"
    );
    // Locked, during the simulation, the install and the refresh.
    let exec = Scripted::new(vec![
        (99, "Waiting for repository lock\n", LOCKED),
        (99, "Waiting for repository lock\n", LOCKED),
        (99, "", LOCKED),
    ]);
    let t = [target("openssl", "3.3.2-r0")];
    let e = b.simulate(&exec, &t).await.unwrap_err().to_string();
    assert!(e.contains("locked by another process (waited 5 s)"), "{e}");
    let run = b.install(&exec, &t).await;
    assert!(run.locked);
    assert!(run.output.contains("Unable to lock database"));
    let e = b.refresh(&exec).await.unwrap_err().to_string();
    assert!(e.contains("locked by another process"), "{e}");
    // A failing update says apk's reason.
    let exec = Scripted::new(vec![(
        2,
        "",
        "WARNING: fetching https://mirror.example/alpine/v3.20/main: temporary error (try again later)\nERROR: unable to update some repositories\n",
    )]);
    let e = b.refresh(&exec).await.unwrap_err().to_string();
    assert!(e.contains("unable to update some repositories"), "{e}");
    // A missing database is an error, not an empty inventory.
    let b = ApkBackend::new(ApkOptions {
        root: PathBuf::from("/nonexistent-root"),
        ..ApkOptions::default()
    });
    assert!(
        b.inventory(&exec)
            .await
            .unwrap_err()
            .to_string()
            .contains("cannot read")
    );
}

proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,400}") {
        let _ = parse_upgradable(&s);
        let _ = parse_policy(&s, "x");
        let _ = parse_policy(&format!("x policy:\n{s}"), "x");
        let _ = parse_simulation(&s);
        let _ = parse_simulation(&format!("(1/1) {s}"));
        let _ = error_reason(&s, &s);
        let _ = split_pkgver(&s);
        let _ = valid_version(&s);
    }

    #[test]
    fn name_version_round_trip(
        name in "[a-z0-9][a-z0-9._+]{0,10}(-[a-z][a-z0-9._+]{0,6}|-[0-9][a-z][a-z0-9]{0,4}){0,3}",
        version in "[0-9]{1,4}(\\.[0-9]{1,4}){0,3}[a-z]?(_(alpha|beta|pre|rc|git|p)[0-9]{0,8}){0,2}",
        rel in proptest::option::of(0u32..100),
    ) {
        let version = match rel {
            Some(r) => format!("{version}-r{r}"),
            None => version,
        };
        prop_assert!(valid_version(&version), "{}", version);
        let s = format!("{name}-{version}");
        prop_assert_eq!(split_pkgver(&s), Some((name.as_str(), version.as_str())));
    }

    #[test]
    fn list_lines_round_trip(
        name in "[a-z][a-z0-9_+-]{0,20}[a-z]",
        ver in "[0-9]{1,3}\\.[0-9]{1,3}-r[0-9]{1,2}",
        old in "[0-9]{1,3}\\.[0-9]{1,3}-r[0-9]{1,2}",
        arch in prop::sample::select(vec!["x86_64", "aarch64", "armv7", "noarch"]),
        origin in "[a-z][a-z0-9_.+-]{0,20}",
        license in "[A-Za-z0-9.() -]{1,30}",
    ) {
        prop_assume!(!name.contains("--") && !name.ends_with('-'));
        let line = format!("{name}-{ver} {arch} {{{origin}}} ({license}) [upgradable from: {name}-{old}]");
        let u = parse_upgradable(&line);
        prop_assert!(u.skipped.is_empty(), "{:?}", u.skipped);
        let l = &u.listed[0];
        prop_assert_eq!(&l.name, &name);
        prop_assert_eq!(&l.version, &ver);
        prop_assert_eq!(&l.from, &old);
        prop_assert_eq!(&l.arch, arch);
        prop_assert_eq!(&l.origin, &origin);
        prop_assert_eq!(&l.license, &license);
    }

    #[test]
    fn steps_round_trip(
        steps in prop::collection::vec((
            0usize..4,
            "[a-z][a-z0-9_.+-]{0,15}",
            "[0-9][0-9.]{0,6}-r[0-9]{1,2}",
            "[0-9][0-9.]{0,6}-r[0-9]{1,2}",
        ), 1..8)
    ) {
        let n = steps.len();
        let mut out = String::new();
        let mut want = Vec::new();
        for (i, (kind, name, a, b)) in steps.iter().enumerate() {
            let (text, from, to) = match kind {
                0 => (format!("Installing {name} ({b})"), None, Some(b.clone())),
                1 => (format!("Purging {name} ({a})"), Some(a.clone()), None),
                2 => (format!("Upgrading {name} ({a} -> {b})"), Some(a.clone()), Some(b.clone())),
                _ => (format!("Downgrading {name} ({a} -> {b})"), Some(a.clone()), Some(b.clone())),
            };
            out.push_str(&format!("({}/{n}) {text}\n", i + 1));
            want.push(Change { name: name.clone(), from, to });
        }
        out.push_str("OK: 1 MiB in 3 packages\n");
        let sim = parse_simulation(&out);
        prop_assert!(sim.skipped.is_empty(), "{:?}", sim.skipped);
        prop_assert_eq!(sim.changes, want);
    }
}

/// apk is not installable on Debian, so this plan comes from the scripted executor (a
/// fake, named as such): the same accepted plan, marked as cut by the executor, is
/// refused whole.
#[tokio::test]
async fn a_plan_cut_short_is_refused() {
    let (_dir, b) = backend_with_db();
    let t = [target("openssl", "3.3.2-r0")];
    let exec = Scripted::new(vec![(0, SIM_OK, "")]);
    assert!(b.simulate(&exec, &t).await.is_ok());
    let exec = Scripted::new(vec![(0, SIM_OK, "")]);
    exec.answers.lock().unwrap()[0].truncated = true;
    let err = b.simulate(&exec, &t).await.unwrap_err();
    assert!(err.to_string().contains(super::super::CUT_SHORT), "{err}");
}
