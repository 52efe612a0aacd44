//! The one way an actor changes its entity: run a pure domain rule on a copy of the state and
//! persist the new state with its events in one batch. The step is atomic in the mailbox
//! (`ctx.wait`), so no other message of the same actor interleaves with it: mailbox order is
//! version order (the storage writer applies batches in submission order).
//!
//! Two ways to wait for the disk:
//!
//! * [`Durable::change`] adopts the new state once it is on disk: for steps that go on to an
//!   effect outside the actor (asking another actor, charging a card).
//! * [`Durable::change_gated`] adopts it at once and lets the next message run, while the
//!   **output gate** holds every reply back until the flush that covers the last write the
//!   actor made (`entity::deliver`): a client never sees a state that a crash could take
//!   back, yet one actor's throughput is no longer one flush per message.
//!
//! A panic in a rule is caught here, answered with [`EntityError::Panicked`], and turned into a
//! stop; the actor's `Supervisor` then restarts it, which reloads the state from disk.

use super::{ActorStats, EntityError, RegistryLink};
use crate::domain::{DomainError, Event};
use crate::observability::telemetry;
use crate::storage::{Record, Store, WriteBatch};
use actix::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use tracing::Instrument;

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
    /// The writer's number of this actor's last write: replies wait until it is on disk.
    last_write: u64,
    /// Its last queued write of any kind (bookkeeping too): the disk holds the state the actor
    /// holds once this is on disk, so passivation and a restart's reload wait for it.
    last_queued: u64,
}

/// What a reply waits for: the flush covering an actor's last write. If sled failed, no later
/// write passes any more (the store is fail-stop), so a state in memory that never reached the
/// disk is never reported; an actor whose writes were all flushed before still answers.
pub struct Gate {
    store: Store,
    seq: u64,
}

impl Gate {
    pub async fn passed(self) -> Result<(), EntityError> {
        self.store.durable(self.seq).await?;
        linked_to_flush(&self.store, self.seq);
        Ok(())
    }
}

/// With telemetry on: links the current span (a wait for write `seq`) to the flush that made
/// it durable, which served many writes and is in a trace of its own.
fn linked_to_flush(store: &Store, seq: u64) {
    if telemetry::enabled() {
        if let Some(flush) = store.flush_of(seq) {
            telemetry::link(&tracing::Span::current(), &flush);
        }
    }
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
        Self {
            key: A::record_key(&link.id),
            state: Loaded::Pending,
            store,
            stats: Arc::clone(&link.stats),
            last_write: 0,
            last_queued: 0,
        }
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

    /// The output gate: what a reply must wait for, if the actor's last write is not on disk.
    pub fn gate(&self) -> Option<Gate> {
        self.wait_for(self.last_write)
    }

    /// The output gate of a step that began when the actor's last write was `before`. A
    /// `traced` step that wrote always gets its gate, on disk already or not: its reply's trace
    /// then shows the wait for the flush (of nothing, when the flush came first), linked to
    /// that flush whoever was quicker.
    pub fn gate_of_step(&self, before: u64, traced: bool) -> Option<Gate> {
        if traced && self.last_write > before {
            return Some(Gate { store: self.store.clone(), seq: self.last_write });
        }
        self.gate()
    }

    /// The number of the actor's last write held for replies (see [`gate_of_step`](Self::gate_of_step)).
    pub fn last_write(&self) -> u64 {
        self.last_write
    }

    /// What must be on disk before the stored record equals the actor's state.
    pub fn settled(&self) -> Option<Gate> {
        self.wait_for(self.last_queued)
    }

    fn wait_for(&self, seq: u64) -> Option<Gate> {
        (!self.store.is_durable(seq)).then(|| Gate { store: self.store.clone(), seq })
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

    /// Called once the state is loaded at (re)start, which may wait for a queued write.
    fn loaded(&mut self, _ctx: &mut Context<Self>) {}

    /// Whether nothing more will happen to an entity in `state` unless a client asks (an order
    /// cancelled and released, or complete): its actor passivates after `settled_idle`.
    fn settled_for_good(_state: &Self::State) -> bool {
        false
    }

    /// Applies `rule` to a copy of the state; persists the result if it changed, and adopts it
    /// once it is on disk.
    fn change<R, F>(&mut self, rule: F) -> Step<Self, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Option<Self::State>, &mut Changes) -> Result<R, DomainError>,
    {
        let (next, reply, batch) = match run_rule(self.cell(), rule) {
            Ruled::Done(step) => return step,
            Ruled::Write { next, reply, batch } => (next, reply, batch),
        };
        let store = self.cell().store.clone();
        // A child of the actor's step (entered while the rule runs): for traces only.
        let commit = tracing::debug_span!("storage commit");
        let write = async move {
            let seq = store.write(batch)?.seq;
            Gate { store, seq }.passed().await
        }
        .instrument(commit);
        Box::pin(write.into_actor(self).map(move |written, act, ctx| match written {
            Ok(()) => {
                adopt(act, ctx, next);
                Ok(reply)
            }
            // Refused before it was queued (a full disk): memory still equals the disk.
            Err(EntityError::StorageFull) => Err(EntityError::StorageFull),
            Err(e) => {
                // The in-memory copy may now differ from disk: restart to reload.
                tracing::error!(error = %e, "actor write failed; restarting to reload state");
                ctx.stop();
                Err(e)
            }
        }))
    }

    /// Like [`change`](Self::change), but adopts the new state as soon as the write is queued:
    /// the next message runs at once, and the output gate holds every reply until the write
    /// is on disk. Only for steps whose one effect is their reply.
    fn change_gated<R, F>(&mut self, rule: F) -> Step<Self, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Option<Self::State>, &mut Changes) -> Result<R, DomainError>,
    {
        self.change_queued(rule, true)
    }

    /// Like [`change_gated`](Self::change_gated), for bookkeeping that no reply reports and
    /// that the node redoes after a crash (marking a finished release): replies do not wait
    /// for it. Its events, if any, are still published only once it is on disk.
    fn change_bookkeeping<R, F>(&mut self, rule: F) -> Step<Self, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Option<Self::State>, &mut Changes) -> Result<R, DomainError>,
    {
        self.change_queued(rule, false)
    }

    /// Queues the write and adopts the state at once; `hold_replies`: the output gate waits for it.
    fn change_queued<R, F>(&mut self, rule: F, hold_replies: bool) -> Step<Self, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Option<Self::State>, &mut Changes) -> Result<R, DomainError>,
    {
        let (next, reply, batch) = match run_rule(self.cell(), rule) {
            Ruled::Done(step) => return step,
            Ruled::Write { next, reply, batch } => (next, reply, batch),
        };
        let queued = {
            // For traces: the write queued for the group commit (the reply's `flush wait`
            // for it comes later, at the output gate).
            let _commit = tracing::debug_span!("storage commit").entered();
            self.cell().store.write(batch)
        };
        let pending = match queued {
            Ok(pending) => pending,
            Err(e) => return done(Err(e.into())),
        };
        // Its events stay in flight until the writer thread flushes them.
        self.cell().last_queued = pending.seq;
        if hold_replies {
            self.cell().last_write = pending.seq;
        }
        Box::pin(actix::fut::ready(()).map(move |_, act: &mut Self, ctx| {
            adopt(act, ctx, next);
            Ok(reply)
        }))
    }
}

/// What running a rule came to: an answer with nothing to write, or a batch to write.
enum Ruled<A: Actor, S, R> {
    Done(Step<A, R>),
    Write { next: Option<S>, reply: R, batch: WriteBatch },
}

/// Runs `rule` on a copy of the state, catching a panic (answered, then a supervised restart).
fn run_rule<A, S, R, F>(cell: &mut DurableCell<S>, rule: F) -> Ruled<A, S, R>
where
    A: Durable<State = S>,
    S: Record + Clone + PartialEq + Send + 'static,
    R: Send + 'static,
    F: FnOnce(&mut Option<S>, &mut Changes) -> Result<R, DomainError>,
{
    let mut next = match cell.current() {
        Ok(state) => state.cloned(),
        Err(e) => return Ruled::Done(done(Err(e))),
    };
    let before = next.clone();
    let mut changes = Changes::default();
    let reply = match catch_unwind(AssertUnwindSafe(|| rule(&mut next, &mut changes))) {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Ruled::Done(done(Err(e.into()))),
        Err(_) => {
            tracing::error!("actor rule panicked; stopping for a supervised restart");
            // Stop from inside the reply's own wait future: the reply goes out in the same
            // step, and no other message can start in between (stopping right here would let
            // the supervisor's restart drop this reply, and a later stop could drop another
            // message's).
            return Ruled::Done(Box::pin(actix::fut::ready(()).map(|_, _, ctx: &mut Context<A>| {
                ctx.stop();
                Err(EntityError::Panicked)
            })));
        }
    };
    if next == before && changes.is_empty() {
        return Ruled::Done(done(Ok(reply)));
    }
    match build_batch(&cell.store, cell.key.clone(), next.as_ref(), changes) {
        Ok(batch) => Ruled::Write { next, reply, batch },
        Err(e) => Ruled::Done(done(Err(e))),
    }
}

/// Makes `next` the actor's state (its write is on disk, or queued behind the output gate).
fn adopt<A: Durable>(act: &mut A, ctx: &mut Context<A>, next: Option<A::State>) {
    let cell = act.cell();
    let was_settled = settled_for_good::<A>(cell);
    cell.stats.set_version(next.as_ref().map(A::version_of));
    cell.state = Loaded::Ready(next);
    act.committed(ctx);
    if !was_settled && settled_for_good::<A>(act.cell()) {
        passivate_when_settled(act, ctx);
    }
}

fn settled_for_good<A: Durable>(cell: &DurableCell<A::State>) -> bool {
    matches!(&cell.state, Loaded::Ready(Some(state)) if A::settled_for_good(state))
}

/// Passivates an actor whose entity is settled for good once it has been idle for the
/// registry's `settled_idle` (and its last write is on disk), checking again until it is.
fn passivate_when_settled<A: Durable>(act: &A, ctx: &mut Context<A>) {
    let Some(after) = act.link().settled_idle() else { return };
    let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    ctx.run_later(after, move |act, ctx| {
        let idle_ms = crate::domain::now_ms() - act.cell().stats.last_message_ms();
        if idle_ms >= after_ms && act.cell().settled().is_none() && passivate_now(act, ctx) {
            return;
        }
        passivate_when_settled(act, ctx);
    });
}

/// A [`Shed`](super::registry::Shed) request: passivate now if nothing is queued and the
/// last write is on disk; otherwise back in the registry's clock for a later sweep.
pub fn shed<A: Durable>(act: &mut A, ctx: &mut Context<A>) {
    if act.cell().settled().is_some() || !passivate_now(act, ctx) {
        act.link().requeue();
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
    if telemetry::enabled() && !changes.events.is_empty() {
        // Kept with the events: their consumers, here and on other nodes, continue this trace.
        batch.traced(telemetry::context_of(&tracing::Span::current()));
    }
    for event in changes.events {
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
    // After a supervised restart, a write this actor queued may not be applied yet: load once
    // it is on disk, holding every message until then. If it never will be (sled failed), the
    // stored record may hold it in memory only: answer a storage error rather than show it.
    match act.cell().settled() {
        Some(gate) => {
            ctx.wait(actix::fut::wrap_future::<_, A>(gate.passed()).map(|passed, act, ctx| {
                if let Err(e) = passed {
                    act.cell().state = Loaded::Failed(e.to_string());
                    return;
                }
                load_state(act);
                loaded(act, ctx);
            }));
        }
        None => {
            load_state(act);
            loaded(act, ctx);
        }
    }
    passivate_when_idle(ctx, idle);
}

/// The state is loaded: the actor's own hook, and a settled entity's early passivation.
fn loaded<A: Durable>(act: &mut A, ctx: &mut Context<A>) {
    act.loaded(ctx);
    if settled_for_good::<A>(act.cell()) {
        passivate_when_settled(act, ctx);
    }
}

fn load_state<A: Durable>(act: &mut A) {
    let cell = act.cell();
    cell.load();
    if let Ok(state) = cell.current() {
        let version = state.map(A::version_of);
        cell.stats.set_version(version);
    }
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
        // Not while a write is still on its way: the next activation reads the disk.
        let idle = crate::domain::now_ms() - act.cell().stats.last_message_ms() >= idle_ms;
        if idle && act.cell().settled().is_none() {
            passivate_now(act, ctx);
        }
    });
}

/// The step of a passivation command: once the actor's last write is on disk (the next
/// activation reads it from there), decided from inside the reply's own wait future, so the
/// reply goes out before the actor stops (stopping first would drop it).
/// An actor whose last write will never reach the disk (sled failed) stays: the next
/// activation would read that write back from sled's memory.
pub fn passivate_step<A: Durable>(act: &mut A) -> Step<A, bool> {
    let gate = act.cell().settled();
    let written = async move {
        match gate {
            Some(gate) => gate.passed().await.is_ok(),
            None => true,
        }
    };
    Box::pin(actix::fut::wrap_future::<_, A>(written).map(|written, act, ctx| Ok(written && passivate_now(act, ctx))))
}

/// Passivates if the registry agrees (no message pending); `true` if the actor is stopping.
pub fn passivate_now<A: Durable>(act: &mut A, ctx: &mut Context<A>) -> bool {
    let stopping = act.link().try_passivate();
    if stopping {
        ctx.stop();
    }
    stopping
}

#[cfg(test)]
#[path = "durable_test.rs"]
mod tests;
