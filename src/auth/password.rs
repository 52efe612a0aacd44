//! argon2id hashing. It is deliberately slow (tens of milliseconds), so it runs on the blocking
//! pool: on an async worker it would stall every request sharing that thread. Each hash takes
//! 19 MiB, so at most one per core runs at once: a burst of sign-ups queues here instead of
//! spreading over dozens of blocking threads whose allocator arenas keep that memory (a
//! thousand sign-ups left the node at 2.2 GiB RSS before; BENCHMARKS.md).

use super::HashingError;
use crate::domain::Password;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// A valid hash of a random password, verified against when the email is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$7Ck4VD0CNHcV0sM7nUuuoDIGOu1UPn4Y2BD6c9bLmlA";

/// One permit per core: the hashes that may run at once.
fn hashing() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// Runs one hashing job on the blocking pool, at most one per core at a time.
async fn bounded<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, HashingError> + Send + 'static,
) -> Result<T, HashingError> {
    let _permit = hashing().acquire().await.map_err(|e| HashingError(e.to_string()))?;
    tokio::task::spawn_blocking(job).await.map_err(|e| HashingError(e.to_string()))?
}

pub async fn hash(password: Password) -> Result<String, HashingError> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashingError(e.to_string()))
    })
    .await
}

/// `true` if `password` matches `hash`; with no hash, burns the same time and answers `false`.
pub async fn verify(password: String, hash: Option<String>) -> Result<bool, HashingError> {
    bounded(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
        let parsed = PasswordHash::new(&hash).map_err(|e| HashingError(e.to_string()))?;
        let matches = Argon2::default().verify_password(password.trim().as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await
}
