//! Where a command for an entity goes, and [`EntityRef`], the handle that sends it. Today every slot is served by this node, so every
//! [`EntityRef`] is local; the cluster replaces this lookup with one by the slot in the id
//! (and a remote path over RabbitMQ for slots another node owns).

use super::entity::Entity;
use super::order::OrderActor;
use super::ticket::TicketActor;
use super::{wire, EntityError, Registry};
use crate::domain::{OrderId, TicketId};
use std::time::Duration;

#[derive(Clone)]
pub struct Router {
    tickets: Registry<TicketActor>,
    orders: Registry<OrderActor>,
    /// Round-trip every command and reply through the wire encoding (tests).
    wire_round_trip: bool,
}

impl Router {
    pub fn new(tickets: Registry<TicketActor>, orders: Registry<OrderActor>, wire_round_trip: bool) -> Self {
        Self { tickets, orders, wire_round_trip }
    }

    pub fn ticket(&self, id: TicketId) -> EntityRef<TicketActor> {
        EntityRef::new(self.tickets.clone(), id, self.wire_round_trip)
    }

    pub fn order(&self, id: OrderId) -> EntityRef<OrderActor> {
        EntityRef::new(self.orders.clone(), id, self.wire_round_trip)
    }

    /// This node's ticket actors (inspection and metrics).
    pub fn ticket_actors(&self) -> &Registry<TicketActor> {
        &self.tickets
    }

    /// This node's order actors (inspection and metrics).
    pub fn order_actors(&self) -> &Registry<OrderActor> {
        &self.orders
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
