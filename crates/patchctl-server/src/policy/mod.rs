//! Patch policy, the service functions the API and the dashboard share: groups and host
//! tags (`groups`). Each function checks what the request holds, says what was wrong in
//! an [`ApiError`](crate::error::ApiError), and returns the view both callers show.

pub mod groups;
