//! Tests of admission: every refusal, replay across a restart, rotation, strict mode
//! and the approver rule, with real ed25519 keys.

use chrono::Duration;
use patchctl_proto::signing::{COMMAND_STATEMENT_KIND, CommandStatement, SignedDocument};
use patchctl_release::command::{sign_command, sign_rotation};
use patchctl_release::{KeyRole, SecretKey};

use super::*;

const ORG: Uuid = Uuid::from_u128(1);
const HOST: Uuid = Uuid::from_u128(2);

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(KeyRole::Command, [n; 32])
}

fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let (c, s) = (d.path().join("etc"), d.path().join("state"));
    std::fs::create_dir_all(&c).unwrap();
    std::fs::create_dir_all(&s).unwrap();
    (d, c, s)
}

fn info(k: &SecretKey, rotations: Vec<SignedDocument>) -> CommandKeyInfo {
    CommandKeyInfo {
        org: ORG,
        key: k.public().to_line(),
        rotations,
        approvers: None,
    }
}

/// An envelope as the platform delivers it, signed by `k`, for `host`, expiring at `exp`.
fn env(k: &SecretKey, host: Uuid, exp: DateTime<Utc>) -> CommandEnvelope {
    let id = Uuid::new_v4();
    let st = CommandStatement {
        kind: COMMAND_STATEMENT_KIND.into(),
        org: ORG,
        host,
        command: id,
        operation: "get_package_info".into(),
        params: serde_json::json!({"name": "openssl"}),
        queued_at: Utc::now(),
        expires_at: exp,
        approval: None,
    };
    CommandEnvelope {
        id,
        kind: st.operation.clone(),
        params: st.params.clone(),
        queued_at: st.queued_at,
        signed: Some(sign_command(k, &st).unwrap()),
    }
}

fn later() -> DateTime<Utc> {
    Utc::now() + Duration::hours(1)
}

#[test]
fn a_signed_command_for_this_host_runs_once() {
    let (_d, c, s) = dirs();
    let k = key(1);
    let mut a = Admission::open(&c, &s, None);
    a.enrolled(Some(&info(&k, vec![])));
    let e = env(&k, HOST, later());
    let ok = a.admit(&e, HOST, Utc::now()).unwrap();
    assert_eq!((ok.id, ok.kind.as_str()), (e.id, "get_package_info"));
    assert_eq!(a.admit(&e, HOST, Utc::now()), Err(Refusal::Replayed(e.id)));
    // The record survives a restart.
    let mut again = Admission::open(&c, &s, None);
    assert_eq!(again.key_id(), Some(k.public().key_id()));
    assert_eq!(
        again.admit(&e, HOST, Utc::now()),
        Err(Refusal::Replayed(e.id))
    );
}

#[test]
fn each_refusal_names_its_reason() {
    let (_d, c, s) = dirs();
    let k = key(1);
    let mut a = Admission::open(&c, &s, None);

    // No key known yet.
    assert_eq!(
        a.admit(&env(&k, HOST, later()), HOST, Utc::now()),
        Err(Refusal::NoKey)
    );
    a.enrolled(Some(&info(&k, vec![])));

    let mut unsigned = env(&k, HOST, later());
    unsigned.signed = None;
    assert_eq!(
        a.admit(&unsigned, HOST, Utc::now()).unwrap_err().reason(),
        "unsigned"
    );

    let forged = env(&key(9), HOST, later());
    assert_eq!(
        a.admit(&forged, HOST, Utc::now()).unwrap_err().reason(),
        "unknown_key"
    );

    let mut altered = env(&k, HOST, later());
    altered.params = serde_json::json!({"name": "bash"});
    assert_eq!(
        a.admit(&altered, HOST, Utc::now()),
        Err(Refusal::Altered("parameters"))
    );
    let mut renamed = env(&k, HOST, later());
    renamed.kind = "install_updates".into();
    assert_eq!(
        a.admit(&renamed, HOST, Utc::now()),
        Err(Refusal::Altered("kind"))
    );

    let other = Uuid::from_u128(3);
    assert_eq!(
        a.admit(&env(&k, other, later()), HOST, Utc::now()),
        Err(Refusal::OtherHost(other))
    );

    let past = Utc::now() - Duration::seconds(1);
    assert_eq!(
        a.admit(&env(&k, HOST, past), HOST, Utc::now()),
        Err(Refusal::Expired(past))
    );
    // Refused commands are not recorded as run: nothing ran.
    assert!(a.seen.is_empty());
}

#[test]
fn rotation_is_followed_and_retires_the_old_key() {
    let (_d, c, s) = dirs();
    let (k1, k2, k3) = (key(1), key(2), key(3));
    let mut a = Admission::open(&c, &s, None);
    a.enrolled(Some(&info(&k1, vec![])));
    let r12 = sign_rotation(&k1, &k2.public(), ORG, Utc::now()).unwrap();
    let r23 = sign_rotation(&k2, &k3.public(), ORG, Utc::now()).unwrap();
    a.follow(&info(&k3, vec![r12, r23]));
    assert_eq!(a.key_id(), Some(k3.public().key_id()));
    assert!(a.admit(&env(&k3, HOST, later()), HOST, Utc::now()).is_ok());
    for old in [&k1, &k2] {
        assert_eq!(
            a.admit(&env(old, HOST, later()), HOST, Utc::now())
                .unwrap_err()
                .reason(),
            "retired_key"
        );
    }
    // A restart keeps it.
    assert_eq!(
        Admission::open(&c, &s, None).key_id(),
        Some(k3.public().key_id())
    );
}

#[test]
fn an_announced_key_without_a_signed_chain_is_not_taken() {
    let (_d, c, s) = dirs();
    let (k1, evil) = (key(1), key(66));
    let mut a = Admission::open(&c, &s, None);
    a.enrolled(Some(&info(&k1, vec![])));
    a.follow(&info(&evil, vec![]));
    assert_eq!(a.key_id(), Some(k1.public().key_id()));
    assert_eq!(
        a.admit(&env(&evil, HOST, later()), HOST, Utc::now())
            .unwrap_err()
            .reason(),
        "unknown_key"
    );
}

#[test]
fn strict_mode_trusts_only_the_pinned_key_and_its_rotations() {
    let (_d, c, s) = dirs();
    let (pinned, substituted, next) = (key(1), key(66), key(2));
    let mut a = Admission::open(&c, &s, Some(pinned.public()));
    // A platform compromised before enrollment announces its own key.
    a.enrolled(Some(&info(&substituted, vec![])));
    assert_eq!(a.key_id(), Some(pinned.public().key_id()));
    assert_eq!(
        a.admit(&env(&substituted, HOST, later()), HOST, Utc::now())
            .unwrap_err()
            .reason(),
        "unknown_key"
    );
    a.follow(&info(&substituted, vec![]));
    assert_eq!(a.key_id(), Some(pinned.public().key_id()));
    // A rotation the pinned key signed is followed.
    let r = sign_rotation(&pinned, &next.public(), ORG, Utc::now()).unwrap();
    a.follow(&info(&next, vec![r]));
    assert_eq!(a.key_id(), Some(next.public().key_id()));
    assert!(
        a.admit(&env(&next, HOST, later()), HOST, Utc::now())
            .is_ok()
    );
    // Restarting with the same pin keeps the rotated state; a new pin starts over.
    assert_eq!(
        Admission::open(&c, &s, Some(pinned.public())).key_id(),
        Some(next.public().key_id())
    );
    assert_eq!(
        Admission::open(&c, &s, Some(key(5).public())).key_id(),
        Some(key(5).public().key_id())
    );
}

#[test]
fn the_record_of_ids_run_forgets_only_expired_commands() {
    let (_d, _c, s) = dirs();
    let mut seen = SeenCommands::open(&s);
    let now = Utc::now();
    let old = Uuid::new_v4();
    seen.record(old, now - Duration::days(2), now).unwrap();
    let fresh = Uuid::new_v4();
    seen.record(fresh, now + Duration::hours(1), now).unwrap();
    assert!(!seen.contains(old), "expired more than a day ago: dropped");
    assert!(seen.contains(fresh));
    assert_eq!(SeenCommands::open(&s).len(), 1);
}

mod approvals {
    use patchctl_proto::signing::{
        APPROVERS_KIND, ApprovedItem, Approver, ApproverList, MANIFEST_APPROVAL_KIND,
        ManifestApproval,
    };
    use patchctl_release::command::approval::{sign_approval, sign_approvers};

    use super::*;

    fn approver(n: u8) -> SecretKey {
        SecretKey::from_seed(KeyRole::Approver, [n; 32])
    }

    fn list(k: &SecretKey, required: bool, serial: u64) -> SignedDocument {
        sign_approvers(
            k,
            &ApproverList {
                kind: APPROVERS_KIND.into(),
                org: ORG,
                serial,
                required,
                approvers: vec![Approver {
                    name: "alice".into(),
                    key: approver(20).public().to_line(),
                }],
                created: Utc::now(),
            },
        )
        .unwrap()
    }

    fn approval(by: &SecretKey, version: &str) -> SignedDocument {
        sign_approval(
            by,
            &ManifestApproval {
                kind: MANIFEST_APPROVAL_KIND.into(),
                org: ORG,
                manifest: Uuid::from_u128(77),
                name: "patch-day".into(),
                items: vec![ApprovedItem {
                    ecosystem: "Debian:12".into(),
                    name: "openssl".into(),
                    version: version.into(),
                }],
                created: Utc::now(),
            },
        )
        .unwrap()
    }

    fn install(k: &SecretKey, approval: Option<SignedDocument>) -> CommandEnvelope {
        let id = Uuid::new_v4();
        let params = serde_json::json!({"packages": [{"name": "openssl", "version": "3.0.15-1"}]});
        let st = CommandStatement {
            kind: COMMAND_STATEMENT_KIND.into(),
            org: ORG,
            host: HOST,
            command: id,
            operation: "install_updates".into(),
            params: params.clone(),
            queued_at: Utc::now(),
            expires_at: later(),
            approval,
        };
        CommandEnvelope {
            id,
            kind: "install_updates".into(),
            params,
            queued_at: st.queued_at,
            signed: Some(sign_command(k, &st).unwrap()),
        }
    }

    fn with_list(k: &SecretKey, required: bool) -> (tempfile::TempDir, Admission) {
        let (d, c, s) = dirs();
        let mut a = Admission::open(&c, &s, None);
        a.enrolled(Some(&CommandKeyInfo {
            approvers: Some(list(k, required, 1)),
            ..info(k, vec![])
        }));
        assert_eq!(a.approvers_serial(), Some(1));
        (d, a)
    }

    #[test]
    fn a_required_approval_must_be_there_hold_and_name_the_package() {
        let k = key(1);
        let (_d, mut a) = with_list(&k, true);
        let reason = |a: &mut Admission, e: &CommandEnvelope| {
            a.admit(e, HOST, Utc::now())
                .map(|_| ())
                .map_err(|r| (r.reason(), r.to_string()))
        };
        // The platform alone (its key, no approver) cannot install.
        let (why, text) = reason(&mut a, &install(&k, None)).unwrap_err();
        assert_eq!(why, "unapproved");
        assert!(text.contains("requires an approver's signature"), "{text}");
        // Signed by someone who is not on the list.
        let (why, _) = reason(
            &mut a,
            &install(&k, Some(approval(&approver(21), "3.0.15-1"))),
        )
        .unwrap_err();
        assert_eq!(why, "unapproved");
        // Alice approved another version.
        let (_, text) = reason(
            &mut a,
            &install(&k, Some(approval(&approver(20), "3.0.14-1"))),
        )
        .unwrap_err();
        assert!(
            text.contains("openssl 3.0.15-1 is not in the approved manifest patch-day"),
            "{text}"
        );
        // Alice approved exactly this.
        reason(
            &mut a,
            &install(&k, Some(approval(&approver(20), "3.0.15-1"))),
        )
        .unwrap();
        // Other operations need no approver.
        assert!(a.admit(&env(&k, HOST, later()), HOST, Utc::now()).is_ok());
    }

    #[test]
    fn the_list_is_taken_only_signed_by_the_trusted_key_and_only_newer() {
        let k = key(1);
        let (_d, mut a) = with_list(&k, false);
        // Not required: an install without approval runs.
        assert!(a.admit(&install(&k, None), HOST, Utc::now()).is_ok());
        // A list signed by another key (a substituted one) is ignored.
        a.follow(&CommandKeyInfo {
            approvers: Some(list(&key(66), false, 9)),
            ..info(&k, vec![])
        });
        assert_eq!(a.approvers_serial(), Some(1));
        // A newer list from the trusted key is taken, and kept over a restart.
        a.follow(&CommandKeyInfo {
            approvers: Some(list(&k, true, 2)),
            ..info(&k, vec![])
        });
        assert_eq!(a.approvers_serial(), Some(2));
        assert_eq!(
            a.admit(&install(&k, None), HOST, Utc::now())
                .unwrap_err()
                .reason(),
            "unapproved"
        );
    }
}
