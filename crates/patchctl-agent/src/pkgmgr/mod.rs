//! Package-manager backends: each *plans* exact argument vectors for an operation and
//! parses what the program printed; the executor runs the plans. Tests assert on the
//! plans without running anything, and real-manager tests run them for real.

pub mod apt;
