//! Event delivery from the durable outbox.
//!
//! Every state change writes its events into its slot's outbox (`<slot>x<seq>` keys) in the
//! same batch as the change. The [`Publisher`] reads the outbox of each slot that has new
//! events, in sequence order, hands the durable ones to every [`EventSink`] (the read model
//! first, then the in-process [`EventBus`], then the business metrics; a RabbitMQ sink plugs in
//! at the same place) and only then deletes them: delivery is at-least-once and, because one entity's events are written
//! in its actor's mailbox order, in per-entity version order.
//!
//! The publisher never forces a flush: an event is delivered once the batch that wrote it is
//! known to be on disk, and the deletions ride on the next durable write.

use crate::domain::{Event, Slot};
use crate::observability::{telemetry, Metrics};
use crate::storage::{keys, Store, StoredEvent, WriteBatch};
use futures_util::future::LocalBoxFuture;
use parking_lot::Mutex;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};

pub mod business;
pub mod live;

/// How many published events the bus remembers (what tests read back). Small: every entry is
/// a JSON tree held for the process's life (20,000 of them took 19 MB of a node's heap).
const RECENT: usize = 1_000;
/// Events read from one slot per pass.
const PASS: usize = 1_000;

/// Where published events go.
pub trait EventSink {
    /// Delivers `events` of `slot` (in order); an error leaves them in the outbox for the next
    /// pass.
    fn publish<'a>(&'a self, slot: Slot, events: &'a [StoredEvent]) -> LocalBoxFuture<'a, Result<(), String>>;
}

/// An event as published: the seed subject and JSON payload.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedEvent {
    pub subject: String,
    pub entity_id: String,
    pub payload: serde_json::Value,
}

impl PublishedEvent {
    pub fn from_event(event: &Event) -> Self {
        Self {
            subject: event.subject().to_string(),
            entity_id: event.entity_id(),
            payload: crate::json::event_payload(event),
        }
    }

    pub fn payload_json(&self) -> serde_json::Value {
        self.payload.clone()
    }
}

/// In-process subscribers: a broadcast channel plus a bounded log of recent public events.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<PublishedEvent>,
    recent: Arc<Mutex<VecDeque<PublishedEvent>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self { tx: broadcast::channel(4096).0, recent: Arc::new(Mutex::new(VecDeque::new())) }
    }
}

impl EventBus {
    pub fn subscribe(&self) -> broadcast::Receiver<PublishedEvent> {
        self.tx.subscribe()
    }

    /// Hands a public event to the subscribers and the recent log (others are not published).
    pub fn send(&self, event: &Event) {
        if !event.is_public() {
            return;
        }
        let published = PublishedEvent::from_event(event);
        let mut recent = self.recent.lock();
        // No subscriber is not an error: the event is still kept in the log.
        let _ = self.tx.send(published.clone());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(published);
    }

    /// The most recently published events, oldest first.
    pub fn recent(&self) -> Vec<PublishedEvent> {
        self.recent.lock().iter().cloned().collect()
    }
}

impl EventSink for EventBus {
    fn publish<'a>(&'a self, _slot: Slot, events: &'a [StoredEvent]) -> LocalBoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for e in events {
                self.send(&e.event);
            }
            Ok(())
        })
    }
}

/// Lets readers wait until every event committed before they asked has been delivered (a
/// list read then sees the reader's own writes).
#[derive(Clone)]
pub struct Delivery {
    requested: Arc<AtomicU64>,
    done: watch::Receiver<u64>,
    wake: Arc<Notify>,
}

impl Delivery {
    /// Waits (at most `limit`) until a publisher pass that started after this call finished.
    pub async fn caught_up(&self, limit: Duration) {
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.wake.notify_one();
        let mut done = self.done.clone();
        if tokio::time::timeout(limit, done.wait_for(|d| *d >= ticket)).await.is_err() {
            tracing::warn!("event delivery is behind; serving a list that may miss the latest changes");
        }
    }
}

pub struct Publisher {
    store: Store,
    /// This node's sinks (the read model, the in-process bus).
    sinks: Vec<Rc<dyn EventSink>>,
    /// Sinks beyond this node (the broker). While one fails, the events stay in the outbox
    /// for it, but this node's sinks and readers are not held back.
    remote: Vec<Rc<dyn EventSink>>,
    /// Per slot, the last event number this node's sinks have had (so an event kept in the
    /// outbox for a failing remote sink is not delivered to them again).
    local_done: std::cell::RefCell<std::collections::HashMap<Slot, u64>>,
    metrics: Metrics,
    requested: Arc<AtomicU64>,
    done: watch::Sender<u64>,
    wake: Arc<Notify>,
}

impl Publisher {
    pub fn new(store: Store, sinks: Vec<Rc<dyn EventSink>>, metrics: Metrics) -> Self {
        let (done, _) = watch::channel(0);
        Self {
            store,
            sinks,
            remote: Vec::new(),
            local_done: Default::default(),
            metrics,
            requested: Arc::new(AtomicU64::new(0)),
            done,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Adds a sink beyond this node (the broker).
    pub fn with_remote(mut self, sink: Rc<dyn EventSink>) -> Self {
        self.remote.push(sink);
        self
    }

    pub fn delivery(&self) -> Delivery {
        Delivery { requested: Arc::clone(&self.requested), done: self.done.subscribe(), wake: Arc::clone(&self.wake) }
    }

    /// Runs forever on the current (actix) thread. The first pass sweeps every slot's outbox
    /// (events left by a crash or a stop); later passes read the slots that commits marked.
    pub async fn run(self) {
        let mut slots = match self.slots_with_events() {
            Ok(slots) => slots,
            Err(e) => {
                tracing::error!(error = %e, "outbox sweep failed; relying on new commits");
                BTreeSet::new()
            }
        };
        loop {
            let target = self.requested.load(Ordering::SeqCst);
            slots.extend(self.store.take_dirty_outbox_slots());
            let mut again = BTreeSet::new();
            let (mut backlog, mut failed, mut local_behind) = (0, false, false);
            for slot in std::mem::take(&mut slots) {
                match self.pass(slot).await {
                    Ok(pass) => {
                        backlog += pass.published + pass.more;
                        if pass.more > 0 {
                            again.insert(slot);
                            local_behind = true;
                        }
                        if let Some(e) = pass.remote_failed {
                            tracing::warn!(slot = %slot, error = %e, "events not yet published beyond this node; retrying");
                            again.insert(slot);
                            failed = true;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(slot = %slot, error = %e, "outbox pass failed; retrying");
                        again.insert(slot);
                        (failed, local_behind) = (true, true);
                    }
                }
            }
            self.metrics.set_outbox_backlog(backlog);
            slots = again;
            if !local_behind {
                // Every durable event committed before `target` was asked for is delivered to
                // this node's sinks (events still in flight were written by requests not yet
                // acknowledged), even while the broker is away.
                self.done.send_replace(target);
            }
            if !slots.is_empty() {
                // A long backlog: go on at once; a failing sink: back off.
                let pause = if failed { Duration::from_millis(500) } else { Duration::ZERO };
                tokio::time::sleep(pause).await;
                continue;
            }
            // Woken by durable commits and by readers waiting to catch up.
            tokio::select! {
                _ = self.store.outbox_written() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn slots_with_events(&self) -> Result<BTreeSet<Slot>, crate::storage::StorageError> {
        let mut slots = BTreeSet::new();
        self.store.sweep(keys::OUTBOX, |key, _| {
            if let Some(slot) = keys::slot_of(key) {
                slots.insert(slot);
            }
            Ok(true)
        })?;
        Ok(slots)
    }

    /// Publishes the durable events of one slot, up to one pass.
    ///
    /// A slot's events are numbered in the order their batches are queued, and batches settle
    /// in that order, so the durable ones are a prefix: the pass ends at the first event whose
    /// batch may not be on disk yet (not waited for: the slot is marked again when it settles).
    /// Consumers see each slot's events in sequence order, hence each entity's in version
    /// order.
    pub async fn pass(&self, slot: Slot) -> Result<Pass, String> {
        if !self.store.writes_slot(slot) {
            // Only the node that writes a slot publishes its events (this copy follows).
            return Ok(Pass { published: 0, in_flight: 0, more: 0, remote_failed: None });
        }
        let scanned =
            self.store.scan_slot_lenient::<StoredEvent>(slot, keys::OUTBOX, PASS).map_err(|e| e.to_string())?;
        let full = scanned.len() == PASS;
        let mut done = WriteBatch::default();
        let mut ready = Vec::with_capacity(scanned.len());
        let mut in_flight = 0;
        for (key, decoded) in scanned {
            match decoded {
                Ok(event) => {
                    // A slot's events become durable in number order, so the first one in
                    // flight ends the pass: everything after it is in flight too, or became
                    // durable a moment ago and must still go out after it.
                    if in_flight > 0 || self.store.outbox_in_flight(slot, event.seq) {
                        in_flight += 1;
                    } else {
                        ready.push((key, event));
                    }
                }
                Err((e, raw)) => {
                    // One bad record must not stop every later event: move it aside, loudly.
                    tracing::error!(error = %e, "undecodable outbox record quarantined");
                    self.metrics.event_quarantined();
                    done.put_raw(keys::quarantined(&key), raw);
                    done.remove(key);
                }
            }
        }
        let events: Vec<StoredEvent> = ready.iter().map(|(_, e)| e.clone()).collect();
        // This node's sinks get each event once, even while a remote sink keeps failing (its
        // events then stay in the outbox; a slot with over a pass of them waits for it).
        let had = self.local_done.borrow().get(&slot).copied().unwrap_or(0);
        let fresh: Vec<StoredEvent> = events.iter().filter(|e| e.seq > had).cloned().collect();
        let delivering = delivery_spans(&fresh);
        for sink in &self.sinks {
            sink.publish(slot, &fresh).await?;
        }
        drop(delivering);
        if let Some(last) = fresh.last() {
            self.local_done.borrow_mut().insert(slot, last.seq);
        }
        if done.slot().is_some() {
            self.store.apply(done).map_err(|e| e.to_string())?;
        }
        for sink in &self.remote {
            if let Err(e) = sink.publish(slot, &events).await {
                return Ok(Pass { published: fresh.len(), in_flight, more: usize::from(full), remote_failed: Some(e) });
            }
        }
        self.store.remove_each(ready.into_iter().map(|(key, _)| key)).map_err(|e| e.to_string())?;
        Ok(Pass { published: fresh.len(), in_flight, more: usize::from(full), remote_failed: None })
    }
}

/// With telemetry on: a span per event for its delivery to this node's sinks, in the trace of
/// the request that wrote it.
fn delivery_spans(events: &[StoredEvent]) -> Vec<tracing::Span> {
    if !telemetry::enabled() {
        return Vec::new();
    }
    let traced = events.iter().filter_map(|e| e.trace.map(|trace| (e, trace)));
    traced
        .map(|(e, trace)| {
            let span = tracing::debug_span!("deliver event", subject = e.event.subject(), seq = e.seq);
            telemetry::continue_stored(&span, &trace);
            span
        })
        .collect()
}

/// What one pass over a slot did.
#[derive(Debug, PartialEq, Eq)]
pub struct Pass {
    pub published: usize,
    /// Events skipped because their batch may not be on disk yet.
    pub in_flight: usize,
    /// Non-zero when the slot holds more than one pass: go on at once.
    pub more: usize,
    /// A remote sink refused the events (they stay in the outbox for it).
    pub remote_failed: Option<String>,
}

#[cfg(test)]
#[path = "publisher_test.rs"]
mod tests;
