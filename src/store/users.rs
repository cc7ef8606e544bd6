//! Users: accounts that own sites. Emails are stored trimmed and matched case-insensitively.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Dialect, Store, StoreError, now_ms, traced};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub is_active: bool,
    pub created_at: i64,
    pub last_login: Option<i64>,
}

impl User {
    pub(super) fn from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
        Ok(User {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            is_active: row.try_get::<i64, _>("is_active")? != 0,
            created_at: row.try_get("created_at")?,
            last_login: row.try_get("last_login")?,
        })
    }
}

impl Store {
    /// Creates a user; `Conflict("email")` if the email (ignoring case) is taken.
    pub async fn create_user(&self, email: &str, password_hash: &str) -> Result<User, StoreError> {
        let sql = "INSERT INTO users (email, password_hash, is_active, created_at) VALUES ($1, $2, 1, $3) \
                   RETURNING id, email, password_hash, is_active, created_at, last_login";
        let result = traced(
            self.span("INSERT", "users", sql),
            sqlx::query(sql).bind(email).bind(password_hash).bind(now_ms()).fetch_one(&self.pool),
        )
        .await;
        match result {
            Ok(row) => Ok(User::from_row(&row)?),
            Err(StoreError::Database(err)) if Dialect::is_unique_violation(&err) => Err(StoreError::Conflict("email")),
            Err(err) => Err(err),
        }
    }

    /// The user with this email, compared case-insensitively.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let sql = "SELECT id, email, password_hash, is_active, created_at, last_login FROM users \
                   WHERE lower(email) = lower($1)";
        let row =
            traced(self.span("SELECT", "users", sql), sqlx::query(sql).bind(email).fetch_optional(&self.pool)).await?;
        Ok(row.as_ref().map(User::from_row).transpose()?)
    }
}
