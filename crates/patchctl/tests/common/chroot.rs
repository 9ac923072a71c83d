//! Debian systems for the tests that install real packages: cached debootstrap chroots of
//! this machine's release (kept in `/var/cache/patchctl-ci/`, outside the repository),
//! real .deb files built with `dpkg-deb`, and local apt repositories holding them.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Where the chroots are cached.
pub const CACHE: &str = "/var/cache/patchctl-ci";

/// Runs `cmd`, failing the test with its output when it fails; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// This machine's release codename (`VERSION_CODENAME`).
pub fn codename() -> String {
    let os = fs::read_to_string("/etc/os-release").unwrap();
    os.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .expect("VERSION_CODENAME in /etc/os-release")
        .trim_matches('"')
        .to_owned()
}

/// The Debian mirror this machine's apt uses (never written in the repository).
fn mirror(codename: &str) -> String {
    let mut texts = Vec::new();
    if let Ok(t) = fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "sources" || x == "list") {
                texts.push(fs::read_to_string(p).unwrap_or_default());
            }
        }
    }
    for t in &texts {
        // deb822: a stanza with URIs and Suites naming the codename itself.
        for stanza in t.split("\n\n") {
            let field = |k: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_owned()))
            };
            if let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) {
                if suites.split_whitespace().any(|s| s == codename) {
                    return uris.split_whitespace().next().unwrap().to_owned();
                }
            }
        }
        // One-line format.
        for l in t.lines() {
            let f: Vec<&str> = l
                .split_whitespace()
                .filter(|w| !w.starts_with('['))
                .collect();
            if f.len() >= 3 && f[0] == "deb" && f[2] == codename {
                return f[1].to_owned();
            }
        }
    }
    panic!("no apt source for {codename} on this machine to debootstrap from");
}

/// A cached minimal Debian chroot of this machine's release, created once.
pub fn cached_chroot() -> PathBuf {
    let codename = codename();
    let dir = Path::new(CACHE).join(&codename);
    if dir.join("usr/bin/apt-get").exists() {
        return dir;
    }
    fs::create_dir_all(CACHE).unwrap();
    let tmp = Path::new(CACHE).join(format!("{codename}.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    eprintln!(
        "debootstrap {codename} into {} (once; cached)",
        dir.display()
    );
    run(Command::new("debootstrap")
        .args(["--variant=minbase", &codename])
        .arg(&tmp)
        .arg(mirror(&codename)));
    fs::rename(&tmp, &dir).unwrap();
    dir
}

/// Packages added to the minimal chroot to boot it with systemd as PID 1: systemd
/// itself, and AppArmor's tools so a postinst can load a profile where the kernel has
/// AppArmor.
const BOOTABLE: &[&str] = &["systemd", "systemd-sysv", "apparmor"];

/// A cached Debian chroot that boots with systemd (the minimal one plus [`BOOTABLE`],
/// installed from the release's mirror), created once.
pub fn cached_bootable_chroot() -> PathBuf {
    let codename = codename();
    let dir = Path::new(CACHE).join(format!("{codename}-systemd"));
    if dir.join("sbin/init").exists() {
        return dir;
    }
    let base = cached_chroot();
    let tmp = Path::new(CACHE).join(format!("{codename}-systemd.tmp"));
    let _ = fs::remove_dir_all(&tmp);
    eprintln!(
        "adding {} to a copy of {} in {} (once; cached)",
        BOOTABLE.join(" "),
        base.display(),
        dir.display()
    );
    run(Command::new("cp").arg("-a").arg(&base).arg(&tmp));
    fs::copy("/etc/resolv.conf", tmp.join("etc/resolv.conf")).unwrap();
    run(Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(tmp.join("proc")));
    let update = Command::new("chroot")
        .arg(&tmp)
        .args(["apt-get", "update", "-qq"])
        .output();
    let install = Command::new("chroot")
        .arg(&tmp)
        .args(["apt-get", "install", "-y", "-qq", "--no-install-recommends"])
        .args(BOOTABLE)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output();
    let _ = Command::new("umount").arg(tmp.join("proc")).status();
    for (what, out) in [("apt-get update", update), ("apt-get install", install)] {
        let out = out.unwrap();
        assert!(
            out.status.success(),
            "{what} in {}: {}{}",
            tmp.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    run(Command::new("chroot").arg(&tmp).args(["apt-get", "clean"]));
    fs::rename(&tmp, &dir).unwrap();
    dir
}

/// A .deb to build: control fields, files, maintainer scripts.
#[derive(Debug, Default, Clone)]
pub struct Deb {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// More control fields, each line ending in a newline (`Depends: x\n`).
    pub extra: String,
    /// Files: path inside the package (no leading `/`), contents, mode.
    pub files: Vec<(String, String, u32)>,
    /// Conffiles (absolute paths).
    pub conffiles: Vec<String>,
    /// The postinst, if any (a `#!/bin/sh` script).
    pub postinst: Option<String>,
}

impl Deb {
    /// A package holding only `usr/share/patchctl-test/NAME/version`.
    pub fn new(name: &str, version: &str) -> Deb {
        Deb {
            name: name.into(),
            version: version.into(),
            files: vec![(
                format!("usr/share/patchctl-test/{name}/version"),
                version.into(),
                0o644,
            )],
            ..Deb::default()
        }
    }

    /// Builds it into `out` with `dpkg-deb` and returns the .deb's path.
    pub fn build(&self, out: &Path) -> PathBuf {
        let dir = out.join(format!("build-{}-{}", self.name, self.version));
        fs::create_dir_all(dir.join("DEBIAN")).unwrap();
        for (path, contents, mode) in &self.files {
            let p = dir.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, contents).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
        }
        fs::write(
            dir.join("DEBIAN/control"),
            format!(
                "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: PatchCTL Tests <tests@patchctl.invalid>\nPriority: optional\nSection: misc\n{}Description: PatchCTL test package\n",
                self.name, self.version, self.extra
            ),
        )
        .unwrap();
        if !self.conffiles.is_empty() {
            fs::write(
                dir.join("DEBIAN/conffiles"),
                self.conffiles.join("\n") + "\n",
            )
            .unwrap();
        }
        if let Some(script) = &self.postinst {
            let p = dir.join("DEBIAN/postinst");
            fs::write(&p, script).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let deb = out.join(format!("{}_{}_all.deb", self.name, self.version));
        run(Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&dir)
            .arg(&deb));
        deb
    }
}

/// Builds a plain .deb (see [`Deb::new`]) with more control fields.
pub fn build_deb(out: &Path, name: &str, version: &str, extra: &str) -> PathBuf {
    Deb {
        extra: extra.into(),
        ..Deb::new(name, version)
    }
    .build(out)
}

/// A local apt repository suite holding `debs` (real Packages and Release indices).
pub fn suite(repo: &Path, suite: &str, label: &str, debs: &[PathBuf]) {
    let pool = repo.join("pool");
    fs::create_dir_all(&pool).unwrap();
    let mut index = String::new();
    for deb in debs {
        let name = deb.file_name().unwrap().to_str().unwrap();
        fs::copy(deb, pool.join(name)).unwrap();
        let bytes = fs::read(deb).unwrap();
        let control = run(Command::new("dpkg-deb").arg("-f").arg(deb));
        if !index.is_empty() {
            index.push('\n');
        }
        write!(
            index,
            "{}Filename: pool/{name}\nSize: {}\nSHA256: {}\n",
            control.trim_end().to_owned() + "\n",
            bytes.len(),
            hex::encode(Sha256::digest(&bytes))
        )
        .unwrap();
    }
    let dir = repo.join("dists").join(suite).join("main/binary-amd64");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Packages"), &index).unwrap();
    let release = format!(
        "Origin: Debian\nLabel: {label}\nSuite: {suite}\nCodename: {suite}\nVersion: 12\nDate: Sat, 21 Nov 2026 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nDescription: PatchCTL test suite\nSHA256:\n {} {} main/binary-amd64/Packages\n",
        hex::encode(Sha256::digest(index.as_bytes())),
        index.len()
    );
    fs::write(repo.join("dists").join(suite).join("Release"), release).unwrap();
}
