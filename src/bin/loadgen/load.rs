//! Runs connections against a server from a fixed number of threads (like `wrk -t2`), each
//! thread one single-threaded runtime, and records every request's latency and status.

use super::http1::Conn;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// What one connection (or a merge of many) saw.
#[derive(Default, Clone)]
pub struct Recorder {
    pub latencies_us: Vec<u32>,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: u64,
    /// Scenario-specific payload (ids of acknowledged orders, say).
    pub notes: Vec<String>,
    pub retry_after_on_503: u64,
}

impl Recorder {
    pub fn record(&mut self, started: Instant, status: u16) {
        self.latencies_us.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        *self.statuses.entry(status).or_default() += 1;
    }

    pub fn merge(mut parts: Vec<Recorder>) -> Recorder {
        let mut all = parts.pop().unwrap_or_default();
        for p in parts {
            all.latencies_us.extend(p.latencies_us);
            for (s, n) in p.statuses {
                *all.statuses.entry(s).or_default() += n;
            }
            all.errors += p.errors;
            all.notes.extend(p.notes);
            all.retry_after_on_503 += p.retry_after_on_503;
        }
        all.latencies_us.sort_unstable();
        all
    }

    pub fn requests(&self) -> u64 {
        self.statuses.values().sum()
    }

    pub fn count(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    pub fn count_2xx(&self) -> u64 {
        self.statuses.range(200..300).map(|(_, n)| n).sum()
    }

    /// Percentile in milliseconds (latencies must be sorted: `merge` sorts).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (self.latencies_us.len() - 1) as f64).round() as usize;
        self.latencies_us[rank.min(self.latencies_us.len() - 1)] as f64 / 1000.0
    }

    pub fn statuses_text(&self) -> String {
        let mut s: Vec<String> = self.statuses.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        if self.errors > 0 {
            s.push(format!("io-errors×{}", self.errors));
        }
        s.join(" ")
    }
}

/// A measured run: what was recorded and how long the timed part took.
pub struct Run {
    pub rec: Recorder,
    pub elapsed: Duration,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.rec.requests() as f64 / self.elapsed.as_secs_f64()
    }
}

/// Opens `connections` connections spread over `threads` threads, waits until every one is
/// connected, then runs `work(connection index, conn)` on each and times the whole.
pub fn run<F, Fut>(addr: SocketAddr, threads: usize, connections: usize, work: F) -> anyhow::Result<Run>
where
    F: Fn(usize, Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Recorder>,
{
    run_clients(threads, connections, move || async move { Ok(Conn::connect(addr).await?) }, work)
}

/// [`run`] with clients of any kind: `connect` opens one (on its thread's runtime, which may
/// spawn the client's background task there).
pub fn run_clients<C, Connect, Connecting, F, Fut>(
    threads: usize,
    connections: usize,
    connect: Connect,
    work: F,
) -> anyhow::Result<Run>
where
    C: 'static,
    Connect: Fn() -> Connecting + Send + Sync + 'static,
    Connecting: Future<Output = anyhow::Result<C>>,
    F: Fn(usize, C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Recorder>,
{
    let threads = threads.clamp(1, connections.max(1));
    let (connect, work) = (Arc::new(connect), Arc::new(work));
    let ready = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::new();
    for t in 0..threads {
        let (connect, work, ready, go) = (Arc::clone(&connect), Arc::clone(&work), Arc::clone(&ready), Arc::clone(&go));
        let mine: Vec<usize> = (0..connections).filter(|c| c % threads == t).collect();
        handles.push(std::thread::spawn(move || -> anyhow::Result<Recorder> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let clients = rt.block_on(async {
                let mut clients = Vec::new();
                for _ in &mine {
                    clients.push(connect().await?);
                }
                anyhow::Ok(clients)
            });
            ready.wait();
            // Past both barriers before failing: the timer waits for every thread at each.
            go.wait();
            let clients = clients?;
            let parts = rt
                .block_on(futures_util::future::join_all(mine.iter().zip(clients).map(|(&c, client)| work(c, client))));
            Ok(Recorder::merge(parts))
        }));
    }
    ready.wait();
    let started = Instant::now();
    go.wait();
    let mut parts = Vec::new();
    for h in handles {
        parts.push(h.join().map_err(|_| anyhow::anyhow!("load thread panicked"))??);
    }
    Ok(Run { rec: Recorder::merge(parts), elapsed: started.elapsed() })
}

/// Runs `work` over `items` split across `connections` connections (setup and checks: not
/// timed for the report).
pub fn for_each<T, F, Fut>(addr: SocketAddr, connections: usize, items: Vec<T>, work: F) -> anyhow::Result<Recorder>
where
    T: Send + Sync + 'static,
    F: Fn(Arc<[T]>, usize, usize, Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Recorder>,
{
    let items: Arc<[T]> = items.into();
    let connections = connections.clamp(1, items.len().max(1));
    let run = run(addr, 2, connections, move |c, conn| work(Arc::clone(&items), c, connections, conn))?;
    Ok(run.rec)
}
