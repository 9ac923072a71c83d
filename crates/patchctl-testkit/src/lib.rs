//! The test harness of PatchCTL's environment-dependent tests (dev-only, never
//! published).
//!
//! Some tests need what a fresh machine may not have: root, a package manager
//! (debootstrap, dnf, zypper, pacman, rpm), a PostgreSQL server or the real data in
//! `../shared/data`. With the standard harness such a test could only print "SKIPPED"
//! to captured output and pass, so a run hid every skip. A test binary on this harness
//! (`harness = false` in its `[[test]]` entry) registers each test with its
//! prerequisites as values ([`Need`]); before anything runs, the harness checks them:
//!
//! - all present: the test runs as usual;
//! - one missing: the test is reported as `ignored (<reason>)` on its own line, and the
//!   binary ends with the list `skipped N: name — reason`;
//! - one missing under `CI=true`: the test fails, saying which prerequisite is missing
//!   and that CI requires it (CI installs everything; a missing tool there is a bug).
//!
//! The command line is libtest's (through `libtest-mimic`): `cargo test -- NAME`,
//! `--exact`, `--skip`, `--list`, `--test-threads` work as usual. Output is not
//! captured: what a test prints shows as it runs (`--nocapture` is accepted).
//!
//! ```no_run
//! use patchctl_testkit::{Harness, Need, trial};
//!
//! fn plain() {}
//! async fn with_postgres() {}
//!
//! fn main() -> std::process::ExitCode {
//!     Harness::new()
//!         .test(trial!(plain))
//!         .test(trial!(async with_postgres).needs([Need::Postgres]))
//!         .run()
//! }
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Completion, Conclusion, Failed, FormatSetting, Trial};

/// The variable naming the PostgreSQL server the storage tests create databases on.
pub const POSTGRES_ENV: &str = "PATCHCTL_TEST_POSTGRES_URL";

/// The variable that overrides where the shared data directory is (default:
/// `../shared/data` beside the repository). Point it at an empty directory to run the
/// tests as on a machine without it.
pub const SHARED_DATA_ENV: &str = "PATCHCTL_TEST_SHARED_DATA";

/// A prerequisite of a test, checked by the harness before the test runs.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Running as root (effective user id 0).
    Root,
    /// A program: an absolute path that must exist, or a bare name found on `PATH`.
    Program(&'static str),
    /// A PostgreSQL server: [`POSTGRES_ENV`] set to its URL.
    Postgres,
    /// A file or directory under the shared data directory ([`shared_data`]); `""` is
    /// the directory itself.
    SharedData(&'static str),
    /// A file of this machine, e.g. `/var/lib/dpkg/status` (a dpkg-based system).
    File(&'static str),
    /// Anything else, checked by the test's own function.
    Check(&'static Check),
}

/// A prerequisite no other [`Need`] describes (a system trust store, say).
#[derive(Debug)]
pub struct Check {
    /// What is needed, for [`Need`]'s display.
    pub what: &'static str,
    /// `None` when it is there; otherwise why not and what to do.
    pub missing: fn() -> Option<String>,
}

impl Need {
    /// `None` when the prerequisite is there; otherwise why the test cannot run and what
    /// to do about it.
    pub fn missing(&self) -> Option<String> {
        match *self {
            Need::Root => (!nix::unistd::geteuid().is_root())
                .then(|| "not running as root: run the tests as root".to_owned()),
            Need::Program(program) => {
                if find_program(program).is_some() {
                    return None;
                }
                let name = program_name(program);
                Some(match package_of(name) {
                    Some(package) => format!("{name} is not installed (apt-get install {package})"),
                    None => format!("{name} is not installed ({program} not found)"),
                })
            }
            Need::Postgres => match std::env::var(POSTGRES_ENV) {
                Ok(url) if !url.trim().is_empty() => None,
                _ => Some(format!(
                    "no PostgreSQL: set {POSTGRES_ENV}, e.g. \
                     postgres://postgres@127.0.0.1:5432/test"
                )),
            },
            Need::SharedData(rel) => {
                let path = shared_data(rel);
                (!path.exists()).then(|| {
                    format!(
                        "shared data missing: {} (../shared/data beside the repository, \
                         or set {SHARED_DATA_ENV})",
                        path.display()
                    )
                })
            }
            Need::File(path) => (!Path::new(path).exists())
                .then(|| format!("{path} does not exist on this machine")),
            Need::Check(check) => (check.missing)(),
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Root => f.write_str("root"),
            Need::Program(p) => write!(f, "program {p}"),
            Need::Postgres => write!(f, "PostgreSQL ({POSTGRES_ENV})"),
            Need::SharedData(rel) => write!(f, "shared data {rel}"),
            Need::File(p) => write!(f, "file {p}"),
            Need::Check(check) => f.write_str(check.what),
        }
    }
}

/// The file name of `program` (a path or a name).
fn program_name(program: &str) -> &str {
    Path::new(program)
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or(program)
}

/// The Debian package that ships `program`, for the hint in a skip reason.
fn package_of(program: &str) -> Option<&'static str> {
    Some(match program {
        "debootstrap" => "debootstrap",
        "dnf" => "dnf",
        "rpm" | "rpmbuild" => "rpm",
        "createrepo_c" | "modifyrepo_c" => "createrepo-c",
        "zypper" => "zypper",
        "pacman" => "pacman-package-manager",
        // repo-add sources makepkg's utility scripts (only a Recommends of pacman).
        "repo-add" => "pacman-package-manager makepkg",
        "makepkg" => "makepkg",
        "bsdtar" => "libarchive-tools",
        "apt-get" | "apt-cache" => "apt",
        "dpkg" | "dpkg-deb" | "dpkg-query" => "dpkg",
        "systemd-analyze" => "systemd",
        _ => return None,
    })
}

/// Where `program` is: itself when it is a path (with a `/`) that exists, else the first
/// `PATH` entry holding it.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `rel` under the shared data directory: [`SHARED_DATA_ENV`] when set, else
/// `../shared/data` beside the repository.
pub fn shared_data(rel: &str) -> PathBuf {
    let base = match std::env::var_os(SHARED_DATA_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // crates/patchctl-testkit -> crates -> the repository -> beside it.
        _ => match Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(3) {
            Some(beside) => beside.join("shared/data"),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        },
    };
    if rel.is_empty() { base } else { base.join(rel) }
}

/// True under `CI=true`, where a missing prerequisite is a failure, not a skip.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// How a test's body runs.
enum Body {
    /// A plain function.
    Sync(Box<dyn FnOnce() + Send>),
    /// An async function on its own tokio runtime, like `#[tokio::test]`.
    Async {
        /// Makes the future (on the test's thread, so it need not be `Send`).
        make: Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>,
        /// `None`: a current-thread runtime; `Some(workers)`: a multi-thread one
        /// (`Some(None)`: tokio's default number of workers).
        multi_thread: Option<Option<usize>>,
    },
}

/// One test: its name, its prerequisites and its body.
pub struct Test {
    name: String,
    needs: Vec<Need>,
    body: Body,
}

impl Test {
    /// A test running `body` (a `#[test]` function).
    pub fn sync(name: impl Into<String>, body: impl FnOnce() + Send + 'static) -> Test {
        Test {
            name: name.into(),
            needs: Vec::new(),
            body: Body::Sync(Box::new(body)),
        }
    }

    /// A test running the future of `body` on a current-thread tokio runtime with every
    /// driver enabled (a `#[tokio::test]` function).
    pub fn tokio<F, Fut>(name: impl Into<String>, body: F) -> Test
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        Test {
            name: name.into(),
            needs: Vec::new(),
            body: Body::Async {
                make: Box::new(move || Box::pin(body())),
                multi_thread: None,
            },
        }
    }

    /// Runs an async test on a multi-thread runtime of `workers` threads (`None`:
    /// tokio's default), like `#[tokio::test(flavor = "multi_thread")]`. No effect on a
    /// sync test.
    pub fn multi_thread(mut self, workers: Option<usize>) -> Test {
        if let Body::Async { multi_thread, .. } = &mut self.body {
            *multi_thread = Some(workers);
        }
        self
    }

    /// Adds prerequisites.
    pub fn needs(mut self, needs: impl IntoIterator<Item = Need>) -> Test {
        self.needs.extend(needs);
        self
    }

    /// The test's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Why a test of `needs` cannot run here (every missing prerequisite), or `None`.
/// Missing programs are said in one phrase with the packages that ship them, and missing
/// shared data once: the whole directory, or the paths missing in it.
fn missing(needs: &[Need]) -> Option<String> {
    let mut reasons = Vec::new();
    let mut programs = Vec::new();
    let mut data = Vec::new();
    for need in needs {
        match need {
            Need::Program(program) => {
                if need.missing().is_some() {
                    programs.push(program_name(program));
                }
            }
            Need::SharedData(rel) => {
                if need.missing().is_some() {
                    data.push(*rel);
                }
            }
            _ => reasons.extend(need.missing()),
        }
    }
    if !programs.is_empty() {
        let mut packages: Vec<&str> = Vec::new();
        let named = programs.iter().filter_map(|p| package_of(p));
        for package in named.flat_map(str::split_whitespace) {
            if !packages.contains(&package) {
                packages.push(package);
            }
        }
        let mut why = match programs.as_slice() {
            [one] => format!("{one} is not installed"),
            many => format!("not installed: {}", many.join(", ")),
        };
        if !packages.is_empty() {
            why.push_str(&format!(" (apt-get install {})", packages.join(" ")));
        }
        reasons.push(why);
    }
    if !data.is_empty() {
        let base = shared_data("");
        reasons.push(if base.is_dir() {
            format!(
                "shared data missing in {}: {}",
                base.display(),
                data.join(", ")
            )
        } else {
            format!(
                "no shared data at {}: put ../shared beside the repository or set \
                 {SHARED_DATA_ENV}",
                base.display()
            )
        });
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Runs `body` as the test's code.
fn run_body(body: Body) {
    match body {
        Body::Sync(f) => f(),
        Body::Async { make, multi_thread } => {
            let mut builder = match multi_thread {
                None => tokio::runtime::Builder::new_current_thread(),
                Some(workers) => {
                    let mut b = tokio::runtime::Builder::new_multi_thread();
                    if let Some(n) = workers {
                        b.worker_threads(n);
                    }
                    b
                }
            };
            let runtime = builder
                .enable_all()
                .build()
                .expect("cannot build the test's tokio runtime");
            runtime.block_on(make());
        }
    }
}

/// A test binary's tests, run with libtest's command line.
#[derive(Default)]
pub struct Harness {
    tests: Vec<Test>,
}

impl Harness {
    /// No tests yet.
    pub fn new() -> Harness {
        Harness::default()
    }

    /// Registers `test`.
    pub fn test(mut self, test: Test) -> Harness {
        self.tests.push(test);
        self
    }

    /// Registers `tests`.
    pub fn tests(mut self, tests: impl IntoIterator<Item = Test>) -> Harness {
        self.tests.extend(tests);
        self
    }

    /// Parses the command line, runs the selected tests and reports; the exit code is
    /// the run's (failure when a test failed).
    pub fn run(self) -> ExitCode {
        let args = Arguments::from_args();
        self.run_with(&args)
    }

    /// [`Harness::run`] with `args` instead of the command line.
    pub fn run_with(self, args: &Arguments) -> ExitCode {
        let (conclusion, skipped) = self.execute(args, ci());
        let quiet_list = args.list || matches!(args.format, Some(FormatSetting::Json));
        if !skipped.is_empty() && !quiet_list {
            println!(
                "skipped {} (a prerequisite is missing here; CI=true makes it a failure):",
                skipped.len()
            );
            for (name, reason) in &skipped {
                println!("    {name} — {reason}");
            }
            println!();
        }
        conclusion.exit_code()
    }

    /// Runs the tests; a missing prerequisite fails its test when `ci`, else the test is
    /// ignored with the reason. Returns libtest's conclusion and the skipped tests
    /// (name, reason) that the filter selected.
    fn execute(self, args: &Arguments, ci: bool) -> (Conclusion, Vec<(String, String)>) {
        let mut skipped = Vec::new();
        let mut trials = Vec::new();
        let mut tests = self.tests;
        // In name order, as libtest lists and runs them.
        tests.sort_by(|a, b| a.name.cmp(&b.name));
        for test in tests {
            let Test { name, needs, body } = test;
            let trial = match missing(&needs) {
                None => Trial::test(name, move || {
                    run_body(body);
                    Ok(())
                }),
                Some(reason) if ci => Trial::test(name, move || {
                    Err(Failed::from(format!(
                        "missing prerequisite: {reason}; CI=true requires every \
                         prerequisite (unset CI to skip this test instead)"
                    )))
                }),
                Some(reason) => {
                    let shown = reason.clone();
                    let trial =
                        Trial::ignorable_test(name, move || Ok(Completion::ignored_with(shown)));
                    if !args.is_filtered_out(&trial) {
                        skipped.push((trial.name().to_owned(), reason));
                    }
                    trial
                }
            };
            trials.push(trial);
        }
        (libtest_mimic::run(args, trials), skipped)
    }
}

/// A [`Test`] named after its function: `trial!(f)` is `Test::sync("f", f)`,
/// `trial!(async f)` is `Test::tokio("f", f)`.
#[macro_export]
macro_rules! trial {
    (async $f:ident) => {
        $crate::Test::tokio(stringify!($f), $f)
    };
    ($f:ident) => {
        $crate::Test::sync(stringify!($f), $f)
    };
}

/// A new, empty database on the server of [`POSTGRES_ENV`] (a test that calls this
/// declares [`Need::Postgres`]); its URL, with the server's and the query's parts kept.
/// Named `<prefix>_<random>`; left for the server's owner to drop.
pub async fn scratch_postgres(prefix: &str) -> String {
    use sqlx::Connection;
    let base = std::env::var(POSTGRES_ENV).expect("the test declares Need::Postgres");
    let name = format!(
        "{prefix}_{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_ENV}: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create the scratch database {name}: {e}"));
    let (main, query) = match base.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (base.as_str(), None),
    };
    let start = main.find("://").map_or(0, |i| i + 3);
    let root = match main[start..].find('/') {
        Some(i) => &main[..start + i],
        None => main,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Drops a database [`scratch_postgres`] made (its connections are ended first); a URL
/// that is not PostgreSQL's is left alone, so a test over both backends can call it
/// either way. Failures are ignored: the database is scratch.
pub async fn drop_scratch_postgres(url: &str) {
    use sqlx::Connection;
    if !url.starts_with("postgres") {
        return;
    }
    let Some(name) = url
        .rsplit('/')
        .next()
        .and_then(|last| last.split('?').next())
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    else {
        return;
    };
    let Ok(base) = std::env::var(POSTGRES_ENV) else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_by_path_or_by_name() {
        assert!(Need::Program("sh").missing().is_none());
        assert!(Need::Program("/bin/sh").missing().is_none());
        let why = Need::Program("/usr/sbin/debootstrap-not-here")
            .missing()
            .unwrap();
        assert!(
            why.contains("debootstrap-not-here is not installed"),
            "{why}"
        );
        let why = Need::Program("surely-no-such-program").missing().unwrap();
        assert!(why.contains("not found"), "{why}");
        let why = Need::Program("/surely/not/debootstrap").missing().unwrap();
        assert_eq!(
            why,
            "debootstrap is not installed (apt-get install debootstrap)"
        );
    }

    #[test]
    fn a_missing_program_says_which_package_ships_it() {
        assert_eq!(package_of("debootstrap"), Some("debootstrap"));
        assert_eq!(package_of("createrepo_c"), Some("createrepo-c"));
        assert_eq!(package_of("pacman"), Some("pacman-package-manager"));
        assert_eq!(package_of("frobnicate"), None);
    }

    #[test]
    fn files_and_shared_data_are_checked_where_they_should_be() {
        assert!(Need::File("/").missing().is_none());
        let why = Need::File("/surely/not/here").missing().unwrap();
        assert!(why.contains("/surely/not/here"), "{why}");
        assert!(
            shared_data("osv").ends_with("shared/data/osv")
                || std::env::var_os(SHARED_DATA_ENV).is_some()
        );
    }

    static NEVER: Check = Check {
        what: "something never there",
        missing: || Some("never there: nothing to do".into()),
    };

    #[test]
    fn a_check_says_why_in_its_own_words() {
        assert_eq!(
            Need::Check(&NEVER).missing().as_deref(),
            Some("never there: nothing to do")
        );
        assert_eq!(Need::Check(&NEVER).to_string(), "something never there");
    }

    #[test]
    fn every_missing_need_is_in_the_reason() {
        let t = Test::sync("t", || {})
            .needs([Need::File("/surely/not/a"), Need::Program("/surely/not/b")]);
        let why = missing(&t.needs).unwrap();
        assert!(
            why.contains("/surely/not/a") && why.contains("b is not installed"),
            "{why}"
        );
        let why = missing(&[
            Need::Program("/surely/not/dnf"),
            Need::Program("/surely/not/rpm"),
            Need::Program("/surely/not/rpmbuild"),
        ])
        .unwrap();
        assert_eq!(
            why,
            "not installed: dnf, rpm, rpmbuild (apt-get install dnf rpm)"
        );
        assert!(missing(&Test::sync("t", || {}).needs).is_none());
    }

    #[test]
    fn a_missing_prerequisite_is_ignored_with_its_reason_and_fails_under_ci() {
        fn harness() -> Harness {
            Harness::new().test(Test::sync("present", || {})).test(
                Test::sync("absent", || panic!("must not run"))
                    .needs([Need::Program("/nonexistent/patchctl-testkit-probe")]),
            )
        }
        let args = Arguments {
            test_threads: Some(1),
            // JSON lines: the inner run must not print a libtest summary line that a
            // reader of this test binary's output could take for its own.
            format: Some(FormatSetting::Json),
            ..Arguments::default()
        };
        // Outside CI: ignored, with its reason in the skip list; the run passes.
        let (c, skipped) = harness().execute(&args, false);
        assert_eq!((c.num_passed, c.num_ignored, c.num_failed), (1, 1, 0));
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, "absent");
        assert!(
            skipped[0]
                .1
                .contains("patchctl-testkit-probe is not installed"),
            "{skipped:?}"
        );
        assert!(!c.has_failed());
        // Under CI: the same test fails (without running its body), nothing is skipped.
        let (c, skipped) = harness().execute(&args, true);
        assert_eq!((c.num_passed, c.num_ignored, c.num_failed), (1, 0, 1));
        assert!(skipped.is_empty());
        assert!(c.has_failed());
    }

    #[test]
    fn async_bodies_run_on_either_runtime() {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        let t = Test::tokio("a", move || async move {
            tokio::task::yield_now().await;
            tx.send(1).unwrap();
        });
        run_body(t.body);
        let t = Test::tokio("b", move || async move {
            tokio::spawn(async {}).await.unwrap();
            tx2.send(2).unwrap();
        })
        .multi_thread(Some(2));
        run_body(t.body);
        assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
    }
}
