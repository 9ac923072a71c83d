//! The apk backend (skeleton; being written).

use async_trait::async_trait;
use patchctl_proto::agent::InstalledPackage;
use patchctl_proto::command::PackageTarget;
use patchctl_proto::validate::PackageName;

use super::{Backend, Candidate, Family, InstallRun, Transaction, Updates};
use crate::exec::Executor;

/// Settings of the apk backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApkOptions {}

/// The apk backend.
#[derive(Debug, Clone)]
pub struct ApkBackend {
    #[allow(dead_code)]
    opts: ApkOptions,
}

impl ApkBackend {
    /// A backend with these settings.
    pub fn new(opts: ApkOptions) -> Self {
        ApkBackend { opts }
    }
}

const NOT_YET: &str = "apk support is being written";

#[async_trait]
impl Backend for ApkBackend {
    fn family(&self) -> Family {
        Family::Apk
    }
    async fn inventory(&self, _exec: &dyn Executor) -> Result<Vec<InstalledPackage>, String> {
        Err(NOT_YET.into())
    }
    async fn refresh(&self, _exec: &dyn Executor) -> Result<(), String> {
        Err(NOT_YET.into())
    }
    async fn updates(&self, _exec: &dyn Executor) -> Result<Updates, String> {
        Err(NOT_YET.into())
    }
    async fn candidate(
        &self,
        _exec: &dyn Executor,
        _name: &PackageName,
    ) -> Result<Candidate, String> {
        Err(NOT_YET.into())
    }
    async fn simulate(
        &self,
        _exec: &dyn Executor,
        _targets: &[PackageTarget],
    ) -> Result<Transaction, String> {
        Err(NOT_YET.into())
    }
    async fn install(&self, _exec: &dyn Executor, _targets: &[PackageTarget]) -> InstallRun {
        InstallRun {
            code: None,
            output: NOT_YET.into(),
            locked: false,
        }
    }
    async fn reboot_required(&self, _exec: &dyn Executor) -> bool {
        false
    }
}
