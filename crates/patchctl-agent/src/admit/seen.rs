//! The command ids this agent ran, each kept until its command expires (an expired
//! command is refused anyway), so the set stays as small as the commands in flight.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// File name in the state directory.
pub const SEEN_FILE: &str = "seen-commands.json";
/// Kept this long past a command's expiry (a clock set back still finds it).
const GRACE: Duration = Duration::days(1);
/// Most ids kept; past it the ones expiring first go (their commands are long gone).
pub const MAX_SEEN: usize = 100_000;

/// The ids run, with their commands' expiry.
pub struct SeenCommands {
    path: PathBuf,
    ids: HashMap<Uuid, DateTime<Utc>>,
}

impl SeenCommands {
    /// Loads the set from `state_dir` (empty when absent or unreadable: an unreadable
    /// file is reported, and replaced at the next record).
    pub fn open(state_dir: &Path) -> SeenCommands {
        let path = state_dir.join(SEEN_FILE);
        let ids = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::error!(path = %path.display(), error = %e, "the record of commands run is unreadable; starting a new one");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        SeenCommands { path, ids }
    }

    /// Whether `id` ran here.
    pub fn contains(&self, id: Uuid) -> bool {
        self.ids.contains_key(&id)
    }

    /// Records `id` (whose command expires at `expires_at`) and writes the set
    /// atomically, dropping what expired before `now`.
    pub fn record(
        &mut self,
        id: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> std::io::Result<()> {
        self.ids.retain(|_, exp| *exp + GRACE > now);
        if self.ids.len() >= MAX_SEEN {
            let mut by_expiry: Vec<(Uuid, DateTime<Utc>)> =
                self.ids.iter().map(|(k, v)| (*k, *v)).collect();
            by_expiry.sort_by_key(|(_, e)| *e);
            for (k, _) in by_expiry.iter().take(self.ids.len() + 1 - MAX_SEEN) {
                self.ids.remove(k);
            }
        }
        self.ids.insert(id, expires_at);
        let bytes = serde_json::to_vec(&self.ids).unwrap_or_default();
        if let Err(e) = crate::state::write_private(&self.path, &bytes) {
            self.ids.remove(&id);
            return Err(e);
        }
        Ok(())
    }

    /// How many ids are kept.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when none is kept.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}
