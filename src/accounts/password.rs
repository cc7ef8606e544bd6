//! Password policy and hashing: argon2id (PHC strings) for every new hash.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

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

#[cfg(test)]
mod tests {
    use super::*;

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
