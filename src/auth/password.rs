//! argon2id hashing. It is deliberately slow (tens of milliseconds), so it runs on the blocking
//! pool: on an async worker it would stall every request sharing that thread.

use super::HashingError;
use crate::domain::Password;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// A valid hash of a random password, verified against when the email is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$7Ck4VD0CNHcV0sM7nUuuoDIGOu1UPn4Y2BD6c9bLmlA";

pub async fn hash(password: Password) -> Result<String, HashingError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashingError(e.to_string()))
    })
    .await
    .map_err(|e| HashingError(e.to_string()))?
}

/// `true` if `password` matches `hash`; with no hash, burns the same time and answers `false`.
pub async fn verify(password: String, hash: Option<String>) -> Result<bool, HashingError> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        let parsed = PasswordHash::new(&hash).map_err(|e| HashingError(e.to_string()))?;
        let matches = Argon2::default().verify_password(password.trim().as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(|e| HashingError(e.to_string()))?
}
