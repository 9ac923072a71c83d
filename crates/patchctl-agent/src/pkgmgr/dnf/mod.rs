//! The dnf backend (RHEL 8+, AlmaLinux, Rocky, Fedora, Amazon Linux 2023), and yum on
//! older systems (RHEL/CentOS 7, Amazon Linux 2) with the same commands and output.
//!
//! What runs (every argument vector is built by a `pub fn` below and golden-tested):
//!
//! | operation | command |
//! |---|---|
//! | inventory | `rpm -qa --queryformat …` ([`crate::inventory::rpm`]) |
//! | one package | `rpm -q --queryformat … -- NAME` (exit 1 when not installed: empty) |
//! | refresh | `dnf -q makecache --refresh`; yum: `yum -q clean expire-cache`, then `yum -q makecache` |
//! | updates | `dnf -q check-update` (exit 100: updates, 0: none), then `dnf -q updateinfo list --updates` (yum: `updateinfo list updates`) |
//! | candidate | `dnf -q list -- NAME`, and `dnf -q updateinfo list --updates -- NAME` when an update is available |
//! | simulate | `dnf --assumeno --setopt=install_weak_deps=False upgrade -- NAME-EVR…` |
//! | install | `dnf -y --setopt=exit_on_lock=True --setopt=install_weak_deps=False upgrade -- NAME-EVR…` |
//! | reboot | `dnf -q needs-restarting -r`, else `rpm -q --queryformat '%{INSTALLTIME} %{VERSION}-%{RELEASE}.%{ARCH}\n' -- kernel-core kernel …` |
//!
//! Every dnf run starts with the common options of [`DnfOptions`]: `--installroot=`,
//! `--config=`, `--releasever=` and `--setopt=K=V` when set (tests point dnf at a private
//! installroot, repositories and cache with them; production sets none).
//!
//! Choices:
//! - **Security** comes only from the repository's update metadata (`updateinfo.xml`):
//!   an update is a security update when an advisory of type `security` lists a newer
//!   version of the package (`dnf updateinfo list --updates`, label `Important/Sec.`).
//!   Advisories are attached to the update of the same name and architecture, with their
//!   ids and severities; the repository id is the update's origin.
//! - **Versions** are `E:V-R` when the epoch is not 0, else `V-R`, as `rpm -q` gives them
//!   through [`crate::inventory::rpm::parse_qa`] and as dnf prints them. A target is
//!   passed to dnf as `NAME-EVR` (dnf and yum both read `NAME-[E:]V-R`).
//! - **The simulation** is the real command with `--assumeno`: dnf resolves, prints its
//!   transaction table and answers "no" (exit 1 with `Operation aborted.`, the expected
//!   outcome). The table is parsed into a [`Plan`]; `replacing` lines (obsoleted
//!   packages) are removals. Every target must appear in the plan at exactly its
//!   version, or be installed at it already: dnf silently leaves out an argument it has
//!   no match for (`No match for argument`), a version that is not newer (`Nothing to
//!   do.`) and a package with conflicts (`Skipping packages with conflicts`), and each of
//!   those is a refusal with its reason. Rows of module or group sections are refusals
//!   too (the plan would change more than packages).
//! - **Weak dependencies** are not installed (`install_weak_deps=False`, dnf only): a new
//!   `Recommends:` would otherwise be an unapproved install and block the update.
//! - **Locks**: before the install, the rpm transaction lock (`.rpm.lock` in the rpm
//!   database directory) is read from `/proc/locks` without taking it; the install runs
//!   with `exit_on_lock=True`, so dnf's own lock makes it exit at once (exit 200, `RPMDB
//!   already locked by PID`) instead of waiting without bound. Both are retried every 2 s
//!   until [`DnfOptions::lock_timeout`] (default [`super::LOCK_TIMEOUT_SECS`]); then the
//!   run reports `locked: true` with "locked by another process" and the holder.
//! - **Reboot**: `dnf needs-restarting -r` (dnf-plugins-core; exit 1 and "Reboot is
//!   required" when kernel, glibc, systemd… were updated since boot). When it is not
//!   available (plugin missing, plugins off, yum), the newest installed kernel (by install
//!   time) is compared with the running one (`/proc/sys/kernel/osrelease`): a reboot is
//!   required when they differ. The fallback sees only the kernel, not glibc or systemd.
//! - **Repair** before an install (`repair.rs`): an interrupted transaction can leave an
//!   old and a new version both installed; they are found in `rpm -qa` (kernels and
//!   keys aside) and removed with `dnf -y remove --duplicates` (yum: the install is
//!   refused, saying to run `package-cleanup --cleandupes`); an rpm database that cannot
//!   be opened is rebuilt first (`rpm --rebuilddb`). Each leaves an audit line.
//! - dnf 5 (Fedora 41+, also `/usr/bin/dnf`) has not been tried: its output may differ,
//!   and then the parsers record unreadable lines and the gate refuses.
//!
//! Layout: this file holds the options, the argument vectors and the [`Backend`]
//! implementation (what runs, and in which order); `parse.rs` holds the parsers of
//! the output (pure, re-exported here); `tests.rs` the unit tests.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::{Advisory, AvailableUpdate, PackageTarget};
use patchctl_proto::validate::PackageName;

use super::{Backend, Candidate, Family, InstallRun, PkgError, Transaction, Updates};
use crate::exec::{ExecRequest, Executor};
use crate::inventory::rpm;

mod parse;
mod repair;
#[cfg(test)]
mod tests;

pub use parse::*;
pub use repair::{duplicates, rebuilddb_argv, remove_duplicates_argv, rpmdb_unreadable};

/// dnf's path.
pub const DNF: &str = "/usr/bin/dnf";
/// yum's path (old systems, and a link to dnf on new ones).
pub const YUM: &str = "/usr/bin/yum";

/// Packages whose newest installed version is the kernel a reboot would boot, for the
/// reboot check without `needs-restarting`.
pub const KERNEL_PACKAGES: &[&str] = &[
    "kernel-core",
    "kernel",
    "kernel-uek-core",
    "kernel-uek",
    "kernel-rt-core",
    "kernel-rt",
];

/// The `--queryformat` of the kernel query: install time, then `V-R.ARCH` as `uname -r`
/// shows a running kernel.
pub const KERNEL_QUERY_FORMAT: &str = "%{INSTALLTIME} %{VERSION}-%{RELEASE}.%{ARCH}\n";

/// Where rpm keeps its transaction lock, relative to the root (RHEL 8 and older,
/// Fedora 36+ / RHEL 10).
const RPM_LOCKS: &[&str] = &["var/lib/rpm/.rpm.lock", "usr/lib/sysimage/rpm/.rpm.lock"];

/// How often a locked install is retried.
const LOCK_POLL: Duration = Duration::from_secs(2);

/// How long a real install may run before it is killed.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(1800);

/// Settings of the dnf backend. [`DnfOptions::default`] is production dnf at `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnfOptions {
    /// The program: [`DNF`] or [`YUM`].
    pub program: String,
    /// True for yum 3 (RHEL 7, Amazon Linux 2): a few commands differ.
    pub yum: bool,
    /// `--installroot=`: the system dnf works on and rpm reads (`/` when `None`).
    pub installroot: Option<PathBuf>,
    /// `--config=`: another configuration file.
    pub config: Option<PathBuf>,
    /// `--releasever=`.
    pub releasever: Option<String>,
    /// `--setopt=KEY=VALUE` for every run (tests: `reposdir`, `cachedir`, `gpgcheck`).
    pub setopt: Vec<(String, String)>,
    /// More rpm transaction lock files to wait for, absolute (besides the standard ones
    /// under the root).
    pub rpm_locks: Vec<PathBuf>,
    /// How long an install waits for another process's lock.
    pub lock_timeout: Duration,
}

impl Default for DnfOptions {
    fn default() -> Self {
        DnfOptions {
            program: DNF.to_owned(),
            yum: false,
            installroot: None,
            config: None,
            releasever: None,
            setopt: Vec::new(),
            rpm_locks: Vec::new(),
            lock_timeout: Duration::from_secs(super::LOCK_TIMEOUT_SECS),
        }
    }
}

impl DnfOptions {
    /// Settings for yum systems (`/usr/bin/yum`, yum 3 dialect).
    pub fn yum() -> Self {
        DnfOptions {
            program: YUM.to_owned(),
            yum: true,
            ..DnfOptions::default()
        }
    }

    /// The root of the system worked on: the installroot, or `/`.
    pub fn root(&self) -> &Path {
        self.installroot.as_deref().unwrap_or(Path::new("/"))
    }

    /// The rpm transaction lock files an install waits for.
    pub fn rpm_lock_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = RPM_LOCKS.iter().map(|l| self.root().join(l)).collect();
        v.extend(self.rpm_locks.iter().cloned());
        v
    }

    fn name(&self) -> &'static str {
        if self.yum { "yum" } else { "dnf" }
    }

    /// The program and the common options of every run.
    fn base(&self) -> Vec<String> {
        let mut argv = vec![self.program.clone()];
        if let Some(r) = &self.installroot {
            argv.push(format!("--installroot={}", r.display()));
        }
        if let Some(c) = &self.config {
            argv.push(format!("--config={}", c.display()));
        }
        if let Some(r) = &self.releasever {
            argv.push(format!("--releasever={r}"));
        }
        for (k, v) in &self.setopt {
            argv.push(format!("--setopt={k}={v}"));
        }
        argv
    }
}

fn strs(argv: &mut Vec<String>, args: &[&str]) {
    argv.extend(args.iter().map(|s| (*s).to_owned()));
}

/// The metadata refresh, one or two runs: `dnf -q makecache --refresh`; for yum,
/// `yum -q clean expire-cache` then `yum -q makecache`.
pub fn refresh_argvs(o: &DnfOptions) -> Vec<Vec<String>> {
    if o.yum {
        let mut expire = o.base();
        strs(&mut expire, &["-q", "clean", "expire-cache"]);
        let mut make = o.base();
        strs(&mut make, &["-q", "makecache"]);
        vec![expire, make]
    } else {
        let mut argv = o.base();
        strs(&mut argv, &["-q", "makecache", "--refresh"]);
        vec![argv]
    }
}

/// `dnf -q check-update`: every available update (exit 100 when there are some).
pub fn check_update_argv(o: &DnfOptions) -> Vec<String> {
    let mut argv = o.base();
    strs(&mut argv, &["-q", "check-update"]);
    argv
}

/// `dnf -q updateinfo list --updates [-- NAME]`: the advisories of the available
/// updates (yum 3 takes `updates` as a word).
pub fn updateinfo_argv(o: &DnfOptions, name: Option<&PackageName>) -> Vec<String> {
    let mut argv = o.base();
    strs(&mut argv, &["-q", "updateinfo", "list"]);
    argv.push(if o.yum { "updates" } else { "--updates" }.into());
    if let Some(n) = name {
        argv.push("--".into());
        argv.push(n.to_string());
    }
    argv
}

/// `dnf -q list -- NAME`: the installed and the available versions of one package.
pub fn list_argv(o: &DnfOptions, name: &PackageName) -> Vec<String> {
    let mut argv = o.base();
    strs(&mut argv, &["-q", "list", "--"]);
    argv.push(name.to_string());
    argv
}

/// The package argument of a target: `NAME-[E:]V-R`.
pub fn target_spec(t: &PackageTarget) -> String {
    format!("{}-{}", t.name, t.version)
}

fn upgrade_args(o: &DnfOptions, argv: &mut Vec<String>, targets: &[PackageTarget]) {
    if !o.yum {
        argv.push("--setopt=install_weak_deps=False".into());
    }
    argv.push("upgrade".into());
    argv.push("--".into());
    argv.extend(targets.iter().map(target_spec));
}

/// `dnf --assumeno --setopt=install_weak_deps=False upgrade -- NAME-EVR…`: the plan of
/// installing exactly the targets, answered "no". Not `-q`, which hides the plan.
pub fn simulate_argv(o: &DnfOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut argv = o.base();
    argv.push("--assumeno".into());
    upgrade_args(o, &mut argv, targets);
    argv
}

/// `dnf -y --setopt=exit_on_lock=True --setopt=install_weak_deps=False upgrade --
/// NAME-EVR…`: the install; exits at once (200) when another dnf holds its lock.
pub fn install_argv(o: &DnfOptions, targets: &[PackageTarget]) -> Vec<String> {
    let mut argv = o.base();
    argv.push("-y".into());
    argv.push("--setopt=exit_on_lock=True".into());
    upgrade_args(o, &mut argv, targets);
    argv
}

/// The request [`DnfBackend::install`] runs: [`install_argv`] with a 30-minute timeout.
pub fn install_request(o: &DnfOptions, targets: &[PackageTarget]) -> ExecRequest {
    ExecRequest::from_argv(&install_argv(o, targets)).with_timeout(INSTALL_TIMEOUT)
}

/// `dnf -q needs-restarting -r`; `None` for yum, whose `needs-restarting` is another
/// program.
pub fn needs_restarting_argv(o: &DnfOptions) -> Option<Vec<String>> {
    if o.yum {
        return None;
    }
    let mut argv = o.base();
    strs(&mut argv, &["-q", "needs-restarting", "-r"]);
    Some(argv)
}

/// `rpm -q --queryformat KERNEL_QUERY_FORMAT -- kernel-core kernel …`: the installed
/// kernels with their install times.
pub fn kernel_query_argv(o: &DnfOptions) -> Vec<String> {
    let mut argv = vec![rpm::RPM_PATH.to_owned()];
    if o.root() != Path::new("/") {
        argv.push(format!("--root={}", o.root().display()));
    }
    strs(
        &mut argv,
        &["-q", "--queryformat", KERNEL_QUERY_FORMAT, "--"],
    );
    strs(&mut argv, KERNEL_PACKAGES);
    argv
}

// ---------------------------------------------------------------------------------
// Parsers. None of them panics; lines they cannot read go to `skipped` with why.
// ---------------------------------------------------------------------------------

/// The available updates: check-update's list with the installed versions from the
/// inventory, the advisories of `updateinfo` attached by name and architecture, and
/// the packages obsoleting ones would remove.
pub fn updates_report(
    cu: &CheckUpdate,
    advisories: &AdvisoryList,
    installed: &[InstalledPackage],
) -> Updates {
    let mut out = Updates {
        skipped: cu
            .skipped
            .iter()
            .chain(&advisories.skipped)
            .cloned()
            .collect(),
        ..Updates::default()
    };
    let obsoleters = cu.obsoletes.iter().map(|(by, _)| by);
    for l in cu.updates.iter().chain(obsoleters) {
        if out
            .updates
            .iter()
            .any(|u| u.name == l.name && u.arch == l.arch)
        {
            continue;
        }
        let mut advs: Vec<Advisory> = Vec::new();
        for e in &advisories.entries {
            if e.name == l.name && e.arch == l.arch && !advs.iter().any(|a| a.id == e.advisory.id) {
                advs.push(e.advisory.clone());
            }
        }
        out.updates.push(AvailableUpdate {
            name: l.name.clone(),
            arch: l.arch.clone(),
            current_version: installed_version(installed, &l.name, &l.arch),
            candidate_version: l.evr.clone(),
            origins: vec![l.repo.clone()],
            security: advs.iter().any(|a| a.kind.as_deref() == Some("security")),
            advisories: advs,
        });
    }
    for (_, old) in &cu.obsoletes {
        if !out.removals.contains(&old.name) {
            out.removals.push(old.name.clone());
        }
    }
    out
}

/// Which of `files` another process holds a lock on, per `/proc/locks`.
fn rpm_lock_holder(files: &[PathBuf]) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    files.iter().find_map(|f| {
        let meta = std::fs::metadata(f).ok()?;
        let pid = crate::health::lock_holder(&locks, meta.dev(), meta.ino())?;
        Some(format!(
            "the rpm database lock {} is held by pid {pid}",
            f.display()
        ))
    })
}

/// dnf or yum, with rpm for the inventory.
#[derive(Debug, Clone)]
pub struct DnfBackend {
    opts: DnfOptions,
}

impl DnfBackend {
    /// A backend with these settings.
    pub fn new(opts: DnfOptions) -> Self {
        DnfBackend { opts }
    }

    /// Its settings.
    pub fn options(&self) -> &DnfOptions {
        &self.opts
    }
}

#[async_trait]
impl Backend for DnfBackend {
    fn family(&self) -> Family {
        if self.opts.yum {
            Family::Yum
        } else {
            Family::Dnf
        }
    }

    async fn inventory(&self, exec: &dyn Executor) -> Result<Vec<InstalledPackage>, PkgError> {
        rpm::inventory(exec, self.opts.root())
            .await
            .map_err(PkgError::from)
    }

    async fn repair(&self, exec: &dyn Executor) -> Result<Option<String>, PkgError> {
        repair::repair(&self.opts, exec).await
    }

    async fn installed(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Vec<InstalledPackage>, PkgError> {
        rpm::installed(exec, self.opts.root(), name)
            .await
            .map_err(PkgError::from)
    }

    async fn refresh(&self, exec: &dyn Executor) -> Result<(), PkgError> {
        for argv in refresh_argvs(&self.opts) {
            let req = ExecRequest::from_argv(&argv).with_timeout(Duration::from_secs(600));
            let o = exec.run(req).await?;
            if !o.success() {
                return Err(PkgError::failed(
                    &format!(
                        "{} makecache (refreshing the repository metadata)",
                        self.opts.name()
                    ),
                    o.code,
                    &o.stdout,
                    &o.stderr,
                ));
            }
        }
        Ok(())
    }

    async fn updates(&self, exec: &dyn Executor) -> Result<Updates, PkgError> {
        let installed = self.inventory(exec).await?;
        let o = exec
            .run(ExecRequest::from_argv(&check_update_argv(&self.opts)))
            .await?;
        if !matches!(o.code, Some(0) | Some(100)) {
            return Err(PkgError::failed(
                &format!("{} check-update", self.opts.name()),
                o.code,
                &o.stdout,
                &o.stderr,
            ));
        }
        let cu = parse_check_update(&o.stdout);
        let o = exec
            .run(ExecRequest::from_argv(&updateinfo_argv(&self.opts, None)))
            .await?;
        if !o.success() {
            return Err(PkgError::failed(
                &format!(
                    "{} updateinfo (reading the security advisories)",
                    self.opts.name()
                ),
                o.code,
                &o.stdout,
                &o.stderr,
            ));
        }
        let advisories = parse_updateinfo_list(&o.stdout);
        Ok(updates_report(&cu, &advisories, &installed))
    }

    async fn candidate(
        &self,
        exec: &dyn Executor,
        name: &PackageName,
    ) -> Result<Candidate, PkgError> {
        let o = exec
            .run(ExecRequest::from_argv(&list_argv(&self.opts, name)))
            .await?;
        if o.code == Some(1) && o.stderr.contains("No matching Packages") {
            return Ok(Candidate::default());
        }
        if !o.success() {
            return Err(PkgError::failed(
                &format!("{} list", self.opts.name()),
                o.code,
                &o.stdout,
                &o.stderr,
            ));
        }
        let list = parse_list(&o.stdout);
        let installed: Vec<&Listed> = list
            .installed
            .iter()
            .filter(|l| l.name == name.as_str())
            .collect();
        let arch = installed.first().map(|l| l.arch.as_str());
        let avail: Vec<&Listed> = list
            .available
            .iter()
            .filter(|l| l.name == name.as_str())
            .collect();
        // For an installed package, only its own architecture's update counts (an
        // available i686 build is no candidate for an installed x86_64 one).
        let best = match arch {
            Some(a) => avail.iter().find(|l| l.arch == a),
            None => avail.first(),
        }
        .copied();
        let Some(best) = best else {
            // Nothing newer: the candidate is what is installed.
            return Ok(match installed.first() {
                Some(i) => {
                    let repo = i.repo.trim_start_matches('@');
                    Candidate {
                        version: Some(i.evr.clone()),
                        origins: if matches!(repo, "System" | "commandline" | "") {
                            Vec::new()
                        } else {
                            vec![repo.to_owned()]
                        },
                        security: false,
                    }
                }
                None => Candidate::default(),
            });
        };
        let mut security = false;
        if !installed.is_empty() {
            let o = exec
                .run(ExecRequest::from_argv(&updateinfo_argv(
                    &self.opts,
                    Some(name),
                )))
                .await?;
            if !o.success() {
                return Err(PkgError::failed(
                    &format!("{} updateinfo", self.opts.name()),
                    o.code,
                    &o.stdout,
                    &o.stderr,
                ));
            }
            security = parse_updateinfo_list(&o.stdout).entries.iter().any(|e| {
                e.name == best.name
                    && e.arch == best.arch
                    && e.advisory.kind.as_deref() == Some("security")
            });
        }
        Ok(Candidate {
            version: Some(best.evr.clone()),
            origins: vec![best.repo.clone()],
            security,
        })
    }

    async fn simulate(
        &self,
        exec: &dyn Executor,
        targets: &[PackageTarget],
    ) -> Result<Transaction, PkgError> {
        let prog = self.opts.name();
        let o = exec
            .run(ExecRequest::from_argv(&simulate_argv(&self.opts, targets)))
            .await?;
        super::whole_plan(&o, prog)?;
        let plan = parse_transaction(&format!("{}\n{}", o.stdout, o.stderr));
        // --assumeno answers "no": dnf exits 1 after "Operation aborted." (yum: "Exiting
        // on user command"); 0 when there was nothing to do.
        let answered_no = o.code == Some(1)
            && (o.stderr.contains("Operation aborted")
                || o.stdout.contains("Exiting on user command")
                || o.stderr.contains("Exiting on user command"));
        if o.code != Some(0) && !answered_no {
            if !plan.no_match.is_empty() {
                let installed = self.inventory(exec).await?;
                return Err(PkgError::Refused(
                    plan.missing_targets(prog, targets, &installed).join("; "),
                ));
            }
            return Err(PkgError::failed(
                &format!("{prog} cannot plan the install: {prog} upgrade"),
                o.code,
                &o.stdout,
                &o.stderr,
            ));
        }
        let installed = self.inventory(exec).await?;
        let missing = plan.missing_targets(prog, targets, &installed);
        if !missing.is_empty() {
            return Err(PkgError::Refused(missing.join("; ")));
        }
        Ok(plan.transaction(&installed))
    }

    async fn install(&self, exec: &dyn Executor, targets: &[PackageTarget]) -> InstallRun {
        let deadline = Instant::now() + self.opts.lock_timeout;
        let wait = || async {
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(LOCK_POLL.min(left)).await;
        };
        let locked = |why: &str, code: Option<i32>| InstallRun {
            code,
            output: format!(
                "locked by another process: {why}; waited {} s, nothing was installed",
                self.opts.lock_timeout.as_secs()
            ),
            locked: true,
        };
        loop {
            let files = self.opts.rpm_lock_files();
            let held = tokio::task::spawn_blocking(move || rpm_lock_holder(&files))
                .await
                .unwrap_or(None);
            if let Some(why) = held {
                if Instant::now() >= deadline {
                    return locked(&why, None);
                }
                wait().await;
                continue;
            }
            let o = match exec.run(install_request(&self.opts, targets)).await {
                Ok(o) => o,
                Err(e) => {
                    return InstallRun {
                        code: None,
                        output: e.to_string(),
                        locked: false,
                    };
                }
            };
            if o.code != Some(0) {
                let both = format!("{}\n{}", o.stderr, o.stdout);
                if let Some(why) = lock_message(&both) {
                    if Instant::now() >= deadline {
                        return locked(why, o.code);
                    }
                    wait().await;
                    continue;
                }
            }
            return InstallRun {
                code: o.code,
                output: crate::text::tail(&format!("{}\n{}", o.stdout, o.stderr), 2000).to_owned(),
                locked: false,
            };
        }
    }

    async fn reboot_reasons(&self, exec: &dyn Executor) -> Vec<String> {
        if let Some(argv) = needs_restarting_argv(&self.opts) {
            if let Ok(o) = exec.run(ExecRequest::from_argv(&argv)).await {
                match parse_needs_restarting(o.code, &o.stdout) {
                    Some(true) => {
                        return vec![format!(
                            "needs-restarting -r: {}",
                            crate::text::truncate(
                                o.stdout
                                    .lines()
                                    .map(str::trim)
                                    .find(|l| !l.is_empty())
                                    .unwrap_or("Reboot is required"),
                                300
                            )
                        )];
                    }
                    Some(false) => return Vec::new(),
                    None => {}
                }
            }
        }
        let newest = match exec
            .run(ExecRequest::from_argv(&kernel_query_argv(&self.opts)))
            .await
        {
            Ok(o) => parse_kernel_query(&o.stdout),
            Err(_) => None,
        };
        let running = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        match newest {
            Some(n) if kernel_reboot_needed(Some(&n), &running) => vec![format!(
                "the newest installed kernel is {n}, {} is running",
                running.trim()
            )],
            _ => Vec::new(),
        }
    }
}
