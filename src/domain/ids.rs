//! Typed ids. Every id is a UUID v7 (time-ordered, so key order on disk is creation order);
//! its shard is a stable hash of its bytes, which is what the cluster will route on.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// Parses the textual form; anything else (a malformed path segment) is `None`.
            pub fn parse(s: &str) -> Option<Self> {
                Uuid::try_parse(s).ok().map(Self)
            }
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            pub fn from_bytes(b: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(b))
            }
            /// The shard this id belongs to, out of `shards`.
            pub fn shard(&self, shards: u32) -> u32 {
                shard_of(self.as_bytes(), shards)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

typed_id!(
    /// A user account.
    UserId
);
typed_id!(
    /// A ticket for sale.
    TicketId
);
typed_id!(
    /// An order (a reservation of one ticket by one buyer).
    OrderId
);
typed_id!(
    /// A recorded payment.
    PaymentId
);

/// FNV-1a over the id bytes: stable across releases and platforms, unlike `DefaultHasher`.
pub fn shard_of(bytes: &[u8], shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u32
}

#[cfg(test)]
#[path = "ids_test.rs"]
mod tests;
