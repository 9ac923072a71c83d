//! Approvals, rules and manifests over the real operator API (TLS 1.3 on loopback, a
//! real SQLite file): a host's security updates approved for a group in its release's
//! ecosystem, approving again is a no-op, malformed items refused with the reason, a
//! rule that approves only after the update has been seen for its days (on a clock the
//! test sets), and a manifest that freezes the highest approved version of each package.

mod support;

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use patchctl_proto::agent::{OsInfo, SystemInfo};
use patchctl_proto::command::AvailableUpdate;
use patchctl_proto::scan::{ScanState, ScanUpdates};
use patchctl_server::AppState;
use patchctl_server::settings::Settings;
use patchctl_storage::NewHost;
use serde_json::json;
use support::platform;
use uuid::Uuid;

fn update(name: &str, from: &str, to: &str, security: bool) -> AvailableUpdate {
    AvailableUpdate {
        name: name.into(),
        arch: "amd64".into(),
        current_version: Some(from.into()),
        candidate_version: to.into(),
        origins: vec![if security {
            "Debian-Security:12/stable-security".into()
        } else {
            "Debian:12/stable".into()
        }],
        security,
        advisories: Vec::new(),
    }
}

/// A Debian 12 host with two security updates and one other.
async fn debian_host(p: &support::Platform, name: &str) -> Uuid {
    host_with(
        p,
        name,
        ("debian", "12", "bookworm"),
        "dpkg",
        vec![
            update("openssl", "3.0.14-1~deb12u2", "3.0.15-1~deb12u1", true),
            update("curl", "7.88.1-10+deb12u7", "7.88.1-10+deb12u8", true),
            update("tzdata", "2024a-0+deb12u1", "2025b-0+deb12u1", false),
        ],
    )
    .await
}

/// A host of the release `(os id, version id, codename)` whose scan offers `updates`.
async fn host_with(
    p: &support::Platform,
    name: &str,
    (id, version_id, codename): (&str, &str, &str),
    package_manager: &str,
    updates: Vec<AvailableUpdate>,
) -> Uuid {
    let key = p
        .store
        .create_enrollment_key(p.org_id, "k", &Uuid::new_v4().to_string(), Utc::now())
        .await
        .unwrap();
    let system = SystemInfo {
        hostname: name.into(),
        os: OsInfo {
            id: id.into(),
            version_id: version_id.into(),
            version_codename: codename.into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let h = p
        .store
        .create_host(NewHost {
            org_id: p.org_id,
            enrollment_key_id: key.id,
            credential_hash: Uuid::new_v4().to_string(),
            agent_version: "1.0.0".into(),
            system: system.clone(),
            now: Utc::now(),
        })
        .await
        .unwrap();
    let mut state = ScanState {
        system,
        package_manager: Some(package_manager.into()),
        packages: Vec::new(),
        updates: Some(ScanUpdates {
            refreshed: true,
            updates,
            removals: Vec::new(),
            error: None,
        }),
    };
    state.canonicalize();
    p.store
        .put_scan(
            h.id,
            Utc::now(),
            &state.digest(),
            &state,
            patchctl_storage::ScanKind::Full,
        )
        .await
        .unwrap();
    h.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_and_manifests() {
    let p = platform().await;
    let operator = p.caller("operator").token.clone();
    let viewer = p.caller("viewer").token.clone();
    debian_host(&p, "deb1").await;

    let r = p
        .req(
            "POST",
            "/api/v1/approvals",
            Some(&operator),
            Some(&json!({"group": "all", "from_host": "deb1", "security_only": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let approved = r.body["approved"].as_array().unwrap();
    let names: Vec<_> = approved
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["curl", "openssl"],
        "security updates only, tzdata left"
    );
    assert_eq!(approved[0]["ecosystem"], "Debian:12");
    assert_eq!(approved[0]["group"], "all");
    assert_eq!(approved[0]["source"]["kind"], "manual");
    assert!(
        approved[0]["approved_by"]
            .as_str()
            .unwrap()
            .contains("operator")
    );
    assert_eq!(r.body["already"], 0);

    // Again, with an explicit newer openssl: one new, two already there.
    let r = p
        .req(
            "POST",
            "/api/v1/approvals",
            Some(&operator),
            Some(
                &json!({"group": "all", "from_host": "deb1", "security_only": true,
                         "updates": [{"ecosystem": "Debian:12", "name": "openssl",
                                      "version": "3.0.16-1~deb12u1"}]}),
            ),
        )
        .await
        .ok();
    assert_eq!(r["approved"].as_array().unwrap().len(), 1);
    assert_eq!(r["already"], 2);

    // Refusals name what is wrong.
    for (body, want) in [
        (
            json!({"group": "all", "updates": [{"ecosystem": "Plan9:4", "name": "x", "version": "1"}]}),
            "Plan9:4",
        ),
        (
            json!({"group": "all", "updates": [{"ecosystem": "Debian:12", "name": "-rf", "version": "1"}]}),
            "-rf",
        ),
        (
            json!({"group": "all", "updates": [{"ecosystem": "Debian:12", "name": "a", "version": "1 2"}]}),
            "1 2",
        ),
        (json!({"group": "all"}), "nothing to approve"),
        (json!({"group": "all", "security_only": true}), "from_host"),
    ] {
        let r = p
            .req("POST", "/api/v1/approvals", Some(&operator), Some(&body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert!(r.text.contains(want), "{body}: {}", r.text);
    }
    let r = p
        .req(
            "POST",
            "/api/v1/approvals",
            Some(&viewer),
            Some(&json!({"group": "all", "from_host": "deb1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Withdraw curl; the manifest holds the highest openssl and no curl.
    let list = p
        .req("GET", "/api/v1/approvals?group=all", Some(&viewer), None)
        .await
        .ok();
    let curl = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "curl")
        .unwrap();
    let r = p
        .req(
            "POST",
            &format!("/api/v1/approvals/{}/revoke", curl["id"].as_str().unwrap()),
            Some(&operator),
            None,
        )
        .await
        .ok();
    assert!(r["revoked_by"].as_str().unwrap().contains("operator"));
    let m = p
        .req(
            "POST",
            "/api/v1/manifests",
            Some(&operator),
            Some(&json!({"name": "patch-day-1", "group": "all"})),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED, "{}", m.text);
    assert_eq!(
        m.body["items"],
        json!([{"ecosystem": "Debian:12", "name": "openssl", "version": "3.0.16-1~deb12u1"}])
    );
    let shown = p
        .req("GET", "/api/v1/manifests/patch-day-1", Some(&viewer), None)
        .await
        .ok();
    assert_eq!(shown["items"], m.body["items"]);
    assert_eq!(shown["item_count"], 1);
    let dup = p
        .req(
            "POST",
            "/api/v1/manifests",
            Some(&operator),
            Some(&json!({"name": "patch-day-1", "group": "all"})),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    // Approvals made later do not change a frozen manifest.
    p.req(
        "POST",
        "/api/v1/approvals",
        Some(&operator),
        Some(&json!({"group": "all", "updates": [{"ecosystem": "Debian:12", "name": "openssl", "version": "3.0.17-1~deb12u1"}]})),
    )
    .await
    .ok();
    let again = p
        .req("GET", "/api/v1/manifests/patch-day-1", Some(&viewer), None)
        .await
        .ok();
    assert_eq!(again["items"], m.body["items"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_approve_after_their_days_on_a_test_clock() {
    let p = platform().await;
    let admin = p.caller("admin").token.clone();
    debian_host(&p, "deb2").await;
    // The rule works for every family, Debian and Ubuntu included (which SSM's
    // approve-after-days does not support): one security update and one other each.
    for (name, release, pm, sec, other) in [
        (
            "ubu1",
            ("ubuntu", "24.04", "noble"),
            "dpkg",
            (
                "openssh-server",
                "1:9.6p1-3ubuntu13.4",
                "1:9.6p1-3ubuntu13.5",
            ),
            ("snapd", "2.63+24.04", "2.65.3+24.04"),
        ),
        (
            "alma1",
            ("almalinux", "9.4", ""),
            "rpm",
            ("openssl", "1:3.0.7-27.el9", "1:3.0.7-28.el9_4"),
            ("tzdata", "2024a-1.el9", "2024b-2.el9"),
        ),
        (
            "alpine1",
            ("alpine", "3.20.3", ""),
            "apk",
            ("musl", "1.2.5-r0", "1.2.5-r1"),
            ("tzdata", "2024a-r1", "2024b-r0"),
        ),
    ] {
        host_with(
            &p,
            name,
            release,
            pm,
            vec![
                update(sec.0, sec.1, sec.2, true),
                update(other.0, other.1, other.2, false),
            ],
        )
        .await;
    }
    let r = p
        .req(
            "POST",
            "/api/v1/approval-rules",
            Some(&admin),
            Some(
                &json!({"name": "security-after-2d", "group": "all", "min_severity": "any",
                         "security_only": true, "after_days": 2}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let bad = p
        .req(
            "POST",
            "/api/v1/approval-rules",
            Some(&admin),
            Some(&json!({"name": "x", "group": "all", "min_severity": "severe", "after_days": 1})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);

    // The rule runner over the same database, on the test's clock.
    let st = AppState::new(
        p.store.clone(),
        Settings::with_defaults(
            "127.0.0.1:0".parse().unwrap(),
            "sqlite::memory:",
            "/x",
            "/y",
        ),
    );
    let t0 = Utc::now();
    let made = patchctl_server::policy::approvals::run_rules(&st, t0)
        .await
        .unwrap();
    assert_eq!(made, 0, "first seen now: not two days old");
    let made = patchctl_server::policy::approvals::run_rules(&st, t0 + Duration::hours(47))
        .await
        .unwrap();
    assert_eq!(made, 0);
    let made = patchctl_server::policy::approvals::run_rules(&st, t0 + Duration::days(2))
        .await
        .unwrap();
    assert_eq!(
        made, 5,
        "Debian's curl and openssl, Ubuntu's openssh-server, AlmaLinux's openssl and \
         Alpine's musl; no update that is not a security update"
    );
    let list = p
        .req("GET", "/api/v1/approvals", Some(&admin), None)
        .await
        .ok();
    let mut approved: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {} {}", a["ecosystem"], a["name"], a["version"]).replace('"', ""))
        .collect();
    approved.sort();
    assert_eq!(
        approved,
        [
            "AlmaLinux:9 openssl 1:3.0.7-28.el9_4",
            "Alpine:v3.20 musl 1.2.5-r1",
            "Debian:12 curl 7.88.1-10+deb12u8",
            "Debian:12 openssl 3.0.15-1~deb12u1",
            "Ubuntu:24.04:LTS openssh-server 1:9.6p1-3ubuntu13.5",
        ],
        "each family's security update in its own ecosystem"
    );
    let a = &list.as_array().unwrap()[0];
    assert_eq!(a["source"]["kind"], "rule");
    assert_eq!(a["source"]["rule"], "security-after-2d");
    assert!(a["source"]["rule_id"].is_string(), "{a}");
    assert_eq!(a["approved_by"], "rule security-after-2d");
    let rules = p
        .req("GET", "/api/v1/approval-rules", Some(&admin), None)
        .await
        .ok();
    assert!(rules[0]["last_run_at"].is_string());
    let gone = p
        .req(
            "DELETE",
            "/api/v1/approval-rules/security-after-2d",
            Some(&admin),
            None,
        )
        .await
        .ok();
    assert_eq!(gone["name"], "security-after-2d");
    let list = p
        .req("GET", "/api/v1/approvals", Some(&admin), None)
        .await
        .ok();
    assert_eq!(
        list.as_array().unwrap().len(),
        5,
        "a rule's approvals outlive it"
    );
    let a = &list.as_array().unwrap()[0];
    assert_eq!(a["source"]["rule"], "security-after-2d", "{a}");
    assert!(
        a["source"].get("rule_id").is_none(),
        "a deleted rule's id is left out, not shown as a nil id: {a}"
    );
}
