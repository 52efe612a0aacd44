//! The outbox's bookkeeping: which sequence numbers are written but not yet durable, and which
//! slots have events waiting.
//!
//! Events are numbered **per slot**, 1, 2, 3, ..., when their batch is queued for the writer
//! (`Store::write`), under one lock with the queueing itself: so a slot's numbers reach the
//! disk in order, the durable ones are always a prefix, and a consumer that de-duplicates on
//! (slot, sequence) can tell a gap from a redelivery. The last number is written in the same
//! batch (`<slot>q`), so numbering resumes after a restart even once the entries are
//! published and deleted. An event is stored under `<slot>x<seq>`. The publisher may deliver
//! an event only once the batch that wrote it is on disk; it asks [`Outbox::in_flight`].

use crate::domain::Slot;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Numbers handed to batches that are not durable yet.
    in_flight: HashSet<(Slot, u64)>,
    /// The last number handed out, per slot seen since start.
    last: HashMap<Slot, u64>,
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
    /// Numbers `count` events of `slot` and runs `queue` with their numbers, all under the
    /// lock, so that numbering order is queueing order. `stored_last` reads the slot's last
    /// number from disk the first time the slot is seen. If `queue` fails, the numbers are
    /// given back: nothing was queued.
    pub fn number<R, E>(
        &self,
        slot: Slot,
        count: usize,
        stored_last: impl FnOnce() -> Result<u64, E>,
        queue: impl FnOnce(&[u64]) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut s = self.state.lock();
        let last = match s.last.get(&slot) {
            Some(last) => *last,
            None => stored_last()?,
        };
        let seqs: Vec<u64> = (last + 1..=last + count as u64).collect();
        let queued = queue(&seqs)?;
        s.last.insert(slot, last + count as u64);
        s.in_flight.extend(seqs.iter().map(|seq| (slot, *seq)));
        Ok(queued)
    }

    /// The batch holding `seqs` is durable (or was dropped): they no longer hold the
    /// watermark back, and `slot` has events to publish.
    pub fn finish(&self, slot: Option<Slot>, seqs: &[u64], durable: bool) {
        {
            let mut s = self.state.lock();
            if let Some(slot) = slot {
                for seq in seqs {
                    s.in_flight.remove(&(slot, *seq));
                }
            }
            if let (true, Some(slot)) = (durable, slot) {
                s.dirty.insert(slot);
            }
        }
        if durable {
            self.written.notify_one();
        }
    }

    /// Forgets the numbering of `slots` (written elsewhere meanwhile), and the numbers in
    /// flight there (of writes that will never settle here): the next event of one reads its
    /// last number from disk.
    pub fn forget(&self, slots: std::ops::Range<u32>) {
        let mut s = self.state.lock();
        s.last.retain(|slot, _| !slots.contains(&u32::from(slot.0)));
        s.in_flight.retain(|(slot, _)| !slots.contains(&u32::from(slot.0)));
    }

    /// The last number handed to an event of `slot` since start (`None`: none yet).
    pub fn last(&self, slot: Slot) -> Option<u64> {
        self.state.lock().last.get(&slot).copied()
    }

    /// Whether the batch holding event `seq` of `slot` may not be durable yet.
    pub fn in_flight(&self, slot: Slot, seq: u64) -> bool {
        self.state.lock().in_flight.contains(&(slot, seq))
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

#[cfg(test)]
#[path = "outbox_test.rs"]
mod tests;
