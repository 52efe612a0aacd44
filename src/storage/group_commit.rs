//! Group commit: many writers, one fsync. A writer applies its batch in memory, then waits until
//! a flush that started after its write has finished. One dedicated thread runs the flushes, so
//! durability costs one fsync per burst of writes rather than one per request, and the blocking
//! `fsync` never runs on an async executor thread.

use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

struct Counters {
    /// Writes applied in memory and waiting for durability, numbered from 1.
    written: u64,
    stopping: bool,
}

pub struct GroupCommit {
    counters: Mutex<Counters>,
    wake: Condvar,
    /// The highest write number known to be on disk.
    flushed: watch::Receiver<u64>,
    /// Completes when the flush thread has exited (and dropped its handle on the database).
    exited: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

/// Called with each flush's duration, for the storage latency metric.
pub type FlushObserver = Arc<dyn Fn(Duration) + Send + Sync>;

impl GroupCommit {
    pub fn start(db: sled::Db, observe: FlushObserver) -> Arc<Self> {
        let (tx, rx) = watch::channel(0u64);
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        let gc = Arc::new(Self {
            counters: Mutex::new(Counters { written: 0, stopping: false }),
            wake: Condvar::new(),
            flushed: rx,
            exited: Mutex::new(Some(exit_rx)),
        });
        let worker = Arc::clone(&gc);
        let spawned = std::thread::Builder::new().name("storage-flush".into()).spawn(move || {
            worker.run(db, tx, observe);
            let _ = exit_tx.send(());
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the storage flush thread");
        }
        gc
    }

    fn run(&self, db: sled::Db, flushed: watch::Sender<u64>, observe: FlushObserver) {
        let mut done = 0u64;
        loop {
            let target = {
                let mut c = self.counters.lock();
                while c.written == done && !c.stopping {
                    self.wake.wait(&mut c);
                }
                if c.written == done && c.stopping {
                    return;
                }
                c.written
            };
            let started = Instant::now();
            match db.flush() {
                Ok(_) => {
                    observe(started.elapsed());
                    done = target;
                    flushed.send_replace(done);
                }
                Err(e) => {
                    // Writers keep waiting (their calls time out with 503); the disk may recover.
                    tracing::error!(error = %e, "storage flush failed; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Waits until every write applied before this call is on disk.
    pub async fn durable(&self) {
        let ticket = {
            let mut c = self.counters.lock();
            c.written += 1;
            c.written
        };
        self.wake.notify_one();
        let mut rx = self.flushed.clone();
        // The sender lives as long as the flush thread; if it is gone we cannot promise anything,
        // and the caller's timeout turns the wait into a 503.
        if rx.wait_for(|done| *done >= ticket).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Flushes what is pending, stops the thread and waits for it to let go of the database.
    pub async fn stop(&self) {
        self.counters.lock().stopping = true;
        self.wake.notify_one();
        let exited = self.exited.lock().take();
        if let Some(exited) = exited {
            let _ = exited.await;
        }
    }
}
