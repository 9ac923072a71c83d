//! Patch policy math: when a maintenance window is open (`window`), when a finding is
//! due (`deadline`), how a deployment's hosts fall into rings and whether a ring may
//! proceed (`rollout`). Nothing here reads the clock or does I/O: every function takes
//! the time it is asked about, so that tests control time.

pub mod deadline;
pub mod rollout;
pub mod window;
