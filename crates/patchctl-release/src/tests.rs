//! Every refusal of [`verify_bundle`], each shown with real keys and signatures, and
//! property tests over random and damaged bundles.

use super::*;
use chrono::Duration;
use proptest::prelude::*;

fn key(role: KeyRole, n: u8) -> SecretKey {
    SecretKey::from_seed(role, [n; 32])
}

fn now() -> DateTime<Utc> {
    "2026-12-04T12:00:00Z".parse().unwrap()
}

fn manifest(artifact: &[u8]) -> Manifest {
    Manifest {
        kind: MANIFEST_KIND.into(),
        product: "patchctl-agent".into(),
        version: "0.2.0".into(),
        target: "x86_64-unknown-linux-gnu".into(),
        sha256: sha256_hex(artifact),
        size: artifact.len() as u64,
        channel: "stable".into(),
        created: now(),
        expires: now() + Duration::days(30),
    }
}

struct Fixture {
    roots: TrustedRoots,
    bundle: ReleaseBundle,
    artifact: Vec<u8>,
}

fn fixture() -> Fixture {
    let root = key(KeyRole::Root, 1);
    let signing = key(KeyRole::Signing, 2);
    let artifact = b"#!/bin/true\n".to_vec();
    let keys = sign_key_list(
        &[&root],
        &[signing.public()],
        now(),
        now() + Duration::days(365),
    )
    .unwrap();
    let manifest = sign_manifest(&signing, &manifest(&artifact)).unwrap();
    Fixture {
        roots: TrustedRoots::new(vec![root.public()]),
        bundle: ReleaseBundle { keys, manifest },
        artifact,
    }
}

#[test]
fn a_good_release_verifies_and_binds_its_artifact() {
    let f = fixture();
    let v = verify_bundle(&f.roots, &f.bundle, now()).unwrap();
    assert_eq!(v.manifest.version, "0.2.0");
    v.expect("patchctl-agent", "x86_64-unknown-linux-gnu", Some("0.2.0"))
        .unwrap();
    v.check_artifact(&f.artifact).unwrap();
    v.newer_than(&ReleaseVersion::parse("0.1.0").unwrap())
        .unwrap();
}

#[test]
fn no_roots_means_refused() {
    let f = fixture();
    assert_eq!(
        verify_bundle(&TrustedRoots::default(), &f.bundle, now()),
        Err(VerifyError::NoTrustedRoots)
    );
}

#[test]
fn missing_signatures_are_refused() {
    let mut f = fixture();
    f.bundle.keys.signatures.clear();
    assert_eq!(
        verify_bundle(&f.roots, &f.bundle, now()),
        Err(VerifyError::Unsigned {
            document: "signing-key list"
        })
    );
    let mut f = fixture();
    f.bundle.manifest.signatures.clear();
    assert_eq!(
        verify_bundle(&f.roots, &f.bundle, now()),
        Err(VerifyError::Unsigned {
            document: "manifest"
        })
    );
}

#[test]
fn an_empty_key_list_is_refused() {
    let root = key(KeyRole::Root, 1);
    // sign_key_list refuses to make one; an attacker's hand-made one is refused too.
    assert!(sign_key_list(&[&root], &[], now(), now() + Duration::days(1)).is_err());
    let list = SigningKeyList {
        kind: KEY_LIST_KIND.into(),
        keys: vec![],
        created: now(),
        expires: now() + Duration::days(1),
    };
    let mut f = fixture();
    f.bundle.keys = sign_document(KEY_LIST_KIND, &list, &[&root]);
    assert_eq!(
        verify_bundle(&f.roots, &f.bundle, now()),
        Err(VerifyError::EmptyKeyList)
    );
}

#[test]
fn an_unknown_root_or_signing_key_is_refused() {
    let f = fixture();
    let other = TrustedRoots::new(vec![key(KeyRole::Root, 3).public()]);
    assert!(matches!(
        verify_bundle(&other, &f.bundle, now()),
        Err(VerifyError::UnknownKey {
            document: "signing-key list",
            ..
        })
    ));
    let mut f = fixture();
    let stranger = key(KeyRole::Signing, 4);
    f.bundle.manifest = sign_manifest(&stranger, &manifest(&f.artifact)).unwrap();
    assert!(matches!(
        verify_bundle(&f.roots, &f.bundle, now()),
        Err(VerifyError::UnknownKey {
            document: "manifest",
            ..
        })
    ));
}

#[test]
fn a_root_can_rotate_any_trusted_root_suffices() {
    let (old, new) = (key(KeyRole::Root, 1), key(KeyRole::Root, 5));
    let signing = key(KeyRole::Signing, 2);
    let artifact = b"x".to_vec();
    let bundle = ReleaseBundle {
        keys: sign_key_list(
            &[&new],
            &[signing.public()],
            now(),
            now() + Duration::days(9),
        )
        .unwrap(),
        manifest: sign_manifest(&signing, &manifest(&artifact)).unwrap(),
    };
    let both = TrustedRoots::new(vec![old.public(), new.public()]);
    verify_bundle(&both, &bundle, now()).unwrap();
    let only_old = TrustedRoots::new(vec![old.public()]);
    assert!(verify_bundle(&only_old, &bundle, now()).is_err());
}

#[test]
fn a_changed_document_or_signature_is_refused() {
    let mut f = fixture();
    f.bundle.manifest.signed = f.bundle.manifest.signed.replace("0.2.0", "0.9.0");
    assert!(matches!(
        verify_bundle(&f.roots, &f.bundle, now()),
        Err(VerifyError::BadSignature {
            document: "manifest",
            ..
        })
    ));
    let mut f = fixture();
    let s = &mut f.bundle.keys.signatures[0].signature;
    let flipped = if s.starts_with('0') { "1" } else { "0" };
    s.replace_range(0..1, flipped);
    assert!(matches!(
        verify_bundle(&f.roots, &f.bundle, now()),
        Err(VerifyError::BadSignature {
            document: "signing-key list",
            ..
        })
    ));
}

#[test]
fn a_key_list_signature_never_passes_as_a_manifest_signature() {
    // The root also happens to be listed as a signing key; its key-list signature
    // over the same bytes must not verify the manifest (domain separation).
    let root = key(KeyRole::Root, 1);
    let signing_root = SecretKey::from_seed(KeyRole::Signing, [1; 32]);
    let mut f = fixture();
    f.bundle.keys = sign_key_list(
        &[&root],
        &[signing_root.public()],
        now(),
        now() + Duration::days(9),
    )
    .unwrap();
    let m = manifest(&f.artifact);
    let forged = sign_document(KEY_LIST_KIND, &m, &[&root]);
    f.bundle.manifest = forged;
    assert!(matches!(
        verify_bundle(&f.roots, &f.bundle, now()),
        Err(VerifyError::BadSignature {
            document: "manifest",
            ..
        })
    ));
}

#[test]
fn expiries_are_enforced() {
    let f = fixture();
    let later = now() + Duration::days(400);
    assert!(matches!(
        verify_bundle(&f.roots, &f.bundle, later),
        Err(VerifyError::KeyListExpired { .. })
    ));
    let manifest_gone = now() + Duration::days(31);
    assert!(matches!(
        verify_bundle(&f.roots, &f.bundle, manifest_gone),
        Err(VerifyError::ManifestExpired { .. })
    ));
}

#[test]
fn product_target_version_size_and_hash_are_held_to_the_manifest() {
    let f = fixture();
    let v = verify_bundle(&f.roots, &f.bundle, now()).unwrap();
    assert!(matches!(
        v.expect("patchctl-server", "x86_64-unknown-linux-gnu", None),
        Err(VerifyError::WrongProduct { .. })
    ));
    assert!(matches!(
        v.expect("patchctl-agent", "aarch64-unknown-linux-gnu", None),
        Err(VerifyError::WrongTarget { .. })
    ));
    assert!(matches!(
        v.expect("patchctl-agent", "x86_64-unknown-linux-gnu", Some("0.3.0")),
        Err(VerifyError::WrongVersion { .. })
    ));
    assert!(matches!(
        v.newer_than(&ReleaseVersion::parse("0.2.0").unwrap()),
        Err(VerifyError::NotNewer { .. })
    ));
    assert!(matches!(
        v.newer_than(&ReleaseVersion::parse("0.3.0").unwrap()),
        Err(VerifyError::NotNewer { .. })
    ));
    let mut longer = f.artifact.clone();
    longer.push(b'\n');
    assert!(matches!(
        v.check_artifact(&longer),
        Err(VerifyError::SizeMismatch { .. })
    ));
    let mut changed = f.artifact.clone();
    changed[0] ^= 1;
    assert!(matches!(
        v.check_artifact(&changed),
        Err(VerifyError::HashMismatch { .. })
    ));
}

#[test]
fn signing_refuses_what_verifying_would_refuse() {
    let root = key(KeyRole::Root, 1);
    let signing = key(KeyRole::Signing, 2);
    let mut m = manifest(b"x");
    assert!(matches!(
        sign_manifest(&root, &m),
        Err(SignError::WrongRole { .. })
    ));
    assert!(matches!(
        sign_key_list(&[&signing], &[root.public()], now(), now()),
        Err(SignError::WrongRole { .. })
    ));
    m.version = "latest".into();
    assert!(sign_manifest(&signing, &m).is_err());
    m.version = "1.0.0".into();
    m.target = "x86_64 linux".into();
    assert!(sign_manifest(&signing, &m).is_err());
}

proptest! {
    /// Random bytes anywhere in a bundle never panic and never verify.
    #[test]
    fn random_bundles_never_verify(keys in "\\PC{0,300}", manifest in "\\PC{0,300}", sig in "[0-9a-f]{0,130}", id in "[0-9a-f]{16}") {
        let f = fixture();
        let bundle = ReleaseBundle {
            keys: SignedDocument { signed: keys, signatures: vec![SignatureEntry { key_id: id.clone(), signature: sig.clone() }] },
            manifest: SignedDocument { signed: manifest, signatures: vec![SignatureEntry { key_id: id, signature: sig }] },
        };
        prop_assert!(verify_bundle(&f.roots, &bundle, now()).is_err());
    }

    /// Flipping any byte of either signed text refuses the bundle.
    #[test]
    fn any_changed_byte_refuses(which in 0usize..2, pos in any::<proptest::sample::Index>(), bit in 0u8..7) {
        let mut f = fixture();
        let doc = if which == 0 { &mut f.bundle.keys } else { &mut f.bundle.manifest };
        let mut bytes = doc.signed.clone().into_bytes();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(s) = String::from_utf8(bytes) {
            doc.signed = s;
            prop_assert!(verify_bundle(&f.roots, &f.bundle, now()).is_err());
        }
    }

    /// Bundles parsed from arbitrary JSON never panic the verifier.
    #[test]
    fn arbitrary_json_never_panics(text in "\\PC{0,400}") {
        if let Ok(b) = serde_json::from_str::<ReleaseBundle>(&text) {
            let f = fixture();
            let _ = verify_bundle(&f.roots, &b, now());
        }
    }
}

#[test]
fn the_platform_check_verifies_everything_but_the_root() {
    let f = fixture();
    // Any root: the platform does not hold the agents' roots.
    let v = verify_unrooted(&f.bundle, now()).unwrap();
    assert_eq!(v.root_key_id, "");
    let mut unsigned = fixture();
    unsigned.bundle.keys.signatures.clear();
    assert!(verify_unrooted(&unsigned.bundle, now()).is_err());
    let mut changed = fixture();
    changed.bundle.manifest.signed = changed.bundle.manifest.signed.replace("stable", "beta");
    assert!(verify_unrooted(&changed.bundle, now()).is_err());
    assert!(verify_unrooted(&f.bundle, now() + Duration::days(400)).is_err());
}
