//! One installed package as the agent reports it: in an inventory upload (`agent`), in a
//! package-info answer (`command`) and from the `inventory` parsers. A leaf module, so
//! that both message modules can use it without importing each other; `agent`
//! re-exports it, so its path `patchctl_proto::agent::InstalledPackage` stays.

use serde::{Deserialize, Serialize};

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstalledPackage {
    /// Binary package name.
    pub name: String,
    /// Installed version, with epoch where the package has one (`1:2.36.1-8`).
    pub version: String,
    /// Architecture (`amd64`, `x86_64`, `all`, `noarch`).
    pub arch: String,
    /// Source package name, when it differs or is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Source package version, when it differs from `version` or is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Package manager state (`installed`, `half-configured`, ...).
    pub status: String,
}
