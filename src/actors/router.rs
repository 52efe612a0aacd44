//! Where a command for an entity goes. Today every slot is served by this node, so every
//! [`EntityRef`] is local; the cluster replaces this lookup with one by the slot in the id
//! (and a remote path over RabbitMQ for slots another node owns).

use super::entity::EntityRef;
use super::order::OrderActor;
use super::ticket::TicketActor;
use super::Registry;
use crate::domain::{OrderId, TicketId};

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
