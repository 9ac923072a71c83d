//! Doctor's checks of local files: the configuration (present, valid, private), the CA
//! bundle, free disk and the journal's socket.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use patchctl_net::inspect::{CertInfo, cert_info};

use super::{Host, Report};
use crate::config::{AgentConfig, ConfigError, check_private};
use crate::pkgmgr::Family;

/// The trust the agent would use, for the TLS check.
pub struct TlsSetup {
    /// The agent's own client configuration.
    pub config: Arc<rustls::ClientConfig>,
    /// The configured CA bundle and what it holds; `None`: the system trust store.
    pub bundle: Option<(PathBuf, Vec<CertInfo>)>,
}

/// A time as `2026-01-31 23:59:59 UTC`. (Written out rather than with chrono's
/// `format`, whose pattern interpreter would grow the agent binary for one pattern.)
pub(crate) fn utc(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A Unix time as a UTC date for people.
pub(crate) fn date(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .map(utc)
        .unwrap_or_else(|| format!("{unix} (Unix time)"))
}

/// `config_present`, `config_valid`, `config_private`; the configuration when it is
/// valid (private or not: the rest can still be diagnosed).
pub fn config(r: &mut Report, path: &Path) -> Option<AgentConfig> {
    let p = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => r.ok("config_present", format!("{p} exists")),
        Ok(_) => {
            r.fail(
                "config_present",
                format!("{p} is not a regular file"),
                format!("replace {p} with the agent's JSON configuration file (README: agent configuration)"),
            );
        }
        Err(e) if e.kind() == ErrorKind::NotFound => r.fail(
            "config_present",
            format!("{p} does not exist"),
            format!(
                "create {p} with server_url and license_key (README: agent configuration), owned by root, mode 600; or name another file with --config"
            ),
        ),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => r.fail(
            "config_present",
            format!("cannot look at {p}: {e}"),
            "run doctor as the agent's user, root: sudo patchctl-agent doctor",
        ),
        Err(e) => r.fail(
            "config_present",
            format!("cannot look at {p}: {e}"),
            format!("check that {p} and its directory are readable by root"),
        ),
    }
    if r.last_level() != Some(super::Level::Ok) {
        r.skip("config_valid", "the configuration file is not there");
        r.skip("config_private", "the configuration file is not there");
        return None;
    }
    let parsed = match std::fs::read_to_string(path) {
        Ok(text) => AgentConfig::parse(path, &text),
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    };
    let cfg = match parsed {
        Ok(cfg) => {
            r.ok(
                "config_valid",
                format!(
                    "server {}, heartbeat every {} s, scan every {} s, {}",
                    cfg.server_url,
                    cfg.heartbeat_interval.as_secs(),
                    cfg.scan_interval.as_secs(),
                    match cfg.credential_rotation {
                        Some(d) =>
                            format!("credential rotated every {} days", d.as_secs() / 86_400),
                        None => "credential rotation off".into(),
                    }
                ),
            );
            Some(cfg)
        }
        Err(e @ ConfigError::Read { .. }) => {
            r.fail(
                "config_valid",
                e.to_string(),
                "run doctor as root (sudo patchctl-agent doctor); the file must be readable by root",
            );
            None
        }
        Err(e) => {
            r.fail(
                "config_valid",
                e.to_string(),
                format!(
                    "edit {p} where the message says (fields: server_url, license_key, ca_bundle, heartbeat_interval_secs, scan_interval_secs, credential_rotation_days, log_dir, state_dir), then run: patchctl-agent check-config"
                ),
            );
            None
        }
    };
    match check_private(path, "config") {
        Ok(()) => r.ok(
            "config_private",
            format!("{p} and its directory are private to the agent's user"),
        ),
        Err(ConfigError::Permissions { message }) => {
            // The message ends with the command that fixes it.
            let (detail, remedy) = match message.split_once("; run: ") {
                Some((d, fix)) => (d.to_owned(), format!("run: {fix}")),
                None => (
                    message.clone(),
                    format!("make {p} owned by root with mode 600"),
                ),
            };
            r.fail(
                "config_private",
                format!("{detail}; the agent refuses to start like this"),
                remedy,
            );
        }
        Err(e) => r.fail(
            "config_private",
            e.to_string(),
            "run doctor as root: sudo patchctl-agent doctor",
        ),
    }
    cfg
}

/// `ca_bundle`: the CA bundle is readable, parses, and what it holds; or the system
/// trust store loads. Returns the TLS configuration the agent would use.
pub fn ca_bundle(r: &mut Report, cfg: &AgentConfig) -> Option<TlsSetup> {
    let Some(path) = cfg.ca_bundle.clone() else {
        return match patchctl_net::client_config(None) {
            Ok(config) => {
                r.ok(
                    "ca_bundle",
                    "no ca_bundle set: the platform's certificate must chain to the system trust store",
                );
                Some(TlsSetup {
                    config,
                    bundle: None,
                })
            }
            Err(e) => {
                r.fail(
                    "ca_bundle",
                    e.to_string(),
                    format!(
                        "install the system CA certificates (apt-get install ca-certificates), or set ca_bundle in {} to the platform's CA file",
                        cfg.path.display()
                    ),
                );
                None
            }
        };
    };
    let fix = format!(
        "set ca_bundle in {} to a readable PEM file holding the certificate of the CA that issued the platform's certificate (for `patchctl server --dev`: the CA file it prints)",
        cfg.path.display()
    );
    let certs = match patchctl_net::tls::load_certs(&path, "CA bundle") {
        Ok(c) => c,
        Err(e) => {
            r.fail("ca_bundle", e.to_string(), fix);
            return None;
        }
    };
    let mut infos = Vec::new();
    for (i, der) in certs.iter().enumerate() {
        match cert_info(der) {
            Ok(info) => infos.push(info),
            Err(e) => {
                r.fail(
                    "ca_bundle",
                    format!(
                        "certificate #{} of {} cannot be read: {e}",
                        i + 1,
                        path.display()
                    ),
                    fix,
                );
                return None;
            }
        }
    }
    let config = match patchctl_net::client_config(Some(&path)) {
        Ok(c) => c,
        Err(e) => {
            r.fail("ca_bundle", e.to_string(), fix);
            return None;
        }
    };
    let now = Utc::now().timestamp();
    let listed = short_list(
        infos
            .iter()
            .map(|c| format!("{} (until {})", c.subject, date(c.not_after))),
    );
    let n = infos.len();
    let expired = infos.iter().filter(|c| c.not_after < now).count();
    let detail = format!(
        "{}: {n} certificate{}: {listed}",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
    if expired == n {
        r.warn(
            "ca_bundle",
            format!("{detail}; every one of them has expired"),
            "replace the bundle with the platform's current CA certificate",
        );
    } else if expired > 0 {
        r.ok("ca_bundle", format!("{detail}; {expired} of them expired"));
    } else {
        r.ok("ca_bundle", detail);
    }
    Some(TlsSetup {
        config,
        bundle: Some((path, infos)),
    })
}

/// The first three items joined, and how many more there are.
pub(crate) fn short_list(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    let shown = all.iter().take(3).cloned().collect::<Vec<_>>().join("; ");
    match all.len() {
        n if n > 3 => format!("{shown} and {} more", n - 3),
        _ => shown,
    }
}

const MIB: u64 = 1 << 20;

/// Below these, a file system fails or warns: (fail bytes, fail %, warn bytes, warn %).
fn thresholds(mount: &str) -> (u64, f64, u64, f64) {
    if mount == "/boot" {
        (64 * MIB, 0.0, 128 * MIB, 0.0)
    } else {
        (512 * MIB, 2.0, 1024 * MIB, 10.0)
    }
}

/// What frees space on `mount` with `family`'s tools.
fn disk_remedy(mount: &str, family: Option<Family>) -> String {
    if mount == "/boot" {
        return match family {
            Some(Family::Apt) => "remove old kernels: apt-get autoremove --purge".into(),
            Some(Family::Dnf) => "remove old kernels: dnf remove --oldinstallonly".into(),
            Some(Family::Yum) => {
                "remove old kernels: package-cleanup --oldkernels --count=2".into()
            }
            Some(Family::Zypper) => "remove old kernels: zypper purge-kernels".into(),
            _ => "remove kernels and initramfs images that are no longer booted".into(),
        };
    }
    let cache = match family {
        Some(Family::Apt) => "apt-get clean; apt-get autoremove --purge",
        Some(Family::Dnf) => "dnf clean all",
        Some(Family::Yum) => "yum clean all",
        Some(Family::Zypper) => "zypper clean --all",
        Some(Family::Apk) => "apk cache clean",
        Some(Family::Pacman) => "pacman -Sc",
        None => "remove what is not needed",
    };
    format!(
        "free space on {mount}: {cache}; journalctl --vacuum-size=200M; find what is large with du -xh {mount} | sort -h | tail"
    )
}

/// `disk:/`, `disk:/var`, `disk:/boot`: free space where packages, their caches and
/// kernels go.
// The statvfs fields are 32-bit on some 32-bit targets; the casts are not no-ops there.
#[allow(clippy::unnecessary_cast)]
pub fn disks(r: &mut Report, root: &Path, family: Option<Family>) {
    let mut seen: Vec<(u64, &str)> = Vec::new();
    for mount in ["/", "/var", "/boot"] {
        let name = format!("disk:{mount}");
        let path = root.join(mount.trim_start_matches('/'));
        let st = match nix::sys::statvfs::statvfs(&path) {
            Ok(st) => st,
            Err(nix::errno::Errno::ENOENT) => {
                r.ok(&name, format!("{mount} does not exist here"));
                continue;
            }
            Err(e) => {
                r.warn(
                    &name,
                    format!("cannot read the free space of {mount}: {e}"),
                    "run doctor as root: sudo patchctl-agent doctor",
                );
                continue;
            }
        };
        let fsid = st.filesystem_id() as u64;
        if let Some((_, first)) = seen.iter().find(|(id, _)| *id == fsid) {
            r.ok(&name, format!("on the same file system as {first}"));
            continue;
        }
        seen.push((fsid, mount));
        let frsize = st.fragment_size() as u64;
        let total = st.blocks() as u64 * frsize;
        let avail = st.blocks_available() as u64 * frsize;
        if total == 0 {
            r.ok(
                &name,
                format!("{mount} reports no size (a virtual file system)"),
            );
            continue;
        }
        let pct = avail as f64 * 100.0 / total as f64;
        let detail = format!(
            "{} free of {} ({pct:.0} %) on {mount}",
            size(avail),
            size(total)
        );
        let (fail_b, fail_p, warn_b, warn_p) = thresholds(mount);
        if avail < fail_b || pct < fail_p {
            r.fail(
                &name,
                format!("{detail}: too little to install updates"),
                disk_remedy(mount, family),
            );
        } else if avail < warn_b || pct < warn_p {
            r.warn(
                &name,
                format!("{detail}: getting low"),
                disk_remedy(mount, family),
            );
        } else {
            r.ok(&name, detail);
        }
    }
}

fn size(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{} MiB", bytes / MIB)
    }
}

/// The datagram doctor sends to prove the journal takes it: a debug line under its own
/// identifier.
const JOURNAL_PROBE: &[u8] =
    b"MESSAGE=patchctl-agent doctor: journal check\nPRIORITY=7\nSYSLOG_IDENTIFIER=patchctl-doctor\n";

/// `journald`: the journal's native socket exists and accepts a datagram.
pub fn journald(r: &mut Report, host: &Host) {
    let sock = host.journal_socket.display();
    if !host.journal_socket.exists() {
        if host.systemd {
            r.fail(
                "journald",
                format!("{sock} is missing although systemd runs: the agent's audit log has nowhere to go"),
                "start the journal: systemctl start systemd-journald.socket systemd-journald",
            );
        } else {
            r.warn(
                "journald",
                format!("no journal here ({sock} is missing and systemd is not PID 1, a container?): the agent logs to stderr instead"),
                "run the agent under systemd to have its audit log in the journal, or keep its stderr (log_dir in the config adds a file)",
            );
        }
        return;
    }
    let sent = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.send_to(JOURNAL_PROBE, &host.journal_socket));
    match sent {
        Ok(_) => r.ok(
            "journald",
            format!("{sock} accepts datagrams (sent one debug line as patchctl-doctor)"),
        ),
        Err(e) => r.fail(
            "journald",
            format!("{sock} does not accept a datagram: {e}"),
            "restart the journal: systemctl restart systemd-journald",
        ),
    }
}
