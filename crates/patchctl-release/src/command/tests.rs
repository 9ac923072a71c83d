//! Tests of command, rotation and approval signatures with real keys, and property
//! tests over arbitrary documents.

use chrono::TimeZone;
use patchctl_proto::release::SignatureEntry;
use proptest::prelude::*;

use super::*;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(KeyRole::Command, [n; 32])
}

fn statement(org: Uuid) -> CommandStatement {
    CommandStatement {
        kind: COMMAND_STATEMENT_KIND.into(),
        org,
        host: Uuid::from_u128(7),
        command: Uuid::from_u128(9),
        operation: "health_check".into(),
        params: serde_json::json!({}),
        queued_at: Utc.with_ymd_and_hms(2026, 12, 6, 3, 0, 0).unwrap(),
        expires_at: Utc.with_ymd_and_hms(2026, 12, 9, 3, 0, 0).unwrap(),
        approval: None,
    }
}

#[test]
fn a_signed_statement_verifies_and_comes_back_whole() {
    let k = key(1);
    let st = statement(Uuid::from_u128(1));
    let doc = sign_command(&k, &st).unwrap();
    assert_eq!(verify_command(&doc, &k.public(), &[]).unwrap(), st);
}

#[test]
fn every_refusal_is_named() {
    let k = key(1);
    let other = key(2);
    let st = statement(Uuid::from_u128(1));
    let doc = sign_command(&k, &st).unwrap();

    let unsigned = SignedDocument {
        signed: doc.signed.clone(),
        signatures: vec![],
    };
    assert_eq!(
        verify_command(&unsigned, &k.public(), &[]),
        Err(CommandSigError::Unsigned)
    );

    // One changed byte of the statement: the signature no longer holds.
    let mut tampered = doc.clone();
    tampered.signed = tampered.signed.replace("health_check", "check_updates");
    assert_eq!(
        verify_command(&tampered, &k.public(), &[]),
        Err(CommandSigError::BadSignature(k.public().key_id()))
    );

    // A signature by another key claiming to be the known key's id.
    let forged_doc = sign_command(&other, &st).unwrap();
    let forged = SignedDocument {
        signed: doc.signed.clone(),
        signatures: vec![SignatureEntry {
            key_id: k.public().key_id(),
            signature: forged_doc.signatures[0].signature.clone(),
        }],
    };
    assert!(matches!(
        verify_command(&forged, &k.public(), &[]),
        Err(CommandSigError::BadSignature(_))
    ));

    // Signed by a key the verifier does not know, and by one it retired.
    assert!(matches!(
        verify_command(&forged_doc, &k.public(), &[]),
        Err(CommandSigError::UnknownKey(ids)) if ids == other.public().key_id()
    ));
    assert_eq!(
        verify_command(&forged_doc, &k.public(), &[other.public().key_id()]),
        Err(CommandSigError::RetiredKey(other.public().key_id()))
    );

    // A release signing key cannot sign commands.
    let wrong = SecretKey::from_seed(KeyRole::Signing, [3; 32]);
    assert!(matches!(
        sign_command(&wrong, &st),
        Err(SignError::WrongRole { .. })
    ));
}

#[test]
fn a_rotation_signature_never_passes_for_a_command() {
    let k = key(1);
    let org = Uuid::from_u128(1);
    let rot = sign_rotation(&k, &key(2).public(), org, Utc::now()).unwrap();
    assert!(matches!(
        verify_command(&rot, &k.public(), &[]),
        Err(CommandSigError::BadSignature(_))
    ));
}

#[test]
fn rotations_are_followed_only_as_a_chain_signed_by_each_old_key() {
    let org = Uuid::from_u128(1);
    let (a, b, c) = (key(1), key(2), key(3));
    let now = Utc::now();
    let ab = sign_rotation(&a, &b.public(), org, now).unwrap();
    let bc = sign_rotation(&b, &c.public(), org, now).unwrap();

    let passed = follow_rotations(
        &a.public(),
        org,
        &[ab.clone(), bc.clone()],
        Some(&c.public()),
    )
    .unwrap();
    assert_eq!(passed, vec![b.public(), c.public()]);
    assert!(
        follow_rotations(&a.public(), org, &[], None)
            .unwrap()
            .is_empty()
    );

    // Out of order, from the wrong start, for another organisation, ending elsewhere.
    assert!(matches!(
        follow_rotations(&a.public(), org, std::slice::from_ref(&bc), None),
        Err(RotationError::Broken { index: 0, .. })
    ));
    assert!(matches!(
        follow_rotations(
            &a.public(),
            Uuid::from_u128(2),
            std::slice::from_ref(&ab),
            None
        ),
        Err(RotationError::Refused { index: 0, .. })
    ));
    assert!(matches!(
        follow_rotations(
            &a.public(),
            org,
            std::slice::from_ref(&ab),
            Some(&c.public())
        ),
        Err(RotationError::WrongEnd { .. })
    ));

    // A substituted key "rotated to" by a rotation the trusted key never signed: the
    // attacker's key x signs a rotation that claims a as its previous key.
    let x = key(9);
    assert!(sign_rotation(&x, &x.public(), org, now).is_err());
    let fake = KeyRotation {
        kind: KEY_ROTATION_KIND.into(),
        org,
        previous: a.public().to_line(),
        next: x.public().to_line(),
        created: now,
    };
    let fake_doc = crate::sign_document(KEY_ROTATION_KIND, &fake, &[&x]);
    assert!(matches!(
        follow_rotations(&a.public(), org, &[fake_doc], Some(&x.public())),
        Err(RotationError::Refused { index: 0, .. })
    ));
}

proptest! {
    /// Whatever arrives (any text, any signatures), verification never panics and never
    /// accepts a document the key did not sign.
    #[test]
    fn arbitrary_documents_never_verify(
        signed in ".{0,300}",
        sigs in proptest::collection::vec(("[0-9a-f]{0,20}", "[0-9a-f]{0,130}"), 0..3),
    ) {
        let k = key(1);
        let doc = SignedDocument {
            signed,
            signatures: sigs
                .into_iter()
                .map(|(key_id, signature)| SignatureEntry { key_id, signature })
                .collect(),
        };
        prop_assert!(verify_command(&doc, &k.public(), &[]).is_err());
        prop_assert!(follow_rotations(&k.public(), Uuid::nil(), &[doc], None).is_err());
    }

    /// A signed statement with any parameters verifies, and any flipped character of its
    /// text makes it fail.
    #[test]
    fn any_flipped_byte_is_caught(name in "[a-z0-9.+-]{1,40}", at in 0usize..400) {
        let k = key(1);
        let mut st = statement(Uuid::from_u128(1));
        st.operation = "get_package_info".into();
        st.params = serde_json::json!({ "name": name });
        let doc = sign_command(&k, &st).unwrap();
        prop_assert_eq!(verify_command(&doc, &k.public(), &[]).unwrap(), st);
        let mut bytes = doc.signed.clone().into_bytes();
        let i = at % bytes.len();
        bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
        let changed = SignedDocument { signed: String::from_utf8_lossy(&bytes).into_owned(), ..doc };
        prop_assert!(verify_command(&changed, &k.public(), &[]).is_err());
    }
}

mod approvals {
    use patchctl_proto::signing::{
        APPROVERS_KIND, ApprovedItem, Approver, ApproverList, MANIFEST_APPROVAL_KIND,
        ManifestApproval,
    };

    use super::*;
    use crate::command::approval::*;

    fn list(org: Uuid) -> ApproverList {
        ApproverList {
            kind: APPROVERS_KIND.into(),
            org,
            serial: 1,
            required: true,
            approvers: vec![Approver {
                name: "alice".into(),
                key: SecretKey::from_seed(KeyRole::Approver, [20; 32])
                    .public()
                    .to_line(),
            }],
            created: Utc::now(),
        }
    }

    fn approval(org: Uuid) -> ManifestApproval {
        ManifestApproval {
            kind: MANIFEST_APPROVAL_KIND.into(),
            org,
            manifest: Uuid::from_u128(5),
            name: "m".into(),
            items: vec![ApprovedItem {
                ecosystem: "Debian:12".into(),
                name: "curl".into(),
                version: "1".into(),
            }],
            created: Utc::now(),
        }
    }

    #[test]
    fn the_list_verifies_only_under_the_command_key_and_for_its_organisation() {
        let org = Uuid::from_u128(1);
        let doc = sign_approvers(&key(1), &list(org)).unwrap();
        assert_eq!(
            verify_approvers(&doc, &key(1).public(), org).unwrap(),
            list(org).clone_with_created(&doc)
        );
        assert!(verify_approvers(&doc, &key(2).public(), org).is_err());
        assert!(verify_approvers(&doc, &key(1).public(), Uuid::from_u128(2)).is_err());
        // An approver key cannot sign the list, a command key cannot sign an approval.
        let approver = SecretKey::from_seed(KeyRole::Approver, [20; 32]);
        assert!(sign_approvers(&approver, &list(org)).is_err());
        assert!(sign_approval(&key(1), &approval(org)).is_err());
    }

    #[test]
    fn an_approval_holds_only_by_a_listed_approver_of_the_organisation() {
        let org = Uuid::from_u128(1);
        let alice = SecretKey::from_seed(KeyRole::Approver, [20; 32]);
        let bob = SecretKey::from_seed(KeyRole::Approver, [21; 32]);
        let doc = sign_approval(&alice, &approval(org)).unwrap();
        let (a, who) = verify_approval(&doc, &list(org)).unwrap();
        assert_eq!((a.manifest, who.as_str()), (Uuid::from_u128(5), "alice"));
        assert!(matches!(
            verify_approval(&sign_approval(&bob, &approval(org)).unwrap(), &list(org)),
            Err(ApprovalError::NotAnApprover(_))
        ));
        assert!(matches!(
            verify_approval(
                &sign_approval(&alice, &approval(Uuid::from_u128(2))).unwrap(),
                &list(org)
            ),
            Err(ApprovalError::Malformed(_))
        ));
        let mut tampered = doc.clone();
        tampered.signed = tampered.signed.replace("curl", "bash");
        assert!(matches!(
            verify_approval(&tampered, &list(org)),
            Err(ApprovalError::BadSignature(who)) if who == "alice"
        ));
    }

    trait CloneWithCreated {
        fn clone_with_created(&self, doc: &SignedDocument) -> ApproverList;
    }

    impl CloneWithCreated for ApproverList {
        /// The list as signed (its `created` is the one in the document).
        fn clone_with_created(&self, doc: &SignedDocument) -> ApproverList {
            let signed: ApproverList = serde_json::from_str(&doc.signed).unwrap();
            ApproverList {
                created: signed.created,
                ..self.clone()
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_documents_never_pass(signed in ".{0,200}", id in "[0-9a-f]{16}", sig in "[0-9a-f]{128}") {
            let org = Uuid::from_u128(1);
            let doc = SignedDocument { signed, signatures: vec![SignatureEntry { key_id: id, signature: sig }] };
            prop_assert!(verify_approvers(&doc, &key(1).public(), org).is_err());
            prop_assert!(verify_approval(&doc, &list(org)).is_err());
        }
    }
}
