//! Tests of the apt backend's plans and parsers (no apt run here; tests/apt_real.rs runs
//! the real apt).

use super::*;
use patchctl_proto::command::AvailableUpdate;
use proptest::prelude::*;

fn up(
    name: &str,
    cur: Option<&str>,
    cand: &str,
    origins: &[&str],
    arch: &str,
    security: bool,
) -> AvailableUpdate {
    AvailableUpdate {
        name: name.into(),
        arch: arch.into(),
        current_version: cur.map(Into::into),
        candidate_version: cand.into(),
        origins: origins.iter().map(|s| s.to_string()).collect(),
        security,
        advisories: Vec::new(),
    }
}

fn check(line: &str, want: Option<AvailableUpdate>) {
    let sim = parse_simulation(line);
    assert_eq!(sim.updates.first().cloned(), want, "{line}");
}

#[test]
fn inst_lines() {
    // Real lines of `apt-get -s dist-upgrade` on Debian 12 and Ubuntu 22.04.
    check(
        "Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])",
        Some(up(
            "libssl3",
            Some("3.0.11-1~deb12u2"),
            "3.0.15-1~deb12u1",
            &["Debian-Security:12/stable-security"],
            "amd64",
            true,
        )),
    );
    check(
        "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable, Debian:12-updates/stable-updates [all])",
        Some(up(
            "tzdata",
            Some("2024a-0+deb12u1"),
            "2025b-0+deb12u1",
            &["Debian:12.11/stable", "Debian:12-updates/stable-updates"],
            "all",
            false,
        )),
    );
    check(
        "Inst libc6 [2.35-0ubuntu3.6] (2.35-0ubuntu3.8 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64]) []",
        Some(up(
            "libc6",
            Some("2.35-0ubuntu3.6"),
            "2.35-0ubuntu3.8",
            &["Ubuntu:22.04/jammy-updates", "Ubuntu:22.04/jammy-security"],
            "amd64",
            true,
        )),
    );
    check(
        "Inst linux-image-6.1.0-28-amd64 (6.1.119-1 Debian-Security:12/stable-security [amd64])",
        Some(up(
            "linux-image-6.1.0-28-amd64",
            None,
            "6.1.119-1",
            &["Debian-Security:12/stable-security"],
            "amd64",
            true,
        )),
    );
    check(
        "Inst python3-jinja2 [3.0.3-1ubuntu0.1] (3.0.3-1ubuntu0.2+esm1 UbuntuESMApps:22.04/jammy-apps-security [all])",
        Some(up(
            "python3-jinja2",
            Some("3.0.3-1ubuntu0.1"),
            "3.0.3-1ubuntu0.2+esm1",
            &["UbuntuESMApps:22.04/jammy-apps-security"],
            "all",
            true,
        )),
    );
    check("Inst", None);
    check("Inst foo [1.0 (2.0 x [amd64])", None);
    check("Inst foo [1.0] 2.0", None);
}

#[test]
fn whole_output() {
    let out = "NOTE: This is only a simulation!\n\
               Reading package lists...\n\
               Inst pc-new [1.0] (1.1 Test:12/bookworm-updates [all])\n\
               Remv pc-victim [1.0]\n\
               Conf pc-new (1.1 Test:12/bookworm-updates [all])\n\
               Inst broken\n";
    let sim = parse_simulation(out);
    assert_eq!(sim.updates.len(), 1);
    assert_eq!(sim.removals, vec!["pc-victim".to_string()]);
    assert_eq!(sim.skipped.len(), 1);
    assert!(sim.summary.is_none());
    assert!(sim.incomplete().unwrap().contains("no count line"));
}

/// What `apt-get -s -q install --only-upgrade` printed on Debian 12 (apt 2.6) for a
/// plan that removes one package and purges another, with APT::Get::Purge.
const REAL_PLAN: &str = "Reading package lists...
Building dependency tree...
Reading state information...
The following packages will be REMOVED:
  pc-gone* pc-victim
The following packages will be upgraded:
  pc-new
1 upgraded, 0 newly installed, 2 to remove and 3 not upgraded.
Purg pc-gone [1.0]
Remv pc-victim [1.0]
Inst pc-new [1.0] (1.1 Debian:12/bookworm-updates [all])
Conf pc-new (1.1 Debian:12/bookworm-updates [all])
";

#[test]
fn purges_are_removals() {
    let sim = parse_simulation(REAL_PLAN);
    assert_eq!(sim.removals, ["pc-gone", "pc-victim"]);
    assert!(sim.skipped.is_empty(), "{:?}", sim.skipped);
    assert_eq!(
        sim.summary,
        Some(Summary {
            installs: 1,
            removals: 2
        })
    );
    assert_eq!(sim.incomplete(), None);
    let r = gate(&sim, &[target("pc-new", "1.1")]);
    assert_eq!(r, ["would remove pc-gone", "would remove pc-victim"]);
}

#[test]
fn an_unknown_line_refuses_the_install() {
    let out = REAL_PLAN.replace("Conf pc-new", "Xfer pc-other [1.0]\nConf pc-new");
    let sim = parse_simulation(&out);
    let r = gate(&sim, &[target("pc-new", "1.1")]);
    assert!(
        r.iter()
            .any(|w| w.contains("unknown line: Xfer pc-other [1.0]")),
        "{r:?}"
    );
    // apt's usual chatter is known and refuses nothing.
    let chatter = "Reading package lists...\nBuilding dependency tree...\nReading state information...\nCalculating upgrade...\nSelected version '1.1' (Debian:12/bookworm-updates [all]) for 'pc-new'\npc-x is already the newest version (1.0).\npc-y set to manually installed.\nSuggested packages:\n  pc-doc\nThe following packages will be upgraded:\n  pc-new\n1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\nInst pc-new [1.0] (1.1 Debian:12/bookworm-updates [all])\nConf pc-new (1.1 Debian:12/bookworm-updates [all])\n";
    let sim = parse_simulation(chatter);
    assert!(sim.skipped.is_empty(), "{:?}", sim.skipped);
    assert!(gate(&sim, &[target("pc-new", "1.1")]).is_empty());
}

#[test]
fn a_plan_cut_short_refuses_the_install() {
    // Every prefix of a real plan that ends before its last action line is refused.
    let lines: Vec<&str> = REAL_PLAN.lines().collect();
    let last_action = lines.iter().rposition(|l| l.starts_with("Inst ")).unwrap();
    for cut in 0..=last_action {
        let out = lines[..cut].join("\n");
        let sim = parse_simulation(&out);
        assert!(
            !gate(&sim, &[target("pc-new", "1.1")]).is_empty(),
            "a plan cut after {cut} lines was accepted:\n{out}"
        );
        assert!(sim.incomplete().is_some(), "cut after {cut} lines");
    }
    // The count line with other words (a downgrade) still counts the installs.
    let sim = parse_simulation(
        "0 upgraded, 0 newly installed, 1 downgraded, 0 to remove and 0 not upgraded.\nInst a [1.2] (1.1 X:1/s [all])\n",
    );
    assert_eq!(sim.incomplete(), None);
    assert_eq!(
        gate(&sim, &[target("a", "1.1")]),
        ["would downgrade a from 1.2 to 1.1"]
    );
}

#[test]
fn update_warnings_are_failures() {
    // apt-get update exits 0 with these (apt 2.6, Debian 12).
    let stdout = "Hit:1 file:/srv/repo bookworm InRelease\nIgn:2 http://127.0.0.1:9 bookworm InRelease\nErr:3 http://127.0.0.1:9 bookworm Release\n  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nReading package lists...\n";
    let stderr = "E: The repository 'http://127.0.0.1:9 bookworm Release' does not have a Release file.\nW: GPG error: file:/srv/other bookworm InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 0123456789ABCDEF\nW: Some index files failed to download. They have been ignored, or old ones used instead.\n";
    let f = update_failures(stdout, stderr);
    assert_eq!(f.len(), 4, "{f:?}");
    assert!(f[0].starts_with("Err:3 http://127.0.0.1:9"));
    assert!(f.iter().any(|l| l.starts_with("W: GPG error")));
    assert!(
        update_failures(
            "Hit:1 file:/srv/repo bookworm InRelease\nReading package lists...\n",
            ""
        )
        .is_empty()
    );
}

#[test]
fn security_comes_from_the_archive_only() {
    assert!(is_security_origin("Debian-Security:12/stable-security"));
    assert!(is_security_origin("Debian:12/bookworm-security"));
    assert!(!is_security_origin("Debian:12.11/stable"));
    assert!(
        !is_security_origin("Security-Team:1/stable"),
        "labels do not count"
    );
    assert!(!is_security_origin("Debian:12/stable-security-not"));
}

#[test]
fn golden_argv() {
    assert_eq!(
        update_argv(&AptOptions::default()),
        ["/usr/bin/apt-get", "-q", "update"]
    );
    assert_eq!(
        simulate_argv(&AptOptions::default()),
        [
            "/usr/bin/apt-get",
            "-s",
            "-q",
            "-o",
            "Debug::NoLocking=true",
            "dist-upgrade"
        ]
    );
    let o = AptOptions {
        config: vec![("Dir::State::status".into(), "/tmp/s".into())],
    };
    assert_eq!(
        simulate_argv(&o),
        [
            "/usr/bin/apt-get",
            "-s",
            "-q",
            "-o",
            "Debug::NoLocking=true",
            "-o",
            "Dir::State::status=/tmp/s",
            "dist-upgrade"
        ]
    );
}

fn target(n: &str, v: &str) -> PackageTarget {
    PackageTarget {
        name: patchctl_proto::validate::PackageName::parse(n).unwrap(),
        version: patchctl_proto::validate::PackageVersion::parse(v).unwrap(),
    }
}

#[test]
fn install_plans() {
    let t = [
        target("openssl", "3.0.15-1~deb12u1"),
        target("libssl3", "3.0.15-1~deb12u1"),
    ];
    assert_eq!(
        install_simulate_argv(&AptOptions::default(), &t),
        [
            "/usr/bin/apt-get",
            "-s",
            "-q",
            "-o",
            "Debug::NoLocking=true",
            "install",
            "--only-upgrade",
            "openssl=3.0.15-1~deb12u1",
            "libssl3=3.0.15-1~deb12u1"
        ]
    );
    assert_eq!(
        install_argv(&AptOptions::default(), &t[..1]),
        [
            "/usr/bin/apt-get",
            "-y",
            "-q",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
            "-o",
            "DPkg::Lock::Timeout=300",
            "install",
            "--only-upgrade",
            "openssl=3.0.15-1~deb12u1"
        ]
    );
}

fn gate(sim: &Simulation, approved: &[PackageTarget]) -> Vec<String> {
    super::super::refusals(Family::Apt, &sim.transaction(), approved)
}

#[test]
fn refusal_reasons() {
    let approved = [target("a", "1.1")];
    // Each plan with the count line apt prints before its actions.
    let sim = |out: &str| {
        let inst = out.lines().filter(|l| l.starts_with("Inst ")).count();
        let rem = out.lines().filter(|l| l.starts_with("Remv ")).count();
        parse_simulation(&format!(
            "{inst} upgraded, 0 newly installed, {rem} to remove and 0 not upgraded.\n{out}"
        ))
    };
    assert!(gate(&sim("Inst a [1.0] (1.1 X:1/s-security [all])"), &approved).is_empty());
    let r = gate(
        &sim("Inst a [1.0] (1.1 X:1/s [all])\nRemv b [1.0]"),
        &approved,
    );
    assert_eq!(r, ["would remove b"]);
    let r = gate(
        &sim("Inst a [1.0] (1.1 X:1/s [all])\nInst c (2.0 X:1/s [all])"),
        &approved,
    );
    assert_eq!(r, ["would install c 2.0, which was not approved"]);
    let r = gate(&sim("Inst a [1.2] (1.1 X:1/s [all])"), &approved);
    assert_eq!(r, ["would downgrade a from 1.2 to 1.1"]);
    let r = gate(&sim("Inst a [1:1.0] (1.1 X:1/s [all])"), &approved);
    assert_eq!(
        r,
        ["would downgrade a from 1:1.0 to 1.1"],
        "the epoch decides"
    );
    let r = gate(
        &sim("Inst a [1.0~rc1] (1.0 X:1/s [all])"),
        &[target("a", "1.0")],
    );
    assert!(r.is_empty(), "~ sorts before the release: {r:?}");
}

#[test]
fn policy() {
    let p = parse_policy(include_str!(
        "../../../tests/data/apt-cache-policy-openssl.txt"
    ));
    assert_eq!(p.installed.as_deref(), Some("3.0.11-1~deb12u2"));
    assert_eq!(p.candidate.as_deref(), Some("3.0.15-1~deb12u1"));
    assert_eq!(p.candidate_archives, ["bookworm-security"]);
    assert!(p.security_update());
    let p = parse_policy(
        "dpkg:\n  Installed: 1.21.22\n  Candidate: 1.21.23\n  Version table:\n     1.21.23 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n *** 1.21.22 100\n        100 /var/lib/dpkg/status\n",
    );
    assert_eq!(p.candidate_archives, ["bookworm"]);
    assert!(!p.security_update());
    let p = parse_policy("foo:\n  Installed: (none)\n  Candidate: (none)\n  Version table:\n");
    assert_eq!(p, Policy::default());
    assert!(is_locked(
        "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 123 (apt-get)"
    ));
    assert!(!is_locked("E: Version '9' for 'x' was not found"));
}

proptest! {
    #[test]
    fn policy_never_panics(s in "\\PC{0,400}") {
        let _ = parse_policy(&s);
    }
}

proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,400}") {
        let _ = parse_simulation(&s);
        let _ = parse_simulation(&format!("Inst {s}"));
        let _ = parse_simulation(&format!("{s} not upgraded."));
        let _ = update_failures(&s, &s);
    }

    #[test]
    fn well_formed_lines_round_trip(
        name in "[a-z0-9][a-z0-9.+-]{0,20}",
        old in proptest::option::of("[0-9][0-9a-z.+~-]{0,12}"),
        new in "[0-9][0-9a-z.+~-]{0,12}",
        origins in proptest::collection::vec(("[A-Za-z-]{1,10}", "[0-9.]{1,5}", "[a-z]{1,8}(-security|-updates)?"), 1..3),
        arch in "(amd64|all|arm64)",
    ) {
        let origins: Vec<String> = origins.iter().map(|(l, v, a)| format!("{l}:{v}/{a}")).collect();
        let line = match &old {
            Some(o) => format!("Inst {name} [{o}] ({new} {} [{arch}])", origins.join(", ")),
            None => format!("Inst {name} ({new} {} [{arch}])", origins.join(", ")),
        };
        let sim = parse_simulation(&line);
        prop_assert_eq!(sim.updates.len(), 1, "{}", line);
        let u = &sim.updates[0];
        prop_assert_eq!(&u.name, &name);
        prop_assert_eq!(&u.current_version, &old);
        prop_assert_eq!(&u.candidate_version, &new);
        prop_assert_eq!(&u.arch, &arch);
        prop_assert_eq!(&u.origins, &origins);
        prop_assert_eq!(u.security, origins.iter().any(|o| o.ends_with("-security")));
    }
}
