//! Password-reset links: `uid` (the user id, URL-safe base64 without padding, as Django wrote it) and
//! a token `<issued, base36 seconds>-<MAC>`.
//!
//! Nothing is stored. The MAC is keyed BLAKE3 (key derived from `SECRET_KEY`) over the user id, the
//! issue time and the user's *current password hash*, so a token dies with any password change: the
//! reset it performs (single use), another reset, or a change by any other path. It also dies
//! [`RESET_TTL_SECS`] after issue, the 24 hours the mail promises.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// How long a reset link works.
pub const RESET_TTL_SECS: i64 = 24 * 3600;

/// Derives the MAC key from the server secret, so the secret itself keys nothing directly.
pub fn key(secret_key: &str) -> [u8; 32] {
    blake3::derive_key("squirrel-stats 2026 password reset link", secret_key.as_bytes())
}

pub fn encode_uid(user_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(user_id.to_string())
}

/// `None` for anything that is not the encoding of a positive id.
pub fn decode_uid(uid: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(uid.trim().trim_end_matches('=')).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse::<i64>().ok().filter(|id| *id > 0)
}

/// The token for `user_id` whose password hash is `password_hash`, issued at `now_secs`.
pub fn make_token(key: &[u8; 32], user_id: i64, password_hash: &str, now_secs: i64) -> String {
    format!("{}-{}", to_base36(now_secs), mac(key, user_id, password_hash, now_secs))
}

/// Whether `token` was made for this user and password hash and is still within its lifetime.
pub fn check_token(key: &[u8; 32], user_id: i64, password_hash: &str, token: &str, now_secs: i64) -> bool {
    let Some((issued, given)) = token.trim().split_once('-') else { return false };
    let Some(issued) = from_base36(issued) else { return false };
    // A little clock skew between processes is fine; a token from the future is not.
    if issued > now_secs + 60 || now_secs - issued > RESET_TTL_SECS {
        return false;
    }
    let expected = mac(key, user_id, password_hash, issued);
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn mac(key: &[u8; 32], user_id: i64, password_hash: &str, issued: i64) -> String {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&user_id.to_le_bytes());
    hasher.update(&issued.to_le_bytes());
    hasher.update(password_hash.as_bytes());
    hasher.finalize().to_hex()[..40].to_string()
}

fn to_base36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("base36 digits are ASCII")
}

fn from_base36(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 12 {
        return None;
    }
    i64::from_str_radix(s, 36).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_760_000_000;

    #[test]
    fn uid_is_djangos_encoding() {
        assert_eq!(encode_uid(1), "MQ");
        assert_eq!(decode_uid("MQ"), Some(1));
        assert_eq!(decode_uid(&encode_uid(123_456)), Some(123_456));
        assert_eq!(decode_uid("!!"), None);
        assert_eq!(decode_uid(""), None);
        assert_eq!(decode_uid(&URL_SAFE_NO_PAD.encode("-4")), None);
    }

    #[test]
    fn tokens_die_with_the_password_hash_and_after_a_day() {
        let key = key("secret");
        let token = make_token(&key, 7, "hash-a", NOW);
        assert!(check_token(&key, 7, "hash-a", &token, NOW + 10));
        assert!(check_token(&key, 7, "hash-a", &token, NOW + RESET_TTL_SECS));
        assert!(!check_token(&key, 7, "hash-a", &token, NOW + RESET_TTL_SECS + 1), "expired");
        assert!(!check_token(&key, 7, "hash-b", &token, NOW + 10), "password changed");
        assert!(!check_token(&key, 8, "hash-a", &token, NOW + 10), "other user");
        assert!(!check_token(&self::key("other"), 7, "hash-a", &token, NOW + 10), "other server secret");
        assert!(!check_token(&key, 7, "hash-a", "zz-abc", NOW), "forged");
        assert!(!check_token(&key, 7, "hash-a", "garbage", NOW));
    }
}
