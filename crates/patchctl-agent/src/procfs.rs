//! The lowest layer of the collectors: reading a `/proc` file, and the `/proc/meminfo`
//! parser that both `sysinfo` (total memory) and `metrics` (memory and swap use) need.
//!
//! Architecture invariant: this module imports no other agent module; `sysinfo` and
//! `metrics` build on it, and `metrics` may use `sysinfo`, never the reverse.

/// Reads a system file, `None` (logged) when it cannot be read.
pub(crate) fn read_proc(path: &str) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            tracing::debug!("cannot read {path}: {e}");
            None
        }
    }
}

/// Memory figures from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    /// `MemTotal`.
    pub total_bytes: u64,
    /// `MemAvailable`, or `MemFree + Buffers + Cached` on kernels older than 3.14.
    pub available_bytes: u64,
    /// `SwapTotal`.
    pub swap_total_bytes: u64,
    /// `SwapFree`.
    pub swap_free_bytes: u64,
}

impl MemInfo {
    /// Memory in use: total − available.
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.available_bytes)
    }

    /// Swap in use: total − free.
    pub fn swap_used_bytes(&self) -> u64 {
        self.swap_total_bytes.saturating_sub(self.swap_free_bytes)
    }
}

/// Parses `/proc/meminfo` (`Key:   value kB` lines). Missing or unreadable values are 0.
pub fn parse_meminfo(input: &str) -> MemInfo {
    let mut info = MemInfo::default();
    let mut available = None;
    let (mut free, mut buffers, mut cached) = (0u64, 0u64, 0u64);
    for line in input.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut info.total_bytes,
            "MemFree" => &mut free,
            "Buffers" => &mut buffers,
            "Cached" => &mut cached,
            "SwapTotal" => &mut info.swap_total_bytes,
            "SwapFree" => &mut info.swap_free_bytes,
            "MemAvailable" => available.insert(0),
            _ => continue,
        };
        *slot = meminfo_bytes(value).unwrap_or(0);
    }
    info.available_bytes = available.unwrap_or_else(|| {
        free.saturating_add(buffers)
            .saturating_add(cached)
            .min(info.total_bytes)
    });
    info
}

/// `  12345 kB` → bytes. A value without a unit is already in bytes.
fn meminfo_bytes(value: &str) -> Option<u64> {
    let mut words = value.split_ascii_whitespace();
    let number: u64 = words.next()?.parse().ok()?;
    match (words.next(), words.next()) {
        (None, None) => Some(number),
        (Some("kB"), None) => Some(number.saturating_mul(1024)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meminfo() {
        let real = "MemTotal:       24684096 kB\nMemFree:        23843004 kB\nMemAvailable:   24066332 kB\nBuffers:            6608 kB\nCached:           427716 kB\nSwapCached:            0 kB\nSwapTotal:       2097148 kB\nSwapFree:        2000000 kB\nHugePages_Total:       0\n";
        let info = parse_meminfo(real);
        assert_eq!(
            info,
            MemInfo {
                total_bytes: 24684096 * 1024,
                available_bytes: 24066332 * 1024,
                swap_total_bytes: 2097148 * 1024,
                swap_free_bytes: 2000000 * 1024,
            }
        );
        assert_eq!(info.used_bytes(), (24684096 - 24066332) * 1024);
        assert_eq!(info.swap_used_bytes(), 97148 * 1024);
        for (input, want) in [
            // No MemAvailable (kernel < 3.14): free + buffers + cached.
            (
                "MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n",
                MemInfo {
                    total_bytes: 102400,
                    available_bytes: 35 * 1024,
                    ..MemInfo::default()
                },
            ),
            (
                "MemTotal: 7\n",
                MemInfo {
                    total_bytes: 7,
                    ..MemInfo::default()
                },
            ),
            ("MemTotal: 7 MB\nMemTotal 9 kB\n", MemInfo::default()),
            ("MemTotal: x kB\n", MemInfo::default()),
            ("", MemInfo::default()),
            (
                "MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n",
                MemInfo {
                    total_bytes: u64::MAX,
                    available_bytes: 1024,
                    ..MemInfo::default()
                },
            ),
        ] {
            assert_eq!(parse_meminfo(input), want, "input: {input:?}");
        }
        // More available than total (a broken file) is never negative use.
        let odd =
            parse_meminfo("MemTotal: 1 kB\nMemAvailable: 2 kB\nSwapTotal: 1 kB\nSwapFree: 5 kB\n");
        assert_eq!((odd.used_bytes(), odd.swap_used_bytes()), (0, 0));
    }

    proptest! {
        #[test]
        fn meminfo_round_trips(total in 0u64..1 << 40, available in 0u64..1 << 40, swap in 0u64..1 << 40) {
            let text = format!("MemTotal: {total} kB\nMemAvailable: {available} kB\nSwapTotal: {swap} kB\nSwapFree: 0 kB\n");
            let info = parse_meminfo(&text);
            prop_assert_eq!(info.total_bytes, total * 1024);
            prop_assert_eq!(info.available_bytes, available * 1024);
            prop_assert_eq!(info.swap_used_bytes(), swap * 1024);
        }
    }
}
