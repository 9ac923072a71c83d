//! System identification and hardware: the [`SystemInfo`] sent at enrollment and with
//! every inventory scan.
//!
//! Everything comes from a fixed list of system files (`/etc/os-release`,
//! `/proc/sys/kernel/{hostname,osrelease}`, `/proc/cpuinfo`, `/proc/meminfo`,
//! `/proc/self/mounts`, `/proc/net/fib_trie`, `/proc/net/if_inet6`) plus `uname(2)` and
//! `statvfs(3)`; no program is run and nothing else is read. The parsers are pure
//! functions of the file text, so they are tested without the files; they never panic
//! and fall back to empty values on input they cannot read.

use std::ffi::OsStr;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use patchctl_proto::agent::{DiskUsage, OsInfo, SystemInfo};

use crate::procfs::{parse_meminfo, read_proc};

pub use patchctl_proto::inventory::parse_os_release;

/// File system types counted as local disks.
const LOCAL_FS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "vfat", "exfat", "jfs", "reiserfs",
    "bcachefs", "nilfs2",
];

/// Collects the system identification and hardware of this host.
pub fn collect() -> SystemInfo {
    let uts = nix::sys::utsname::uname()
        .inspect_err(|e| tracing::debug!("uname failed: {e}"))
        .ok();
    let from_uts = |f: fn(&nix::sys::utsname::UtsName) -> &OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let hostname = read_proc("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| from_uts(|u| u.nodename()));
    let kernel = read_proc("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| from_uts(|u| u.release()));
    let cpu = read_proc("/proc/cpuinfo")
        .map(|s| parse_cpuinfo(&s))
        .unwrap_or_default();
    let cpu_count = if cpu.count > 0 {
        cpu.count
    } else {
        std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1)
    };
    let mem = read_proc("/proc/meminfo")
        .map(|s| parse_meminfo(&s))
        .unwrap_or_default();
    SystemInfo {
        hostname,
        ips: ips(),
        os: read_os_release(Path::new("/")),
        kernel,
        arch: from_uts(|u| u.machine()),
        cpu_model: cpu.model,
        cpu_count,
        mem_total_bytes: mem.total_bytes,
        disks: disks(),
        // The config's tags are added by the runtime, which has the config.
        tags: Vec::new(),
    }
}

// ----------------------------------------------------------------------------------
// os-release

/// Reads `ROOT/etc/os-release`, falling back to `ROOT/usr/lib/os-release` as
/// os-release(5) says; empty values when neither can be read.
pub fn read_os_release(root: &Path) -> OsInfo {
    for file in ["etc/os-release", "usr/lib/os-release"] {
        match std::fs::read(root.join(file)) {
            Ok(bytes) => return parse_os_release(&String::from_utf8_lossy(&bytes)),
            Err(e) => tracing::debug!("cannot read {}: {e}", root.join(file).display()),
        }
    }
    OsInfo::default()
}

// ----------------------------------------------------------------------------------
// CPU

/// What `/proc/cpuinfo` says about the processors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuInfo {
    /// The model name (empty when the file names none, as on most arm64 kernels).
    pub model: String,
    /// The number of `processor` entries (0 when there are none).
    pub count: u32,
}

/// Parses `/proc/cpuinfo`: the first `model name` (x86), else `Processor` (32-bit
/// ARM), `cpu model` (MIPS), `cpu` (POWER) or `vendor_id` (s390x); and the number of
/// `processor` entries.
pub fn parse_cpuinfo(input: &str) -> CpuInfo {
    const MODEL_KEYS: [&str; 5] = ["model name", "Processor", "cpu model", "cpu", "vendor_id"];
    let mut best: Option<(usize, &str)> = None;
    let mut count: u32 = 0;
    for line in input.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        if key == "processor" {
            count = count.saturating_add(1);
        }
        let rank = MODEL_KEYS
            .iter()
            .position(|k| *k == key)
            .filter(|rank| !value.is_empty() && best.is_none_or(|(r, _)| *rank < r));
        if let Some(rank) = rank {
            best = Some((rank, value));
        }
    }
    CpuInfo {
        model: best.map(|(_, v)| v.to_owned()).unwrap_or_default(),
        count,
    }
}

// ----------------------------------------------------------------------------------
// IP addresses

/// The host's addresses, IPv4 then IPv6, without loopback, link-local, multicast and
/// unspecified addresses.
pub fn ips() -> Vec<String> {
    let v4 = read_proc("/proc/net/fib_trie")
        .map(|s| parse_fib_trie(&s))
        .unwrap_or_default();
    let v6 = read_proc("/proc/net/if_inet6")
        .map(|s| parse_if_inet6(&s))
        .unwrap_or_default();
    v4.iter()
        .map(ToString::to_string)
        .chain(v6.iter().map(ToString::to_string))
        .collect()
}

/// The local IPv4 addresses in `/proc/net/fib_trie` (the leaves whose entry is
/// `/32 host LOCAL`), deduplicated, without loopback, link-local (169.254/16),
/// broadcast, multicast and unspecified addresses.
pub fn parse_fib_trie(input: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in input.lines() {
        let line = line.trim();
        if let Some(leaf) = line.strip_prefix("|--") {
            last = leaf.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(ip) = last {
                let keep = !(ip.is_loopback()
                    || ip.is_link_local()
                    || ip.is_broadcast()
                    || ip.is_multicast()
                    || ip.is_unspecified());
                if keep && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        } else if !line.starts_with('/') {
            // A new node ("+-- 10.0.0.0/8 ...") or table header: the leaf has ended.
            last = None;
        }
    }
    out
}

/// The IPv6 addresses in `/proc/net/if_inet6`, deduplicated, without loopback,
/// link-local (`fe80::/10`), multicast and unspecified addresses and without those of
/// the `lo` interface.
pub fn parse_if_inet6(input: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in input.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(hex) = fields.next() else {
            continue;
        };
        let interface = fields.nth(4).unwrap_or_default();
        if hex.len() != 32 || interface == "lo" {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let ip = Ipv6Addr::from(bits);
        let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
        let keep = !(ip.is_loopback() || ip.is_multicast() || ip.is_unspecified() || link_local);
        if keep && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

// ----------------------------------------------------------------------------------
// Disks

/// A mounted file system, from `/proc/self/mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mounted device (`/dev/vda1`, `rpool/ROOT/debian`, `overlay`).
    pub device: String,
    /// Where it is mounted, octal escapes decoded.
    pub mount_point: String,
    /// The file system type.
    pub fs_type: String,
}

/// The local file systems in `/proc/self/mounts` text: types in a fixed list of disk
/// file systems (ext2/3/4, xfs, btrfs, zfs, f2fs, vfat, exfat, jfs, reiserfs, bcachefs,
/// nilfs2), plus `overlay` when it is mounted on `/` (a container's root). Pseudo,
/// memory, network, FUSE and squashfs (snap) file systems are left out. A mount point
/// listed twice keeps its last (visible) mount, in the place of its first.
pub fn parse_mounts(input: &str) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    for line in input.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(device), Some(mount_point), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mount_point = decode_octal_escapes(mount_point);
        let local = LOCAL_FS.contains(&fs_type) || (fs_type == "overlay" && mount_point == "/");
        if !local || !mount_point.starts_with('/') {
            continue;
        }
        let mount = Mount {
            device: decode_octal_escapes(device),
            mount_point,
            fs_type: fs_type.to_owned(),
        };
        match out.iter_mut().find(|m| m.mount_point == mount.mount_point) {
            Some(existing) => *existing = mount,
            None => out.push(mount),
        }
    }
    out
}

/// Decodes the `\ooo` octal escapes the kernel writes for space, tab, newline and
/// backslash in mount table fields (`/mnt/my\040disk` → `/mnt/my disk`). Other
/// backslashes are kept; bytes that are not UTF-8 are replaced.
pub fn decode_octal_escapes(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes.get(i..i + 4) {
            Some(&[b'\\', a @ b'0'..=b'3', b @ b'0'..=b'7', c @ b'0'..=b'7']) => {
                out.push((a - b'0') * 64 + (b - b'0') * 8 + (c - b'0'));
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Usage of the local file systems mounted in this process's mount namespace
/// (`statvfs(3)` of each of [`parse_mounts`]`(/proc/self/mounts)`). Mount points that
/// are not directories (files bind-mounted into a container) and file systems
/// `statvfs` cannot read are left out.
pub fn disks() -> Vec<DiskUsage> {
    let Some(mounts) = read_proc("/proc/self/mounts") else {
        return Vec::new();
    };
    parse_mounts(&mounts)
        .into_iter()
        .filter(|m| Path::new(&m.mount_point).is_dir())
        .filter_map(|m| {
            let stat = nix::sys::statvfs::statvfs(Path::new(&m.mount_point))
                .inspect_err(|e| tracing::debug!("statvfs {}: {e}", m.mount_point))
                .ok()?;
            let frsize = to_u64(stat.fragment_size());
            let blocks = to_u64(stat.blocks());
            let free = to_u64(stat.blocks_free());
            let total_bytes = blocks.saturating_mul(frsize);
            if total_bytes == 0 {
                return None;
            }
            Some(DiskUsage {
                mount: m.mount_point,
                fs_type: m.fs_type,
                used_bytes: blocks.saturating_sub(free).saturating_mul(frsize),
                total_bytes,
            })
        })
        .collect()
}

/// Widens a libc integer whose width depends on the platform.
fn to_u64<T: TryInto<u64>>(value: T) -> u64 {
    value.try_into().unwrap_or(u64::MAX)
}

/// Keeps the first occurrence of each string.
#[cfg(test)]
fn dedup(v: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.iter()
        .filter(|s| seen.insert(s.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn os(id: &str, like: &[&str], version: &str, codename: &str, pretty: &str) -> OsInfo {
        OsInfo {
            id: id.into(),
            id_like: like.iter().map(|s| (*s).to_owned()).collect(),
            version_id: version.into(),
            version_codename: codename.into(),
            pretty_name: pretty.into(),
        }
    }

    fn check(input: &str, expected: OsInfo) {
        assert_eq!(parse_os_release(input), expected, "input:\n{input}");
    }

    #[test]
    fn real_os_release_files() {
        check(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n",
            os(
                "debian",
                &[],
                "12",
                "bookworm",
                "Debian GNU/Linux 12 (bookworm)",
            ),
        );
        check(
            "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n",
            os(
                "ubuntu",
                &["debian"],
                "22.04",
                "jammy",
                "Ubuntu 22.04.4 LTS",
            ),
        );
        check(
            "NAME=\"AlmaLinux\"\nVERSION=\"9.4 (Seafoam Ocelot)\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"AlmaLinux 9.4 (Seafoam Ocelot)\"\nANSI_COLOR=\"0;34\"\n",
            os(
                "almalinux",
                &["rhel", "centos", "fedora"],
                "9.4",
                "",
                "AlmaLinux 9.4 (Seafoam Ocelot)",
            ),
        );
        check(
            "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
            os("alpine", &[], "3.19.1", "", "Alpine Linux v3.19"),
        );
    }

    #[test]
    fn shell_quoting() {
        let pretty = |s: &str| parse_os_release(&format!("PRETTY_NAME={s}\n")).pretty_name;
        for (raw, want) in [
            ("plain", "plain"),
            ("\"double quoted\"", "double quoted"),
            ("'single quoted'", "single quoted"),
            (r#""esc \" \\ \$ \` done""#, r#"esc " \ $ ` done"#),
            (r#""keep \n and \a""#, r#"keep \n and \a"#),
            (r#"'no \" escapes'"#, r#"no \" escapes"#),
            (r"a\ b", "a b"),
            ("mixed\"quo ted\"'and more'", "mixedquo tedand more"),
            ("word # comment", "word"),
            ("\"unterminated", "unterminated"),
            ("'unterminated", "unterminated"),
            ("trailing\\", "trailing"),
            ("\"\"", ""),
            ("", ""),
            ("\"Ünïcödé ☃\"", "Ünïcödé ☃"),
        ] {
            assert_eq!(pretty(raw), want, "raw: {raw}");
        }
    }

    #[test]
    fn odd_lines() {
        check(
            "# comment\n  ID=debian\nID =x\nVERSION_ID\nX=1\nID_LIKE=\"  a\tb  \"\nID=later\r\n",
            os("later", &["a", "b"], "", "", ""),
        );
        check("", OsInfo::default());
        check("=\n==\n\"\n", OsInfo::default());
    }

    #[test]
    fn read_os_release_falls_back() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(read_os_release(root.path()), OsInfo::default());
        std::fs::create_dir_all(root.path().join("usr/lib")).unwrap();
        std::fs::write(root.path().join("usr/lib/os-release"), "ID=fallback\n").unwrap();
        assert_eq!(read_os_release(root.path()).id, "fallback");
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/os-release"), "ID=etc\n").unwrap();
        assert_eq!(read_os_release(root.path()).id, "etc");
    }

    fn cpu(model: &str, count: u32) -> CpuInfo {
        CpuInfo {
            model: model.into(),
            count,
        }
    }

    #[test]
    fn cpuinfo() {
        for (input, want) in [
            (
                "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n",
                cpu("Intel(R) Xeon(R) Processor", 2),
            ),
            (
                "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n\nprocessor\t: 1\n",
                cpu("", 2),
            ),
            (
                "Processor\t: ARMv7 Processor rev 4 (v7l)\nprocessor\t: 0\nprocessor\t: 1\nprocessor\t: 2\nprocessor\t: 3\nHardware\t: BCM2835\n",
                cpu("ARMv7 Processor rev 4 (v7l)", 4),
            ),
            (
                "system type\t\t: MT7621\nprocessor\t\t: 0\ncpu model\t\t: MIPS 1004Kc V2.15\n",
                cpu("MIPS 1004Kc V2.15", 1),
            ),
            (
                "processor\t: 0\ncpu\t\t: POWER9 (architected), altivec supported\nclock\t\t: 2200.000000MHz\n",
                cpu("POWER9 (architected), altivec supported", 1),
            ),
            (
                "vendor_id       : IBM/S390\n# processors    : 2\nprocessor 0: version = FF\n",
                cpu("IBM/S390", 0),
            ),
            // "model name" wins even when it comes after a fallback key.
            ("vendor_id: X\nmodel name: Y\nprocessor: 0\n", cpu("Y", 1)),
            ("model name:\nvendor_id: X\n", cpu("X", 0)),
            ("", cpu("", 0)),
        ] {
            assert_eq!(parse_cpuinfo(input), want, "input:\n{input}");
        }
    }

    const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
     |-- 169.254.1.1
        /32 host LOCAL
     |-- 10.1.2.3
        /24 link UNICAST
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.2
              /32 host LOCAL
     |-- 198.51.100.7
        /32 host LOCAL
";

    #[test]
    fn fib_trie() {
        let want: Vec<Ipv4Addr> = ["192.0.2.2", "10.1.2.3", "198.51.100.7"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(parse_fib_trie(FIB_TRIE), want);
        // An entry line without a leaf before it counts for nothing.
        assert!(parse_fib_trie("  +-- 10.0.0.0/8 2 0 2\n  /32 host LOCAL\n").is_empty());
        assert!(parse_fib_trie("").is_empty());
    }

    #[test]
    fn if_inet6() {
        let input = "00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
20010db8000000000000000000000042 05 40 00 00     wlan0
20010db8000000000000000000000042 06 40 00 00     wlan1
ff020000000000000000000000000001 04 80 00 80     eth0
20010db8000000000000000000000099 01 80 10 80       lo
zz000000000000000000000000000002 04 40 00 82     eth0
0000000000000000000000000002 04 40 00 82     eth0
";
        let want: Vec<Ipv6Addr> = ["fd00::2", "2001:db8::42"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(parse_if_inet6(input), want);
        assert!(parse_if_inet6("").is_empty());
    }

    fn mount(device: &str, at: &str, fs: &str) -> Mount {
        Mount {
            device: device.into(),
            mount_point: at.into(),
            fs_type: fs.into(),
        }
    }

    #[test]
    fn mounts() {
        let input = r"proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
devtmpfs /dev devtmpfs rw,relatime,size=12334524k 0 0
tmpfs /dev/shm tmpfs rw,relatime 0 0
/dev/vda1 / ext4 rw,relatime 0 0
/dev/vda2 /boot/efi vfat rw 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw 0 0
nsfs /run/netns/x nsfs rw 0 0
/dev/loop3 /snap/core22/1380 squashfs ro 0 0
server:/export /mnt/nfs nfs4 rw 0 0
sshfs#me@host: /mnt/fuse fuse.sshfs rw 0 0
overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0
/dev/sdb1 /mnt/my\040disk xfs rw 0 0
/dev/sdc1 /data ext4 rw 0 0
/dev/sdd1 /data btrfs rw 0 0
rpool/ROOT/debian /srv zfs rw 0 0
short line
";
        assert_eq!(
            parse_mounts(input),
            [
                mount("/dev/vda1", "/", "ext4"),
                mount("/dev/vda2", "/boot/efi", "vfat"),
                mount("/dev/sdb1", "/mnt/my disk", "xfs"),
                mount("/dev/sdd1", "/data", "btrfs"),
                mount("rpool/ROOT/debian", "/srv", "zfs"),
            ]
        );
        // A container's overlay root counts; not other overlays.
        assert_eq!(
            parse_mounts("overlay / overlay rw 0 0\noverlay /x overlay rw 0 0\n"),
            [mount("overlay", "/", "overlay")]
        );
        assert!(parse_mounts("").is_empty());
        assert!(parse_mounts("/dev/x relative ext4 rw 0 0\n").is_empty());
    }

    #[test]
    fn octal_escapes() {
        for (raw, want) in [
            (r"/mnt/my\040disk", "/mnt/my disk"),
            (r"/a\011b\012c\134d", "/a\tb\nc\\d"),
            (r"\040", " "),
            (r"/x\04", r"/x\04"),
            (r"/x\089", r"/x\089"),
            (r"/x\400", r"/x\400"),
            (r"/x\", r"/x\"),
            (r"/x\303\251", "/xé"),
            (r"/x\377", "/x\u{fffd}"),
            ("", ""),
        ] {
            assert_eq!(decode_octal_escapes(raw), want, "raw: {raw}");
        }
    }

    #[test]
    fn collects_this_host() {
        let info = collect();
        assert!(!info.hostname.is_empty());
        assert!(!info.kernel.is_empty());
        assert!(!info.arch.is_empty());
        assert!(info.cpu_count >= 1);
        if Path::new("/proc/meminfo").exists() {
            assert!(info.mem_total_bytes > 0);
        }
        if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
            assert_eq!(info.kernel, release.trim());
        }
        for ip in &info.ips {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert!(!ip.is_loopback(), "{ip}");
        }
        assert_eq!(dedup(&info.ips), info.ips);
        for disk in &info.disks {
            assert!(disk.used_bytes <= disk.total_bytes, "{disk:?}");
            assert!(disk.mount.starts_with('/'), "{disk:?}");
        }
        let mounts: Vec<String> = info.disks.iter().map(|d| d.mount.clone()).collect();
        assert_eq!(dedup(&mounts), mounts);
    }

    proptest! {
        #[test]
        fn os_release_never_panics(s in "\\PC*") {
            let _ = parse_os_release(&s);
        }

        #[test]
        fn os_release_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1000)) {
            let _ = parse_os_release(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn os_release_quoting_round_trips(value in "[^\n\r]{0,40}") {
            // Quoting as a shell script would: double quotes, escaping " \ $ `.
            let mut quoted = String::from("\"");
            for c in value.chars() {
                if matches!(c, '"' | '\\' | '$' | '`') {
                    quoted.push('\\');
                }
                quoted.push(c);
            }
            quoted.push('"');
            let parsed = parse_os_release(&format!("PRETTY_NAME={quoted}\nVERSION_ID='{}'\n", value.replace('\'', "")));
            prop_assert_eq!(parsed.pretty_name, value.clone());
            prop_assert_eq!(parsed.version_id, value.replace('\'', ""));
        }

        #[test]
        fn other_parsers_never_panic(s in "\\PC*", bytes in prop::collection::vec(any::<u8>(), 0..1000)) {
            let lossy = String::from_utf8_lossy(&bytes);
            for input in [s.as_str(), &lossy] {
                let _ = parse_cpuinfo(input);
                let _ = parse_fib_trie(input);
                let _ = parse_if_inet6(input);
                let _ = parse_mounts(input);
                let _ = decode_octal_escapes(input);
            }
        }

        #[test]
        fn mounts_never_panic_on_escapes(s in "(/[a-z\\\\0-9 ]{0,10}){1,3}") {
            let _ = decode_octal_escapes(&s);
            let _ = parse_mounts(&format!("/dev/x {s} ext4 rw 0 0\n"));
        }
    }
}
