//! Operators' passwords: Argon2id (the `argon2` crate's defaults: 19 MiB, 2 passes,
//! 1 lane, as OWASP recommends) stored as a PHC string, never the password.
//!
//! An unknown user is answered after verifying against [`dummy_hash`], so that a login
//! takes the same time whether the user exists or not.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing a huge one would be a cheap way to load us).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password was refused or could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password is too short: use at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is too long: use at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// Hashing failed (a bug: the parameters are fixed).
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// Refuses a password that is too short or too long.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// The Argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash no password is known for, verified against when the user does not exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        hash_password(&hex::encode(bytes)).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(!verify_password("anything at all", dummy_hash()));
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(matches!(
            check_new_password("short"),
            Err(PasswordError::TooShort)
        ));
        assert!(matches!(
            check_new_password(&"x".repeat(2000)),
            Err(PasswordError::TooLong)
        ));
        check_new_password("twelve chars").unwrap();
    }
}
