//! The agent's systemd unit (`dist/patchctl.service`) read the way systemd reads it:
//! sections, assignments in order, comments dropped. The tests derive what they check
//! or apply from this reading, so they follow the unit when it changes.

use std::path::{Path, PathBuf};

/// Where the shipped unit is.
pub fn shipped_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/patchctl.service")
}

/// The shipped unit's text.
pub fn shipped_text() -> String {
    std::fs::read_to_string(shipped_path()).unwrap()
}

/// Capability names by number (linux/capability.h), as systemd and /proc spell them.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities of a `/proc/PID/status` mask (`CapBnd: 000001fffeffffff`).
pub fn capabilities_of_mask(hex: &str) -> Vec<&'static str> {
    let mask = u64::from_str_radix(hex.trim(), 16).unwrap_or_else(|e| panic!("{hex:?}: {e}"));
    CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// A parsed unit file.
#[derive(Debug, Clone)]
pub struct Unit {
    /// `(section, key, value)` in file order.
    pub entries: Vec<(String, String, String)>,
}

impl Unit {
    /// Parses unit-file syntax: `[Section]`, `Key=value`, `#`/`;` comments, trailing
    /// backslash continuations.
    pub fn parse(text: &str) -> Unit {
        let mut entries = Vec::new();
        let mut section = String::new();
        let mut pending = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
                continue;
            }
            if let Some(cont) = line.strip_suffix('\\') {
                pending.push_str(cont);
                pending.push(' ');
                continue;
            }
            let line = std::mem::take(&mut pending) + line;
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((k, v)) = line.split_once('=') {
                entries.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
            } else {
                panic!("not a unit-file line: {line:?}");
            }
        }
        Unit { entries }
    }

    /// The shipped unit.
    pub fn shipped() -> Unit {
        Unit::parse(&shipped_text())
    }

    /// Every value assigned to `[Service] key`, in order.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(s, k, _)| s == "Service" && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    }

    /// The value in effect for `[Service] key` (the last assignment).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values(key).last().copied()
    }

    /// A boolean setting as systemd reads it (unset is false).
    pub fn yes(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some("yes" | "true" | "on" | "1" | "read-only" | "strict" | "full")
        )
    }

    /// The umask children get (systemd's default is 0022).
    pub fn umask(&self) -> u32 {
        u32::from_str_radix(self.get("UMask").unwrap_or("0022"), 8).unwrap()
    }

    /// The capability bounding set the unit leaves, from its `CapabilityBoundingSet=`
    /// lines (`~` drops the listed ones from what is left; a plain list keeps only its
    /// own; an empty assignment resets to everything).
    pub fn bounding_set(&self) -> Vec<&'static str> {
        let mut kept: Vec<&'static str> = CAPABILITIES.to_vec();
        let mut first = true;
        for v in self.values("CapabilityBoundingSet") {
            if v.is_empty() {
                kept = CAPABILITIES.to_vec();
                first = true;
                continue;
            }
            let (drop, list) = match v.strip_prefix('~') {
                Some(rest) => (true, rest),
                None => (false, v),
            };
            let names: Vec<&str> = list.split_whitespace().collect();
            for n in &names {
                assert!(CAPABILITIES.contains(n), "unknown capability {n}");
            }
            if drop {
                kept.retain(|c| !names.contains(c));
            } else if first {
                kept.retain(|c| names.contains(c));
            } else {
                for c in CAPABILITIES.iter().filter(|c| names.contains(c)) {
                    if !kept.contains(c) {
                        kept.push(c);
                    }
                }
            }
            first = false;
        }
        kept
    }

    /// `TimeoutStopSec=` in seconds (`infinity` is `u64::MAX`; unset is systemd's 90 s).
    pub fn timeout_stop_secs(&self) -> u64 {
        let Some(v) = self.get("TimeoutStopSec") else {
            return 90;
        };
        if v == "infinity" {
            return u64::MAX;
        }
        let mut total = 0;
        for part in v.split_whitespace() {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            let n: u64 = digits.parse().unwrap_or_else(|_| panic!("{v:?}"));
            total += n * match &part[digits.len()..] {
                "" | "s" | "sec" => 1,
                "m" | "min" => 60,
                "h" | "hr" => 3600,
                "d" => 86_400,
                unit => panic!("unknown time unit {unit:?} in {v:?}"),
            };
        }
        total
    }
}
