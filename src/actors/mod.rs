//! The actor system: one actor per ticket and per order, each the only writer of its entity.
//!
//! * [`entity`]: what every entity actor shares: commands as data, each its own type with its
//!   own reply type ([`entity::EntityCommand`]), and one dispatch path, atomic in the mailbox.
//! * [`wire`]: the versioned encoding of commands and replies for crossing a process boundary.
//! * [`registry`]: activation on demand, at most one live actor per id, passivation, placement
//!   by slot.
//! * [`durable`]: the shared "apply a domain rule, persist, then reply" step, with panic
//!   containment and supervised restarts that reload state from disk.
//! * [`ticket`]: the ticket actor, which grants reservations and creates their orders.
//! * [`order`]: the order actor: expiry, cancellation, payment.
//! * [`deadlines`]: the node's deadline wheel over the durable index of unfinished work.
//! * [`faults`]: test-only crash points.

pub mod deadlines;
pub mod durable;
pub mod entity;
pub mod faults;
pub mod order;
pub mod registry;
pub mod ticket;
pub mod wire;

pub use durable::{Changes, Durable, DurableCell};
pub use entity::Entity;
pub use registry::{Activatable, LiveActor, Registry, RegistryLink};

use crate::domain::DomainError;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Why a command to an entity failed. Typed and serialisable: it crosses the wire as a reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum EntityError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The state could not be read or written; the cause was logged.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The handler panicked; the actor is being restarted by its supervisor.
    #[error("actor restarted after a panic")]
    Panicked,
    /// The command did not run and will not (its caller gave up first, the actor is gone, the
    /// shard is not served here): 503, a retry is safe.
    #[error("entity unavailable")]
    Unavailable,
    /// The actor's mailbox is full: refused at once, nothing queued (503, retry).
    #[error("entity overloaded")]
    Overloaded,
    /// The command was sent (to its actor, or to the owning node) and started or may have, but
    /// no reply came in time: it may have run (504).
    #[error("no reply in time: it may have run")]
    NoReply,
    /// A command or reply could not be encoded or decoded for the wire.
    #[error("wire encoding failed: {0}")]
    Wire(String),
    /// The disk is full: the command's write was refused before it was queued, so nothing
    /// changed. (Last: forwarded replies name variants by position.)
    #[error("storage full")]
    StorageFull,
}

impl From<crate::storage::StorageError> for EntityError {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::Full => Self::StorageFull,
            // Its shard is not served here now: refused before anything was queued.
            crate::storage::StorageError::NotServed => Self::Unavailable,
            // Written here but not confirmed by the shard's log: it may or may not take effect.
            crate::storage::StorageError::Unreplicated => Self::NoReply,
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<wire::WireError> for EntityError {
    fn from(e: wire::WireError) -> Self {
        Self::Wire(e.to_string())
    }
}

/// Live counters of one actor, shared between the actor and the registry so that inspection
/// reads atomics instead of messaging the actor.
#[derive(Debug)]
pub struct ActorStats {
    pub generation: u64,
    mailbox: AtomicI64,
    handled: AtomicU64,
    last_message_ms: AtomicI64,
    /// State version, or -1 while the entity does not exist.
    version: AtomicI64,
    /// Pending timer deadline (ms since epoch), or 0 for none.
    deadline_ms: AtomicI64,
    restarts: AtomicU64,
    pub activated_at_ms: i64,
}

impl ActorStats {
    pub fn new(generation: u64) -> Self {
        let now = crate::domain::now_ms();
        Self {
            generation,
            mailbox: AtomicI64::new(0),
            handled: AtomicU64::new(0),
            last_message_ms: AtomicI64::new(now),
            version: AtomicI64::new(-1),
            deadline_ms: AtomicI64::new(0),
            restarts: AtomicU64::new(0),
            activated_at_ms: now,
        }
    }

    pub(crate) fn message_queued(&self) {
        self.mailbox.fetch_add(1, Ordering::SeqCst);
    }

    /// A counted message left the mailbox: started, or dropped unrun (its asker gave up).
    pub(crate) fn message_left(&self) {
        self.mailbox.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn message_started(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.last_message_ms.store(crate::domain::now_ms(), Ordering::Relaxed);
    }

    pub fn mailbox_depth(&self) -> i64 {
        self.mailbox.load(Ordering::SeqCst).max(0)
    }
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }
    pub fn last_message_ms(&self) -> i64 {
        self.last_message_ms.load(Ordering::Relaxed)
    }
    pub fn version(&self) -> Option<u64> {
        u64::try_from(self.version.load(Ordering::Relaxed)).ok()
    }
    pub(crate) fn set_version(&self, v: Option<u64>) {
        self.version.store(v.map_or(-1, |v| v as i64), Ordering::Relaxed);
    }
    pub fn deadline_ms(&self) -> Option<i64> {
        Some(self.deadline_ms.load(Ordering::Relaxed)).filter(|d| *d > 0)
    }
    pub(crate) fn set_deadline(&self, at: Option<i64>) {
        self.deadline_ms.store(at.unwrap_or(0), Ordering::Relaxed);
    }
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }
}
