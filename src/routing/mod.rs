//! The router: where a command runs, and the one place its outcome is decided.
//!
//! Every use case that may touch another node's data (an entity command, an account request, a
//! keyed create, an idempotency claim, a snapshot page) sends a typed command ([`command`])
//! through [`Router::ask`]. The router reads the slot the command names and:
//!
//! * runs it **here** ([`Here`]) when this node serves the slot;
//! * refuses it (**not run**, 503) when this node owns the slot's shard but does not hold its
//!   lease now (the broker link is down): a shard is never served by two nodes;
//! * otherwise **forwards** it through the transport (`crate::cluster`), with its deadline and
//!   headers, and decodes the reply as the command's own reply type. "Not run" (503) only when
//!   the transport proves it; "may have run" (504) otherwise. The reply names the owner's last
//!   event in the slot, and this node's lists wait for it ([`freshness`]): read your own
//!   writes through any node.
//!
//! * [`command`]: the commands, as data, each with its reply type.
//! * [`here`]: how each runs on the node that serves its slot.
//! * [`inbound`]: what the transport hands up: other nodes' commands and events.
//! * [`events`]: this node's events to the transport.
//! * [`shard_map`]: which node owns which shard; [`placement`]: the data dir's check of it.

pub mod command;
pub mod events;
pub mod freshness;
mod here;
pub mod inbound;
pub mod placement;
pub mod shard_map;

pub use command::{Routed, Unrouted};
pub use here::Here;
pub use shard_map::{Shard, ShardMap};

use crate::actors::order::GetOrder;
use crate::actors::wire;
use crate::cluster::{Cluster, Headers, Undelivered};
use crate::deadline::Deadline;
use crate::domain::{OrderId, Slot};
use crate::observability::{current_request_id, telemetry, REQUEST_ID_HEADER};
use command::Served;
use freshness::Freshness;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Where a command for a slot runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// This node serves the slot.
    Local,
    /// Another node owns it.
    Remote(Shard),
    /// This node owns it but does not hold its lease now: refused.
    Fenced,
}

#[derive(Clone)]
pub struct Router {
    here: Arc<Here>,
    cluster: Option<Cluster>,
    /// Which other nodes' events this node's lists wait for (read your own writes).
    freshness: Arc<Freshness>,
    ask_timeout: Duration,
    /// Round-trip every local command and reply through the wire encoding (tests).
    wire_round_trip: bool,
    /// With replicated shards: this node's copies (for inspection).
    replication: Option<crate::replication::Replication>,
}

impl Router {
    pub fn new(
        here: Arc<Here>,
        cluster: Option<Cluster>,
        freshness: Arc<Freshness>,
        ask_timeout: Duration,
        wire_round_trip: bool,
    ) -> Self {
        Self { here, cluster, freshness, ask_timeout, wire_round_trip, replication: None }
    }

    /// The same router, on a node with replicated shards.
    pub fn with_replication(mut self, replication: Option<crate::replication::Replication>) -> Self {
        self.replication = replication;
        self
    }

    /// This node's copies of replicated shards, if shards are replicated.
    pub fn replication(&self) -> Option<&crate::replication::Replication> {
        self.replication.as_ref()
    }

    /// Waits (at most `limit`) until this node's read model holds every change its forwarded
    /// commands made so far.
    pub async fn forwarded_writes_applied(&self, limit: Duration) {
        if self.cluster.is_some() {
            self.freshness.caught_up(limit).await;
        }
    }

    /// Where a command for `slot` runs: here while this node serves its shard (with
    /// replicated shards, while its term lasts), refused while this node holds the lease but
    /// does not serve it (or, unreplicated, owns it but lost the lease), elsewhere otherwise:
    /// ownership follows the leases actually held.
    pub fn place(&self, slot: Slot) -> Place {
        let Some(cluster) = &self.cluster else { return Place::Local };
        let shard = self.here.map.shard_of(slot);
        let replicated = self.here.store.logs().is_some();
        // Replicated, a node that may have lost its leases without knowing yet (paused, cut
        // off) serves nothing of them: a follower may be serving them already.
        let fresh = !replicated || cluster.leases_fresh();
        if cluster.serves(shard) && self.here.store.writes_slot(slot) && fresh {
            Place::Local
        } else if cluster.holds(shard) || (!replicated && self.here.map.is_mine(shard)) {
            Place::Fenced
        } else {
            Place::Remote(shard)
        }
    }

    /// Runs `command` where its slot is served, waiting the node's ask timeout.
    pub async fn ask<C: Routed>(&self, command: C) -> Result<C::Ok, C::Err> {
        self.ask_until(command, Deadline::after(self.ask_timeout)).await
    }

    /// Runs `command` where its slot is served, waiting until `deadline`, here as across the
    /// wire; whoever would run it after `deadline` drops it instead.
    pub async fn ask_until<C: Routed>(&self, command: C, deadline: Deadline) -> Result<C::Ok, C::Err> {
        match self.place(command.slot()) {
            Place::Local if self.wire_round_trip => self.run_here_over_the_wire(command, deadline).await,
            Place::Local => command.run_here(&self.here, deadline).await,
            Place::Fenced => Err(Unrouted::NotRun.into()),
            Place::Remote(shard) => self.forward(shard, command, deadline).await,
        }
    }

    /// Wakes a new order's actor so it arms its own expiry timer, if the order is served
    /// here; elsewhere its owner's deadline wheel holds the deadline anyway.
    pub fn wake_order(&self, id: OrderId) {
        if self.place(id.slot()) == Place::Local {
            self.here.orders.tell(id, GetOrder);
        }
    }

    /// The slot for a new ticket: one of a shard this node serves now, so the create needs
    /// no hop (any slot on a node that serves none: it is forwarded).
    pub fn new_ticket_slot(&self) -> Slot {
        let Some(cluster) = &self.cluster else { return Slot::random() };
        let serving = cluster.serving();
        if serving.is_empty() {
            return Slot::random();
        }
        let slots = self.here.map.slots(serving[rand::random::<usize>() % serving.len()]);
        Slot((slots.start + rand::random::<u32>() % (slots.end - slots.start)) as u16)
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    pub fn map(&self) -> &ShardMap {
        &self.here.map
    }

    /// What this node serves: its actors (inspection and metrics), its accounts.
    pub fn here(&self) -> &Here {
        &self.here
    }

    async fn forward<C: Routed>(&self, shard: Shard, command: C, deadline: Deadline) -> Result<C::Ok, C::Err> {
        let Some(cluster) = &self.cluster else { return Err(Unrouted::NotRun.into()) };
        let name = command.name();
        let wire_form: command::Command = command.clone().into();
        let body = match wire::encode(&wire_form) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(command = name, error = %e, "a command could not be encoded; not sent");
                return Err(Unrouted::NotRun.into());
            }
        };
        let mut headers = Headers::new();
        headers.insert(REQUEST_ID_HEADER.into(), current_request_id());
        if command.droppable() {
            headers.insert(crate::cluster::DROPPABLE.into(), String::new());
        }
        // The hop as a span of the request's trace, whose context the owner continues.
        let span = tracing::info_span!("forward", command = name, shard = shard.0);
        if let Some(traceparent) = telemetry::enabled().then(|| telemetry::traceparent_of(&span)).flatten() {
            headers.insert(telemetry::TRACEPARENT.into(), traceparent);
        }
        match cluster.ask(shard, &body, &headers, deadline).instrument(span).await {
            Ok(reply) => match wire::decode::<Served<C::Ok, C::Err>>(&reply) {
                Ok(served) => {
                    if let Some((slot, seq)) = served.written {
                        self.freshness.awaits(slot, seq);
                    }
                    served.result
                }
                Err(e) => {
                    // It ran, but its reply cannot be read (an owner of another release).
                    tracing::warn!(command = name, shard = shard.0, error = %e, "a reply could not be read");
                    Err(Unrouted::MayHaveRun.into())
                }
            },
            Err(Undelivered::NotRun(why)) => {
                tracing::debug!(command = name, shard = shard.0, why, "not run by the owning node");
                Err(Unrouted::NotRun.into())
            }
            Err(Undelivered::MayHaveRun(why)) => {
                tracing::warn!(command = name, shard = shard.0, why, "no reply from the owning node; it may have run");
                Err(Unrouted::MayHaveRun.into())
            }
        }
    }

    /// Runs a local command as if it crossed the wire: the command and its reply encoded and
    /// decoded (tests prove every command and reply survives the wire).
    async fn run_here_over_the_wire<C: Routed>(&self, command: C, deadline: Deadline) -> Result<C::Ok, C::Err> {
        let Ok(command) = wire::round_trip(&command) else { return Err(Unrouted::NotRun.into()) };
        let result = command.run_here(&self.here, deadline).await;
        wire::round_trip(&result).unwrap_or(Err(Unrouted::MayHaveRun.into()))
    }
}

/// Snapshot pages come from a shard's owner, wherever it is.
impl crate::replication::snapshot::CopySource for Router {
    fn page(
        &self,
        shard: u32,
        after: Option<Vec<u8>>,
    ) -> futures_util::future::LocalBoxFuture<'static, Result<crate::replication::snapshot::CopyPage, String>> {
        let router = self.clone();
        Box::pin(async move {
            let first_slot = Slot(router.map().slots(Shard(shard)).start as u16);
            router.ask(command::CopyPageOf { shard, first_slot, after }).await.map_err(|e| e.to_string())
        })
    }
}
