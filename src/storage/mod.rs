//! Where bytes hit the disk. One sled database with three trees:
//!
//! * `entities`: every entity record, index and outbox entry, under slot-first keys
//!   ([`keys`]). A [`WriteBatch`] changes one slot only, atomically, and is acknowledged once
//!   flushed ([`group_commit`]).
//! * `read_model`: the node's projections for lists ([`ReadModelTree`]), fed from the outbox.
//! * `meta`: the layout version ([`migrate`] upgrades data dirs of earlier releases) and the
//!   data dir's place in a cluster ([`Placement`]).
//!
//! Records are in versioned envelopes ([`envelope`]).
//!
//! The data dir's free space is watched ([`space`]): while the disk is full, writes are refused
//! before anything is queued ([`StorageError::Full`]) and reads go on.

pub mod envelope;
mod group_commit;
mod history;
pub mod keys;
pub mod log;
pub mod migrate;
mod outbox;
mod placement;
pub mod read_model;
mod records;
pub mod shard_file;
pub mod space;

pub use envelope::{Kind, Record};
pub use group_commit::{trace_flushes, FlushObserver, WriteCounter, WriteObserver, Written};
pub use history::HistoryPage;
pub use placement::Placement;
pub use read_model::ReadModelTree;
pub use records::{DeadlineEntry, EmailOwner, Marker, StoredEvent, TraceContext, WebhookSeen};

use crate::domain::{Event, HistoryEntry, Mail, MailEntry, Slot, SLOTS};
use group_commit::{GroupCommit, Submission};
use log::{Ops, Position, ShardLogs};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O: {0}")]
    Io(#[from] sled::Error),
    #[error("record {key} cannot be decoded: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("record cannot be encoded: {0}")]
    Encode(String),
    #[error("storage transaction aborted: {0}")]
    Conflict(String),
    /// The writer thread could not apply a batch.
    #[error("storage write failed: {0}")]
    Failed(String),
    /// A write that breaks the store's rules (a bug, refused rather than written).
    #[error("refused write: {0}")]
    Refused(&'static str),
    /// The disk is full ([`space`]): the write was refused before anything was queued, so it
    /// did not happen. Returned only then, never for a write already accepted.
    #[error("storage full: write refused")]
    Full,
    /// With replication on: the write's shard is not served by this node now (it lost or has
    /// not yet established its term). Refused before anything was queued.
    #[error("this node does not serve the shard now: write refused")]
    NotServed,
    /// With replication on: the shard's log did not confirm the write. It may or may not take
    /// effect; the shard is fenced until a new term re-establishes it.
    #[error("the shard's log did not confirm the write")]
    Unreplicated,
}

/// What the store can do now (readiness).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Reads and writes.
    Ok,
    /// The disk is full: reads go on, writes are refused until space is freed.
    Full { available_bytes: u64, reserve_bytes: u64 },
    /// sled failed a write or a flush: reads go on, writes are refused until the node is
    /// restarted (sled keeps its first I/O error for good).
    Failed(String),
}

/// A decoded record, or the decode error with the raw bytes.
pub type Lenient<T> = Result<T, (StorageError, Vec<u8>)>;
/// A mail waiting: its key, its slot and its entry.
pub type PendingMail = (Vec<u8>, Slot, Lenient<MailEntry>);
/// A key with its leniently decoded record.
pub type LenientEntry<T> = (Vec<u8>, Lenient<T>);

/// A set of changes to one slot, written atomically (one sled batch) and flushed together.
#[derive(Default)]
pub struct WriteBatch {
    /// The changes, in order (`None`: remove).
    ops: Ops,
    slot: Option<Slot>,
    /// A key of another slot was added: a bug (asserted at commit).
    spans_slots: bool,
    /// Events for the slot's outbox, numbered when the batch is queued ([`Store::write`]).
    unnumbered: Vec<Event>,
    /// Outbox numbers of the events in this batch, once numbered.
    events: Vec<u64>,
    /// The trace its events were written in (with telemetry on), kept with each of them.
    trace: Option<TraceContext>,
    outbox: Option<Arc<outbox::Outbox>>,
}

impl WriteBatch {
    fn touch(&mut self, key: &[u8]) {
        let slot = keys::slot_of(key);
        match self.slot {
            None => self.slot = slot,
            Some(mine) if slot != Some(mine) => self.spans_slots = true,
            Some(_) => {}
        }
    }

    pub fn put<T: Record>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StorageError> {
        let encoded = envelope::encode(value)?;
        self.put_raw(key, encoded);
        Ok(())
    }

    /// Inserts an already-encoded record.
    pub fn put_raw(&mut self, key: Vec<u8>, encoded: Vec<u8>) {
        self.touch(&key);
        self.ops.push((key, Some(encoded)));
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.touch(&key);
        self.ops.push((key, None));
    }

    /// Keeps `trace` with this batch's events (their consumers continue it).
    pub fn traced(&mut self, trace: Option<TraceContext>) {
        self.trace = trace;
    }

    /// The slot this batch writes (`None` while empty).
    pub fn slot(&self) -> Option<Slot> {
        self.slot
    }

    /// Whether keys of more than one slot were added.
    pub fn spans_slots(&self) -> bool {
        self.spans_slots
    }

    /// A batch that spans two slots is a bug: it panics in debug builds (and tests) and is
    /// refused, not written, in release builds.
    fn check_one_slot(&self) -> Result<(), StorageError> {
        debug_assert!(!self.spans_slots, "a write batch spans two slots (first slot {:?})", self.slot);
        if self.spans_slots {
            return Err(StorageError::Refused("a write batch spans two slots"));
        }
        Ok(())
    }

    fn settle(&mut self, durable: bool) {
        if let Some(outbox) = self.outbox.take() {
            outbox.finish(self.slot, &std::mem::take(&mut self.events), durable);
        }
    }

    #[cfg(test)]
    pub(crate) fn settle_for_tests(&mut self) {
        self.settle(true);
    }

    /// Whether this batch only records or frees claims (an `Idempotency-Key`'s outcome, a
    /// provider webhook id given back after a failure): the rest of a request the store
    /// already accepted, since a claim itself is refused while full like any new write.
    /// Refusing it would answer a request that ran with "nothing happened", or keep a webhook
    /// claimed that was never handled.
    fn continues_an_accepted_request(&self) -> bool {
        self.unnumbered.is_empty()
            && !self.ops.is_empty()
            && self.ops.iter().all(|(key, value)| match keys::kind_of(key) {
                Some(keys::IDEMPOTENCY) => true,
                Some(keys::WEBHOOK_EVENT) => value.is_none(),
                _ => false,
            })
    }
}

impl Drop for WriteBatch {
    /// A batch dropped before it was queued leaves nothing behind. Once queued, its events
    /// belong to the writer thread, which releases them to the publisher right after the flush
    /// that covers them, before any writer waiting on that flush wakes (so a reply's client
    /// that lists next finds them), and whether or not anyone still waits.
    fn drop(&mut self) {
        self.settle(false);
    }
}

/// A batch queued for the writer thread: on disk once [`Pending::durable`] returns.
pub struct Pending {
    commit: Arc<GroupCommit>,
    /// Its place in the writer's order: durable once the flushed sequence reaches it.
    pub seq: u64,
    /// The outbox numbers of its events (in its slot).
    pub outbox_seqs: Vec<u64>,
}

impl Pending {
    /// Waits for the flush that covers this batch (its events are released by then).
    pub async fn durable(self) -> Result<(), StorageError> {
        self.commit.wait(self.seq).await
    }
}

/// Changes that may touch several slots (a sign-out over an old token family, housekeeping),
/// kept as one [`WriteBatch`] per slot, since a batch never spans two.
#[derive(Default)]
pub struct SlotBatches(BTreeMap<Option<Slot>, WriteBatch>);

impl SlotBatches {
    pub fn put<T: Record>(&mut self, key: Vec<u8>, value: &T) -> Result<(), StorageError> {
        self.0.entry(keys::slot_of(&key)).or_default().put(key, value)
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.0.entry(keys::slot_of(&key)).or_default().remove(key);
    }

    /// Commits each slot's batch durably (one batch, one flush, when all share a slot).
    pub async fn commit(self, store: &Store) -> Result<(), StorageError> {
        for batch in self.0.into_values() {
            store.commit(batch).await?;
        }
        Ok(())
    }

    /// Removes `keys` (expired records: forgetting one needs no flush of its own, so one sync
    /// at the end). Returns how many.
    pub async fn remove_expired(store: &Store, keys: Vec<Vec<u8>>) -> Result<usize, StorageError> {
        let count = keys.len();
        let mut batches = Self::default();
        for key in keys {
            batches.remove(key);
        }
        batches.apply_then_sync(store).await?;
        Ok(count)
    }

    /// Applies each slot's batch, then waits for one flush covering them all (for removals
    /// that need no durability of their own per slot).
    pub async fn apply_then_sync(self, store: &Store) -> Result<(), StorageError> {
        store.writable()?;
        for (slot, batch) in self.0 {
            // A copy of a shard another node writes is pruned by that node, through the log.
            if slot.is_none_or(|slot| store.writes_slot(slot)) {
                store.apply(batch)?;
            }
        }
        store.commit.durable(&store.data).await
    }
}

/// The node's store: cheap to clone, shared by every actor.
#[derive(Clone)]
pub struct Store {
    data: sled::Tree,
    read_model: ReadModelTree,
    meta: sled::Tree,
    commit: Arc<GroupCommit>,
    outbox: Arc<outbox::Outbox>,
    /// Held while an already-applied write is queued for its log (so the log has them in the
    /// order they were applied).
    applied_order: Arc<parking_lot::Mutex<()>>,
    /// Every write's keys and bytes, for the write amplification metrics.
    written: WriteCounter,
    /// Whether each event is also kept in its entity's history (`audit.retention_days` > 0).
    keep_history: bool,
    /// Whether events' mail is queued (`mail.smtp_url` set).
    queue_mail: bool,
}

/// How a node opens its data dir (`[storage]` settings).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// sled's page cache (`storage.cache_mb`).
    pub cache_bytes: u64,
    /// Free space kept in reserve, and the headroom file's size (`storage.reserve_mb`; 0
    /// turns the watch off). `None`: not watched, and a node's headroom file left alone
    /// (tools, unit tests).
    pub reserve_bytes: Option<u64>,
    /// Whether events are kept in their entity's history after delivery (the audit trail).
    pub keep_history: bool,
    /// Queue the mail events ask for (`crate::mail` sends it).
    pub queue_mail: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { cache_bytes: 64 << 20, reserve_bytes: None, keep_history: true, queue_mail: false }
    }
}

impl Store {
    /// Opens (and if needed migrates) the data dir, without watching its free space.
    pub fn open(path: &Path, observe_flush: FlushObserver) -> Result<Self, StorageError> {
        Self::open_with(path, Options::default(), observe_flush)
    }

    /// Opens the data dir as a node does. The free-space watch starts first: on a full disk
    /// it gives its headroom back so that sled, which writes as it opens, can start.
    pub fn open_with(path: &Path, options: Options, observe_flush: FlushObserver) -> Result<Self, StorageError> {
        let space = match options.reserve_bytes {
            Some(reserve) => space::Space::open(path, reserve)
                .map_err(|e| StorageError::Failed(format!("free space of {}: {e}", path.display())))?,
            None => space::Space::unwatched(path),
        };
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(options.cache_bytes)
            .open()?;
        let data = db.open_tree("entities")?;
        let meta = db.open_tree("meta")?;
        let written = WriteCounter::default();
        let read_model = ReadModelTree::new(db.open_tree("read_model")?, meta.clone(), written.clone());
        migrate::run(&db, &data, &meta)?;
        let outbox = Arc::new(outbox::Outbox::default());
        let commit = GroupCommit::start(db.clone(), Arc::new(space), observe_flush, written.clone());
        Ok(Self {
            data,
            read_model,
            meta,
            commit,
            outbox,
            applied_order: Arc::default(),
            written,
            keep_history: options.keep_history,
            queue_mail: options.queue_mail,
        })
    }

    pub fn get<T: Record>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.data.get(key)? {
            Some(bytes) => envelope::decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The encoded bytes at `key` (for compare-and-swap callers).
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.data.get(key)?.map(|v| v.to_vec()))
    }

    /// Atomically replaces `expected` with `new` at `key`. `Ok(false)` if someone else changed
    /// it first. In memory (sync to make it durable), except with replication on: then it
    /// returns once flushed and confirmed by its shard's log.
    pub async fn compare_and_swap(
        &self,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StorageError> {
        self.writable()?;
        let Some(log) = self.log_term(Some(key))? else {
            let swapped = self.data.compare_and_swap(key, expected, new)?.is_ok();
            if swapped {
                self.written.direct(&self.data, &vec![(key.to_vec(), new.map(<[u8]>::to_vec))]);
            }
            return Ok(swapped);
        };
        let seq = {
            // Swapped and queued in one step, so the log has swaps in the order they happened.
            let _order = self.applied_order.lock();
            if self.data.compare_and_swap(key, expected, new)?.is_err() {
                return Ok(false);
            }
            self.submit_applied(vec![(key.to_vec(), new.map(<[u8]>::to_vec))], log)
        };
        self.commit.wait(seq).await?;
        Ok(true)
    }

    /// Queues already-applied operations to be logged (and flushed) with the next group.
    fn submit_applied(&self, ops: Ops, log: (u32, u64)) -> u64 {
        let mut submission = Submission::new(&self.data, Some(ops), None);
        submission.applied = true;
        submission.log = Some(log);
        self.commit.submit(submission)
    }

    /// With replication on, the shard and term a write to `key`'s slot is logged in: refused
    /// when this node does not serve that shard now. `None` without replication.
    fn log_term(&self, key: Option<&[u8]>) -> Result<Option<(u32, u64)>, StorageError> {
        match (self.commit.logs(), key) {
            (Some(logs), Some(key)) => logs.term_for(key).map(Some),
            _ => Ok(None),
        }
    }

    pub fn contains(&self, key: &[u8]) -> Result<bool, StorageError> {
        Ok(self.data.contains_key(key)?)
    }

    /// The number of the last event written in `slot` since this node started, if any: a
    /// reader elsewhere that has applied it has seen every change of the slot made so far.
    pub fn last_event_seq(&self, slot: Slot) -> Option<u64> {
        self.outbox.last(slot)
    }

    /// Appends `event` to the outbox of the batch's slot, as part of `batch` (numbered when the
    /// batch is queued).
    pub fn push_event(&self, batch: &mut WriteBatch, slot: Slot, event: Event) -> Result<(), StorageError> {
        batch.touch(&keys::outbox_seq(slot));
        batch.outbox.get_or_insert_with(|| Arc::clone(&self.outbox));
        batch.unnumbered.push(event);
        Ok(())
    }

    /// Numbers the batch's events and writes them into it, then runs `queue` on it, under the
    /// outbox lock (numbering order is queueing order: `outbox`).
    fn number_then<R>(
        &self,
        batch: &mut WriteBatch,
        queue: impl FnOnce(&mut WriteBatch) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let (Some(slot), false) = (batch.slot, batch.unnumbered.is_empty()) else { return queue(batch) };
        // After a failed apply nothing is numbered: its numbers would never reach the disk.
        self.commit.check()?;
        let outbox = batch.outbox.clone().unwrap_or_else(|| Arc::clone(&self.outbox));
        outbox.number(
            slot,
            batch.unnumbered.len(),
            || self.stored_last_seq(slot),
            |seqs| {
                let events = std::mem::take(&mut batch.unnumbered);
                let at_ms = crate::domain::now_ms();
                for (seq, event) in seqs.iter().zip(&events) {
                    // Encoded once for its outbox entry and its entity's history.
                    let encoded = envelope::encode_field(event)?;
                    // An entity's history is in its own slot: an event of an entity of another
                    // slot (a bug) is not kept rather than written across slots.
                    let entity = event.entity().filter(|e| self.keep_history && e.slot() == slot);
                    debug_assert!(event.entity().is_none_or(|e| e.slot() == slot), "an event of another slot");
                    if let Some(entity) = entity {
                        let reason = HistoryEntry::reason(event, &events);
                        let entry = envelope::encode_around::<HistoryEntry, _, _>(&(seq, at_ms), &encoded, &(reason,))?;
                        batch.put_raw(keys::history(&entity, *seq), entry);
                    }
                    batch.put_raw(
                        keys::outbox(slot, *seq),
                        envelope::encode_around::<StoredEvent, _, _>(seq, &encoded, &(batch.trace,))?,
                    );
                    // The mail it asks for, in the same write: sent once this is durable.
                    if self.queue_mail {
                        for (k, mail) in Mail::for_event(event).into_iter().enumerate() {
                            let k = u8::try_from(k).unwrap_or(u8::MAX);
                            batch.put(keys::mail(slot, *seq, k), &MailEntry { seq: *seq, k, at_ms, mail })?;
                        }
                    }
                }
                if let Some(last) = seqs.last() {
                    batch.put_raw(keys::outbox_seq(slot), last.to_be_bytes().to_vec());
                }
                batch.events.extend_from_slice(seqs);
                queue(batch)
            },
        )
    }

    /// The last outbox number of `slot` on disk: its counter, or the last entry written by a
    /// release that numbered events otherwise.
    fn stored_last_seq(&self, slot: Slot) -> Result<u64, StorageError> {
        let counter = match self.data.get(keys::outbox_seq(slot))? {
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref()).map(u64::from_be_bytes).unwrap_or(0),
            None => 0,
        };
        let last_entry = match self.data.scan_prefix(keys::prefix(slot, keys::OUTBOX)).next_back() {
            Some(item) => keys::parse_outbox(&item?.0).map_or(0, |(_, seq)| seq),
            None => 0,
        };
        Ok(counter.max(last_entry))
    }

    /// Applies `batch` atomically and returns once it is on disk.
    pub async fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.write(batch)?.durable().await
    }

    /// Queues `batch` for the writer thread, which applies it atomically, in submission order,
    /// and flushes it with every other batch queued meanwhile. The caller may go on before it
    /// is on disk, but no effect of the write may leave the caller until [`Pending::durable`]
    /// (the output gate, `actors::durable`).
    ///
    /// Refused with [`StorageError::Full`] while the disk is full, before anything is queued.
    pub fn write(&self, mut batch: WriteBatch) -> Result<Pending, StorageError> {
        batch.check_one_slot()?;
        if !batch.continues_an_accepted_request() {
            self.writable()?;
        }
        let log = self.log_term(batch.ops.first().map(|(key, _)| key.as_slice()))?;
        self.number_then(&mut batch, |batch| {
            let outbox_seqs = batch.events.clone();
            let settle = batch.outbox.take().map(|outbox| {
                let (slot, events) = (batch.slot, std::mem::take(&mut batch.events));
                Box::new(move |durable: bool| {
                    // Not durable means sled failed after applying it, maybe: the events may be
                    // readable in its memory yet never reach the disk, so they stay in flight
                    // (unpublished) for as long as this process lives.
                    if durable {
                        outbox.finish(slot, &events, true);
                    }
                }) as group_commit::Settle
            });
            let mut submission = Submission::new(&self.data, Some(std::mem::take(&mut batch.ops)), settle);
            submission.log = log;
            let seq = self.commit.submit(submission);
            Ok(Pending { commit: Arc::clone(&self.commit), seq, outbox_seqs })
        })
    }

    /// Whether a new write would be accepted: [`StorageError::Full`] while the disk is full,
    /// `Failed` once sled failed (the node takes no more writes until restarted).
    pub fn writable(&self) -> Result<(), StorageError> {
        self.commit.check()?;
        if self.commit.space().is_full() {
            return Err(StorageError::Full);
        }
        Ok(())
    }

    /// Free space of the data dir's disk at the writer's last look (0 when not watched).
    pub fn available_bytes(&self) -> u64 {
        self.commit.space().last_seen().0
    }

    /// What the store can do now (readiness).
    pub fn health(&self) -> Health {
        if let Err(e) = self.commit.check() {
            return Health::Failed(e.to_string());
        }
        let space = self.commit.space();
        if space.is_full() {
            let (available_bytes, reserve_bytes) = space.last_seen();
            return Health::Full { available_bytes, reserve_bytes };
        }
        Health::Ok
    }

    /// Whether the write numbered `seq` is on disk.
    pub fn is_durable(&self, seq: u64) -> bool {
        self.commit.is_durable(seq)
    }

    /// Waits until the write numbered `seq` (and all before it) is on disk.
    pub async fn durable(&self, seq: u64) -> Result<(), StorageError> {
        self.commit.wait(seq).await
    }

    /// Up to `limit` mails waiting in the slots this node writes, each slot's in order, and
    /// each only once the write of the event that asked for it is on disk (a slot's list stops
    /// at the first that may not be). Undecodable entries come as errors, with their key.
    pub fn pending_mail(&self, limit: usize) -> Result<Vec<PendingMail>, StorageError> {
        let mut out = Vec::new();
        let mut stopped: Option<Slot> = None;
        self.sweep(keys::MAIL, |key, value| {
            let Some(slot) = keys::slot_of(key) else { return Ok(true) };
            if stopped == Some(slot) || !self.writes_slot(slot) {
                return Ok(true);
            }
            let entry = envelope::decode::<MailEntry>(key, value).map_err(|e| (e, value.to_vec()));
            if let Ok(entry) = &entry {
                if self.outbox.in_flight(slot, entry.seq) {
                    stopped = Some(slot);
                    return Ok(true);
                }
            }
            out.push((key.to_vec(), slot, entry));
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// The trace context of the flush that made write `seq` durable (with telemetry on, while
    /// recent).
    pub fn flush_of(&self, seq: u64) -> Option<TraceContext> {
        self.commit.flush_of(seq)
    }

    /// Applies `batch` atomically without waiting for the disk: for bookkeeping that is safe to
    /// redo after a crash (deleting published outbox entries). It is flushed with the next
    /// durable write, or at shutdown.
    pub fn apply(&self, mut batch: WriteBatch) -> Result<(), StorageError> {
        batch.check_one_slot()?;
        if !batch.unnumbered.is_empty() {
            return Err(StorageError::Refused("events need a durable commit"));
        }
        let ops = std::mem::take(&mut batch.ops);
        let Some(log) = self.log_term(ops.first().map(|(key, _)| key.as_slice()))? else {
            self.data.apply_batch(group_commit::sled_batch(ops))?;
            return Ok(());
        };
        let _order = self.applied_order.lock();
        self.data.apply_batch(group_commit::sled_batch(ops.clone()))?;
        self.submit_applied(ops, log);
        Ok(())
    }

    /// Removes keys one at a time, unflushed, for bookkeeping that needs no atomicity and is
    /// safe to redo after a crash (published outbox entries). Unlike a batch, which takes
    /// sled's global lock exclusively and so waits for a flush in progress while blocking every
    /// read, single-key writes take it shared (BENCHMARKS.md).
    pub fn remove_each(&self, keys: impl IntoIterator<Item = Vec<u8>>) -> Result<(), StorageError> {
        if self.commit.logs().is_none() {
            let removed: Ops = keys.into_iter().map(|key| (key, None)).collect();
            self.written.direct(&self.data, &removed);
            for (key, _) in removed {
                self.data.remove(key)?;
            }
            return Ok(());
        }
        // With replication on: logged per shard, in the order removed.
        let mut by_shard: BTreeMap<(u32, u64), Ops> = BTreeMap::new();
        let _order = self.applied_order.lock();
        for key in keys {
            // A shard no longer written here keeps its keys: its copy follows its new owner.
            let Ok(Some(log)) = self.log_term(Some(&key)) else { continue };
            self.data.remove(&key)?;
            by_shard.entry(log).or_default().push((key, None));
        }
        for (log, ops) in by_shard {
            self.submit_applied(ops, log);
        }
        Ok(())
    }

    /// Applies a batch's changes without settling its events (tests of the publisher's view of
    /// a commit that is applied but not yet flushed).
    #[cfg(test)]
    pub(crate) fn apply_unchecked_for_tests(&self, batch: &mut WriteBatch) {
        let _ = self.number_then(batch, |batch| {
            Ok(self.data.apply_batch(group_commit::sled_batch(std::mem::take(&mut batch.ops))))
        });
    }

    /// Waits until everything applied or queued so far is on disk (a failure is logged: the
    /// callers' own writes were acknowledged through their own waits).
    pub async fn sync(&self) {
        if let Err(e) = self.commit.durable(&self.data).await {
            tracing::warn!(error = %e, "storage sync failed");
        }
    }

    /// Inserts `value` at `key` only if the key is absent, atomically with `also` (same slot);
    /// `Ok(false)` when the key was taken. Used where uniqueness is the rule (emails).
    pub async fn insert_unique<T: Record>(
        &self,
        key: Vec<u8>,
        value: &T,
        also: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<bool, StorageError> {
        debug_assert!(also.iter().all(|(k, _)| keys::slot_of(k) == keys::slot_of(&key)), "one slot per write");
        self.writable()?;
        let log = self.log_term(Some(&key))?;
        let encoded = envelope::encode(value)?;
        let _order = log.map(|_| self.applied_order.lock());
        let result = self.data.transaction(|tx| {
            if tx.get(&key)?.is_some() {
                return Ok(false);
            }
            tx.insert(key.as_slice(), encoded.as_slice())?;
            for (k, v) in &also {
                tx.insert(k.as_slice(), v.as_slice())?;
            }
            Ok(true)
        });
        let inserted = result.map_err(|e: sled::transaction::TransactionError<()>| match e {
            sled::transaction::TransactionError::Storage(e) => StorageError::Io(e),
            sled::transaction::TransactionError::Abort(()) => StorageError::Conflict("aborted".into()),
        })?;
        let logged = match (inserted, log) {
            (true, Some(log)) => {
                let mut ops: Ops = vec![(key, Some(encoded))];
                ops.extend(also.into_iter().map(|(k, v)| (k, Some(v))));
                Some(self.submit_applied(ops, log))
            }
            _ => None,
        };
        drop(_order);
        match (inserted, logged) {
            (true, Some(seq)) => self.commit.wait(seq).await?,
            (true, None) => self.commit.durable(&self.data).await?,
            (false, _) => {}
        }
        Ok(inserted)
    }

    /// Encodes a record (for [`Store::insert_unique`]'s extra writes and compare-and-swap).
    pub fn encode<T: Record>(value: &T) -> Result<Vec<u8>, StorageError> {
        envelope::encode(value)
    }

    /// Up to `limit` records of `kind` in `slot`, in key order, from `start` (a full key) on.
    pub fn scan_slot<T: Record>(
        &self,
        slot: Slot,
        kind: u8,
        start: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, StorageError> {
        let prefix = keys::prefix(slot, kind);
        let from = start.map_or_else(|| prefix.clone(), <[u8]>::to_vec);
        let mut out = Vec::new();
        for item in self.data.range(from..) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), envelope::decode(&k, &v)?));
        }
        Ok(out)
    }

    /// Like [`Store::scan_slot`] from the start, but a record that does not decode is returned
    /// as an error with its raw bytes instead of ending the scan.
    pub fn scan_slot_lenient<T: Record>(
        &self,
        slot: Slot,
        kind: u8,
        limit: usize,
    ) -> Result<Vec<LenientEntry<T>>, StorageError> {
        let mut out = Vec::new();
        for item in self.data.scan_prefix(keys::prefix(slot, kind)).take(limit) {
            let (k, v) = item?;
            let decoded = envelope::decode(&k, &v).map_err(|e| (e, v.to_vec()));
            out.push((k.to_vec(), decoded));
        }
        Ok(out)
    }

    /// The keys of `kind` in `slot` starting with `prefix` (index keys with empty values).
    pub fn scan_keys(&self, prefix: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut out = Vec::new();
        for item in self.data.scan_prefix(prefix).keys().take(limit) {
            out.push(item?.to_vec());
        }
        Ok(out)
    }

    /// Visits every record of `kind` in every slot, slot by slot. Empty slots are skipped by
    /// seeking, so the cost is one seek per occupied slot plus the records of that kind: an
    /// index of a few entries is swept without reading the slots' other records.
    /// `visit` returns `false` to stop.
    pub fn sweep(
        &self,
        kind: u8,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let mut slot: u32 = 0;
        'slots: while slot < SLOTS {
            let start = keys::prefix(Slot(slot as u16), kind);
            let mut next = slot + 1;
            for item in self.data.range(start..) {
                let (k, v) = item?;
                let (Some(Slot(at)), Some(k_kind)) = (keys::slot_of(&k), keys::kind_of(&k)) else { continue };
                if u32::from(at) == slot && k_kind == kind {
                    if !visit(&k, &v)? {
                        return Ok(());
                    }
                    continue;
                }
                if u32::from(at) > slot {
                    // Jump straight to the next occupied slot.
                    next = u32::from(at);
                }
                slot = next;
                continue 'slots;
            }
            break;
        }
        Ok(())
    }

    /// Every record of `kind` in every slot, decoded (tests, tools and one-off rebuilds).
    pub fn sweep_all<T: Record>(&self, kind: u8) -> Result<Vec<(Vec<u8>, T)>, StorageError> {
        let mut out = Vec::new();
        self.sweep(kind, |k, v| {
            out.push((k.to_vec(), envelope::decode(k, v)?));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Whether the batch that wrote outbox event `seq` of `slot` may not be on disk yet (the
    /// publisher holds such an event back).
    pub fn outbox_in_flight(&self, slot: Slot, seq: u64) -> bool {
        self.outbox.in_flight(slot, seq)
    }

    /// The slots with durable events not yet looked at by the publisher, forgetting them.
    pub fn take_dirty_outbox_slots(&self) -> Vec<Slot> {
        self.outbox.take_dirty()
    }

    pub fn mark_outbox_dirty(&self, slot: Slot) {
        self.outbox.mark_dirty(slot);
    }

    /// Resolves after a commit that wrote outbox events became durable.
    pub async fn outbox_written(&self) {
        self.outbox.written().await;
    }

    /// The node's read-model tree.
    pub fn read_model(&self) -> &ReadModelTree {
        &self.read_model
    }

    /// Up to `limit` records of `kind` in the slots `slots`, in key order, after the key
    /// `after` (a page of a shard's entities).
    pub fn scan_kind_in_slots(
        &self,
        kind: u8,
        slots: std::ops::Range<u32>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<shard_file::Records, StorageError> {
        let first = after.and_then(keys::slot_of).map_or(slots.start, |s| u32::from(s.0).max(slots.start));
        let mut out = Vec::new();
        for slot in first..slots.end {
            let prefix = keys::prefix(Slot(slot as u16), kind);
            let from = match after {
                Some(after) if after.starts_with(&prefix) => [after, &[0]].concat(),
                _ => prefix.clone(),
            };
            for item in self.data.range(from..) {
                let (k, v) = item?;
                if !k.starts_with(&prefix) {
                    break;
                }
                out.push((k.to_vec(), v.to_vec()));
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Sets a value of the `meta` tree, flushed. Setting the value it holds writes nothing (a
    /// node restarting on a full disk records its unchanged placement).
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), StorageError> {
        if self.meta.get(name)?.is_some_and(|v| v.as_ref() == value) {
            return Ok(());
        }
        self.writable()?;
        self.meta.insert(name, value)?;
        self.meta.flush()?;
        Ok(())
    }

    /// A value of the `meta` tree (layout versions, markers).
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.meta.get(name)?.map(|v| v.to_vec()))
    }

    /// From now on `observe` is told what every write wrote (write amplification).
    pub fn observe_writes(&self, observe: WriteObserver) {
        self.written.observe(observe);
    }

    /// Turns replication on (`log`): from now on a write to a slot is refused unless its shard
    /// is established here, and is durable once flushed and confirmed by the shard's log.
    pub fn with_logs(&self, logs: Arc<ShardLogs>) {
        self.commit.log_to(logs, self.data.clone());
    }

    /// Whether this node writes `slot` now (always, without replication).
    pub fn writes_slot(&self, slot: Slot) -> bool {
        self.commit.logs().is_none_or(|logs| logs.term(logs.shard_of(slot)).is_some())
    }

    /// Before `slots` are written here again (a shard gained, or a new term after an entry
    /// the log did not confirm): their outbox numbering is read from the copy again, and no
    /// number of an earlier term stays in flight (a write the log did not confirm left its
    /// events in flight for good, and the publisher stops at the first one in flight).
    pub fn outbox_restart(&self, slots: std::ops::Range<u32>) {
        self.outbox.forget(slots);
    }

    /// `slots` are written here again: their events are published from the copy.
    pub fn outbox_gained(&self, slots: std::ops::Range<u32>) {
        for slot in slots {
            self.outbox.mark_dirty(Slot(slot as u16));
        }
    }

    /// The shard logs, with replication on.
    pub fn logs(&self) -> Option<&Arc<ShardLogs>> {
        self.commit.logs()
    }

    /// Where this node's copy of `shard` stands in its log (`None`: nothing of it applied).
    pub fn log_position(&self, shard: u32) -> Result<Option<Position>, StorageError> {
        let Some(logs) = self.commit.logs() else { return Ok(None) };
        self.get(&logs.position_key(shard))
    }

    /// Applies a followed log entry's operations to this node's copy of `shard`, with the
    /// copy's new position, as one batch (never logged: this node does not write the shard).
    /// Queued behind every earlier write; [`Store::sync`] waits for it.
    pub fn apply_followed(&self, shard: u32, mut ops: Ops, position: &Position) -> Result<(), StorageError> {
        let Some(logs) = self.commit.logs() else { return Err(StorageError::Refused("replication is off")) };
        ops.push((logs.position_key(shard), Some(envelope::encode(position)?)));
        self.commit.submit(Submission::new(&self.data, Some(ops), None));
        Ok(())
    }

    /// Removes every key of `slots` (a copy rebuilt from its log), and waits for the disk.
    pub async fn wipe_slots(&self, slots: std::ops::Range<u32>) -> Result<usize, StorageError> {
        // Slot keys sort by their slot; `slots.end` (at most SLOTS) bounds them from above.
        let (from, to) = (Slot(slots.start as u16).to_be_bytes(), Slot(slots.end as u16).to_be_bytes());
        let mut removed = 0;
        let mut batch = sled::Batch::default();
        for (n, item) in self.data.range(from..to).enumerate() {
            batch.remove(item?.0);
            removed = n + 1;
            if removed % 10_000 == 0 {
                self.data.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        self.data.apply_batch(batch)?;
        self.commit.durable(&self.data).await?;
        Ok(removed)
    }

    /// Flushes and stops the flush thread (ordered shutdown). Never waits on a disk that
    /// failed: the writer then fails the last flush at once.
    pub async fn close(&self) {
        if let Err(e) = self.commit.durable(&self.data).await {
            tracing::error!(error = %e, "the last flush failed: only writes acknowledged before are on disk");
        }
        self.commit.stop().await;
    }
}

#[cfg(test)]
#[path = "store_test.rs"]
mod tests;
