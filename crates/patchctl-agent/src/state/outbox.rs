//! The outbox: results produced but not yet acknowledged by the platform, one file per
//! command id under `state_dir/outbox`, written atomically before the result is sent.
//!
//! **Order.** Each result gets a sequence number when it is stored (one more than the
//! highest in the outbox, also after a restart); [`Outbox::all`] and [`Outbox::oldest`]
//! hand results back in that order, which is the order they were made. Files written
//! before sequence numbers existed (a bare result) come first, by `finished_at`.
//!
//! **Bound.** The outbox holds at most [`OutboxLimits::max_results`] results and
//! [`OutboxLimits::max_bytes`] bytes. A result already made is never refused or dropped
//! ([`Outbox::put`] always stores it: it is the only record that the command ran);
//! instead, while the outbox is at its bound, [`Outbox::room`] says so and the agent
//! takes no new command until deliveries drain it. The commands it leaves are leased
//! to it on the platform and come back once their lease lapses, so nothing is lost and
//! the overshoot is at most one heartbeat's commands. The defaults fit one upload
//! (1,000 results, 16 MiB on the platform).
//!
//! **A disk that fails.** When a result cannot be written (disk full, I/O error),
//! [`Outbox::put`] keeps it in memory, in its place in the order, and says so: it is
//! delivered with the others, written to disk at the next [`Outbox::put`] that
//! succeeds, and lost only if the agent stops before either happens. It is never sent
//! outside the outbox's order, and a failed delivery does not lose it.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use patchctl_proto::command::CommandResult;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::write_private;

/// How much the outbox may hold before the agent stops taking commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Most results waiting.
    pub max_results: usize,
    /// Most bytes of results waiting (their files).
    pub max_bytes: u64,
}

impl OutboxLimits {
    /// 500 results or 8 MiB: days of a busy host's commands, and always one upload.
    pub const DEFAULT: OutboxLimits = OutboxLimits {
        max_results: 500,
        max_bytes: 8 * 1024 * 1024,
    };
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The outbox is at its bound: no new command is taken until results are delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the outbox holds {results} results ({bytes} bytes), its bound is {max_results} results or {max_bytes} bytes: \
     no new command is taken until the platform acknowledges results (check the agent's connection to the platform)"
)]
pub struct OutboxFull {
    /// Results waiting.
    pub results: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The bound on results.
    pub max_results: usize,
    /// The bound on bytes.
    pub max_bytes: u64,
}

/// One stored result with its place in the order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// Order of storing (1, 2, ...).
    seq: u64,
    /// The result.
    result: CommandResult,
}

/// What a file of the outbox holds: an entry, or a bare result of an older agent.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Entry(Entry),
    Bare(CommandResult),
}

/// Results produced but not yet acknowledged, one file per command id.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
    limits: OutboxLimits,
    /// The next sequence number.
    next: Arc<AtomicU64>,
    /// Results that could not be written, with their sequence number and size.
    spilled: Arc<Mutex<BTreeMap<Uuid, (Entry, u64)>>>,
}

impl Outbox {
    /// Opens (creating, mode 0700) the outbox under `state_dir` with the default bound.
    pub fn open(state_dir: &Path) -> std::io::Result<Outbox> {
        Self::open_with(state_dir, OutboxLimits::DEFAULT)
    }

    /// Opens the outbox under `state_dir` with the bound `limits`.
    pub fn open_with(state_dir: &Path, limits: OutboxLimits) -> std::io::Result<Outbox> {
        let dir = state_dir.join("outbox");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let outbox = Outbox {
            dir,
            limits,
            next: Arc::new(AtomicU64::new(1)),
            spilled: Arc::default(),
        };
        let last = outbox.entries().iter().map(|(seq, _)| *seq).max();
        outbox.next.store(last.unwrap_or(0) + 1, Ordering::SeqCst);
        Ok(outbox)
    }

    fn path(&self, id: Uuid) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn spilled(&self) -> std::sync::MutexGuard<'_, BTreeMap<Uuid, (Entry, u64)>> {
        self.spilled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a result durably before it is sent, after every result stored before
    /// it. Never refused for the bound (see the module documentation). Storing a
    /// result again keeps its place.
    ///
    /// An I/O error is returned for the log, but the result is kept in memory all the
    /// same (module documentation): it waits with the others, in its place. A `put`
    /// that succeeds first writes what earlier ones kept in memory.
    pub fn put(&self, result: &CommandResult) -> std::io::Result<()> {
        let id = result.command_id;
        let known = self.spilled().get(&id).map(|(e, _)| e.seq);
        let seq = match known.or_else(|| self.read(&self.path(id)).map(|(seq, _)| seq)) {
            Some(seq) if seq > 0 => seq,
            _ => self.next.fetch_add(1, Ordering::SeqCst),
        };
        let entry = Entry {
            seq,
            result: result.clone(),
        };
        let bytes = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        match write_private(&self.path(id), &bytes) {
            Ok(()) => {
                self.spilled().remove(&id);
                self.write_spilled();
                Ok(())
            }
            Err(e) => {
                self.spilled().insert(id, (entry, bytes.len() as u64));
                Err(e)
            }
        }
    }

    /// Writes the results kept in memory, as far as the disk takes them.
    fn write_spilled(&self) {
        let waiting: Vec<(Uuid, Entry)> = self
            .spilled()
            .iter()
            .map(|(id, (e, _))| (*id, e.clone()))
            .collect();
        for (id, entry) in waiting {
            let Ok(bytes) = serde_json::to_vec(&entry) else {
                continue;
            };
            if write_private(&self.path(id), &bytes).is_err() {
                return;
            }
            self.spilled().remove(&id);
            tracing::info!(command_id = %id, "a result kept in memory is now in the outbox on disk");
        }
    }

    /// Results kept in memory because the disk refused them (module documentation).
    pub fn in_memory(&self) -> usize {
        self.spilled().len()
    }

    /// True when a result for `id` is waiting (the command already ran).
    pub fn contains(&self, id: Uuid) -> bool {
        self.spilled().contains_key(&id) || self.path(id).exists()
    }

    /// `Ok` while the outbox is under its bound (the agent may take a command);
    /// otherwise how full it is.
    pub fn room(&self) -> Result<(), OutboxFull> {
        let (results, bytes) = self.usage();
        if results < self.limits.max_results && bytes < self.limits.max_bytes {
            return Ok(());
        }
        Err(OutboxFull {
            results,
            bytes,
            max_results: self.limits.max_results,
            max_bytes: self.limits.max_bytes,
        })
    }

    /// Results waiting and their bytes (on disk, and in memory when the disk refused
    /// them).
    pub fn usage(&self) -> (usize, u64) {
        let spilled = self.spilled();
        let mut count = spilled.len();
        let mut bytes: u64 = spilled.values().map(|(_, n)| n).sum();
        for p in self.files() {
            if let Ok(m) = std::fs::metadata(&p) {
                count += 1;
                bytes += m.len();
            }
        }
        (count, bytes)
    }

    /// The bound this outbox was opened with.
    pub fn limits(&self) -> OutboxLimits {
        self.limits
    }

    fn files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("json"))
            .collect()
    }

    /// The file's sequence number (0 for a bare result) and result; `None` when it
    /// cannot be read (reported by [`Outbox::entries`]).
    fn read(&self, p: &Path) -> Option<(u64, CommandResult)> {
        let bytes = std::fs::read(p).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Stored::Entry(e) => Some((e.seq, e.result)),
            Stored::Bare(r) => Some((0, r)),
        }
    }

    /// Every readable entry in order (with those kept in memory); unreadable files are
    /// reported and left in place.
    fn entries(&self) -> Vec<(u64, CommandResult)> {
        let spilled = self.spilled().clone();
        let mut out: Vec<(u64, CommandResult)> = spilled
            .values()
            .map(|(e, _)| (e.seq, e.result.clone()))
            .collect();
        for p in self.files() {
            if p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| Uuid::parse_str(s).ok())
                .is_some_and(|id| spilled.contains_key(&id))
            {
                continue;
            }
            match self.read(&p) {
                Some(e) => out.push(e),
                None => {
                    tracing::warn!(path = %p.display(), "unreadable result in outbox; left in place")
                }
            }
        }
        out.sort_by(|(a, ra), (b, rb)| a.cmp(b).then(ra.finished_at.cmp(&rb.finished_at)));
        out
    }

    /// Every stored result, in the order they were made.
    pub fn all(&self) -> Vec<CommandResult> {
        self.entries().into_iter().map(|(_, r)| r).collect()
    }

    /// The `n` oldest results, in order (for uploads in chunks).
    pub fn oldest(&self, n: usize) -> Vec<CommandResult> {
        let mut all = self.all();
        all.truncate(n);
        all
    }

    /// Forgets acknowledged results.
    pub fn remove(&self, ids: &[Uuid]) {
        for id in ids {
            self.spilled().remove(id);
            let _ = std::fs::remove_file(self.path(*id));
        }
    }
}

#[cfg(test)]
mod tests;
