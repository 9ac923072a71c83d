//! Groups of hosts ([`GroupStore`]): named selectors over operator-set tags and the
//! facts the agents report, and the hosts' tags. Membership is never stored: it is the
//! selector applied to the hosts' facts ([`GroupSelector::matches`]) when asked, so a host
//! joins and leaves groups as its tags and facts change. The SQL is in `sql/groups.rs`.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchctl_proto::policy::groups::{ALL_GROUP, GroupSelector, HostFacts};
use uuid::Uuid;

use crate::error::Result;

/// A group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Id.
    pub id: Uuid,
    /// Organisation.
    pub org_id: Uuid,
    /// Name, unique in the organisation.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Which hosts it holds.
    pub selector: GroupSelector,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Group {
    /// Whether this is the organisation's group of every host, which cannot be changed.
    pub fn is_builtin(&self) -> bool {
        self.name == ALL_GROUP
    }
}

/// A group to create, or the new state of one.
#[derive(Debug, Clone)]
pub struct NewGroup {
    /// Name (validated by the caller).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Which hosts it holds (validated by the caller).
    pub selector: GroupSelector,
    /// Who makes or changes it.
    pub actor: String,
    /// When.
    pub now: DateTime<Utc>,
}

/// A host (not revoked) and the facts groups select on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFactsRow {
    /// The host.
    pub host_id: Uuid,
    /// Its name.
    pub hostname: String,
    /// Its facts and tags.
    pub facts: HostFacts,
}

/// Groups and host tags.
#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Creates a group; [`StorageError::Conflict`](crate::StorageError::Conflict) when
    /// the organisation has one of that name.
    async fn create_group(&self, org_id: Uuid, group: &NewGroup) -> Result<Group>;

    /// Replaces a group's name, description and selector; `None` when there is no such
    /// group; a name taken by another group is a conflict.
    async fn update_group(&self, org_id: Uuid, id: Uuid, group: &NewGroup)
    -> Result<Option<Group>>;

    /// Deletes a group; whether there was one.
    async fn delete_group(&self, org_id: Uuid, id: Uuid) -> Result<bool>;

    /// The organisation's groups, by name.
    async fn list_groups(&self, org_id: Uuid) -> Result<Vec<Group>>;

    /// One group by id.
    async fn group(&self, org_id: Uuid, id: Uuid) -> Result<Option<Group>>;

    /// One group by name.
    async fn group_by_name(&self, org_id: Uuid, name: &str) -> Result<Option<Group>>;

    /// Replaces a host's operator-set tags (validated by the caller); `false` when the
    /// organisation has no such host.
    async fn set_host_tags(&self, org_id: Uuid, host_id: Uuid, tags: &[String]) -> Result<bool>;

    /// The facts of the organisation's hosts that are not revoked (of one host when
    /// `host` is given), ordered by host id.
    async fn host_facts(&self, org_id: Uuid, host: Option<Uuid>) -> Result<Vec<HostFactsRow>>;

    /// The hosts (not revoked) of a group, ordered by id; `None` when there is no such
    /// group.
    async fn group_host_ids(&self, org_id: Uuid, group_id: Uuid) -> Result<Option<Vec<Uuid>>> {
        let Some(group) = self.group(org_id, group_id).await? else {
            return Ok(None);
        };
        let hosts = self.host_facts(org_id, None).await?;
        Ok(Some(
            hosts
                .into_iter()
                .filter(|h| group.selector.matches(&h.facts))
                .map(|h| h.host_id)
                .collect(),
        ))
    }

    /// The groups a host is in now, by name (empty for a revoked or unknown host).
    async fn host_group_ids(&self, org_id: Uuid, host_id: Uuid) -> Result<Vec<Uuid>> {
        let Some(host) = self.host_facts(org_id, Some(host_id)).await?.pop() else {
            return Ok(Vec::new());
        };
        let groups = self.list_groups(org_id).await?;
        Ok(groups
            .into_iter()
            .filter(|g| g.selector.matches(&host.facts))
            .map(|g| g.id)
            .collect())
    }

    /// How many hosts (not revoked) each group holds, by group id: one read of the
    /// hosts' facts for all groups.
    async fn group_sizes(&self, org_id: Uuid, groups: &[Group]) -> Result<HashMap<Uuid, u64>> {
        let hosts = self.host_facts(org_id, None).await?;
        Ok(groups
            .iter()
            .map(|g| {
                let n = hosts
                    .iter()
                    .filter(|h| g.selector.matches(&h.facts))
                    .count();
                (g.id, n as u64)
            })
            .collect())
    }
}
