//! The apk backend (Alpine, apk-tools 2.x): the inventory read from the installed
//! database directly, `apk update` to refresh, `apk list --upgradable` for updates,
//! `apk policy` for one package's candidate, `apk add --simulate` then `apk add` to
//! install exactly the approved versions.
//!
//! Alpine's repositories carry no security flag and no advisories: every update is
//! reported with `security: false` and no advisories, and the platform decides by
//! correlating the source package (the inventory's `source_name`, apk's origin) with
//! Alpine's security database. Nothing is guessed from version strings.
//!
//! Why `apk list --upgradable` and not `apk version -l '<'`: apk-tools 2.12 to 2.14
//! print `apk version`'s `NAME-VERSION` column through a 41-byte buffer, so long names
//! come out cut and glued to the `<`; `apk list` prints full names, the architecture
//! and the origin.
//!
//! Output formats follow apk-tools 2.14 (`src/app_list.c`, `src/app_policy.c`,
//! `src/commit.c`, `src/database.c`); every parser (`parse.rs`) never panics and records what
//! it could not read.
//!
//! Layout: this file holds the options, the argument vectors and the [`Backend`]
//! implementation (what runs, and in which order); `parse.rs` holds the parsers of
//! the output (pure, re-exported here); `tests.rs` the unit tests.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::PackageTarget;
use patchctl_proto::validate::PackageName;

use super::{
    Backend, Candidate, Family, InstallRun, LOCK_TIMEOUT_SECS, PkgError, Transaction, Updates,
};
use crate::exec::{ExecRequest, Executor};
use crate::inventory::apk as db;

mod parse;
#[cfg(test)]
mod tests;

pub use parse::*;

/// apk's path.
pub const APK: &str = "/sbin/apk";

/// Where the kernel tells its release (`6.6.49-0-lts`).
pub const KERNEL_RELEASE: &str = "/proc/sys/kernel/osrelease";

/// The longest excerpt of a line quoted in a skip reason.
const MAX_QUOTE: usize = 120;

/// Settings of the apk backend. The default is production: the system at `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkOptions {
    /// The system's root: `/` in production; anything else is passed as `--root`.
    pub root: PathBuf,
    /// The file the running kernel's release is read from.
    pub kernel_release: PathBuf,
    /// How long a changing run waits for apk's database lock (`--wait`).
    pub lock_wait_secs: u64,
}

impl Default for ApkOptions {
    fn default() -> Self {
        ApkOptions {
            root: PathBuf::from("/"),
            kernel_release: PathBuf::from(KERNEL_RELEASE),
            lock_wait_secs: LOCK_TIMEOUT_SECS,
        }
    }
}

impl ApkOptions {
    /// `apk APPLET [--root R] --no-progress`: the applet first, so apk never takes a
    /// later argument for it.
    fn base(&self, applet: &str) -> Vec<String> {
        let mut argv = vec![APK.to_owned(), applet.to_owned()];
        if self.root != Path::new("/") {
            argv.push("--root".into());
            argv.push(self.root.display().to_string());
        }
        argv.push("--no-progress".into());
        argv
    }

    fn wait(&self, argv: &mut Vec<String>) {
        argv.push("--wait".into());
        argv.push(self.lock_wait_secs.to_string());
    }

    /// The installed database under the root.
    pub fn installed_path(&self) -> PathBuf {
        self.root.join(db::INSTALLED_PATH.trim_start_matches('/'))
    }
}

/// `apk update --wait N`: refresh the repository indexes (needs root).
pub fn update_argv(o: &ApkOptions) -> Vec<String> {
    let mut argv = o.base("update");
    o.wait(&mut argv);
    argv
}

/// `apk list --upgradable`: every available version newer than the installed one.
/// Read-only: takes no lock.
pub fn upgradable_argv(o: &ApkOptions) -> Vec<String> {
    let mut argv = o.base("list");
    argv.push("--upgradable".into());
    argv
}

/// `apk policy -- NAME`: the versions of one package and the repositories that carry
/// each. Read-only.
pub fn policy_argv(o: &ApkOptions, name: &PackageName) -> Vec<String> {
    let mut argv = o.base("policy");
    argv.push("--".into());
    argv.push(name.to_string());
    argv
}

fn targets(argv: &mut Vec<String>, targets: &[PackageTarget]) {
    argv.push("--".into());
    for t in targets {
        // Validated names and versions: no leading '-', no metacharacters.
        argv.push(format!("{}={}", t.name, t.version));
    }
}

/// `apk add --wait N --simulate -- NAME=VERSION...`: what installing exactly the
/// approved versions would do, without doing it.
///
/// No `--upgrade`: the `=VERSION` constraint already selects the version, and
/// `--upgrade` would also upgrade every dependency of the named packages to its
/// latest version, which the install gate would then refuse as not approved.
pub fn add_simulate_argv(o: &ApkOptions, t: &[PackageTarget]) -> Vec<String> {
    let mut argv = o.base("add");
    o.wait(&mut argv);
    argv.push("--simulate".into());
    targets(&mut argv, t);
    argv
}

/// `apk add --wait N -- NAME=VERSION...`: installs exactly the approved versions,
/// waiting a bounded time for the database lock.
pub fn add_argv(o: &ApkOptions, t: &[PackageTarget]) -> Vec<String> {
    let mut argv = o.base("add");
    o.wait(&mut argv);
    targets(&mut argv, t);
    argv
}

/// The request [`ApkBackend::refresh`] runs.
pub fn update_request(o: &ApkOptions) -> ExecRequest {
    ExecRequest::from_argv(&update_argv(o))
        .with_timeout(Duration::from_secs(o.lock_wait_secs + 600))
}

/// The request [`ApkBackend::simulate`] runs.
pub fn simulate_request(o: &ApkOptions, t: &[PackageTarget]) -> ExecRequest {
    ExecRequest::from_argv(&add_simulate_argv(o, t))
        .with_timeout(Duration::from_secs(o.lock_wait_secs + 300))
}

/// The request [`ApkBackend::install`] runs.
pub fn install_request(o: &ApkOptions, t: &[PackageTarget]) -> ExecRequest {
    ExecRequest::from_argv(&add_argv(o, t))
        .with_timeout(Duration::from_secs(o.lock_wait_secs + 1800))
}

/// True when apk gave up because another process holds its database lock
/// (`ERROR: Unable to lock database: ...`, after `--wait` ran out or without it).
pub fn is_locked(stderr: &str) -> bool {
    stderr.contains("Unable to lock database")
}

fn locked_message(o: &ApkOptions) -> String {
    format!(
        "the apk database is locked by another process (waited {} s); nothing was changed, try again later",
        o.lock_wait_secs
    )
}

/// True when the system runs a kernel whose modules are gone: the kernel package was
/// upgraded (apk removes the old `/lib/modules/RELEASE`) and the new kernel waits for
/// a reboot. A system without `/lib/modules` (a container) never needs one for this,
/// nor does one whose running release (`kernel_release`) cannot be read.
pub fn kernel_reboot_required(root: &Path, kernel_release: &Path) -> bool {
    let Ok(release) = std::fs::read_to_string(kernel_release) else {
        return false;
    };
    super::kernel_modules_gone(&root.join("lib/modules"), &release)
}

/// Alpine: the installed database read directly, apk for everything else.
#[derive(Debug, Clone)]
pub struct ApkBackend {
    opts: ApkOptions,
}

impl ApkBackend {
    /// A backend with these settings ([`ApkOptions::default`] in production).
    pub fn new(opts: ApkOptions) -> Self {
        ApkBackend { opts }
    }

    /// The settings.
    pub fn options(&self) -> &ApkOptions {
        &self.opts
    }
}

fn compare(a: &str, b: &str) -> Option<Ordering> {
    Family::Apk.compare(a, b)
}

/// Runs `req` and returns its standard output, or why it failed in apk's words.
async fn run_ok(exec: &dyn Executor, req: ExecRequest, what: &str) -> Result<String, PkgError> {
    super::run_ok(exec, req, what, error_reason).await
}

#[async_trait]
impl Backend for ApkBackend {
    fn family(&self) -> Family {
        Family::Apk
    }

    async fn inventory(&self, _exec: &dyn Executor) -> Result<Vec<InstalledPackage>, PkgError> {
        let parsed = super::read_database(self.opts.installed_path(), db::read_installed).await?;
        for reason in &parsed.skipped {
            tracing::warn!(%reason, "skipped a malformed apk database entry");
        }
        Ok(parsed.packages)
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), PkgError> {
        match exec.run(update_request(&self.opts)).await {
            Ok(o) if o.success() => Ok(()),
            Ok(o) if is_locked(&o.stderr) => Err(PkgError::Locked(locked_message(&self.opts))),
            Ok(o) => Err(PkgError::exited(
                "apk update",
                o.code,
                format!(
                    "{}; check /etc/apk/repositories and the network",
                    error_reason(&o.stdout, &o.stderr)
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, PkgError> {
        let out = run_ok(
            exec,
            ExecRequest::from_argv(&upgradable_argv(&self.opts)),
            "apk list --upgradable",
        )
        .await?;
        Ok(parse_upgradable(&out).updates(compare))
    }

    async fn candidate(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Candidate, PkgError> {
        let out = run_ok(
            exec,
            ExecRequest::from_argv(&policy_argv(&self.opts, name)),
            "apk policy",
        )
        .await?;
        let p = parse_policy(&out, name.as_str());
        for reason in &p.skipped {
            tracing::warn!(%reason, "skipped a line of apk policy");
        }
        Ok(match p.candidate(compare) {
            Some(c) => Candidate {
                version: Some(c.version.clone()),
                origins: c
                    .repos
                    .iter()
                    .filter(|r| !r.starts_with('@'))
                    .cloned()
                    .collect(),
                // Alpine's repositories carry no security flag.
                security: false,
            },
            None => Candidate::default(),
        })
    }

    async fn simulate(
        &self,
        exec: &dyn Executor,
        targets: &[PackageTarget],
    ) -> Result<Transaction, PkgError> {
        // apk add installs what is missing; install_updates only updates.
        let installed = self.inventory(exec).await?;
        let missing: Vec<&str> = targets
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| !installed.iter().any(|p| p.name == *n))
            .collect();
        if !missing.is_empty() {
            return Err(PkgError::Refused(format!(
                "not installed, and install_updates only updates installed packages: {}",
                missing.join(", ")
            )));
        }
        let o = match exec.run(simulate_request(&self.opts, targets)).await {
            Ok(o) => o,
            Err(e) => return Err(e.into()),
        };
        super::whole_plan(&o, "apk")?;
        if is_locked(&o.stderr) {
            return Err(PkgError::Locked(locked_message(&self.opts)));
        }
        if !o.success() {
            return Err(PkgError::ToolFailed {
                what: "apk cannot plan the install".to_owned(),
                exit: format!("exit {}", crate::text::exit_code(o.code)),
                output: error_reason(&o.stdout, &o.stderr),
            });
        }
        Ok(parse_simulation(&o.stdout).transaction())
    }

    async fn install(&self, exec: &dyn Executor, targets: &[PackageTarget]) -> InstallRun {
        let world = self.opts.root.join(WORLD);
        let before = std::fs::read_to_string(&world).ok();
        let mut run = InstallRun::finished(
            exec.run(install_request(&self.opts, targets)).await,
            is_locked,
        );
        // `apk add NAME=VERSION` pins NAME to VERSION in the world file; an approved
        // update must not freeze the package, so the world is put back as it was.
        if let Some(before) = before {
            let after = std::fs::read_to_string(&world).unwrap_or_default();
            match unpinned_world(&before, &after, targets) {
                Ok(Some(text)) => {
                    if let Err(e) = rewrite_keeping_mode(&world, text.as_bytes()) {
                        run.output.push_str(&format!(
                            "\nthe approved versions stay pinned in {}: {e}",
                            world.display()
                        ));
                    }
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!(target: "audit", %why, "apk world file left as apk wrote it");
                    run.output.push_str(&format!("\n{why}"));
                }
            }
        }
        run
    }

    async fn reboot_reasons(&self, _exec: &dyn Executor) -> Vec<String> {
        let (root, release) = (self.opts.root.clone(), self.opts.kernel_release.clone());
        let gone = tokio::task::spawn_blocking(move || kernel_reboot_required(&root, &release))
            .await
            .unwrap_or(false);
        if gone {
            vec!["the running kernel's modules (/lib/modules) are gone: a newer kernel was installed".to_owned()]
        } else {
            Vec::new()
        }
    }
}

/// Why apk's world file is left as apk wrote it after an install.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// apk added a word that is neither in the old world nor an approved pin.
    #[error("apk changed its world file beyond the approved versions ({0:?}); left as it is")]
    Changed(String),
    /// apk dropped a word of the old world that is not a target's entry.
    #[error("apk dropped {0:?} from its world file; left as it is")]
    Dropped(String),
}

/// apk's world file (the packages the administrator asked for), relative to the root.
pub const WORLD: &str = "etc/apk/world";

/// The world file to write back after installing `targets`: `before`, when the only
/// difference apk made is the `NAME=VERSION` pins of the targets. `Ok(None)` when there
/// is nothing to undo; `Err` (and the file is left alone) when apk changed anything
/// else.
pub fn unpinned_world(
    before: &str,
    after: &str,
    targets: &[PackageTarget],
) -> Result<Option<String>, WorldError> {
    if before == after {
        return Ok(None);
    }
    let old: std::collections::BTreeSet<&str> = before.split_whitespace().collect();
    let pins: std::collections::BTreeSet<String> = targets
        .iter()
        .map(|t| format!("{}={}", t.name, t.version))
        .collect();
    let names: std::collections::BTreeSet<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    for word in after.split_whitespace() {
        let pinned_target = pins.contains(word);
        if old.contains(word) || pinned_target {
            continue;
        }
        return Err(WorldError::Changed(word.to_owned()));
    }
    for word in &old {
        // apk replaces an entry for a target (`openssl`) by the pin; anything else of the
        // old world must still be there.
        let name = word.split(|c| "=<>~".contains(c)).next().unwrap_or(word);
        if !after.split_whitespace().any(|w| w == *word) && !names.contains(name) {
            return Err(WorldError::Dropped((*word).to_owned()));
        }
    }
    Ok(Some(before.to_owned()))
}

/// Replaces `path` atomically, keeping its permissions.
fn rewrite_keeping_mode(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let perms = std::fs::metadata(path)?.permissions();
    let tmp = path.with_extension("patchctl-tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        f.set_permissions(perms)?;
    }
    std::fs::rename(&tmp, path)
}
