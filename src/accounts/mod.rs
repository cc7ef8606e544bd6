//! Accounts: users, their passwords, sessions and API tokens ([`auth`]), and the sites they own
//! (identifiers included).
//!
//! Owns the rules (email and password policy, hashing, the 50-site limit, who may touch which site)
//! and calls `store` for persistence. Never imports `axum`: errors are [`AccountError`]s that
//! `http::error` maps to statuses. Password hashing is deliberately slow, so it runs on the blocking
//! pool, never on a request's async thread.

pub mod auth;
pub mod identifier;
pub mod mail;
pub mod password;
pub mod reset;
pub mod sites;
pub mod throttle;
pub mod token;

use std::time::Duration;

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
    #[error("Email and password are required")]
    MissingCredentials,
    #[error("Invalid credentials")]
    InvalidCredentials,
    #[error("Too many failed login attempts. Try again in {} seconds.", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    #[error("Email is required")]
    MissingEmail,
    #[error("UID, token, and new password are required")]
    MissingResetFields,
    #[error("Invalid reset link")]
    InvalidResetLink,
    #[error("Invalid or expired reset link")]
    ExpiredResetLink,
    #[error("Site limit reached. Maximum {MAX_SITES_PER_USER} sites allowed.")]
    SiteLimit,
    /// The thing does not exist, or belongs to someone else: the two are never told apart.
    #[error("Not found")]
    NotFound,
    #[error("Invalid page.")]
    InvalidPage,
}

/// Most sites one user may own (the original's limit).
pub const MAX_SITES_PER_USER: i64 = 50;

/// Longest email address in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// Trims and checks an email address: something@something, at most [`MAX_EMAIL_BYTES`] bytes.
pub fn normalize_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim();
    let valid = email.len() <= MAX_EMAIL_BYTES
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
    let name = sites::check_name(Some(name))?;
    let owner = store
        .user_by_email(owner_email.trim())
        .await?
        .ok_or_else(|| AccountError::NoSuchUser(owner_email.trim().to_string()))?;
    Ok(store.create_site(owner.id, &name).await?)
}
