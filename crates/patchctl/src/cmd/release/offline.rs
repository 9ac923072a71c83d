//! The offline half of `patchctl release`: keys, signing and verifying, on files.
//! Secret keys are written 0600 and read only when private (like ssh, a readable
//! secret key is refused).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use patchctl_release::{
    KeyRole, MANIFEST_KIND, Manifest, PublicKey, ReleaseBundle, SecretKey, SignedDocument,
    TrustedRoots,
};

use crate::output;

use crate::keyfiles::{random_seed, read_secret, write_new, write_pair};

fn read_public(path: &Path) -> anyhow::Result<Vec<PublicKey>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    PublicKey::parse_file(&text).with_context(|| format!("{}", path.display()))
}

/// `release init`.
pub fn init(dir: &Path, roots: u8, keys_expire_days: u32) -> anyhow::Result<()> {
    if !(1..=9).contains(&roots) {
        bail!("--roots {roots}: use 1 to 9 root keys (2 or more lets one be rotated out)");
    }
    if keys_expire_days == 0 {
        bail!("--keys-expire-days must be at least 1");
    }
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty; choose a new directory (keys are never overwritten)",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let mut root_keys = Vec::new();
    let mut pubs = Vec::new();
    for i in 1..=roots {
        let k = SecretKey::from_seed(KeyRole::Root, random_seed()?);
        let (_, public) = write_pair(&dir.join(format!("root-{i}")), &k)?;
        pubs.push(public.display().to_string());
        root_keys.push(k);
    }
    let signing = SecretKey::from_seed(KeyRole::Signing, random_seed()?);
    write_pair(&dir.join("signing-1"), &signing)?;
    let now = Utc::now();
    let refs: Vec<&SecretKey> = root_keys.iter().collect();
    let list = patchctl_release::sign_key_list(
        &refs,
        &[signing.public()],
        now,
        now + Duration::days(i64::from(keys_expire_days)),
    )?;
    write_new(
        &dir.join("keys.json"),
        &serde_json::to_vec_pretty(&list)?,
        0o644,
    )?;
    output::text(&format!(
        "Created in {d}:\n  root-1..{roots}.key/.pub  root keys: move the .key files offline; agents trust the .pub files\n  signing-1.key/.pub        the signing key that signs releases\n  keys.json                 the signing-key list, signed by every root, expires in {keys_expire_days} days\n\nBuild agents that trust these roots:\n  PATCHCTL_RELEASE_ROOTS={p} cargo build --release -p patchctl-agent\nSign a release:\n  patchctl release sign --key {d}/signing-1.key --keys {d}/keys.json --artifact target/release/patchctl-agent --version 0.2.0\n",
        d = dir.display(),
        p = pubs.join(":"),
    ));
    Ok(())
}

/// `release keygen`.
pub fn keygen(role: &str, out: &Path) -> anyhow::Result<()> {
    let role = if role == "root" {
        KeyRole::Root
    } else {
        KeyRole::Signing
    };
    let key = SecretKey::from_seed(role, random_seed()?);
    let (secret, public) = write_pair(out, &key)?;
    output::text(&format!(
        "{} key {}: secret {} (0600), public {}\n",
        role.as_str(),
        key.public().key_id(),
        secret.display(),
        public.display()
    ));
    Ok(())
}

/// `release sign-keys`.
pub fn sign_keys(roots: &[PathBuf], keys: &[PathBuf], days: u32, out: &Path) -> anyhow::Result<()> {
    let roots: Vec<SecretKey> = roots
        .iter()
        .map(|p| read_secret(p, KeyRole::Root))
        .collect::<anyhow::Result<_>>()?;
    let mut listed = Vec::new();
    for p in keys {
        listed.extend(read_public(p)?);
    }
    let now = Utc::now();
    let refs: Vec<&SecretKey> = roots.iter().collect();
    let list = patchctl_release::sign_key_list(
        &refs,
        &listed,
        now,
        now + Duration::days(i64::from(days.max(1))),
    )?;
    write_new(out, &serde_json::to_vec_pretty(&list)?, 0o644)?;
    output::text(&format!(
        "{}: {} signing key(s), signed by {} root(s), expires {}\n",
        out.display(),
        listed.len(),
        roots.len(),
        (now + Duration::days(i64::from(days.max(1)))).format("%Y-%m-%d")
    ));
    Ok(())
}

/// What `release sign` takes.
pub struct SignArgs {
    /// Signing key file.
    pub key: PathBuf,
    /// Signed key list file.
    pub keys: PathBuf,
    /// Artifact file.
    pub artifact: PathBuf,
    /// Version.
    pub version: String,
    /// Product.
    pub product: String,
    /// Target triple.
    pub target: Option<String>,
    /// Channel.
    pub channel: String,
    /// Manifest lifetime.
    pub expires_days: u32,
    /// Bundle path.
    pub out: Option<PathBuf>,
}

/// This machine's target triple, as the agent's build names it.
fn host_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

fn read_keys_doc(path: &Path) -> anyhow::Result<SignedDocument> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a signed signing-key list (keys.json from `patchctl release init` or `sign-keys`)",
            path.display()
        )
    })
}

/// `release sign`.
pub fn sign(a: SignArgs) -> anyhow::Result<()> {
    let key = read_secret(&a.key, KeyRole::Signing)?;
    let keys = read_keys_doc(&a.keys)?;
    let bytes = std::fs::read(&a.artifact)
        .with_context(|| format!("cannot read {}", a.artifact.display()))?;
    if a.expires_days == 0 {
        bail!("--expires-days must be at least 1");
    }
    let max = patchctl_proto::release::MAX_ARTIFACT_BYTES;
    if bytes.len() as u64 > max {
        bail!(
            "{} is {} bytes, over the {} MiB a release may be; sign a release build, or strip a debug build first (strip -o OUT {})",
            a.artifact.display(),
            bytes.len(),
            max / (1024 * 1024),
            a.artifact.display()
        );
    }
    let now = Utc::now();
    let manifest = Manifest {
        kind: MANIFEST_KIND.into(),
        product: a.product,
        version: a.version,
        target: a.target.unwrap_or_else(host_target),
        sha256: patchctl_release::sha256_hex(&bytes),
        size: bytes.len() as u64,
        channel: a.channel,
        created: now,
        expires: now + Duration::days(i64::from(a.expires_days)),
    };
    let signed = patchctl_release::sign_manifest(&key, &manifest)?;
    let bundle = ReleaseBundle {
        keys,
        manifest: signed,
    };
    // Never write a bundle that its own key list refuses (expired list, key not listed).
    patchctl_release::verify_unrooted(&bundle, now)
        .context("the signed release would be refused; check that keys.json lists this signing key and has not expired")?;
    let out = a.out.unwrap_or_else(|| {
        let mut p = a.artifact.clone().into_os_string();
        p.push(".release.json");
        PathBuf::from(p)
    });
    write_new(&out, &serde_json::to_vec_pretty(&bundle)?, 0o644)?;
    output::text(&format!(
        "{}: {} {} for {} ({} bytes, sha256 {}), signed by key {}, expires {}\nPublish it: patchctl release publish {} {}\n",
        out.display(),
        manifest.product,
        manifest.version,
        manifest.target,
        manifest.size,
        manifest.sha256,
        key.public().key_id(),
        manifest.expires.format("%Y-%m-%d"),
        out.display(),
        a.artifact.display()
    ));
    Ok(())
}

/// `release verify`.
pub fn verify(roots: &[PathBuf], bundle: &Path, artifact: &Path) -> anyhow::Result<()> {
    let mut keys = Vec::new();
    for p in roots {
        keys.extend(read_public(p)?);
    }
    let text = std::fs::read_to_string(bundle)
        .with_context(|| format!("cannot read {}", bundle.display()))?;
    let bundle_doc: ReleaseBundle = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a release bundle (from `patchctl release sign`)",
            bundle.display()
        )
    })?;
    let bytes =
        std::fs::read(artifact).with_context(|| format!("cannot read {}", artifact.display()))?;
    let v = patchctl_release::verify_bundle(&TrustedRoots::new(keys), &bundle_doc, Utc::now())
        .context("refused")?;
    v.check_artifact(&bytes).context("refused")?;
    output::text(&format!(
        "verified: {} {} for {}, {} bytes, sha256 {}; manifest signed by {}, key list by root {} (expires {})\n",
        v.manifest.product,
        v.manifest.version,
        v.manifest.target,
        v.manifest.size,
        v.manifest.sha256,
        v.signing_key_id,
        v.root_key_id,
        v.keys_expire.format("%Y-%m-%d")
    ));
    Ok(())
}
