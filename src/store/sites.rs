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

    /// Creates a site for `user_id` unless they already own `max_sites`; `Ok(None)` at the limit. The
    /// count and the insert are one statement, so two racing requests can't both pass a stale count
    /// on SQLite (one writer); on PostgreSQL they could overshoot by one, which the limit tolerates.
    pub async fn create_site_within_limit(
        &self,
        user_id: i64,
        name: &str,
        max_sites: i64,
    ) -> Result<Option<Site>, StoreError> {
        let sql = "INSERT INTO sites (uuid, user_id, name, identifier, created_at, updated_at) \
                   SELECT $1, $2, $3, $4, $5, $5 WHERE (SELECT COUNT(*) FROM sites WHERE user_id = $2) < $6 \
                   RETURNING id, uuid, user_id, name, identifier, created_at, updated_at";
        for _ in 0..IDENTIFIER_ATTEMPTS {
            let result = traced(
                self.span("INSERT", "sites", sql),
                sqlx::query(sql)
                    .bind(uuid::Uuid::new_v4().to_string())
                    .bind(user_id)
                    .bind(name)
                    .bind(identifier::generate())
                    .bind(now_ms())
                    .bind(max_sites)
                    .fetch_optional(&self.pool),
            )
            .await;
            match result {
                Ok(row) => return Ok(row.as_ref().map(Site::from_row).transpose()?),
                Err(StoreError::Database(err)) if Dialect::is_unique_violation(&err) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Conflict("site identifier"))
    }

    /// How many sites the user owns.
    pub async fn count_sites_of_user(&self, user_id: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM sites WHERE user_id = $1";
        let n: i64 =
            traced(self.span("SELECT", "sites", sql), sqlx::query_scalar(sql).bind(user_id).fetch_one(&self.pool))
                .await?;
        Ok(n)
    }

    /// A page of the user's sites, newest first, each with its pageview count (see
    /// [`Store::site_pageview_count`] for how it is counted).
    pub async fn sites_of_user(
        &self,
        user_id: i64,
        limit: i64,
        offset: i64,
        now: i64,
    ) -> Result<Vec<(Site, i64)>, StoreError> {
        let sql = "SELECT s.id, s.uuid, s.user_id, s.name, s.identifier, s.created_at, s.updated_at, \
                   (SELECT CAST(COALESCE(SUM(d.pageview_count), 0) AS BIGINT) FROM daily_stats d \
                    WHERE d.site_id = s.id AND d.day_bucket < $4) + \
                   (SELECT COUNT(*) FROM pageviews p WHERE p.site_id = s.id AND p.created_at >= $4 AND p.is_bot = 0) \
                   AS pageview_count \
                   FROM sites s WHERE s.user_id = $1 ORDER BY s.created_at DESC, s.id DESC LIMIT $2 OFFSET $3";
        let rows = traced(
            self.span("SELECT", "sites", sql),
            sqlx::query(sql).bind(user_id).bind(limit).bind(offset).bind(live_count_cutoff(now)).fetch_all(&self.pool),
        )
        .await?;
        rows.iter()
            .map(|row| Ok((Site::from_row(row)?, row.try_get("pageview_count")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Non-bot pageviews of a site, all time: the daily rollups before yesterday (00:00 UTC) plus the
    /// raw rows since, so a site with years of data is counted from a few hundred rollup rows and
    /// at most two days of raw rows, and today's pageviews show at once.
    pub async fn site_pageview_count(&self, site_id: i64, now: i64) -> Result<i64, StoreError> {
        let sql = "SELECT (SELECT CAST(COALESCE(SUM(pageview_count), 0) AS BIGINT) FROM daily_stats \
                   WHERE site_id = $1 AND day_bucket < $2) + \
                   (SELECT COUNT(*) FROM pageviews WHERE site_id = $1 AND created_at >= $2 AND is_bot = 0)";
        let n: i64 = traced(
            self.span("SELECT", "pageviews", sql),
            sqlx::query_scalar(sql).bind(site_id).bind(live_count_cutoff(now)).fetch_one(&self.pool),
        )
        .await?;
        Ok(n)
    }

    /// The site with this API id (`uuid`) if `user_id` owns it.
    pub async fn site_of_user(&self, user_id: i64, uuid: &str) -> Result<Option<Site>, StoreError> {
        let sql = "SELECT id, uuid, user_id, name, identifier, created_at, updated_at \
                   FROM sites WHERE uuid = $1 AND user_id = $2";
        let row = traced(
            self.span("SELECT", "sites", sql),
            sqlx::query(sql).bind(uuid).bind(user_id).fetch_optional(&self.pool),
        )
        .await?;
        Ok(row.as_ref().map(Site::from_row).transpose()?)
    }

    /// Renames a site and bumps `updated_at`.
    pub async fn rename_site(&self, site_id: i64, name: &str) -> Result<Option<Site>, StoreError> {
        let sql = "UPDATE sites SET name = $2, updated_at = $3 WHERE id = $1 \
                   RETURNING id, uuid, user_id, name, identifier, created_at, updated_at";
        let row = traced(
            self.span("UPDATE", "sites", sql),
            sqlx::query(sql).bind(site_id).bind(name).bind(now_ms()).fetch_optional(&self.pool),
        )
        .await?;
        Ok(row.as_ref().map(Site::from_row).transpose()?)
    }

    /// Removes a site and, by cascade, everything recorded for it.
    pub async fn delete_site(&self, site_id: i64) -> Result<bool, StoreError> {
        let sql = "DELETE FROM sites WHERE id = $1";
        let done =
            traced(self.span("DELETE", "sites", sql), sqlx::query(sql).bind(site_id).execute(&self.pool)).await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Where live counting starts: 00:00 UTC yesterday. Earlier days are read from `daily_stats`, whose
/// rows the daily jobs keep exact; the last two days are counted raw because today's row (and, just
/// after midnight, yesterday's) may not have caught up yet.
fn live_count_cutoff(now: i64) -> i64 {
    super::Grain::Day.floor(now) - super::DAY_MS
}
