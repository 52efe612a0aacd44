//! The outbox's bookkeeping: which sequence numbers are written but not yet durable, and which
//! slots have events waiting.
//!
//! Events are numbered when they are added to a batch (`sled::Db::generate_id`: increasing,
//! also across restarts) and stored under `<slot>x<seq>`; within a slot they sort by number. The publisher may deliver an event
//! only once the batch that wrote it is on disk. It learns that without forcing a flush of its
//! own: every sequence number below the **watermark** (the smallest one still in flight) was
//! either committed durably or never written at all.

use crate::domain::Slot;
use parking_lot::Mutex;
use std::collections::HashSet;
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Numbers handed to batches that are not durable yet.
    in_flight: HashSet<u64>,
    /// Slots with durable events the publisher has not looked at.
    dirty: HashSet<Slot>,
}

#[derive(Default)]
pub struct Outbox {
    state: Mutex<State>,
    /// Woken when events became durable.
    written: Notify,
}

impl Outbox {
    /// Numbers an event; `next` is called under the lock so numbering and registering are one
    /// step (a watermark read in between cannot miss it).
    pub fn begin<E>(&self, next: impl FnOnce() -> Result<u64, E>) -> Result<u64, E> {
        let mut s = self.state.lock();
        let seq = next()?;
        s.in_flight.insert(seq);
        Ok(seq)
    }

    /// The batch holding `seqs` is durable (or was dropped): they no longer hold the
    /// watermark back, and `slot` has events to publish.
    pub fn finish(&self, slot: Option<Slot>, seqs: &[u64], durable: bool) {
        {
            let mut s = self.state.lock();
            for seq in seqs {
                s.in_flight.remove(seq);
            }
            if let (true, Some(slot)) = (durable, slot) {
                s.dirty.insert(slot);
            }
        }
        if durable {
            self.written.notify_one();
        }
    }

    /// Whether the batch holding event `seq` may not be durable yet.
    pub fn in_flight(&self, seq: u64) -> bool {
        self.state.lock().in_flight.contains(&seq)
    }

    /// The slots with events waiting, forgetting them.
    pub fn take_dirty(&self) -> Vec<Slot> {
        self.state.lock().dirty.drain().collect()
    }

    /// Marks a slot as still holding events (some were above the watermark).
    pub fn mark_dirty(&self, slot: Slot) {
        self.state.lock().dirty.insert(slot);
    }

    pub async fn written(&self) {
        self.written.notified().await;
    }
}
