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
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Run by the writer thread once a batch is on disk (`true`) or could not be applied.
pub type Settle = Box<dyn FnOnce(bool) + Send>;

/// One submission: a batch (or a bare flush request, `None`) and what to do once it is durable.
type Submission = (sled::Tree, Option<sled::Batch>, Option<Settle>);

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
    /// Batches that could not be applied, by sequence number (taken by their writer).
    failed: Mutex<HashMap<u64, String>>,
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
            failed: Mutex::new(HashMap::new()),
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
            for (i, (tree, batch, settle)) in taken.drain(..).enumerate() {
                let mut applied = true;
                if let Some(batch) = batch {
                    if let Err(e) = tree.apply_batch(batch) {
                        tracing::error!(error = %e, "storage batch could not be applied");
                        self.failed.lock().insert(first + i as u64, e.to_string());
                        applied = false;
                    }
                }
                settling.extend(settle.map(|s| (applied, s)));
            }
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
    pub fn submit(&self, tree: &sled::Tree, batch: Option<sled::Batch>, settle: Option<Settle>) -> u64 {
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
        match self.failed.lock().remove(&seq) {
            Some(e) => Err(StorageError::Encode(format!("batch not applied: {e}"))),
            None => Ok(()),
        }
    }

    /// Whether the write numbered `seq` is on disk already.
    pub fn is_durable(&self, seq: u64) -> bool {
        *self.flushed.borrow() >= seq
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
