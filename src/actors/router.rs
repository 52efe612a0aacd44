//! Where a command for an entity goes: by the slot in its id, to this node's actor or, in a
//! cluster, to the node that owns the slot's shard (`crate::cluster`).

use super::entity_ref::{Entities, EntityRef};
use super::order::OrderActor;
use super::ticket::TicketActor;
use super::{EntityError, Registry};
use crate::cluster::{Cluster, Place};
use crate::domain::{OrderId, Slot, TicketId};
use std::time::Duration;

#[derive(Clone)]
pub struct Router {
    tickets: Entities<TicketActor>,
    orders: Entities<OrderActor>,
    cluster: Option<Cluster>,
}

impl Router {
    pub fn new(tickets: Entities<TicketActor>, orders: Entities<OrderActor>) -> Self {
        Self { tickets, orders, cluster: None }
    }

    /// The same router, placing entities by the cluster's shard map (`None`: single node).
    pub fn in_cluster(self, cluster: Option<Cluster>) -> Self {
        Self {
            tickets: self.tickets.in_cluster(cluster.clone()),
            orders: self.orders.in_cluster(cluster.clone()),
            cluster,
        }
    }

    pub fn ticket(&self, id: TicketId) -> EntityRef<TicketActor> {
        self.tickets.get(id)
    }

    pub fn order(&self, id: OrderId) -> EntityRef<OrderActor> {
        self.orders.get(id)
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Where a request for `slot` goes.
    pub fn place(&self, slot: Slot) -> Place {
        self.cluster.as_ref().map_or(Place::Local, |c| c.place(slot))
    }

    /// The slot for a new ticket: one this node owns, so the create needs no hop.
    pub fn new_ticket_slot(&self) -> Slot {
        self.cluster.as_ref().map_or_else(Slot::random, |c| c.map().new_local_slot())
    }

    /// Runs a command another node forwarded to an entity of this node.
    pub async fn ask_forwarded(
        &self,
        kind: &str,
        id: &[u8],
        command: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, EntityError> {
        use super::Activatable;
        match kind {
            TicketActor::KIND => self.tickets.ask_forwarded(id, command, timeout).await,
            OrderActor::KIND => self.orders.ask_forwarded(id, command, timeout).await,
            other => Err(EntityError::Wire(format!("unknown entity kind {other:?}"))),
        }
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
