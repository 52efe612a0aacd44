//! A node joining a running cluster fills its read model from the other nodes' records once
//! (`bootstrap_read_model`); after that, events keep it current.

use super::{App, AppError};
use crate::deadline::Deadline;
use crate::domain::{Event, Slot};
use crate::routing::command::SnapshotOf;
use crate::routing::Shard;
use std::time::Duration;

impl App {
    /// Fills this node's read model with the entities other nodes already hold, once per data
    /// dir and map epoch: a node that joins a running cluster lists what was sold before it
    /// joined. Events published meanwhile queue in this node's event queue and apply after
    /// (rows carry versions, so the order does not matter). Owners that cannot be reached are
    /// retried, with backoff, until every shard is done.
    pub async fn bootstrap_read_model(self: std::sync::Arc<Self>) {
        let Some(_cluster) = self.router.cluster() else { return };
        let map = self.router.map();
        let flag = format!("read-model-bootstrapped:{}:{}", self.settings.cluster.name, map.epoch());
        if matches!(self.store.meta(&flag), Ok(Some(_))) {
            return;
        }
        let started = std::time::Instant::now();
        let mut pending: Vec<Shard> = (0..map.shard_count()).map(Shard).filter(|s| !map.is_mine(*s)).collect();
        let (mut pause, mut entities) = (Duration::from_millis(500), 0);
        loop {
            let mut failed = Vec::new();
            for shard in pending {
                match self.bootstrap_shard(shard).await {
                    Ok(n) => entities += n,
                    Err(_) => failed.push(shard),
                }
            }
            if failed.is_empty() {
                if let Err(e) = self.store.set_meta(&flag, b"1") {
                    tracing::warn!(error = %e, "the read model's bootstrap could not be recorded");
                }
                let took_ms = started.elapsed().as_millis() as u64;
                tracing::info!(entities, took_ms, "read model bootstrapped from the other nodes");
                return;
            }
            tracing::warn!(shards = failed.len(), "read model bootstrap: owners not reachable yet; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(30));
            pending = failed;
        }
    }

    async fn bootstrap_shard(&self, shard: Shard) -> Result<usize, AppError> {
        let mut learned = 0;
        // Tickets first: a complete order then marks its ticket's listing sold.
        for orders in [false, true] {
            let mut after = None;
            loop {
                let first_slot = Slot(self.router.map().slots(shard).start as u16);
                let request = SnapshotOf { shard: shard.0, first_slot, orders, after: after.take() };
                let page = self.router.ask_until(request, Deadline::after(Duration::from_secs(10))).await?;
                for ticket in page.tickets {
                    self.read_model.apply(&Event::TicketUpdated(ticket))?;
                    learned += 1;
                }
                for order in &page.orders {
                    self.read_model.apply_order_snapshot(order)?;
                    learned += 1;
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok(learned)
    }
}
