//! Authentication: signup, login and logout with session tokens, password reset by mail, API tokens.
//!
//! The HTTP layer hands this module plain values (an email, a cookie's token, the client IP as text)
//! and turns its [`AccountError`]s into statuses; nothing here knows about cookies or headers.
//! Invariants: a session or API token is only ever stored hashed; a password reset or change ends
//! every session of the user; login failures are counted per IP and per account before any password
//! is checked, so a blocked client costs no hashing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mail::{Mailer, ResetMail};
use super::password::{self, Verified};
use super::throttle::LoginThrottle;
use super::{AccountError, reset, token};
use crate::config::AccountsConfig;
use crate::store::{ApiToken, Store, StoreError, User, now_ms};

/// How long a login lasts (the original's Django session age).
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Verified against when the email is unknown, so "no such user" takes as long as "wrong password".
/// An argon2id hash of a random string nobody knows.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3F1aXJyZWxkdW1teXNhbHQ$3oH1p3zm2tD3Eq7J6ZRPaHqbkRIgO7hm0gQOQQWg6gE";

/// Most characters in an API token's name.
pub const MAX_TOKEN_NAME: usize = 100;

/// A user and the session token that just logged them in (to be set as the cookie).
#[derive(Debug)]
pub struct LoggedIn {
    pub user: User,
    pub session_token: String,
}

/// A freshly created API token: the only time the secret exists outside the requester's hands.
#[derive(Debug)]
pub struct NewApiToken {
    pub token: String,
    pub info: ApiToken,
}

/// The accounts service the HTTP handlers call. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Auth {
    store: Store,
    mailer: Mailer,
    throttle: LoginThrottle,
    reset_key: [u8; 32],
    /// Where reset links point, without a trailing slash.
    link_base: String,
}

impl Auth {
    /// # Errors
    /// A mailer setting that does not parse (see [`Mailer::from_config`]).
    pub fn new(store: Store, config: &AccountsConfig, secret_key: &str) -> Result<Auth, super::mail::MailError> {
        Ok(Auth {
            store,
            mailer: Mailer::from_config(config)?,
            throttle: LoginThrottle::new(
                config.login_attempts_per_ip,
                config.login_attempts_per_account,
                Duration::from_secs(config.login_window_secs),
            ),
            reset_key: reset::key(secret_key),
            link_base: config.link_base(),
        })
    }

    /// Creates the account and logs it in.
    ///
    /// # Errors
    /// `MissingCredentials`, `Invalid` (email form, password policy), `EmailTaken`, or a store failure.
    pub async fn signup(&self, email: &str, password: &str) -> Result<LoggedIn, AccountError> {
        if email.trim().is_empty() || password.is_empty() {
            return Err(AccountError::MissingCredentials);
        }
        let user = super::create_user(&self.store, email, password).await?;
        self.start_session(user).await
    }

    /// Checks the password and starts a session; an imported legacy hash is replaced by argon2id.
    ///
    /// # Errors
    /// `MissingCredentials`, `Throttled`, `InvalidCredentials` (unknown email, wrong password or
    /// inactive account alike), or a store failure.
    pub async fn login(&self, email: &str, password: &str, client_ip: &str) -> Result<LoggedIn, AccountError> {
        let email = email.trim();
        if email.is_empty() || password.is_empty() {
            return Err(AccountError::MissingCredentials);
        }
        let account_key = email.to_lowercase();
        let now = Instant::now();
        self.throttle
            .check(client_ip, &account_key, now)
            .map_err(|retry_after| AccountError::Throttled { retry_after })?;
        let user = self.store.user_by_email(email).await?;
        let stored = user.as_ref().map_or(DUMMY_HASH, |u| u.password_hash.as_str()).to_string();
        let given = password.to_string();
        let verdict = blocking(move || password::verify_stored(&given, &stored)).await?;
        let user = match (user, verdict) {
            (Some(user), Verified::Yes | Verified::Upgrade) if user.is_active => (user, verdict),
            _ => {
                self.throttle.record_failure(client_ip, &account_key, now);
                return Err(AccountError::InvalidCredentials);
            }
        };
        self.throttle.record_success(&account_key);
        let (user, verdict) = user;
        let upgraded = match verdict {
            Verified::Upgrade => {
                let given = password.to_string();
                Some(blocking(move || password::hash(&given)).await?.map_err(|_| AccountError::Hashing)?)
            }
            _ => None,
        };
        self.store.record_login(user.id, now_ms(), upgraded.as_deref()).await?;
        let user = User { password_hash: upgraded.unwrap_or(user.password_hash), last_login: Some(now_ms()), ..user };
        self.start_session(user).await
    }

    /// Ends the session with this token (a no-op for an unknown one).
    pub async fn logout(&self, session_token: &str) -> Result<(), AccountError> {
        Ok(self.store.delete_auth_session(&token::hash(session_token)).await?)
    }

    /// The user a session cookie belongs to, if it is live.
    pub async fn user_for_session(&self, session_token: &str) -> Result<Option<User>, StoreError> {
        self.store.user_by_session(&token::hash(session_token), now_ms()).await
    }

    /// The user an API token belongs to, if it exists.
    pub async fn user_for_api_token(&self, api_token: &str) -> Result<Option<User>, StoreError> {
        if !api_token.starts_with(token::API_TOKEN_PREFIX) {
            return Ok(None);
        }
        self.store.user_by_api_token(&token::hash(api_token), now_ms()).await
    }

    /// Sends a reset link if an active account has this email. Answers the same in every case, and
    /// returns before any mail is sent, so neither the answer nor its timing tells whether the account
    /// exists or whether mail works; delivery failures are logged.
    ///
    /// # Errors
    /// `MissingEmail` only.
    pub fn forgot_password(self: &Arc<Self>, email: &str) -> Result<(), AccountError> {
        let email = email.trim().to_string();
        if email.is_empty() {
            return Err(AccountError::MissingEmail);
        }
        let auth = Arc::clone(self);
        let span = tracing::info_span!("password_reset_mail", mailer = self.mailer.kind());
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Err(err) = auth.send_reset_link(&email).await {
                    tracing::error!(error = %err, "password-reset mail not sent");
                }
            },
            span,
        ));
        Ok(())
    }

    async fn send_reset_link(&self, email: &str) -> anyhow::Result<()> {
        let Some(user) = self.store.user_by_email(email).await? else { return Ok(()) };
        if !user.is_active {
            return Ok(());
        }
        let token = reset::make_token(&self.reset_key, user.id, &user.password_hash, now_ms() / 1000);
        let link = format!("{}/reset-password?uid={}&token={}", self.link_base, reset::encode_uid(user.id), token);
        let mail = ResetMail { to: user.email.clone(), username: user.email.clone(), link };
        self.mailer.send_reset(&mail).await?;
        Ok(())
    }

    /// Sets a new password from a reset link and ends every session of the user.
    ///
    /// # Errors
    /// `MissingResetFields`, `InvalidResetLink` (uid), `ExpiredResetLink` (token), `Invalid` (policy).
    pub async fn reset_password(&self, uid: &str, reset_token: &str, new_password: &str) -> Result<(), AccountError> {
        if uid.trim().is_empty() || reset_token.trim().is_empty() || new_password.is_empty() {
            return Err(AccountError::MissingResetFields);
        }
        let user = match reset::decode_uid(uid) {
            Some(id) => self.store.user_by_id(id).await?.filter(|u| u.is_active),
            None => None,
        };
        let user = user.ok_or(AccountError::InvalidResetLink)?;
        if !reset::check_token(&self.reset_key, user.id, &user.password_hash, reset_token, now_ms() / 1000) {
            return Err(AccountError::ExpiredResetLink);
        }
        password::check_policy(new_password).map_err(AccountError::Invalid)?;
        let given = new_password.to_string();
        let hash = blocking(move || password::hash(&given)).await?.map_err(|_| AccountError::Hashing)?;
        self.store.replace_password(user.id, &hash).await?;
        Ok(())
    }

    /// Creates an API token named `name` for `user`.
    ///
    /// # Errors
    /// `Invalid` for a blank or overlong name, or a store failure.
    pub async fn create_api_token(&self, user: &User, name: &str) -> Result<NewApiToken, AccountError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AccountError::Invalid("Token name is required".into()));
        }
        if name.chars().count() > MAX_TOKEN_NAME {
            return Err(AccountError::Invalid(format!("Token name must be at most {MAX_TOKEN_NAME} characters")));
        }
        let (secret, shown) = token::new_api_token();
        let info = self.store.create_api_token(user.id, name, &token::hash(&secret), &shown, now_ms()).await?;
        Ok(NewApiToken { token: secret, info })
    }

    pub async fn api_tokens(&self, user: &User) -> Result<Vec<ApiToken>, AccountError> {
        Ok(self.store.api_tokens_of_user(user.id).await?)
    }

    /// Revokes one of `user`'s tokens.
    ///
    /// # Errors
    /// `NotFound` when the user has no token with this id (another user's included).
    pub async fn revoke_api_token(&self, user: &User, token_id: i64) -> Result<(), AccountError> {
        if self.store.delete_api_token(user.id, token_id).await? { Ok(()) } else { Err(AccountError::NotFound) }
    }

    async fn start_session(&self, user: User) -> Result<LoggedIn, AccountError> {
        let session_token = token::new_session_token();
        let now = now_ms();
        let ttl = i64::try_from(SESSION_TTL.as_millis()).expect("30 days of milliseconds fit in i64");
        // Sweeping here keeps the table to live sessions without a scheduled job; it is one indexed-
        // by-nothing DELETE on a small table, and logins are rare.
        self.store.delete_expired_auth_sessions(now).await?;
        self.store.create_auth_session(user.id, &token::hash(&session_token), now, now + ttl).await?;
        Ok(LoggedIn { user, session_token })
    }
}

/// Runs CPU-heavy password work on the blocking pool, inside the caller's span.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AccountError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work)).await.map_err(|_| AccountError::Hashing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash_that_matches_nothing_typed() {
        assert!(DUMMY_HASH.starts_with("$argon2id$"));
        assert_eq!(password::verify_stored("password", DUMMY_HASH), Verified::No);
    }
}
