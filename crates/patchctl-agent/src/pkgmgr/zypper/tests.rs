//! Unit tests of the zypper backend: golden argument vectors, the parsers on fixtures under
//! `tests/data/zypper/` and generated input, and the backend's steps through a scripted
//! executor.

use super::*;
use crate::pkgmgr::Change;
use proptest::prelude::*;

macro_rules! fixture {
    ($f:literal) => {
        include_str!(concat!("../../../tests/data/zypper/", $f))
    };
}

fn target(n: &str, v: &str) -> PackageTarget {
    PackageTarget {
        name: PackageName::parse(n).unwrap(),
        version: patchctl_proto::validate::PackageVersion::parse(v).unwrap(),
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn test_opts() -> ZypperOptions {
    ZypperOptions {
        root: Some(PathBuf::from("/tmp/r")),
        lock_timeout_secs: 5,
    }
}

#[test]
fn golden_argv() {
    let o = ZypperOptions::default();
    let z = |rest: &[&str]| {
        let mut v = s(&["/usr/bin/zypper", "--non-interactive"]);
        v.extend(s(rest));
        v
    };
    assert_eq!(refresh_argv(&o), z(&["refresh"]));
    assert_eq!(
        list_updates_argv(&o),
        z(&["--xmlout", "--no-refresh", "list-updates"])
    );
    assert_eq!(
        list_patches_argv(&o),
        z(&["--xmlout", "--no-refresh", "list-patches"])
    );
    assert_eq!(
        patch_info_argv(&o, &s(&["openSUSE-SLE-15.6-2024-1", "PCTEST-SU-2024:0001"])),
        z(&[
            "--xmlout",
            "--no-refresh",
            "info",
            "-t",
            "patch",
            "--",
            "openSUSE-SLE-15.6-2024-1",
            "PCTEST-SU-2024:0001"
        ])
    );
    assert_eq!(
        package_info_argv(&o, &PackageName::parse("libopenssl3").unwrap()),
        z(&[
            "--xmlout",
            "--no-refresh",
            "info",
            "-t",
            "package",
            "--",
            "libopenssl3"
        ])
    );
    assert_eq!(
        full_update_simulate_argv(&o),
        z(&[
            "--xmlout",
            "--no-refresh",
            "update",
            "--dry-run",
            "--no-recommends"
        ])
    );
    let t = [
        target("libopenssl3", "3.1.4-150600.5.15.1"),
        target("kernel-default", "1:6.4.0-150600.23.25.1"),
    ];
    assert_eq!(
        simulate_argv(&o, &t),
        z(&[
            "--xmlout",
            "--no-refresh",
            "update",
            "--dry-run",
            "--no-recommends",
            "--",
            "libopenssl3=3.1.4-150600.5.15.1",
            "kernel-default=1:6.4.0-150600.23.25.1"
        ])
    );
    assert_eq!(
        install_argv(&o, &t[..1]),
        z(&[
            "--no-refresh",
            "update",
            "--no-recommends",
            "--",
            "libopenssl3=3.1.4-150600.5.15.1"
        ])
    );
    assert_eq!(needs_rebooting_argv(&o), z(&["needs-rebooting"]));
    // A private root comes right after --non-interactive.
    let r = test_opts();
    assert_eq!(
        list_updates_argv(&r),
        s(&[
            "/usr/bin/zypper",
            "--non-interactive",
            "--root",
            "/tmp/r",
            "--xmlout",
            "--no-refresh",
            "list-updates"
        ])
    );
    assert_eq!(
        install_argv(&r, &t[..1])[..6],
        s(&[
            "/usr/bin/zypper",
            "--non-interactive",
            "--root",
            "/tmp/r",
            "--no-refresh",
            "update"
        ])
    );
    // `--root /` is left out.
    let slash = ZypperOptions {
        root: Some(PathBuf::from("/")),
        ..ZypperOptions::default()
    };
    assert_eq!(refresh_argv(&slash), refresh_argv(&o));
}

#[test]
fn requests_wait_for_the_lock_a_bounded_time() {
    let o = ZypperOptions::default();
    let t = [target("pc-sec", "1.1-1")];
    let req = install_request(&o, &t);
    assert_eq!(req.program, "/usr/bin/zypper");
    assert_eq!(req.args, install_argv(&o, &t)[1..]);
    assert_eq!(
        req.env,
        [("ZYPP_LOCK_TIMEOUT".to_string(), "300".to_string())]
    );
    assert_eq!(req.timeout, Duration::from_secs(300 + 1800));
    for (argv, work) in [
        (refresh_argv(&o), work::REFRESH),
        (list_updates_argv(&o), work::QUERY),
        (simulate_argv(&o, &t), work::QUERY),
        (needs_rebooting_argv(&o), work::QUERY),
    ] {
        let r = request(&o, &argv, work);
        assert_eq!(
            r.env,
            [("ZYPP_LOCK_TIMEOUT".to_string(), "300".to_string())]
        );
        assert_eq!(r.timeout, Duration::from_secs(300) + work);
        assert!(crate::exec::ALLOWED_ENV.contains(&LOCK_ENV));
    }
    let r = request(&test_opts(), &refresh_argv(&test_opts()), work::REFRESH);
    assert_eq!(r.env, [("ZYPP_LOCK_TIMEOUT".to_string(), "5".to_string())]);
}

fn upd(name: &str, arch: &str, edition: &str, old: &str) -> PackageUpdate {
    PackageUpdate {
        name: name.into(),
        arch: arch.into(),
        edition: edition.into(),
        edition_old: Some(old.into()),
        repository: Some("pctest".into()),
    }
}

#[test]
fn list_updates_fixture() {
    let lu = parse_list_updates(fixture!("list-updates.xml")).unwrap();
    assert!(lu.skipped.is_empty(), "{:?}", lu.skipped);
    let names: Vec<&str> = lu.updates.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["pc-dep", "pc-lib", "pc-new", "pc-sec", "pc-upd"]);
    assert_eq!(lu.updates[1], upd("pc-lib", "x86_64", "1.1-1", "1.0-1"));
    assert_eq!(lu.updates[3], upd("pc-sec", "noarch", "1.1-1", "1.0-1"));
    assert!(lu.messages.errors.is_empty());
    let none = parse_list_updates(fixture!("list-updates-none.xml")).unwrap();
    assert!(none.updates.is_empty() && none.skipped.is_empty());
    // Not zypper's XML, or XML without an update list: an error, never "no updates".
    assert!(parse_list_updates("").is_err());
    assert!(parse_list_updates("Loading repository data...").is_err());
    let locked = parse_list_updates(fixture!("locked.xml"))
        .unwrap_err()
        .to_string();
    assert!(locked.contains("System management is locked"), "{locked}");
    let cut = &fixture!("list-updates.xml")[..300];
    assert!(parse_list_updates(cut).is_err());
}

#[test]
fn list_updates_small_cases() {
    let wrap = |body: &str| {
        format!(
            "<?xml version='1.0'?>\n<stream>\n<update-status version=\"0.6\">\n<update-list>\n{body}</update-list>\n</update-status>\n</stream>\n"
        )
    };
    // zypper before 1.14: no edition-old; a URL but no alias; other kinds ignored.
    let lu = parse_list_updates(&wrap(
        "<update kind=\"package\" name=\"a\" edition=\"2:1.0-3.1\" arch=\"x86_64\"><source url=\"http://x/\"/></update>\
         <update kind=\"patch\" name=\"p\" edition=\"1\"/>\
         <update kind=\"package\" name=\"b\"/>",
    ))
    .unwrap();
    assert_eq!(
        lu.updates,
        [PackageUpdate {
            name: "a".into(),
            arch: "x86_64".into(),
            edition: "2:1.0-3.1".into(),
            edition_old: None,
            repository: Some("http://x/".into()),
        }]
    );
    assert_eq!(lu.skipped.len(), 1, "{:?}", lu.skipped);
    // Text before the XML (a warning on stdout) does not matter.
    let lu = parse_list_updates(&format!(
        "Warning: something\n{}",
        wrap("<update kind=\"package\" name=\"a\" edition=\"1-1\" arch=\"noarch\"/>")
    ))
    .unwrap();
    assert_eq!(lu.updates.len(), 1);
    // DTDs are refused by the parser (no entity expansion).
    assert!(
        parse_list_updates("<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a \"b\">]><stream/>")
            .is_err()
    );
}

#[test]
fn list_patches_fixture() {
    let lp = parse_list_patches(fixture!("list-patches.xml")).unwrap();
    assert!(lp.skipped.is_empty());
    assert_eq!(
        lp.patches,
        [
            Patch {
                name: "PCTEST-SU-2024:0001".into(),
                category: Some("security".into()),
                severity: Some("important".into()),
                status: Some("needed".into()),
                repository: Some("pctest".into()),
            },
            Patch {
                name: "PCTEST-RU-2024:0002".into(),
                category: Some("recommended".into()),
                severity: Some("moderate".into()),
                status: Some("needed".into()),
                repository: Some("pctest".into()),
            }
        ]
    );
    assert_eq!(lp.needed().count(), 2);
    // zypper 1.14.42 ignores --category in XML mode: the same two patches.
    let sec = parse_list_patches(fixture!("list-patches-category-security.xml")).unwrap();
    assert_eq!(sec, lp);
    let none = parse_list_patches(fixture!("list-patches-none.xml")).unwrap();
    assert!(none.patches.is_empty());
    let applied = parse_list_patches(
        "<stream><update-status><update-list><update kind=\"patch\" name=\"x\" status=\"applied\"/></update-list></update-status></stream>",
    )
    .unwrap();
    assert_eq!(applied.needed().count(), 0);
}

fn fix(name: &str, arch: Option<&str>, edition: &str) -> Fix {
    Fix {
        name: name.into(),
        arch: arch.map(Into::into),
        edition: edition.into(),
    }
}

#[test]
fn patch_info_fixture() {
    let pi = parse_patch_info(fixture!("info-patch.xml")).unwrap();
    assert!(pi.skipped.is_empty(), "{:?}", pi.skipped);
    assert_eq!(
        pi.patches,
        [
            PatchDetail {
                name: "PCTEST-SU-2024:0001".into(),
                category: Some("security".into()),
                severity: Some("important".into()),
                fixes: vec![
                    fix("pc-sec", None, "1.1-1"),
                    fix("pc-lib", Some("x86_64"), "1.1-1"),
                    fix("pc-lib", Some("noarch"), "1.1-1"),
                ],
            },
            PatchDetail {
                name: "PCTEST-RU-2024:0002".into(),
                category: Some("recommended".into()),
                severity: Some("moderate".into()),
                fixes: vec![fix("pc-upd", None, "1.1-1")],
            }
        ]
    );
}

#[test]
fn conflict_entries() {
    assert_eq!(
        parse_fix("libopenssl3.x86_64 < 3.1.4-150600.5.15.1"),
        Ok(Some(fix(
            "libopenssl3",
            Some("x86_64"),
            "3.1.4-150600.5.15.1"
        )))
    );
    assert_eq!(
        parse_fix("python311-3.11.x86_64 < 1:2-3"),
        Ok(Some(fix("python311-3.11", Some("x86_64"), "1:2-3")))
    );
    // A dot in the name that is not an arch stays in the name.
    assert_eq!(
        parse_fix("python3.11-foo < 1-1"),
        Ok(Some(fix("python3.11-foo", None, "1-1")))
    );
    assert_eq!(parse_fix("srcpackage:openssl-3 < 3.1.4-1"), Ok(None));
    assert_eq!(parse_fix("pc-lib.src < 1.1-1"), Ok(None));
    assert!(parse_fix("pc-lib").is_err());
    assert!(parse_fix("pc-lib > 1.1-1").is_err());
    assert!(parse_fix("pc-lib < 1.1-1 x").is_err());
    // A count that does not match the lines is noted, the entries kept.
    let xml = "<stream><message type=\"info\">Name        : P\nCategory    : security\nConflicts   : [3]\n    a &lt; 1-1\n    garbage\n</message></stream>";
    let pi = parse_patch_info(xml).unwrap();
    assert_eq!(pi.patches[0].fixes, [fix("a", None, "1-1")]);
    assert_eq!(pi.skipped.len(), 2, "{:?}", pi.skipped);
}

#[test]
fn package_info_fixtures() {
    let out = parse_package_info(fixture!("info-package-outdated.xml"))
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        PackageInfo {
            name: "pc-sec".into(),
            version: "1.1-1".into(),
            arch: Some("noarch".into()),
            repository: Some("pctest".into()),
            installed: true,
            status: Some("out-of-date (version 1.0-1 installed)".into()),
        }
    );
    assert!(out.out_of_date());
    let cur = parse_package_info(fixture!("info-package-current.xml"))
        .unwrap()
        .unwrap();
    assert_eq!((cur.version.as_str(), cur.out_of_date()), ("1.0-1", false));
    let new = parse_package_info(fixture!("info-package-not-installed.xml"))
        .unwrap()
        .unwrap();
    assert!(!new.installed && !new.out_of_date());
    assert_eq!(
        parse_package_info(fixture!("info-package-missing.xml")).unwrap(),
        None
    );
    let m = parse_messages(fixture!("info-package-missing.xml")).unwrap();
    assert!(
        m.info.iter().any(|i| i == "package 'pc-nosuch' not found."),
        "{m:?}"
    );
}

fn change(name: &str, from: Option<&str>, to: Option<&str>) -> Change {
    Change {
        name: name.into(),
        from: from.map(Into::into),
        to: to.map(Into::into),
    }
}

#[test]
fn plan_fixtures() {
    let p = parse_plan(fixture!("simulate-upgrade.xml")).unwrap();
    assert!(p.summary && p.skipped.is_empty() && p.messages.errors.is_empty());
    assert_eq!(
        p.transaction().changes,
        [
            change("pc-lib", Some("1.0-1"), Some("1.1-1")),
            change("pc-sec", Some("1.0-1"), Some("1.1-1"))
        ]
    );
    assert_eq!(p.changes[0].arch, "x86_64");
    let p = parse_plan(fixture!("simulate-remove.xml")).unwrap();
    assert_eq!(
        p.transaction().changes,
        [
            change("pc-new", Some("1.0-1"), Some("1.1-1")),
            change("pc-victim", Some("1.0-1"), None)
        ]
    );
    assert_eq!(p.removals(), ["pc-victim"]);
    let p = parse_plan(fixture!("simulate-new-dependency.xml")).unwrap();
    assert_eq!(
        p.transaction().changes,
        [
            change("pc-dep", Some("1.0-1"), Some("1.1-1")),
            change("pc-newdep", None, Some("1.0-1"))
        ]
    );
    let p = parse_plan(fixture!("simulate-downgrade.xml")).unwrap();
    assert_eq!(
        p.transaction().changes,
        [change("pc-down", Some("1.0-1"), Some("0.9-1"))]
    );
    // Nothing planned, and zypper said why.
    for (f, said) in [
        (fixture!("simulate-nothing-to-do.xml"), "Nothing to do."),
        (
            fixture!("simulate-not-installed.xml"),
            "Package 'pc-newdep=1.0-1' is not installed.",
        ),
        (
            fixture!("simulate-other-version.xml"),
            "has lower version than the installed one",
        ),
    ] {
        let p = parse_plan(f).unwrap();
        assert!(p.summary && p.changes.is_empty(), "{p:?}");
        assert!(
            p.messages.info.iter().any(|m| m.contains(said)),
            "{:?}",
            p.messages
        );
    }
    // Stopped before a summary: a dependency problem, a missing version, the lock.
    let p = parse_plan(fixture!("simulate-problem.xml")).unwrap();
    assert!(!p.summary);
    assert!(
        p.messages.errors[0].starts_with(
            "Problem: nothing provides pc-missing-capability needed by pc-broken-1.1-1.noarch"
        ),
        "{:?}",
        p.messages
    );
    let p = parse_plan(fixture!("simulate-no-provider.xml")).unwrap();
    assert_eq!(p.messages.errors, ["No provider of 'pc-sec=9.9-1' found."]);
    let p = parse_plan(fixture!("locked.xml")).unwrap();
    assert!(p.messages.errors[0].starts_with("System management is locked"));
}

#[test]
fn plan_small_cases() {
    let wrap = |body: &str| format!("<stream><install-summary>{body}</install-summary></stream>");
    let p = parse_plan(&wrap(
        "<to-upgrade><solvable type=\"product\" name=\"SLES\" edition=\"15.6-0\" edition-old=\"15.5-0\"/></to-upgrade>\
         <to-change-vendor><solvable type=\"package\" name=\"a\" edition=\"2-1\" edition-old=\"1-1\"/></to-change-vendor>\
         <to-upgrade><solvable type=\"package\" name=\"a\" edition=\"2-1\" edition-old=\"1-1\"/></to-upgrade>\
         <to-reinstall><solvable name=\"r\" edition=\"1-1\"/></to-reinstall>\
         <_unsupported><solvable name=\"a\" edition=\"2-1\"/></_unsupported>\
         <to-explode><solvable name=\"x\" edition=\"1\"/></to-explode>\
         <to-downgrade><solvable name=\"d\" edition=\"1-1\"/></to-downgrade>\
         <to-install><solvable name=\"n\"/></to-install>",
    ))
    .unwrap();
    assert_eq!(
        p.transaction().changes,
        [
            change("product:SLES", Some("15.5-0"), Some("15.6-0")),
            change("a", Some("1-1"), Some("2-1")),
            change("r", Some("1-1"), Some("1-1")),
        ]
    );
    assert_eq!(p.skipped.len(), 3, "{:?}", p.skipped);
    // Each skip is a refusal.
    assert_eq!(
        super::super::refusals(Family::Zypper, &p.transaction(), &[]).len(),
        6
    );
}

#[test]
fn the_gate_on_real_plans() {
    let gate = |f: &str, t: &[PackageTarget]| {
        super::super::refusals(Family::Zypper, &parse_plan(f).unwrap().transaction(), t)
    };
    let ok = [target("pc-sec", "1.1-1"), target("pc-lib", "1.1-1")];
    assert!(gate(fixture!("simulate-upgrade.xml"), &ok).is_empty());
    assert_eq!(
        gate(fixture!("simulate-upgrade.xml"), &ok[..1]),
        ["would install pc-lib 1.1-1, which was not approved"]
    );
    assert_eq!(
        gate(
            fixture!("simulate-remove.xml"),
            &[target("pc-new", "1.1-1")]
        ),
        ["would remove pc-victim"]
    );
    assert_eq!(
        gate(
            fixture!("simulate-new-dependency.xml"),
            &[target("pc-dep", "1.1-1")]
        ),
        ["would install pc-newdep 1.0-1, which was not approved"]
    );
    assert_eq!(
        gate(
            fixture!("simulate-downgrade.xml"),
            &[target("pc-down", "0.9-1")]
        ),
        ["would downgrade pc-down from 1.0-1 to 0.9-1"]
    );
}

#[test]
fn security_and_advisories_come_from_patches() {
    let lu = parse_list_updates(fixture!("list-updates.xml")).unwrap();
    let lp = parse_list_patches(fixture!("list-patches.xml")).unwrap();
    let pi = parse_patch_info(fixture!("info-patch.xml")).unwrap();
    let all = join(&lu.updates, &lp.patches, &pi.patches);
    let get = |n: &str| all.iter().find(|u| u.name == n).unwrap();
    let sec = get("pc-sec");
    assert!(sec.security);
    assert_eq!(
        sec.advisories,
        [Advisory {
            id: "PCTEST-SU-2024:0001".into(),
            kind: Some("security".into()),
            severity: Some("important".into()),
        }]
    );
    assert_eq!(sec.current_version.as_deref(), Some("1.0-1"));
    assert_eq!(sec.candidate_version, "1.1-1");
    assert_eq!(sec.origins, ["pctest"]);
    assert!(get("pc-lib").security, "the x86_64 entry of the patch");
    let normal = get("pc-upd");
    assert!(!normal.security);
    assert_eq!(normal.advisories[0].id, "PCTEST-RU-2024:0002");
    assert_eq!(normal.advisories[0].kind.as_deref(), Some("recommended"));
    for n in ["pc-new", "pc-dep"] {
        assert!(!get(n).security && get(n).advisories.is_empty(), "{n}");
    }
    // A fix for another arch, or above the candidate, does not count.
    let d = [PatchDetail {
        name: "S".into(),
        category: Some("security".into()),
        severity: None,
        fixes: vec![fix("a", Some("i586"), "1-1"), fix("b", None, "3-1")],
    }];
    let u = [
        upd("a", "x86_64", "2-1", "1-1"),
        upd("b", "noarch", "2-1", "1-1"),
    ];
    assert!(join(&u, &[], &d).iter().all(|x| !x.security));
    // The category of the listing wins, the detail's fills in.
    let u = [upd("b", "noarch", "3-1", "1-1")];
    assert!(join(&u, &[], &d)[0].security);
}

#[test]
fn lock_and_exit_codes() {
    assert!(is_locked(Some(7), "", ""));
    assert!(is_locked(None, "", fixture!("locked-install.txt")));
    assert!(is_locked(Some(1), fixture!("locked.xml"), ""));
    assert!(!is_locked(Some(0), fixture!("install.txt"), ""));
    let o = ExecOutput {
        code: Some(7),
        stdout: fixture!("locked.xml").into(),
        stderr: String::new(),
        truncated: false,
    };
    let m = locked_message(&o, 300);
    assert!(m.starts_with("zypper is locked by another process (System management is locked by the application with pid "), "{m}");
    assert!(m.contains("waited 300 s"), "{m}");
    assert!(query_ok(Some(0)) && query_ok(Some(106)) && !query_ok(Some(4)) && !query_ok(None));
    let o = ExecOutput {
        code: Some(4),
        stdout: fixture!("simulate-problem.xml").into(),
        stderr: String::new(),
        truncated: false,
    };
    let f = failure("zypper cannot plan the install:", &o).to_string();
    assert!(
        f.contains("zypper exit 4: a problem reported by libzypp"),
        "{f}"
    );
    assert!(f.contains("nothing provides pc-missing-capability"), "{f}");
    assert_eq!(fixture!("locked.xml.exit").trim(), "7");
    assert_eq!(fixture!("simulate-no-provider.xml.exit").trim(), "104");
    assert_eq!(fixture!("needs-rebooting-yes.txt.exit").trim(), "102");
    assert_eq!(fixture!("needs-rebooting-no.txt.exit").trim(), "0");
}

#[test]
fn patch_names() {
    for ok in [
        "openSUSE-SLE-15.6-2024-1234",
        "SUSE-SLE-Module-Basesystem-15-SP6-2024-1",
        "PCTEST-SU-2024:0001",
        "openSUSE-2024-1+a",
    ] {
        assert!(is_patch_name(ok), "{ok}");
    }
    for bad in ["", "-x", "a b", "a;b", "a/b", "$(x)"] {
        assert!(!is_patch_name(bad), "{bad}");
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,400}") {
        let _ = parse_list_updates(&s);
        let _ = parse_list_patches(&s);
        let _ = parse_patch_info(&s);
        let _ = parse_package_info(&s);
        let _ = parse_plan(&s);
        let _ = parse_messages(&s);
    }

    #[test]
    fn never_panics_on_xmlish(
        parts in proptest::collection::vec(prop::sample::select(vec![
            "<stream>", "</stream>", "<update-status>", "</update-status>", "<update-list>",
            "</update-list>", "<update kind=\"package\" name=\"a\" edition=\"1\">", "</update>",
            "<install-summary>", "</install-summary>", "<to-remove>", "</to-remove>",
            "<solvable name=\"x\" edition=\"1\"/>", "<message type=\"info\">", "</message>",
            "Name : x\n", "Conflicts : [2]\n", "    a &lt; 1\n", "Version : 1\n", "<prompt><description>",
            "</description></prompt>", "&amp;", "<", ">", "\n", "é",
        ]), 0..40)
    ) {
        let s: String = parts.concat();
        let _ = parse_list_updates(&s);
        let _ = parse_list_patches(&s);
        let _ = parse_patch_info(&s);
        let _ = parse_package_info(&s);
        let _ = parse_plan(&s);
    }

    #[test]
    fn list_updates_round_trip(
        rows in proptest::collection::vec((
            "[A-Za-z0-9][A-Za-z0-9._+-]{0,20}",
            "([0-9]{1,2}:)?[0-9][A-Za-z0-9.+~^]{0,8}-[0-9][A-Za-z0-9.+~^]{0,8}",
            proptest::option::of("[0-9][A-Za-z0-9.]{0,8}-[0-9]{1,3}"),
            prop::sample::select(vec!["x86_64", "noarch", "aarch64"]),
            "[A-Za-z0-9_&<>\"' -]{1,12}",
        ), 0..10)
    ) {
        let mut body = String::new();
        for (n, e, old, a, alias) in &rows {
            let old = old.as_ref().map(|o| format!(" edition-old=\"{o}\"")).unwrap_or_default();
            body.push_str(&format!(
                "<update kind=\"package\" name=\"{n}\" edition=\"{e}\" arch=\"{a}\"{old}><summary>s &amp; t</summary><source url=\"file:/r\" alias=\"{}\"/></update>",
                esc(alias)
            ));
        }
        let xml = format!("<?xml version='1.0'?>\n<stream>\n<message type=\"info\">Loading</message>\n<update-status version=\"0.6\">\n<update-list>\n{body}</update-list>\n</update-status>\n</stream>\n");
        let lu = parse_list_updates(&xml).unwrap();
        prop_assert!(lu.skipped.is_empty());
        prop_assert_eq!(lu.updates.len(), rows.len());
        for (u, (n, e, old, a, alias)) in lu.updates.iter().zip(&rows) {
            prop_assert_eq!(&u.name, n);
            prop_assert_eq!(&u.edition, e);
            prop_assert_eq!(&u.edition_old, old);
            prop_assert_eq!(&u.arch, a);
            let want = alias.trim();
            prop_assert_eq!(u.repository.as_deref(), Some(if want.is_empty() { "file:/r" } else { want }));
        }
    }

    #[test]
    fn plan_round_trip(
        rows in proptest::collection::vec((
            prop::sample::select(vec!["to-upgrade", "to-install", "to-remove", "to-downgrade"]),
            "[a-z][a-z0-9-]{0,10}",
            "[0-9]{1,3}\\.[0-9]{1,3}-[0-9]{1,2}",
            "[0-9]{1,3}\\.[0-9]{1,3}-[0-9]{1,2}",
        ), 0..8)
    ) {
        let mut body = String::new();
        let mut want: Vec<Change> = Vec::new();
        for (sec, n, e, old) in &rows {
            let (attrs, c) = match *sec {
                "to-install" => (String::new(), change(n, None, Some(e))),
                "to-remove" => (String::new(), change(n, Some(e), None)),
                _ => (format!(" edition-old=\"{old}\""), change(n, Some(old), Some(e))),
            };
            body.push_str(&format!("<{sec}>\n<solvable type=\"package\" name=\"{n}\" edition=\"{e}\" arch=\"noarch\"{attrs}/>\n</{sec}>\n"));
            if !want.contains(&c) {
                want.push(c);
            }
        }
        let xml = format!("<stream><install-summary packages-to-change=\"{}\">\n{body}</install-summary></stream>", rows.len());
        let p = parse_plan(&xml).unwrap();
        prop_assert!(p.skipped.is_empty());
        prop_assert_eq!(p.transaction().changes, want);
    }
}
