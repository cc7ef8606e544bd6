//! Reads for charts and statistics that the rollup tables can't answer exactly: buckets that don't
//! line up with UTC hours (half-hour and quarter-hour time zones) and distinct visitors over a window
//! (distinct counts don't add up across buckets). Both read raw pageviews over at most two days,
//! through the `(site_id, created_at)` index.

use sqlx::Row;

use super::{Store, StoreError, traced};

/// Non-bot pageviews and distinct visitors of one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCounts {
    /// Start of the bucket, epoch ms.
    pub bucket: i64,
    pub pageviews: i64,
    pub visitors: i64,
}

impl Store {
    /// Hour-long buckets starting at `start` (not necessarily on a UTC hour) up to `end`, from raw
    /// pageviews; buckets without pageviews are absent.
    pub async fn hourly_counts_from(
        &self,
        site_id: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<BucketCounts>, StoreError> {
        let sql = "SELECT created_at - (created_at - $2) % 3600000 AS bucket, COUNT(*) AS pageviews, \
                   COUNT(DISTINCT visitor_id) AS visitors FROM pageviews \
                   WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0 \
                   GROUP BY 1 ORDER BY 1";
        let rows = traced(
            self.span("SELECT", "pageviews", sql),
            sqlx::query(sql).bind(site_id).bind(start).bind(end).fetch_all(&self.pool),
        )
        .await?;
        rows.iter()
            .map(|row| {
                Ok(BucketCounts {
                    bucket: row.try_get("bucket")?,
                    pageviews: row.try_get("pageviews")?,
                    visitors: row.try_get("visitors")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Distinct non-bot visitor ids of a site in `[start, end)`.
    pub async fn distinct_visitors(&self, site_id: i64, start: i64, end: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(DISTINCT visitor_id) FROM pageviews \
                   WHERE site_id = $1 AND created_at >= $2 AND created_at < $3 AND is_bot = 0";
        let n: i64 = traced(
            self.span("SELECT", "pageviews", sql),
            sqlx::query_scalar(sql).bind(site_id).bind(start).bind(end).fetch_one(&self.pool),
        )
        .await?;
        Ok(n)
    }
}
