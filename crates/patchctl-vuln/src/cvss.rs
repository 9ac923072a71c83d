//! cvss (in progress)
