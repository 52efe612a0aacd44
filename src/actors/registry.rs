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
//! * **Bounded**: past `max_live` actors of the kind, each activation asks the least recently
//!   used idle actor to passivate ([`Shed`]), found by a clock over the activation order (an
//!   actor used since it was queued gets a second chance at the back).

use super::entity::{Asked, Deliver, EntityCommand};
use super::{ActorStats, EntityError};
use crate::deadline::Deadline;
use crate::domain::Slot;
use crate::observability::telemetry;
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
pub trait Activatable: Actor<Context = Context<Self>> + Supervised + Handler<Shed> {
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

/// Asks an actor to passivate now if it can (nothing queued, its last write on disk): the
/// registry is past `max_live`. One that cannot goes back in the queue.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Shed;

/// What a registry lets its actors take (`actors.*` settings).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long an ask waits by default.
    pub ask_timeout: Duration,
    /// Asks queued for one actor beyond which a new ask is refused.
    pub mailbox_limit: usize,
    /// Live actors past which the least recently used idle one is shed at each activation.
    pub max_live: usize,
    /// Idleness after which an actor whose entity is settled for good passivates.
    pub settled_idle: Duration,
}

impl Limits {
    pub fn of(settings: &crate::settings::ActorSettings) -> Self {
        Self {
            ask_timeout: Duration::from_millis(settings.ask_timeout_ms),
            mailbox_limit: settings.mailbox_limit,
            max_live: settings.max_live,
            settled_idle: Duration::from_secs_f64(settings.settled_idle_seconds),
        }
    }
}

/// Actors sought per activation past `max_live` (a clock hand's longest sweep at once).
const SHED_SCAN: usize = 64;

struct Entry<A: Activatable> {
    addr: Addr<A>,
    stats: Arc<ActorStats>,
}

/// A live actor in the clock: its id, its stats (which activation it is) and when it was queued.
type Queued<A> = (<A as Activatable>::Id, Arc<ActorStats>, i64);

pub struct RegistryInner<A: Activatable> {
    slots: DashMap<A::Id, Entry<A>>,
    arbiters: Vec<ArbiterHandle>,
    deps: A::Deps,
    generations: AtomicU64,
    limits: Limits,
    /// Live actors in activation order (the clock [`Shed`] sweeps), with when each was queued;
    /// entries of actors gone since are dropped as the hand passes them or on compaction.
    clock: parking_lot::Mutex<std::collections::VecDeque<Queued<A>>>,
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

    /// How long this actor may idle once its entity is settled for good.
    pub fn settled_idle(&self) -> Option<Duration> {
        self.registry.upgrade().map(|r| r.limits.settled_idle)
    }

    /// Puts this actor back in the clock (it was shed but could not passivate yet).
    pub fn requeue(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.clock.lock().push_back((self.id, Arc::clone(&self.stats), crate::domain::now_ms()));
        }
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
    pub fn new(arbiters: Vec<ArbiterHandle>, deps: A::Deps, limits: Limits, metrics: Metrics) -> Self {
        Self(Arc::new(RegistryInner {
            slots: DashMap::new(),
            arbiters,
            deps,
            generations: AtomicU64::new(0),
            limits,
            clock: Default::default(),
            metrics,
        }))
    }

    /// How long an ask waits by default (`actors.ask_timeout_ms`).
    pub fn ask_timeout(&self) -> Duration {
        self.0.limits.ask_timeout
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
        let limit = self.0.limits.mailbox_limit as i64;
        let span = tracing::info_span!("actor", kind = A::KIND, id = %id, message = name);
        // The actor's own spans are children of this one only when they are exported.
        let parent = if telemetry::enabled() { span.clone() } else { tracing::Span::none() };
        let asked = Asked::until(deadline, parent);
        let message =
            |addr: &Addr<A>, stats: &Arc<ActorStats>| addr.send(Deliver::<C>::asked(command, stats, asked.clone()));
        let Some(request) = self.enqueue(id, |depth| depth < limit, message) else {
            self.0.metrics.shed("mailbox");
            return Err(EntityError::Overloaded);
        };
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
        let mut activated = None;
        let sent = {
            let slot = self.0.slots.entry(id).or_insert_with(|| {
                let entry = self.activate(id);
                activated = Some(Arc::clone(&entry.stats));
                entry
            });
            admit(slot.stats.mailbox_depth()).then(|| send(&slot.addr, &slot.stats))
        };
        // Outside the slot's lock: the clock is never taken while a slot lock is held.
        if let Some(stats) = activated {
            self.0.clock.lock().push_back((id, stats, crate::domain::now_ms()));
            self.shed();
        }
        sent
    }

    /// Past `max_live`: asks the least recently used idle actor to passivate, one per
    /// activation (so a burst sheds as many as it activates, not more while earlier requests
    /// are on their way). The hand moves over the activation order: an actor gone is dropped,
    /// one used since it was queued goes to the back.
    fn shed(&self) {
        if self.0.slots.len() <= self.0.limits.max_live {
            self.compact();
            return;
        }
        for _ in 0..SHED_SCAN {
            let Some((id, stats, queued_ms)) = self.0.clock.lock().pop_front() else { break };
            // Sent under the slot's read lock: no copy of the address outlives the slot (a
            // copy would let the supervisor restart an actor that passivated meanwhile).
            let sent = match self.0.slots.get(&id) {
                Some(e) if Arc::ptr_eq(&e.stats, &stats) => {
                    let used = stats.last_message_ms() > queued_ms || stats.mailbox_depth() > 0;
                    if !used {
                        e.addr.do_send(Shed);
                    }
                    Some(!used)
                }
                _ => None,
            };
            match sent {
                Some(true) => break,
                Some(false) => self.0.clock.lock().push_back((id, stats, crate::domain::now_ms())),
                None => {}
            }
        }
    }

    /// Drops the clock's entries of actors gone (passivated while idle, evicted), once they
    /// outnumber the live ones: the clock stays within twice the live actors.
    fn compact(&self) {
        let live = self.0.slots.len();
        let queued = self.0.clock.lock().len();
        if queued <= 2 * live + 1024 {
            return;
        }
        let taken = std::mem::take(&mut *self.0.clock.lock());
        let kept: std::collections::VecDeque<_> = taken
            .into_iter()
            .filter(|(id, stats, _)| self.0.slots.get(id).is_some_and(|e| Arc::ptr_eq(&e.stats, stats)))
            .collect();
        let mut clock = self.0.clock.lock();
        // Queued meanwhile: after what was there before.
        let newer = std::mem::replace(&mut *clock, kept);
        clock.extend(newer);
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
