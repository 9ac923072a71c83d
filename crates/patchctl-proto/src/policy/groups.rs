//! Groups of hosts: a group is a selector over tags and facts, so a host sits in every
//! group whose selector it meets, and joins or leaves one as its tags and facts change.
//!
//! A selector's conditions all have to hold; an empty selector matches every host (the
//! group `all` every organisation has). Conditions:
//! - `tags`: every one of these operator-set tags (`patchctl hosts tag`);
//! - `agent_tags`: every one of these tags from the agent's config (`tags`);
//! - `os`: the os-release `ID`, or one of its `ID_LIKE` (`rhel` matches AlmaLinux);
//! - `os_release`: the os-release `VERSION_ID`, exactly or as a prefix ending at a dot
//!   (`9` matches `9.4`, `22.04` matches only `22.04`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most tags a host may carry from one source (operator or agent).
pub const MAX_TAGS: usize = 32;
/// The longest tag.
pub const MAX_TAG_LEN: usize = 64;
/// The longest group name.
pub const MAX_GROUP_NAME_LEN: usize = 64;
/// The name of the group every organisation has, which matches every host.
pub const ALL_GROUP: &str = "all";

/// Which hosts a group holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupSelector {
    /// Operator-set tags the host must all carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Tags from the agent's config the host must all carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_tags: Vec<String>,
    /// os-release `ID` or one of its `ID_LIKE` (`debian`, `ubuntu`, `rhel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// os-release `VERSION_ID`, or a prefix of it ending at a dot (`9` for `9.4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_release: Option<String>,
}

/// The facts of a host a selector looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// os-release `ID`.
    pub os_id: String,
    /// os-release `ID_LIKE`.
    pub os_like: Vec<String>,
    /// os-release `VERSION_ID`.
    pub os_version: String,
    /// Tags from the agent's config.
    pub agent_tags: Vec<String>,
    /// Operator-set tags.
    pub tags: Vec<String>,
}

impl GroupSelector {
    /// Whether a host with `facts` is in the group.
    pub fn matches(&self, facts: &HostFacts) -> bool {
        let has_all = |want: &[String], have: &[String]| want.iter().all(|w| have.contains(w));
        if !has_all(&self.tags, &facts.tags) || !has_all(&self.agent_tags, &facts.agent_tags) {
            return false;
        }
        if let Some(os) = &self.os
            && facts.os_id != *os
            && !facts.os_like.iter().any(|l| l == os)
        {
            return false;
        }
        if let Some(rel) = &self.os_release {
            let v = &facts.os_version;
            let prefix = v.len() > rel.len() && v.starts_with(rel.as_str()) && {
                v.as_bytes()[rel.len()] == b'.'
            };
            if v != rel && !prefix {
                return false;
            }
        }
        true
    }

    /// Whether the selector matches every host.
    pub fn is_everything(&self) -> bool {
        *self == GroupSelector::default()
    }

    /// Checks every value, or says which is wrong and why.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        validate_tags("tags", &self.tags)?;
        validate_tags("agent_tags", &self.agent_tags)?;
        for (field, v) in [("os", &self.os), ("os_release", &self.os_release)] {
            if let Some(v) = v {
                validate_tag(v).map_err(|why| InvalidPolicy::new(field, why))?;
            }
        }
        Ok(())
    }
}

/// A value of a policy request that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {why}")]
pub struct InvalidPolicy {
    /// The field (`tags`, `name`).
    pub field: &'static str,
    /// What is wrong, and what would be right.
    pub why: String,
}

impl InvalidPolicy {
    /// A refusal of `field`.
    pub fn new(field: &'static str, why: impl Into<String>) -> Self {
        InvalidPolicy {
            field,
            why: why.into(),
        }
    }
}

/// Checks a tag: 1 to [`MAX_TAG_LEN`] characters of ASCII letters, digits and `._:/=-`,
/// not starting with `-`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "{tag:?} must be 1 to {MAX_TAG_LEN} characters long"
        ));
    }
    if tag.starts_with('-') {
        return Err(format!("{tag:?} must not start with '-'"));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._:/=-".contains(*c)))
    {
        return Err(format!(
            "{tag:?} holds {c:?}; use ASCII letters, digits and . _ : / = -"
        ));
    }
    Ok(())
}

/// Checks a list of tags: each valid, no duplicates, at most [`MAX_TAGS`].
pub fn validate_tags(field: &'static str, tags: &[String]) -> Result<(), InvalidPolicy> {
    if tags.len() > MAX_TAGS {
        return Err(InvalidPolicy::new(
            field,
            format!("{} tags given, at most {MAX_TAGS} allowed", tags.len()),
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        validate_tag(t).map_err(|why| InvalidPolicy::new(field, why))?;
        if tags[..i].contains(t) {
            return Err(InvalidPolicy::new(field, format!("{t:?} is given twice")));
        }
    }
    Ok(())
}

/// Checks a group name: a tag's characters, at most [`MAX_GROUP_NAME_LEN`].
pub fn validate_group_name(name: &str) -> Result<(), InvalidPolicy> {
    validate_tag(name).map_err(|why| InvalidPolicy::new("name", why))?;
    if name.len() > MAX_GROUP_NAME_LEN {
        return Err(InvalidPolicy::new(
            "name",
            format!("at most {MAX_GROUP_NAME_LEN} characters"),
        ));
    }
    if Uuid::parse_str(name).is_ok() {
        return Err(InvalidPolicy::new(
            "name",
            "a group name must not look like an id (a UUID)",
        ));
    }
    Ok(())
}

/// A group (`GET /api/v1/groups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupView {
    /// Id.
    pub id: Uuid,
    /// Name, unique in the organisation.
    pub name: String,
    /// What the group is for.
    pub description: String,
    /// Which hosts it holds.
    pub selector: GroupSelector,
    /// How many hosts (not revoked) it holds now.
    pub host_count: u64,
    /// Who made it (`user:alice`, `token:…`, `platform`).
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A group to create or the new state of one (`POST /api/v1/groups`,
/// `PUT /api/v1/groups/{group}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupRequest {
    /// Name (letters, digits, `._:/=-`).
    pub name: String,
    /// What the group is for.
    #[serde(default)]
    pub description: String,
    /// Which hosts it holds.
    #[serde(default)]
    pub selector: GroupSelector,
}

/// A host's tags (`GET/PUT /api/v1/hosts/{host}/tags`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HostTags {
    /// Operator-set tags (replaced whole by a `PUT`).
    pub tags: Vec<String>,
    /// Tags from the agent's config (read only here).
    #[serde(default)]
    pub agent_tags: Vec<String>,
    /// The groups the host is in now.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn facts(id: &str, like: &[&str], v: &str) -> HostFacts {
        HostFacts {
            os_id: id.into(),
            os_like: like.iter().map(|s| s.to_string()).collect(),
            os_version: v.into(),
            agent_tags: vec!["web".into()],
            tags: vec!["prod".into(), "eu".into()],
        }
    }

    #[test]
    fn every_condition_must_hold() {
        let alma = facts("almalinux", &["rhel", "centos", "fedora"], "9.4");
        let mut s = GroupSelector::default();
        assert!(s.matches(&alma), "empty selector matches everything");
        s.os = Some("rhel".into());
        assert!(s.matches(&alma), "ID_LIKE counts");
        s.os_release = Some("9".into());
        assert!(s.matches(&alma), "9 is a prefix of 9.4 at a dot");
        s.os_release = Some("9.4".into());
        assert!(s.matches(&alma));
        s.os_release = Some("9.".into());
        assert!(!s.matches(&alma));
        s.os_release = Some("94".into());
        assert!(!s.matches(&alma));
        s.os_release = None;
        s.tags = vec!["prod".into()];
        s.agent_tags = vec!["web".into()];
        assert!(s.matches(&alma));
        s.tags.push("us".into());
        assert!(!s.matches(&alma), "every tag is needed");
        let deb = facts("debian", &[], "12");
        let only_debian = GroupSelector {
            os: Some("debian".into()),
            os_release: Some("1".into()),
            ..Default::default()
        };
        assert!(
            !only_debian.matches(&deb),
            "1 is not a release prefix of 12"
        );
    }

    #[test]
    fn tags_and_names_are_checked_with_reasons() {
        assert!(validate_tag("env=prod").is_ok());
        assert!(validate_tag("-x").unwrap_err().contains("must not start"));
        assert!(validate_tag("a b").unwrap_err().contains("' '"));
        assert!(validate_tag("").is_err());
        assert!(validate_tag(&"a".repeat(65)).is_err());
        let dup = validate_tags("tags", &["a".into(), "a".into()]).unwrap_err();
        assert_eq!(dup.field, "tags");
        assert!(dup.why.contains("twice"));
        assert!(validate_group_name("canary").is_ok());
        assert!(validate_group_name(&Uuid::new_v4().to_string()).is_err());
    }

    proptest! {
        #[test]
        fn a_selector_naming_the_hosts_own_facts_matches_it(
            id in "[a-z]{1,8}", v in "[0-9]{1,2}(\\.[0-9]{1,2})?",
            tags in proptest::collection::vec("[a-z]{1,6}", 0..4),
        ) {
            let f = HostFacts {
                os_id: id.clone(), os_like: vec![], os_version: v.clone(),
                agent_tags: vec![], tags: tags.clone(),
            };
            let s = GroupSelector { tags, agent_tags: vec![], os: Some(id), os_release: Some(v) };
            prop_assert!(s.matches(&f));
        }

        #[test]
        fn validation_never_panics_and_accepts_only_the_alphabet(t in "\\PC{0,80}") {
            if validate_tag(&t).is_ok() {
                prop_assert!(t.chars().all(|c| c.is_ascii_alphanumeric() || "._:/=-".contains(c)));
                prop_assert!(!t.is_empty() && t.len() <= MAX_TAG_LEN);
            }
        }
    }
}
