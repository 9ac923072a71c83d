//! Unit tests of the dnf backend: golden argument vectors, the parsers on fixtures under
//! `tests/data/dnf/` and generated input, and the backend's steps through a scripted
//! executor.

use super::*;
use crate::pkgmgr::Change;
use patchctl_proto::validate::PackageVersion;
use proptest::prelude::*;

macro_rules! fixture {
    ($f:literal) => {
        include_str!(concat!("../../../tests/data/dnf/", $f))
    };
}

fn target(n: &str, v: &str) -> PackageTarget {
    PackageTarget {
        name: PackageName::parse(n).unwrap(),
        version: PackageVersion::parse(v).unwrap(),
    }
}

fn pkg(name: &str, version: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.into(),
        version: version.into(),
        arch: "noarch".into(),
        source_name: None,
        source_version: None,
        status: "installed".into(),
    }
}

fn listed(name: &str, arch: &str, evr: &str, repo: &str) -> Listed {
    Listed {
        name: name.into(),
        arch: arch.into(),
        evr: evr.into(),
        repo: repo.into(),
    }
}

const LONG: &str = "pc-an-extremely-long-package-name-that-will-not-fit-into-the-columns-of-dnf";

/// The installroot of capture.sh before any install.
fn base_inventory() -> Vec<InstalledPackage> {
    [
        ("pc-sec", "1.0-1"),
        ("pc-upd", "1.0-1"),
        ("pc-new", "1.0-1"),
        ("pc-needs", "1.0-1"),
        (LONG, "1.0-1"),
        ("pc-down", "1.0-1"),
        ("pc-conf", "1.0-1"),
        ("pc-clash", "1.0-1"),
        ("pc-victim", "1.0-1"),
        ("pc-epoch", "1:2.0-1"),
    ]
    .iter()
    .map(|(n, v)| pkg(n, v))
    .collect()
}

#[test]
fn golden_argv_production_dnf() {
    let o = DnfOptions::default();
    assert_eq!(o.root(), Path::new("/"));
    assert_eq!(
        refresh_argvs(&o),
        [["/usr/bin/dnf", "-q", "makecache", "--refresh"]]
    );
    assert_eq!(
        check_update_argv(&o),
        ["/usr/bin/dnf", "-q", "check-update"]
    );
    assert_eq!(
        updateinfo_argv(&o, None),
        ["/usr/bin/dnf", "-q", "updateinfo", "list", "--updates"]
    );
    let name = PackageName::parse("openssl").unwrap();
    assert_eq!(
        updateinfo_argv(&o, Some(&name)),
        [
            "/usr/bin/dnf",
            "-q",
            "updateinfo",
            "list",
            "--updates",
            "--",
            "openssl"
        ]
    );
    assert_eq!(
        list_argv(&o, &name),
        ["/usr/bin/dnf", "-q", "list", "--", "openssl"]
    );
    let t = [
        target("openssl", "1:3.0.7-27.el9"),
        target("openssl-libs", "1:3.0.7-27.el9"),
    ];
    assert_eq!(
        simulate_argv(&o, &t),
        [
            "/usr/bin/dnf",
            "--assumeno",
            "--setopt=install_weak_deps=False",
            "upgrade",
            "--",
            "openssl-1:3.0.7-27.el9",
            "openssl-libs-1:3.0.7-27.el9"
        ]
    );
    assert_eq!(
        install_argv(&o, &t[..1]),
        [
            "/usr/bin/dnf",
            "-y",
            "--setopt=exit_on_lock=True",
            "--setopt=install_weak_deps=False",
            "upgrade",
            "--",
            "openssl-1:3.0.7-27.el9"
        ]
    );
    let req = install_request(&o, &t[..1]);
    assert_eq!(req.program, "/usr/bin/dnf");
    assert!(req.env.is_empty(), "dnf needs no extra environment");
    assert_eq!(req.timeout, Duration::from_secs(1800));
    assert_eq!(
        needs_restarting_argv(&o).unwrap(),
        ["/usr/bin/dnf", "-q", "needs-restarting", "-r"]
    );
    assert_eq!(
        kernel_query_argv(&o),
        [
            "/usr/bin/rpm",
            "-q",
            "--queryformat",
            "%{INSTALLTIME} %{VERSION}-%{RELEASE}.%{ARCH}\n",
            "--",
            "kernel-core",
            "kernel",
            "kernel-uek-core",
            "kernel-uek",
            "kernel-rt-core",
            "kernel-rt"
        ]
    );
    assert_eq!(
        o.rpm_lock_files(),
        [
            PathBuf::from("/var/lib/rpm/.rpm.lock"),
            PathBuf::from("/usr/lib/sysimage/rpm/.rpm.lock")
        ]
    );
    assert_eq!(
        o.lock_timeout,
        Duration::from_secs(super::super::LOCK_TIMEOUT_SECS)
    );
    assert_eq!(DnfBackend::new(o).family(), Family::Dnf);
}

#[test]
fn golden_argv_yum() {
    let o = DnfOptions::yum();
    assert_eq!(
        refresh_argvs(&o),
        [
            vec!["/usr/bin/yum", "-q", "clean", "expire-cache"],
            vec!["/usr/bin/yum", "-q", "makecache"]
        ]
    );
    assert_eq!(
        check_update_argv(&o),
        ["/usr/bin/yum", "-q", "check-update"]
    );
    assert_eq!(
        updateinfo_argv(&o, None),
        ["/usr/bin/yum", "-q", "updateinfo", "list", "updates"]
    );
    let t = [target("openssl", "1:1.0.2k-26.el7_9")];
    assert_eq!(
        simulate_argv(&o, &t),
        [
            "/usr/bin/yum",
            "--assumeno",
            "upgrade",
            "--",
            "openssl-1:1.0.2k-26.el7_9"
        ]
    );
    assert_eq!(
        install_argv(&o, &t),
        [
            "/usr/bin/yum",
            "-y",
            "--setopt=exit_on_lock=True",
            "upgrade",
            "--",
            "openssl-1:1.0.2k-26.el7_9"
        ]
    );
    assert_eq!(needs_restarting_argv(&o), None);
    assert_eq!(kernel_query_argv(&o)[1], "-q");
    assert_eq!(DnfBackend::new(o).family(), Family::Yum);
}

#[test]
fn golden_argv_installroot() {
    let o = DnfOptions {
        installroot: Some("/tmp/r".into()),
        config: Some("/tmp/dnf.conf".into()),
        releasever: Some("9".into()),
        setopt: vec![("reposdir".into(), "/tmp/repos.d".into())],
        rpm_locks: vec!["/tmp/r/root/.rpmdb/.rpm.lock".into()],
        ..DnfOptions::default()
    };
    assert_eq!(
        check_update_argv(&o),
        [
            "/usr/bin/dnf",
            "--installroot=/tmp/r",
            "--config=/tmp/dnf.conf",
            "--releasever=9",
            "--setopt=reposdir=/tmp/repos.d",
            "-q",
            "check-update"
        ]
    );
    assert_eq!(kernel_query_argv(&o)[1], "--root=/tmp/r");
    assert_eq!(
        o.rpm_lock_files(),
        [
            PathBuf::from("/tmp/r/var/lib/rpm/.rpm.lock"),
            PathBuf::from("/tmp/r/usr/lib/sysimage/rpm/.rpm.lock"),
            PathBuf::from("/tmp/r/root/.rpmdb/.rpm.lock")
        ]
    );
}

#[test]
fn check_update_real_output() {
    let cu = parse_check_update(fixture!("check-update.out"));
    assert!(cu.skipped.is_empty(), "{:?}", cu.skipped);
    let names: Vec<&str> = cu.updates.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            LONG, "pc-clash", "pc-conf", "pc-epoch", "pc-needs", "pc-new", "pc-sec", "pc-upd"
        ]
    );
    assert_eq!(
        cu.updates[3],
        listed("pc-epoch", "noarch", "2:1.5-1", "pctest-updates")
    );
    assert_eq!(
        cu.obsoletes,
        [(
            listed("pc-new", "noarch", "1.1-1", "pctest-updates"),
            listed("pc-victim", "noarch", "1.0-1", "@System")
        )]
    );
}

#[test]
fn check_update_wrapped_lines() {
    // yum 3 and narrow dnf columns: a field wider than its column ends the line.
    let out = "\nNetworkManager-libnm.x86_64\n                        1:1.18.8-2.el7_9              updates\n\
               kernel.x86_64          3.10.0-1160.119.1.el7\n                                 updates\n\
               openssl.x86_64         1:1.0.2k-26.el7_9       updates\n\
               Obsoleting Packages\n\
               grub2.x86_64           1:2.02-0.87.el7_9.14    updates\n    grub2-tools.x86_64\n                          1:2.02-0.86.el7    @updates\n";
    let cu = parse_check_update(out);
    assert!(cu.skipped.is_empty(), "{:?}", cu.skipped);
    assert_eq!(
        cu.updates,
        [
            listed(
                "NetworkManager-libnm",
                "x86_64",
                "1:1.18.8-2.el7_9",
                "updates"
            ),
            listed("kernel", "x86_64", "3.10.0-1160.119.1.el7", "updates"),
            listed("openssl", "x86_64", "1:1.0.2k-26.el7_9", "updates"),
        ]
    );
    assert_eq!(cu.obsoletes.len(), 1);
    assert_eq!(cu.obsoletes[0].1.name, "grub2-tools");
    assert_eq!(cu.obsoletes[0].1.evr, "1:2.02-0.86.el7");
    // Noise is recorded, not fatal.
    let cu = parse_check_update(
        "Last metadata expiration check: 0:00:01 ago on Sun.\nfoo.x86_64 1.0 repo\nbar.noarch\n",
    );
    assert!(cu.updates.is_empty());
    assert_eq!(cu.skipped.len(), 3, "{:?}", cu.skipped);
    assert_eq!(parse_check_update(""), CheckUpdate::default());
}

#[test]
fn updateinfo_real_output() {
    let al = parse_updateinfo_list(fixture!("updateinfo-list-updates.out"));
    assert!(al.skipped.is_empty(), "{:?}", al.skipped);
    assert_eq!(al.entries.len(), 7);
    let adv = |id: &str, kind: Option<&str>, sev: Option<&str>| Advisory {
        id: id.into(),
        kind: kind.map(Into::into),
        severity: sev.map(Into::into),
    };
    let e = &al.entries;
    assert_eq!(
        e[0].advisory,
        adv("PCTEST-2024:0003", Some("security"), Some("Moderate"))
    );
    assert_eq!((e[0].name.as_str(), e[0].evr.as_str()), (LONG, "1.1-1"));
    assert_eq!(
        e[1].advisory,
        adv("PCTEST-2024:0006", Some("security"), Some("Critical"))
    );
    assert_eq!(
        e[2].advisory,
        adv("PCTEST-2024:0004", Some("enhancement"), None)
    );
    assert_eq!(
        (e[2].name.as_str(), e[2].evr.as_str(), e[2].arch.as_str()),
        ("pc-epoch", "2:1.5-1", "noarch")
    );
    assert_eq!(
        e[3].advisory,
        adv("PCTEST-2024:0005", Some("security"), None),
        "Unknown/Sec."
    );
    assert_eq!(
        e[5].advisory,
        adv("PCTEST-2024:0001", Some("security"), Some("Important"))
    );
    assert_eq!(e[5].name, "pc-sec");
    assert_eq!(e[6].advisory, adv("PCTEST-2024:0002", Some("bugfix"), None));
    let one = parse_updateinfo_list(fixture!("updateinfo-list-updates-pc-sec.out"));
    assert_eq!(one.entries, [e[5].clone()]);
    // A real AlmaLinux line, yum 3's closing line, and garbage.
    let al = parse_updateinfo_list(
        "ALSA-2024:2447 Moderate/Sec.  openssl-libs-1:3.0.7-27.el9.x86_64\nupdateinfo list done\nRHBA-1 weird pkg-1-1.x86_64\nonly two\n",
    );
    assert_eq!(al.entries.len(), 1);
    assert_eq!(al.entries[0].name, "openssl-libs");
    assert_eq!(al.entries[0].evr, "1:3.0.7-27.el9");
    assert_eq!(al.entries[0].arch, "x86_64");
    assert_eq!(al.skipped.len(), 2, "{:?}", al.skipped);
}

#[test]
fn nevra() {
    assert_eq!(
        parse_nevra("openssl-libs-1:3.0.7-27.el9.x86_64"),
        Some(("openssl-libs", "1:3.0.7-27.el9", "x86_64"))
    );
    assert_eq!(
        parse_nevra("pc-sec-1.1-1.noarch"),
        Some(("pc-sec", "1.1-1", "noarch"))
    );
    assert_eq!(parse_nevra("foo.x86_64"), None);
    assert_eq!(parse_nevra("foo-1.x86_64"), None);
    assert_eq!(parse_nevra("-1-1.x86_64"), None);
    assert_eq!(parse_nevra("a-x:1-1.noarch"), None);
}

#[test]
fn updates_from_real_outputs() {
    let cu = parse_check_update(fixture!("check-update.out"));
    let al = parse_updateinfo_list(fixture!("updateinfo-list-updates.out"));
    let u = updates_report(&cu, &al, &base_inventory());
    assert!(u.skipped.is_empty());
    assert_eq!(u.updates.len(), 8, "pc-new once although it also obsoletes");
    let get = |n: &str| u.updates.iter().find(|x| x.name == n).unwrap();
    let sec = get("pc-sec");
    assert_eq!(sec.current_version.as_deref(), Some("1.0-1"));
    assert_eq!(sec.candidate_version, "1.1-1");
    assert_eq!(sec.origins, ["pctest-updates"]);
    assert!(sec.security);
    assert_eq!(sec.advisories.len(), 1);
    assert_eq!(sec.advisories[0].severity.as_deref(), Some("Important"));
    let upd = get("pc-upd");
    assert!(!upd.security, "a bugfix advisory is not a security one");
    assert_eq!(upd.advisories[0].kind.as_deref(), Some("bugfix"));
    let ep = get("pc-epoch");
    assert_eq!(ep.current_version.as_deref(), Some("1:2.0-1"));
    assert_eq!(ep.candidate_version, "2:1.5-1");
    assert!(ep.security, "Unknown/Sec. is still security");
    assert_eq!(ep.advisories.len(), 2);
    let new = get("pc-new");
    assert!(!new.security && new.advisories.is_empty());
    assert_eq!(u.removals, ["pc-victim"]);
}

#[test]
fn list_real_output() {
    let l = parse_list(fixture!("list-pc-sec.out"));
    assert!(l.skipped.is_empty());
    assert_eq!(
        l.installed,
        [listed("pc-sec", "noarch", "1.0-1", "@System")]
    );
    assert_eq!(
        l.available,
        [listed("pc-sec", "noarch", "1.1-1", "pctest-updates")]
    );
    let l = parse_list(fixture!("list-pc-epoch.out"));
    assert_eq!(l.installed[0].evr, "1:2.0-1");
    assert_eq!(l.available[0].evr, "2:1.5-1");
    let l = parse_list(fixture!("list-pc-dep.out"));
    assert!(l.installed.is_empty());
    assert_eq!(l.available.len(), 1);
    let l = parse_list(fixture!("list-pc-victim.out"));
    assert_eq!(l.installed.len(), 1);
    assert!(l.available.is_empty());
    assert_eq!(
        parse_list(fixture!("list-pc-nope.out")),
        PackageList::default()
    );
    // yum 3's name for upgrades.
    let l = parse_list(
        "Installed Packages\nbash.x86_64  4.2.46-34.el7  @base\nUpdated Packages\nbash.x86_64  4.2.46-35.el7_9  updates\n",
    );
    assert_eq!(l.available[0].evr, "4.2.46-35.el7_9");
}

fn plan(f: &str) -> Plan {
    parse_transaction(f)
}

fn item(action: Action, name: &str, evr: &str) -> PlanItem {
    PlanItem {
        action,
        name: name.into(),
        arch: "noarch".into(),
        evr: evr.into(),
        repo: "pctest-updates".into(),
    }
}

#[test]
fn transaction_real_outputs() {
    let p = plan(fixture!("simulate-upgrade.out"));
    assert_eq!(p.items, [item(Action::Upgrade, "pc-sec", "1.1-1")]);
    assert!(p.skipped.is_empty() && p.replaced.is_empty() && p.no_match.is_empty());
    let tx = p.transaction(&base_inventory());
    assert_eq!(
        tx.changes,
        [Change {
            name: "pc-sec".into(),
            from: Some("1.0-1".into()),
            to: Some("1.1-1".into())
        }]
    );
    assert!(super::super::refusals(Family::Dnf, &tx, &[target("pc-sec", "1.1-1")]).is_empty());

    let p = plan(fixture!("simulate-obsoletes.out"));
    assert_eq!(p.items, [item(Action::Upgrade, "pc-new", "1.1-1")]);
    assert_eq!(
        p.replaced,
        [Replaced {
            name: "pc-victim".into(),
            arch: "noarch".into(),
            evr: "1.0-1".into(),
            by: "pc-new".into()
        }]
    );
    let tx = p.transaction(&base_inventory());
    assert_eq!(
        super::super::refusals(Family::Dnf, &tx, &[target("pc-new", "1.1-1")]),
        ["would remove pc-victim"]
    );

    let p = plan(fixture!("simulate-epoch.out"));
    assert_eq!(p.items, [item(Action::Upgrade, "pc-epoch", "2:1.5-1")]);
    let tx = p.transaction(&base_inventory());
    assert_eq!(tx.changes[0].from.as_deref(), Some("1:2.0-1"));
    assert!(
        super::super::refusals(Family::Dnf, &tx, &[target("pc-epoch", "2:1.5-1")]).is_empty(),
        "the epoch makes 2:1.5 newer than 1:2.0"
    );

    let p = plan(fixture!("simulate-deps.out"));
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(
        p.items,
        [
            item(Action::Upgrade, LONG, "1.1-1"),
            item(Action::Upgrade, "pc-needs", "1.1-1"),
            item(Action::Install, "pc-dep", "1.0-1"),
            item(Action::Install, "pc-weak", "1.0-1"),
        ]
    );
    let tx = p.transaction(&base_inventory());
    assert_eq!(
        super::super::refusals(
            Family::Dnf,
            &tx,
            &[target("pc-needs", "1.1-1"), target(LONG, "1.1-1")]
        ),
        [
            "would install pc-dep 1.0-1, which was not approved",
            "would install pc-weak 1.0-1, which was not approved"
        ]
    );

    let p = plan(fixture!("simulate-conflicts-all.out"));
    assert_eq!(p.items.len(), 9);
    assert_eq!(p.items[8], item(Action::Skip, "pc-clash", "1.1-1"));
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(p.replaced.len(), 1);
    assert_eq!(
        p.replaced[0].by, "pc-new",
        "replacing belongs to the row above it"
    );
    assert_eq!(p.items[7], item(Action::Install, "pc-dep", "1.0-1"));

    let p = plan(fixture!("simulate-downgrade.out"));
    let tx = p.transaction(&base_inventory());
    assert_eq!(
        super::super::refusals(Family::Dnf, &tx, &[target("pc-down", "0.9-1")]),
        ["would downgrade pc-down from 1.0-1 to 0.9-1"]
    );
    let tx = p.transaction(&[]);
    assert_eq!(
        tx.skipped.len(),
        1,
        "a downgrade from an unknown version is refused"
    );

    let p = plan(fixture!("simulate-remove.out"));
    assert_eq!(p.items[0].action, Action::Remove);
    assert_eq!(p.items[0].repo, "@System");
    let tx = p.transaction(&base_inventory());
    assert_eq!(tx.changes[0].to, None);
}

fn with_err(name: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dnf/");
    let out = std::fs::read_to_string(format!("{dir}{name}.out")).unwrap();
    let err = std::fs::read_to_string(format!("{dir}{name}.err")).unwrap_or_default();
    format!("{out}\n{err}")
}

#[test]
fn targets_dnf_leaves_out() {
    let inv = base_inventory();
    let p = plan(&with_err("simulate-no-match"));
    assert_eq!(p.no_match, ["pc-upd-9.9-1"]);
    let why = p.missing_targets(
        "dnf",
        &[target("pc-sec", "1.1-1"), target("pc-upd", "9.9-1")],
        &inv,
    );
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].starts_with("pc-upd 9.9-1 is not available from the enabled repositories"),
        "{why:?}"
    );
    assert!(why[0].contains("installed: 1.0-1"), "{why:?}");

    let p = plan(&with_err("simulate-only-no-match"));
    assert_eq!(p.no_match, ["pc-sec-9.9-1"]);
    assert!(p.items.is_empty());

    let p = plan(&with_err("simulate-older"));
    assert!(p.nothing_to_do && p.items.is_empty());
    let why = p.missing_targets("dnf", &[target("pc-down", "0.9-1")], &inv);
    assert_eq!(
        why,
        [
            "dnf would not install pc-down 0.9-1 (installed: 1.0-1): only an available version newer than the installed one can be installed"
        ]
    );
    // Already at the target version: nothing to do, nothing refused.
    assert!(
        p.missing_targets("dnf", &[target("pc-down", "1.0-1")], &inv)
            .is_empty()
    );
    assert!(
        p.missing_targets("dnf", &[target("pc-down", "0:1.0-1")], &inv)
            .is_empty()
    );

    let p = plan(&with_err("simulate-skip-conflict"));
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(
        p.items,
        [
            item(Action::Upgrade, "pc-upd", "1.1-1"),
            item(Action::Skip, "pc-clash", "1.1-1")
        ]
    );
    let why = p.missing_targets(
        "dnf",
        &[target("pc-clash", "1.1-1"), target("pc-upd", "1.1-1")],
        &inv,
    );
    assert_eq!(why.len(), 1);
    assert!(
        why[0].starts_with("dnf would skip pc-clash 1.1-1: it conflicts"),
        "{why:?}"
    );
    assert_eq!(
        p.transaction(&inv).changes.len(),
        1,
        "skipped packages do not change"
    );

    let p = plan(&with_err("simulate-best-conflict"));
    assert_eq!(p, Plan::default());

    let p = plan(&with_err("simulate-upgrade"));
    assert!(
        p.missing_targets("dnf", &[target("pc-sec", "1.1-1")], &inv)
            .is_empty()
    );
    assert!(
        p.missing_targets("dnf", &[target("pc-sec", "0:1.1-1")], &inv)
            .is_empty()
    );
}

#[test]
fn transaction_wrapped_and_yum_layout() {
    // The yum 3 layout (its output.py: same columns, other section names), with a
    // name wider than its column wrapped the way fmtColumns wraps it.
    let out = "Resolving Dependencies\n\
Dependencies Resolved\n\
\n\
================================================================================\n \
Package                 Arch       Version                   Repository   Size\n\
================================================================================\n\
Updating:\n \
openssl                 x86_64     1:1.0.2k-26.el7_9         updates     494 k\n \
python-a-very-long-package-name-for-columns\n                         noarch     1.2-3.el7                 updates      12 k\n\
Installing for dependencies:\n \
libfoo                  x86_64     2.0-1.el7                 base         30 k\n\
Updating for dependencies:\n \
openssl-libs            x86_64     1:1.0.2k-26.el7_9         updates     1.2 M\n\
Removing for dependencies:\n \
oldthing                x86_64     0.1-1.el7                 @base        10 k\n\
\n\
Transaction Summary\n\
================================================================================\n\
Upgrade  3 Packages (+1 Dependent package)\n\
Exiting on user command\n";
    let p = plan(out);
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    let got: Vec<(Action, &str, &str, &str)> = p
        .items
        .iter()
        .map(|i| (i.action, i.name.as_str(), i.evr.as_str(), i.arch.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Action::Upgrade, "openssl", "1:1.0.2k-26.el7_9", "x86_64"),
            (
                Action::Upgrade,
                "python-a-very-long-package-name-for-columns",
                "1.2-3.el7",
                "noarch"
            ),
            (Action::Install, "libfoo", "2.0-1.el7", "x86_64"),
            (
                Action::Upgrade,
                "openssl-libs",
                "1:1.0.2k-26.el7_9",
                "x86_64"
            ),
            (Action::Remove, "oldthing", "0.1-1.el7", "x86_64"),
        ]
    );
    let p = plan("No package openssl-9.9-1.el7 available.\nError: Nothing to do\n");
    assert_eq!(p.no_match, ["openssl-9.9-1.el7"]);
}

#[test]
fn module_sections_and_garbage_are_refusals() {
    let out = "====\n Package Arch Version Repository Size\n====\n\
Upgrading:\n pc-sec noarch 1.1-1 pctest-updates 6.0 k\n\
Enabling module streams:\n nodejs                20\n\
Upgrading:\n garbage\n\
Transaction Summary\n";
    let p = plan(out);
    assert_eq!(p.items.len(), 1);
    assert_eq!(p.skipped.len(), 2, "{:?}", p.skipped);
    assert!(
        p.skipped[0].contains("Enabling module streams"),
        "{:?}",
        p.skipped
    );
    let tx = p.transaction(&[]);
    assert_eq!(
        super::super::refusals(Family::Dnf, &tx, &[target("pc-sec", "1.1-1")]).len(),
        2
    );
}

#[test]
fn locks() {
    let err = include_str!("../../../tests/data/dnf/install-locked.err");
    assert_eq!(lock_message(err), Some("RPMDB already locked by 4242"));
    assert_eq!(
        include_str!("../../../tests/data/dnf/install-locked.code").trim(),
        "200"
    );
    assert!(lock_message("Waiting for process with pid 77 to finish.").is_some());
    assert!(
        lock_message("Existing lock /var/run/yum.pid: another copy is running as pid 77.")
            .is_some()
    );
    assert_eq!(lock_message(fixture!("install.out")), None);
    assert_eq!(lock_message("metadata already locked by someone"), None);
}

#[test]
fn reboot_outputs() {
    let code = |s: &str| s.trim().parse::<i32>().ok();
    assert_eq!(
        parse_needs_restarting(
            code(fixture!("needs-restarting-required.code")),
            fixture!("needs-restarting-required.out")
        ),
        Some(true)
    );
    assert_eq!(
        parse_needs_restarting(
            code(fixture!("needs-restarting-not-necessary.code")),
            fixture!("needs-restarting-not-necessary.out")
        ),
        Some(false)
    );
    assert_eq!(
        parse_needs_restarting(
            code(fixture!("needs-restarting-no-plugin.code")),
            fixture!("needs-restarting-no-plugin.out")
        ),
        None
    );
    let newest = parse_kernel_query(fixture!("rpm-q-kernel.out"));
    assert_eq!(newest.as_deref(), Some("5.14.0-427.18.1.el9_4.noarch"));
    assert!(kernel_reboot_needed(
        newest.as_deref(),
        "5.14.0-427.13.1.el9_4.noarch\n"
    ));
    assert!(!kernel_reboot_needed(
        newest.as_deref(),
        "5.14.0-427.18.1.el9_4.noarch\n"
    ));
    assert!(!kernel_reboot_needed(None, "6.1.0-28-amd64"));
    assert_eq!(
        parse_kernel_query("package kernel is not installed\n"),
        None
    );
}

#[test]
fn labels() {
    assert_eq!(
        parse_label("Low/Sec."),
        Some((Some("security".into()), Some("Low".into())))
    );
    assert_eq!(
        parse_label("newpackage"),
        Some((Some("newpackage".into()), None))
    );
    assert_eq!(parse_label("/Sec."), None);
    assert_eq!(parse_label("Sec."), None);
}

proptest! {
    #[test]
    fn never_panics(s in "\\PC{0,400}") {
        let _ = parse_check_update(&s);
        let _ = parse_updateinfo_list(&s);
        let _ = parse_list(&s);
        let _ = parse_transaction(&s);
        let _ = parse_transaction(&format!("===\n===\nUpgrading:\n {s}\n     replacing {s}"));
        let _ = parse_kernel_query(&s);
        let _ = lock_message(&s);
        let _ = parse_nevra(&s);
    }

    #[test]
    fn table_rows_round_trip(
        rows in proptest::collection::vec((
            "[a-z][a-z0-9_+-]{0,30}",
            "(noarch|x86_64|i686)",
            proptest::option::of(1u32..40),
            "[0-9][0-9a-z.+~^]{0,8}",
            "[0-9][0-9a-z._]{0,8}",
            "[a-z][a-z0-9_-]{0,15}",
            any::<bool>(),
            any::<bool>(),
        ), 1..6),
    ) {
        // Each row printed the way dnf's fmtColumns prints it: one space in, fields
        // padded to 20 columns, or wrapped after the name when `wrap`.
        let mut out = String::from("Dependencies resolved.\n====\n Package Arch Version Repository Size\n====\nUpgrading:\n");
        let mut want = Vec::new();
        for (name, arch, epoch, v, r, repo, wrap, kib) in &rows {
            let evr = match epoch { Some(e) => format!("{e}:{v}-{r}"), None => format!("{v}-{r}") };
            let size = if *kib { "6.0 k" } else { "14" };
            if *wrap {
                out.push_str(&format!(" {name}\n{:22}{arch} {evr} {repo} {size}\n", ""));
            } else {
                out.push_str(&format!(" {name:<20} {arch:<8} {evr:<16} {repo:<16} {size}\n"));
            }
            want.push(PlanItem { action: Action::Upgrade, name: name.clone(), arch: arch.clone(), evr, repo: repo.clone() });
        }
        out.push_str("\nTransaction Summary\n====\n");
        let p = parse_transaction(&out);
        prop_assert!(p.skipped.is_empty(), "{:?}\n{}", p.skipped, out);
        prop_assert_eq!(p.items, want);
    }

    #[test]
    fn check_update_lines_round_trip(
        rows in proptest::collection::vec((
            "[a-zA-Z][a-zA-Z0-9_+-]{0,50}",
            "(noarch|x86_64|aarch64)",
            "([1-9][0-9]?:)?[0-9][0-9a-z.+~^]{0,10}-[0-9][0-9a-z._]{0,10}",
            "[a-z][a-z0-9_-]{0,20}",
            0usize..3,
        ), 0..6),
    ) {
        let mut out = String::from("\n");
        for (name, arch, evr, repo, wrap) in &rows {
            let na = format!("{name}.{arch}");
            match wrap {
                0 => out.push_str(&format!("{na:<40} {evr:<22} {repo}\n")),
                1 => out.push_str(&format!("{na}\n{:41}{evr:<22} {repo}\n", "")),
                _ => out.push_str(&format!("{na:<40} {evr}\n{:64}{repo}\n", "")),
            }
        }
        let cu = parse_check_update(&out);
        prop_assert!(cu.skipped.is_empty(), "{:?}", cu.skipped);
        let got: Vec<(String, String, String, String)> = cu.updates.into_iter().map(|l| (l.name, l.arch, l.evr, l.repo)).collect();
        let want: Vec<(String, String, String, String)> = rows.into_iter().map(|(n, a, e, r, _)| (n, a, e, r)).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn advisory_lines_round_trip(
        id in "[A-Z]{2,6}-20[0-9]{2}:[0-9]{4}",
        sev in proptest::option::of("(Critical|Important|Moderate|Low)"),
        name in "[a-z][a-z0-9_+-]{0,30}",
        evr in "([1-9]:)?[0-9][0-9a-z.+~^]{0,8}-[0-9][0-9a-z._]{0,8}",
        arch in "(noarch|x86_64)",
    ) {
        let label = match &sev { Some(s) => format!("{s}/Sec."), None => "bugfix".into() };
        let al = parse_updateinfo_list(&format!("{id} {label:<14} {name}-{evr}.{arch}\n"));
        prop_assert!(al.skipped.is_empty(), "{:?}", al.skipped);
        prop_assert_eq!(al.entries.len(), 1);
        let e = &al.entries[0];
        prop_assert_eq!(&e.advisory.id, &id);
        prop_assert_eq!(&e.advisory.severity, &sev);
        prop_assert_eq!(e.advisory.kind.as_deref(), Some(if sev.is_some() { "security" } else { "bugfix" }));
        prop_assert_eq!(&e.name, &name);
        prop_assert_eq!(&e.evr, &evr);
        prop_assert_eq!(&e.arch, &arch);
    }
}
