//! ecosystem (in progress)
