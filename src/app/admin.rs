//! What operators see inside the running actor system. Listing reads the registries' shared
//! counters (never an actor's mailbox, so inspection cannot stall one); an entity's state is
//! read from storage: the live actor's state as of its last applied write (a ticket actor runs
//! up to one writer cycle ahead behind its output gate; nobody has been told of that part yet).

use super::{App, AppError};
use crate::actors::order::PassivateOrder;
use crate::actors::ticket::PassivateTicket;
/// A live actor and its counters, as inspection shows it.
pub use crate::actors::LiveActor;
use crate::actors::Registry;
use crate::domain::{DomainError, Order, OrderId, Ticket, TicketId};
use crate::routing::command::To;
use crate::storage::keys;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActorKind {
    Ticket,
    Order,
}

impl ActorKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ticket" => Some(Self::Ticket),
            "order" => Some(Self::Order),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ticket => "ticket",
            Self::Order => "order",
        }
    }
}

/// An entity's stored state.
#[derive(Clone, Debug)]
pub enum EntityState {
    Ticket(Ticket),
    Order(Order),
}

/// One entity as the admin sees it.
pub struct ActorDetail {
    pub live: Option<LiveActor>,
    pub state: Option<EntityState>,
    /// The earliest pending deadline the node's wheel holds for it (orders).
    pub pending_deadline_ms: Option<i64>,
}

/// How much is live on this node.
pub struct LiveCounts {
    pub tickets: usize,
    pub orders: usize,
    pub timers_pending: usize,
}

/// This node's place in the cluster.
pub struct ClusterView {
    pub node: String,
    pub cluster: String,
    pub clustered: bool,
    pub epoch: u32,
    pub members: Vec<String>,
    /// The owner of each shard, by shard.
    pub owners: Vec<String>,
    /// Whether the broker link is up (`None` on a single node).
    pub link_up: Option<bool>,
    /// The shards this node serves now (those whose lease it holds and made ready, in a
    /// cluster).
    pub serving: Vec<u32>,
    /// The leases this node holds (some maybe not ready yet).
    pub held: Vec<u32>,
    /// This node's copies of replicated shards (served or followed).
    pub copies: Vec<crate::replication::CopyStatus>,
}

impl App {
    pub fn node_id(&self) -> &str {
        &self.settings.cluster.node_id
    }

    /// The live actors of the wanted kinds, a page at a time, ordered by (kind, id), after
    /// `after`; `true` when more follow. The page is picked with a partial selection, not a
    /// full sort, so 100,000 live actors stay cheap.
    pub fn live_actors(
        &self,
        kinds: &[ActorKind],
        after: Option<(ActorKind, String)>,
        limit: usize,
    ) -> (Vec<(ActorKind, LiveActor)>, bool) {
        let mut candidates: Vec<(ActorKind, LiveActor)> = Vec::new();
        for kind in kinds {
            let live = match kind {
                ActorKind::Ticket => self.router.here().tickets.live(),
                ActorKind::Order => self.router.here().orders.live(),
            };
            candidates.extend(
                live.into_iter()
                    .filter(|a| after.as_ref().is_none_or(|(k, id)| (*kind, &a.id) > (*k, id)))
                    .map(|a| (*kind, a)),
            );
        }
        let more = candidates.len() > limit;
        if more {
            candidates.select_nth_unstable_by(limit, |a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
            candidates.truncate(limit);
        }
        candidates.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        (candidates, more)
    }

    /// One entity: its live actor (if any) and its stored state. Not found if neither exists.
    pub fn actor_detail(&self, kind: ActorKind, id: &str) -> Result<ActorDetail, AppError> {
        let detail = match kind {
            ActorKind::Ticket => {
                let id = TicketId::parse(id).ok_or(DomainError::NotFound)?;
                let live = live_of(&self.router.here().tickets, &id);
                let state = self.store.get::<Ticket>(&keys::ticket(&id))?.map(EntityState::Ticket);
                ActorDetail { live, state, pending_deadline_ms: None }
            }
            ActorKind::Order => {
                let id = OrderId::parse(id).ok_or(DomainError::NotFound)?;
                let live = live_of(&self.router.here().orders, &id);
                let state = self.store.get::<Order>(&keys::order(&id))?.map(EntityState::Order);
                ActorDetail { live, state, pending_deadline_ms: self.deadlines.next_for(&id) }
            }
        };
        if detail.live.is_none() && detail.state.is_none() {
            return Err(DomainError::NotFound.into());
        }
        Ok(detail)
    }

    /// Passivates a live actor now; `true` if it stopped. Not found if it is not live.
    pub async fn passivate(&self, kind: ActorKind, id: &str) -> Result<bool, AppError> {
        let not_found = || AppError::from(DomainError::NotFound);
        let stopped = match kind {
            ActorKind::Ticket => {
                let id =
                    TicketId::parse(id).filter(|id| self.router.here().tickets.is_live(id)).ok_or_else(not_found)?;
                self.router.ask(To::new(id, PassivateTicket)).await?
            }
            ActorKind::Order => {
                let id = OrderId::parse(id).filter(|id| self.router.here().orders.is_live(id)).ok_or_else(not_found)?;
                self.router.ask(To::new(id, PassivateOrder)).await?
            }
        };
        Ok(stopped)
    }

    pub fn live_counts(&self) -> LiveCounts {
        LiveCounts {
            tickets: self.router.here().tickets.live_count(),
            orders: self.router.here().orders.live_count(),
            timers_pending: self.deadlines.pending(),
        }
    }

    pub fn cluster(&self) -> ClusterView {
        let settings = &self.settings.cluster;
        let live = self.router.cluster();
        let map = self.router.map();
        let status = live.map(crate::cluster::Cluster::status);
        ClusterView {
            node: settings.node_id.clone(),
            cluster: settings.name.clone(),
            clustered: live.is_some(),
            epoch: map.epoch(),
            members: map.members().to_vec(),
            owners: (0..map.shard_count()).map(|s| map.owner(crate::routing::Shard(s)).to_string()).collect(),
            link_up: status.as_ref().map(|s| s.link_up),
            held: status.as_ref().map_or_else(Vec::new, |s| s.held.clone()),
            serving: status.map_or_else(|| map.mine().iter().map(|s| s.0).collect(), |s| s.serving),
            copies: self.router.replication().map_or_else(Vec::new, crate::replication::Replication::status),
        }
    }
}

fn live_of<A: crate::actors::Activatable>(registry: &Registry<A>, id: &A::Id) -> Option<LiveActor> {
    registry.stats(id).map(|stats| LiveActor { id: id.to_string(), stats })
}
