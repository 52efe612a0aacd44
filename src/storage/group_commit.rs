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

use super::StorageError;
use parking_lot::{Condvar, Mutex};
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
    /// Set once a batch could not be applied (sled reports an I/O error): from then on no
    /// write is reported durable (fail-stop), rather than build later writes on a lost one.
    broken: Mutex<Option<String>>,
    /// Completes when the thread has exited (and dropped its handle on the database).
    exited: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

/// Called with each flush's duration, for the storage latency metric.
pub type FlushObserver = Arc<dyn Fn(Duration) + Send + Sync>;

impl GroupCommit {
    pub fn start(db: sled::Db, observe: FlushObserver) -> Arc<Self> {
        let (tx, rx) = watch::channel(0u64);
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        let gc = Arc::new(Self {
            queue: Mutex::new(Queue { pending: Vec::new(), last: 0, stopping: false }),
            wake: Condvar::new(),
            flushed: rx,
            broken: Mutex::new(None),
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
        let mut settling: Vec<(bool, Settle)> = Vec::new();
        loop {
            let target = {
                let mut q = self.queue.lock();
                while q.pending.is_empty() && !q.stopping {
                    self.wake.wait(&mut q);
                }
                if q.pending.is_empty() && q.stopping {
                    return;
                }
                std::mem::swap(&mut taken, &mut q.pending);
                q.last
            };
            // Sequence numbers are consecutive: the first taken is `target - len + 1`.
            let first = target + 1 - taken.len() as u64;
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
                    self.broken.lock().get_or_insert_with(|| e.to_string());
                    failed_now.extend(seqs);
                }
            }
            settling.extend(settles.into_iter().filter_map(|(seq, s)| s.map(|s| (!failed_now.contains(&seq), s))));
            loop {
                let started = Instant::now();
                match db.flush() {
                    Ok(_) => {
                        observe(started.elapsed());
                        // Events first, then the waiters: a client answered after this flush
                        // finds its events publishable.
                        for (applied, settle) in settling.drain(..) {
                            settle(applied);
                        }
                        flushed.send_replace(target);
                        break;
                    }
                    Err(e) => {
                        // Writers keep waiting (their calls time out with 503); the disk may recover.
                        tracing::error!(error = %e, "storage flush failed; retrying");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        }
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

    /// Waits until the write numbered `seq` (and every one before it) is on disk.
    pub async fn wait(&self, seq: u64) -> Result<(), StorageError> {
        let mut rx = self.flushed.clone();
        // The sender lives as long as the thread; if it is gone we cannot promise anything,
        // and the caller's timeout turns the wait into a 503.
        if rx.wait_for(|done| *done >= seq).await.is_err() {
            std::future::pending::<()>().await;
        }
        self.check()
    }

    /// `Err` once a batch could not be applied (see `broken`).
    pub fn check(&self) -> Result<(), StorageError> {
        match self.broken.lock().as_ref() {
            Some(e) => Err(StorageError::Failed(format!("a batch could not be applied: {e}"))),
            None => Ok(()),
        }
    }

    /// Whether the write numbered `seq` is on disk already (never, once writes are failing).
    pub fn is_durable(&self, seq: u64) -> bool {
        *self.flushed.borrow() >= seq && self.broken.lock().is_none()
    }

    /// Waits until every write applied or queued before this call is on disk.
    pub async fn durable(&self, tree: &sled::Tree) {
        let seq = self.submit(tree, None, None);
        let _ = self.wait(seq).await;
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
