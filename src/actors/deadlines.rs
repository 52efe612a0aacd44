//! The node's deadline wheel: the durable index of unfinished work (`<slot>d<due><order>`
//! keys) mirrored in memory, and one task that hands each entry that comes due to the node
//! (which sends `Expire` to the order's actor).
//!
//! Order actors arm their own timer while they are live; the wheel is what makes deadlines
//! survive passivation and restarts. **Recovery is loading the wheel**: at start-up it sweeps
//! the index (never the tickets or orders themselves), and every entry that is due (an expiry
//! that passed while the node was down, a cancelled order whose ticket release was cut short)
//! fires at once. Expiry and release are idempotent, so an entry seen by both the actor's
//! timer and the wheel changes the order once.

use super::durable::Changes;
use crate::domain::{now_ms, Order, OrderId};
use crate::observability::Metrics;
use crate::storage::{keys, DeadlineEntry, StorageError, Store};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Keeps an order's entry in the index of unfinished work in step with the order, in the same
/// batch as the change: `due_before` is where the entry was (`None` for a new order).
pub fn track_unfinished_work(order: &Order, due_before: Option<i64>, changes: &mut Changes) {
    let due_after = order.work_due_ms();
    if due_before == due_after {
        return;
    }
    if let Some(at) = due_before {
        changes.remove(keys::deadline(at, &order.id));
    }
    if let Some(at) = due_after {
        changes.put(keys::deadline(at, &order.id), &DeadlineEntry { ticket_id: order.ticket.id });
    }
}

struct Inner {
    due: Mutex<BTreeSet<(i64, OrderId)>>,
    changed: Notify,
    metrics: Metrics,
}

#[derive(Clone)]
pub struct Deadlines(Arc<Inner>);

impl Deadlines {
    pub fn new(metrics: Metrics) -> Self {
        Self(Arc::new(Inner { due: Mutex::new(BTreeSet::new()), changed: Notify::new(), metrics }))
    }

    /// Loads every durable deadline (start-up). Returns how many.
    pub fn load(&self, store: &Store) -> Result<usize, StorageError> {
        let mut due = self.0.due.lock();
        store.sweep(keys::DEADLINE, |key, _| {
            match keys::parse_deadline(key) {
                Some(entry) => {
                    due.insert(entry);
                }
                None => tracing::error!(key = %keys::describe(key), "malformed deadline key skipped"),
            }
            Ok(true)
        })?;
        self.0.metrics.set_timers_pending(due.len());
        Ok(due.len())
    }

    /// Loads the durable deadlines of `slots` (a shard gained: its copy's unfinished work).
    pub fn load_slots(&self, store: &Store, slots: std::ops::Range<u32>) -> Result<usize, StorageError> {
        let mut loaded = 0;
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.scan_kind_in_slots(keys::DEADLINE, slots.clone(), after.as_deref(), 1_000)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let mut due = self.0.due.lock();
            for (key, _) in &page {
                if let Some(entry) = keys::parse_deadline(key) {
                    due.insert(entry);
                    loaded += 1;
                }
            }
        }
        self.0.metrics.set_timers_pending(self.pending());
        self.0.changed.notify_one();
        Ok(loaded)
    }

    pub fn schedule(&self, at_ms: i64, order: OrderId) {
        let len = {
            let mut due = self.0.due.lock();
            due.insert((at_ms, order));
            due.len()
        };
        self.0.metrics.set_timers_pending(len);
        self.0.changed.notify_one();
    }

    pub fn cancel(&self, at_ms: i64, order: OrderId) {
        let len = {
            let mut due = self.0.due.lock();
            due.remove(&(at_ms, order));
            due.len()
        };
        self.0.metrics.set_timers_pending(len);
    }

    pub fn pending(&self) -> usize {
        self.0.due.lock().len()
    }

    /// The earliest pending deadline of `order`, if any (admin view of passivated orders).
    pub fn next_for(&self, order: &OrderId) -> Option<i64> {
        self.0.due.lock().iter().find(|(_, o)| o == order).map(|(at, _)| *at)
    }

    /// Fires due deadlines forever: `fire(order)` for each.
    pub async fn run(self, fire: impl Fn(OrderId)) {
        loop {
            let next = self.0.due.lock().first().copied();
            let Some((at, _)) = next else {
                self.0.changed.notified().await;
                continue;
            };
            let wait = at - now_ms();
            if wait > 0 {
                // A newly scheduled earlier deadline interrupts the sleep.
                let _ = tokio::time::timeout(Duration::from_millis(wait as u64), self.0.changed.notified()).await;
                continue;
            }
            let fired: Vec<(i64, OrderId)> = {
                let mut due = self.0.due.lock();
                let now = now_ms();
                let mut fired = Vec::new();
                while let Some(first) = due.first().copied() {
                    if first.0 > now {
                        break;
                    }
                    due.pop_first();
                    fired.push(first);
                }
                self.0.metrics.set_timers_pending(due.len());
                fired
            };
            for (_, order) in fired {
                fire(order);
            }
        }
    }
}
