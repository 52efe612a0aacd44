//! The broker link: one connection per node, heartbeats (the URL's `heartbeat` parameter,
//! default 5 s), and on every (re)connect the whole topology declared again: the events
//! exchange and dead-letter queue, this node's reply queue, its event queue, and the lease of
//! every shard it owns. While the link is down the leases are gone with the connection, so the
//! node serves none of its shards (requests fail fast with 503) until it has them back.

use super::consumer::{next_delivery, Consumer, ConsumerEnded};
use super::publish::Arrival;
use super::rpc::{NEW_OWNER, PROBE, REFUSED};
use super::{events, serve, Cluster, Shard};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a starting node waits for a lease another connection holds: after a crash the
/// broker drops the dead connection's queues within a moment; a lease held for longer belongs
/// to a live node configured to own the same shard.
const LEASE_PATIENCE: Duration = Duration::from_secs(5);
/// Connection attempts before a starting node gives up (about 15 s with the backoff).
const START_ATTEMPTS: u32 = 8;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The heartbeat of a broker URL that does not name one.
pub(super) const DEFAULT_HEARTBEAT_SECONDS: u64 = 5;
/// How often leases not held are tried again (a failover takes at most about this long to
/// start).
const LEASE_ROUND: Duration = Duration::from_millis(250);
/// How long declaring and consuming the reply and event queues may take before the connection
/// is given up and made again (a broker that never answers a declare would otherwise hold the
/// link down for good). The link is up only once both are consumed: a node whose event queue
/// cannot be consumed (its quorum lost) serves none of its shards, rather than serve them
/// without hearing the other nodes.
const CONSUMERS_PATIENCE: Duration = Duration::from_secs(15);
/// A link up this long starts its next connect without backoff.
const STEADY_LINK: Duration = Duration::from_secs(10);
/// Unacknowledged forwarded requests the broker may push to this node.
const PREFETCH: u16 = 512;
/// Forwarded requests this node runs at once.
pub(super) const IN_FLIGHT: usize = 1024;

/// A live broker session.
pub struct Session {
    /// The connection: its exclusive queues are the leases.
    pub connection: Arc<Connection>,
    /// Publishes requests, replies and events; in confirm mode.
    pub channel: Channel,
    /// This node's exclusive reply queue (server-named).
    pub reply_queue: String,
    /// Its number among this node's sessions ([`Cluster::generation`]).
    pub generation: u64,
}

/// Keeps the link up for as long as the node runs. `started` learns whether the first connect
/// succeeded with every lease, or why not.
pub(super) async fn run(cluster: Cluster, started: oneshot::Sender<Result<(), String>>) {
    let mut started = Some(started);
    let mut backoff = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        match connect(&cluster).await {
            Ok((connection, session)) => {
                // Without replicated shards a node must hold its own leases to start: one held
                // for long elsewhere means two nodes are configured to own the same shard.
                // With them, the holder is a follower that took over: this node follows.
                if !cluster.membership().replicated {
                    let owned = cluster.membership().mine.clone();
                    let missing = take_leases(&cluster, &connection, owned, LEASE_PATIENCE).await;
                    if !missing.is_empty() {
                        let reason = format!(
                            "shards {:?} are served by another node (their lease queues are held): two nodes are \
                             configured to own them; check cluster.members and cluster.node_id on every node",
                            missing.iter().map(|s| s.0).collect::<Vec<_>>()
                        );
                        if let Some(started) = started.take() {
                            let _ = started.send(Err(reason));
                            let _ = connection.close(200, "refusing to start".into()).await;
                            return;
                        }
                        // After a reconnect the broker may not have dropped the old connection yet.
                        tracing::error!("{reason}; retrying in the background");
                    }
                }
                // The replies and this node's event queue are consumed before the link counts
                // as up (and the node as ready): events published from then on reach it.
                let (ended, mut consumer_ended) = tokio::sync::mpsc::unbounded_channel();
                match in_patience(start_consumers(&cluster, &connection, &session, ended.clone())).await {
                    Ok(()) => {
                        let linked = Instant::now();
                        attempts = 0;
                        let mut session = session;
                        session.generation = cluster.0.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                        let session = Arc::new(session);
                        cluster.0.session.send_replace(Some(Arc::clone(&session)));
                        cluster.metrics().set_link_up(true);
                        tracing::info!(held = cluster.0.held.read().len(), "broker link up");
                        if let Some(started) = started.take() {
                            let _ = started.send(Ok(()));
                        }
                        serve_link(&cluster, &connection, &session, ended, &mut consumer_ended).await;
                        // A link that ends at once (a consumer that keeps ending, leases
                        // refused) is not made again at once: the backoff goes on growing.
                        if linked.elapsed() >= STEADY_LINK {
                            backoff = Duration::from_millis(100);
                        }
                    }
                    Err(why) => {
                        tracing::warn!(%why, "consumers could not start; reconnecting");
                        // A node that cannot consume (its event queue declared otherwise, no
                        // permission) does not start, rather than wait for ever.
                        attempts += 1;
                        if attempts >= START_ATTEMPTS {
                            if let Some(started) = started.take() {
                                let _ = connection.close(200, "refusing to start".into()).await;
                                let _ = started.send(Err(format!("cannot consume from RabbitMQ: {why}")));
                                return;
                            }
                        }
                    }
                }
                lost(&cluster);
                let _ = connection.close(200, "reconnecting".into()).await;
            }
            Err(e) => {
                attempts += 1;
                if attempts >= START_ATTEMPTS {
                    if let Some(started) = started.take() {
                        let _ = started.send(Err(format!("cannot reach RabbitMQ (cluster.amqp_url): {e}")));
                        return;
                    }
                }
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "broker unreachable");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The link is down: no lease, no session, and every forwarded request still waiting fails
/// now (its sender is dropped) instead of at its timeout.
fn lost(cluster: &Cluster) {
    cluster.0.session.send_replace(None);
    cluster.0.serving.write().clear();
    cluster.0.held.write().clear();
    cluster.0.inbound.leases_lost();
    cluster.0.pending.clear();
    cluster.0.pending_shard.clear();
    cluster.metrics().set_link_up(false);
    tracing::warn!("broker link lost; this node serves none of its shards until it reconnects");
}

/// Connects to one of the broker's nodes: the one after the last that was used first, so a
/// node whose broker died goes on through another (the cluster's queues are replicated across
/// its nodes; exclusive queues, the leases, die with their connection and are taken again).
async fn connect(cluster: &Cluster) -> Result<(Arc<Connection>, Session), lapin::Error> {
    let urls = &cluster.membership().urls;
    let first = cluster.0.next_broker.load(std::sync::atomic::Ordering::Relaxed);
    let mut failure = None;
    for n in 0..urls.len() {
        let i = (first + n) % urls.len();
        match session_on(cluster, &urls[i]).await {
            Ok(linked) => {
                cluster.0.next_broker.store(i + 1, std::sync::atomic::Ordering::Relaxed);
                if n > 0 || urls.len() > 1 {
                    tracing::info!(broker = i, "linked to broker node");
                }
                return Ok(linked);
            }
            Err(e) => {
                tracing::debug!(broker = i, error = %e, "broker node unreachable");
                failure = Some(e);
            }
        }
    }
    cluster.0.next_broker.store(first + 1, std::sync::atomic::Ordering::Relaxed);
    Err(failure.unwrap_or_else(|| lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed).into()))
}

/// The heartbeat a broker URL asks for (its `heartbeat` parameter), or the default.
pub(super) fn heartbeat_of(url: &str) -> Duration {
    let seconds = url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("heartbeat="))
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_HEARTBEAT_SECONDS);
    Duration::from_secs(seconds)
}

async fn session_on(cluster: &Cluster, url: &str) -> Result<(Arc<Connection>, Session), lapin::Error> {
    let mut url = url.to_string();
    if !url.contains("heartbeat=") {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("heartbeat={DEFAULT_HEARTBEAT_SECONDS}"));
    }
    let membership = cluster.membership();
    let name = format!("ticketing {} ({})", membership.node, membership.cluster);
    let connection =
        Connection::connect(&url, ConnectionProperties::default().with_connection_name(name.into())).await?;
    let channel = connection.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    events::declare(&channel, cluster.names()).await?;
    let reply = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
            FieldTable::default(),
        )
        .await?;
    let reply_queue = reply.name().to_string();
    // A node that begins serving a shard says so to every node's reply queue.
    let terms = cluster.names().terms_exchange();
    let durable = lapin::options::ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(terms.as_str().into(), lapin::ExchangeKind::Fanout, durable, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            reply_queue.as_str().into(),
            terms.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await?;
    let connection = Arc::new(connection);
    Ok((Arc::clone(&connection), Session { connection, channel, reply_queue, generation: 0 }))
}

/// Declares the exclusive queue of each of `shards`. A lease another connection holds is
/// retried for `patience`; the shards still held elsewhere are returned.
async fn take_leases(cluster: &Cluster, connection: &Connection, shards: Vec<Shard>, patience: Duration) -> Vec<Shard> {
    let deadline = Instant::now() + patience;
    let mut missing = shards;
    loop {
        // A refused declare closes its channel, so each round has a fresh one.
        let Ok(channel) = connection.create_channel().await else { return missing };
        let mut still = Vec::new();
        for shard in missing {
            if !channel.status().connected() {
                still.push(shard);
                continue;
            }
            let options = QueueDeclareOptions { exclusive: true, ..Default::default() };
            match channel.queue_declare(cluster.names().shard(shard).into(), options, FieldTable::default()).await {
                Ok(_) => cluster.took(shard),
                Err(e) => {
                    tracing::debug!(shard = shard.0, error = %e, "lease not taken");
                    still.push(shard);
                }
            }
        }
        if still.is_empty() || Instant::now() >= deadline {
            return still;
        }
        missing = still;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Consumes the replies to this node's forwarded requests and (via [`events::consume`]) other
/// nodes' events; `ended` learns when either stops.
async fn start_consumers(
    cluster: &Cluster,
    connection: &Connection,
    session: &Session,
    ended: ConsumerEnded,
) -> Result<(), lapin::Error> {
    let no_ack = BasicConsumeOptions { no_ack: true, ..Default::default() };
    let replies = connection.create_channel().await?;
    let mut consumer = replies
        .basic_consume(session.reply_queue.as_str().into(), "replies".into(), no_ack, FieldTable::default())
        .await?;
    let to = cluster.clone();
    let replies_ended = ended.clone();
    actix::spawn(async move {
        while let Some(delivery) = Consumer::Replies.next(&mut consumer, &replies_ended).await {
            if let Some(AMQPValue::LongUInt(shard)) =
                delivery.properties.headers().as_ref().and_then(|h| h.inner().get(NEW_OWNER))
            {
                to.owner_changed(Shard(*shard));
                continue;
            }
            let Some(id) = delivery.properties.correlation_id() else { continue };
            let refused = match delivery.properties.headers().as_ref().and_then(|h| h.inner().get(REFUSED)) {
                Some(AMQPValue::LongString(why)) => Some(why.to_string()),
                _ => None,
            };
            if let Some((_, waiter)) = to.0.pending.remove(id.as_str()) {
                let _ = waiter.send(Arrival::Reply { body: delivery.data, refused });
            }
        }
    });
    events::consume(cluster, connection, ended).await
}

/// `starting` (consumers), given [`CONSUMERS_PATIENCE`] to start; why not, if they did not.
async fn in_patience(starting: impl std::future::Future<Output = Result<(), lapin::Error>>) -> Result<(), String> {
    match tokio::time::timeout(CONSUMERS_PATIENCE, starting).await {
        Ok(started) => started.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer in {} s", CONSUMERS_PATIENCE.as_secs())),
    }
}

/// Runs a live link until it is lost: its leases kept, its heartbeat sent. An event consumer
/// that ends under it (its queue deleted, its channel closed) is started again on a channel of
/// its own; the link is made again only if that fails, or if the replies' consumer ends (its
/// queue is the session's).
async fn serve_link(
    cluster: &Cluster,
    connection: &Arc<Connection>,
    session: &Session,
    ended: ConsumerEnded,
    consumer_ended: &mut tokio::sync::mpsc::UnboundedReceiver<(Consumer, String)>,
) {
    let loss = wait_for_loss(connection);
    let leases = keep_leases(cluster, connection);
    let beating = beat(cluster, session);
    tokio::pin!(loss, leases, beating);
    // The event consumer being started again: a branch of its own, so that leases and beats
    // go on meanwhile (a restart may take up to its patience).
    let mut restarting: Option<futures_util::future::BoxFuture<'_, Result<(), String>>> = None;
    loop {
        tokio::select! {
            _ = &mut loss => return,
            _ = &mut leases => return,
            _ = &mut beating => return,
            restarted = async {
                match restarting.as_mut() {
                    Some(restart) => restart.await,
                    None => std::future::pending().await,
                }
            } => {
                restarting = None;
                if let Err(why) = restarted {
                    tracing::warn!(%why, "the event queue cannot be consumed again; reconnecting");
                    return;
                }
            }
            stopped = consumer_ended.recv() => {
                let Some((consumer, why)) = stopped else { return };
                if !connection.status().connected() {
                    return;
                }
                if consumer == Consumer::Replies {
                    tracing::warn!(%why, "the replies' consumer ended; reconnecting");
                    return;
                }
                tracing::warn!(%why, "this node's event consumer ended; consuming its queue again");
                restarting = Some(Box::pin(in_patience(events::consume(cluster, connection, ended.clone()))));
            }
        }
    }
}

/// Consumes the request queues of `shards`. At most [`IN_FLIGHT`] forwarded requests run at
/// once; beyond that, requests wait in the broker (unacknowledged deliveries are bounded by the
/// prefetch). A request is acknowledged as it starts: if the connection drops, its exclusive
/// queue goes with it, so nothing is ever delivered twice.
async fn serve_shards(cluster: &Cluster, connection: &Connection, shards: Vec<Shard>) -> Result<(), lapin::Error> {
    if shards.is_empty() {
        return Ok(());
    }
    let requests = connection.create_channel().await?;
    requests.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
    for shard in shards {
        let queue = cluster.names().shard(shard);
        let mut consumer = requests
            .basic_consume(
                queue.as_str().into(),
                queue.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let cluster = cluster.clone();
        let taking = cluster.taking(shard);
        actix::spawn(async move {
            loop {
                let delivery = match next_delivery(&mut consumer).await {
                    Ok(delivery) => delivery,
                    Err(why) => {
                        // This taking of the lease still held on a live link (not lost with
                        // it, nor given up and taken again): a lease nobody consumes would leave
                        // its requests waiting for their timeout. Give it up, so that it is
                        // taken and served again.
                        let linked = cluster.connection().is_some_and(|c| c.status().connected());
                        if linked && cluster.taking(shard) == taking && cluster.holds(shard) {
                            tracing::warn!(shard = shard.0, %why, "a served shard's consumer ended; giving its lease up");
                            cluster.give_up(shard).await;
                        }
                        return;
                    }
                };
                if is_probe(&delivery) {
                    // A caller checking that this queue exists: nothing to run.
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    continue;
                }
                let Ok(permit) = Arc::clone(&cluster.0.intake).acquire_owned().await else { return };
                if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                    tracing::debug!(error = %e, "request ack lost with the link");
                }
                let cluster = cluster.clone();
                actix::spawn(async move {
                    serve::one(cluster, shard, delivery).await;
                    drop(permit);
                });
            }
        });
    }
    Ok(())
}

/// Serves the leases taken at connect, then keeps taking the leases this node may hold: its
/// own at once (the broker may not yet have dropped its previous connection), and with
/// replicated shards those it follows, when nobody holds them (`Membership::standby`). Each
/// is served once [`Inbound::lease_taken`](super::Inbound::lease_taken) made it ready.
async fn keep_leases(cluster: &Cluster, connection: &Arc<Connection>) {
    let taken: Vec<Shard> = cluster.0.held.read().iter().copied().collect();
    for shard in taken {
        actix::spawn(ready_then_serve(cluster.clone(), Arc::clone(connection), shard));
    }
    let membership = cluster.membership().clone();
    let candidates: Vec<(Shard, bool)> =
        membership.mine.iter().map(|s| (*s, true)).chain(membership.standby.iter().map(|s| (*s, false))).collect();
    let mut channel: Option<Channel> = None;
    loop {
        // Which free leases to try: probed all at once (a probe costs a publish, not a channel).
        let probes = candidates.iter().filter(|(shard, _)| !cluster.holds(*shard)).map(|(shard, own)| async move {
            let queue = cluster.names().shard(*shard);
            (*shard, *own, cluster.queue_exists(&queue).await)
        });
        for (shard, own, exists) in futures_util::future::join_all(probes).await {
            match exists {
                Some(true) => {
                    cluster.0.seen_held.write().insert(shard);
                    continue;
                }
                None => continue,
                Some(false) => {}
            }
            // At a cold start a follower leaves a free lease to the shard's own node for a while.
            let in_grace = cluster.0.started.elapsed() < membership.takeover_grace;
            if !own && in_grace && !cluster.0.seen_held.read().contains(&shard) {
                continue;
            }
            let usable = match &channel {
                Some(c) if c.status().connected() => c.clone(),
                _ => match connection.create_channel().await {
                    Ok(c) => {
                        channel = Some(c.clone());
                        c
                    }
                    Err(_) => return,
                },
            };
            let options = QueueDeclareOptions { exclusive: true, ..Default::default() };
            // Refused (another node was quicker): its channel is closed, the next round uses another.
            if usable.queue_declare(cluster.names().shard(shard).into(), options, FieldTable::default()).await.is_ok() {
                cluster.took(shard);
                cluster.0.seen_held.write().insert(shard);
                tracing::info!(shard = shard.0, own, "lease taken");
                // Requests still waiting on the previous holder's queue will get no reply.
                let announcer = cluster.clone();
                actix::spawn(async move { announcer.announce_owner(shard).await });
                actix::spawn(ready_then_serve(cluster.clone(), Arc::clone(connection), shard));
            }
        }
        tokio::time::sleep(LEASE_ROUND).await;
    }
}

/// Publishes a zero-TTL message to this node's own reply queue every eighth of a heartbeat, so a
/// confirm shows the connection holding the leases is alive even while nothing else is sent
/// ([`Cluster::leases_fresh`]). The reply consumer ignores it (no correlation id).
async fn beat(cluster: &Cluster, session: &Session) {
    // Several beats per freshness window (half a heartbeat): a late one does not fence.
    let every = cluster.heartbeat() / 8;
    loop {
        let properties = lapin::BasicProperties::default().with_expiration("0".into());
        if let Ok(confirmed) = cluster.publish("", &session.reply_queue, false, &[], properties).await {
            let _ = confirmed.await;
        }
        tokio::time::sleep(every).await;
    }
}

/// Makes a taken lease ready, then consumes its requests; gives it up if it cannot be made
/// ready.
async fn ready_then_serve(cluster: Cluster, connection: Arc<Connection>, shard: Shard) {
    let generation = cluster.generation();
    let ready = cluster.0.inbound.lease_taken(shard).await;
    if cluster.generation() != generation || !cluster.holds(shard) {
        return;
    }
    if ready {
        let served = if cluster.refuses_serving(shard) {
            Err("fault injection: the first serving of this shard fails".to_string())
        } else {
            serve_shards(&cluster, &connection, vec![shard]).await.map_err(|e| e.to_string())
        };
        match served {
            Ok(()) => {
                cluster.0.serving.write().insert(shard);
                return;
            }
            Err(e) => tracing::warn!(shard = shard.0, error = %e, "a taken lease could not be served"),
        }
    }
    cluster.give_up(shard).await;
}

impl Cluster {
    /// Test-only: whether serving `shard` fails this once (`Faults::refuse_first_serve`).
    fn refuses_serving(&self, shard: Shard) -> bool {
        self.0.refuse_serve.lock().as_mut().is_some_and(|refused| refused.insert(shard))
    }

    /// Gives up `shard`'s lease (this node cannot serve it): whatever made it ready here ends
    /// first ([`Inbound::lease_given_up`](super::Inbound::lease_given_up): a replicated
    /// shard's term), then another node, or this one later, takes it.
    pub async fn give_up(&self, shard: Shard) {
        self.0.serving.write().remove(&shard);
        self.0.held.write().remove(&shard);
        self.0.inbound.lease_given_up(shard);
        let Some(connection) = self.connection() else { return };
        if let Ok(channel) = connection.create_channel().await {
            let name = self.names().shard(shard);
            let _ = channel.queue_delete(name.into(), Default::default()).await;
            let _ = channel.close(200, "lease given up".into()).await;
        }
    }
}

/// Resolves when the connection fails (a missed heartbeat, a closed socket, the broker closing
/// it).
async fn wait_for_loss(connection: &Connection) {
    let mut events = connection.events_listener();
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(lapin::Event::Error(e)) => {
                    // A channel the broker closed (a lease probe refused) is not the link.
                    if connection.status().connected() && is_channel_error(&e) {
                        tracing::debug!(error = %e, "a channel was closed by the broker");
                        continue;
                    }
                    tracing::warn!(error = %e, "broker connection error");
                    return;
                }
                Some(_) => {}
                None => return,
            },
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if !connection.status().connected() {
                    return;
                }
            }
        }
    }
}

/// Whether `error` is a soft (channel) error: the broker closed one channel, not the connection.
fn is_channel_error(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if matches!(e.kind(), lapin::protocol::AMQPErrorKind::Soft(_)))
}

fn is_probe(delivery: &Delivery) -> bool {
    delivery.properties.headers().as_ref().is_some_and(|h| h.inner().contains_key(PROBE))
}
