//! Password policy and hashing: argon2id (PHC strings) for every new hash; Django's
//! `pbkdf2_sha256$<iterations>$<salt>$<base64>` hashes (accounts imported from the original) are
//! verified too, and [`Verified::Upgrade`] tells the caller to store an argon2id hash instead.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use subtle::ConstantTimeEq;

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Argon2 accepts longer input, but nobody types 1 KB and it bounds the work an attacker can ask for.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// `Err(message)` when the password breaks the policy.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("Password must be at least {MIN_PASSWORD_CHARS} characters long"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("Password must be at most {MAX_PASSWORD_BYTES} bytes long"));
    }
    Ok(())
}

/// An argon2id PHC string for `password` with a fresh random salt. CPU-heavy: call off the async threads.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default().hash_password(password.as_bytes())?.to_string())
}

/// Whether `password` matches an argon2 PHC string. Malformed hashes never match.
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but the stored hash is an imported legacy one: replace it with [`hash`].
    Upgrade,
}

/// Checks `password` against an argon2 PHC string or a Django `pbkdf2_sha256$…` hash. CPU-heavy.
pub fn verify_stored(password: &str, stored: &str) -> Verified {
    if stored.starts_with("pbkdf2_sha256$") {
        if verify_django_pbkdf2(password, stored) { Verified::Upgrade } else { Verified::No }
    } else if verify(password, stored) {
        Verified::Yes
    } else {
        Verified::No
    }
}

/// Django caps nothing, but a hash asking for more rounds than this is not one Django wrote (its
/// default is 1,000,000 in 5.2) and would let a crafted row burn CPU on every login attempt.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// `pbkdf2_sha256$<iterations>$<salt>$<base64 of the 32-byte derived key>`, compared in constant time.
fn verify_django_pbkdf2(password: &str, encoded: &str) -> bool {
    let mut parts = encoded.split('$');
    let (Some("pbkdf2_sha256"), Some(iterations), Some(salt), Some(expected), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(iterations) = iterations.parse::<u32>() else { return false };
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(expected) else { return false };
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS || expected.len() != 32 {
        return false;
    }
    let mut derived = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), iterations, &mut derived);
    derived.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by Django 5.2's `make_password("correct horse", "saltsaltsalt12", "pbkdf2_sha256")` with
    /// 1,000 iterations (Python's `hashlib.pbkdf2_hmac`, which Django calls).
    const DJANGO_HASH: &str = "pbkdf2_sha256$1000$saltsaltsalt12$C+2hGzGMesL5wgeiQcx46xeGGDaxX+EX4cU9Q2czXeM=";

    #[test]
    fn imported_django_hashes_verify_and_ask_for_an_upgrade() {
        assert_eq!(verify_stored("correct horse", DJANGO_HASH), Verified::Upgrade);
        assert_eq!(verify_stored("wrong horse", DJANGO_HASH), Verified::No);
        assert_eq!(verify_stored("correct horse", "pbkdf2_sha256$0$salt$AAAA"), Verified::No);
        assert_eq!(verify_stored("correct horse", "pbkdf2_sha256$99999999999$s$AAAA"), Verified::No);
        assert_eq!(verify_stored("correct horse", "pbkdf2_sha256$1000$salt"), Verified::No);
        let phc = hash("correct horse").unwrap();
        assert_eq!(verify_stored("correct horse", &phc), Verified::Yes);
    }

    #[test]
    fn hashes_verify_only_their_password() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &phc));
        assert!(!verify("wrong horse", &phc));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn policy_wants_eight_characters() {
        assert!(check_policy("1234567").is_err());
        assert!(check_policy("12345678").is_ok());
        assert!(check_policy("ééééééé").is_err(), "counts characters, not bytes");
    }
}
