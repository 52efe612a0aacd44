//! [`EntityRef`]: the handle through which the application reaches one entity by id, without
//! knowing where its actor lives, and [`Entities`], the handles of one kind. Every command
//! goes through the registry, which counts, traces and times it out once; in tests it also
//! crosses the wire encoding, as between nodes.

use super::entity::Entity;
use super::{wire, EntityError, Registry};
use std::time::Duration;

/// The entities of one kind, reached by id.
pub struct Entities<A: Entity> {
    registry: Registry<A>,
    /// Round-trip every command and reply through the wire encoding (tests).
    wire_round_trip: bool,
}

impl<A: Entity> Clone for Entities<A> {
    fn clone(&self) -> Self {
        Self { registry: self.registry.clone(), wire_round_trip: self.wire_round_trip }
    }
}

impl<A: Entity> Entities<A> {
    pub fn new(registry: Registry<A>, wire_round_trip: bool) -> Self {
        Self { registry, wire_round_trip }
    }

    pub fn get(&self, id: A::Id) -> EntityRef<A> {
        EntityRef { registry: self.registry.clone(), id, wire_round_trip: self.wire_round_trip }
    }

    /// This node's actors of the kind (inspection and metrics).
    pub fn actors(&self) -> &Registry<A> {
        &self.registry
    }
}

/// A handle on one entity, wherever it lives.
pub struct EntityRef<A: Entity> {
    registry: Registry<A>,
    id: A::Id,
    /// Round-trip every command and reply through the wire encoding (tests).
    wire_round_trip: bool,
}

impl<A: Entity> EntityRef<A> {
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
        match reply {
            Ok(reply) => Ok(wire::round_trip::<A::Reply>(&reply)?),
            Err(error) => Err(wire::round_trip::<EntityError>(&error)?),
        }
    }

    /// Sends `command` without waiting for the reply.
    pub fn tell(&self, command: A::Command) -> Result<(), EntityError> {
        let command = self.cross(command)?;
        self.registry.tell(self.id, command);
        Ok(())
    }

    fn cross(&self, command: A::Command) -> Result<A::Command, EntityError> {
        Ok(if self.wire_round_trip { wire::round_trip(&command)? } else { command })
    }
}
