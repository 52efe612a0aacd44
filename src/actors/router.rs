//! Where a command for an entity goes. Today every slot is served by this node, so every
//! [`EntityRef`] is local; the cluster replaces this lookup with one by the slot in the id
//! (and a remote path over RabbitMQ for slots another node owns).

use super::entity_ref::{Entities, EntityRef};
use super::order::OrderActor;
use super::ticket::TicketActor;
use super::Registry;
use crate::domain::{OrderId, TicketId};

#[derive(Clone)]
pub struct Router {
    tickets: Entities<TicketActor>,
    orders: Entities<OrderActor>,
}

impl Router {
    pub fn new(tickets: Entities<TicketActor>, orders: Entities<OrderActor>) -> Self {
        Self { tickets, orders }
    }

    pub fn ticket(&self, id: TicketId) -> EntityRef<TicketActor> {
        self.tickets.get(id)
    }

    pub fn order(&self, id: OrderId) -> EntityRef<OrderActor> {
        self.orders.get(id)
    }

    /// This node's ticket actors (inspection and metrics).
    pub fn ticket_actors(&self) -> &Registry<TicketActor> {
        self.tickets.actors()
    }

    /// This node's order actors (inspection and metrics).
    pub fn order_actors(&self) -> &Registry<OrderActor> {
        self.orders.actors()
    }
}
