//! The actor system: one actor per ticket and per order, each the only writer of its entity.
//!
//! * [`registry`]: activation on demand, at most one live actor per id, passivation, placement.
//! * [`durable`]: the shared "apply a domain rule, persist, then reply" step, with panic
//!   containment and supervised restarts that reload state from disk.
//! * [`ticket`]: the ticket actor.
//! * [`order`]: the order actor, the no-orphan placement protocol and payment.
//! * [`deadlines`]: the durable deadline wheel that re-arms expiry across passivation and restarts.

pub mod deadlines;
pub mod durable;
pub mod order;
pub mod registry;
pub mod ticket;

pub use durable::{Changes, Durable, DurableCell};
pub use registry::{Activatable, LiveActor, Registry, RegistryLink};

use crate::domain::DomainError;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Why an actor call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActorError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The state could not be read or written; the cause was logged.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The handler panicked; the actor is being restarted by its supervisor.
    #[error("actor restarted after a panic")]
    Panicked,
    /// No reply in time, or the actor is gone (503, retry).
    #[error("actor unavailable")]
    Unavailable,
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

    pub(crate) fn message_started(&self) {
        self.mailbox.fetch_sub(1, Ordering::SeqCst);
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
