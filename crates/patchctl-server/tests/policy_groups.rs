//! Groups and host tags over the real operator API (TLS 1.3 on loopback, a real SQLite
//! file): the built-in group `all`, a group by tags and os facts, tags set on a host by
//! name moving it into a group, the built-in group kept, clear refusals, and the audit
//! trail of each change.

mod support;

use axum::http::StatusCode;
use chrono::Utc;
use patchctl_proto::agent::{OsInfo, SystemInfo};
use patchctl_storage::NewHost;
use serde_json::json;
use support::platform;
use uuid::Uuid;

async fn add_host(
    p: &support::Platform,
    name: &str,
    os: &str,
    like: &[&str],
    version: &str,
) -> Uuid {
    let key = p
        .store
        .create_enrollment_key(p.org_id, "k", &Uuid::new_v4().to_string(), Utc::now())
        .await
        .unwrap();
    p.store
        .create_host(NewHost {
            org_id: p.org_id,
            enrollment_key_id: key.id,
            credential_hash: Uuid::new_v4().to_string(),
            agent_version: "1.0.0".into(),
            system: SystemInfo {
                hostname: name.into(),
                os: OsInfo {
                    id: os.into(),
                    id_like: like.iter().map(|s| s.to_string()).collect(),
                    version_id: version.into(),
                    ..Default::default()
                },
                tags: vec!["web".into()],
                ..Default::default()
            },
            now: Utc::now(),
        })
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_select_hosts_by_tags_and_facts() {
    let p = platform().await;
    let admin = p.caller("admin").token.clone();
    let viewer = p.caller("viewer").token.clone();
    let deb = add_host(&p, "deb1", "debian", &[], "12").await;
    let alma = add_host(&p, "alma1", "almalinux", &["rhel", "fedora"], "9.4").await;

    let groups = p
        .req("GET", "/api/v1/groups", Some(&viewer), None)
        .await
        .ok();
    let all = &groups.as_array().unwrap()[0];
    assert_eq!(all["name"], "all");
    assert_eq!(all["host_count"], 2);

    // A group of RHEL 9 hosts tagged prod; no host has the tag yet.
    let g = p
        .req(
            "POST",
            "/api/v1/groups",
            Some(&admin),
            Some(&json!({"name": "rhel9-prod", "description": "canary",
                         "selector": {"tags": ["prod"], "os": "rhel", "os_release": "9"}})),
        )
        .await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.text);
    assert_eq!(g.body["host_count"], 0);
    assert!(g.body["created_by"].as_str().unwrap().contains("admin"));

    // Tag both hosts (by name): only the AlmaLinux one joins.
    for h in ["deb1", "alma1"] {
        let r = p
            .req(
                "PUT",
                &format!("/api/v1/hosts/{h}/tags"),
                Some(&admin),
                Some(&json!({"tags": ["prod", "eu"]})),
            )
            .await
            .ok();
        assert_eq!(r["tags"], json!(["eu", "prod"]), "sorted");
        assert_eq!(r["agent_tags"], json!(["web"]));
    }
    let shown = p
        .req("GET", "/api/v1/groups/rhel9-prod", Some(&viewer), None)
        .await
        .ok();
    assert_eq!(shown["host_count"], 1);
    let tags = p
        .req(
            "GET",
            &format!("/api/v1/hosts/{alma}/tags"),
            Some(&viewer),
            None,
        )
        .await
        .ok();
    assert_eq!(tags["groups"], json!(["all", "rhel9-prod"]));
    let tags = p
        .req(
            "GET",
            &format!("/api/v1/hosts/{deb}/tags"),
            Some(&viewer),
            None,
        )
        .await
        .ok();
    assert_eq!(tags["groups"], json!(["all"]));

    // Refusals say what was wrong.
    let bad = p
        .req(
            "PUT",
            "/api/v1/hosts/deb1/tags",
            Some(&admin),
            Some(&json!({"tags": ["has space"]})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.text.contains("has space") && bad.text.contains("ASCII"),
        "{}",
        bad.text
    );
    let bad = p
        .req(
            "POST",
            "/api/v1/groups",
            Some(&admin),
            Some(&json!({"name": "x", "selector": {"colour": "red"}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
    let dup = p
        .req(
            "POST",
            "/api/v1/groups",
            Some(&admin),
            Some(&json!({"name": "rhel9-prod"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.text);
    for (m, body) in [
        ("PUT", Some(json!({"name": "everything"}))),
        ("DELETE", None),
    ] {
        let r = p
            .req(m, "/api/v1/groups/all", Some(&admin), body.as_ref())
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{m}: {}", r.text);
        assert!(r.text.contains("every host"), "{}", r.text);
    }
    let missing = p
        .req("GET", "/api/v1/groups/nope", Some(&viewer), None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.text.contains("patchctl groups list"));
    let refused = p
        .req(
            "POST",
            "/api/v1/groups",
            Some(&viewer),
            Some(&json!({"name": "v"})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Rename, then delete; each change is in the audit trail with the group.
    let renamed = p
        .req(
            "PUT",
            "/api/v1/groups/rhel9-prod",
            Some(&admin),
            Some(&json!({"name": "rhel9", "selector": {"os": "rhel"}})),
        )
        .await
        .ok();
    assert_eq!(renamed["host_count"], 1);
    let gone = p
        .req("DELETE", "/api/v1/groups/rhel9", Some(&admin), None)
        .await
        .ok();
    assert_eq!(gone["name"], "rhel9");
    let owner = p.caller("owner").token.clone();
    let trail = p
        .req(
            "GET",
            "/api/v1/audit?action=group.create",
            Some(&owner),
            None,
        )
        .await
        .ok();
    let made: Vec<_> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == 201)
        .collect();
    assert_eq!(
        made.len(),
        1,
        "one made; the refusals are entries of their own"
    );
    assert_eq!(made[0]["details"]["name"], "rhel9-prod");
    assert_eq!(made[0]["details"]["selector"]["os"], "rhel");
    let trail = p
        .req("GET", "/api/v1/audit?action=host.tag", Some(&owner), None)
        .await
        .ok();
    assert_eq!(
        trail.as_array().unwrap().len(),
        3,
        "two tag changes and one refusal"
    );
}
