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

use super::space::{Space, PROBE_EVERY};
use super::StorageError;
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Run by the writer thread once a batch is on disk (`true`) or could not be applied.
pub type Settle = Box<dyn FnOnce(bool) + Send>;

/// A batch's changes in order (`None`: remove the key).
pub type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One submission: a batch (or a bare flush request, `None`) and what to do once it is durable.
type Submission = (sled::Tree, Option<Ops>, Option<Settle>);

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
}

/// Called with each flush's duration, for the storage latency metric.
pub type FlushObserver = Arc<dyn Fn(Duration) + Send + Sync>;

impl GroupCommit {
    pub fn start(db: sled::Db, space: Arc<Space>, observe: FlushObserver) -> Arc<Self> {
        let (tx, rx) = watch::channel(0u64);
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        let gc = Arc::new(Self {
            queue: Mutex::new(Queue { pending: Vec::new(), last: 0, stopping: false }),
            wake: Condvar::new(),
            flushed: rx,
            broken: Mutex::new(None),
            space,
            exited: Mutex::new(Some(exit_rx)),
        });
        let worker = Arc::clone(&gc);
        let spawned = std::thread::Builder::new().name("storage-writer".into()).spawn(move || {
            worker.run(db, tx, observe);
            let _ = exit_tx.send(());
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the storage writer thread");
        }
        gc
    }

    fn run(&self, db: sled::Db, flushed: watch::Sender<u64>, observe: FlushObserver) {
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
                std::mem::swap(&mut taken, &mut q.pending);
                q.last
            };
            // Before applying: if the disk filled since the last look, the headroom is given
            // back now, so this group (accepted before the store turned full) fits.
            self.space.probe();
            self.commit_group(&db, &mut taken, target, &flushed, &observe);
        }
    }

    /// Applies the taken group (as one sled batch per tree), flushes once, and settles it.
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
            for (_, _, settle) in taken.drain(..) {
                if let Some(settle) = settle {
                    settle(false);
                }
            }
            return;
        }
        // Everything taken for one tree goes in as ONE sled batch: sled seals a log buffer
        // per batch, so a flush of many small batches wrote (and synced) many buffers.
        // The union is as atomic as each part: all or nothing after a crash.
        let mut merged: Vec<(sled::Tree, sled::Batch, Vec<u64>)> = Vec::new();
        let mut settles = Vec::new();
        for (i, (tree, ops, settle)) in taken.drain(..).enumerate() {
            let seq = first + i as u64;
            settles.push((seq, settle));
            let Some(ops) = ops else { continue };
            let same_tree = merged.last().is_some_and(|(t, _, _)| t.name() == tree.name());
            if !same_tree {
                merged.push((tree, sled::Batch::default(), Vec::new()));
            }
            if let Some((_, batch, seqs)) = merged.last_mut() {
                add_ops(batch, ops);
                seqs.push(seq);
            }
        }
        let mut failed_now = std::collections::HashSet::new();
        for (tree, batch, seqs) in merged {
            if let Err(e) = tree.apply_batch(batch) {
                tracing::error!(error = %e, batches = seqs.len(), "storage batch could not be applied; refusing every write from now on");
                self.fail(flushed, e.to_string());
                failed_now.extend(seqs);
            }
        }
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
        // Events first, then the waiters: a client answered after this flush finds its events
        // publishable.
        for (seq, settle) in settles {
            if let Some(settle) = settle {
                settle(durable && !failed_now.contains(&seq));
            }
        }
        if durable {
            // A batch that could not be applied is not on disk: the watermark stops below it.
            let reached = failed_now.iter().min().map_or(target, |first| target.min(first.saturating_sub(1)));
            flushed.send_replace(reached);
        }
    }

    /// Records that sled failed, and wakes every waiter to learn it.
    fn fail(&self, flushed: &watch::Sender<u64>, error: String) {
        self.broken.lock().get_or_insert(error);
        flushed.send_modify(|_| {});
    }

    /// Queues `batch` for `tree`; its sequence number, to [`wait`](Self::wait) on.
    pub fn submit(&self, tree: &sled::Tree, batch: Option<Ops>, settle: Option<Settle>) -> u64 {
        let seq = {
            let mut q = self.queue.lock();
            q.last += 1;
            q.pending.push((tree.clone(), batch, settle));
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
            return Ok(());
        }
        self.check()?;
        Err(StorageError::Failed("the storage writer has stopped".into()))
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
        *self.flushed.borrow() >= seq
    }

    /// Waits until every write applied or queued before this call is on disk.
    pub async fn durable(&self, tree: &sled::Tree) -> Result<(), StorageError> {
        let seq = self.submit(tree, None, None);
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
