//! The per-node, per-kind actor registry: the one place that activates actors, and the guard
//! that there is at most one live actor per id.
//!
//! * **Activation** happens under the id's map-shard lock: two requests for an inactive id
//!   race on the same lock, and the loser finds the winner's address.
//! * **Passivation** is decided under the same lock, and only when the actor's mailbox counter
//!   is zero: a request either reached the old actor first (so it is not idle) or finds the slot
//!   empty and activates a fresh actor that reloads from disk. The registry never hands out
//!   `Addr` clones, so once the slot is removed no sender is left and the supervisor lets the
//!   stopped actor go instead of restarting it.
//! * **Placement**: actors run on a pool of arbiters (one per core), chosen by the id's slot.
//! * **Delivery**: every command goes through [`Registry::ask`] or [`Registry::tell`], which
//!   count it under the slot lock, trace it and bound the wait once for every kind.

use super::entity::{Asked, Deliver, EntityCommand};
use super::{ActorStats, EntityError};
use crate::deadline::Deadline;
use crate::domain::Slot;
use crate::observability::Metrics;
use crate::storage::Store;
use actix::prelude::*;
use dashmap::DashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tracing::Instrument;

/// An actor kind the registry can activate.
pub trait Activatable: Actor<Context = Context<Self>> + Supervised {
    type Id: Copy
        + Eq
        + Hash
        + Display
        + std::fmt::Debug
        + Send
        + Sync
        + serde::Serialize
        + serde::de::DeserializeOwned
        + 'static;
    /// Shared dependencies handed to every new actor of this kind.
    type Deps: Clone + Send + Sync + 'static;
    /// `ticket` or `order`: the kind as the admin API names it.
    const KIND: &'static str;

    fn slot(id: &Self::Id) -> Slot;
    /// Where the entity's record lives on disk.
    fn record_key(id: &Self::Id) -> Vec<u8>;
    /// The store that holds it.
    fn store(deps: &Self::Deps) -> &Store;
    fn activate(deps: Self::Deps, link: RegistryLink<Self>) -> Self;
}

/// Stops an actor whose shard is no longer served here ([`Registry::evict`]).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Evict;

struct Entry<A: Activatable> {
    addr: Addr<A>,
    stats: Arc<ActorStats>,
}

pub struct RegistryInner<A: Activatable> {
    slots: DashMap<A::Id, Entry<A>>,
    arbiters: Vec<ArbiterHandle>,
    deps: A::Deps,
    generations: AtomicU64,
    ask_timeout: Duration,
    /// Asks queued for one actor beyond which a new ask is refused.
    mailbox_limit: usize,
    metrics: Metrics,
}

/// What an actor keeps of its registry: enough to ask to be passivated, not enough to keep the
/// registry alive.
pub struct RegistryLink<A: Activatable> {
    registry: Weak<RegistryInner<A>>,
    pub id: A::Id,
    pub stats: Arc<ActorStats>,
}

impl<A: Activatable> RegistryLink<A> {
    /// Removes this actor's slot if it is still this actor's and no message is pending.
    /// `true` means the actor must stop now: nobody can reach it any more.
    pub fn try_passivate(&self) -> bool {
        let Some(registry) = self.registry.upgrade() else {
            return true;
        };
        let mine = registry.slots.get(&self.id).is_some_and(|slot| Arc::ptr_eq(&slot.stats, &self.stats));
        if !mine {
            // Evicted (its shard went elsewhere) or replaced: nobody reaches it any more.
            return true;
        }
        let removed = registry
            .slots
            .remove_if(&self.id, |_, slot| Arc::ptr_eq(&slot.stats, &self.stats) && self.stats.mailbox_depth() == 0)
            .is_some();
        if removed {
            registry.metrics.passivated(A::KIND);
        }
        removed
    }

    pub fn metrics(&self) -> Option<Metrics> {
        self.registry.upgrade().map(|r| r.metrics.clone())
    }
}

/// A cheap handle to a registry.
pub struct Registry<A: Activatable>(Arc<RegistryInner<A>>);

impl<A: Activatable> Clone for Registry<A> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

/// One live actor as the admin API shows it.
#[derive(Clone, Debug)]
pub struct LiveActor {
    pub id: String,
    pub stats: Arc<ActorStats>,
}

impl<A: Activatable> Registry<A> {
    pub fn new(
        arbiters: Vec<ArbiterHandle>,
        deps: A::Deps,
        ask_timeout: Duration,
        mailbox_limit: usize,
        metrics: Metrics,
    ) -> Self {
        Self(Arc::new(RegistryInner {
            slots: DashMap::new(),
            arbiters,
            deps,
            generations: AtomicU64::new(0),
            ask_timeout,
            mailbox_limit,
            metrics,
        }))
    }

    /// How long an ask waits by default (`actors.ask_timeout_ms`).
    pub fn ask_timeout(&self) -> Duration {
        self.0.ask_timeout
    }

    /// Sends `command` to the actor for `id`, activating it if needed, and waits for the reply
    /// until `deadline`. A command that needs an existing entity is answered "not found" without
    /// activating an actor for an unknown id. The outcome is the truth: [`EntityError::Unavailable`]
    /// (503) only when the command did not run and never will, [`EntityError::NoReply`] (504)
    /// when it started but its reply did not come in time.
    pub async fn ask<C>(&self, id: A::Id, command: C, deadline: Deadline) -> Result<C::Reply, EntityError>
    where
        C: EntityCommand<Actor = A>,
        A: Handler<Deliver<C>>,
    {
        let name = C::NAME;
        if C::needs_existing() && !self.is_live(&id) && !A::store(&self.0.deps).contains(&A::record_key(&id))? {
            return Err(crate::domain::DomainError::NotFound.into());
        }
        // Bounded work: a full mailbox refuses at once rather than queueing without limit.
        let limit = self.0.mailbox_limit as i64;
        let asked = Asked::until(deadline);
        let message =
            |addr: &Addr<A>, stats: &Arc<ActorStats>| addr.send(Deliver::<C>::asked(command, stats, asked.clone()));
        let Some(request) = self.enqueue(id, |depth| depth < limit, message) else {
            self.0.metrics.shed("mailbox");
            return Err(EntityError::Overloaded);
        };
        let span = tracing::info_span!("actor", kind = A::KIND, id = %id, message = name);
        let started = std::time::Instant::now();
        let until = tokio::time::Instant::from_std(deadline.instant());
        match tokio::time::timeout_at(until, request).instrument(span.clone()).await {
            Ok(Ok(reply)) => {
                let outcome = if reply.is_ok() { "ok" } else { "refused" };
                tracing::debug!(parent: &span, outcome, took_us = started.elapsed().as_micros() as u64, "actor replied");
                reply
            }
            Err(_) | Ok(Err(MailboxError::Timeout)) => {
                let ran = !asked.give_up();
                tracing::warn!(parent: &span, ran, "actor did not reply in time");
                Err(if ran { EntityError::NoReply } else { EntityError::Unavailable })
            }
            Ok(Err(MailboxError::Closed)) => {
                // The actor died without being restarted; forget it so the next call reactivates.
                self.0.slots.remove_if(&id, |_, slot| !slot.addr.connected());
                Err(if asked.give_up() { EntityError::Unavailable } else { EntityError::NoReply })
            }
        }
    }

    /// Sends `command` without waiting for the reply (timers, best-effort retries).
    pub fn tell<C>(&self, id: A::Id, command: C)
    where
        C: EntityCommand<Actor = A>,
        A: Handler<Deliver<C>>,
    {
        // Timers and retries are never refused: they are bounded by the work they finish.
        self.enqueue(id, |_| true, |addr, stats| addr.do_send(Deliver::<C>::new(command, stats)));
    }

    /// Runs `send` against the actor for `id` (activating it if needed) under its slot's lock,
    /// with the message counted, if `admit` accepts the number already queued. Counting and
    /// sending together is what passivation relies on.
    fn enqueue<T>(
        &self,
        id: A::Id,
        admit: impl FnOnce(i64) -> bool,
        send: impl FnOnce(&Addr<A>, &Arc<ActorStats>) -> T,
    ) -> Option<T> {
        let slot = self.0.slots.entry(id).or_insert_with(|| self.activate(id));
        if !admit(slot.stats.mailbox_depth()) {
            return None;
        }
        Some(send(&slot.addr, &slot.stats))
    }

    fn activate(&self, id: A::Id) -> Entry<A> {
        let generation = self.0.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let stats = Arc::new(ActorStats::new(generation));
        let link = RegistryLink { registry: Arc::downgrade(&self.0), id, stats: Arc::clone(&stats) };
        let deps = self.0.deps.clone();
        let arbiter = &self.0.arbiters[A::slot(&id).0 as usize % self.0.arbiters.len()];
        let addr = Supervisor::start_in_arbiter(arbiter, move |_| A::activate(deps, link));
        self.0.metrics.activated(A::KIND);
        Entry { addr, stats }
    }

    /// Stops every live actor of `slots` at once (their shard is no longer served here): the
    /// next activation, here or on another node, reads the entity from its copy, and no timer
    /// of a stopped actor writes again.
    pub fn evict(&self, slots: std::ops::Range<u32>)
    where
        A: Handler<Evict>,
    {
        let ids: Vec<A::Id> =
            self.0.slots.iter().filter(|e| slots.contains(&u32::from(A::slot(e.key()).0))).map(|e| *e.key()).collect();
        for id in ids {
            if let Some((_, entry)) = self.0.slots.remove(&id) {
                entry.addr.do_send(Evict);
                self.0.metrics.passivated(A::KIND);
            }
        }
    }

    pub fn is_live(&self, id: &A::Id) -> bool {
        self.0.slots.contains_key(id)
    }

    pub fn live_count(&self) -> usize {
        self.0.slots.len()
    }

    pub fn stats(&self, id: &A::Id) -> Option<Arc<ActorStats>> {
        self.0.slots.get(id).map(|s| Arc::clone(&s.stats))
    }

    /// A snapshot of every live actor, read from the shared stats: no actor mailbox is touched.
    pub fn live(&self) -> Vec<LiveActor> {
        self.0
            .slots
            .iter()
            .map(|e| LiveActor { id: e.key().to_string(), stats: Arc::clone(&e.value().stats) })
            .collect()
    }

    /// How many activations this registry has made (each live actor is one of them).
    pub fn activations(&self) -> u64 {
        self.0.generations.load(Ordering::Relaxed)
    }

    /// Messages queued across every live actor (read from the shared counters).
    pub fn mailbox_total(&self) -> i64 {
        self.0.slots.iter().map(|e| e.value().stats.mailbox_depth()).sum()
    }
}
