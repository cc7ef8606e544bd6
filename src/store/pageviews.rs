//! Raw pageviews: the group-commit insert of the ingest writer, and counts over raw rows.

use super::{Store, StoreError, traced};

/// One pageview ready to store. Every text field is already bounded and cleaned by `ingest`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewPageview {
    pub site_id: i64,
    pub created_at: i64,
    pub url: String,
    pub path: String,
    pub referrer: String,
    pub referrer_domain: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_term: String,
    pub utm_content: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub device_type: &'static str,
    pub country: String,
    #[serde(serialize_with = "as_zero_one")]
    pub is_bot: bool,
    pub visitor_id: i64,
    pub visitor_id_prev: Option<i64>,
}

impl Store {
    /// Stores `rows` atomically: all of them are durable when this returns `Ok`, none when it
    /// returns `Err`.
    ///
    /// The whole batch travels as one JSON array bound to one parameter of one fixed statement
    /// (`Dialect::insert_pageviews_sql`): a single round trip and a single autocommit transaction
    /// whatever the batch size, one prepared statement reused forever, and no per-value bind cost
    /// (SQLite looks `$N` names up linearly, which made wide multi-row VALUES lists quadratic).
    pub async fn insert_pageviews(&self, rows: &[NewPageview]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let sql = self.dialect.insert_pageviews_sql();
        traced(self.span("INSERT", "pageviews", sql), async {
            let batch = super::json_batch(rows)?;
            sqlx::query(sql).bind(batch).execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// Stored non-bot pageviews of one site, all time.
    pub async fn count_pageviews(&self, site_id: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM pageviews WHERE site_id = $1 AND is_bot = 0";
        let count: i64 =
            traced(self.span("SELECT", "pageviews", sql), sqlx::query_scalar(sql).bind(site_id).fetch_one(&self.pool))
                .await?;
        Ok(count)
    }

    /// Every stored row of a site, oldest first (tests and small exports).
    pub async fn pageviews_of_site(&self, site_id: i64) -> Result<Vec<StoredPageview>, StoreError> {
        let sql = "SELECT id, site_id, created_at, url, path, referrer, referrer_domain, utm_source, \
                   utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, \
                   device_type, country, is_bot, visitor_id, visitor_id_prev \
                   FROM pageviews WHERE site_id = $1 ORDER BY id";
        let rows =
            traced(self.span("SELECT", "pageviews", sql), sqlx::query(sql).bind(site_id).fetch_all(&self.pool)).await?;
        rows.iter().map(StoredPageview::from_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }
}

/// Booleans are stored as 0/1 on both backends.
fn as_zero_one<S: serde::Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_i64(i64::from(*value))
}

/// A pageview as read back from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPageview {
    pub id: i64,
    pub row: NewPageview,
}

impl StoredPageview {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row;
        let device: String = row.try_get("device_type")?;
        Ok(StoredPageview {
            id: row.try_get("id")?,
            row: NewPageview {
                site_id: row.try_get("site_id")?,
                created_at: row.try_get("created_at")?,
                url: row.try_get("url")?,
                path: row.try_get("path")?,
                referrer: row.try_get("referrer")?,
                referrer_domain: row.try_get("referrer_domain")?,
                utm_source: row.try_get("utm_source")?,
                utm_medium: row.try_get("utm_medium")?,
                utm_campaign: row.try_get("utm_campaign")?,
                utm_term: row.try_get("utm_term")?,
                utm_content: row.try_get("utm_content")?,
                browser: row.try_get("browser")?,
                browser_version: row.try_get("browser_version")?,
                os: row.try_get("os")?,
                device_type: crate::ua::DeviceType::parse(&device).unwrap_or(crate::ua::DeviceType::Unknown).as_str(),
                country: row.try_get("country")?,
                is_bot: row.try_get::<i64, _>("is_bot")? != 0,
                visitor_id: row.try_get("visitor_id")?,
                visitor_id_prev: row.try_get("visitor_id_prev")?,
            },
        })
    }
}
