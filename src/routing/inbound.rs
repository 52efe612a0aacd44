//! What the transport hands up to this node: commands other nodes forwarded for the shards it
//! holds, run through [`Here`] as this node's own would be, and their events, applied to this
//! node's read model. Given to the transport when it is built.

use super::command::Command;
use super::freshness::Freshness;
use super::Here;
use crate::actors::wire;
use crate::app::projection::ReadModel;
use crate::cluster::{Headers, Incoming};
use crate::domain::{Event, Slot};
use crate::events::EventBus;
use crate::observability::{REQUEST_ID, REQUEST_ID_HEADER};
use crate::replication::Replication;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;

pub struct Inbound {
    here: Arc<Here>,
    read_model: ReadModel,
    /// This node's event bus: other nodes' events reach its subscribers too.
    bus: EventBus,
    freshness: Arc<Freshness>,
    /// With replicated shards: a lease taken begins a term before the shard is served.
    replication: Option<Replication>,
}

impl Inbound {
    pub fn new(
        here: Arc<Here>,
        read_model: ReadModel,
        bus: EventBus,
        freshness: Arc<Freshness>,
        replication: Option<Replication>,
    ) -> Self {
        Self { here, read_model, bus, freshness, replication }
    }
}

impl crate::cluster::Inbound for Inbound {
    fn serve(&self, request: Incoming) -> LocalBoxFuture<'static, Result<Vec<u8>, String>> {
        let here = Arc::clone(&self.here);
        Box::pin(async move {
            // Refused before running: a message this release cannot read, or one for a slot
            // outside the shard whose queue it came in (a sender with another map).
            let command: Command = wire::decode(&request.body).map_err(|e| e.to_string())?;
            let shard = here.map.shard_of(command.slot());
            if shard != request.shard {
                return Err(format!("slot of shard {shard} sent to shard {}", request.shard));
            }
            // Between terms (an entry the log did not confirm) the lease is held but nothing runs.
            if !here.store.writes_slot(command.slot()) {
                return Err(format!("shard {shard} is between terms here"));
            }
            let request_id = request.headers.get(REQUEST_ID_HEADER).cloned().unwrap_or_default();
            Ok(REQUEST_ID.scope(request_id, command.run_here(&here, request.deadline)).await)
        })
    }

    fn lease_taken(&self, shard: crate::cluster::Shard) -> LocalBoxFuture<'static, bool> {
        let replication = self.replication.clone();
        Box::pin(async move {
            match replication {
                Some(replication) => replication.lead(shard.0).await,
                None => true,
            }
        })
    }

    fn leases_lost(&self) {
        if let Some(replication) = &self.replication {
            replication.lost_all();
        }
    }

    fn lease_given_up(&self, shard: crate::cluster::Shard) {
        if let Some(replication) = &self.replication {
            replication.given_up(shard.0);
        }
    }

    fn event(&self, body: &[u8], headers: &Headers) -> Result<(), String> {
        let event: Event = wire::decode(body).map_err(|e| e.to_string())?;
        self.read_model.apply(&event).map_err(|e| e.to_string())?;
        self.bus.send(&event);
        let number = |name: &str| headers.get(name).and_then(|v| v.parse::<u64>().ok());
        if let (Some(slot), Some(seq)) = (number(crate::cluster::events::SLOT), number(crate::cluster::events::SEQ)) {
            self.freshness.applied(Slot(slot as u16), seq);
        }
        Ok(())
    }
}
