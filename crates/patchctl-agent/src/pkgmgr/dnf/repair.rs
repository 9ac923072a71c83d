//! Repairing what a killed dnf or rpm transaction leaves, before the next install.
//!
//! An rpm transaction that is killed (the agent, dnf or the machine) between adding
//! the new headers and erasing the old ones leaves **duplicates**: the old and the new
//! version of a package both in the rpm database (`dnf check --duplicates` lists them),
//! and dnf then refuses or misplans the next upgrade. Packages that are meant to be
//! installed several times (kernels, `gpg-pubkey`: dnf's `installonlypkgs`) are not
//! duplicates. The repair is dnf's own `dnf -y remove --duplicates`, which reinstalls
//! the newest version of each (so that its files are whole) and removes the older
//! ones. yum 3 has no such command (yum-utils' `package-cleanup --cleandupes` is not a
//! program the agent may run): there the install is refused with that instruction.
//!
//! A database rpm cannot open at all (`rpmdb open failed`, `DB_RUNRECOVERY`, a
//! verification failure of `Packages`) is rebuilt first with `rpm --rebuilddb`.
//!
//! rpm's and dnf's locks need no repair: rpm's transaction lock is a `fcntl` lock that
//! dies with its process, and dnf checks that the process named in its pid lock file
//! still runs. Each repair leaves an audit line, as apt's `dpkg --configure -a` does.

use std::collections::BTreeMap;
use std::time::Duration;

use patchctl_proto::agent::InstalledPackage;

use super::DnfOptions;
use crate::exec::{ExecRequest, Executor};
use crate::inventory::rpm;
use crate::pkgmgr::PkgError;

/// Names rpm may hold in several versions at once (dnf's default `installonlypkgs`,
/// and the imported signing keys).
const INSTALL_ONLY: &[&str] = &[
    "gpg-pubkey",
    "kernel",
    "kernel-PAE",
    "kernel-core",
    "kernel-debug",
    "kernel-debug-core",
    "kernel-debug-modules",
    "kernel-devel",
    "kernel-modules",
    "kernel-modules-core",
    "kernel-modules-extra",
    "kernel-rt",
    "kernel-rt-core",
    "kernel-rt-modules",
    "kernel-64k",
    "kernel-64k-core",
    "kernel-64k-modules",
    "kernel-uek",
    "kernel-uek-core",
    "kernel-uek-modules",
    "kernel-smp",
];

/// The packages installed in more than one version (`NAME.ARCH (V1, V2)`), leaving out
/// those meant to be (kernels, keys); sorted.
pub fn duplicates(installed: &[InstalledPackage]) -> Vec<String> {
    let mut by: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for p in installed {
        if INSTALL_ONLY.contains(&p.name.as_str()) || p.name.starts_with("kmod-") {
            continue;
        }
        by.entry((&p.name, &p.arch)).or_default().push(&p.version);
    }
    by.into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|((n, a), v)| format!("{n}.{a} ({})", v.join(", ")))
        .collect()
}

/// The duplicate repair: `dnf -y remove --duplicates` (with the common options).
pub fn remove_duplicates_argv(o: &DnfOptions) -> Vec<String> {
    let mut argv = o.base();
    argv.extend(["-y", "remove", "--duplicates"].map(str::to_owned));
    argv
}

/// `rpm --rebuilddb` of the system worked on.
pub fn rebuilddb_argv(o: &DnfOptions) -> Vec<String> {
    vec![
        rpm::RPM_PATH.to_owned(),
        format!("--root={}", o.root().display()),
        "--rebuilddb".into(),
    ]
}

/// True when rpm's message says that its database cannot be opened or read (as
/// opposed to rpm missing, or a query that timed out).
pub fn rpmdb_unreadable(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "rpmdb open failed",
        "db_runrecovery",
        "cannot open packages",
        "error: db",
        "rpmdbnextiterator",
        "verification failed",
        "database disk image is malformed",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

async fn run_ok(exec: &dyn Executor, argv: &[String], what: &str) -> Result<(), PkgError> {
    let o = exec
        .run(ExecRequest::from_argv(argv).with_timeout(Duration::from_secs(1800)))
        .await?;
    if o.success() {
        Ok(())
    } else {
        Err(PkgError::failed(what, o.code, &o.stdout, &o.stderr))
    }
}

/// Repairs the system `o` names; what was done, `None` when nothing was needed.
pub async fn repair(o: &DnfOptions, exec: &dyn Executor) -> Result<Option<String>, PkgError> {
    let mut done = Vec::new();
    let installed = match rpm::inventory(exec, o.root()).await {
        Ok(p) => p,
        Err(e) if rpmdb_unreadable(&e.to_string()) => {
            tracing::warn!(target: "audit", root = %o.root().display(), error = %e, "the rpm database cannot be read; running rpm --rebuilddb");
            run_ok(exec, &rebuilddb_argv(o), "rpm --rebuilddb").await?;
            done.push("rebuilt an unreadable rpm database (rpm --rebuilddb)".to_owned());
            rpm::inventory(exec, o.root()).await?
        }
        Err(e) => return Err(e.into()),
    };
    let dups = duplicates(&installed);
    if !dups.is_empty() && o.yum {
        tracing::warn!(target: "audit", duplicates = ?dups, "packages left in two versions by an interrupted transaction; yum cannot repair it here");
        return Err(PkgError::Refused(format!(
            "packages are installed in two versions (an interrupted transaction): {}; run `package-cleanup --cleandupes` (yum-utils) on the host, then queue the install again",
            dups.join(", ")
        )));
    }
    if !dups.is_empty() {
        let what = "dnf remove --duplicates";
        tracing::warn!(target: "audit", duplicates = ?dups, "packages left in two versions by an interrupted transaction; running {what}");
        run_ok(exec, &remove_duplicates_argv(o), what).await?;
        let left = duplicates(&rpm::inventory(exec, o.root()).await?);
        if !left.is_empty() {
            return Err(PkgError::Refused(format!(
                "{what} left packages in two versions: {}; remove the older ones by hand (rpm -e --justdb --nodeps NAME-OLDVERSION)",
                left.join(", ")
            )));
        }
        done.push(format!(
            "removed the older versions of packages an interrupted transaction left installed twice ({what}: {})",
            dups.join(", ")
        ));
    }
    Ok((!done.is_empty()).then(|| done.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str, arch: &str) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            source_name: None,
            source_version: None,
            status: "installed".into(),
        }
    }

    #[test]
    fn duplicates_are_two_versions_of_one_name_and_arch_but_not_kernels_or_keys() {
        let installed = [
            pkg("bash", "5.1.8-6.el9", "x86_64"),
            pkg("openssl-libs", "1:3.0.7-24.el9", "x86_64"),
            pkg("openssl-libs", "1:3.0.7-27.el9", "x86_64"),
            // Multilib: one version per arch is not a duplicate.
            pkg("glibc", "2.34-100.el9", "x86_64"),
            pkg("glibc", "2.34-100.el9", "i686"),
            pkg("kernel-core", "5.14.0-427.el9", "x86_64"),
            pkg("kernel-core", "5.14.0-503.el9", "x86_64"),
            pkg("gpg-pubkey", "fd431d51-4ae0493b", "(none)"),
            pkg("gpg-pubkey", "5a6340b3-6229229e", "(none)"),
            pkg("kmod-nvidia", "550-1", "x86_64"),
            pkg("kmod-nvidia", "555-1", "x86_64"),
        ];
        assert_eq!(
            duplicates(&installed),
            ["openssl-libs.x86_64 (1:3.0.7-24.el9, 1:3.0.7-27.el9)"]
        );
        assert!(duplicates(&installed[..1]).is_empty());
    }

    #[test]
    fn the_repair_commands() {
        let o = DnfOptions {
            installroot: Some("/srv/root".into()),
            ..DnfOptions::default()
        };
        assert_eq!(
            remove_duplicates_argv(&o),
            [
                "/usr/bin/dnf",
                "--installroot=/srv/root",
                "-y",
                "remove",
                "--duplicates"
            ]
        );
        assert_eq!(
            rebuilddb_argv(&o),
            ["/usr/bin/rpm", "--root=/srv/root", "--rebuilddb"]
        );
    }

    #[test]
    fn an_unreadable_rpm_database_is_told_from_other_failures() {
        for broken in [
            "error: rpmdb: BDB0113 Thread/process 2323/140 failed: BDB1507 Thread died in Berkeley DB library\nerror: db5 error(-30973) from dbenv->failchk: BDB0087 DB_RUNRECOVERY: Fatal error, run database recovery\nerror: cannot open Packages index using db5",
            "error: rpmdb open failed",
            "error: sqlite failure: database disk image is malformed",
        ] {
            assert!(rpmdb_unreadable(broken), "{broken}");
        }
        for other in [
            "refusing to run \"/usr/bin/rpm\": not an allowed program",
            "rpm -qa failed (exit none): timed out",
        ] {
            assert!(!rpmdb_unreadable(other), "{other}");
        }
    }
}
