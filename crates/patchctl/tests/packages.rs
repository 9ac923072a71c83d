//! The agent's packages, built by `dist/package/build.sh` from the agent binary and
//! installed for real: the .deb with dpkg inside a copy of the cached Debian chroot
//! (install, upgrade, remove, purge), the .rpm with `rpm --root` into another copy
//! (install, upgrade, erase; its scriptlets run in that root with its /bin/sh),
//! `patchctl-agent uninstall` run inside a chroot on a .deb install and on a manual
//! one, the Alpine tarball's content and modes and its install.sh and uninstall with
//! OpenRC's real tools in a Debian chroot (no Alpine here to run it), the Arch
//! package built with makepkg (as `nobody`: makepkg refuses root) and installed,
//! upgraded and uninstalled with pacman in a chroot, `uninstall` of an .rpm inside a
//! chroot with its own rpm database, and the builder's refusals (a binary that trusts
//! the TEST release root, one for another machine, a version no family reads alike).
//!
//! The agent is this workspace's debug build, stripped, packaged with
//! `--allow-test-root` (a debug build trusts the test root; the flag exists for these
//! tests only). No systemd runs in a chroot: the maintainer scripts must say that they
//! started nothing, which is what they must do there.

// The tests run the builder, dpkg, rpm, chroot, makepkg and the binaries under test.
#![allow(clippy::disallowed_methods)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::chroot::{cached_chroot, run};
use common::packages::{build, builder, cached_chroot_with, repo, stripped_agent};
use patchctl_testkit::{Harness, Need, trial};

fn main() -> std::process::ExitCode {
    let chroot = [
        Need::Root,
        Need::Program("debootstrap"),
        Need::Program("dpkg-deb"),
        Need::Program("chroot"),
    ];
    let with = |extra: &[Need]| chroot.iter().chain(extra).copied().collect::<Vec<_>>();
    Harness::new()
        .test(trial!(deb_installs_upgrades_removes_and_purges).needs(chroot))
        .test(
            trial!(rpm_installs_upgrades_and_erases_under_rpm_root)
                .needs(with(&[Need::Program("rpm"), Need::Program("rpmbuild")])),
        )
        .test(trial!(uninstall_purges_a_deb_install).needs(chroot))
        .test(
            trial!(uninstall_purges_an_rpm_install)
                .needs(with(&[Need::Program("rpm"), Need::Program("rpmbuild")])),
        )
        .test(trial!(uninstall_purges_a_manual_install).needs([
            Need::Root,
            Need::Program("debootstrap"),
            Need::Program("chroot"),
        ]))
        .test(trial!(
            alpine_tarball_holds_the_binary_openrc_service_and_installer
        ))
        .test(trial!(alpine_installer_and_uninstall_with_real_openrc_tools).needs(chroot))
        .test(trial!(arch_package_builds_with_makepkg).needs([
            Need::Root,
            Need::Program("makepkg"),
            Need::Program("bsdtar"),
            Need::Program("fakeroot"),
            Need::Program("setpriv"),
        ]))
        .test(
            trial!(arch_package_installs_with_pacman_and_uninstalls).needs(with(&[
                Need::Program("makepkg"),
                Need::Program("bsdtar"),
                Need::Program("fakeroot"),
                Need::Program("setpriv"),
            ])),
        )
        .test(trial!(
            the_builder_refuses_a_binary_that_trusts_the_test_root
        ))
        .run()
}

/// The cached minimal chroot. The tests run in parallel; the first one creates it, the
/// others wait (two debootstraps into one directory fail).
fn base_chroot() -> &'static Path {
    static CACHED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CACHED.get_or_init(cached_chroot)
}

/// A private copy of the cached chroot, removed when the test ends.
struct Root {
    work: tempfile::TempDir,
}

impl Root {
    /// A copy of the cached minimal chroot.
    fn new() -> Root {
        Root::copy_of(base_chroot())
    }

    fn copy_of(cached: &Path) -> Root {
        let work = tempfile::Builder::new()
            .prefix("patchctl-packages-")
            .tempdir_in("/var/tmp")
            .unwrap();
        run(Command::new("cp")
            .arg("-a")
            .arg(cached)
            .arg(work.path().join("root")));
        Root { work }
    }

    fn path(&self) -> PathBuf {
        self.work.path().join("root")
    }

    /// `rel` (absolute inside the root) on the host.
    fn at(&self, rel: &str) -> PathBuf {
        self.path().join(rel.trim_start_matches('/'))
    }

    /// Copies `file` into the root's /tmp; its path inside the root.
    fn put(&self, file: &Path) -> String {
        let name = file.file_name().unwrap().to_str().unwrap();
        fs::copy(file, self.at("/tmp").join(name)).unwrap();
        format!("/tmp/{name}")
    }

    /// Runs `args` inside the root with chroot.
    fn chroot(&self, args: &[&str]) -> Output {
        Command::new("chroot")
            .arg(self.path())
            .args(args)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .unwrap()
    }

    /// Runs `args` inside the root and fails the test unless it succeeds; its stdout
    /// and stderr.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.chroot(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{args:?} in the chroot failed: {text}");
        text
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.at(rel)).is_ok()
    }

    /// Mode, owner and group of `rel`, which must exist.
    fn meta(&self, rel: &str) -> (u32, u32, u32) {
        let m = fs::symlink_metadata(self.at(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        (m.permissions().mode() & 0o7777, m.uid(), m.gid())
    }

    /// Writes the operator's config (0600) and some state, as an enrolled agent has.
    fn configure(&self) {
        let config = self.at("/etc/patchctl/config.json");
        fs::write(&config, CONFIG).unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(self.at("/var/lib/patchctl/outbox.json"), STATE).unwrap();
    }

    /// What an agent that ran and updated itself leaves beside its package's files.
    fn add_runtime_leftovers(&self) {
        fs::create_dir_all(self.at("/var/log/patchctl")).unwrap();
        fs::write(self.at("/var/log/patchctl/agent.log"), "log\n").unwrap();
        fs::write(self.at("/opt/patchctl/bin/patchctl-agent.previous"), "old").unwrap();
        fs::write(self.at("/opt/patchctl/bin/.patchctl-agent.staging"), "new").unwrap();
    }

    /// None of the agent's files is left.
    fn assert_nothing_left(&self) {
        for p in [
            "/etc/patchctl",
            "/var/lib/patchctl",
            "/var/log/patchctl",
            "/opt/patchctl",
            "/lib/systemd/system/patchctl.service",
            "/usr/lib/systemd/system/patchctl.service",
            "/etc/systemd/system/patchctl.service",
            "/etc/systemd/system/multi-user.target.wants/patchctl.service",
        ] {
            assert!(!self.exists(p), "{p} is left behind");
        }
    }
}

const CONFIG: &str =
    r#"{"server_url": "https://patchctl.invalid:8443", "license_key": "test-key"}"#;
const STATE: &str = "[]";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The package files, modes and owners every family's package installs, and no config.
fn assert_installed(root: &Root, unit: &str) {
    assert_eq!(root.meta("/opt/patchctl/bin/patchctl-agent"), (0o755, 0, 0));
    assert_eq!(root.meta("/etc/patchctl"), (0o700, 0, 0));
    assert_eq!(root.meta("/var/lib/patchctl"), (0o700, 0, 0));
    assert_eq!(root.meta(unit), (0o644, 0, 0));
    assert_eq!(
        fs::read_to_string(root.at(unit)).unwrap(),
        fs::read_to_string(repo().join("dist/patchctl.service")).unwrap()
    );
    assert!(
        !root.exists("/etc/patchctl/config.json"),
        "a package wrote a config"
    );
    assert!(
        !root.exists("/etc/systemd/system/multi-user.target.wants/patchctl.service"),
        "an unconfigured agent was enabled"
    );
    let version = root.ok(&["/opt/patchctl/bin/patchctl-agent", "version"]);
    assert!(version.starts_with("patchctl-agent "), "{version}");
}

/// After an upgrade: the config and the state exactly as they were.
fn assert_config_and_state_kept(root: &Root) {
    assert_eq!(
        fs::read_to_string(root.at("/etc/patchctl/config.json")).unwrap(),
        CONFIG
    );
    assert_eq!(root.meta("/etc/patchctl/config.json"), (0o600, 0, 0));
    assert_eq!(root.meta("/etc/patchctl"), (0o700, 0, 0));
    assert_eq!(
        fs::read_to_string(root.at("/var/lib/patchctl/outbox.json")).unwrap(),
        STATE
    );
}

fn dpkg_version(root: &Root) -> String {
    let o = root.chroot(&[
        "dpkg-query",
        "-W",
        "-f",
        "${Status} ${Version}",
        "patchctl-agent",
    ]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn deb_installs_upgrades_removes_and_purges() {
    let root = Root::new();
    let out = root.work.path().join("out");
    let agent = stripped_agent(root.work.path());
    let old = build(&agent, "1.0.0", "deb", &out).remove(0);
    let new = build(&agent, "1.0.1", "deb", &out).remove(0);
    assert!(old.ends_with("patchctl-agent_1.0.0_amd64.deb"), "{old:?}");

    // Install: files and modes, no config, nothing started, and it says why.
    let said = root.ok(&["dpkg", "-i", &root.put(&old)]);
    assert!(
        said.contains("installed, not started: /etc/patchctl/config.json does not exist"),
        "{said}"
    );
    assert_installed(&root, "/lib/systemd/system/patchctl.service");
    assert_eq!(dpkg_version(&root), "install ok installed 1.0.0");

    // Upgrade: the operator's config and the agent's state stay as they are.
    root.configure();
    let said = root.ok(&["dpkg", "-i", &root.put(&new)]);
    assert!(
        said.contains("upgraded; systemd is not running here, so nothing was restarted"),
        "{said}"
    );
    assert_eq!(dpkg_version(&root), "install ok installed 1.0.1");
    assert_config_and_state_kept(&root);

    // Remove: the binary and the unit go, the self-update's leftovers too; config,
    // state and logs stay.
    root.add_runtime_leftovers();
    root.ok(&["dpkg", "--remove", "patchctl-agent"]);
    assert!(!root.exists("/opt/patchctl"), "/opt/patchctl is left");
    assert!(!root.exists("/lib/systemd/system/patchctl.service"));
    assert_config_and_state_kept(&root);
    assert!(root.exists("/var/log/patchctl/agent.log"));
    assert_eq!(dpkg_version(&root), "deinstall ok config-files 1.0.1");

    // Purge: nothing is left.
    root.ok(&["dpkg", "--purge", "patchctl-agent"]);
    root.assert_nothing_left();
    assert_eq!(dpkg_version(&root), "");
}

/// rpm inside `root`, with the database where RHEL, Fedora and SUSE keep it (Debian's
/// own rpm defaults to ~/.rpmdb).
fn rpm(root: &Root, args: &[&str]) -> String {
    let o = Command::new("rpm")
        .arg("--root")
        .arg(root.path())
        .args(["--dbpath", "/var/lib/rpm"])
        .args(args)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "rpm {args:?} failed: {t}");
    t
}

fn rpm_installs_upgrades_and_erases_under_rpm_root() {
    let root = Root::new();
    let out = root.work.path().join("out");
    let agent = stripped_agent(root.work.path());
    let old = build(&agent, "1.0.0", "rpm", &out).remove(0);
    let new = build(&agent, "1.0.1", "rpm", &out).remove(0);
    assert!(
        old.ends_with("patchctl-agent-1.0.0-1.x86_64.rpm"),
        "{old:?}"
    );
    rpm(&root, &["--initdb"]);

    // --nodeps: the chroot's glibc is dpkg's, unknown to this rpm database.
    let said = rpm(&root, &["-U", "--nodeps", old.to_str().unwrap()]);
    assert!(
        said.contains("installed, not started: /etc/patchctl/config.json does not exist"),
        "{said}"
    );
    assert_installed(&root, "/usr/lib/systemd/system/patchctl.service");
    assert_eq!(
        rpm(&root, &["-q", "patchctl-agent"]).trim(),
        "patchctl-agent-1.0.0-1.x86_64"
    );

    root.configure();
    let said = rpm(&root, &["-U", "--nodeps", new.to_str().unwrap()]);
    assert!(
        said.contains("upgraded; systemd is not running here, so nothing was restarted"),
        "{said}"
    );
    assert_eq!(
        rpm(&root, &["-q", "patchctl-agent"]).trim(),
        "patchctl-agent-1.0.1-1.x86_64"
    );
    assert_config_and_state_kept(&root);
    assert_eq!(root.meta("/opt/patchctl/bin/patchctl-agent"), (0o755, 0, 0));

    // Erase: rpm has no purge. The binary, the unit and the self-update's leftovers go;
    // the config, the state and the logs stay (docs/install.md says so, and
    // `patchctl-agent uninstall --purge` removes them).
    root.add_runtime_leftovers();
    rpm(&root, &["-e", "patchctl-agent"]);
    assert!(!root.exists("/opt/patchctl"), "/opt/patchctl is left");
    assert!(!root.exists("/usr/lib/systemd/system/patchctl.service"));
    assert_config_and_state_kept(&root);
    assert!(root.exists("/var/log/patchctl/agent.log"));
}

/// The .rpm installed inside a chroot that has rpm (its own database), then removed
/// by `patchctl-agent uninstall --purge --yes`: `rpm -e`, then what rpm leaves.
fn uninstall_purges_an_rpm_install() {
    let root = Root::copy_of(&cached_chroot_with(
        base_chroot(),
        "rpm",
        &["rpm"],
        "usr/bin/rpm",
    ));
    let out = root.work.path().join("out");
    let agent = stripped_agent(root.work.path());
    let pkg = build(&agent, "1.0.0", "rpm", &out).remove(0);
    let pkg = root.put(&pkg);
    // --nodeps: the chroot's glibc is dpkg's, unknown to rpm.
    root.ok(&["rpm", "--initdb"]);
    root.ok(&["rpm", "-U", "--nodeps", &pkg]);
    root.configure();
    root.add_runtime_leftovers();
    let bin = "/opt/patchctl/bin/patchctl-agent";

    let o = root.chroot(&[bin, "uninstall"]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(said.contains("installed from the .rpm package"), "{said}");
    assert!(
        said.contains("run /usr/bin/rpm -e patchctl-agent"),
        "{said}"
    );
    assert!(
        said.contains("kept: /etc/patchctl, /var/lib/patchctl, /var/log/patchctl"),
        "{said}"
    );

    let said = root.ok(&[bin, "uninstall", "--purge", "--yes"]);
    assert!(said.contains("the agent is uninstalled"), "{said}");
    root.assert_nothing_left();
    let o = root.chroot(&["rpm", "-q", "patchctl-agent"]);
    assert!(!o.status.success(), "still installed: {}", text(&o));
}

fn uninstall_purges_a_deb_install() {
    let root = Root::new();
    let out = root.work.path().join("out");
    let agent = stripped_agent(root.work.path());
    let deb = build(&agent, "1.0.0", "deb", &out).remove(0);
    root.ok(&["dpkg", "-i", &root.put(&deb)]);
    root.configure();
    root.add_runtime_leftovers();
    let bin = "/opt/patchctl/bin/patchctl-agent";

    // Not root: refused, saying so.
    let o = root.chroot(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        bin,
        "uninstall",
        "--purge",
        "--yes",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("uninstall must run as root"),
        "{}",
        text(&o)
    );

    // Without --yes: the plan, exit 2, nothing changed.
    let o = root.chroot(&[bin, "uninstall", "--purge"]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(said.contains("installed from the .deb package"), "{said}");
    assert!(
        said.contains("run /usr/bin/dpkg --purge patchctl-agent"),
        "{said}"
    );
    assert!(said.contains("run again with --yes"), "{said}");
    assert_config_and_state_kept(&root);
    assert_eq!(dpkg_version(&root), "install ok installed 1.0.0");

    let said = root.ok(&[bin, "uninstall", "--purge", "--yes"]);
    assert!(said.contains("the agent is uninstalled"), "{said}");
    root.assert_nothing_left();
    assert_eq!(dpkg_version(&root), "");
}

fn uninstall_purges_a_manual_install() {
    let root = Root::new();
    let agent = stripped_agent(root.work.path());
    // What a manual install (a copied binary and unit, enabled offline) leaves.
    for d in ["/opt/patchctl/bin", "/etc/patchctl", "/var/lib/patchctl"] {
        fs::create_dir_all(root.at(d)).unwrap();
    }
    fs::set_permissions(root.at("/etc/patchctl"), fs::Permissions::from_mode(0o700)).unwrap();
    let bin = "/opt/patchctl/bin/patchctl-agent";
    fs::copy(&agent, root.at(bin)).unwrap();
    fs::copy(
        repo().join("dist/patchctl.service"),
        root.at("/etc/systemd/system/patchctl.service"),
    )
    .unwrap();
    let wants = root.at("/etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/patchctl.service",
        wants.join("patchctl.service"),
    )
    .unwrap();
    root.configure();
    root.add_runtime_leftovers();

    // Without --purge the config, the state and the logs stay.
    let o = root.chroot(&[bin, "uninstall"]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(
        said.contains("installed by hand or from the Alpine tarball"),
        "{said}"
    );
    assert!(
        said.contains("kept: /etc/patchctl, /var/lib/patchctl, /var/log/patchctl"),
        "{said}"
    );
    // No systemd runs in the chroot: nothing to stop with, and it says so.
    assert!(said.contains("no running service manager"), "{said}");
    assert!(!said.contains("systemctl"), "{said}");

    let said = root.ok(&[bin, "uninstall", "--purge", "--yes"]);
    assert!(
        said.contains("remove /etc/systemd/system/patchctl.service: removed"),
        "{said}"
    );
    root.assert_nothing_left();

    // Run again (the binary is gone; a copy runs): nothing left to do.
    fs::copy(&agent, root.at("/tmp/patchctl-agent")).unwrap();
    let said = root.ok(&["/tmp/patchctl-agent", "uninstall", "--purge"]);
    assert!(said.contains("nothing to remove"), "{said}");
}

/// `tar -tv` of a gzip tarball: (mode string, owner/group, path) per entry.
fn tar_listing(tgz: &Path) -> Vec<(String, String, String)> {
    let listing = run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("-tvzf")
        .arg(tgz));
    listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].to_owned(), f[f.len() - 1].to_owned())
        })
        .collect()
}

fn alpine_tarball_holds_the_binary_openrc_service_and_installer() {
    let work = tempfile::tempdir().unwrap();
    let agent = stripped_agent(work.path());
    let tgz = build(&agent, "1.0.0", "alpine", &work.path().join("out")).remove(0);
    let dir = "patchctl-agent-1.0.0-alpine-x86_64-unknown-linux-gnu";
    assert!(tgz.ends_with(format!("{dir}.tar.gz")), "{tgz:?}");
    let want = [
        ("drwxr-xr-x", format!("{dir}/")),
        ("-rwxr-xr-x", format!("{dir}/install.sh")),
        ("-rwxr-xr-x", format!("{dir}/patchctl-agent")),
        ("-rwxr-xr-x", format!("{dir}/patchctl.openrc")),
    ];
    let got = tar_listing(&tgz);
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((mode, owner, path), (want_mode, want_path)) in got.iter().zip(&want) {
        assert_eq!(
            (mode.as_str(), owner.as_str(), path),
            (*want_mode, "0/0", want_path)
        );
    }
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(work.path()));
    let unpacked = work.path().join(dir);
    assert_eq!(
        fs::read(unpacked.join("patchctl-agent")).unwrap(),
        fs::read(&agent).unwrap()
    );
    let service = fs::read_to_string(unpacked.join("patchctl.openrc")).unwrap();
    assert!(service.starts_with("#!/sbin/openrc-run\n"), "{service}");
    for line in [
        "command=\"/opt/patchctl/bin/patchctl-agent\"",
        "command_args=\"run --config /etc/patchctl/config.json\"",
        "command_background=true",
        "pidfile=\"/run/${RC_SVCNAME}.pid\"",
        "    need net",
    ] {
        assert!(
            service.lines().any(|l| l == line),
            "{line} missing: {service}"
        );
    }
    // The scripts parse (Alpine's /bin/sh is busybox ash; dash is as strict here).
    for script in ["install.sh", "patchctl.openrc"] {
        run(Command::new("sh").arg("-n").arg(unpacked.join(script)));
    }
    let install = fs::read_to_string(unpacked.join("install.sh")).unwrap();
    assert!(
        install.contains("rc-update add patchctl default"),
        "{install}"
    );
    assert!(
        !install.contains("config.json\" <"),
        "install.sh must never write the config"
    );
}

/// The Alpine tarball's install.sh and `patchctl-agent uninstall` with OpenRC's real
/// tools (Debian's `openrc`: openrc-run, rc-service, rc-update) in a chroot, where OpenRC
/// did not boot. Not Alpine itself (there is none here): its busybox and its musl are
/// not what runs, and the service is not started, because Debian's OpenRC uses dpkg's
/// start-stop-daemon, which lacks the `--stderr` Alpine's has for `error_log`.
fn alpine_installer_and_uninstall_with_real_openrc_tools() {
    let root = Root::copy_of(&cached_chroot_with(
        base_chroot(),
        "openrc",
        &["openrc"],
        "sbin/openrc-run",
    ));
    let agent = stripped_agent(root.work.path());
    let tgz = build(&agent, "1.0.0", "alpine", &root.work.path().join("out")).remove(0);
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(root.at("/srv")));
    let install = "/srv/patchctl-agent-1.0.0-alpine-x86_64-unknown-linux-gnu/install.sh";

    // First install, without a config: files, modes, the runlevel, nothing started.
    let said = root.ok(&[install]);
    assert!(said.contains("installed, not started"), "{said}");
    assert_eq!(root.meta("/opt/patchctl/bin/patchctl-agent"), (0o755, 0, 0));
    assert_eq!(root.meta("/etc/init.d/patchctl"), (0o755, 0, 0));
    for d in ["/etc/patchctl", "/var/lib/patchctl", "/var/log/patchctl"] {
        assert_eq!(root.meta(d), (0o700, 0, 0), "{d}");
    }
    assert_eq!(
        fs::read_link(root.at("/etc/runlevels/default/patchctl")).unwrap(),
        Path::new("/etc/init.d/patchctl")
    );
    assert!(!root.exists("/etc/patchctl/config.json"));
    // openrc-run reads the service script: its description and dependencies.
    let described = root.ok(&["/etc/init.d/patchctl", "describe"]);
    assert!(described.contains("PatchCTL agent"), "{described}");

    // Upgrade: the config and the state kept.
    root.configure();
    let said = root.ok(&[install]);
    assert!(said.contains("upgraded"), "{said}");
    assert_config_and_state_kept(&root);

    // uninstall --purge: stopped through rc-service, taken out of the runlevel, removed.
    let bin = "/opt/patchctl/bin/patchctl-agent";
    let o = root.chroot(&[bin, "uninstall", "--purge"]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    for step in [
        "run /sbin/rc-service patchctl stop",
        "run /sbin/rc-update del patchctl default",
    ] {
        assert!(said.contains(step), "{step} missing: {said}");
    }
    let said = root.ok(&[bin, "uninstall", "--purge", "--yes"]);
    assert!(said.contains("the agent is uninstalled"), "{said}");
    root.assert_nothing_left();
    for p in ["/etc/init.d/patchctl", "/etc/runlevels/default/patchctl"] {
        assert!(!root.exists(p), "{p} is left behind");
    }
}

/// Builds the Arch tarball of `version` into `work`, unpacks it and runs makepkg on it
/// as `nobody` (makepkg refuses root; it checks the sources against the sha256sums);
/// the package's path.
fn makepkg(work: &Path, agent: &Path, version: &str) -> PathBuf {
    let tgz = build(agent, version, "arch", &work.join("out")).remove(0);
    let build_dir = work.join(format!("makepkg-{version}"));
    fs::create_dir_all(&build_dir).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&build_dir));
    let src = build_dir.join(format!(
        "patchctl-agent-{version}-arch-x86_64-unknown-linux-gnu"
    ));
    run(Command::new("bash").arg("-n").arg(src.join("PKGBUILD")));
    run(Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(&build_dir));
    fs::set_permissions(work, fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg("env")
        .arg(format!("HOME={}", build_dir.display()))
        .arg(format!("PKGDEST={}", build_dir.display()))
        .arg("makepkg")
        .arg("--nodeps")
        .current_dir(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "makepkg failed: {}", text(&o));
    fs::read_dir(&build_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_str().unwrap().contains(".pkg.tar"))
        .expect("makepkg made no package")
}

fn arch_package_builds_with_makepkg() {
    let work = tempfile::tempdir().unwrap();
    let agent = stripped_agent(work.path());
    let pkg = makepkg(work.path(), &agent, "1.0.0");
    assert!(
        pkg.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("patchctl-agent-1.0.0-1-x86_64.pkg.tar"),
        "{pkg:?}"
    );
    let listing = run(Command::new("bsdtar")
        .arg("--numeric-owner")
        .arg("-tvf")
        .arg(&pkg));
    // (mode, uid, gid) of an entry; bsdtar lists mode, links, uid, gid, size, …, path.
    let entry = |path: &str| {
        let line = listing
            .lines()
            .find(|l| l.split_whitespace().last() == Some(path))
            .unwrap_or_else(|| panic!("{path} is not in the package: {listing}"));
        let f: Vec<&str> = line.split_whitespace().collect();
        (f[0].to_owned(), f[2].to_owned(), f[3].to_owned())
    };
    let root_owned = |mode: &str| (mode.to_owned(), "0".to_owned(), "0".to_owned());
    assert_eq!(
        entry("opt/patchctl/bin/patchctl-agent"),
        root_owned("-rwxr-xr-x")
    );
    assert_eq!(entry("etc/patchctl/"), root_owned("drwx------"));
    assert_eq!(
        entry("usr/lib/systemd/system/patchctl.service"),
        root_owned("-rw-r--r--")
    );
    assert_eq!(entry(".INSTALL"), root_owned("-rw-r--r--"));
    assert!(
        !listing.contains("config.json"),
        "the package holds a config: {listing}"
    );
}

/// The Arch package built by makepkg, installed and upgraded with pacman inside a
/// chroot that has pacman (Debian's), then removed by `patchctl-agent uninstall --purge
/// --yes`: `pacman -R`, then what pacman leaves.
fn arch_package_installs_with_pacman_and_uninstalls() {
    let root = Root::copy_of(&cached_chroot_with(
        base_chroot(),
        "pacman",
        &["pacman-package-manager"],
        "usr/bin/pacman",
    ));
    // pacman checks free space through /etc/mtab, which a chroot without /proc lacks.
    let conf = root.at("/etc/pacman.conf");
    let text_conf = fs::read_to_string(&conf).unwrap();
    assert!(text_conf.contains("\nCheckSpace"), "{text_conf}");
    fs::write(&conf, text_conf.replace("\nCheckSpace", "\n#CheckSpace")).unwrap();
    let agent = stripped_agent(root.work.path());
    let old = root.put(&makepkg(root.work.path(), &agent, "1.0.0"));
    let new = root.put(&makepkg(root.work.path(), &agent, "1.0.1"));

    // -dd: the chroot's glibc is dpkg's, unknown to pacman.
    let said = root.ok(&["pacman", "-U", "--noconfirm", "-dd", &old]);
    assert!(said.contains("patchctl-agent: not started"), "{said}");
    assert_installed(&root, "/usr/lib/systemd/system/patchctl.service");

    root.configure();
    root.ok(&["pacman", "-U", "--noconfirm", "-dd", &new]);
    assert_config_and_state_kept(&root);
    let q = root.ok(&["pacman", "-Q", "patchctl-agent"]);
    assert_eq!(q.trim(), "patchctl-agent 1.0.1-1");

    root.add_runtime_leftovers();
    let bin = "/opt/patchctl/bin/patchctl-agent";
    let o = root.chroot(&[bin, "uninstall", "--purge"]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(2), "{said}");
    assert!(said.contains("installed from the Arch package"), "{said}");
    assert!(
        said.contains("run /usr/bin/pacman -R --noconfirm patchctl-agent"),
        "{said}"
    );
    let said = root.ok(&[bin, "uninstall", "--purge", "--yes"]);
    assert!(said.contains("the agent is uninstalled"), "{said}");
    root.assert_nothing_left();
    assert!(
        !root
            .chroot(&["pacman", "-Q", "patchctl-agent"])
            .status
            .success()
    );
}

fn the_builder_refuses_a_binary_that_trusts_the_test_root() {
    let work = tempfile::tempdir().unwrap();
    let pubkey =
        fs::read_to_string(repo().join("crates/patchctl-release/testdata/test-root.pub")).unwrap();
    let hex = pubkey
        .lines()
        .find_map(|l| l.strip_prefix("ed25519:"))
        .unwrap()
        .to_owned();
    assert_eq!(hex.len(), 64);
    // An ELF header up to e_machine (the builder checks the magic and the machine),
    // then text.
    let write_bin = |name: &str, machine: u16, body: &str| {
        let mut bytes = b"\x7fELF\x02\x01\x01".to_vec();
        bytes.resize(18, 0);
        bytes.extend(machine.to_le_bytes());
        bytes.extend(body.as_bytes());
        let p = work.path().join(name);
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    // As the agent embeds its roots: 64 hex digits in the binary's text.
    let debug = write_bin("debug-agent", 62, &format!("roots\0{hex}\0"));
    let release = write_bin("release-agent", 62, "roots\0only the release roots\0");
    let arm = write_bin("arm-agent", 183, "roots\0only the release roots\0");
    let out = work.path().join("out");
    let args = |bin: &Path| -> Vec<String> {
        let (bin, out) = (bin.to_str().unwrap(), out.to_str().unwrap());
        [
            "--binary",
            bin,
            "--version",
            "1.0.0",
            "--out",
            out,
            "--formats",
            "alpine",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let call = |v: Vec<String>| builder(&v.iter().map(String::as_str).collect::<Vec<_>>());

    let o = call(args(&debug));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let said = text(&o);
    assert!(said.contains("trusts the TEST release root"), "{said}");
    assert!(
        said.contains("cargo build --release -p patchctl-agent"),
        "{said}"
    );
    assert!(
        !out.exists() || fs::read_dir(&out).unwrap().next().is_none(),
        "a package was written"
    );

    let mut allowed = args(&debug);
    allowed.push("--allow-test-root".to_owned());
    let o = call(allowed);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("WARNING"), "{}", text(&o));

    let o = call(args(&release));
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("WARNING"), "{}", text(&o));

    // A binary for another machine than --target says.
    let o = call(args(&arm));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o)
            .contains("is not built for x86_64-unknown-linux-gnu (ELF machine 183, expected 62)"),
        "{}",
        text(&o)
    );
    let mut arm_args = args(&arm);
    arm_args.extend(["--target", "aarch64-unknown-linux-gnu"].map(str::to_owned));
    let o = call(arm_args);
    assert!(o.status.success(), "{}", text(&o));

    // A version no family reads the same way is refused before anything is built.
    let mut bad = args(&release);
    bad[3] = "1.0-rc1".to_owned();
    let o = call(bad);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("is not a package version"),
        "{}",
        text(&o)
    );
}
