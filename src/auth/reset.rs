//! Password reset links. A link's token is derived, not stored: HMAC-SHA256 under the node's
//! secret (`auth.jwt_secret`, shared by every node) of the user, a random nonce and the
//! expiry, so the mail queue keeps only the nonce, and the account only the token's SHA-256:
//! neither is a token for someone who reads the disk or the shard's log.
//!
//! ```text
//! token = hex(user id) hex(nonce) hex(first 16 bytes of the MAC)    96 hex digits
//! ```

use crate::domain::UserId;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How long a link works.
pub const VALID_MS: i64 = 30 * 60 * 1000;

/// The token of the link for `user`'s reset (`nonce`, expiring at `expires_at_ms`).
pub fn token(secret: &[u8], user: UserId, nonce: &[u8; 16], expires_at_ms: i64) -> String {
    // HMAC accepts a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(b"password-reset");
    mac.update(user.as_bytes());
    mac.update(nonce);
    mac.update(&expires_at_ms.to_be_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{}{}{}", hex::encode(user.as_bytes()), hex::encode(nonce), hex::encode(&tag[..16]))
}

/// What the account keeps of a token: its SHA-256.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The user a token is for (`None`: not a token's shape).
pub fn user_of(token: &str) -> Option<UserId> {
    if token.len() != 96 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes: [u8; 16] = hex::decode(&token[..32]).ok()?.try_into().ok()?;
    Some(UserId::from_bytes(bytes))
}

#[cfg(test)]
#[path = "reset_test.rs"]
mod tests;
