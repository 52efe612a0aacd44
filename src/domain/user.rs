//! A user account and its sign-in credentials.

use super::{Email, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    /// argon2id PHC string; the clear password is never stored or logged.
    pub password_hash: String,
    pub created_at_ms: i64,
}

/// A password as the seeds accept it: trimmed, 4 to 20 characters.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        (4..=20).contains(&trimmed.chars().count()).then(|| Self(trimmed.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A refresh token's durable record: rotated on every use, revocable, grouped in a family so
/// that replaying a rotated token revokes every token descended from the same sign-in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub user_id: UserId,
    pub family: [u8; 16],
    /// SHA-256 of the token's secret half.
    pub secret_hash: [u8; 32],
    pub expires_at_ms: i64,
    pub used: bool,
    pub revoked: bool,
}

/// A password reset asked for and not used yet: what the account keeps of its link (the
/// token's SHA-256, `auth::reset`), until it expires. One at a time: a new one replaces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    pub token_digest: [u8; 32],
    pub expires_at_ms: i64,
}

#[cfg(test)]
#[path = "user_test.rs"]
mod tests;
