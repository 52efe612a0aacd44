//! Events on the broker, as bytes (what they mean is `crate::routing::events`).
//!
//! **Out**: the outbox publisher hands every event to `routing::events::BrokerEvents`, which
//! publishes it here ([`Cluster::publish_events`]) to
//! the topic exchange `<name>.events` (routing key: the subject with `:` → `.`, e.g.
//! `ticket.created`; internal events under `internal.`), persistent, and waits for the
//! broker's confirms; only then does the publisher delete the outbox entries. The body is the
//! seeds' JSON payload; headers carry the slot and sequence (`x-slot`, `x-seq`, also as the
//! message id `<slot>-<seq>`) on which consumers de-duplicate, the node that wrote it, and the
//! event in the wire encoding for other `ticketing` nodes, and (with telemetry on) the
//! `traceparent` of its publishing, which the consumers' spans continue.
//!
//! **In**: every node consumes its own durable quorum queue `<name>.events.<node>`, bound to
//! every subject, with a delivery limit and a dead-letter exchange (RabbitMQ 3.10 has no
//! default limit), and applies other nodes' events to its read model. Applying is idempotent
//! (rows carry versions), so redeliveries after a reconnect change nothing.

use super::consumer::{Consumer, ConsumerEnded};
use super::rpc::FROM;
use super::serve::text_headers;
use super::{Cluster, Names};
use crate::deadline::wall_ms;
use crate::observability::telemetry::{self, Trust, TRACEPARENT};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, ByteArray, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};

pub const SLOT: &str = "x-slot";
pub const SEQ: &str = "x-seq";
pub const EVENT: &str = "x-event";
/// When the event was published (ms since the epoch): the consumer's lag is measured from it.
pub const PUBLISHED_MS: &str = "x-published-ms";
/// Deliveries of one event before it is dead-lettered.
const DELIVERY_LIMIT: i32 = 5;
/// Unacknowledged events in flight to this node's consumer.
const PREFETCH: u16 = 256;
/// A node's event queue unused this long (the node removed or renamed) is deleted by the
/// broker, so that it does not collect every event for ever.
const UNUSED_QUEUE_EXPIRES_MS: i32 = 7 * 24 * 3600 * 1000;

/// Declares the exchanges every node shares (idempotent).
pub(super) async fn declare(channel: &Channel, names: &Names) -> Result<(), lapin::Error> {
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    channel
        .exchange_declare(names.events_exchange().into(), ExchangeKind::Topic, durable, FieldTable::default())
        .await?;
    channel.exchange_declare(names.dead_letters().into(), ExchangeKind::Fanout, durable, FieldTable::default()).await?;
    let dead = names.dead_letters();
    durable_queue_bound(channel, &dead, FieldTable::default(), &dead, "").await
}

/// Declares the durable quorum queue `queue` (with `args`) bound to `exchange` by `key`.
async fn durable_queue_bound(
    channel: &Channel,
    queue: &str,
    mut args: FieldTable,
    exchange: &str,
    key: &str,
) -> Result<(), lapin::Error> {
    args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(queue.into(), durable, args).await?;
    channel
        .queue_bind(queue.into(), exchange.into(), key.into(), QueueBindOptions::default(), FieldTable::default())
        .await
}

/// Starts this node's consumer of other nodes' events; `ended` hears if it stops.
pub(super) async fn consume(
    cluster: &Cluster,
    connection: &Connection,
    ended: ConsumerEnded,
) -> Result<(), lapin::Error> {
    let names = cluster.names();
    let channel = connection.create_channel().await?;
    channel.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
    if cluster.0.slow_event_queue {
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }
    let queue = names.node_events(&cluster.membership().node);
    let mut args = FieldTable::default();
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(DELIVERY_LIMIT));
    args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(names.dead_letters().into()));
    args.insert("x-expires".into(), AMQPValue::LongInt(UNUSED_QUEUE_EXPIRES_MS));
    durable_queue_bound(&channel, &queue, args, &names.events_exchange(), "#").await?;
    let mut consumer = channel
        .basic_consume(queue.as_str().into(), "events".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    let cluster = cluster.clone();
    actix::spawn(async move {
        while let Some(delivery) = Consumer::Events.next(&mut consumer, &ended).await {
            if delivery.redelivered {
                cluster.metrics().cluster_events("redelivered", 1);
            }
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            let from_me = matches!(headers.inner().get(FROM), Some(AMQPValue::LongString(s)) if s.to_string() == cluster.membership().node);
            // This node's own events reached its read model before they were published.
            let applied = if from_me {
                Ok(())
            } else {
                let text = text_headers(&headers);
                // In the trace of the request that wrote the event (another node: its
                // sampling decision is kept).
                let span = tracing::debug_span!("consume event", subject = ?delivery.properties.kind());
                if telemetry::enabled() {
                    telemetry::continue_trace(&span, text.get(TRACEPARENT).map(String::as_str), Trust::Trusted);
                }
                let _entered = span.enter();
                match headers.inner().get(EVENT) {
                    Some(AMQPValue::ByteArray(bytes)) => cluster.0.inbound.event(bytes.as_slice(), &text),
                    _ => Err("event without its wire form".into()),
                }
            };
            let acked = match applied {
                Ok(()) => {
                    cluster.metrics().cluster_events("consumed", 1);
                    if let (false, Some(AMQPValue::LongLongInt(at))) = (from_me, headers.inner().get(PUBLISHED_MS)) {
                        cluster.metrics().event_lag(wall_ms() - at);
                    }
                    delivery.ack(BasicAckOptions::default()).await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event not applied; requeued (dead-lettered after {DELIVERY_LIMIT} tries)");
                    delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await
                }
            };
            if let Err(e) = acked {
                tracing::debug!(error = %e, "event ack lost with the link; it will be redelivered");
            }
        }
    });
    Ok(())
}

/// Deletes what a cluster left on the broker once its nodes are gone for good: the nodes'
/// event queues, the dead-letter queue and both exchanges (and `extra_queues`). Lease and
/// reply queues go by themselves with their connections. Best effort: errors are ignored.
pub async fn delete_cluster(amqp_url: &str, names: &Names, nodes: &[&str], shards: u32, extra_queues: &[&str]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(conn) = Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await else { return };
    let Ok(channel) = conn.create_channel().await else { return };
    let mut queues: Vec<String> = nodes.iter().map(|id| names.node_events(id)).collect();
    queues.push(names.dead_letters());
    queues.extend((0..shards).map(|s| names.log(s)));
    queues.extend(extra_queues.iter().map(|q| q.to_string()));
    for q in queues {
        let _ = channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
    }
    for x in [names.events_exchange(), names.dead_letters(), names.terms_exchange()] {
        let _ = channel.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    let _ = conn.close(200, "deleted".into()).await;
}

/// An event on its way to the other nodes.
pub struct OutgoingEvent {
    /// The topic routing key (its subject, e.g. `ticket.created`).
    pub routing_key: String,
    /// Its subject as the message type (e.g. `ticket:created`).
    pub subject: String,
    /// The slot and sequence it was written under: consumers de-duplicate on them.
    pub slot: u16,
    pub seq: u64,
    /// The public body (the seeds' JSON payload).
    pub body: Vec<u8>,
    /// The event as other nodes of this release read it.
    pub wire: Vec<u8>,
    /// The trace its consumers continue (with telemetry on): its publishing's span.
    pub traceparent: Option<String>,
}

impl Cluster {
    /// Publishes `events` (in order), persistent, and waits for the broker's confirms.
    pub async fn publish_events(&self, events: Vec<OutgoingEvent>) -> Result<(), String> {
        let exchange = self.names().events_exchange();
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = FieldTable::default();
            headers.insert(SLOT.into(), AMQPValue::LongUInt(u32::from(event.slot)));
            headers.insert(SEQ.into(), AMQPValue::LongLongInt(event.seq as i64));
            headers.insert(FROM.into(), AMQPValue::LongString(LongString::from(self.membership().node.as_str())));
            headers.insert(PUBLISHED_MS.into(), AMQPValue::LongLongInt(wall_ms()));
            headers.insert(EVENT.into(), AMQPValue::ByteArray(ByteArray::from(event.wire)));
            if let Some(traceparent) = event.traceparent {
                headers.insert(TRACEPARENT.into(), AMQPValue::LongString(LongString::from(traceparent)));
            }
            let properties = BasicProperties::default()
                .with_message_id(format!("{}-{}", event.slot, event.seq).into())
                .with_type(event.subject.as_str().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_headers(headers);
            confirms.push(self.publish(&exchange, &event.routing_key, false, &event.body, properties).await?);
        }
        let published = confirms.len();
        self.metrics().cluster_events("published", published);
        for confirm in confirms {
            match confirm.await {
                Ok(super::publish::Confirmed::Ack) => {}
                Ok(other) => return Err(format!("the broker did not take an event: {other:?}")),
                Err(_) => return Err("an event's confirm was lost".into()),
            }
        }
        self.metrics().cluster_events("confirmed", published);
        Ok(())
    }
}
