//! `patchctl keys ...`: the organisation's enrollment keys, over the operator API:
//! list, create (with an expiry and a maximum of uses), revoke, rotate (with a grace
//! for the old key). A key is printed once, when it is created or rotated; the platform
//! keeps only its hash.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use http::Method;
use patchctl_proto::trust::{
    CreatedEnrollmentKey, EnrollmentKeyInfo, NewEnrollmentKey, RotateEnrollmentKey,
};

use crate::client::{Api, Conn, enc, parse_duration};
use crate::output::{self, Format, table};

/// `patchctl keys ...`.
#[derive(Subcommand)]
pub enum KeysCmd {
    /// List the enrollment keys with their state (active, expired, exhausted, revoked)
    /// and uses.
    List,
    /// Create an enrollment key; it is printed this once.
    Create {
        /// A label for people (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// Expire after this long: a number and a unit (s, m, h, d, w), such as 30d,
        /// 12h or 1h30m. Default: never.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires: Option<u64>,
        /// Enroll at most this many hosts. Default: unlimited.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_uses: Option<u64>,
    },
    /// Revoke an enrollment key: it enrolls nothing any more (enrolled hosts stay).
    Revoke {
        /// Key id (`patchctl keys list`).
        id: String,
    },
    /// Replace a key by a new one with the same name and limits; it is printed this
    /// once. The old key stops enrolling after --grace (default: at once).
    Rotate {
        /// Key id (`patchctl keys list`).
        id: String,
        /// How long the old key keeps enrolling, such as 1h or 2d; 0 for at once.
        #[arg(long, value_name = "DURATION", value_parser = parse_grace, default_value = "0")]
        grace: u64,
    },
}

/// Runs a `keys` subcommand.
pub async fn run(conn: &Conn, cmd: KeysCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        KeysCmd::List => {
            let keys: Vec<EnrollmentKeyInfo> = api.get("/api/v1/enrollment-keys").await?;
            output::emit(conn.output, &keys, |k| list_table(k, Utc::now()))?;
            if conn.output == Format::Table && keys.is_empty() {
                output::note(
                    "no enrollment keys: create one with `patchctl keys create --name NAME`",
                );
            }
        }
        KeysCmd::Create {
            name,
            expires,
            max_uses,
        } => {
            let req = NewEnrollmentKey {
                name,
                expires_in_secs: expires,
                max_uses,
            };
            let created: CreatedEnrollmentKey = api
                .call(Method::POST, "/api/v1/enrollment-keys", Some(&req))
                .await?;
            output::emit(conn.output, &created, |c| created_text("created", c))?;
        }
        KeysCmd::Revoke { id } => {
            let k: EnrollmentKeyInfo = api
                .post(&format!("/api/v1/enrollment-keys/{}/revoke", enc(&id)))
                .await?;
            output::emit(conn.output, &k, |k| {
                format!(
                    "enrollment key {} ({}) is {}: it enrolls no more hosts (the hosts it enrolled stay)\n",
                    k.id,
                    k.name,
                    k.state.as_str()
                )
            })?;
        }
        KeysCmd::Rotate { id, grace } => {
            let req = RotateEnrollmentKey { grace_secs: grace };
            let created: CreatedEnrollmentKey = api
                .call(
                    Method::POST,
                    &format!("/api/v1/enrollment-keys/{}/rotate", enc(&id)),
                    Some(&req),
                )
                .await?;
            output::emit(conn.output, &created, |c| {
                let old = if grace == 0 {
                    format!("key {id} stopped enrolling now")
                } else {
                    format!("key {id} keeps enrolling for {}", human_secs(grace))
                };
                format!("{}{old}\n", created_text("rotated", c))
            })?;
        }
    }
    Ok(())
}

/// Like [`parse_duration`], and `0` for none.
fn parse_grace(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    parse_duration(s)
}

/// Seconds for people: `2d 3h`, `90s`.
fn human_secs(secs: u64) -> String {
    let mut out = Vec::new();
    let mut rest = secs;
    for (unit, name) in [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")] {
        if rest >= unit {
            out.push(format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    if out.is_empty() {
        "0s".into()
    } else {
        out.join(" ")
    }
}

/// When `t` comes, from `now`: `in 29d`, `2h ago`, `never`.
fn until(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    match t {
        None => "never".into(),
        Some(t) if t > now => format!("in {}", coarse((t - now).num_seconds())),
        Some(t) => format!("{} ago", coarse((now - t).num_seconds())),
    }
}

fn coarse(s: i64) -> String {
    match s {
        ..60 => format!("{}s", s.max(0)),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn uses(k: &EnrollmentKeyInfo) -> String {
    match k.max_uses {
        Some(m) => format!("{}/{m}", k.uses),
        None => format!("{}/unlimited", k.uses),
    }
}

/// `keys list`.
fn list_table(keys: &[EnrollmentKeyInfo], now: DateTime<Utc>) -> String {
    let rows = keys
        .iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.name.clone(),
                k.state.as_str().to_owned(),
                uses(k),
                until(now, k.expires_at),
                k.created_at.format("%Y-%m-%d %H:%M").to_string(),
                k.rotated_from.map(|r| r.to_string()).unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "ID",
            "NAME",
            "STATE",
            "USES",
            "EXPIRES",
            "CREATED",
            "ROTATED FROM",
        ],
        &rows,
    )
}

/// A created or rotated key, with the key itself printed this once.
fn created_text(verb: &str, c: &CreatedEnrollmentKey) -> String {
    let k = &c.info;
    format!(
        "enrollment key {} ({}) {verb}; the key is shown only this once:\n\n  {}\n\n\
         state {}, uses {}, expires {}\n\
         Put it into license_key in the agent's configuration of the hosts to enroll.\n",
        k.id,
        k.name,
        c.key.expose(),
        k.state.as_str(),
        uses(k),
        k.expires_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "never".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchctl_proto::trust::KeyState;

    #[test]
    fn durations_parse_or_say_what_is_expected() {
        for (s, secs) in [
            ("30d", 30 * 86_400),
            ("12h", 43_200),
            ("90m", 5_400),
            ("45s", 45),
            ("2w", 14 * 86_400),
            ("1h30m", 5_400),
            (" 1d ", 86_400),
        ] {
            assert_eq!(parse_duration(s), Ok(secs), "{s}");
        }
        for s in ["", "30", "d", "3x", "1.5h", "-1h", "1h 30m"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("such as 30d"), "{s}: {e}");
        }
        assert!(parse_duration("0s").unwrap_err().contains("positive"));
        assert!(parse_duration("99999999999999999999w").is_err());
        assert!(
            parse_duration("9999999999999999w")
                .unwrap_err()
                .contains("too long")
        );
        assert_eq!(parse_grace("0"), Ok(0));
        assert_eq!(parse_grace("1h"), Ok(3_600));
        assert!(parse_grace("soon").is_err());
    }

    #[test]
    fn the_key_list_shows_state_uses_and_expiry() {
        let now = DateTime::from_timestamp(1_767_225_600, 0).unwrap();
        let key = |name: &str, state, max_uses, expires: Option<i64>| EnrollmentKeyInfo {
            id: uuid::Uuid::nil(),
            name: name.into(),
            state,
            created_at: now,
            expires_at: expires.map(|s| now + chrono::Duration::seconds(s)),
            max_uses,
            uses: 2,
            revoked_at: None,
            rotated_from: None,
        };
        let t = list_table(
            &[
                key("fleet", KeyState::Active, Some(10), Some(29 * 86_400 + 10)),
                key("old\u{1b}[2J", KeyState::Expired, None, Some(-7200)),
            ],
            now,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(
            lines[1].contains("fleet") && lines[1].contains("active"),
            "{t}"
        );
        assert!(
            lines[1].contains("2/10") && lines[1].contains("in 29d"),
            "{t}"
        );
        assert!(
            lines[2].contains("expired") && lines[2].contains("2/unlimited"),
            "{t}"
        );
        assert!(
            lines[2].contains("2h ago") && lines[2].contains(r"old\x1b[2J"),
            "{t}"
        );
    }
}
