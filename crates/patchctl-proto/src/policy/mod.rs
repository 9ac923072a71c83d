//! The operator API's types of patch policy: groups, approvals and manifests,
//! maintenance windows, deployments, reboots, exceptions and deadlines, webhooks.

pub mod approvals;
pub mod deadlines;
pub mod deployments;
pub mod groups;
pub mod reboot;
pub mod webhooks;
pub mod windows;
