//! Everything that crosses the wire between the PatchCTL agent, the platform and the
//! operator CLI. Serialisable types only, no I/O; plus, in [`inventory`], the pure
//! parsers of the package databases that both the agent and the platform read.
//!
//! Architecture invariant: only this crate defines what crosses the wire. The agent may
//! send only the types in [`agent`]; a test walks every field they can serialise and
//! compares it with the set that PRODUCT.md allows.

pub mod access;
pub mod agent;
pub mod api;
pub mod audit;
pub mod command;
pub mod inventory;
pub mod limits;
pub mod package;
pub mod policy;
pub mod release;
pub mod scan;
pub mod secret;
pub mod signing;
pub mod trust;
pub mod validate;

pub use secret::Secret;

/// Version of the agent ↔ platform protocol. Bumped on an incompatible change; the
/// platform answers a mismatching enrollment with a clear error.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest request body the platform accepts on the agent API (an inventory of tens of
/// thousands of packages fits comfortably).
pub const MAX_AGENT_BODY_BYTES: usize = 16 * 1024 * 1024;
