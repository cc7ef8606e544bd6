//! Sites: creation with a unique woodland identifier, lookups, and the all-time listing.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Dialect, Store, StoreError, now_ms, traced};
use crate::accounts::identifier;

/// A tracked website. `id` is internal (foreign keys); `uuid` is the id the API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: i64,
    pub uuid: String,
    pub user_id: i64,
    pub name: String,
    pub identifier: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A site with its owner and its stored non-bot pageviews, all time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteSummary {
    pub id: String,
    pub name: String,
    pub identifier: String,
    pub owner: String,
    pub pageview_count: i64,
}

impl Site {
    fn from_row(row: &AnyRow) -> Result<Site, sqlx::Error> {
        Ok(Site {
            id: row.try_get("id")?,
            uuid: row.try_get("uuid")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            identifier: row.try_get("identifier")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Identifier collisions are astronomically rare (~8.5e13 combinations); a few retries make a
/// conflict under concurrent creation a non-event.
const IDENTIFIER_ATTEMPTS: usize = 8;

impl Store {
    /// Creates a site with a fresh identifier for `user_id`.
    pub async fn create_site(&self, user_id: i64, name: &str) -> Result<Site, StoreError> {
        let sql = "INSERT INTO sites (uuid, user_id, name, identifier, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $5) \
                   RETURNING id, uuid, user_id, name, identifier, created_at, updated_at";
        for _ in 0..IDENTIFIER_ATTEMPTS {
            let now = now_ms();
            let result = traced(
                self.span("INSERT", "sites", sql),
                sqlx::query(sql)
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(user_id)
                    .bind(name)
                    .bind(identifier::generate())
                    .bind(now)
                    .fetch_one(&self.pool),
            )
            .await;
            match result {
                Ok(row) => return Ok(Site::from_row(&row)?),
                Err(StoreError::Database(err)) if Dialect::is_unique_violation(&err) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Conflict("site identifier"))
    }

    /// The site with exactly this identifier (case-sensitive), if any.
    pub async fn site_by_identifier(&self, ident: &str) -> Result<Option<Site>, StoreError> {
        let sql = "SELECT id, uuid, user_id, name, identifier, created_at, updated_at \
                   FROM sites WHERE identifier = $1";
        let row =
            traced(self.span("SELECT", "sites", sql), sqlx::query(sql).bind(ident).fetch_optional(&self.pool)).await?;
        Ok(row.as_ref().map(Site::from_row).transpose()?)
    }

    /// Every site with owner and pageview count, newest first.
    pub async fn all_sites(&self) -> Result<Vec<SiteSummary>, StoreError> {
        let sql = "SELECT s.uuid, s.name, s.identifier, u.email, \
                   (SELECT COUNT(*) FROM pageviews p WHERE p.site_id = s.id AND p.is_bot = 0) AS pageview_count \
                   FROM sites s JOIN users u ON u.id = s.user_id ORDER BY s.created_at DESC, s.id DESC";
        let rows = traced(self.span("SELECT", "sites", sql), sqlx::query(sql).fetch_all(&self.pool)).await?;
        rows.iter()
            .map(|row| {
                Ok(SiteSummary {
                    id: row.try_get("uuid")?,
                    name: row.try_get("name")?,
                    identifier: row.try_get("identifier")?,
                    owner: row.try_get("email")?,
                    pageview_count: row.try_get("pageview_count")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Removes a site and, by cascade, everything recorded for it.
    pub async fn delete_site(&self, site_id: i64) -> Result<bool, StoreError> {
        let sql = "DELETE FROM sites WHERE id = $1";
        let done =
            traced(self.span("DELETE", "sites", sql), sqlx::query(sql).bind(site_id).execute(&self.pool)).await?;
        Ok(done.rows_affected() > 0)
    }
}
