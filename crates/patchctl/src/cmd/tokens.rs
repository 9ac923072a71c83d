//! `patchctl tokens ...`: API tokens over the operator API: list (yours, or with
//! `--user` or as an administrator anyone's), create (read-only or read-write, with an
//! expiry: 90 days unless said otherwise, `never` allowed), revoke. A token is printed
//! once, when it is created; the platform keeps only its hash.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use http::Method;
use patchctl_proto::access::{CreatedToken, NewTokenRequest, TokenInfo};

use crate::client::{Api, Conn, enc, parse_duration};
use crate::output::{self, table};

/// `patchctl tokens ...`.
#[derive(Subcommand)]
pub enum TokensCmd {
    /// List API tokens: your own, or (for administrators) all, or one user's.
    List {
        /// Only this user's tokens (username or id).
        #[arg(long)]
        user: Option<String>,
    },
    /// Create an API token; it is printed this once.
    Create {
        /// A label for people (1 to 100 characters).
        #[arg(long)]
        name: String,
        /// For this user (an administrator's action); default: yourself.
        #[arg(long)]
        user: Option<String>,
        /// Read-only scope: the token may only read (GET).
        #[arg(long)]
        read_only: bool,
        /// Expire after this long (30d, 12h, 1h30m) or `never`. Default: 90d.
        #[arg(long, value_name = "DURATION|never", value_parser = parse_expiry)]
        expires: Option<Expiry>,
    },
    /// Revoke an API token: it stops working at once.
    Revoke {
        /// Token id (`patchctl tokens list`).
        id: String,
    },
}

/// A token's lifetime from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Never expires.
    Never,
    /// Expires after these seconds.
    After(u64),
}

fn parse_expiry(s: &str) -> Result<Expiry, String> {
    if s.trim() == "never" {
        return Ok(Expiry::Never);
    }
    parse_duration(s).map(Expiry::After)
}

/// Runs a `tokens` subcommand.
pub async fn run(conn: &Conn, cmd: TokensCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    match cmd {
        TokensCmd::List { user } => {
            let path = match &user {
                Some(u) => format!("/api/v1/tokens?user={}", enc(u)),
                None => "/api/v1/tokens".to_owned(),
            };
            let tokens: Vec<TokenInfo> = api.get(&path).await?;
            output::emit(conn.output, &tokens, |t| list_table(t, Utc::now()))?;
        }
        TokensCmd::Create {
            name,
            user,
            read_only,
            expires,
        } => {
            let req = NewTokenRequest {
                name,
                user,
                read_only,
                expires_in_secs: match expires {
                    Some(Expiry::After(s)) => Some(s),
                    _ => None,
                },
                never_expires: expires == Some(Expiry::Never),
            };
            let c: CreatedToken = api.call(Method::POST, "/api/v1/tokens", Some(&req)).await?;
            output::emit(conn.output, &c, created_text)?;
        }
        TokensCmd::Revoke { id } => {
            let t: TokenInfo = api
                .post(&format!("/api/v1/tokens/{}/revoke", enc(&id)))
                .await?;
            output::emit(conn.output, &t, |t| {
                format!("API token {} ({}) is {}\n", t.id, t.name, t.state.as_str())
            })?;
        }
    }
    Ok(())
}

fn scope(t: &TokenInfo) -> &'static str {
    if t.read_only {
        "read-only"
    } else {
        "read-write"
    }
}

fn when(now: DateTime<Utc>, t: Option<DateTime<Utc>>, none: &str) -> String {
    match t {
        None => none.to_owned(),
        Some(t) if t > now => format!("in {}d", (t - now).num_days()),
        Some(t) => output::ago_from(now, Some(t)),
    }
}

/// `tokens list`.
fn list_table(tokens: &[TokenInfo], now: DateTime<Utc>) -> String {
    let rows = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.name.clone(),
                t.username
                    .clone()
                    .unwrap_or_else(|| "(organisation)".into()),
                scope(t).into(),
                t.state.as_str().into(),
                when(now, t.expires_at, "never"),
                when(now, t.last_used_at, "never"),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &[
            "ID",
            "NAME",
            "USER",
            "SCOPE",
            "STATE",
            "EXPIRES",
            "LAST USED",
        ],
        &rows,
    )
}

fn created_text(c: &CreatedToken) -> String {
    let t = &c.info;
    format!(
        "API token {} ({}) created for {}, {}; the token is shown only this once:\n\n  {}\n\nexpires {}\n",
        t.id,
        t.name,
        t.username.as_deref().unwrap_or("the organisation"),
        scope(t),
        c.token.expose(),
        t.expires_at
            .map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_else(|| "never".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_a_duration_or_never() {
        assert_eq!(parse_expiry("never"), Ok(Expiry::Never));
        assert_eq!(parse_expiry("30d"), Ok(Expiry::After(30 * 86_400)));
        assert!(parse_expiry("soon").is_err());
        assert!(parse_expiry("0s").is_err());
    }
}
