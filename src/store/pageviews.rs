//! Raw pageviews: the group-commit insert of the ingest writer, and counts over raw rows.

use sqlx::AssertSqlSafe;

use super::{Store, StoreError, traced};

/// One pageview ready to store. Every text field is already bounded and cleaned by `ingest`.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub is_bot: bool,
    pub visitor_id: i64,
    pub visitor_id_prev: Option<i64>,
}

const COLUMNS: [&str; 19] = [
    "site_id",
    "created_at",
    "url",
    "path",
    "referrer",
    "referrer_domain",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "browser",
    "browser_version",
    "os",
    "device_type",
    "country",
    "is_bot",
    "visitor_id",
    "visitor_id_prev",
];

/// Rows per INSERT statement: 100 × 19 = 1,900 bind parameters, well under SQLite's 32,766 and
/// PostgreSQL's 65,535, and large enough that per-statement overhead stops mattering.
const ROWS_PER_STATEMENT: usize = 100;

fn insert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO pageviews ({}) VALUES ", COLUMNS.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for col in 0..COLUMNS.len() {
            n += 1;
            if col > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql
}

impl Store {
    /// Stores `rows` in one transaction: all of them are durable when this returns `Ok`, none when
    /// it returns `Err`.
    pub async fn insert_pageviews(&self, rows: &[NewPageview]) -> Result<(), StoreError> {
        let mut tx = traced(self.span("BEGIN", "", "BEGIN"), self.pool.begin()).await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = insert_sql(chunk.len());
            let span = self.span("INSERT", "pageviews", &sql);
            // The SQL is built from the constant column list and counters only; values are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for pv in chunk {
                query = query
                    .bind(pv.site_id)
                    .bind(pv.created_at)
                    .bind(pv.url.as_str())
                    .bind(pv.path.as_str())
                    .bind(pv.referrer.as_str())
                    .bind(pv.referrer_domain.as_str())
                    .bind(pv.utm_source.as_str())
                    .bind(pv.utm_medium.as_str())
                    .bind(pv.utm_campaign.as_str())
                    .bind(pv.utm_term.as_str())
                    .bind(pv.utm_content.as_str())
                    .bind(pv.browser.as_str())
                    .bind(pv.browser_version.as_str())
                    .bind(pv.os.as_str())
                    .bind(pv.device_type)
                    .bind(pv.country.as_str())
                    .bind(i64::from(pv.is_bot))
                    .bind(pv.visitor_id)
                    .bind(pv.visitor_id_prev);
            }
            traced(span, query.execute(&mut *tx)).await?;
        }
        traced(self.span("COMMIT", "", "COMMIT"), tx.commit()).await?;
        Ok(())
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
