//! The one way an actor changes its entity: run a pure domain rule on a copy of the state,
//! persist the new state with its events in one flushed batch, and only then adopt the new state
//! and reply. The step is atomic in the mailbox (`AtomicResponse`/`ctx.wait`), so no other
//! message of the same actor interleaves with the write: mailbox order is version order.
//!
//! A panic in a rule is caught here, answered with [`EntityError::Panicked`], and turned into a
//! stop; the actor's `Supervisor` then restarts it, which reloads the state from disk.

use super::{ActorStats, EntityError, RegistryLink};
use crate::domain::{DomainError, Event};
use crate::storage::{Record, Store, WriteBatch};
use actix::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// What the actor knows of its entity.
pub enum Loaded<T> {
    /// Not loaded yet (just activated or restarted).
    Pending,
    /// Loaded; `None` when the entity does not exist (yet).
    Ready(Option<T>),
    /// The stored record could not be decoded; every call answers a storage error.
    Failed(String),
}

/// The entity state of a durable actor, with where it lives on disk.
pub struct DurableCell<T> {
    pub key: Vec<u8>,
    pub state: Loaded<T>,
    pub store: Store,
    pub stats: Arc<ActorStats>,
}

/// A record encoded for a batch, or why it could not be.
pub type Encoded = Result<Vec<u8>, String>;

/// Side effects a rule asks for besides the new state. Every key must be in the entity's own
/// slot: a batch never spans two slots.
#[derive(Default)]
pub struct Changes {
    pub events: Vec<Event>,
    /// Extra records written in the same batch (indexes, deadlines).
    pub puts: Vec<(Vec<u8>, Encoded)>,
    pub removes: Vec<Vec<u8>>,
}

impl Changes {
    pub fn event(&mut self, e: Event) {
        self.events.push(e);
    }
    pub fn put<R: Record>(&mut self, key: Vec<u8>, value: &R) {
        self.puts.push((key, Store::encode(value).map_err(|e| e.to_string())));
    }
    pub fn remove(&mut self, key: Vec<u8>) {
        self.removes.push(key);
    }
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.puts.is_empty() && self.removes.is_empty()
    }
}

/// The reply of an actor step.
pub type Step<A, R> = ResponseActFuture<A, Result<R, EntityError>>;

pub fn done<A: Actor, R: 'static>(r: Result<R, EntityError>) -> Step<A, R> {
    Box::pin(actix::fut::ready(r))
}

impl<T: Record + Clone + PartialEq + Send + 'static> DurableCell<T> {
    pub fn new<A: super::Activatable>(store: Store, link: &RegistryLink<A>) -> Self {
        Self { key: A::record_key(&link.id), state: Loaded::Pending, store, stats: Arc::clone(&link.stats) }
    }

    /// (Re)loads the entity from disk.
    pub fn load(&mut self) {
        self.state = match self.store.get::<T>(&self.key) {
            Ok(state) => Loaded::Ready(state),
            Err(e) => {
                tracing::error!(error = %e, "actor state cannot be loaded");
                Loaded::Failed(e.to_string())
            }
        };
    }

    pub fn current(&self) -> Result<Option<&T>, EntityError> {
        match &self.state {
            Loaded::Ready(s) => Ok(s.as_ref()),
            Loaded::Failed(e) => Err(EntityError::Storage(e.clone())),
            Loaded::Pending => Err(EntityError::Unavailable),
        }
    }
}

/// An actor that owns one durable entity.
pub trait Durable: super::Activatable {
    type State: Record + Clone + PartialEq + Send + 'static;

    fn cell(&mut self) -> &mut DurableCell<Self::State>;

    fn link(&self) -> &RegistryLink<Self>;

    /// The version the admin API shows for a state.
    fn version_of(state: &Self::State) -> u64;

    /// Called after a change was persisted and adopted (to re-arm timers, say).
    fn committed(&mut self, _ctx: &mut Context<Self>) {}

    /// Applies `rule` to a copy of the state; persists and adopts the result if it changed.
    fn change<R, F>(&mut self, rule: F) -> Step<Self, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Option<Self::State>, &mut Changes) -> Result<R, DomainError>,
    {
        let cell = self.cell();
        let mut next = match cell.current() {
            Ok(state) => state.cloned(),
            Err(e) => return done(Err(e)),
        };
        let before = next.clone();
        let mut changes = Changes::default();
        let reply = match catch_unwind(AssertUnwindSafe(|| rule(&mut next, &mut changes))) {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => return done(Err(e.into())),
            Err(_) => {
                tracing::error!("actor rule panicked; stopping for a supervised restart");
                // Stop from inside the reply's own wait future: the reply goes out in the same
                // step, and no other message can start in between (stopping right here would let
                // the supervisor's restart drop this reply, and a later stop could drop another
                // message's).
                return Box::pin(actix::fut::ready(()).map(|_, _, ctx: &mut Context<Self>| {
                    ctx.stop();
                    Err(EntityError::Panicked)
                }));
            }
        };
        if next == before && changes.is_empty() {
            return done(Ok(reply));
        }
        let store = cell.store.clone();
        let key = cell.key.clone();
        let batch = build_batch(&store, key, next.as_ref(), changes);
        let write = async move {
            match batch {
                Ok(batch) => Ok(store.commit(batch).await?),
                Err(e) => Err(e),
            }
        };
        Box::pin(write.into_actor(self).map(move |written, act, ctx| match written {
            Ok(()) => {
                let cell = act.cell();
                cell.stats.set_version(next.as_ref().map(Self::version_of));
                cell.state = Loaded::Ready(next);
                act.committed(ctx);
                Ok(reply)
            }
            Err(e) => {
                // The in-memory copy may now differ from disk: restart to reload.
                tracing::error!(error = %e, "actor write failed; restarting to reload state");
                ctx.stop();
                Err(e)
            }
        }))
    }
}

fn build_batch<T: Record>(
    store: &Store,
    key: Vec<u8>,
    state: Option<&T>,
    changes: Changes,
) -> Result<WriteBatch, EntityError> {
    let mut batch = WriteBatch::default();
    match state {
        Some(state) => batch.put(key, state)?,
        None => batch.remove(key),
    }
    let slot = batch.slot().unwrap_or(crate::domain::Slot(0));
    for (k, v) in changes.puts {
        batch.put_raw(k, v.map_err(EntityError::Storage)?);
    }
    for k in changes.removes {
        batch.remove(k);
    }
    for event in &changes.events {
        store.push_event(&mut batch, slot, event)?;
    }
    Ok(batch)
}

/// The common `started` of a durable actor: load the state, publish its version, and arm the
/// idle check that passivates it.
pub fn start<A: Durable>(act: &mut A, ctx: &mut Context<A>, idle: std::time::Duration) {
    // Unbounded mailbox: a full bounded one makes `send` hold the message outside the mailbox,
    // where an ask timeout can drop it uncounted. Callers are bounded by the ask timeout.
    ctx.set_mailbox_capacity(0);
    let cell = act.cell();
    cell.load();
    if let Ok(state) = cell.current() {
        let version = state.map(A::version_of);
        cell.stats.set_version(version);
    }
    passivate_when_idle(ctx, idle);
}

/// The common `Supervised::restarting`: forget the in-memory state so that `started` reloads
/// it from disk, and count the restart.
pub fn restart<A: Durable>(act: &mut A) {
    let cell = act.cell();
    cell.state = Loaded::Pending;
    cell.stats.restarted();
    if let Some(m) = act.link().metrics() {
        m.restarted(A::KIND);
    }
}

/// Checks for idleness periodically and passivates once idle for `idle`.
fn passivate_when_idle<A: Durable>(ctx: &mut Context<A>, idle: std::time::Duration) {
    let period = (idle / 4).clamp(std::time::Duration::from_millis(20), std::time::Duration::from_secs(5));
    let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    ctx.run_interval(period, move |act, ctx| {
        if crate::domain::now_ms() - act.cell().stats.last_message_ms() >= idle_ms {
            passivate_now(act, ctx);
        }
    });
}

/// The step of a passivation command: decided from inside the reply's own wait future, so the
/// reply goes out before the actor stops (stopping first would drop it).
pub fn passivate_step<A: Durable>() -> Step<A, bool> {
    Box::pin(actix::fut::ready(()).map(|_, act: &mut A, ctx: &mut Context<A>| Ok(passivate_now(act, ctx))))
}

/// Passivates if the registry agrees (no message pending); `true` if the actor is stopping.
pub fn passivate_now<A: Durable>(act: &mut A, ctx: &mut Context<A>) -> bool {
    let stopping = act.link().try_passivate();
    if stopping {
        ctx.stop();
    }
    stopping
}
