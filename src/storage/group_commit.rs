//! Group commit on one writer thread: many writers, one fsync.
//!
//! Writers hand their batch to the `storage-writer` thread and wait for its sequence number to
//! be flushed. The thread takes everything queued, applies it in submission order, flushes
//! once, and publishes the highest sequence number now on disk.
//!
//! Why one thread applies every batch: in sled 0.34 a flush holds a shared lock for its whole
//! fsync and `apply_batch` takes that lock exclusively, so a batch applied on an actor's thread
//! blocks that thread (and every actor on it) until the flush in progress ends; measured here,
//! that allowed about two writes per flush. Applied here, between flushes, batches never wait
//! for one, and every writer queued during a flush joins the next (BENCHMARKS.md).
//!
//! The thread also watches the disk ([`Space`]): before each group and while idle, so a disk
//! filling up turns the store full (new writes refused) while what it already accepted still
//! fits. If sled fails anyway (an I/O error, or a disk filled faster than the headroom), no
//! write is reported durable any more: sled keeps its first error for good, so the thread
//! stops retrying, fails every waiter at once and keeps answering stop requests.

use super::log::{Entry, Ops, Position, ShardLogs};
use super::space::{Space, PROBE_EVERY};
use super::{envelope, StorageError, TraceContext};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Run by the writer thread once a batch is on disk (`true`) or could not be applied.
pub type Settle = Box<dyn FnOnce(bool) + Send>;

/// What one group wrote, per tree, kind of record (its key's kind byte; the read model and
/// meta trees count as one kind) and operation: keys and bytes (key + value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// `entities`, `read_model`, `meta` (or `other`).
    pub tree: &'static str,
    pub kind: &'static str,
    pub removed: bool,
    pub keys: u64,
    pub bytes: u64,
}

/// Called by the writer thread with each group's [`Written`] (write amplification metrics).
pub type WriteObserver = Arc<dyn Fn(&[Written]) + Send + Sync>;

/// Where every writer of the store reports what it wrote: the writer thread per group, and the
/// unflushed single-key writes (read model, published outbox entries) as they go.
#[derive(Clone, Default)]
pub struct WriteCounter(Arc<std::sync::OnceLock<WriteObserver>>);

impl WriteCounter {
    /// Reports to `observe` from now on (set once).
    pub fn observe(&self, observe: WriteObserver) {
        let _ = self.0.set(observe);
    }

    /// Reports `ops` written on `tree` outside the writer thread.
    pub fn direct(&self, tree: &sled::Tree, ops: &Ops) {
        if let Some(observe) = self.0.get() {
            let mut written = Some(Vec::new());
            count_ops(&mut written, tree, ops);
            observe(written.as_deref().unwrap_or_default());
        }
    }

    fn counting(&self) -> Option<Vec<Written>> {
        self.0.get().map(|_| Vec::new())
    }

    fn report(&self, written: &Option<Vec<Written>>) {
        if let (Some(observe), Some(written)) = (self.0.get(), written) {
            observe(written);
        }
    }
}

/// Adds `ops` on `tree` to `written` (when counting).
fn count_ops(written: &mut Option<Vec<Written>>, tree: &sled::Tree, ops: &Ops) {
    let Some(written) = written else { return };
    let tree_name = match &*tree.name() {
        b"entities" => "entities",
        b"read_model" => "read_model",
        b"meta" => "meta",
        _ => "other",
    };
    let entities = tree_name == "entities";
    for (key, value) in ops {
        let kind = if entities { super::keys::kind_of(key).map_or("other", super::keys::kind_name) } else { "all" };
        let removed = value.is_none();
        let bytes = (key.len() + value.as_ref().map_or(0, Vec::len)) as u64;
        match written.iter_mut().find(|w| w.kind == kind && w.removed == removed && w.tree == tree_name) {
            Some(w) => {
                w.keys += 1;
                w.bytes += bytes;
            }
            None => written.push(Written { tree: tree_name, kind, removed, keys: 1, bytes }),
        }
    }
}

/// One submission: a batch (or a bare flush request) and what to do once it is durable.
pub struct Submission {
    pub tree: sled::Tree,
    /// `None`: a bare flush request.
    pub ops: Option<Ops>,
    pub settle: Option<Settle>,
    /// Already applied to the tree by its caller (a compare-and-swap): only logged and flushed.
    pub applied: bool,
    /// The shard and term it is logged in (with replication on; `log`).
    pub log: Option<(u32, u64)>,
}

impl Submission {
    pub fn new(tree: &sled::Tree, ops: Option<Ops>, settle: Option<Settle>) -> Self {
        Self { tree: tree.clone(), ops, settle, applied: false, log: None }
    }
}

/// An entry handed to the log: its shard, its term, the writes in it, and the log's answer.
type Appended = (u32, u64, Vec<u64>, tokio::sync::oneshot::Receiver<Result<(), String>>);

/// A committed group on its way to the log's confirms (with replication on).
struct Confirming {
    target: u64,
    settles: Vec<(u64, Option<Settle>)>,
    failed: std::collections::HashSet<u64>,
    /// Per shard: its term, the writer sequence numbers in the entry, and the log's answer.
    appends: Vec<Appended>,
    durable: bool,
}

/// Failed writer sequence numbers kept for their waiters (older ones are forgotten).
const FAILED_KEPT: usize = 100_000;

/// With replication on, committed groups whose log entries may be unconfirmed at once. The
/// writer waits for the log before taking another group past it: while the log is slow the
/// writes queue up and go out as fewer, larger entries (the broker's cost is per entry).
const GROUPS_IN_FLIGHT: usize = 2;
/// The writer never waits on the log longer than this for one group (a confirm that does not
/// come ends in a failure by then anyway).
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(6);

/// `ops` as one sled batch (a later change of a key wins, as if applied in order).
pub fn sled_batch(ops: Ops) -> sled::Batch {
    let mut batch = sled::Batch::default();
    add_ops(&mut batch, ops);
    batch
}

fn add_ops(batch: &mut sled::Batch, ops: Ops) {
    for (key, value) in ops {
        match value {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
    }
}

struct Queue {
    /// Submissions waiting for the thread, in sequence order.
    pending: Vec<Submission>,
    /// The last sequence number handed out.
    last: u64,
    stopping: bool,
}

pub struct GroupCommit {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// The highest sequence number known to be on disk.
    flushed: watch::Receiver<u64>,
    /// Set once sled failed to apply or flush (it then fails every later write: see
    /// [`Space`]): from then on nothing more is reported durable (fail-stop), rather than
    /// build later writes on a lost one. What was flushed before stays durable.
    broken: Mutex<Option<String>>,
    /// The free-space watch of the data dir.
    space: Arc<Space>,
    /// Completes when the thread has exited (and dropped its handle on the database).
    exited: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    /// With replication on: the logs, the entities tree (positions are written there) and the
    /// thread that waits for the log's confirms.
    logs: std::sync::OnceLock<(Arc<ShardLogs>, sled::Tree, std::sync::mpsc::Sender<Confirming>)>,
    /// Writes the log did not confirm (their waiters fail; the watermark passes them).
    unreplicated: Mutex<std::collections::BTreeSet<u64>>,
    /// The watermark's sender, shared with the confirming thread once there is one.
    flushed_tx: Mutex<Option<Arc<watch::Sender<u64>>>>,
    /// Groups handed to the confirm thread and not yet settled, and its signal when one is.
    in_flight: Mutex<usize>,
    settled: Condvar,
    /// Told what each group wrote.
    written: WriteCounter,
    /// With telemetry on: the trace context of recent groups' `storage flush` spans, by the
    /// range of writes each made durable (a waiter links its own span to its write's flush).
    flushes: Mutex<std::collections::VecDeque<(std::ops::RangeInclusive<u64>, TraceContext)>>,
}

/// Groups whose flush span a waiter can still find.
const FLUSHES_KEPT: usize = 256;

/// How to read a span's trace context: installed when span export starts (storage knows
/// `tracing` spans, not OpenTelemetry). Unset, no flush is traced.
static CONTEXT_OF: std::sync::OnceLock<fn(&tracing::Span) -> Option<TraceContext>> = std::sync::OnceLock::new();

/// Traces every group's flush as a `storage flush` span, read with `context_of`.
pub fn trace_flushes(context_of: fn(&tracing::Span) -> Option<TraceContext>) {
    let _ = CONTEXT_OF.set(context_of);
}

/// Called with each flush's duration, for the storage latency metric.
pub type FlushObserver = Arc<dyn Fn(Duration) + Send + Sync>;

impl GroupCommit {
    pub fn start(db: sled::Db, space: Arc<Space>, observe: FlushObserver, written: WriteCounter) -> Arc<Self> {
        let (tx, rx) = watch::channel(0u64);
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        let gc = Arc::new(Self {
            queue: Mutex::new(Queue { pending: Vec::new(), last: 0, stopping: false }),
            wake: Condvar::new(),
            flushed: rx,
            broken: Mutex::new(None),
            space,
            exited: Mutex::new(Some(exit_rx)),
            logs: std::sync::OnceLock::new(),
            unreplicated: Mutex::new(Default::default()),
            flushed_tx: Mutex::new(None),
            in_flight: Mutex::new(0),
            settled: Condvar::new(),
            written,
            flushes: Mutex::new(Default::default()),
        });
        let worker = Arc::clone(&gc);
        let spawned = std::thread::Builder::new().name("storage-writer".into()).spawn(move || {
            let tx = Arc::new(tx);
            *worker.flushed_tx.lock() = Some(Arc::clone(&tx));
            worker.run(db, tx, observe);
            let _ = exit_tx.send(());
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the storage writer thread");
        }
        gc
    }

    /// Turns replication on: from now on every group's writes to a shard in `logs` are logged,
    /// and a group is durable once flushed and confirmed. Set once, before the first write.
    pub fn log_to(self: &Arc<Self>, logs: Arc<ShardLogs>, data: sled::Tree) {
        let (tx, rx) = std::sync::mpsc::channel::<Confirming>();
        if self.logs.set((Arc::clone(&logs), data, tx)).is_err() {
            return;
        }
        let worker = Arc::clone(self);
        let spawned = std::thread::Builder::new().name("log-confirms".into()).spawn(move || {
            while let Ok(group) = rx.recv() {
                worker.confirm_group(&logs, group);
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the log confirm thread");
        }
    }

    /// Waits for a group's confirms in order, then settles it and moves the watermark.
    fn confirm_group(&self, logs: &ShardLogs, mut group: Confirming) {
        for (shard, term, seqs, answer) in group.appends {
            let why = match answer.blocking_recv() {
                // Counts only while its term lasts: after an earlier entry of the term failed
                // (the shard fenced), a later one is a gap in the log and never counts.
                Ok(Ok(())) if logs.term(shard) == Some(term) => continue,
                Ok(Ok(())) => {
                    group.failed.extend(seqs);
                    continue;
                }
                Ok(Err(why)) => why,
                Err(_) => "the log append was abandoned".to_string(),
            };
            group.failed.extend(seqs);
            // The first failure of a term fences it and starts a new one; later ones of the same
            // term change nothing.
            if logs.fence_term(shard, term) {
                tracing::error!(shard, term, why, "a log entry was not confirmed; the shard is fenced");
                logs.appender().unconfirmed(shard, why);
            }
        }
        self.finish_group(group.target, group.settles, &group.failed, group.durable);
        let mut in_flight = self.in_flight.lock();
        *in_flight = in_flight.saturating_sub(1);
        self.settled.notify_one();
    }

    /// Settles a group and moves the watermark to it (`durable`: flushed).
    fn finish_group(
        &self,
        target: u64,
        settles: Vec<(u64, Option<Settle>)>,
        failed: &std::collections::HashSet<u64>,
        durable: bool,
    ) {
        // Events first, then the waiters: a client answered after this flush finds its events
        // publishable.
        for (seq, settle) in settles {
            if let Some(settle) = settle {
                settle(durable && !failed.contains(&seq));
            }
        }
        if !failed.is_empty() {
            let mut unreplicated = self.unreplicated.lock();
            unreplicated.extend(failed.iter().copied());
            while unreplicated.len() > FAILED_KEPT {
                unreplicated.pop_first();
            }
        }
        if durable {
            if let Some(flushed) = self.flushed_tx.lock().as_ref() {
                flushed.send_replace(target);
            }
        }
    }

    fn run(&self, db: sled::Db, flushed: Arc<watch::Sender<u64>>, observe: FlushObserver) {
        let mut taken: Vec<Submission> = Vec::new();
        loop {
            let target = {
                let mut q = self.queue.lock();
                loop {
                    if !q.pending.is_empty() {
                        break;
                    }
                    if q.stopping {
                        return;
                    }
                    let idle = self.wake.wait_for(&mut q, PROBE_EVERY).timed_out();
                    if idle && q.pending.is_empty() && !q.stopping {
                        // Nothing to write: look at the disk (readiness, and a full disk
                        // noticed before the next write rather than by it).
                        MutexGuard::unlocked(&mut q, || self.space.probe());
                    }
                }
                if self.logs.get().is_some() {
                    // The log is behind: let more writes gather for the next group.
                    MutexGuard::unlocked(&mut q, || self.await_log());
                }
                std::mem::swap(&mut taken, &mut q.pending);
                q.last
            };
            // Before applying: if the disk filled since the last look, the headroom is given
            // back now, so this group (accepted before the store turned full) fits.
            self.space.probe();
            self.commit_group(&db, &mut taken, target, &flushed, &observe);
        }
    }

    /// Waits until fewer than [`GROUPS_IN_FLIGHT`] groups wait for the log (or too long).
    fn await_log(&self) {
        let deadline = Instant::now() + IN_FLIGHT_WAIT;
        let mut in_flight = self.in_flight.lock();
        while *in_flight >= GROUPS_IN_FLIGHT {
            if self.settled.wait_until(&mut in_flight, deadline).timed_out() {
                return;
            }
        }
    }

    /// Applies the taken group (as one sled batch per tree), logs it (with replication on),
    /// flushes once, and settles it once flushed and, with replication, confirmed.
    fn commit_group(
        &self,
        db: &sled::Db,
        taken: &mut Vec<Submission>,
        target: u64,
        flushed: &watch::Sender<u64>,
        observe: &FlushObserver,
    ) {
        // Sequence numbers are consecutive: the first taken is `target - len + 1`.
        let first = target + 1 - taken.len() as u64;
        if self.broken.lock().is_some() {
            // sled keeps failing once it failed: nothing taken now can become durable.
            for submission in taken.drain(..) {
                if let Some(settle) = submission.settle {
                    settle(false);
                }
            }
            return;
        }
        // Its own trace: one flush serves many requests, whose spans link to it.
        let traced = CONTEXT_OF
            .get()
            .map(|context_of| (tracing::debug_span!(parent: None, "storage flush", writes = taken.len()), context_of));
        let _entered = traced.as_ref().map(|(span, _)| span.enter());
        let logs = self.logs.get();
        // Everything taken for one tree goes in as ONE sled batch: sled seals a log buffer
        // per batch, so a flush of many small batches wrote (and synced) many buffers.
        // The union is as atomic as each part: all or nothing after a crash.
        let mut merged: Vec<(sled::Tree, sled::Batch, Vec<u64>)> = Vec::new();
        let mut settles = Vec::new();
        let mut failed_now = std::collections::HashSet::new();
        // Per shard logged: its term, the operations of its entry, the writes in it.
        let mut entries: std::collections::BTreeMap<u32, (u64, Ops, Vec<u64>)> = Default::default();
        // Shards whose copy now holds a write that will never be in the log.
        let mut diverged = std::collections::BTreeSet::new();
        let mut written = self.written.counting();
        for (i, submission) in taken.drain(..).enumerate() {
            let seq = first + i as u64;
            settles.push((seq, submission.settle));
            let Some(ops) = submission.ops else { continue };
            if let (Some((logs, _, _)), Some((shard, term))) = (logs, submission.log) {
                // Written for a term that is over (the shard was fenced since): not written.
                if logs.term(shard) != Some(term) {
                    failed_now.insert(seq);
                    if submission.applied {
                        // Already in the copy, and never to be in the log.
                        diverged.insert(shard);
                    }
                    continue;
                }
                let entry = entries.entry(shard).or_insert_with(|| (term, Vec::new(), Vec::new()));
                entry.1.extend(ops.iter().cloned());
                entry.2.push(seq);
            }
            count_ops(&mut written, &submission.tree, &ops);
            if submission.applied {
                continue;
            }
            let same_tree = merged.last().is_some_and(|(t, _, _)| t.name() == submission.tree.name());
            if !same_tree {
                merged.push((submission.tree, sled::Batch::default(), Vec::new()));
            }
            if let Some((_, batch, seqs)) = merged.last_mut() {
                add_ops(batch, ops);
                seqs.push(seq);
            }
        }
        // Each shard's entry is numbered, and its copy's new position written with it.
        let mut appends = Vec::new();
        if let Some((logs, data, _)) = logs {
            let mut positions: Ops = Vec::new();
            for (shard, (term, ops, seqs)) in entries {
                let numbered = logs.next(shard, term).and_then(|position| {
                    let entry = Entry::Ops { term, seq: position.seq, ops }.encode().ok()?;
                    Some((position, entry))
                });
                match numbered.and_then(|(p, e)| envelope::encode(&p).ok().map(|p| (p, e))) {
                    Some((position, entry)) => {
                        positions.push((logs.position_key(shard), Some(position)));
                        appends.push((shard, term, seqs, entry));
                    }
                    None => {
                        failed_now.extend(seqs);
                        diverged.insert(shard);
                    }
                }
            }
            // A copy holding a write the log will never have counts one entry more than it
            // holds: the next term finds it diverged and rebuilds it from the log.
            for shard in diverged {
                let key = logs.position_key(shard);
                let stored = data.get(&key).ok().flatten().and_then(|b| envelope::decode::<Position>(&key, &b).ok());
                let mut position = stored.unwrap_or_default();
                position.seq += 1;
                if let Ok(encoded) = envelope::encode(&position) {
                    positions.push((key, Some(encoded)));
                }
            }
            count_ops(&mut written, data, &positions);
            // In the same batch as the operations they count.
            match merged.iter_mut().find(|(tree, _, _)| tree.name() == data.name()) {
                Some((_, batch, _)) => add_ops(batch, positions),
                None => merged.push((data.clone(), sled_batch(positions), Vec::new())),
            }
        }
        let mut failed_apply = false;
        for (tree, batch, seqs) in merged {
            if let Err(e) = tree.apply_batch(batch) {
                tracing::error!(error = %e, batches = seqs.len(), "storage batch could not be applied; refusing every write from now on");
                self.fail(flushed, e.to_string());
                failed_now.extend(seqs);
                failed_apply = true;
            }
        }
        // Logged while the disk flushes: a reply waits for both.
        let appends: Vec<_> = match logs {
            Some((logs, _, _)) if !failed_apply => appends
                .into_iter()
                .map(|(shard, term, seqs, entry)| (shard, term, seqs, logs.appender().append(shard, entry)))
                .collect(),
            _ => {
                failed_now.extend(appends.into_iter().flat_map(|(_, _, seqs, _)| seqs));
                Vec::new()
            }
        };
        self.written.report(&written);
        let started = Instant::now();
        let durable = match db.flush() {
            Ok(_) => {
                observe(started.elapsed());
                true
            }
            Err(e) => {
                // Not retried: sled returns this error to every later flush of this database
                // (even once the disk has room again), so retrying would only hide it.
                tracing::error!(error = %e, "storage flush failed; refusing every write from now on");
                self.fail(flushed, e.to_string());
                false
            }
        };
        if let Some(trace) = traced.as_ref().and_then(|(span, context_of)| context_of(span)) {
            let mut flushes = self.flushes.lock();
            if flushes.len() == FLUSHES_KEPT {
                flushes.pop_front();
            }
            flushes.push_back((first..=target, trace));
        }
        match logs {
            Some((_, _, confirms)) => {
                let group = Confirming { target, settles, failed: failed_now, appends, durable };
                *self.in_flight.lock() += 1;
                if let Err(std::sync::mpsc::SendError(group)) = confirms.send(group) {
                    *self.in_flight.lock() -= 1;
                    // No confirm thread: nothing logged can be confirmed.
                    let failed = group.settles.iter().map(|(seq, _)| *seq).collect();
                    self.finish_group(group.target, group.settles, &failed, group.durable);
                }
            }
            None => self.finish_group(target, settles, &failed_now, durable),
        }
    }

    /// Records that sled failed, and wakes every waiter to learn it.
    fn fail(&self, flushed: &watch::Sender<u64>, error: String) {
        self.broken.lock().get_or_insert(error);
        flushed.send_modify(|_| {});
    }

    /// Queues `submission`; its sequence number, to [`wait`](Self::wait) on.
    pub fn submit(&self, submission: Submission) -> u64 {
        let seq = {
            let mut q = self.queue.lock();
            q.last += 1;
            q.pending.push(submission);
            q.last
        };
        self.wake.notify_one();
        seq
    }

    /// Waits until the write numbered `seq` (and every one before it) is on disk; `Err` as
    /// soon as it never will be (sled failed, or the writer stopped before reaching it).
    pub async fn wait(&self, seq: u64) -> Result<(), StorageError> {
        let mut rx = self.flushed.clone();
        let waited = rx.wait_for(|done| *done >= seq || self.broken.lock().is_some()).await.map(|done| *done >= seq);
        // Err: the thread has exited (stopped) and took its sender with it.
        let reached = waited.unwrap_or_else(|_| *rx.borrow() >= seq);
        if reached {
            if self.unreplicated.lock().contains(&seq) {
                // Not applied (sled failed), or not confirmed by the log.
                self.check()?;
                return Err(StorageError::Unreplicated);
            }
            return Ok(());
        }
        self.check()?;
        Err(StorageError::Failed("the storage writer has stopped".into()))
    }

    /// The trace context of the flush that made write `seq` durable, while it is recent (with
    /// telemetry on).
    pub fn flush_of(&self, seq: u64) -> Option<TraceContext> {
        self.flushes.lock().iter().rev().find(|(writes, _)| writes.contains(&seq)).map(|(_, trace)| *trace)
    }

    /// `Err` once sled failed a write or a flush (see `broken`).
    pub fn check(&self) -> Result<(), StorageError> {
        match self.broken.lock().as_ref() {
            Some(e) => Err(StorageError::Failed(format!("storage failed: {e}"))),
            None => Ok(()),
        }
    }

    /// Whether the write numbered `seq` is on disk already. Writes flushed before a failure
    /// stay durable: an actor whose last write was one of them still answers reads.
    pub fn is_durable(&self, seq: u64) -> bool {
        *self.flushed.borrow() >= seq && !self.unreplicated.lock().contains(&seq)
    }

    /// Whether replication is on (writes go to the shard logs).
    pub fn logs(&self) -> Option<&Arc<ShardLogs>> {
        self.logs.get().map(|(logs, _, _)| logs)
    }

    /// Waits until every write applied or queued before this call is on disk.
    pub async fn durable(&self, tree: &sled::Tree) -> Result<(), StorageError> {
        let seq = self.submit(Submission::new(tree, None, None));
        self.wait(seq).await
    }

    /// The free-space watch (the store refuses writes while it says full).
    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Flushes what is pending, stops the thread and waits for it to let go of the database.
    pub async fn stop(&self) {
        self.queue.lock().stopping = true;
        self.wake.notify_one();
        let exited = self.exited.lock().take();
        if let Some(exited) = exited {
            let _ = exited.await;
        }
    }
}
