//! Instance settings kept in the database: values generated once and shared by every process.

use super::{Store, StoreError, traced};

impl Store {
    /// The value stored under `key`, or `generate()`'s value stored now if there is none yet. Safe
    /// under concurrency: every caller ends up with the value that won the insert.
    pub async fn setting_or_insert(&self, key: &str, generate: impl FnOnce() -> String) -> Result<String, StoreError> {
        let insert = "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
        traced(
            self.span("INSERT", "settings", insert),
            sqlx::query(insert).bind(key).bind(generate()).execute(&self.pool),
        )
        .await?;
        let select = "SELECT value FROM settings WHERE key = $1";
        let value: String =
            traced(self.span("SELECT", "settings", select), sqlx::query_scalar(select).bind(key).fetch_one(&self.pool))
                .await?;
        Ok(value)
    }
}
