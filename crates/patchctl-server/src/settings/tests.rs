//! Tests of the settings layers (file, environment) and of the redaction in `Debug`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use super::*;

const FILE: &str = r#"{
    "listen": "127.0.0.1:8443",
    "database_url": "sqlite:///var/lib/patchctl/db",
    "tls_cert": "/etc/patchctl/cert.pem",
    "tls_key": "/etc/patchctl/key.pem",
    "command_lease_secs": 120
}"#;

/// A server config file holding `text`, and its directory (kept alive).
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.json");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let (_dir, path) = file(text);
    Settings::load_with_env(&path, env.iter().copied())
}

fn err(text: &str, env: &[(&str, &str)]) -> String {
    load(text, env).unwrap_err().to_string()
}

#[test]
fn the_file_alone_gives_its_values_and_the_defaults() {
    let s = load(FILE, &[]).unwrap();
    assert_eq!(s.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(s.database_url, "sqlite:///var/lib/patchctl/db");
    assert_eq!(s.command_lease_secs, 120);
    assert_eq!(s.heartbeat_interval_secs, 300);
    assert_eq!(s.metrics_history_len, 288);
    assert!(s.vuln_feeds.is_empty());
    assert_eq!(
        (s.enroll_per_address_per_min, s.enroll_per_key_per_min),
        (30, 600)
    );
    // The command-signing key file defaults to one beside the settings file.
    let (_dir, path) = file(FILE);
    let alone = Settings::load_file(&path).unwrap();
    assert_eq!(
        alone.command_signing_key.as_deref(),
        Some(path.with_file_name("command-signing.key").as_path())
    );
    assert_eq!(
        Settings {
            command_signing_key: None,
            ..alone
        },
        Settings {
            command_signing_key: None,
            ..s
        }
    );
}

#[test]
fn env_overrides_file() {
    let s = load(
        FILE,
        &[
            ("PATCHCTL_LISTEN", "0.0.0.0:9443"),
            (
                "PATCHCTL_DATABASE_URL",
                "postgres://patchctl:pw@db/patchctl",
            ),
            ("PATCHCTL_TLS_CERT", "/run/cert.pem"),
            ("PATCHCTL_TLS_KEY", "/run/key.pem"),
            ("PATCHCTL_HEARTBEAT_INTERVAL_SECS", "60"),
            ("PATCHCTL_COMMAND_LEASE_SECS", "30"),
            ("PATCHCTL_METRICS_HISTORY_LEN", "10"),
            (
                "PATCHCTL_VULN_FEEDS",
                r#"[{"name": "osv-debian", "url": "https://example.com/all.zip"}]"#,
            ),
            ("PATCHCTL_ENROLL_PER_ADDRESS_PER_MIN", "5"),
            ("PATCHCTL_ENROLL_PER_KEY_PER_MIN", "50"),
            ("PATCHCTL_COMMAND_SIGNING_KEY", "/run/command-keys.json"),
            // Not settings: the CLI's variables and unrelated ones are ignored.
            ("PATCHCTL_TOKEN", "pct_x"),
            ("PATCHCTL_SERVER", "https://x"),
            ("HOME", "/root"),
        ],
    )
    .unwrap();
    assert_eq!(
        s,
        Settings {
            heartbeat_interval_secs: 60,
            command_lease_secs: 30,
            metrics_history_len: 10,
            vuln_feeds: vec![Feed {
                name: "osv-debian".into(),
                url: "https://example.com/all.zip".into(),
                kind: Default::default(),
            }],
            enroll_per_address_per_min: 5,
            enroll_per_key_per_min: 50,
            command_signing_key: Some("/run/command-keys.json".into()),
            ..Settings::with_defaults(
                "0.0.0.0:9443".parse().unwrap(),
                "postgres://patchctl:pw@db/patchctl",
                "/run/cert.pem",
                "/run/key.pem"
            )
        }
    );
}

#[test]
fn env_sets_only_what_it_names_and_empty_counts_as_unset() {
    let s = load(
        FILE,
        &[
            ("PATCHCTL_HEARTBEAT_INTERVAL_SECS", "30"),
            ("PATCHCTL_LISTEN", ""),
        ],
    )
    .unwrap();
    assert_eq!(s.heartbeat_interval_secs, 30);
    assert_eq!(s.command_lease_secs, 120, "from the file");
    assert_eq!(s.listen, "127.0.0.1:8443".parse().unwrap(), "from the file");
}

#[test]
fn env_supplies_a_setting_the_file_leaves_out() {
    let without_url = r#"{"listen": "127.0.0.1:1", "tls_cert": "c", "tls_key": "k"}"#;
    let e = err(without_url, &[]);
    assert!(e.contains("database_url is not set"), "{e}");
    assert!(e.contains("PATCHCTL_DATABASE_URL"), "{e}");
    let s = load(
        without_url,
        &[("PATCHCTL_DATABASE_URL", "postgres://app:pw@db/patchctl")],
    )
    .unwrap();
    assert_eq!(s.database_url, "postgres://app:pw@db/patchctl");
}

#[test]
fn bad_env_values_name_their_variable() {
    for (var, value, says) in [
        ("PATCHCTL_LISTEN", "localhost", "is not an address"),
        (
            "PATCHCTL_HEARTBEAT_INTERVAL_SECS",
            "5m",
            "positive whole number",
        ),
        ("PATCHCTL_COMMAND_LEASE_SECS", "0", "positive whole number"),
        (
            "PATCHCTL_METRICS_HISTORY_LEN",
            "-1",
            "positive whole number",
        ),
        (
            "PATCHCTL_METRICS_HISTORY_LEN",
            "5000000000",
            "positive whole number",
        ),
        ("PATCHCTL_VULN_FEEDS", "osv-debian=https://x", "JSON list"),
        (
            "PATCHCTL_ENROLL_PER_ADDRESS_PER_MIN",
            "30/min",
            "positive whole number of attempts a minute",
        ),
        (
            "PATCHCTL_ENROLL_PER_KEY_PER_MIN",
            "0",
            "positive whole number of enrollments a minute",
        ),
    ] {
        let e = err(FILE, &[(var, value)]);
        assert!(
            e.starts_with(&format!("environment variable {var} is invalid")),
            "{var}={value}: {e}"
        );
        assert!(e.contains(says), "{var}={value}: {e}");
    }
}

#[test]
fn a_non_unicode_value_names_its_variable_and_a_path_may_be_any_bytes() {
    let (_dir, path) = file(FILE);
    let bytes = OsString::from_vec(b"/srv/\xff/db".to_vec());
    let e = Settings::load_with_env(
        &path,
        [(OsString::from("PATCHCTL_DATABASE_URL"), bytes.clone())],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "environment variable PATCHCTL_DATABASE_URL is invalid: it is not valid UTF-8"
    );
    let s = Settings::load_with_env(&path, [(OsString::from("PATCHCTL_TLS_KEY"), bytes.clone())])
        .unwrap();
    assert_eq!(s.tls_key, PathBuf::from(bytes));
}

#[test]
fn a_bad_feeds_value_is_not_repeated() {
    // A feed URL may carry a token: the error shows serde's position, not the value.
    let e = err(
        FILE,
        &[(
            "PATCHCTL_VULN_FEEDS",
            r#"[{"url": "https://x/?token=s3cret"}]"#,
        )],
    );
    assert!(e.contains("PATCHCTL_VULN_FEEDS"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn file_errors_say_what_and_where() {
    let e = err(r#"{"listen": "127.0.0.1:1", "verify": false}"#, &[]);
    assert!(e.contains("is invalid: unknown field `verify`"), "{e}");
    let e = err(FILE.replace("120", "0").as_str(), &[]);
    assert!(e.ends_with("command_lease_secs must be positive"), "{e}");
    let e = err(
        FILE.replace(
            "\"command_lease_secs\"",
            "\"enroll_per_key_per_min\": 0, \"command_lease_secs\"",
        )
        .as_str(),
        &[],
    );
    assert!(
        e.ends_with("enroll_per_key_per_min must be positive"),
        "{e}"
    );
    // The environment may correct the file.
    let s = load(
        FILE.replace("120", "0").as_str(),
        &[("PATCHCTL_COMMAND_LEASE_SECS", "7")],
    )
    .unwrap();
    assert_eq!(s.command_lease_secs, 7);
    let e = Settings::load(Path::new("/nonexistent/server.json"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read server config /nonexistent/server.json"),
        "{e}"
    );
}

#[test]
fn every_variable_is_read() {
    // Each name in ENV_VARS has its arm in `Layer::from_env` (an arm missing would panic).
    for var in ENV_VARS {
        let value = match var {
            ENV_LISTEN => "127.0.0.1:2",
            ENV_METRICS_LISTEN => "127.0.0.1:9464",
            ENV_VULN_FEEDS => r#"[{"name": "f", "url": "https://f"}]"#,
            ENV_VULN_SYNC => "false",
            ENV_HEARTBEAT_INTERVAL_SECS
            | ENV_VULN_SYNC_INTERVAL_SECS
            | ENV_COMMAND_LEASE_SECS
            | ENV_POLICY_TICK_SECS
            | ENV_METRICS_HISTORY_LEN
            | ENV_ENROLL_PER_ADDRESS_PER_MIN
            | ENV_ENROLL_PER_KEY_PER_MIN
            | ENV_SESSION_IDLE_SECS
            | ENV_SESSION_MAX_SECS
            | ENV_WEBHOOK_RETRY_BASE_SECS
            | ENV_DRAIN_SECS
            | ENV_AGENT_PER_CREDENTIAL_PER_MIN
            | ENV_AGENT_PER_ADDRESS_PER_MIN
            | ENV_MAX_CONNECTIONS
            | ENV_HEADER_READ_TIMEOUT_SECS
            | ENV_IDLE_TIMEOUT_SECS
            | ENV_BODY_READ_TIMEOUT_SECS
            | ENV_AGENT_REQUESTS_IN_FLIGHT => "3",
            // 240 by default: 0 switches long-polls off.
            ENV_LONG_POLL_MAX_SECS => "0",
            ENV_WEBHOOK_ALLOW_NETWORKS => "127.0.0.0/8, ::1",
            _ => "x",
        };
        assert_ne!(
            load(FILE, &[(var, value)]).unwrap(),
            load(FILE, &[]).unwrap(),
            "{var}"
        );
    }
}

#[test]
fn webhook_networks_are_cidrs_and_a_bad_one_names_the_variable() {
    let s = load(
        FILE,
        &[(ENV_WEBHOOK_ALLOW_NETWORKS, "10.1.0.0/16,fd00::/8")],
    )
    .unwrap();
    assert_eq!(
        s.webhook_allow_networks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.1.0.0/16", "fd00::/8"]
    );
    let e = load(FILE, &[(ENV_WEBHOOK_ALLOW_NETWORKS, "10.1.0.0/40")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(ENV_WEBHOOK_ALLOW_NETWORKS) && e.contains("10.1.0.0/40"),
        "{e}"
    );
}

fn settings_with(database_url: &str) -> Settings {
    let mut s = load(FILE, &[]).unwrap();
    s.database_url = database_url.into();
    s
}

#[test]
fn debug_never_prints_a_database_password() {
    for (url, shown) in [
        (
            "postgres://patchctl:s3cret@db.example:5432/patchctl",
            "postgres://patchctl:***@db.example:5432/patchctl",
        ),
        (
            "postgresql://patchctl:s3cret@db1,db2/patchctl?sslmode=require",
            "postgresql://patchctl:***@db1,db2/patchctl?sslmode=require",
        ),
        // Unescaped '@' and '/' in the password: still hidden whole.
        (
            "postgres://patchctl:s3c@r/et@db/patchctl",
            "postgres://patchctl:***@db/patchctl",
        ),
        (
            "postgres://patchctl@db/patchctl?password=s3cret&sslmode=require",
            "postgres://patchctl@db/patchctl?password=***&sslmode=require",
        ),
        (
            "postgres://db/patchctl?user=app&PassWord=s3cret#frag",
            "postgres://db/patchctl?user=app&PassWord=***#frag",
        ),
        (
            "host=db user=app password=s3cret",
            "host=db user=app password=***",
        ),
        // Nothing secret: shown as it is.
        (
            "sqlite:///var/lib/patchctl/db",
            "sqlite:///var/lib/patchctl/db",
        ),
        (
            "postgres://app@db:5432/patchctl",
            "postgres://app@db:5432/patchctl",
        ),
    ] {
        let s = settings_with(url);
        let debug = format!("{s:?}");
        let pretty = format!("{s:#?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(!pretty.contains("s3cret"), "{pretty}");
        assert!(
            debug.contains(&format!("database_url: {shown:?}")),
            "{debug}"
        );
        assert_eq!(redact_url(url), shown);
    }
}

#[test]
fn debug_never_prints_a_feed_secret_and_keeps_the_rest() {
    let mut s = settings_with("sqlite:///db");
    s.vuln_feeds = vec![Feed {
        name: "private".into(),
        url: "https://mirror:s3cret@feeds.example/osv.zip?token=t0ken&v=2".into(),
        kind: Default::default(),
    }];
    let debug = format!("{s:?}");
    assert!(
        !debug.contains("s3cret") && !debug.contains("t0ken"),
        "{debug}"
    );
    assert!(
        debug.contains(r#"url: "https://mirror:***@feeds.example/osv.zip?token=***&v=2""#),
        "{debug}"
    );
    for field in [
        "listen: 127.0.0.1:8443",
        "tls_cert: \"/etc/patchctl/cert.pem\"",
        "tls_key: \"/etc/patchctl/key.pem\"",
        "heartbeat_interval_secs: 300",
        "command_lease_secs: 120",
        "metrics_history_len: 288",
        "name: \"private\"",
    ] {
        assert!(debug.contains(field), "{field} in {debug}");
    }
}

#[test]
fn the_derived_serialisation_keeps_the_url_whole() {
    // server.json written by `--dev` must hold the real URL: only Debug redacts.
    let s = settings_with("postgres://app:s3cret@db/patchctl");
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.contains("postgres://app:s3cret@db/patchctl"));
    assert_eq!(serde_json::from_str::<Settings>(&json).unwrap(), s);
}

#[test]
fn long_polls_and_draining_have_defaults_and_take_zero() {
    let s = load(FILE, &[]).unwrap();
    assert_eq!((s.long_poll_max_secs, s.drain_secs), (240, 0));
    let s = load(
        FILE,
        &[(ENV_LONG_POLL_MAX_SECS, "0"), (ENV_DRAIN_SECS, "10")],
    )
    .unwrap();
    assert_eq!((s.long_poll_max_secs, s.drain_secs), (0, 10));
    let e = load(FILE, &[(ENV_LONG_POLL_MAX_SECS, "soon")])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(ENV_LONG_POLL_MAX_SECS) && e.contains("0 to switch long-polls off"),
        "{e}"
    );
}

#[test]
fn the_abuse_limits_have_defaults_file_keys_and_variables() {
    let s = load(FILE, &[]).unwrap();
    assert_eq!(
        (
            s.agent_per_credential_per_min,
            s.agent_per_address_per_min,
            s.max_connections
        ),
        (60, 60_000, 100_000)
    );
    assert_eq!(
        (
            s.header_read_timeout_secs,
            s.idle_timeout_secs,
            s.body_read_timeout_secs
        ),
        (15, 120, 30)
    );
    let file = FILE.replace(
        "\"command_lease_secs\": 120",
        "\"command_lease_secs\": 120, \"max_connections\": 5, \"agent_per_credential_per_min\": 7, \"idle_timeout_secs\": 9",
    );
    let s = load(
        &file,
        &[
            ("PATCHCTL_MAX_CONNECTIONS", "50"),
            ("PATCHCTL_AGENT_PER_ADDRESS_PER_MIN", "11"),
            ("PATCHCTL_HEADER_READ_TIMEOUT_SECS", "2"),
            ("PATCHCTL_BODY_READ_TIMEOUT_SECS", "4"),
        ],
    )
    .unwrap();
    assert_eq!(
        (
            s.max_connections,
            s.agent_per_credential_per_min,
            s.agent_per_address_per_min
        ),
        (50, 7, 11)
    );
    assert_eq!(
        (
            s.header_read_timeout_secs,
            s.idle_timeout_secs,
            s.body_read_timeout_secs
        ),
        (2, 9, 4)
    );
    let e = err(FILE, &[("PATCHCTL_MAX_CONNECTIONS", "0")]);
    assert!(e.contains("PATCHCTL_MAX_CONNECTIONS"), "{e}");
    let e = err(
        &FILE.replace(
            "\"command_lease_secs\": 120",
            "\"command_lease_secs\": 120, \"idle_timeout_secs\": 0",
        ),
        &[],
    );
    assert!(e.contains("idle_timeout_secs must be positive"), "{e}");
}

#[test]
fn the_agent_requests_in_flight_default_to_256_and_zero_is_refused() {
    let s = load(FILE, &[]).unwrap();
    assert_eq!(s.agent_requests_in_flight, 256);
    let file = FILE.replace(
        "\"command_lease_secs\": 120",
        "\"command_lease_secs\": 120, \"agent_requests_in_flight\": 8",
    );
    assert_eq!(load(&file, &[]).unwrap().agent_requests_in_flight, 8);
    // The variable wins over the file.
    let s = load(&file, &[(ENV_AGENT_REQUESTS_IN_FLIGHT, "1000")]).unwrap();
    assert_eq!(s.agent_requests_in_flight, 1000);
    let e = err(FILE, &[(ENV_AGENT_REQUESTS_IN_FLIGHT, "0")]);
    assert!(
        e.contains("PATCHCTL_AGENT_REQUESTS_IN_FLIGHT") && e.contains("positive"),
        "{e}"
    );
    let e = err(FILE, &[(ENV_AGENT_REQUESTS_IN_FLIGHT, "many")]);
    assert!(e.contains("PATCHCTL_AGENT_REQUESTS_IN_FLIGHT"), "{e}");
    let e = err(
        &FILE.replace(
            "\"command_lease_secs\": 120",
            "\"command_lease_secs\": 120, \"agent_requests_in_flight\": 0",
        ),
        &[],
    );
    assert!(
        e.contains("agent_requests_in_flight must be positive"),
        "{e}"
    );
}

#[test]
fn a_metrics_history_over_its_maximum_is_refused_naming_the_maximum() {
    let s = load(FILE, &[("PATCHCTL_METRICS_HISTORY_LEN", "2016")]).unwrap();
    assert_eq!(s.metrics_history_len, MAX_METRICS_HISTORY_LEN);
    let e = err(FILE, &[("PATCHCTL_METRICS_HISTORY_LEN", "2017")]);
    assert!(e.contains("metrics_history_len = 2017"), "{e}");
    assert!(e.contains("maximum of 2016"), "{e}");
    assert!(e.contains("PATCHCTL_METRICS_HISTORY_LEN"), "{e}");
}
