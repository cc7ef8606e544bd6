//! Accounts: users, their passwords, and the sites they own (identifiers included).
//!
//! Owns the rules (email and password policy, hashing) and calls `store` for persistence. Password
//! hashing is deliberately slow, so it runs on the blocking pool, never on a request's async thread.

pub mod identifier;
pub mod password;

use crate::store::{Site, Store, StoreError, User};

/// A rule an account operation broke, worded for the person who typed the input.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
    #[error("Email already registered")]
    EmailTaken,
    #[error("No user with email {0}")]
    NoSuchUser(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed")]
    Hashing,
}

/// Trims and checks an email address: something@something, at most 254 characters.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Ok(email.to_string()) } else { Err(AccountError::Invalid(format!("'{email}' is not an email address"))) }
}

/// Creates a user after checking the email and the password policy.
pub async fn create_user(store: &Store, email: &str, password: &str) -> Result<User, AccountError> {
    let email = normalize_email(email)?;
    password::check_policy(password).map_err(AccountError::Invalid)?;
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|_| AccountError::Hashing)?
        .map_err(|_| AccountError::Hashing)?;
    match store.create_user(&email, &hash).await {
        Err(StoreError::Conflict(_)) => Err(AccountError::EmailTaken),
        other => Ok(other?),
    }
}

/// Most characters in a site name.
pub const MAX_SITE_NAME: usize = 255;

/// Creates a site named `name` for the user with `owner_email`.
pub async fn create_site(store: &Store, owner_email: &str, name: &str) -> Result<Site, AccountError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AccountError::Invalid("Site name is required".into()));
    }
    if name.chars().count() > MAX_SITE_NAME {
        return Err(AccountError::Invalid(format!("Site name must be at most {MAX_SITE_NAME} characters")));
    }
    let owner = store
        .user_by_email(owner_email.trim())
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(owner_email.trim().to_string()))?;
    Ok(store.create_site(owner.id, name).await?)
}
