//! Credentials: password updates, login sessions and API tokens.
//!
//! Tokens arrive here already hashed (`accounts::token`): this module never sees a usable secret, and
//! a lookup is one indexed equality on `token_hash`. Expired sessions are never returned, whether or
//! not [`Store::delete_expired_auth_sessions`] has swept them yet.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, User, traced};

/// An API token as listed to its owner: never the token itself, only its first characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The token's first characters, enough to tell two tokens apart.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl ApiToken {
    fn from_row(row: &AnyRow) -> Result<ApiToken, sqlx::Error> {
        Ok(ApiToken {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            name: row.try_get("name")?,
            prefix: row.try_get("prefix")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
        })
    }
}

impl Store {
    pub async fn user_by_id(&self, user_id: i64) -> Result<Option<User>, StoreError> {
        let sql = "SELECT id, email, password_hash, is_active, created_at, last_login FROM users WHERE id = $1";
        let row = traced(self.span("SELECT", "users", sql), sqlx::query(sql).bind(user_id).fetch_optional(&self.pool))
            .await?;
        Ok(row.as_ref().map(User::from_row).transpose()?)
    }

    /// Records a successful login; `new_hash` replaces the stored hash (an imported hash upgraded to
    /// argon2id) when given.
    pub async fn record_login(&self, user_id: i64, at: i64, new_hash: Option<&str>) -> Result<(), StoreError> {
        let sql = "UPDATE users SET last_login = $2, password_hash = COALESCE($3, password_hash) WHERE id = $1";
        traced(
            self.span("UPDATE", "users", sql),
            sqlx::query(sql).bind(user_id).bind(at).bind(new_hash).execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    /// Sets a new password hash and ends every login session of the user, in one transaction.
    pub async fn replace_password(&self, user_id: i64, hash: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(self.dialect.begin_write_sql()).await?;
        let update = "UPDATE users SET password_hash = $2 WHERE id = $1";
        traced(self.span("UPDATE", "users", update), sqlx::query(update).bind(user_id).bind(hash).execute(&mut *tx))
            .await?;
        let revoke = "DELETE FROM auth_sessions WHERE user_id = $1";
        traced(self.span("DELETE", "auth_sessions", revoke), sqlx::query(revoke).bind(user_id).execute(&mut *tx))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_auth_session(
        &self,
        user_id: i64,
        token_hash: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO auth_sessions (user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        traced(
            self.span("INSERT", "auth_sessions", sql),
            sqlx::query(sql).bind(user_id).bind(token_hash).bind(created_at).bind(expires_at).execute(&self.pool),
        )
        .await?;
        Ok(())
    }

    /// The active user whose unexpired session has this token hash.
    pub async fn user_by_session(&self, token_hash: &str, now: i64) -> Result<Option<User>, StoreError> {
        let sql = "SELECT u.id, u.email, u.password_hash, u.is_active, u.created_at, u.last_login \
                   FROM auth_sessions s JOIN users u ON u.id = s.user_id \
                   WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.is_active = 1";
        let row = traced(
            self.span("SELECT", "auth_sessions", sql),
            sqlx::query(sql).bind(token_hash).bind(now).fetch_optional(&self.pool),
        )
        .await?;
        Ok(row.as_ref().map(User::from_row).transpose()?)
    }

    pub async fn delete_auth_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM auth_sessions WHERE token_hash = $1";
        traced(self.span("DELETE", "auth_sessions", sql), sqlx::query(sql).bind(token_hash).execute(&self.pool))
            .await?;
        Ok(())
    }

    /// Sweeps sessions that expired before `now`.
    pub async fn delete_expired_auth_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM auth_sessions WHERE expires_at <= $1";
        let done =
            traced(self.span("DELETE", "auth_sessions", sql), sqlx::query(sql).bind(now).execute(&self.pool)).await?;
        Ok(done.rows_affected())
    }

    /// How many unexpired sessions the user has (tests and the CLI).
    pub async fn count_auth_sessions(&self, user_id: i64, now: i64) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM auth_sessions WHERE user_id = $1 AND expires_at > $2";
        let n: i64 = traced(
            self.span("SELECT", "auth_sessions", sql),
            sqlx::query_scalar(sql).bind(user_id).bind(now).fetch_one(&self.pool),
        )
        .await?;
        Ok(n)
    }

    pub async fn create_api_token(
        &self,
        user_id: i64,
        name: &str,
        token_hash: &str,
        prefix: &str,
        now: i64,
    ) -> Result<ApiToken, StoreError> {
        let sql = "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5) \
                   RETURNING id, user_id, name, prefix, created_at, last_used_at";
        let row = traced(
            self.span("INSERT", "api_tokens", sql),
            sqlx::query(sql).bind(user_id).bind(name).bind(token_hash).bind(prefix).bind(now).fetch_one(&self.pool),
        )
        .await?;
        Ok(ApiToken::from_row(&row)?)
    }

    /// The user's tokens, newest first.
    pub async fn api_tokens_of_user(&self, user_id: i64) -> Result<Vec<ApiToken>, StoreError> {
        let sql = "SELECT id, user_id, name, prefix, created_at, last_used_at FROM api_tokens \
                   WHERE user_id = $1 ORDER BY created_at DESC, id DESC";
        let rows = traced(self.span("SELECT", "api_tokens", sql), sqlx::query(sql).bind(user_id).fetch_all(&self.pool))
            .await?;
        rows.iter().map(ApiToken::from_row).collect::<Result<_, sqlx::Error>>().map_err(StoreError::from)
    }

    /// Revokes one of the user's tokens; `false` when the user has no token with this id.
    pub async fn delete_api_token(&self, user_id: i64, token_id: i64) -> Result<bool, StoreError> {
        let sql = "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2";
        let done = traced(
            self.span("DELETE", "api_tokens", sql),
            sqlx::query(sql).bind(token_id).bind(user_id).execute(&self.pool),
        )
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The active owner of the token with this hash. `last_used_at` is refreshed at most once a minute,
    /// so reading stats with a token does not turn every request into a write.
    pub async fn user_by_api_token(&self, token_hash: &str, now: i64) -> Result<Option<User>, StoreError> {
        let sql = "SELECT t.id AS token_id, t.last_used_at, u.id, u.email, u.password_hash, u.is_active, u.created_at, \
                   u.last_login FROM api_tokens t JOIN users u ON u.id = t.user_id \
                   WHERE t.token_hash = $1 AND u.is_active = 1";
        let Some(row) = traced(
            self.span("SELECT", "api_tokens", sql),
            sqlx::query(sql).bind(token_hash).fetch_optional(&self.pool),
        )
        .await?
        else {
            return Ok(None);
        };
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        if last_used.is_none_or(|at| now - at >= 60_000) {
            let touch = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1";
            let token_id: i64 = row.try_get("token_id")?;
            traced(
                self.span("UPDATE", "api_tokens", touch),
                sqlx::query(touch).bind(token_id).bind(now).execute(&self.pool),
            )
            .await?;
        }
        Ok(Some(User::from_row(&row)?))
    }
}
