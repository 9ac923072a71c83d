//! The SQL of [`WindowStore`]: `maintenance_windows` (migration 0010). A duplicate name
//! in an organisation is [`StorageError::Conflict`](crate::StorageError::Conflict).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ID_CHUNK, PostgresStore, SqliteStore, conflict, count, ms, time, trunc, uuid};
use crate::error::Result;
use crate::windows::{WindowFields, WindowRow, WindowStore};

/// The columns of `maintenance_windows` that make a [`WindowRow`] (see [`WindowDb`]).
macro_rules! window_columns {
    () => {
        "id, org_id, group_id, name, days, start_local, timezone, duration_minutes, \
         min_remaining_minutes, missed_policy, created_by, created_at, updated_at"
    };
}

/// The [`window_columns!`] of a row.
#[derive(sqlx::FromRow)]
struct WindowDb {
    id: String,
    org_id: String,
    group_id: String,
    name: String,
    days: String,
    start_local: String,
    timezone: String,
    duration_minutes: i64,
    min_remaining_minutes: i64,
    missed_policy: String,
    created_by: String,
    created_at: i64,
    updated_at: i64,
}

impl WindowDb {
    fn decode(self) -> Result<WindowRow> {
        Ok(WindowRow {
            id: uuid(&self.id, "maintenance_windows.id")?,
            org_id: uuid(&self.org_id, "maintenance_windows.org_id")?,
            fields: WindowFields {
                group_id: uuid(&self.group_id, "maintenance_windows.group_id")?,
                name: self.name,
                days: self.days,
                start_local: self.start_local,
                timezone: self.timezone,
                duration_minutes: count(
                    self.duration_minutes,
                    "maintenance_windows.duration_minutes",
                )?,
                min_remaining_minutes: count(
                    self.min_remaining_minutes,
                    "maintenance_windows.min_remaining_minutes",
                )?,
                missed_policy: self.missed_policy,
            },
            created_by: self.created_by,
            created_at: time(self.created_at, "maintenance_windows.created_at")?,
            updated_at: time(self.updated_at, "maintenance_windows.updated_at")?,
        })
    }
}

/// Implements [`WindowStore`] for `$store` (a struct with `writer` and `reader` pools of
/// database `$db`).
macro_rules! impl_windows {
    ($store:ident, $db:ty) => {
        #[async_trait]
        impl WindowStore for $store {
            async fn create_window(
                &self,
                org_id: Uuid,
                f: &WindowFields,
                created_by: &str,
                now: DateTime<Utc>,
            ) -> Result<WindowRow> {
                let id = Uuid::new_v4();
                sqlx::query(
                    "INSERT INTO maintenance_windows (id, org_id, group_id, name, days, \
                     start_local, timezone, duration_minutes, min_remaining_minutes, \
                     missed_policy, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
                )
                .bind(id.to_string())
                .bind(org_id.to_string())
                .bind(f.group_id.to_string())
                .bind(&f.name)
                .bind(&f.days)
                .bind(&f.start_local)
                .bind(&f.timezone)
                .bind(i64::from(f.duration_minutes))
                .bind(i64::from(f.min_remaining_minutes))
                .bind(&f.missed_policy)
                .bind(created_by)
                .bind(ms(now))
                .execute(&self.writer)
                .await
                .map_err(|e| conflict(e, || format!("window {:?}", f.name)))?;
                Ok(WindowRow {
                    id,
                    org_id,
                    fields: f.clone(),
                    created_by: created_by.to_string(),
                    created_at: trunc(now),
                    updated_at: trunc(now),
                })
            }

            async fn list_windows(
                &self,
                org_id: Uuid,
                group_id: Option<Uuid>,
            ) -> Result<Vec<WindowRow>> {
                let rows: Vec<WindowDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    window_columns!(),
                    " FROM maintenance_windows WHERE org_id = $1 \
                     AND ($2 IS NULL OR group_id = $2) ORDER BY name"
                ))
                .bind(org_id.to_string())
                .bind(group_id.map(|g| g.to_string()))
                .fetch_all(&self.reader)
                .await?;
                rows.into_iter().map(WindowDb::decode).collect()
            }

            async fn window(&self, org_id: Uuid, id: Uuid) -> Result<Option<WindowRow>> {
                let row: Option<WindowDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    window_columns!(),
                    " FROM maintenance_windows WHERE org_id = $1 AND id = $2"
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.reader)
                .await?;
                row.map(WindowDb::decode).transpose()
            }

            async fn window_by_name(&self, org_id: Uuid, name: &str) -> Result<Option<WindowRow>> {
                let row: Option<WindowDb> = sqlx::query_as(concat!(
                    "SELECT ",
                    window_columns!(),
                    " FROM maintenance_windows WHERE org_id = $1 AND name = $2"
                ))
                .bind(org_id.to_string())
                .bind(name)
                .fetch_optional(&self.reader)
                .await?;
                row.map(WindowDb::decode).transpose()
            }

            async fn update_window(
                &self,
                org_id: Uuid,
                id: Uuid,
                f: &WindowFields,
                now: DateTime<Utc>,
            ) -> Result<Option<WindowRow>> {
                let row: Option<WindowDb> = sqlx::query_as(concat!(
                    "UPDATE maintenance_windows SET group_id = $3, name = $4, days = $5, \
                     start_local = $6, timezone = $7, duration_minutes = $8, \
                     min_remaining_minutes = $9, missed_policy = $10, updated_at = $11 \
                     WHERE org_id = $1 AND id = $2 RETURNING ",
                    window_columns!()
                ))
                .bind(org_id.to_string())
                .bind(id.to_string())
                .bind(f.group_id.to_string())
                .bind(&f.name)
                .bind(&f.days)
                .bind(&f.start_local)
                .bind(&f.timezone)
                .bind(i64::from(f.duration_minutes))
                .bind(i64::from(f.min_remaining_minutes))
                .bind(&f.missed_policy)
                .bind(ms(now))
                .fetch_optional(&self.writer)
                .await
                .map_err(|e| conflict(e, || format!("window {:?}", f.name)))?;
                row.map(WindowDb::decode).transpose()
            }

            async fn delete_window(&self, org_id: Uuid, id: Uuid) -> Result<bool> {
                let done =
                    sqlx::query("DELETE FROM maintenance_windows WHERE org_id = $1 AND id = $2")
                        .bind(org_id.to_string())
                        .bind(id.to_string())
                        .execute(&self.writer)
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn windows_for_groups(
                &self,
                org_id: Uuid,
                group_ids: &[Uuid],
            ) -> Result<Vec<WindowRow>> {
                let mut out = Vec::new();
                for chunk in group_ids.chunks(ID_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(concat!(
                        "SELECT ",
                        window_columns!(),
                        " FROM maintenance_windows WHERE org_id = "
                    ));
                    qb.push_bind(org_id.to_string());
                    qb.push(" AND group_id IN (");
                    let mut list = qb.separated(", ");
                    for id in chunk {
                        list.push_bind(id.to_string());
                    }
                    qb.push(")");
                    let rows: Vec<WindowDb> = qb.build_query_as().fetch_all(&self.reader).await?;
                    for row in rows {
                        out.push(row.decode()?);
                    }
                }
                out.sort_by(|a, b| {
                    (a.fields.group_id, &a.fields.name).cmp(&(b.fields.group_id, &b.fields.name))
                });
                Ok(out)
            }
        }
    };
}

impl_windows!(SqliteStore, sqlx::Sqlite);
impl_windows!(PostgresStore, sqlx::Postgres);
