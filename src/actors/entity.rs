//! Commands as data. Every entity kind has one command enum and one reply enum (serde, so they
//! can cross the wire), and one generic path that delivers a command to an actor: counted for
//! passivation, traced, bounded by a timeout, and atomic in the actor's mailbox. An actor
//! writes only [`Entity::execute`]; nothing is called by hand per command.
//!
//! [`EntityRef`] is how the application reaches an entity: by id, without knowing where the
//! actor lives. Today every entity is local; the cluster routes by the slot in the id.

use super::durable::{Durable, Step};
use super::registry::Registry;
use super::{wire, EntityError};
use actix::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use std::time::Duration;

/// An actor kind that is driven by commands.
pub trait Entity: Durable + Handler<Deliver<Self>> {
    type Command: Serialize + DeserializeOwned + Debug + Send + 'static;
    type Reply: Serialize + DeserializeOwned + Debug + Send + 'static;

    /// The command's name, for spans and logs.
    fn command_name(command: &Self::Command) -> &'static str;

    /// Whether the command only makes sense for an entity that exists: if it is neither live
    /// nor stored, the command is answered "not found" without activating an actor.
    fn needs_existing(command: &Self::Command) -> bool;

    /// Runs one command. Atomic: no other command of this actor starts until it has replied.
    fn execute(&mut self, command: Self::Command, ctx: &mut Context<Self>) -> Step<Self, Self::Reply>;
}

/// The one message type of an entity actor: a command on its way in.
pub struct Deliver<A: Entity>(pub A::Command);

impl<A: Entity> Message for Deliver<A> {
    type Result = Result<A::Reply, EntityError>;
}

/// The body of every entity actor's one handler: count the message as started (passivation
/// relies on it) and run the command atomically.
pub fn deliver<A: Entity>(
    act: &mut A,
    Deliver(command): Deliver<A>,
    ctx: &mut Context<A>,
) -> AtomicResponse<A, Result<A::Reply, EntityError>> {
    act.cell().stats.message_started();
    AtomicResponse::new(act.execute(command, ctx))
}

/// Implements the one handler of an entity actor.
#[macro_export]
macro_rules! entity_handler {
    ($actor:ty) => {
        impl actix::Handler<$crate::actors::entity::Deliver<$actor>> for $actor {
            type Result = actix::AtomicResponse<
                $actor,
                Result<<$actor as $crate::actors::Entity>::Reply, $crate::actors::EntityError>,
            >;

            fn handle(
                &mut self,
                msg: $crate::actors::entity::Deliver<$actor>,
                ctx: &mut actix::Context<$actor>,
            ) -> Self::Result {
                $crate::actors::entity::deliver(self, msg, ctx)
            }
        }
    };
}

/// Sends a command to the actor itself through its mailbox, counted like any other message,
/// so that it survives a supervised restart and keeps the actor from passivating before it runs.
pub fn tell_self<A: Entity>(act: &mut A, ctx: &mut Context<A>, command: A::Command) {
    act.cell().stats.message_queued();
    ctx.address().do_send(Deliver::<A>(command));
}

/// A handle on one entity, wherever it lives.
pub struct EntityRef<A: Entity> {
    registry: Registry<A>,
    id: A::Id,
    /// Round-trip every command and reply through the wire encoding (tests).
    wire_round_trip: bool,
}

impl<A: Entity> EntityRef<A> {
    pub fn new(registry: Registry<A>, id: A::Id, wire_round_trip: bool) -> Self {
        Self { registry, id, wire_round_trip }
    }

    pub fn id(&self) -> A::Id {
        self.id
    }

    /// Sends `command` and waits for the reply, bounded by the node's ask timeout.
    pub async fn ask(&self, command: A::Command) -> Result<A::Reply, EntityError> {
        self.ask_within(command, None).await
    }

    /// [`EntityRef::ask`] with its own bound, for commands that legitimately take longer (a
    /// payment waits for the provider).
    pub async fn ask_within(&self, command: A::Command, timeout: Option<Duration>) -> Result<A::Reply, EntityError> {
        let command = self.cross(command)?;
        let reply = self.registry.ask(self.id, command, timeout).await;
        if !self.wire_round_trip {
            return reply;
        }
        let wire = |e: wire::WireError| EntityError::Wire(e.to_string());
        match reply {
            Ok(reply) => wire::round_trip::<A::Reply>(&reply).map_err(wire),
            Err(error) => Err(wire::round_trip::<EntityError>(&error).map_err(wire)?),
        }
    }

    /// Sends `command` without waiting for the reply.
    pub fn tell(&self, command: A::Command) -> Result<(), EntityError> {
        let command = self.cross(command)?;
        self.registry.tell(self.id, command);
        Ok(())
    }

    fn cross(&self, command: A::Command) -> Result<A::Command, EntityError> {
        if self.wire_round_trip {
            wire::round_trip(&command).map_err(|e| EntityError::Wire(e.to_string()))
        } else {
            Ok(command)
        }
    }
}
