//! Unit tests of the pacman backend: golden argument vectors, the parsers on fixtures under
//! `tests/data/pacman/` and generated input, and the backend's steps through a scripted
//! executor.

use super::*;
use proptest::prelude::*;
use std::cmp::Ordering;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pacman");

fn target(n: &str, v: &str) -> PackageTarget {
    PackageTarget {
        name: PackageName::parse(n).unwrap(),
        version: patchctl_proto::validate::PackageVersion::parse(v).unwrap(),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn golden_argv() {
    let p = PacmanOptions::default();
    assert_eq!(p.root, Path::new("/"));
    assert_eq!(p.system_lock(), Path::new("/var/lib/pacman/db.lck"));
    assert_eq!(p.local_db(), Path::new("/var/lib/pacman/local"));
    assert_eq!(p.lock_timeout, Duration::from_secs(300));
    let d = ["--color", "never", "--dbpath", "/var/lib/patchctl/pacman"];
    let with = |head: &[&str], tail: &[&str]| {
        let mut v = vec![PACMAN];
        v.extend(head);
        v.extend(d);
        v.extend(tail);
        s(&v)
    };
    assert_eq!(
        refresh_argv(&p),
        with(&["-Sy", "--noprogressbar"], &["--logfile", "/dev/null"])
    );
    assert_eq!(updates_argv(&p), with(&["-Qu"], &[]));
    assert_eq!(
        info_argv(&p, &["openssl"]),
        with(&["-Si"], &["--", "openssl"])
    );
    let t = [
        target("openssl", "3.4.0-1"),
        target("linux", "6.12.1.arch1-1"),
    ];
    assert_eq!(
        print_argv(&p, &t),
        with(
            &["-S", "--print", "--print-format", "%n %v", "--needed"],
            &["--", "openssl", "linux"]
        )
    );
    assert_eq!(
        install_argv(&p, &t),
        with(
            &["-S", "--needed", "--noconfirm", "--noprogressbar"],
            &["--", "openssl", "linux"]
        )
    );
    let r = install_request(&p, &t);
    assert_eq!(r.program, PACMAN);
    assert!(r.env.is_empty(), "pacman needs no extra environment");
    assert_eq!(r.timeout, Duration::from_secs(1800));
    let r = refresh_request(&p);
    assert!(r.env.is_empty());
    assert_eq!(r.timeout, Duration::from_secs(600));
    // A test configuration and database.
    let o = PacmanOptions {
        root: "/tmp/r".into(),
        dbpath: "/tmp/d".into(),
        config: Some("/tmp/pacman.conf".into()),
        lock_timeout: Duration::from_secs(1),
    };
    assert_eq!(
        updates_argv(&o),
        s(&[
            PACMAN,
            "-Qu",
            "--color",
            "never",
            "--config",
            "/tmp/pacman.conf",
            "--dbpath",
            "/tmp/d"
        ])
    );
    assert_eq!(o.system_lock(), Path::new("/tmp/r/var/lib/pacman/db.lck"));
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(DATA).join(name)).unwrap()
}

#[test]
fn real_upgrades() {
    let u = parse_upgrades(&fixture("qu.txt"));
    assert!(u.skipped.is_empty());
    let lines: Vec<_> = u
        .upgrades
        .iter()
        .map(|u| format!("{} {} {} {}", u.name, u.installed, u.available, u.ignored))
        .collect();
    assert_eq!(
        lines,
        [
            "pc-new 1.0-1 1.1-1 false",
            "pc-sec 1.0-1 1.1-1 false",
            "pc-upd 1.0-1 1.1-1 false"
        ]
    );
    let u = parse_upgrades(&fixture("qu-ignored.txt"));
    assert_eq!(u.upgrades.len(), 3);
    assert!(u.upgrades[2].ignored && u.upgrades[2].name == "pc-upd");
    let u = parse_upgrades("foo 1 -> 2 [held]\nbar 1 2\n\nbaz 1:1-1 -> 1:2-1\n");
    assert_eq!(u.upgrades.len(), 1);
    assert_eq!(u.skipped.len(), 2);
}

#[test]
fn real_info() {
    let i = parse_info(&fixture("si.txt"));
    assert!(i.skipped.is_empty(), "{:?}", i.skipped);
    let got: Vec<_> = i
        .packages
        .iter()
        .map(|p| format!("{}/{} {}", p.repo, p.name, p.version))
        .collect();
    assert_eq!(
        got,
        [
            "pctest/pc-new 1.1-1",
            "pctest/pc-upd 1.1-1",
            "pcextra/pc-upd 1.2-1",
            "pctest/pc-needsdep 1.0-1",
            "pcextra/pc-extra 0.1.r12.gabcdef-3"
        ]
    );
    assert_eq!(i.packages[0].conflicts, ["pc-victim"]);
    assert_eq!(i.packages[0].replaces, ["pc-victim"]);
    assert_eq!(i.packages[0].arch, "any");
    assert!(i.packages[1].conflicts.is_empty());
    assert_eq!(i.packages[3].depends, ["pc-dep>=3", "pc-sec"]);
    // Wrapped lists (on a terminal), a bad block between good ones.
    let i = parse_info(
        "Repository      : core\nName            : a\nVersion         : 1-1\nConflicts With  : b  c\n                  d<2\n\nName : x\n\nRepository : extra\nName : e\nVersion : 2-1\nbogus\n\n  stray\n\nRepository:r\nName:n\nVersion:v\nName:n\n",
    );
    assert_eq!(i.packages.len(), 1);
    assert_eq!(i.packages[0].conflicts, ["b", "c", "d<2"]);
    assert_eq!(i.skipped.len(), 4, "{:?}", i.skipped);
}

#[test]
fn real_plan() {
    let p = parse_plan(&fixture("print-dep.txt"));
    assert!(p.skipped.is_empty());
    let got: Vec<_> = p
        .packages
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    assert_eq!(got, ["pc-dep 3.0-1", "pc-sec 1.1-1", "pc-needsdep 1.0-1"]);
    let p = parse_plan(" there is nothing to do\n\nweird line here\n");
    assert!(p.packages.is_empty());
    assert_eq!(p.skipped.len(), 1);
}

#[test]
fn locked_and_conflict_outputs() {
    assert!(is_locked(&fixture("install-locked.txt")));
    assert!(!is_locked(&fixture("install-conflict.txt")));
    assert!(!is_locked("error: target not found: pc-nope"));
}

fn lp(name: &str, version: &str, provides: &[&str], conflicts: &[&str]) -> LocalPackage {
    LocalPackage {
        name: name.into(),
        version: version.into(),
        arch: "any".into(),
        provides: s(provides),
        conflicts: s(conflicts),
        ..LocalPackage::default()
    }
}

fn sp(name: &str, version: &str, conflicts: &[&str], replaces: &[&str]) -> SyncPackage {
    SyncPackage {
        repo: "core".into(),
        name: name.into(),
        version: version.into(),
        conflicts: s(conflicts),
        replaces: s(replaces),
        ..SyncPackage::default()
    }
}

#[test]
fn dependency_strings() {
    assert!(dep_matches("foo", "foo", "1-1", &[]));
    assert!(dep_matches("foo<2", "foo", "1.9-1", &[]));
    assert!(!dep_matches("foo<2", "foo", "2.0-1", &[]));
    assert!(dep_matches("foo>=2", "foo", "2-1", &[]));
    assert!(
        dep_matches("foo=1.0", "foo", "1.0-3", &[]),
        "no pkgrel: any release"
    );
    assert!(!dep_matches("foo=1.0-2", "foo", "1.0-3", &[]));
    assert!(dep_matches("foo>1:0", "foo", "1:0.1-1", &[]));
    assert!(!dep_matches("bar", "foo", "1-1", &[]));
    assert!(dep_matches("sh", "bash", "5-1", &s(&["sh"])));
    assert!(dep_matches(
        "libx.so<2",
        "libx",
        "3-1",
        &s(&["libx.so=1-64"])
    ));
    assert!(
        !dep_matches("sh>1", "bash", "5-1", &s(&["sh"])),
        "an unversioned provision does not satisfy a versioned dependency"
    );
    assert!(!dep_matches("", "", "1", &[]));
}

#[test]
fn removals_from_conflicts_and_replaces() {
    let local = [
        lp("pc-new", "1.0-1", &[], &[]),
        lp("pc-victim", "1.0-1", &[], &[]),
        lp("old-sh", "1-1", &["sh"], &[]),
        lp("hater", "1-1", &[], &["pc-upd>=1.1"]),
        lp("pc-upd", "1.0-1", &[], &[]),
    ];
    let r = |incoming: &[SyncPackage]| -> Vec<String> {
        removals(&local, incoming)
            .into_iter()
            .map(|r| r.name)
            .collect()
    };
    assert_eq!(
        r(&[sp("pc-new", "1.1-1", &["pc-victim"], &["pc-victim"])]),
        ["pc-victim"]
    );
    assert_eq!(
        r(&[sp("pc-new", "1.1-1", &[], &["pc-victim"])]),
        ["pc-victim"]
    );
    assert_eq!(
        r(&[sp("pc-new", "1.1-1", &["pc-victim>1.0"], &[])]),
        Vec::<String>::new()
    );
    assert_eq!(r(&[sp("new-sh", "2-1", &["sh"], &[])]), ["old-sh"]);
    assert_eq!(r(&[sp("pc-upd", "1.1-1", &[], &[])]), ["hater"]);
    assert_eq!(
        r(&[sp("pc-upd", "1.0.9-1", &[], &[])]),
        Vec::<String>::new()
    );
    // Upgrading a package is not removing it, even if it "conflicts" with itself.
    assert_eq!(
        r(&[sp("pc-new", "1.1-1", &["pc-new"], &[])]),
        Vec::<String>::new()
    );
    // Replaces matches names only, not provisions.
    assert_eq!(r(&[sp("x", "1-1", &[], &["sh"])]), Vec::<String>::new());
}

#[test]
fn the_gate_on_real_outputs() {
    let local = local::read_local(&Path::new(DATA).join("local"))
        .unwrap()
        .packages;
    let info = parse_info(&fixture("si.txt"));
    let gate = |plan: &str, approved: &[PackageTarget]| {
        super::super::refusals(
            Family::Pacman,
            &plan_transaction(&parse_plan(plan), &info, &local),
            approved,
        )
    };
    assert_eq!(
        gate("pc-new 1.1-1\n", &[target("pc-new", "1.1-1")]),
        ["would remove pc-victim"]
    );
    assert!(gate("pc-upd 1.1-1\n", &[target("pc-upd", "1.1-1")]).is_empty());
    assert_eq!(
        gate("pc-upd 1.1-1\n", &[target("pc-upd", "1.2-1")]),
        ["would install pc-upd 1.1-1, which was not approved"]
    );
    // The real plan of pc-needsdep pulls pc-dep in and upgrades pc-sec: neither was
    // approved (and si.txt has no block for them, which is a reason of its own).
    let no_info = |p: &str| {
        format!(
            "could not read the package manager's plan: no repository information for {p}: cannot tell what it conflicts with"
        )
    };
    assert_eq!(
        gate(&fixture("print-dep.txt"), &[target("pc-needsdep", "1.0-1")]),
        [
            "would install pc-dep 3.0-1, which was not approved".to_string(),
            "would install pc-sec 1.1-1, which was not approved".to_string(),
            no_info("pc-dep 3.0-1"),
            no_info("pc-sec 1.1-1"),
        ]
    );
    assert_eq!(
        gate("pc-upd 0.9-1\n", &[target("pc-upd", "0.9-1")]),
        [
            "would downgrade pc-upd from 1.0-1 to 0.9-1".to_string(),
            no_info("pc-upd 0.9-1"),
        ]
    );
}

#[test]
fn pacman_version_order() {
    // Expected values from pacman 6.0.2's `vercmp` on this machine.
    for (a, b, want) in [
        ("1.0-1", "1.0-2", -1),
        ("1.0", "1.0-1", 0),
        ("1:1.0-1", "2.0-1", 1),
        ("1.0a-1", "1.0-1", -1),
        ("1.0.a", "1.0", 1),
        ("1.0_1", "1.0.1", 0),
        ("1.0", "1.0.0", -1),
        ("0.1.r12.gabcdef-3", "0.1-3", 1),
        ("2:1.0.3-2", "2:1.0.3-2.1", -1),
        ("1.0rc1", "1.0", -1),
        ("1.001", "1.1", 0),
        ("1..0", "1.0", 1),
        ("a", "b", -1),
        ("1.0-1", "1.0", 0),
        (":1-1", "1-1", 0),
        ("1-1", "0:1-1", 0),
        ("1.2.3-4", "1.2.3a-4", 1),
        ("20240101-1", "2024.01.01-1", 1),
    ] {
        let o = Family::Pacman.compare(a, b);
        let want = match want {
            -1 => Ordering::Less,
            0 => Ordering::Equal,
            _ => Ordering::Greater,
        };
        assert_eq!(o, Some(want), "{a} vs {b}");
    }
}

#[test]
fn reboot_from_modules() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("modules");
    assert!(
        !reboot_needed(&m, "6.12.1-arch1-1\n"),
        "no modules dir: cannot tell"
    );
    std::fs::create_dir_all(&m).unwrap();
    assert!(!reboot_needed(&m, "6.12.1-arch1-1\n"), "empty: cannot tell");
    std::fs::create_dir_all(m.join("6.12.2-arch1-1")).unwrap();
    assert!(reboot_needed(&m, "6.12.1-arch1-1\n"));
    std::fs::create_dir_all(m.join("6.12.1-arch1-1")).unwrap();
    assert!(!reboot_needed(&m, "6.12.1-arch1-1\n"));
    assert!(!reboot_needed(&m, ""));
}

#[test]
fn the_agents_database_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let o = PacmanOptions {
        root: tmp.path().join("root"),
        dbpath: tmp.path().join("agent/pacman"),
        config: None,
        lock_timeout: Duration::from_secs(1),
    };
    let b = PacmanBackend::new(o.clone());
    let err = b.prepare_dbpath().unwrap_err().to_string();
    assert!(err.contains("no pacman local database"), "{err}");
    std::fs::create_dir_all(o.local_db()).unwrap();
    let err = b.ready().unwrap_err().to_string();
    assert!(err.contains("is not a link"), "{err}");
    b.prepare_dbpath().unwrap();
    b.prepare_dbpath().unwrap();
    let link = o.dbpath.join("local");
    assert_eq!(std::fs::read_link(&link).unwrap(), o.local_db());
    let err = b.ready().unwrap_err().to_string();
    assert!(
        err.contains("sync database") && err.contains("is empty"),
        "{err}"
    );
    std::fs::write(o.dbpath.join("sync/core.db"), "").unwrap();
    b.ready().unwrap();
    // A wrong link is replaced; anything else is left alone and reported.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
    assert!(b.ready().is_err());
    b.prepare_dbpath().unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), o.local_db());
    std::fs::remove_file(&link).unwrap();
    std::fs::create_dir(&link).unwrap();
    let err = b.prepare_dbpath().unwrap_err().to_string();
    assert!(err.contains("is not a link"), "{err}");
    assert!(link.is_dir(), "never deleted");
}

#[tokio::test]
async fn the_system_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("db.lck");
    let a = SystemLock::try_take(&path).unwrap().expect("free");
    assert!(path.exists());
    assert!(SystemLock::try_take(&path).unwrap().is_none());
    let t = Instant::now();
    assert!(matches!(
        SystemLock::take(&path, Duration::from_millis(600)).await,
        Err(LockError::Busy)
    ));
    assert!(t.elapsed() >= Duration::from_millis(600));
    drop(a);
    assert!(!path.exists());
    let b = SystemLock::take(&path, Duration::from_secs(1))
        .await
        .unwrap();
    drop(b);
    assert!(!path.exists());
    // An interrupted install keeps it.
    SystemLock::try_take(&path).unwrap().unwrap().keep();
    assert!(path.exists());
    assert!(matches!(
        SystemLock::take(&tmp.path().join("missing/db.lck"), Duration::from_secs(1)).await,
        Err(LockError::Io(_))
    ));
}

proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,400}") {
        let _ = parse_upgrades(&s);
        let _ = parse_info(&s);
        let _ = parse_plan(&s);
        let _ = dep_matches(&s, "a", "1-1", std::slice::from_ref(&s));
    }

    #[test]
    fn upgrade_lines_round_trip(
        lines in proptest::collection::vec((
            "[a-z0-9@_+][a-z0-9@._+-]{0,20}",
            "([0-9]{1,2}:)?[0-9][0-9a-z.+_]{0,8}-[0-9]{1,2}",
            "([0-9]{1,2}:)?[0-9][0-9a-z.+_]{0,8}-[0-9]{1,2}",
            any::<bool>(),
        ), 0..8),
    ) {
        let text: String = lines
            .iter()
            .map(|(n, a, b, i)| format!("{n} {a} -> {b}{}\n", if *i { " [ignored]" } else { "" }))
            .collect();
        let u = parse_upgrades(&text);
        prop_assert!(u.skipped.is_empty());
        prop_assert_eq!(u.upgrades.len(), lines.len());
        for (got, (n, a, b, i)) in u.upgrades.iter().zip(&lines) {
            prop_assert_eq!(&got.name, n);
            prop_assert_eq!(&got.installed, a);
            prop_assert_eq!(&got.available, b);
            prop_assert_eq!(got.ignored, *i);
        }
    }

    #[test]
    fn info_blocks_round_trip(
        blocks in proptest::collection::vec((
            "[a-z]{1,8}",
            "[a-z0-9@_+][a-z0-9@._+-]{0,20}",
            "[0-9][0-9a-z.+_]{0,8}-[0-9]{1,2}",
            proptest::collection::vec("[a-z][a-z0-9.-]{0,10}((<|>|<=|>=|=)[0-9.]{1,5})?", 0..4),
        ), 0..5),
    ) {
        let text: String = blocks
            .iter()
            .map(|(r, n, v, c)| {
                let c = if c.is_empty() { "None".to_string() } else { c.join("  ") };
                format!("Repository      : {r}\nName            : {n}\nVersion         : {v}\nDescription     : some words: here\nConflicts With  : {c}\nReplaces        : None\n\n")
            })
            .collect();
        let i = parse_info(&text);
        prop_assert!(i.skipped.is_empty(), "{:?}", i.skipped);
        prop_assert_eq!(i.packages.len(), blocks.len());
        for (got, (r, n, v, c)) in i.packages.iter().zip(&blocks) {
            prop_assert_eq!(&got.repo, r);
            prop_assert_eq!(&got.name, n);
            prop_assert_eq!(&got.version, v);
            prop_assert_eq!(&got.conflicts, c);
            prop_assert!(got.replaces.is_empty());
        }
    }
}
