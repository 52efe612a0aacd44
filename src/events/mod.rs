//! Event delivery from the durable outbox.
//!
//! Every state change writes its events into the outbox (`x/<seq>` keys) in the same batch as
//! the change. The [`Publisher`] reads the outbox in sequence order, makes sure what it read is
//! on disk, hands the events to every [`EventSink`] and only then deletes them: delivery is
//! at-least-once and, because one entity's events are written in its actor's mailbox order, in
//! per-entity version order. The in-process [`EventBus`] is the sink today; a RabbitMQ sink
//! plugs in at the same place for clustering.

use crate::domain::Event;
use crate::observability::Metrics;
use crate::storage::{keys, Store, StoredEvent, WriteBatch};
use futures_util::future::LocalBoxFuture;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// How many published events the bus remembers (for tests and the admin view).
const RECENT: usize = 20_000;
/// Events published per outbox pass.
const PASS: usize = 1_000;

/// Where published events go.
pub trait EventSink {
    /// Delivers `events` (in order); an error leaves them in the outbox for the next pass.
    fn publish<'a>(&'a self, events: &'a [StoredEvent]) -> LocalBoxFuture<'a, Result<(), String>>;
}

/// In-process subscribers: a broadcast channel plus a bounded log of recent events.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    recent: Arc<Mutex<VecDeque<Event>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self { tx: broadcast::channel(4096).0, recent: Arc::new(Mutex::new(VecDeque::new())) }
    }
}

impl EventBus {
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// The most recently published events, oldest first.
    pub fn recent(&self) -> Vec<Event> {
        self.recent.lock().iter().cloned().collect()
    }
}

impl EventSink for EventBus {
    fn publish<'a>(&'a self, events: &'a [StoredEvent]) -> LocalBoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut recent = self.recent.lock();
            for e in events {
                // No subscriber is not an error: the event is still delivered to the log.
                let _ = self.tx.send(e.event.clone());
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(e.event.clone());
            }
            Ok(())
        })
    }
}

pub struct Publisher {
    store: Store,
    sinks: Vec<Rc<dyn EventSink>>,
    metrics: Metrics,
}

impl Publisher {
    pub fn new(store: Store, sinks: Vec<Rc<dyn EventSink>>, metrics: Metrics) -> Self {
        Self { store, sinks, metrics }
    }

    /// Runs forever on the current (actix) thread.
    pub async fn run(self) {
        loop {
            match self.pass().await {
                Ok(n) if n == PASS => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox pass failed; retrying"),
            }
            // Woken by commits; the timeout catches events written before a restart.
            let _ = tokio::time::timeout(Duration::from_millis(250), self.store.outbox_written()).await;
        }
    }

    /// Publishes up to one pass of events; returns how many.
    pub async fn pass(&self) -> Result<usize, String> {
        let scanned = self.store.scan_lenient::<StoredEvent>(&[keys::OUTBOX], PASS).map_err(|e| e.to_string())?;
        let scanned_len = scanned.len();
        self.metrics.set_outbox_backlog(scanned_len);
        let mut done = WriteBatch::default();
        let mut pending = Vec::with_capacity(scanned_len);
        for (key, decoded) in scanned {
            match decoded {
                Ok(event) => pending.push((key, event)),
                Err((e, raw)) => {
                    // One bad record must not stop every later event: move it aside, loudly.
                    tracing::error!(error = %e, "undecodable outbox record quarantined");
                    self.metrics.event_quarantined();
                    let mut quarantined = vec![keys::QUARANTINE];
                    quarantined.extend_from_slice(&key);
                    done.put_raw(quarantined, raw);
                    done.remove(key);
                }
            }
        }
        if pending.is_empty() {
            self.store.commit(done).await.map_err(|e| e.to_string())?;
            return Ok(scanned_len);
        }
        // Only publish what is durable: a batch may be applied but not yet flushed.
        self.store.sync().await;
        let events: Vec<StoredEvent> = pending.iter().map(|(_, e)| e.clone()).collect();
        for sink in &self.sinks {
            sink.publish(&events).await?;
        }
        for (key, _) in &pending {
            done.remove(key.clone());
        }
        self.store.commit(done).await.map_err(|e| e.to_string())?;
        Ok(scanned_len)
    }
}

#[cfg(test)]
#[path = "publisher_test.rs"]
mod tests;
