//! Credentials, as pure functions and small types: argon2id password hashing (off the async
//! threads) and HS256 access tokens. Accounts and sessions, which are stored, are a use case
//! of the application layer (`crate::app::accounts`).

pub mod password;
pub mod reset;
mod tokens;

pub use tokens::{Claims, JwtKeys, SessionCookie};

/// argon2 failed (or its blocking task did not finish): a server fault, never the caller's.
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashingError(pub String);

/// Whether `secret`'s SHA-256 is `stored` (compared in constant time): how a refresh token's
/// secret and a reset link's token are checked, neither kept but as its digest.
pub fn digest_matches(secret: &[u8], stored: &[u8; 32]) -> bool {
    use sha2::Digest;
    subtle::ConstantTimeEq::ct_eq(&sha2::Sha256::digest(secret)[..], &stored[..]).into()
}
