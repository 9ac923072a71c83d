//! The PatchCTL agent: a small, pull-only daemon that reports a server's inventory and
//! metrics to the platform and runs exactly four whitelisted operations.
//!
//! Module map: [`cli`] (the command line), [`config`] (the private config file), [`runtime`] (enroll, heartbeat,
//! scan, report), [`ops`] (the whitelist gate and the four operations), [`health`]
//! (every `health_check` probe) with [`units`] (failed systemd units), [`boot`] (boot
//! time and the reboot an install schedules), [`scan`] (collecting, diffing and encoding the
//! inventory scan), [`exec`] (the only place a process starts), [`state`] (identity and
//! outbox on disk), [`pkgmgr`] (the package-manager backends), [`inventory`] (the
//! package databases), [`sysinfo`] and [`metrics`] (collectors) over [`procfs`],
//! [`text`] (shared text helpers), [`priority`] (the background priority of scans),
//! [`ceiling`] (the memory ceiling the binary installs on itself), [`logging`], [`selfupdate`] (the agent's own signed
//! update with rollback: its life cycle, not an operation), [`doctor`]
//! (`patchctl-agent doctor`, which runs only when invoked) and [`uninstall`]
//! (`patchctl-agent uninstall`, the same).
//!
//! The modules form layers, each importing only from the ones before it: `text`,
//! `priority`, `ceiling`, `exec`, `config`, `logging`, `procfs` → `sysinfo`, `state`, `inventory`, `units` →
//! `metrics`, `health`, `boot` → `pkgmgr` → `scan`, `ops`, `selfupdate` → `runtime` →
//! `doctor`; `uninstall`
//! uses only `text`, `exec` and `config`. No module imports one that imports it back.

pub mod admit;
pub mod boot;
pub mod ceiling;
pub mod cli;
pub mod config;
pub mod doctor;
pub mod exec;
pub mod health;
pub mod inventory;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod pkgmgr;
pub mod priority;
pub mod procfs;
pub mod runtime;
pub mod scan;
pub mod selfupdate;
pub mod state;
pub mod sysinfo;
pub mod text;
pub mod uninstall;
pub mod units;

/// This agent's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
