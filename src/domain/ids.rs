//! Typed ids and the slot every id carries.
//!
//! Every id is a UUID v7 (time-ordered, so ids sort by creation) whose last two bytes hold its
//! **slot**: a number in `0..SLOTS` that says which partition of the data the entity lives in.
//! Routing an entity is reading its id: the slot picks the disk key prefix, the serving core and,
//! in a cluster, the owning node (shards are ranges of slots). A ticket takes a slot chosen by
//! the node that creates it, an order takes its ticket's slot (so a reservation is one write in
//! one slot), a user takes a stable hash of the normalised email.
//!
//! Ids written before slots existed carry random bytes there: they are read as those bytes
//! modulo [`SLOTS`], which is all routing needs (the migration keys their records the same way).

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// How many slots there are: fixed forever, since ids and disk keys embed them. The id has room
/// for 65,536; 4,096 are used because recovery and the outbox sweep every slot's index with one
/// seek per occupied slot (65,536 seeks cost ~0.5 s, 4,096 ~30 ms), and 4,096 still gives 64
/// slots to each of the default 64 cluster shards.
pub const SLOTS: u32 = 1 << 12;

/// The shard of `slot` when the slots are split into `shards` contiguous ranges.
pub fn shard_of_slot(slot: Slot, shards: u32) -> u32 {
    u32::from(slot.0) * shards.max(1) / SLOTS
}

/// The slots of shard `shard` of `shards` (the inverse of [`shard_of_slot`]).
pub fn slots_of_shard(shard: u32, shards: u32) -> std::ops::Range<u32> {
    let first = |s: u32| (u64::from(s) * u64::from(SLOTS)).div_ceil(u64::from(shards.max(1))) as u32;
    first(shard)..first(shard + 1)
}

/// A partition of the data: an entity's records all live under its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Slot(pub u16);

impl Slot {
    /// A stable slot for any text (emails, provider event ids, idempotency keys).
    pub fn of_text(text: &str) -> Self {
        Self::of_bytes(text.as_bytes())
    }

    /// A stable slot for any bytes: FNV-1a, identical across releases and platforms.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        Self((hash % u64::from(SLOTS)) as u16)
    }

    /// A random slot (a node spreading new tickets over the slots it owns).
    pub fn random() -> Self {
        Self((rand::random::<u32>() % SLOTS) as u16)
    }

    /// The slot of a 16-bit slot field (ids written before slots existed hold random bits).
    pub fn from_field(field: u16) -> Self {
        Self((u32::from(field) % SLOTS) as u16)
    }

    pub fn to_be_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A UUID v7 with `slot` in its last two bytes.
fn uuid_in(slot: Slot) -> Uuid {
    let mut bytes = *Uuid::now_v7().as_bytes();
    bytes[14..16].copy_from_slice(&slot.to_be_bytes());
    Uuid::from_bytes(bytes)
}

/// A UUID v7 with `slot` in its last two bytes whose time is `at_ms` and whose random bits are
/// taken from `seed`: the same arguments give the same id (a retried keyed request).
fn uuid_derived(slot: Slot, at_ms: i64, seed: &[u8; 32]) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&(at_ms.max(0) as u64).to_be_bytes()[2..]);
    bytes[6..14].copy_from_slice(&seed[..8]);
    bytes[6] = 0x70 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    bytes[14..16].copy_from_slice(&slot.to_be_bytes());
    Uuid::from_bytes(bytes)
}

/// The slot a 16-byte id carries.
pub fn slot_of_id(bytes: &[u8; 16]) -> Slot {
    Slot::from_field(u16::from_be_bytes([bytes[14], bytes[15]]))
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id in `slot`.
            pub fn new_in(slot: Slot) -> Self {
                Self(uuid_in(slot))
            }

            /// The id a keyed request makes in `slot`, the same for every retry: time-ordered by
            /// `at_ms` (when the key was first used), unique by `seed` (the key's digest).
            pub fn derived_in(slot: Slot, at_ms: i64, seed: &[u8; 32]) -> Self {
                Self(uuid_derived(slot, at_ms, seed))
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

            /// The slot this entity lives in.
            pub fn slot(&self) -> Slot {
                slot_of_id(self.as_bytes())
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
    /// A user account; its slot is [`Slot::of_text`] of the normalised email.
    UserId
);
typed_id!(
    /// A ticket for sale; its slot is chosen by the node that creates it.
    TicketId
);
typed_id!(
    /// An order (a reservation of one ticket by one buyer); its slot is its ticket's.
    OrderId
);
typed_id!(
    /// A recorded payment; its slot is its order's.
    PaymentId
);

#[cfg(test)]
#[path = "ids_test.rs"]
mod tests;
