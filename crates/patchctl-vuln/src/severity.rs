//! severity (in progress)
