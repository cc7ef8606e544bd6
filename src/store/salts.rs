//! Visitor salts: one random 32-byte key per UTC day, shared by every process through the database.

use super::{Store, StoreError, traced};

impl Store {
    /// The salt of `day` (days since the Unix epoch), created on first use. Concurrent callers in
    /// several processes all get the same salt: the first INSERT wins, the others read it. Salts
    /// older than the day before `day` are deleted, so an old visitor hash can never be recomputed.
    pub async fn visitor_salt(&self, day: i64) -> Result<[u8; 32], StoreError> {
        let fresh: [u8; 32] = rand::random();
        let insert = "INSERT INTO visitor_salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING";
        traced(
            self.span("INSERT", "visitor_salts", insert),
            sqlx::query(insert).bind(day).bind(hex::encode(fresh)).execute(&self.pool),
        )
        .await?;
        let select = "SELECT salt FROM visitor_salts WHERE day = $1";
        let salt: String = traced(
            self.span("SELECT", "visitor_salts", select),
            sqlx::query_scalar(select).bind(day).fetch_one(&self.pool),
        )
        .await?;
        let delete = "DELETE FROM visitor_salts WHERE day < $1";
        traced(self.span("DELETE", "visitor_salts", delete), sqlx::query(delete).bind(day - 1).execute(&self.pool))
            .await?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(salt.as_bytes(), &mut key)
            .map_err(|err| StoreError::Database(sqlx::Error::Decode(Box::new(err))))?;
        Ok(key)
    }

    /// The salt of `day` if it is still kept (today's or yesterday's), without creating one.
    pub async fn existing_visitor_salt(&self, day: i64) -> Result<Option<[u8; 32]>, StoreError> {
        let select = "SELECT salt FROM visitor_salts WHERE day = $1";
        let salt: Option<String> = traced(
            self.span("SELECT", "visitor_salts", select),
            sqlx::query_scalar(select).bind(day).fetch_optional(&self.pool),
        )
        .await?;
        let Some(salt) = salt else { return Ok(None) };
        let mut key = [0u8; 32];
        hex::decode_to_slice(salt.as_bytes(), &mut key)
            .map_err(|err| StoreError::Database(sqlx::Error::Decode(Box::new(err))))?;
        Ok(Some(key))
    }
}
