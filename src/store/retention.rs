//! Retention: deleting old raw pageviews in short batches, and the boundary below which windows are
//! frozen.
//!
//! The boundary (`raw_pageviews_pruned_before` in `settings`, epoch ms at a UTC midnight) is written
//! before the first row under it is deleted and only ever moves forward. Rollups ([`Store::recompute_rollup`]
//! and [`Store::changed_windows`]) never touch a bucket below it: with its raw rows gone, a recompute
//! would see "no pageviews" and zero the rows that are now the only record of those days.

use sqlx::Row;

use super::{SiteRef, Store, StoreError, traced};

/// The `settings` key of the boundary.
pub(super) const PRUNED_BEFORE: &str = "raw_pageviews_pruned_before";
/// The value of the `settings` key `$1`.
pub(super) const READ_SETTING: &str = "SELECT value FROM settings WHERE key = $1";

/// Raw pageviews of one site older than a cutoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunableSite {
    pub site: SiteRef,
    pub pageviews: i64,
    /// `created_at` of its oldest raw pageview.
    pub oldest: i64,
}

impl Store {
    /// Where raw pageviews were pruned up to (exclusive), if ever.
    pub async fn pruned_before(&self) -> Result<Option<i64>, StoreError> {
        pruned_before(self, &self.pool).await
    }

    /// Moves the boundary forward to `cutoff` (never back).
    pub async fn set_pruned_before(&self, cutoff: i64) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        if self.pruned_before().await?.is_some_and(|current| current >= cutoff) {
            return Ok(());
        }
        traced(
            self.span("INSERT", "settings", sql),
            sqlx::query(sql).bind(PRUNED_BEFORE).bind(cutoff.to_string()).execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    /// Every site with raw pageviews created before `cutoff` (bots included), oldest site first.
    pub async fn prunable_pageviews(&self, cutoff: i64) -> Result<Vec<PrunableSite>, StoreError> {
        let sql = "SELECT s.id AS id, s.identifier AS identifier, COUNT(p.id) AS n, MIN(p.created_at) AS oldest \
                   FROM sites s JOIN pageviews p ON p.site_id = s.id AND p.created_at < $1 \
                   GROUP BY s.id, s.identifier ORDER BY s.id";
        let rows =
            traced(self.span("SELECT", "pageviews", sql), sqlx::query(sql).bind(cutoff).fetch_all(&self.pool)).await?;
        rows.iter()
            .map(|row| {
                Ok(PrunableSite {
                    site: SiteRef { id: row.try_get("id")?, identifier: row.try_get("identifier")? },
                    pageviews: row.try_get("n")?,
                    oldest: row.try_get("oldest")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Deletes up to `batch` raw pageviews of `site_id` created before `cutoff`, in one short
    /// transaction holding the site's rollup lock; returns how many went (0: none are left).
    pub async fn delete_pageviews_before(&self, site_id: i64, cutoff: i64, batch: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM pageviews WHERE id IN \
                   (SELECT id FROM pageviews WHERE site_id = $1 AND created_at < $2 ORDER BY created_at LIMIT $3)";
        let mut tx = self.pool.begin_with(self.dialect.begin_write_sql()).await?;
        if let Some(lock) = self.dialect.lock_site_sql() {
            traced(self.span("SELECT", "", lock), sqlx::query(lock).bind(site_id).fetch_one(&mut *tx)).await?;
        }
        let deleted = traced(
            self.span("DELETE", "pageviews", sql),
            sqlx::query(sql).bind(site_id).bind(cutoff).bind(batch).execute(&mut *tx),
        )
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}

async fn pruned_before<'e>(
    store: &Store,
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
) -> Result<Option<i64>, StoreError> {
    let sql = READ_SETTING;
    let value: Option<String> = traced(
        store.span("SELECT", "settings", sql),
        sqlx::query_scalar(sql).bind(PRUNED_BEFORE).fetch_optional(executor),
    )
    .await?;
    Ok(value.and_then(|v| v.parse().ok()))
}
