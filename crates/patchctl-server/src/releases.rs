//! Signed releases on the platform, without HTTP: what a publication must satisfy
//! ([`check_publication`]), the in-memory view of rollouts and published agent
//! releases that decides a heartbeat's update offer ([`ReleaseCache`]), the install
//! script's substitution ([`install_script`]), and [`ReleaseError`], which `error.rs`
//! turns into status codes.
//!
//! The platform does not decide trust: each agent holds its roots. It refuses what
//! every agent would refuse (`patchctl_release::verify_unrooted`: signatures below the
//! roots, expiries, a well-formed manifest) and holds the artifact to the manifest,
//! so that nothing it serves is known bad.
//!
//! The offer costs a heartbeat no database round trip: each organisation's rollout and
//! the set of published `patchctl-agent` `(version, target)` pairs are kept for
//! [`RELEASE_CACHE_TTL`], and a publication or a rollout change through this process
//! clears them at once (a generation counter keeps a lookup that raced the change from
//! putting its stale answer back, as in `auth::CredentialCache`). Another platform
//! process sharing the database follows within the TTL.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use patchctl_proto::release::{
    AgentRollout, AgentUpdateOffer, MAX_ARTIFACT_BYTES, PRODUCT_AGENT, PublishRelease, in_canary,
};
use patchctl_release::{Verified, VerifyError};
use patchctl_storage::{ReleaseRow, Storage, StorageError};
use uuid::Uuid;

/// How long a rollout or the set of published agent releases is used without asking
/// the database again.
pub const RELEASE_CACHE_TTL: Duration = Duration::from_secs(30);

/// The package products the install script offers, with the family each is for.
pub const PACKAGE_PRODUCTS: [(&str, &str); 2] =
    [("deb", "patchctl-agent.deb"), ("rpm", "patchctl-agent.rpm")];

/// Why a release, a rollout or a download was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The artifact is not base64.
    #[error(
        "artifact_base64 is not valid base64 (standard alphabet, padded): {0}; send the artifact file as `patchctl release publish BUNDLE ARTIFACT` does"
    )]
    Base64(String),
    /// The artifact is larger than any release may be.
    #[error(
        "the artifact is {size} bytes, more than the {max} bytes a release may have; publish the agent binary or a package of it, nothing larger"
    )]
    TooLarge {
        /// Its size.
        size: u64,
        /// [`MAX_ARTIFACT_BYTES`].
        max: u64,
    },
    /// The bundle or the artifact failed verification.
    #[error("release refused: {0}; {hint}", hint = verify_hint(.0))]
    Refused(VerifyError),
    /// Another artifact holds this product, version and target.
    #[error(
        "{product} {version} for {target} is already published with another artifact (sha256 {existing}); published versions are immutable: sign and publish a new version"
    )]
    Conflict {
        /// Product.
        product: String,
        /// Version.
        version: String,
        /// Target.
        target: String,
        /// The SHA-256 of the artifact already published.
        existing: String,
    },
    /// A rollout that cannot be applied.
    #[error("{0}")]
    InvalidRollout(String),
    /// The rollout names a version with no published agent release.
    #[error(
        "no {PRODUCT_AGENT} release {version} is published; publish it first with patchctl release publish"
    )]
    NotPublished {
        /// The version asked for.
        version: String,
    },
    /// No such release.
    #[error(
        "no release {product} {version} for {target} is published; `patchctl release list` shows what is"
    )]
    NotFound {
        /// Product.
        product: String,
        /// Version (or `latest`).
        version: String,
        /// Target.
        target: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What to do about a refused release.
fn verify_hint(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::KeyListExpired { .. } => {
            "sign a fresh signing-key list with the root keys (`patchctl release sign-keys`), then sign the release again"
        }
        VerifyError::ManifestExpired { .. } => {
            "sign the release again (`patchctl release sign`) with a later expiry"
        }
        VerifyError::SizeMismatch { .. } | VerifyError::HashMismatch { .. } => {
            "publish the very file the manifest was signed for, or sign this file (`patchctl release sign`)"
        }
        _ => {
            "sign the release with `patchctl release sign` and check it with `patchctl release verify` before publishing"
        }
    }
}

/// Decodes and checks a publication: the bundle verified below the roots at `now`, the
/// artifact no larger than [`MAX_ARTIFACT_BYTES`] and exactly the manifest's size and
/// SHA-256. Returns the verified manifest and the artifact's bytes.
pub fn check_publication(
    req: &PublishRelease,
    now: DateTime<Utc>,
) -> Result<(Verified, Vec<u8>), ReleaseError> {
    // Base64 is 4 characters for 3 bytes: refuse an oversized artifact before decoding.
    let encoded_max = MAX_ARTIFACT_BYTES.div_ceil(3) * 4;
    if req.artifact_base64.len() as u64 > encoded_max {
        return Err(ReleaseError::TooLarge {
            size: req.artifact_base64.len() as u64 / 4 * 3,
            max: MAX_ARTIFACT_BYTES,
        });
    }
    let artifact = base64::engine::general_purpose::STANDARD
        .decode(req.artifact_base64.as_bytes())
        .map_err(|e| ReleaseError::Base64(e.to_string()))?;
    if artifact.len() as u64 > MAX_ARTIFACT_BYTES {
        return Err(ReleaseError::TooLarge {
            size: artifact.len() as u64,
            max: MAX_ARTIFACT_BYTES,
        });
    }
    let verified =
        patchctl_release::verify_unrooted(&req.bundle, now).map_err(ReleaseError::Refused)?;
    verified
        .check_artifact(&artifact)
        .map_err(ReleaseError::Refused)?;
    Ok((verified, artifact))
}

/// Checks a rollout an operator asks for (its version's release is checked by the
/// caller, against storage).
pub fn check_rollout(r: &AgentRollout) -> Result<(), ReleaseError> {
    if let Some(v) = &r.version {
        patchctl_release::ReleaseVersion::parse(v).map_err(|e| {
            ReleaseError::InvalidRollout(format!(
                "version {v:?} is not a release version: {e}; give it as MAJOR.MINOR.PATCH, as `patchctl release list` shows it"
            ))
        })?;
    }
    if let Some(p) = r.canary_percent
        && !(1..=100).contains(&p)
    {
        return Err(ReleaseError::InvalidRollout(format!(
            "a canary of {p} %: give 1 to 100 (the share of hosts offered the release), or leave it out for every host; to offer it to none, stop the rollout (version null, `patchctl release rollout --off`)"
        )));
    }
    Ok(())
}

/// The set of published agent releases: `(version, target)`.
type Published = Arc<HashSet<(String, String)>>;

/// Rollouts per organisation and the published agent releases, for
/// [`RELEASE_CACHE_TTL`] (see the module documentation).
#[derive(Default)]
pub struct ReleaseCache {
    rollouts: Mutex<HashMap<Uuid, (AgentRollout, Instant)>>,
    published: Mutex<Option<(Published, Instant)>>,
    generation: AtomicU64,
}

impl ReleaseCache {
    /// The update offer for a host that heartbeats with `agent_version` and
    /// `agent_target`: exactly when the organisation's rollout names a version, the host
    /// is in its canary, it runs another version, it said its target, and a
    /// `patchctl-agent` release of that version and target is published.
    pub async fn offer(
        &self,
        store: &dyn Storage,
        org_id: Uuid,
        host_id: Uuid,
        agent_version: &str,
        agent_target: Option<&str>,
    ) -> Result<Option<AgentUpdateOffer>, StorageError> {
        let Some(target) = agent_target else {
            return Ok(None);
        };
        let rollout = self.rollout(store, org_id).await?;
        let Some(version) = rollout.version else {
            return Ok(None);
        };
        if version == agent_version || !in_canary(host_id, rollout.canary_percent) {
            return Ok(None);
        }
        let published = self.published(store).await?;
        if !published.contains(&(version.clone(), target.to_owned())) {
            return Ok(None);
        }
        Ok(Some(AgentUpdateOffer {
            version,
            target: target.to_owned(),
        }))
    }

    async fn rollout(
        &self,
        store: &dyn Storage,
        org_id: Uuid,
    ) -> Result<AgentRollout, StorageError> {
        {
            let map = self.rollouts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((r, at)) = map.get(&org_id)
                && at.elapsed() < RELEASE_CACHE_TTL
            {
                return Ok(r.clone());
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let r = store.agent_rollout(org_id).await?.rollout;
        let mut map = self.rollouts.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            map.insert(org_id, (r.clone(), Instant::now()));
        }
        Ok(r)
    }

    async fn published(&self, store: &dyn Storage) -> Result<Published, StorageError> {
        {
            let p = self.published.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((set, at)) = p.as_ref()
                && at.elapsed() < RELEASE_CACHE_TTL
            {
                return Ok(set.clone());
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let set: Published = Arc::new(
            store
                .list_releases()
                .await?
                .into_iter()
                .filter(|r| r.info.product == PRODUCT_AGENT)
                .map(|r| (r.info.version, r.info.target))
                .collect(),
        );
        let mut p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            *p = Some((set.clone(), Instant::now()));
        }
        Ok(set)
    }

    /// Forgets an organisation's rollout (after it changed).
    pub fn forget_rollout(&self, org_id: Uuid) {
        let mut map = self.rollouts.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        map.remove(&org_id);
    }

    /// Forgets the published releases (after a publication).
    pub fn forget_published(&self) {
        let mut p = self.published.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        *p = None;
    }
}

/// The install script as `dist/install.sh` holds it, before substitution.
pub const INSTALL_TEMPLATE: &str = include_str!("../../../dist/install.sh");

/// The platform URL for the install script from a request's `Host` (its authority):
/// `https://HOST`, or none when the name holds anything but letters, digits, `.`, `-`,
/// `:`, `[` and `]` (the script then needs `--server`).
pub fn platform_url(host: Option<&str>) -> Option<String> {
    let host = host?;
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then(|| format!("https://{host}"))
}

/// The install script with the platform's URL (empty: none known) and, for each
/// package family and target, the latest release's version, download path and
/// SHA-256 (`latest`: `(family, row)` pairs, already the highest version each).
/// Every value substituted is a verified manifest's token or hex digest, or a URL
/// [`platform_url`] accepted, so none can break out of the script's quotes.
pub fn install_script(url: Option<&str>, latest: &[(&str, ReleaseRow)]) -> String {
    let mut lines = String::new();
    for (family, r) in latest {
        let i = &r.info;
        lines.push_str(&format!(
            "{family} {} {} /downloads/{}/{}/{} {}\n",
            i.target, i.version, i.product, i.version, i.target, i.sha256
        ));
    }
    INSTALL_TEMPLATE
        .replace("@PLATFORM_URL@", url.unwrap_or(""))
        .replace("@RELEASES@\n", &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_url_takes_only_plain_host_names() {
        assert_eq!(
            platform_url(Some("patch.example.org:8443")).as_deref(),
            Some("https://patch.example.org:8443")
        );
        assert_eq!(
            platform_url(Some("[::1]:8443")).as_deref(),
            Some("https://[::1]:8443")
        );
        for bad in ["", "a'b", "x;rm -rf /", "a b", "$(id)", "a\"b", "a`b`"] {
            assert_eq!(platform_url(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(platform_url(None), None);
    }

    #[test]
    fn an_oversized_artifact_is_refused_before_it_is_decoded() {
        let bundle = patchctl_proto::release::ReleaseBundle {
            keys: patchctl_proto::release::SignedDocument {
                signed: String::new(),
                signatures: Vec::new(),
            },
            manifest: patchctl_proto::release::SignedDocument {
                signed: String::new(),
                signatures: Vec::new(),
            },
        };
        let len = (MAX_ARTIFACT_BYTES.div_ceil(3) * 4 + 4) as usize;
        let req = PublishRelease {
            bundle,
            artifact_base64: "A".repeat(len),
        };
        let e = check_publication(&req, Utc::now()).unwrap_err();
        assert!(matches!(e, ReleaseError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("67108864"), "{e}");
    }

    #[test]
    fn rollout_checks() {
        let r = |v: Option<&str>, p: Option<u8>| AgentRollout {
            version: v.map(str::to_owned),
            canary_percent: p,
        };
        assert!(check_rollout(&r(Some("1.2.3"), Some(1))).is_ok());
        assert!(check_rollout(&r(Some("1.2.3"), Some(100))).is_ok());
        assert!(check_rollout(&r(None, None)).is_ok());
        for bad in [
            r(Some("1.2"), None),
            r(Some("v1.2.3"), None),
            r(None, Some(0)),
        ] {
            let e = check_rollout(&bad).unwrap_err().to_string();
            assert!(e.contains("give"), "{e}");
        }
        let e = check_rollout(&r(Some("1.0.0"), Some(101))).unwrap_err();
        assert!(e.to_string().contains("1 to 100"), "{e}");
    }
}
