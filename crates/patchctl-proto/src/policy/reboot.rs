//! Reboots (issue 14 §5): the hosts that need one, fleet-wide (`GET /api/v1/reboots`,
//! a JSON array of [`RebootHost`], paged like every list, with `X-Total-Count`), and a
//! host's boot state as `hosts show` shows it ([`HostReboot`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A host's reboot and boot state as the platform last heard it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostReboot {
    /// True when the host's agent reported that it needs a reboot.
    pub required: bool,
    /// Why, as the agent said it, one line each.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Since when the platform has known that it needs one (the first report of a
    /// reboot-required spell); absent when none is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// When the host last booted, as its agent reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booted_at: Option<DateTime<Utc>>,
}

/// One host of `GET /api/v1/reboots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RebootHost {
    /// Host id.
    pub id: Uuid,
    /// Host name as reported.
    pub hostname: String,
    /// Operating system (`PRETTY_NAME`).
    pub os: String,
    /// Last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// The reboot state (always `required` here).
    pub reboot: HostReboot,
}
