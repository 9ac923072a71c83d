//! Warnings about events counted many times a second, logged at most once a minute
//! with the count since the last one. It imports nothing of this crate, so that the
//! accept loop, the agent gate and the metrics can all use it.

/// A warning at most once a minute about something counted many times a second (the
/// connection cap's refusals, the agent gate's shedding): [`LogEveryMinute::due`] says
/// whether to log now and how many happened since the last warning.
#[derive(Debug, Default)]
pub struct LogEveryMinute {
    last: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

impl LogEveryMinute {
    /// With the running `total`: how many since the last warning, when a minute has
    /// passed since it (or there was none); `None` otherwise.
    pub fn due(&self, total: u64) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        if last.is_some_and(|(at, _)| now.duration_since(at) < std::time::Duration::from_secs(60)) {
            return None;
        }
        let since = total - last.map_or(0, |(_, n)| n);
        *last = Some((now, total));
        Some(since)
    }
}
