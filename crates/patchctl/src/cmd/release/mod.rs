//! `patchctl release`: signed releases of the agent. Offline (no platform needed, see
//! [`offline`]): `init` (root keys, a signing key and the signed key list), `keygen`,
//! `sign-keys`, `sign` (a manifest for an artifact), `verify`. Against the platform:
//! `publish`, `list`, `rollout`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::client::Conn;

pub mod offline;
pub mod platform;

/// The `release` subcommands.
#[derive(Subcommand)]
pub enum ReleaseCmd {
    /// Create a release key directory: root keys (keep them offline), a signing key,
    /// and the signing-key list the roots signed.
    Init {
        /// Directory to create (must not exist or be empty).
        #[arg(long)]
        dir: PathBuf,
        /// How many root keys (several, so that one can be rotated out).
        #[arg(long, default_value_t = 2)]
        roots: u8,
        /// Days until the signing-key list expires (agents refuse it after).
        #[arg(long, default_value_t = 365)]
        keys_expire_days: u32,
    },
    /// Create one key pair: PATH.key (secret, 0600) and PATH.pub.
    Keygen {
        /// `root` (signs the signing-key list; keep offline) or `signing` (signs
        /// manifests).
        #[arg(long, value_parser = ["root", "signing"])]
        role: String,
        /// Path without extension.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a signing-key list with root keys.
    SignKeys {
        /// Root secret keys (.key); each signs.
        #[arg(long = "root", required = true)]
        roots: Vec<PathBuf>,
        /// Signing public keys (.pub) to list.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// Days until the list expires.
        #[arg(long, default_value_t = 365)]
        expires_days: u32,
        /// Where to write the signed list.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a release: a manifest of the artifact, signed by a signing key, bundled with
    /// the signed key list.
    Sign {
        /// The signing secret key (.key).
        #[arg(long)]
        key: PathBuf,
        /// The signed signing-key list (keys.json from `init` or `sign-keys`).
        #[arg(long)]
        keys: PathBuf,
        /// The artifact (the agent binary, or a package).
        #[arg(long)]
        artifact: PathBuf,
        /// Release version (MAJOR.MINOR.PATCH[-PRE]).
        #[arg(long)]
        version: String,
        /// Product name.
        #[arg(long, default_value = patchctl_proto::release::PRODUCT_AGENT)]
        product: String,
        /// Target triple (default: this machine's, x86_64-unknown-linux-gnu on x86-64).
        #[arg(long)]
        target: Option<String>,
        /// Channel.
        #[arg(long, default_value = "stable")]
        channel: String,
        /// Days until the manifest expires.
        #[arg(long, default_value_t = 90)]
        expires_days: u32,
        /// Where to write the bundle (default: ARTIFACT.release.json).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Publish a signed release to the platform: the bundle (`patchctl release sign`
    /// wrote it) and the artifact it was signed for. The platform checks signatures,
    /// expiries, size and SHA-256 before it stores anything.
    Publish(platform::PublishArgs),
    /// List the releases published on the platform, newest first.
    List,
    /// Show or set which agent release the organisation's hosts run: `rollout` shows
    /// it, `rollout VERSION [--canary PCT]` offers VERSION (to PCT % of the hosts),
    /// `rollout --off` stops offering.
    Rollout(platform::RolloutArgs),
    /// Verify a bundle and its artifact against root public keys, as an agent would.
    Verify {
        /// Root public keys (.pub) to trust.
        #[arg(long = "root", required = true)]
        roots: Vec<PathBuf>,
        /// The bundle.
        #[arg(long)]
        bundle: PathBuf,
        /// The artifact.
        #[arg(long)]
        artifact: PathBuf,
    },
}

/// Runs a `release` subcommand.
pub async fn run(conn: &Conn, cmd: ReleaseCmd) -> anyhow::Result<()> {
    match cmd {
        ReleaseCmd::Publish(args) => platform::publish(conn, args).await,
        ReleaseCmd::List => platform::list(conn).await,
        ReleaseCmd::Rollout(args) => platform::rollout(conn, args).await,
        ReleaseCmd::Init {
            dir,
            roots,
            keys_expire_days,
        } => offline::init(&dir, roots, keys_expire_days),
        ReleaseCmd::Keygen { role, out } => offline::keygen(&role, &out),
        ReleaseCmd::SignKeys {
            roots,
            keys,
            expires_days,
            out,
        } => offline::sign_keys(&roots, &keys, expires_days, &out),
        ReleaseCmd::Sign {
            key,
            keys,
            artifact,
            version,
            product,
            target,
            channel,
            expires_days,
            out,
        } => offline::sign(offline::SignArgs {
            key,
            keys,
            artifact,
            version,
            product,
            target,
            channel,
            expires_days,
            out,
        }),
        ReleaseCmd::Verify {
            roots,
            bundle,
            artifact,
        } => offline::verify(&roots, &bundle, &artifact),
    }
}
