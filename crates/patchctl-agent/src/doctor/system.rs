//! Doctor's checks of this machine's software: the package manager is detected and not
//! locked, and the systemd unit's state.
//!
//! Locks are looked at without being taken: `F_OFD_GETLK` asks the kernel which record
//! lock would conflict with a write lock on the whole file (an OFD query also sees a
//! POSIX lock held by this very process, which a plain `F_GETLK` would not), and
//! `/proc/locks` adds `flock` locks (apk's) and the pid behind an OFD lock. Nothing here
//! can delay a package manager.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::{Host, Report};
use crate::exec::{ExecError, ExecRequest, Executor, SYSTEMCTL_SHOW_UNIT};
use crate::pkgmgr::Family;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id, when the kernel says.
    pub pid: Option<u32>,
    /// Its command name (`/proc/PID/comm`), when readable.
    pub comm: Option<String>,
}

impl Holder {
    fn describe(&self) -> String {
        match (self.pid, &self.comm) {
            (Some(pid), Some(comm)) => format!("process {pid} ({comm})"),
            (Some(pid), None) => format!("process {pid}"),
            _ => "another process".to_owned(),
        }
    }
}

/// The holder of a record or `flock` lock on `path`, if any; `None` also when the
/// file does not exist (nobody has locked it yet).
///
/// It opens and closes `path`, which drops any POSIX lock the *calling* process holds
/// on it: call it only from a process that holds none there (doctor holds none).
pub fn lock_holder(path: &Path) -> Option<Holder> {
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let mut query = nix::libc::flock {
        l_type: nix::libc::F_WRLCK as nix::libc::c_short,
        l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    let record = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_OFD_GETLK(&mut query)).is_ok()
        && query.l_type != nix::libc::F_UNLCK as nix::libc::c_short;
    let listed = std::fs::read_to_string("/proc/locks")
        .ok()
        .and_then(|locks| crate::health::lock_holder(&locks, meta.dev(), meta.ino()));
    let pid = match (record, u32::try_from(query.l_pid).ok().filter(|p| *p > 0)) {
        (true, Some(pid)) => Some(pid),
        (true, None) => listed,
        (false, _) => Some(listed?),
    };
    Some(Holder {
        pid,
        comm: pid.and_then(comm),
    })
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The lock files each family's tools take (fcntl or flock), relative to the root.
fn lock_files(family: Family) -> &'static [&'static str] {
    match family {
        Family::Apt => &["var/lib/dpkg/lock-frontend", "var/lib/dpkg/lock"],
        Family::Dnf | Family::Yum | Family::Zypper => {
            &["var/lib/rpm/.rpm.lock", "usr/lib/sysimage/rpm/.rpm.lock"]
        }
        Family::Apk => &["lib/apk/db/lock"],
        Family::Pacman => &[],
    }
}

/// What to do about a lock held by `who`.
fn lock_remedy(family: Family, who: &Holder) -> String {
    let look = match who.pid {
        Some(pid) => format!("see what it is doing: ps -o pid,etime,args -p {pid}; "),
        None => String::new(),
    };
    let stop = match family {
        Family::Apt => {
            "if it is unattended-upgrades or apt-daily, let it finish (systemctl status apt-daily-upgrade.service)"
        }
        Family::Dnf | Family::Yum => "if it is dnf-automatic or a packagekit run, let it finish",
        Family::Zypper => "if it is packagekit or another zypper, let it finish",
        Family::Apk | Family::Pacman => "let that run finish",
    };
    format!("{look}{stop}; if it hangs, stop that process; never delete the lock file")
}

/// `package_manager`: which family runs here, and that nothing holds its lock now.
pub fn package_manager(r: &mut Report, root: &Path) -> Option<Family> {
    let Some(family) = Family::detect(root) else {
        r.warn(
            "package_manager",
            "no supported package manager found (apt, dnf, yum, zypper, apk, pacman): the agent reports no packages here",
            "run the agent on Debian/Ubuntu, RHEL-family, SUSE, Alpine or Arch systems; check that /etc/os-release and the package manager's binary are present",
        );
        return None;
    };
    let name = format!("{} ({})", family.as_str(), family.database().as_str());
    let mut looked = Vec::new();
    for rel in lock_files(family) {
        let path = root.join(rel);
        if !path.exists() {
            continue;
        }
        looked.push(path.display().to_string());
        if let Some(who) = lock_holder(&path) {
            r.fail(
                "package_manager",
                format!(
                    "{name}: {} is locked by {}: installs wait for it (up to {} s) and then fail",
                    path.display(),
                    who.describe(),
                    crate::pkgmgr::LOCK_TIMEOUT_SECS
                ),
                lock_remedy(family, &who),
            );
            return Some(family);
        }
    }
    if family == Family::Zypper {
        if let Some(who) = zypp_pid(root) {
            r.fail(
                "package_manager",
                format!(
                    "{name}: zypper's lock /run/zypp.pid names {} which is running",
                    who.describe()
                ),
                lock_remedy(family, &who),
            );
            return Some(family);
        }
    }
    let pacman_lock = root.join("var/lib/pacman/db.lck");
    if family == Family::Pacman && pacman_lock.exists() {
        r.fail(
            "package_manager",
            format!(
                "{name}: {} exists: pacman is running, or crashed and left it behind",
                pacman_lock.display()
            ),
            format!(
                "if no pacman runs (pgrep -x pacman prints nothing), remove {}",
                pacman_lock.display()
            ),
        );
        return Some(family);
    }
    if family == Family::Apt && crate::inventory::dpkg::interrupted(&root.join("var/lib/dpkg")) {
        r.warn(
            "package_manager",
            format!("{name}: not locked, but an interrupted dpkg run left packages unfinished"),
            "run: dpkg --configure -a (the agent also runs it before its next install)",
        );
        return Some(family);
    }
    r.ok(
        "package_manager",
        if looked.is_empty() {
            format!("{name}: not locked (no lock file yet)")
        } else {
            format!("{name}: not locked ({})", looked.join(", "))
        },
    );
    Some(family)
}

/// zypper writes its pid to `/run/zypp.pid` while it runs.
fn zypp_pid(root: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(root.join("run/zypp.pid")).ok()?;
    let pid: u32 = text.trim().parse().ok().filter(|p| *p > 0)?;
    Path::new(&format!("/proc/{pid}")).exists().then(|| Holder {
        pid: Some(pid),
        comm: comm(pid),
    })
}

/// The unit doctor asks systemd about.
pub const UNIT: &str = "patchctl.service";

/// `systemctl show` properties, as `(key, value)`.
pub fn parse_show(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter_map(|l| l.split_once('=')).collect()
}

/// `unit`: the systemd unit is installed, enabled and running.
pub async fn unit(r: &mut Report, host: &Host, exec: &dyn Executor) {
    if !host.systemd {
        r.warn(
            "unit",
            "systemd is not PID 1 here (no /run/systemd/system): the unit's state cannot be read",
            "run the agent as the systemd unit (dist/patchctl.service) on a host with systemd; elsewhere start it with: patchctl-agent run",
        );
        return;
    }
    let argv: Vec<String> = SYSTEMCTL_SHOW_UNIT.iter().map(|s| s.to_string()).collect();
    let req = ExecRequest::from_argv(&argv).with_timeout(Duration::from_secs(10));
    let out = match exec.run(req).await {
        Ok(out) if out.success() => out,
        Ok(out) => {
            r.warn(
                "unit",
                format!("systemctl show {UNIT} failed: {}", out.stderr.trim()),
                "check systemd: systemctl status",
            );
            return;
        }
        Err(e @ ExecError::NotAllowed(_)) => {
            r.warn(
                "unit",
                format!("cannot ask systemd: {e}"),
                format!("look yourself: systemctl status {UNIT}"),
            );
            return;
        }
        Err(e) => {
            r.warn(
                "unit",
                format!("cannot ask systemd: {e}"),
                format!("look yourself: systemctl status {UNIT}"),
            );
            return;
        }
    };
    unit_finding(r, &parse_show(&out.stdout));
}

/// The `unit` finding from `systemctl show` properties.
pub fn unit_finding(r: &mut Report, props: &[(&str, &str)]) {
    let get = |k: &str| {
        props
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
            .unwrap_or("")
    };
    let (load, active, sub, file) = (
        get("LoadState"),
        get("ActiveState"),
        get("SubState"),
        get("UnitFileState"),
    );
    let restarts = get("NRestarts");
    if load == "not-found" {
        r.fail(
            "unit",
            format!("{UNIT} is not installed"),
            "install dist/patchctl.service as /etc/systemd/system/patchctl.service, then: systemctl daemon-reload; systemctl enable --now patchctl",
        );
        return;
    }
    let state = format!("{UNIT} is {active} ({sub}), {file}, restarted {restarts} times");
    match active {
        "active" if file == "enabled" => r.ok("unit", state),
        "active" => r.warn(
            "unit",
            format!("{state}: it does not start at boot"),
            "systemctl enable patchctl",
        ),
        _ if get("ExecMainStatus") == crate::runtime::EXIT_REVOKED.to_string() => r.fail(
            "unit",
            format!("{state}: the agent stopped because the platform revoked its credential (exit {})", crate::runtime::EXIT_REVOKED),
            "if this host should come back: patchctl-agent reenroll, then systemctl restart patchctl",
        ),
        "activating" | "reloading" => r.warn(
            "unit",
            state,
            format!("wait a few seconds and run doctor again; if it keeps restarting: journalctl -u {UNIT} -n 50"),
        ),
        _ => r.fail(
            "unit",
            format!("{state}, last result {}", get("Result")),
            format!("journalctl -u {UNIT} -n 50 shows why; then: systemctl enable --now patchctl"),
        ),
    }
}
