//! Live ticket changes for `GET /api/tickets/stream` (Server-Sent Events).
//!
//! The read model tells [`Live`] what each applied event meant to a buyer (a ticket listed,
//! reserved, released, sold, withdrawn or edited): it sees every node's events, so a stream on
//! any node carries the whole cluster's changes, once each (a redelivered event changes no
//! row, so it is not told again).
//!
//! Each change is numbered on this node and rendered once as an SSE frame with the id
//! `<boot>-<n>` (`boot` differs on every start). The last [`KEPT`] changes are kept, so a client
//! that reconnects with `Last-Event-ID` gets what it missed, without a gap, from the same node;
//! an id this node cannot resume from (another node's, from before a restart, or older than
//! what is kept) gets a `reset` event instead: the page reloads its list. A page names the
//! [`Live::position`] it was read at; its script opens the stream from there (`?since=`).
//!
//! Each subscriber has a queue of at most [`QUEUE`] frames; one that falls that far behind (a
//! client that stopped reading) is closed rather than buffered for: it gets nothing more and
//! its stream ends once it has read what was queued. Streams are bounded per node
//! (`live.max_streams`, a closed one counted until its client goes away): past it,
//! [`Live::subscribe`] refuses.

use crate::domain::Ticket;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Frames a subscriber may have waiting before it is closed.
pub const QUEUE: usize = 256;
/// Changes kept for resuming.
pub const KEPT: usize = 1024;

/// What a change meant to a buyer: the SSE event name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Listed,
    Reserved,
    Released,
    Sold,
    Withdrawn,
    Updated,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Listed => "listed",
            Self::Reserved => "reserved",
            Self::Released => "released",
            Self::Sold => "sold",
            Self::Withdrawn => "withdrawn",
            Self::Updated => "updated",
        }
    }
}

/// A frame as sent (shared by every subscriber).
pub type Frame = bytes::Bytes;

struct State {
    /// The number of the last change.
    last: u64,
    /// The last [`KEPT`] changes, by number (rendered when a client resumes).
    recent: VecDeque<(u64, Change, Ticket)>,
    subscribers: Vec<mpsc::Sender<Frame>>,
}

struct Inner {
    boot: String,
    state: Mutex<State>,
    streams: AtomicUsize,
    max_streams: usize,
    /// Subscribers closed for falling [`QUEUE`] frames behind.
    overflowed: AtomicU64,
}

/// The node's live change feed (cheap to clone).
#[derive(Clone)]
pub struct Live(Arc<Inner>);

/// Where a new subscriber starts.
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    /// With the next change.
    Now,
    /// After the change with this id (`Last-Event-ID`): what was missed first, or a reset when
    /// this node cannot tell it.
    After(&'a str),
    /// After a page's [`Live::position`] where this node can resume it, else now: the page may
    /// have been read on another node (behind a load balancer) or before a restart, where a
    /// reset would only have it read there again.
    Page(&'a str),
}

/// One subscriber: what it missed (or `None`: it must reset), then the changes as they come.
pub struct Subscription {
    /// `Some(frames)`, sent first, when the subscriber could be brought up to date (from where
    /// it started). `None`: its `Last-Event-ID` could not be resumed from.
    pub missed: Option<Vec<Frame>>,
    /// An id-only frame naming the last change the subscriber is now up to date with: a
    /// browser keeps it as its last event id without an event, so even a stream that heard no
    /// change reconnects with `Last-Event-ID` (resumed on this node, a reset on another).
    pub at: Frame,
    pub frames: mpsc::Receiver<Frame>,
    _place: Place,
}

/// A stream's place among `live.max_streams`, given back when its subscription ends: when its
/// response is dropped (the client gone). A stream closed for falling behind keeps its place
/// until then: a client that stops reading is not written to, so its connection lingers until
/// it goes away, and the bound must hold for such connections too.
struct Place(Arc<Inner>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Live {
    pub fn new(max_streams: usize) -> Self {
        Self(Arc::new(Inner {
            boot: format!("{:x}", rand::random::<u64>()),
            state: Mutex::new(State { last: 0, recent: VecDeque::new(), subscribers: Vec::new() }),
            streams: AtomicUsize::new(0),
            max_streams,
            overflowed: AtomicU64::new(0),
        }))
    }

    /// Tells every subscriber that `ticket` changed so. Rendered only when someone listens
    /// (a node without streams pays one copy of the ticket, kept for resuming).
    pub fn tell(&self, change: Change, ticket: &Ticket) {
        let mut s = self.0.state.lock();
        s.last += 1;
        let n = s.last;
        if s.recent.len() == KEPT {
            s.recent.pop_front();
        }
        s.recent.push_back((n, change, ticket.clone()));
        if s.subscribers.is_empty() {
            return;
        }
        let frame = self.frame(n, change, ticket);
        let overflowed = &self.0.overflowed;
        s.subscribers.retain(|tx| match tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                overflowed.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// Change `n` as an SSE frame: its id, its name, the ticket as the API shows it.
    fn frame(&self, n: u64, change: Change, ticket: &Ticket) -> Frame {
        let data = serde_json::to_string(&crate::json::TicketView::of(ticket)).unwrap_or_default();
        Frame::from(format!("id: {}\nevent: {}\ndata: {data}\n\n", self.id(n), change.as_str()))
    }

    /// The event id of change `n` on this node.
    fn id(&self, n: u64) -> String {
        format!("{}-{n}", self.0.boot)
    }

    /// The id of the last change told so far. A page names the position it was read at, so
    /// that its script's stream resumes from there: a change between the page and the stream
    /// is not lost (one already on the page may come again: the script tells them apart).
    pub fn position(&self) -> String {
        self.id(self.0.state.lock().last)
    }

    /// A new subscriber starting at `start`; `None` past `live.max_streams` open streams.
    pub fn subscribe(&self, start: Start) -> Option<Subscription> {
        if self.0.streams.fetch_add(1, Ordering::AcqRel) >= self.0.max_streams {
            self.0.streams.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let place = Place(Arc::clone(&self.0));
        let (tx, rx) = mpsc::channel(QUEUE);
        // Under the lock: no change falls between what was missed and what comes (a change
        // told meanwhile is queued for this subscriber behind what it missed).
        let mut s = self.0.state.lock();
        let (after, most) = match start {
            Start::Now => (Some(s.last), KEPT),
            // More missed than a queue holds is more than a reconnecting client should be sent
            // at once: it reads its list again instead.
            Start::After(id) => (self.resumable(&s, id), QUEUE),
            // A page is never told to reset (under a burst of changes it would reload for ever).
            Start::Page(id) => (self.resumable(&s, id).or(Some(s.last)), KEPT),
        };
        // `recent` is in order: what came after `after` is its tail (copied here, rendered once
        // the feed is free again).
        let missed = after
            .map(|after| {
                s.recent.range(s.recent.partition_point(|(n, _, _)| *n <= after)..).cloned().collect::<Vec<_>>()
            })
            .filter(|m| m.len() <= most);
        let last = s.last;
        // Streams that ended since the last change are let go of here too (quiet times).
        s.subscribers.retain(|tx| !tx.is_closed());
        s.subscribers.push(tx);
        drop(s);
        let missed = missed.map(|m| m.iter().map(|(n, change, ticket)| self.frame(*n, *change, ticket)).collect());
        let at = Frame::from(format!("id: {}\n\n", self.id(last)));
        Some(Subscription { missed, at, frames: rx, _place: place })
    }

    /// The number after which `id` resumes, if this node can resume it without a gap.
    fn resumable(&self, s: &State, id: &str) -> Option<u64> {
        let (boot, n) = id.trim().split_once('-')?;
        let n: u64 = n.parse().ok()?;
        if boot != self.0.boot || n > s.last {
            return None;
        }
        // Every change after `n` is still kept.
        let oldest = s.recent.front().map_or(s.last + 1, |(first, _, _)| *first);
        (n + 1 >= oldest).then_some(n)
    }

    /// Closes every stream (the node is stopping).
    pub fn close_all(&self) {
        self.0.state.lock().subscribers.clear();
    }

    /// Open streams.
    pub fn streams(&self) -> usize {
        self.0.streams.load(Ordering::Acquire)
    }

    /// Streams closed so far for falling behind.
    pub fn overflowed(&self) -> u64 {
        self.0.overflowed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[path = "live_test.rs"]
mod tests;
