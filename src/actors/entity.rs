//! Commands as data. Every entity command is its own type ([`EntityCommand`]) with its own
//! reply type (serde, so both can cross the wire), and one generic path delivers any command to
//! its actor: counted for passivation, traced, bounded by a timeout, and atomic in the actor's
//! mailbox. A command writes only [`EntityCommand::execute`]; nothing is called by hand per
//! command, and a caller gets exactly its command's reply type.
//!
//! The application reaches an entity through `crate::routing`, by id, without knowing where
//! its actor lives. An ask carries its caller's deadline into the mailbox ([`Asked`]): a
//! command whose caller has given up is dropped instead of run late.

use super::durable::{Durable, Step};
use super::{Activatable, ActorStats, EntityError};
use crate::deadline::Deadline;
use actix::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tracing::Instrument;

/// An actor kind that is driven by commands ([`EntityCommand`]s whose `Actor` it is).
pub trait Entity: Durable {}

/// One command to an entity of kind `Actor`, and the reply it answers: the type system ties
/// the two, so a caller never unpacks a reply it did not ask for.
pub trait EntityCommand: Serialize + DeserializeOwned + Debug + Send + 'static {
    type Actor: Entity + Handler<Deliver<Self>>;
    type Reply: Serialize + DeserializeOwned + Debug + Send + 'static;

    /// The command's name, for spans and logs.
    const NAME: &'static str;

    /// Whether the command only makes sense for an entity that exists: if it is neither live
    /// nor stored, the command is answered "not found" without activating an actor.
    fn needs_existing() -> bool {
        true
    }

    /// Runs the command. Atomic: no other command of this actor starts until it has replied.
    fn execute(self, actor: &mut Self::Actor) -> Step<Self::Actor, Self::Reply>;
}

/// The one message type of an entity actor, generic over the command: a command on its way
/// in, counted in its actor's mailbox depth for as long as it is queued, with its caller's
/// deadline when it has one.
pub struct Deliver<C: EntityCommand> {
    command: C,
    asked: Option<Asked>,
    _queued: Queued,
}

impl<C: EntityCommand> Deliver<C> {
    /// A command nobody waits for (timers, retries): it always runs.
    pub(crate) fn new(command: C, stats: &Arc<ActorStats>) -> Self {
        stats.message_queued();
        Self { command, asked: None, _queued: Queued(Arc::clone(stats)) }
    }

    /// A command whose caller waits until `deadline`; `asked` tells the caller whether it ran.
    pub(crate) fn asked(command: C, stats: &Arc<ActorStats>, asked: Asked) -> Self {
        Self { asked: Some(asked), ..Self::new(command, stats) }
    }
}

/// An ask's fate, shared by its caller and the actor: exactly one of them decides it. The actor
/// starts it only if the caller has not given up and its deadline has not passed; a caller that
/// gives up first knows it never ran (503), one that gives up later knows it may have (504).
#[derive(Clone)]
pub struct Asked {
    fate: Arc<AtomicU8>,
    deadline: Deadline,
    /// The caller's span: the actor's step and its wait for the disk are its children.
    span: tracing::Span,
}

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const DROPPED: u8 = 2;

impl Asked {
    pub fn until(deadline: Deadline, span: tracing::Span) -> Self {
        Self { fate: Arc::new(AtomicU8::new(QUEUED)), deadline, span }
    }

    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// The actor's side: `true` if it may run the command now.
    fn start(&self) -> bool {
        if self.deadline.passed() {
            let _ = self.fate.compare_exchange(QUEUED, DROPPED, Ordering::AcqRel, Ordering::Acquire);
            return false;
        }
        self.fate.compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The caller's side, giving up: `true` if the command never ran and never will.
    pub fn give_up(&self) -> bool {
        match self.fate.compare_exchange(QUEUED, DROPPED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(now) => now == DROPPED,
        }
    }
}

/// A message's place in the mailbox count, given back when the message starts or when actix
/// drops it unrun (an ask that timed out is never run): a lost ask must not count for ever
/// against passivation and the mailbox bound.
struct Queued(Arc<ActorStats>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.message_left();
    }
}

impl<C: EntityCommand> Message for Deliver<C> {
    type Result = Result<C::Reply, EntityError>;
}

/// The body of every entity actor's one handler: count the message as started (passivation
/// relies on it), run the command atomically (no other message starts until its step is
/// done), then hold the reply behind the output gate: it leaves only once the actor's last
/// write is on disk, while the actor already serves the next message.
pub fn deliver<C: EntityCommand>(
    act: &mut C::Actor,
    Deliver { command, asked, _queued }: Deliver<C>,
    ctx: &mut Context<C::Actor>,
) -> ResponseFuture<Result<C::Reply, EntityError>> {
    drop(_queued);
    if asked.as_ref().is_some_and(|asked| !asked.start()) {
        // Its caller has given up (or is about to): running it now would be a surprise.
        tracing::debug!(
            kind = <C::Actor as Activatable>::KIND,
            command = C::NAME,
            "a command past its deadline dropped"
        );
        return Box::pin(std::future::ready(Err(EntityError::Unavailable)));
    }
    act.cell().stats.message_started();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Spans for traces only (debug: no cost unless exported), for a caller's command (work
    // nobody waits for makes no trace of its own): the step, a child of the caller's span,
    // entered on every poll of the step (its writes' `storage commit` spans are children),
    // and the reply's wait at the output gate for the flush that makes it true.
    let step = match &asked {
        Some(asked) => tracing::debug_span!(parent: &asked.span, "actor step", command = C::NAME),
        None => tracing::Span::none(),
    };
    let (before, traced) = (act.cell().last_write(), !step.is_disabled());
    let executed = {
        let _in_step = step.enter();
        command.execute(act)
    };
    let replied = move |reply, act: &mut C::Actor, _: &mut Context<C::Actor>| {
        let _ = tx.send((reply, act.cell().gate_of_step(before, traced)));
    };
    if step.is_disabled() {
        ctx.wait(executed.map(replied));
    } else {
        ctx.wait(InSpan { inner: executed, span: step.clone() }.map(replied));
    }
    Box::pin(async move {
        // Started: if its step is dropped unfinished (the actor restarting), it may have run.
        let (reply, gate) = rx.await.map_err(|_| EntityError::NoReply)?;
        if let Some(gate) = gate {
            gate.passed().instrument(tracing::debug_span!(parent: &step, "flush wait")).await?;
        }
        reply
    })
}

/// An actor's future polled inside `span`: the continuations of a step (a charge's outcome
/// recorded, say) stay in its trace, as its first poll is.
struct InSpan<F> {
    inner: F,
    span: tracing::Span,
}

impl<A: Actor, F: ActorFuture<A> + Unpin> ActorFuture<A> for InSpan<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        act: &mut A,
        ctx: &mut A::Context,
        task: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = &mut *self;
        let _in = this.span.enter();
        std::pin::Pin::new(&mut this.inner).poll(act, ctx, task)
    }
}

/// Implements the one (generic) handler of an entity actor: every command whose `Actor` it is.
#[macro_export]
macro_rules! entity_handler {
    ($actor:ty) => {
        impl $crate::actors::Entity for $actor {}

        impl<C> actix::Handler<$crate::actors::entity::Deliver<C>> for $actor
        where
            C: $crate::actors::entity::EntityCommand<Actor = $actor>,
        {
            type Result = actix::ResponseFuture<Result<C::Reply, $crate::actors::EntityError>>;

            fn handle(
                &mut self,
                msg: $crate::actors::entity::Deliver<C>,
                ctx: &mut actix::Context<$actor>,
            ) -> Self::Result {
                $crate::actors::entity::deliver(self, msg, ctx)
            }
        }

        impl actix::Handler<$crate::actors::registry::Shed> for $actor {
            type Result = ();

            fn handle(&mut self, _: $crate::actors::registry::Shed, ctx: &mut actix::Context<$actor>) {
                $crate::actors::durable::shed(self, ctx)
            }
        }
    };
}

/// Sends a command to the actor itself through its mailbox, counted like any other message,
/// so that it survives a supervised restart and keeps the actor from passivating before it runs.
pub fn tell_self<C: EntityCommand>(act: &mut C::Actor, ctx: &mut Context<C::Actor>, command: C) {
    let message = Deliver::<C>::new(command, &act.cell().stats);
    ctx.address().do_send(message);
}

#[cfg(test)]
#[path = "entity_test.rs"]
mod tests;
