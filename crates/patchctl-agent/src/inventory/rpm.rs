//! The rpm inventory on the host: the argument vectors of the `rpm` queries and the two
//! queries every rpm-based backend (dnf, yum, zypper) makes.
//!
//! [`inventory`] and [`installed`] have the executor run [`query_all_argv`] or
//! [`query_one_argv`] and hand the standard output to [`parse_qa`] (the parser of
//! [`patchctl_proto::inventory::rpm`], shared with the platform's offline check and
//! re-exported here); nothing here starts a program any other way.

use std::path::Path;

use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::validate::PackageName;

pub use patchctl_proto::inventory::rpm::{ParsedQa, QUERY_FORMAT, parse_qa, parse_source_rpm};

use crate::exec::{ExecError, ExecRequest, Executor, Priority};
use crate::text::{exit_code, failure_detail};

/// Why an rpm query gave no inventory.
#[derive(Debug, thiserror::Error)]
pub enum RpmQueryError {
    /// rpm could not be run (refused, missing, timed out).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// rpm ran and failed; the tail of what it said.
    #[error("{what} failed (exit {code}): {detail}")]
    Failed {
        /// The query, as `rpm -qa` or `rpm -q`.
        what: &'static str,
        /// Its exit code, or `none` when a signal ended it.
        code: String,
        /// The tail of its standard error (or output).
        detail: String,
    },
}

impl RpmQueryError {
    fn failed(what: &'static str, code: Option<i32>, stdout: &str, stderr: &str) -> Self {
        RpmQueryError::Failed {
            what,
            code: exit_code(code),
            detail: failure_detail(stdout, stderr).to_owned(),
        }
    }
}

/// The absolute path of the rpm program.
pub const RPM_PATH: &str = "/usr/bin/rpm";

/// `rpm` with `--root ROOT` when the system is not the one at `/` (tests use an
/// installroot).
fn rpm_argv(root: &Path) -> Vec<String> {
    let mut argv = vec![RPM_PATH.to_owned()];
    if root != Path::new("/") {
        argv.push(format!("--root={}", root.display()));
    }
    argv
}

/// The argument vector listing every installed package of the system at `root`.
pub fn query_all_argv(root: &Path) -> Vec<String> {
    let mut argv = rpm_argv(root);
    argv.extend([
        "-qa".to_owned(),
        "--queryformat".to_owned(),
        QUERY_FORMAT.to_owned(),
    ]);
    argv
}

/// The argument vector querying one package; the name comes after `--`, so it can
/// never be read as an option.
pub fn query_one_argv(root: &Path, name: &PackageName) -> Vec<String> {
    let mut argv = rpm_argv(root);
    argv.extend([
        "-q".to_owned(),
        "--queryformat".to_owned(),
        QUERY_FORMAT.to_owned(),
        "--".to_owned(),
        name.as_str().to_owned(),
    ]);
    argv
}

/// Every installed package of the system at `root` (`rpm -qa`, at background priority:
/// a read of the database, never an install); lines that cannot be read are logged and left out,
/// and the output is parsed on a lowered thread.
pub async fn inventory(
    exec: &dyn Executor,
    root: &Path,
) -> Result<Vec<InstalledPackage>, RpmQueryError> {
    let o = exec
        .run(ExecRequest::from_argv(&query_all_argv(root)).with_priority(Priority::Background))
        .await?;
    if !o.success() {
        return Err(RpmQueryError::failed(
            "rpm -qa", o.code, &o.stdout, &o.stderr,
        ));
    }
    let parsed = crate::priority::in_background(|| parse_qa(&o.stdout));
    for reason in &parsed.skipped {
        tracing::warn!(%reason, "skipped a line of rpm -qa");
    }
    Ok(parsed.packages)
}

/// The installed instances of `name` on the system at `root` (`rpm -q`); empty when
/// rpm says it is not installed.
pub async fn installed(
    exec: &dyn Executor,
    root: &Path,
    name: &PackageName,
) -> Result<Vec<InstalledPackage>, RpmQueryError> {
    let o = exec
        .run(ExecRequest::from_argv(&query_one_argv(root, name)))
        .await?;
    let parsed = parse_qa(&o.stdout);
    match o.code {
        Some(0) => Ok(parsed.packages),
        // rpm -q exits 1 for a package that is not installed.
        Some(1) if parsed.packages.is_empty() && o.stdout.contains("is not installed") => {
            Ok(Vec::new())
        }
        _ => Err(RpmQueryError::failed(
            "rpm -q", o.code, &o.stdout, &o.stderr,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(
        name: &str,
        version: &str,
        arch: &str,
        source: Option<(&str, &str)>,
    ) -> InstalledPackage {
        InstalledPackage {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            source_name: source.map(|s| s.0.into()),
            source_version: source.map(|s| s.1.into()),
            status: "installed".into(),
        }
    }

    /// An executor that answers every run with one exit code and output, recording
    /// the argument vectors.
    struct Answer(
        i32,
        &'static str,
        &'static str,
        std::sync::Mutex<Vec<Vec<String>>>,
    );

    impl Answer {
        fn new(code: i32, stdout: &'static str, stderr: &'static str) -> Self {
            Answer(code, stdout, stderr, Default::default())
        }
    }

    #[async_trait::async_trait]
    impl Executor for Answer {
        async fn run(
            &self,
            req: ExecRequest,
        ) -> Result<crate::exec::ExecOutput, crate::exec::ExecError> {
            let mut argv = vec![req.program];
            argv.extend(req.args);
            self.3.lock().unwrap().push(argv);
            Ok(crate::exec::ExecOutput {
                code: Some(self.0),
                stdout: self.1.into(),
                stderr: self.2.into(),
                truncated: false,
            })
        }
        fn history(&self) -> Vec<Vec<String>> {
            self.3.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn the_queries_through_an_executor() {
        let root = Path::new("/srv/root");
        let name = PackageName::parse("pc-sec").unwrap();
        let line = "pc-sec\t0\t1.0\t1\tnoarch\tpc-sec-1.0-1.src.rpm\n";
        let sec = pkg("pc-sec", "1.0-1", "noarch", Some(("pc-sec", "1.0-1")));

        let exec = Answer::new(0, line, "");
        assert_eq!(
            inventory(&exec, root).await.map_err(|e| e.to_string()),
            Ok(vec![sec.clone()])
        );
        assert_eq!(
            installed(&exec, root, &name)
                .await
                .map_err(|e| e.to_string()),
            Ok(vec![sec])
        );
        assert_eq!(
            exec.history(),
            [query_all_argv(root), query_one_argv(root, &name)]
        );
        // rpm -q says the package is not installed: exit 1, nothing installed.
        let exec = Answer::new(1, "package pc-sec is not installed\n", "");
        assert_eq!(
            installed(&exec, root, &name)
                .await
                .map_err(|e| e.to_string()),
            Ok(Vec::new())
        );
        // Exit 1 for anything else is a failure, never "not installed".
        let exec = Answer::new(1, "", "error: cannot open Packages database\n");
        assert_eq!(
            installed(&exec, root, &name)
                .await
                .map_err(|e| e.to_string()),
            Err("rpm -q failed (exit 1): error: cannot open Packages database".into())
        );
        assert_eq!(
            inventory(&exec, root).await.map_err(|e| e.to_string()),
            Err("rpm -qa failed (exit 1): error: cannot open Packages database".into())
        );
    }

    #[test]
    fn argument_vectors() {
        assert_eq!(
            query_all_argv(Path::new("/")),
            ["/usr/bin/rpm", "-qa", "--queryformat", QUERY_FORMAT]
        );
        assert_eq!(
            query_all_argv(Path::new("/tmp/r"))[..2],
            ["/usr/bin/rpm", "--root=/tmp/r"]
        );
        let name = PackageName::parse("openssl-libs").unwrap();
        assert_eq!(
            query_one_argv(Path::new("/"), &name),
            [
                "/usr/bin/rpm",
                "-q",
                "--queryformat",
                QUERY_FORMAT,
                "--",
                "openssl-libs"
            ]
        );
        assert_eq!(QUERY_FORMAT.matches('\t').count(), 5);
        assert!(QUERY_FORMAT.ends_with('\n'));
    }
}
