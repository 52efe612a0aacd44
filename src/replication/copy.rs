//! One shard's copy on this node: it follows the shard's log while another node serves it, and
//! begins a term when this node takes the shard's lease.

use super::chain::{Chain, Step};
use super::Replication;
use crate::cluster::log::LogEntry;
use crate::cluster::{Cluster, Shard};
use crate::storage::log::{Entry, Position};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long beginning a term may take (appending the marker and reading the log to it).
const LEAD_WITHIN: Duration = Duration::from_secs(30);
/// How long a rebuild waits for the log's first entry.
const REBUILD_LOOK: Duration = Duration::from_secs(10);
/// How often a follower asks how long the log is (its lag).
const LAG_EVERY: Duration = Duration::from_secs(1);
/// A follower behind that reads nothing for this long subscribes again: a stream consumer
/// can go quiet without its channel closing (a broker node restarted under it).
const STALLED_AFTER: Duration = Duration::from_secs(10);
/// How long subscribing to the log may take (declaring it, consuming it).
const OPEN_WITHIN: Duration = Duration::from_secs(15);

pub(super) enum Order {
    /// Begin a term and serve; the answer says whether the shard is ready.
    Lead(oneshot::Sender<bool>),
    /// This node no longer serves the shard: follow it.
    Follow,
}

/// Runs the copy of `shard` for as long as the node runs.
pub(super) async fn run(r: Replication, shard: u32, mut orders: mpsc::UnboundedReceiver<Order>) {
    let mut leading = false;
    // The test-only fault: the first subscription that opens reads nothing.
    let mut quiet_once = r.stalls_first_follow();
    loop {
        let order = if leading {
            orders.recv().await
        } else {
            match r.cluster().filter(Cluster::link_up) {
                Some(cluster) => match follow(&r, &cluster, shard, &mut orders, &mut quiet_once).await {
                    Ok(order) => order,
                    Err(Stop::Unreadable(e)) => {
                        // An entry of another release: following stops (it says why in
                        // `/admin/cluster`); the node can still take the shard over later.
                        tracing::error!(shard, error = %e, "following the shard's log stopped");
                        orders.recv().await
                    }
                    Err(Stop::Link(e)) => {
                        tracing::warn!(shard, error = %e, "following the shard's log stopped; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
                None => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            }
        };
        match order {
            // Already serving in a term: nothing to begin.
            Some(Order::Lead(ready)) if leading && r.0.logs.term(shard).is_some() => {
                let _ = ready.send(true);
            }
            // A late order to follow while serving in a term begun since: ignored.
            Some(Order::Follow) if leading && r.0.logs.term(shard).is_some() => {}
            Some(Order::Lead(ready)) => {
                let led = match r.cluster() {
                    Some(cluster) => lead(&r, &cluster, shard).await,
                    None => Err("no link".into()),
                };
                if let Err(e) = &led {
                    tracing::warn!(shard, error = %e, "could not begin a term");
                }
                leading = led.is_ok();
                let _ = ready.send(leading);
            }
            Some(Order::Follow) => leading = false,
            // The node is stopping.
            None => return,
        }
    }
}

/// Why following stopped.
enum Stop {
    /// The log ended (the link went) or could not be opened: try again.
    Link(String),
    /// An entry this release cannot read: do not.
    Unreadable(String),
}

/// Follows the log from where the copy stands until an order comes (`Ok(None)`: no more
/// orders ever). `quiet_once`: a test's fault, taken by the first subscription that opens,
/// which then reads nothing.
async fn follow(
    r: &Replication,
    cluster: &Cluster,
    shard: u32,
    orders: &mut mpsc::UnboundedReceiver<Order>,
    quiet_once: &mut bool,
) -> Result<Option<Order>, Stop> {
    let mut cursor = open(r, cluster, shard).await.map_err(Stop::Link)?;
    let _quiet = std::mem::take(quiet_once).then(|| {
        let (quiet, nothing) = mpsc::channel(1);
        cursor.log = nothing;
        quiet
    });
    if let Some(mut status) = r.0.status.get_mut(&shard) {
        status.serving = false;
    }
    let mut last_offset: Option<u64> = None;
    let mut stall = Stall::default();
    let mut lag_every = tokio::time::interval(LAG_EVERY);
    // After a long rebuild, one look rather than a burst of them.
    lag_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            order = orders.recv() => return Ok(order),
            entry = cursor.next() => {
                let Some(entry) = entry else { return Err(Stop::Link("the log ended (link lost)".into())) };
                last_offset = Some(entry.offset);
                stall = Stall::default();
                match read(r, shard, &mut cursor, &entry, None).map_err(Stop::Unreadable)? {
                    Read::Rebuild => cursor = rebuild(r, cluster, shard).await.map_err(Stop::Link)?,
                    Read::Truncated => cursor = from_snapshot(r, cluster, shard, entry.offset).await.map_err(Stop::Link)?,
                    Read::Done | Read::Marker { .. } => {}
                }
            }
            _ = lag_every.tick() => {
                if let Ok(length) = cluster.log_length(shard).await {
                    let lag = length.saturating_sub(last_offset.map_or(0, |o| o + 1));
                    let stalled = stall.behind(lag, cursor.is_drained());
                    if let Some(mut status) = r.0.status.get_mut(&shard) {
                        status.lag = Some(lag);
                        status.resubscribed += u64::from(stalled);
                    }
                    if stalled {
                        return Err(Stop::Link(format!("behind by {lag} for {STALLED_AFTER:?} without reading")));
                    }
                }
            }
        }
    }
}

/// Since when a follower has been behind without reading anything. The log's length comes
/// from the broker's statistics (seconds late), so only a lag that lasts counts, and only
/// while nothing read waits to be applied.
#[derive(Default)]
struct Stall {
    behind_since: Option<tokio::time::Instant>,
}

impl Stall {
    /// Takes one look at the lag: whether the follower has been stalled for
    /// [`STALLED_AFTER`].
    fn behind(&mut self, lag: u64, drained: bool) -> bool {
        if lag == 0 || !drained {
            self.behind_since = None;
            return false;
        }
        let since = *self.behind_since.get_or_insert_with(tokio::time::Instant::now);
        since.elapsed() >= STALLED_AFTER
    }
}

/// Begins a term: appends a marker, reads the log up to it (rebuilding the copy if it holds
/// writes that never reached the log), records the copy's position and hands the shard to the
/// store and the actors.
async fn lead(r: &Replication, cluster: &Cluster, shard: u32) -> Result<(), String> {
    let generation = cluster.generation();
    let mut cursor = open(r, cluster, shard).await?;
    let until = tokio::time::Instant::now() + LEAD_WITHIN;
    let mut nonce = rand::random::<u64>();
    append_marker(r, cluster, shard, generation, cursor.chain.term + 1, nonce).await?;
    let marker_offset = loop {
        let entry = tokio::time::timeout_at(until, cursor.next())
            .await
            .map_err(|_| "the log was not read to the term's marker in time".to_string())?
            .ok_or("the log ended (link lost)")?;
        match read(r, shard, &mut cursor, &entry, Some(nonce))? {
            Read::Rebuild => cursor = rebuild(r, cluster, shard).await?,
            // The owner that could send a snapshot is gone (this node is taking its place).
            Read::Truncated => return Err("this copy is behind what the log still holds".into()),
            Read::Marker { mine: true, counts: true } => break entry.offset,
            Read::Marker { mine: true, counts: false } => {
                // Someone began a later term meanwhile: try above it.
                nonce = rand::random::<u64>();
                append_marker(r, cluster, shard, generation, cursor.chain.term + 1, nonce).await?;
            }
            Read::Marker { .. } | Read::Done => {}
        }
    };
    let chain = &cursor.chain;
    let position = Position {
        term: chain.term,
        seq: chain.counted,
        resume_at: Some(marker_offset),
        chain_at_resume: chain.counted,
    };
    r.0.store.apply_followed(shard, Vec::new(), &position).map_err(|e| e.to_string())?;
    r.0.store.sync().await;
    let held = || cluster.generation() == generation && cluster.holds(Shard(shard));
    if !held() {
        return Err("the lease went while the term began".into());
    }
    // The copy is the truth from here: what an earlier term left numbered or in flight in its
    // slots' outbox (an entry the log may or may not have taken) is forgotten before any write
    // of this term is numbered.
    let slots = r.0.logs.slots(shard);
    r.0.store.outbox_restart(slots.clone());
    r.0.generations.insert(shard, generation);
    r.0.logs.establish(shard, position);
    let served = serve_in_term(r, shard, &position, slots, held);
    if served.is_err() {
        // The lease went meanwhile (the link's loss, or a lease given up on the link's
        // thread, may have missed a term not yet established), or the shard's deadlines could
        // not be read: the term ends here, undone.
        r.0.logs.fence(shard);
        r.0.generations.remove(&shard);
        if let Some(mut status) = r.0.status.get_mut(&shard) {
            status.serving = false;
        }
    }
    served
}

/// Hands the shard, in the term just established, to the store and the actors, if its lease is
/// still `held` before and after (the check after covers a lease given up meanwhile on the
/// link's thread, whose ending of the term may have come before this start).
fn serve_in_term(
    r: &Replication,
    shard: u32,
    position: &Position,
    slots: std::ops::Range<u32>,
    held: impl Fn() -> bool,
) -> Result<(), String> {
    let gone = || Err("the lease went while the term began".to_string());
    if !held() {
        return gone();
    }
    r.0.store.outbox_gained(slots.clone());
    let due = r.0.custody.deadlines.load_slots(&r.0.store, slots).map_err(|e| e.to_string())?;
    if let Some(mut status) = r.0.status.get_mut(&shard) {
        (status.serving, status.term, status.applied, status.lag) = (true, position.term, position.seq, Some(0));
    }
    if !held() || r.0.logs.term(shard).is_none() {
        return gone();
    }
    tracing::info!(shard, term = position.term, seq = position.seq, deadlines = due, "serving the shard");
    Ok(())
}

async fn append_marker(
    r: &Replication,
    cluster: &Cluster,
    shard: u32,
    generation: u64,
    term: u64,
    nonce: u64,
) -> Result<(), String> {
    let marker = Entry::Term { term, node: r.0.node.clone(), nonce }.encode().map_err(|e| e.to_string())?;
    cluster.append(shard, generation, &marker).await?.await
}

/// A copy reading its log: the counting rules, the entries, and the offset the first entry
/// read must have (a later one: the broker dropped entries this copy still needs).
struct Cursor {
    chain: Chain,
    log: mpsc::Receiver<LogEntry>,
    first: Option<u64>,
    /// An entry already taken from `log` (looked at before a rebuild), read first.
    taken: Option<LogEntry>,
}

impl Cursor {
    /// Reads `shard`'s log from where `position` says, with its counting rules.
    async fn at(cluster: &Cluster, shard: u32, position: Position) -> Result<Self, String> {
        let log = cluster.follow(shard, position.resume_at).await?;
        Ok(Self { chain: Chain::resume(position), log, first: Some(position.resume_at.unwrap_or(0)), taken: None })
    }

    /// Whether nothing read from the log waits here.
    fn is_drained(&self) -> bool {
        self.taken.is_none() && self.log.is_empty()
    }

    /// The next entry of the log (`None`: the log ended, the link went).
    async fn next(&mut self) -> Option<LogEntry> {
        match self.taken.take() {
            Some(entry) => Some(entry),
            None => self.log.recv().await,
        }
    }
}

/// The copy's position, and the log from there (every earlier write applied first). A copy
/// a snapshot left half-loaded is wiped first.
async fn open(r: &Replication, cluster: &Cluster, shard: u32) -> Result<Cursor, String> {
    r.0.store.sync().await;
    let mut position = r.0.store.log_position(shard).map_err(|e| e.to_string())?;
    if position == Some(Position::default()) {
        r.0.store.wipe_slots(r.0.logs.slots(shard)).await.map_err(|e| e.to_string())?;
        position = None;
    }
    let position = position.unwrap_or_default();
    let subscribed = async {
        cluster.declare_log(shard).await?;
        Cursor::at(cluster, shard, position).await
    };
    tokio::time::timeout(OPEN_WITHIN, subscribed)
        .await
        .map_err(|_| format!("the log could not be subscribed to within {OPEN_WITHIN:?}"))?
}

/// Wipes the copy and reads the log again from its start, if the log still holds its start:
/// otherwise the copy is kept as it is and the first entry read says the log was truncated
/// (a follower then loads a snapshot; a node taking the lease gives up rather than lose the
/// only copy it has).
async fn rebuild(r: &Replication, cluster: &Cluster, shard: u32) -> Result<Cursor, String> {
    r.0.store.sync().await;
    cluster.declare_log(shard).await?;
    let mut log = cluster.follow(shard, None).await?;
    let first = tokio::time::timeout(REBUILD_LOOK, log.recv())
        .await
        .map_err(|_| "the log gave no entry to rebuild from".to_string())?
        .ok_or("the log ended (link lost)")?;
    if first.offset == 0 {
        let removed = r.0.store.wipe_slots(r.0.logs.slots(shard)).await.map_err(|e| e.to_string())?;
        tracing::warn!(shard, removed, "this copy held writes that never reached the log: rebuilding it from the log");
    } else {
        tracing::warn!(
            shard,
            first = first.offset,
            "this copy held writes that never reached the log, and the log no longer holds its start"
        );
    }
    Ok(Cursor { chain: Chain::resume(Position::default()), log, first: Some(0), taken: Some(first) })
}

/// Replaces the copy by the owner's (a snapshot), then reads the log from `from`, where it
/// began when the snapshot was asked for.
async fn from_snapshot(r: &Replication, cluster: &Cluster, shard: u32, from: u64) -> Result<Cursor, String> {
    let source = r.0.source.get().cloned().ok_or("no way to reach the shard's owner yet")?;
    tracing::warn!(shard, from, "this copy is behind what the log still holds: loading a snapshot from the owner");
    let started = std::time::Instant::now();
    let (position, records) =
        super::snapshot::load(&r.0.store, source.as_ref(), shard, from).await.map_err(|e| format!("snapshot: {e}"))?;
    if let Some(mut status) = r.0.status.get_mut(&shard) {
        status.snapshots += 1;
        (status.applied, status.term) = (position.seq, position.term);
    }
    tracing::info!(shard, records, seq = position.seq, took = ?started.elapsed(), "snapshot loaded; following the log");
    Cursor::at(cluster, shard, position).await
}

enum Read {
    Done,
    Marker {
        mine: bool,
        counts: bool,
    },
    Rebuild,
    /// The log no longer holds the entries this copy needs next.
    Truncated,
}

/// Reads one entry into the copy.
fn read(
    r: &Replication,
    shard: u32,
    cursor: &mut Cursor,
    entry: &LogEntry,
    nonce: Option<u64>,
) -> Result<Read, String> {
    if cursor.first.take().is_some_and(|expected| entry.offset > expected) {
        return Ok(Read::Truncated);
    }
    let step = cursor.chain.read(entry.offset, &entry.bytes, nonce).map_err(|e| {
        let why = format!("cannot read the shard's log at offset {}: {e}", entry.offset);
        if let Some(mut status) = r.0.status.get_mut(&shard) {
            status.error = Some(why.clone());
        }
        why
    })?;
    Ok(match step {
        Step::Apply(Entry::Ops { ops, .. }, position) => {
            r.0.store.apply_followed(shard, ops, &position).map_err(|e| e.to_string())?;
            if let Some(mut status) = r.0.status.get_mut(&shard) {
                (status.applied, status.term) = (position.seq, position.term);
            }
            Read::Done
        }
        Step::Apply(Entry::Term { .. }, _) | Step::Skip => Read::Done,
        Step::Term { mine, counts, .. } => Read::Marker { mine, counts },
        Step::Diverged => Read::Rebuild,
    })
}
