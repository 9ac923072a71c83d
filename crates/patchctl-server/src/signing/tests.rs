//! Tests of the platform's signer over a real key file and SQLite: creation, the
//! record, nodes that disagree, a key file others may read, rotation.

use chrono::Utc;
use patchctl_proto::command::{Command, NoParams};
use patchctl_release::command::{follow_rotations, verify_command};
use patchctl_storage::Storage;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::*;

async fn store() -> (Arc<dyn Storage>, Uuid) {
    let store = patchctl_storage::open("sqlite::memory:").await.unwrap();
    let org = store.create_org("acme", Utc::now()).await.unwrap();
    (store, org.id)
}

/// A host enrolled in a new organisation: (store, org, host).
async fn store_with_host() -> (Arc<dyn Storage>, Uuid, Uuid) {
    // (No `bootstrap` or `auth` here: `signing` imports neither, tests included.)
    let store = patchctl_storage::open("sqlite::memory:").await.unwrap();
    let org = store.create_org("acme", Utc::now()).await.unwrap();
    store
        .create_enrollment_key(org.id, "k", "key-hash", Utc::now())
        .await
        .unwrap();
    let out = store
        .enroll_host(patchctl_storage::EnrollHost {
            key_hash: "key-hash".into(),
            credential_hash: "credential-hash".into(),
            agent_version: "0".into(),
            system: Default::default(),
            now: Utc::now(),
        })
        .await
        .unwrap();
    let patchctl_storage::Enrollment::Enrolled { host, .. } = out else {
        panic!("not enrolled")
    };
    (store, host.org_id, host.id)
}

#[tokio::test]
async fn a_key_is_made_once_kept_private_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (store, org) = store().await;
    let signer = Signer::open(path.clone()).unwrap();
    let key = signer.ensure(store.as_ref(), org).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        store.org_command_key(org).await.unwrap(),
        Some(key.to_line())
    );
    // The public key is in the database; the secret is not in any column.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.is_empty());
    // A second signer over the same file finds the same key.
    let again = Signer::open(path.clone()).unwrap();
    assert_eq!(again.ensure(store.as_ref(), org).await.unwrap(), key);

    // Signed commands verify against it and name exactly what was queued.
    let now = Utc::now();
    let host = Uuid::new_v4();
    let cmd = Command::HealthCheck(NoParams {});
    let new = signer
        .command(
            store.as_ref(),
            org,
            host,
            &cmd,
            now,
            now + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    let st = verify_command(new.signed.as_ref().unwrap(), &key, &[]).unwrap();
    assert_eq!((st.org, st.host, st.command), (org, host, new.id));
    assert_eq!(st.operation, "health_check");
    assert_eq!(st.queued_at, new.now);
    assert_eq!(st.expires_at, new.expires_at);
}

#[tokio::test]
async fn a_node_with_another_key_or_none_refuses_to_sign() {
    let dir = tempfile::tempdir().unwrap();
    let (store, org) = store().await;
    let a = Signer::open(dir.path().join("a.json")).unwrap();
    a.ensure(store.as_ref(), org).await.unwrap();
    // Node b has no key file: it must not make a key of its own.
    let b = Signer::open(dir.path().join("b.json")).unwrap();
    let e = b.ensure(store.as_ref(), org).await.unwrap_err();
    assert!(matches!(e, SigningError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("copy the key file"), "{e}");
    assert!(!dir.path().join("b.json").exists());
    // Node c has a file with another key for the organisation.
    let mut other = KeyFile::default();
    other.create(org);
    other.write(&dir.path().join("c.json")).unwrap();
    let c = Signer::open(dir.path().join("c.json")).unwrap();
    let e = c.ensure(store.as_ref(), org).await.unwrap_err();
    assert!(matches!(e, SigningError::Mismatch { .. }), "{e}");
}

#[tokio::test]
async fn a_key_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mut f = KeyFile::default();
    f.create(Uuid::new_v4());
    f.write(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Signer::open(path).err().unwrap().to_string();
    assert!(e.contains("chmod 600"), "{e}");
    // And a malformed one says so without repeating it.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"secret\": \"s3cr3t\"").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Signer::open(bad).err().unwrap().to_string();
    assert!(
        e.contains("not a command-signing key file") && !e.contains("s3cr3t"),
        "{e}"
    );
}

#[tokio::test]
async fn rotation_is_announced_as_a_chain_and_old_commands_are_signed_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (store, org, host) = store_with_host().await;
    let signer = Signer::open(path.clone()).unwrap();
    let first = signer.ensure(store.as_ref(), org).await.unwrap();
    let now = Utc::now();
    let queued = signer
        .command(
            store.as_ref(),
            org,
            host,
            &Command::CheckUpdates(NoParams {}),
            now,
            now + chrono::Duration::hours(1),
        )
        .await
        .unwrap();

    // `patchctl admin signing-key rotate`: the file, the record, the queued commands.
    let store_ref = store.as_ref();
    store_ref.queue_command(queued.clone()).await.unwrap();
    // A row written by someone without the key: left alone by the rotation.
    let mut forged = queued.clone();
    forged.id = Uuid::new_v4();
    let mut doc = queued.signed.clone().unwrap();
    doc.signed = doc.signed.replace("check_updates", "install_updates");
    forged.signed = Some(doc.clone());
    store_ref.queue_command(forged.clone()).await.unwrap();

    let (old, new) = admin::rotate(&path, store_ref, org, Utc::now())
        .await
        .unwrap();
    assert_eq!(old, first);
    assert_eq!(
        store.org_command_key(org).await.unwrap(),
        Some(new.to_line())
    );

    // An agent on the old key gets the chain; one on the new key gets nothing.
    let info = signer.announce(org, Some(&first.key_id()), None).unwrap();
    assert_eq!(info.key, new.to_line());
    assert_eq!(
        follow_rotations(&first, org, &info.rotations, Some(&new)).unwrap(),
        vec![new]
    );
    assert!(signer.announce(org, Some(&new.key_id()), None).is_none());

    // The command queued before the rotation is now signed by the new key; the forged
    // row is not.
    let sigs: std::collections::HashMap<Uuid, _> = store
        .unfinished_signatures(org)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let st = verify_command(sigs[&queued.id].as_ref().unwrap(), &new, &[]).unwrap();
    assert_eq!(st.command, queued.id);
    assert_eq!(sigs[&forged.id], Some(doc));

    // New commands are signed by the new key.
    let later = signer
        .command(
            store_ref,
            org,
            Uuid::new_v4(),
            &Command::HealthCheck(NoParams {}),
            now,
            now + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    assert!(verify_command(later.signed.as_ref().unwrap(), &new, &[]).is_ok());
}
