//! `patchctl users ...` and `patchctl whoami`, over the operator API: list, add, show,
//! set-role, disable, passwd. Passwords come from a file (`--password-file`) or from
//! standard input (`--password-stdin`), never from an argument (which every user of the
//! machine can read in the process list).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::Utc;
use clap::{Args, Subcommand};
use http::Method;
use patchctl_proto::Secret;
use patchctl_proto::access::{
    NewUserRequest, OperatorIdentity, PasswordChange, Role, RoleChange, UserInfo,
};

use crate::client::{Api, Conn, enc};
use crate::output::{self, table};

/// `patchctl users ...`.
#[derive(Subcommand)]
pub enum UsersCmd {
    /// List the organisation's users with their roles.
    List,
    /// Add a user with a role and an initial password.
    Add {
        /// Login name (a-z, 0-9, '.', '_', '-').
        username: String,
        /// Role: owner, admin, operator, viewer or auditor.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Show one user (name or id).
    Show {
        /// Username or id.
        user: String,
    },
    /// Change a user's role (to or from owner takes an owner; the last owner stays).
    SetRole {
        /// Username or id.
        user: String,
        /// owner, admin, operator, viewer or auditor.
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Disable a user: no login, no token of theirs works, their sessions end.
    Disable {
        /// Username or id.
        user: String,
    },
    /// Set a user's password (your own, or anyone's for an administrator).
    Passwd {
        /// Username or id.
        user: String,
        #[command(flatten)]
        password: PasswordSource,
    },
}

/// Where a password comes from: never an argument.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct PasswordSource {
    /// Read the password from this file (its first line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Read the password from standard input (its first line).
    #[arg(long)]
    pub password_stdin: bool,
}

impl PasswordSource {
    /// The password: the first line of the file or of standard input.
    pub fn read(&self) -> anyhow::Result<Secret> {
        let text = match &self.password_file {
            Some(path) => read_file(path)?,
            None => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read the password from standard input")?;
                s
            }
        };
        let line = text.lines().next().unwrap_or("").to_owned();
        anyhow::ensure!(
            !line.is_empty(),
            "the password is empty: put it on the first line of the file or of standard input"
        );
        Ok(Secret::new(line))
    }
}

fn read_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))
}

/// A role from the command line.
pub fn parse_role(s: &str) -> Result<Role, String> {
    s.parse::<Role>().map_err(|e| e.to_string())
}

/// Runs a `users` subcommand.
pub async fn run(conn: &Conn, cmd: UsersCmd) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let path = |u: &str, rest: &str| format!("/api/v1/users/{}{rest}", enc(u));
    match cmd {
        UsersCmd::List => {
            let users: Vec<UserInfo> = api.get("/api/v1/users").await?;
            output::emit(conn.output, &users, |u| list_table(u))?;
        }
        UsersCmd::Add {
            username,
            role,
            password,
        } => {
            let req = NewUserRequest {
                username,
                role,
                password: password.read()?,
            };
            let u: UserInfo = api.call(Method::POST, "/api/v1/users", Some(&req)).await?;
            output::emit(conn.output, &u, |u| {
                format!(
                    "user {} created with role {} (id {})\n",
                    u.username, u.role, u.id
                )
            })?;
        }
        UsersCmd::Show { user } => {
            let u: UserInfo = api.get(&path(&user, "")).await?;
            output::emit(conn.output, &u, |u| list_table(std::slice::from_ref(u)))?;
        }
        UsersCmd::SetRole { user, role } => {
            let u: UserInfo = api
                .call(
                    Method::PUT,
                    &path(&user, "/role"),
                    Some(&RoleChange { role }),
                )
                .await?;
            output::emit(conn.output, &u, |u| {
                format!("user {} now has the role {}\n", u.username, u.role)
            })?;
        }
        UsersCmd::Disable { user } => {
            let u: UserInfo = api.post(&path(&user, "/disable")).await?;
            output::emit(conn.output, &u, |u| {
                format!(
                    "user {} is disabled: they cannot log in and their tokens no longer work\n",
                    u.username
                )
            })?;
        }
        UsersCmd::Passwd { user, password } => {
            let req = PasswordChange {
                password: password.read()?,
            };
            let u: UserInfo = api
                .call(Method::PUT, &path(&user, "/password"), Some(&req))
                .await?;
            output::emit(conn.output, &u, |u| {
                format!("the password of {} is changed\n", u.username)
            })?;
        }
    }
    Ok(())
}

/// `patchctl whoami`.
pub async fn whoami(conn: &Conn) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let me: OperatorIdentity = api.get("/api/v1/whoami").await?;
    output::emit(conn.output, &me, |m| {
        let mut s = format!(
            "{}\n  role:         {}\n  organisation: {}\n",
            m.label, m.role, m.org_id
        );
        if let Some(u) = &m.user {
            s.push_str(&format!("  user:         {} ({})\n", u.username, u.id));
        }
        if let Some(id) = m.token_id {
            s.push_str(&format!(
                "  token:        {} {} ({}), expires {}\n",
                m.token_name.as_deref().unwrap_or(""),
                id,
                if m.read_only {
                    "read-only"
                } else {
                    "read-write"
                },
                m.token_expires_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| "never".into())
            ));
        }
        s
    })
}

/// `users list` and `users show`.
fn list_table(users: &[UserInfo]) -> String {
    let now = Utc::now();
    let rows = users
        .iter()
        .map(|u| {
            vec![
                u.username.clone(),
                u.role.to_string(),
                match u.disabled_at {
                    Some(t) => format!("disabled {}", output::ago_from(now, Some(t))),
                    None => "active".into(),
                },
                u.created_at.format("%Y-%m-%d %H:%M").to_string(),
                u.id.to_string(),
            ]
        })
        .collect::<Vec<_>>();
    table(&["USERNAME", "ROLE", "STATE", "CREATED", "ID"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_file_gives_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "correct horse battery\nsecond line\n").unwrap();
        let src = PasswordSource {
            password_file: Some(f.clone()),
            password_stdin: false,
        };
        assert_eq!(src.read().unwrap().expose(), "correct horse battery");
        std::fs::write(&f, "\n").unwrap();
        assert!(src.read().unwrap_err().to_string().contains("empty"));
        let missing = PasswordSource {
            password_file: Some(dir.path().join("nope")),
            password_stdin: false,
        };
        assert!(
            missing
                .read()
                .unwrap_err()
                .to_string()
                .contains("cannot read the password file")
        );
    }
}
