//! Bearer secrets: login-session cookies and API tokens. Random, shown once, stored only as a hash.
//!
//! A token carries 160–256 random bits, so a fast unkeyed hash (BLAKE3) is enough to make the stored
//! value useless to whoever reads the database: there is nothing to brute-force, unlike a password.

use rand::RngCore;

/// What API tokens start with, so they are recognisable in a config file or a leak scanner.
pub const API_TOKEN_PREFIX: &str = "sq_";
/// Characters of an API token kept in clear for listing (`sq_` and 5 hex digits).
const SHOWN_PREFIX_LEN: usize = 8;

/// A fresh session token: 32 random bytes, hex.
pub fn new_session_token() -> String {
    random_hex(32)
}

/// A fresh API token (`sq_` + 40 hex digits = 160 bits) and the part of it that may be shown again.
pub fn new_api_token() -> (String, String) {
    let token = format!("{API_TOKEN_PREFIX}{}", random_hex(20));
    let shown = token[..SHOWN_PREFIX_LEN].to_string();
    (token, shown)
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        assert_ne!(new_session_token(), new_session_token());
        assert_eq!(new_session_token().len(), 64);
        let (token, shown) = new_api_token();
        assert!(token.starts_with("sq_") && token.len() == 43 && token.starts_with(&shown));
        assert_eq!(hash(&token), hash(&token));
        assert!(!hash(&token).contains(&token[3..]));
    }
}
