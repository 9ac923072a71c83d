//! How long the agent waits: exponential backoff with full jitter after a failure, and
//! the heartbeat interval ± 10 % after a success, so that a fleet restarted together
//! spreads out.

use std::time::Duration;

use rand::Rng;

/// Longest wait between retries while the platform is unreachable.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// First retry delay.
pub(super) const MIN_BACKOFF: Duration = Duration::from_secs(2);

/// Exponential backoff with full jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at `MIN_BACKOFF` (2 s), doubling up to `cap`.
    pub fn new(cap: Duration) -> Self {
        Backoff {
            next: MIN_BACKOFF,
            cap: cap.max(MIN_BACKOFF),
        }
    }

    /// The next delay: uniformly random in [delay/2, delay], then the delay doubles.
    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.cap);
        let ms = d.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }

    /// Back to the first delay after a success.
    pub fn reset(&mut self) {
        self.next = MIN_BACKOFF;
    }
}

/// `interval` ± 10 %, so that a fleet restarted together spreads out.
pub fn jittered(interval: Duration) -> Duration {
    let ms = interval.as_millis() as u64;
    let spread = ms / 10;
    Duration::from_millis(rand::rng().random_range(ms - spread..=ms + spread))
}
