//! The SQL of [`GroupStore`]: `groups` (selector as JSON) and `host_tags`; the hosts'
//! facts come from the columns migration 0009 derives from `hosts.system_json`.

use std::collections::HashMap;

use async_trait::async_trait;
use patchctl_proto::policy::groups::{GroupSelector, HostFacts};
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, conflict, from_json, ms, time, to_json, trunc, uuid};
use crate::error::Result;
use crate::groups::{Group, GroupStore, HostFactsRow, NewGroup};

/// The columns of `groups` that make a [`Group`].
macro_rules! group_columns {
    () => {
        "id, org_id, name, description, selector_json, created_by, created_at, updated_at"
    };
}

/// A row of `groups`.
#[derive(sqlx::FromRow)]
struct GroupDb {
    id: String,
    org_id: String,
    name: String,
    description: String,
    selector_json: String,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

impl GroupDb {
    fn decode(self) -> Result<Group> {
        Ok(Group {
            id: uuid(&self.id, "groups.id")?,
            org_id: uuid(&self.org_id, "groups.org_id")?,
            name: self.name,
            description: self.description,
            selector: from_json::<GroupSelector>(&self.selector_json, "groups.selector_json")?,
            created_by: self.created_by,
            created_at: time(self.created_at, "groups.created_at")?,
            updated_at: time(self.updated_at, "groups.updated_at")?,
        })
    }
}

/// A host's facts as the derived columns hold them.
#[derive(sqlx::FromRow)]
struct FactsDb {
    id: String,
    hostname: String,
    os_id: String,
    os_like: String,
    os_version: String,
    agent_tags: String,
}

impl FactsDb {
    fn decode(self, tags: &mut HashMap<String, Vec<String>>) -> Result<HostFactsRow> {
        Ok(HostFactsRow {
            host_id: uuid(&self.id, "hosts.id")?,
            hostname: self.hostname,
            facts: HostFacts {
                os_id: self.os_id,
                os_like: from_json(&self.os_like, "hosts.os_like")?,
                os_version: self.os_version,
                agent_tags: from_json(&self.agent_tags, "hosts.agent_tags")?,
                tags: tags.remove(&self.id).unwrap_or_default(),
            },
        })
    }
}

/// Implements [`GroupStore`] for `$store` (a struct with `writer` and `reader` pools of
/// database `$db`).
macro_rules! impl_groups {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl GroupStore for $store {
            async fn create_group(&self, org_id: Uuid, g: &NewGroup) -> Result<Group> {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO groups (id, org_id, name, description, selector_json, \
                     created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind(id.to_string())
                .bind(org_id.to_string())
                .bind(&g.name)
                .bind(&g.description)
                .bind(to_json(&g.selector, "groups.selector_json")?)
                .bind(&g.actor)
                .bind(ms(g.now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || format!("group {:?}", g.name)))?;
                Ok(Group {
                    id,
                    org_id,
                    name: g.name.clone(),
                    description: g.description.clone(),
                    selector: g.selector.clone(),
                    created_by: g.actor.clone(),
                    created_at: trunc(g.now),
                    updated_at: trunc(g.now),
                })
            }

            async fn update_group(
                &self,
                org_id: Uuid,
                id: Uuid,
                g: &NewGroup,
            ) -> Result<Option<Group>> {
                let row: Option<GroupDb> = sqlx::query_as(concat!(
                    "UPDATE groups SET name = $3, description = $4, selector_json = $5, \
                     updated_at = $6 WHERE id = $1 AND org_id = $2 RETURNING ",
                    group_columns!()
                ))
                .bind(id.to_string())
                .bind(org_id.to_string())
                .bind(&g.name)
                .bind(&g.description)
                .bind(to_json(&g.selector, "groups.selector_json")?)
                .bind(ms(g.now))
                .fetch_optional(&self.writer)
                .await
                .map_err(|e| conflict(e, || format!("group {:?}", g.name)))?;
                row.map(GroupDb::decode).transpose()
            }

            async fn delete_group(&self, org_id: Uuid, id: Uuid) -> Result<bool> {
                let done = sqlx::query("DELETE FROM groups WHERE id = $1 AND org_id = $2")
                    .bind(id.to_string())
                    .bind(org_id.to_string())
                    .execute(&self.writer)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn list_groups(&self, org_id: Uuid) -> Result<Vec<Group>> {
                let rows: Vec<GroupDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    group_columns!(),
                    " FROM groups WHERE org_id = $1 ORDER BY name"
                ))
                .bind(org_id.to_string())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(GroupDb::decode).collect()
            }

            async fn group(&self, org_id: Uuid, id: Uuid) -> Result<Option<Group>> {
                let row: Option<GroupDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    group_columns!(),
                    " FROM groups WHERE org_id = $1 AND id = $2"
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                row.map(GroupDb::decode).transpose()
            }

            async fn group_by_name(&self, org_id: Uuid, name: &str) -> Result<Option<Group>> {
                let row: Option<GroupDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    group_columns!(),
                    " FROM groups WHERE org_id = $1 AND name = $2"
                ))
                .bind(org_id.to_string())
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
                row.map(GroupDb::decode).transpose()
            }

            async fn set_host_tags(
                &self,
                org_id: Uuid,
                host_id: Uuid,
                tags: &[String],
            ) -> Result<bool> {
                let mut tx = self.writer.begin().await?;
                let found: Option<(String,)> =
                    sqlx::query_as("SELECT id FROM hosts WHERE id = $1 AND org_id = $2")
                        .bind(host_id.to_string())
                        .bind(org_id.to_string())
                        .fetch_optional(&mut *tx)
                        .await?;
                if found.is_none() {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM host_tags WHERE host_id = $1")
                    .bind(host_id.to_string())
                    .execute(&mut *tx)
                    .await?;
                if !tags.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO host_tags (host_id, org_id, tag) ",
                    );
                    qb.push_values(tags, |mut b, t| {
                        b.push_bind(host_id.to_string())
                            .push_bind(org_id.to_string())
                            .push_bind(t.as_str());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn host_facts(
                &self,
                org_id: Uuid,
                host: Option<Uuid>,
            ) -> Result<Vec<HostFactsRow>> {
                let host = host.map(|h| h.to_string());
                let tag_rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT host_id, tag FROM host_tags WHERE org_id = $1 \
                     AND (CAST($2 AS TEXT) IS NULL OR host_id = $2) ORDER BY host_id, tag",
                )
                .bind(org_id.to_string())
                .bind(host.as_deref())
                .fetch_all(&self.reader)
                .await?;
                let mut tags: HashMap<String, Vec<String>> = HashMap::new();
                for (h, t) in tag_rows {
                    tags.entry(h).or_default().push(t);
                }
                let rows: Vec<FactsDb> = sqlx::query_as(
                    "SELECT id, hostname, os_id, os_like, os_version, agent_tags FROM hosts \
                     WHERE org_id = $1 AND NOT revoked \
                     AND (CAST($2 AS TEXT) IS NULL OR id = $2) ORDER BY id",
                )
                .bind(org_id.to_string())
                .bind(host.as_deref())
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(|r| r.decode(&mut tags)).collect()
            }
        }
    };
}

impl_groups!(SqliteStore, sqlx::Sqlite);
impl_groups!(PostgresStore, sqlx::Postgres);
