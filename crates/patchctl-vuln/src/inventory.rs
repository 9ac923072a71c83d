//! inventory (in progress)
