//! Read your own writes through any node. A command forwarded to another node comes back with
//! the owner's last event number in the command's slot (the events it wrote are at or below
//! it). This node's lists are served from its read model, which other nodes' events reach
//! through the broker a moment later: before serving a list, the router waits (bounded) until
//! every such event has been applied here. One mechanism for every kind of write: whatever
//! events a write caused (a reservation's hold, a cancel's release, a payment's completion),
//! the list waits for them, not for a guess of them.

use crate::domain::Slot;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Freshness {
    state: Mutex<State>,
    applied_more: Notify,
}

#[derive(Default)]
struct State {
    /// Per slot, the highest event number of another node's applied here.
    applied: HashMap<Slot, u64>,
    /// Per slot, the event number a forwarded write's reply named, not yet applied here.
    awaited: HashMap<Slot, u64>,
}

impl Freshness {
    /// A forwarded command came back: its slot's events up to `seq` are on their way here.
    pub fn awaits(&self, slot: Slot, seq: u64) {
        let mut s = self.state.lock();
        if s.applied.get(&slot).is_some_and(|applied| *applied >= seq) {
            return;
        }
        let awaited = s.awaited.entry(slot).or_default();
        *awaited = (*awaited).max(seq);
    }

    /// Another node's event `seq` of `slot` is in the read model.
    pub fn applied(&self, slot: Slot, seq: u64) {
        let mut s = self.state.lock();
        let applied = s.applied.entry(slot).or_default();
        if seq <= *applied {
            return;
        }
        *applied = seq;
        let awaited = s.awaited.get(&slot).copied();
        if awaited.is_some_and(|awaited| awaited <= seq) {
            s.awaited.remove(&slot);
        }
        let waited_on = awaited.is_some();
        drop(s);
        // A waiter's snapshot may be met by an event below what is awaited now.
        if waited_on {
            self.applied_more.notify_waiters();
        }
    }

    /// Waits (at most `limit`) until every event awaited now has been applied (not those
    /// awaited later: a busy node's lists do not wait for ever newer writes).
    pub async fn caught_up(&self, limit: Duration) {
        let awaited: Vec<(Slot, u64)> = self.state.lock().awaited.iter().map(|(s, q)| (*s, *q)).collect();
        if awaited.is_empty() {
            return;
        }
        let wait = async {
            loop {
                let notified = self.applied_more.notified();
                {
                    let s = self.state.lock();
                    if awaited.iter().all(|(slot, seq)| s.applied.get(slot).is_some_and(|a| a >= seq)) {
                        return;
                    }
                }
                notified.await;
            }
        };
        if tokio::time::timeout(limit, wait).await.is_err() {
            let behind = self.state.lock().awaited.len();
            tracing::warn!(behind, "other nodes' events are behind; serving a list that may miss a forwarded write");
        }
    }
}
