//! The subcommands, one module per command group. Each has its clap enum (or args
//! struct) and a `run` that `main` dispatches to; each prints only through
//! [`crate::output`].

pub mod admin;
pub mod approvals;
pub mod audit;
pub mod commands;
pub mod compliance;
pub mod deployments;
pub mod groups;
pub mod hosts;
pub mod keys;
pub mod release;
pub mod server;
pub mod settings;
pub mod tokens;
pub mod users;
pub mod vulndb;
pub mod vulns;
pub mod webhooks;
pub mod windows;
