//! matcher (in progress)
