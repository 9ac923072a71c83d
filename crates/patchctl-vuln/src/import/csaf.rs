//! The parts of a CSAF 2.0 document (`vulnerabilities[]`) that Red Hat's and SUSE's
//! importers read alike: remediations, scores, threats and flags. Each vendor's product
//! tree and product status are read by its own module (they name products differently).

use serde::Deserialize;

/// A `remediations[]` entry: a category (`vendor_fix`, `no_fix_planned`,
/// `none_available`, `workaround`), the vendor's words and the products it covers.
#[derive(Deserialize)]
pub(crate) struct Remediation {
    pub(crate) category: String,
    #[serde(default)]
    pub(crate) details: Option<String>,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) product_ids: Vec<String>,
}

/// A `scores[]` entry.
#[derive(Deserialize)]
pub(crate) struct Score {
    #[serde(default)]
    pub(crate) cvss_v3: Option<Cvss>,
    #[serde(default)]
    pub(crate) cvss_v2: Option<Cvss>,
}

/// A CVSS block of a score.
#[derive(Deserialize)]
pub(crate) struct Cvss {
    #[serde(default, rename = "vectorString")]
    pub(crate) vector: Option<String>,
    #[serde(default, rename = "baseScore")]
    pub(crate) base_score: Option<f64>,
}

/// A `threats[]` entry (`impact` carries the vendor's severity word).
#[derive(Deserialize)]
pub(crate) struct Threat {
    pub(crate) category: String,
    #[serde(default)]
    pub(crate) details: Option<String>,
}

/// A `flags[]` entry (a VEX justification such as `vulnerable_code_not_present`).
#[derive(Deserialize)]
pub(crate) struct Flag {
    #[serde(default)]
    pub(crate) label: String,
    #[serde(default)]
    pub(crate) product_ids: Vec<String>,
}
