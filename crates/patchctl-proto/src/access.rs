//! Who may do what on the platform: the roles a user holds in an organisation
//! ([`Role`]) and what a route needs ([`Need`]).
//!
//! The matrix ([`Role::allows`]):
//!
//! | need         | owner | admin | operator | viewer | auditor |
//! |--------------|-------|-------|----------|--------|---------|
//! | `read`       | yes   | yes   | yes      | yes    |         |
//! | `operate`    | yes   | yes   | yes      |        |         |
//! | `administer` | yes   | yes   |          |        |         |
//! | `own`        | yes   |       |          |        |         |
//! | `audit`      | yes   | yes   |          |        | yes     |
//!
//! `read` is every view of hosts, packages, updates, findings and commands; `operate`
//! queues and cancels commands; `administer` manages enrollment keys, hosts' standing
//! (revoke, approve, reject), the organisation's settings, users other than owners,
//! other people's tokens, releases and the agent rollout; `own` makes and demotes
//! owners; `audit` reads the audit trail. A read-only API token allows only `read` and
//! `audit`, whatever its user's role.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role in their organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including making and demoting owners.
    Owner,
    /// Everything but owners.
    Admin,
    /// Reads, and queues and cancels commands.
    Operator,
    /// Reads only.
    Viewer,
    /// Reads the audit trail only.
    Auditor,
}

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Need {
    /// Views of the fleet.
    Read,
    /// Queueing and cancelling commands.
    Operate,
    /// Keys, hosts' standing, settings, users, tokens, releases.
    Administer,
    /// Owners.
    Own,
    /// The audit trail.
    Audit,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::Auditor,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
        }
    }

    /// Whether this role may do what `need` names (the matrix in the module docs).
    pub fn allows(self, need: Need) -> bool {
        use Role::*;
        match need {
            Need::Read => matches!(self, Owner | Admin | Operator | Viewer),
            Need::Operate => matches!(self, Owner | Admin | Operator),
            Need::Administer => matches!(self, Owner | Admin),
            Need::Own => self == Owner,
            Need::Audit => matches!(self, Owner | Admin | Auditor),
        }
    }
}

impl Need {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Operate => "operate",
            Need::Administer => "administer",
            Need::Own => "own",
            Need::Audit => "audit",
        }
    }

    /// Whether a read-only token may do this.
    pub fn read_only(self) -> bool {
        matches!(self, Need::Read | Need::Audit)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: use owner, admin, operator, viewer or auditor")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix() {
        let table = [
            (Need::Read, "owner admin operator viewer"),
            (Need::Operate, "owner admin operator"),
            (Need::Administer, "owner admin"),
            (Need::Own, "owner"),
            (Need::Audit, "owner admin auditor"),
        ];
        for (need, allowed) in table {
            let got: Vec<&str> = Role::ALL
                .into_iter()
                .filter(|r| r.allows(need))
                .map(Role::as_str)
                .collect();
            assert_eq!(got.join(" "), allowed, "{need}");
        }
    }

    #[test]
    fn names_round_trip_and_bad_names_say_what_is_valid() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        assert_eq!(" Viewer ".parse::<Role>().unwrap(), Role::Viewer);
        let e = "root".parse::<Role>().unwrap_err().to_string();
        assert!(e.contains("root") && e.contains("auditor"), "{e}");
    }
}
