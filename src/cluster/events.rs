//! Domain events on the broker.
//!
//! **Out**: the outbox publisher hands every event to [`BrokerEvents`], which publishes it to
//! the topic exchange `<name>.events` (routing key: the subject with `:` → `.`, e.g.
//! `ticket.created`; internal events under `internal.`), persistent, and waits for the
//! broker's confirms; only then does the publisher delete the outbox entries. The body is the
//! seeds' JSON payload; headers carry the slot and sequence (`x-slot`, `x-seq`, also as the
//! message id `<slot>-<seq>`) on which consumers de-duplicate, the node that wrote it, and the
//! event in the wire encoding for other `ticketing` nodes.
//!
//! **In**: every node consumes its own durable quorum queue `<name>.events.<node>`, bound to
//! every subject, with a delivery limit and a dead-letter exchange (RabbitMQ 3.10 has no
//! default limit), and applies other nodes' events to its read model. Applying is idempotent
//! (rows carry versions), so redeliveries after a reconnect change nothing.

use super::rpc::FROM;
use super::{Cluster, Handler, Names};
use crate::actors::wire;
use crate::domain::{Event, Slot};
use crate::events::{EventSink, PublishedEvent};
use crate::storage::StoredEvent;
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, ByteArray, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use std::sync::Arc;

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

/// The routing key of an event: its subject with `:` → `.` (`ticket:created` →
/// `ticket.created`); events the seeds do not publish are under `internal.`.
pub fn routing_key(event: &Event) -> String {
    let key = event.subject().replace(':', ".");
    if event.is_public() {
        key
    } else {
        format!("internal.{key}")
    }
}

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

/// Starts this node's consumer of other nodes' events.
pub(super) async fn consume(
    cluster: &Cluster,
    connection: &Connection,
    handler: Arc<dyn Handler>,
) -> Result<(), lapin::Error> {
    let names = cluster.names();
    let channel = connection.create_channel().await?;
    channel.basic_qos(PREFETCH, BasicQosOptions::default()).await?;
    let queue = names.node_events(cluster.map().me());
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
        while let Some(Ok(delivery)) = consumer.next().await {
            if delivery.redelivered {
                cluster.metrics().cluster_events("redelivered", 1);
            }
            let headers = delivery.properties.headers().clone().unwrap_or_default();
            let from_me = matches!(headers.inner().get(FROM), Some(AMQPValue::LongString(s)) if s.to_string() == cluster.map().me());
            // This node's own events reached its read model before they were published.
            let applied = if from_me {
                Ok(())
            } else {
                match headers.inner().get(EVENT) {
                    Some(AMQPValue::ByteArray(bytes)) => wire::decode::<Event>(bytes.as_slice())
                        .map_err(|e| e.to_string())
                        .and_then(|event| handler.apply_event(&event)),
                    _ => Err("event without its wire form".into()),
                }
            };
            let acked = match applied {
                Ok(()) => {
                    cluster.metrics().cluster_events("consumed", 1);
                    if let (false, Some(AMQPValue::LongLongInt(at))) = (from_me, headers.inner().get(PUBLISHED_MS)) {
                        cluster.metrics().event_lag(crate::domain::now_ms() - at);
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
pub async fn delete_cluster(amqp_url: &str, names: &Names, nodes: &[&str], extra_queues: &[&str]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(conn) = Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await else { return };
    let Ok(channel) = conn.create_channel().await else { return };
    let mut queues: Vec<String> = nodes.iter().map(|id| names.node_events(id)).collect();
    queues.push(names.dead_letters());
    queues.extend(extra_queues.iter().map(|q| q.to_string()));
    for q in queues {
        let _ = channel.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
    }
    for x in [names.events_exchange(), names.dead_letters()] {
        let _ = channel.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
    let _ = conn.close(200, "deleted".into()).await;
}

/// The outbox sink that publishes to the broker.
pub struct BrokerEvents {
    cluster: Cluster,
}

impl BrokerEvents {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }
}

impl EventSink for BrokerEvents {
    fn publish<'a>(&'a self, slot: Slot, events: &'a [StoredEvent]) -> LocalBoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            let session = self.cluster.session().ok_or("the broker link is down")?;
            let exchange = self.cluster.names().events_exchange();
            let mut confirms = Vec::with_capacity(events.len());
            for stored in events {
                let event = &stored.event;
                let body = serde_json::to_vec(&PublishedEvent::from_event(event).payload).map_err(|e| e.to_string())?;
                let mut headers = FieldTable::default();
                headers.insert(SLOT.into(), AMQPValue::LongUInt(u32::from(slot.0)));
                headers.insert(SEQ.into(), AMQPValue::LongLongInt(stored.seq as i64));
                headers.insert(FROM.into(), AMQPValue::LongString(LongString::from(self.cluster.map().me())));
                headers.insert(PUBLISHED_MS.into(), AMQPValue::LongLongInt(crate::domain::now_ms()));
                let encoded = wire::encode(event).map_err(|e| e.to_string())?;
                headers.insert(EVENT.into(), AMQPValue::ByteArray(ByteArray::from(encoded)));
                let properties = BasicProperties::default()
                    .with_message_id(format!("{}-{}", slot.0, stored.seq).into())
                    .with_type(event.subject().into())
                    .with_content_type("application/json".into())
                    .with_delivery_mode(2)
                    .with_headers(headers);
                let confirm = session
                    .channel
                    .basic_publish(
                        exchange.as_str().into(),
                        routing_key(event).into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                confirms.push(confirm);
            }
            self.cluster.metrics().cluster_events("published", confirms.len());
            for confirm in confirms {
                let confirmation = confirm.await.map_err(|e| e.to_string())?;
                if confirmation.is_nack() {
                    return Err("the broker refused an event (nack)".into());
                }
            }
            self.cluster.metrics().cluster_events("confirmed", events.len());
            Ok(())
        })
    }
}
