//! Shard logs on the broker: one RabbitMQ **stream** per shard (`<name>.log.<shard>`),
//! replicated across the broker's nodes, used over AMQP 0-9-1.
//!
//! * [`Cluster::append`] publishes an entry on the link's channel, the connection that holds
//!   the leases: an owner whose connection died (and with it its leases) cannot append any
//!   more, and an append made before its lease went is in the stream before any marker of the
//!   next owner. A confirm means "on a quorum of the broker's nodes" (streams do not fsync).
//! * [`Cluster::follow`] reads a stream from an offset, in order, with the offset of each
//!   entry; it ends when the link does.
//!
//! What an entry means is not known here (`crate::replication`).

use super::publish::Confirmed;
use super::Cluster;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Entries in flight to a follower (its consumer's prefetch; streams need one).
const PREFETCH: u16 = 512;
/// A follower acknowledges entries this many at a time (one frame for the broker to handle,
/// not one each), and whatever it holds once none are waiting.
const ACK_EVERY: u64 = 64;
/// A confirm that takes longer than this counts as not confirmed.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(5);

/// How long and how much a shard's log keeps (`cluster.log_retention_*`; 0: no limit), and
/// its segments' size (what retention drops at once).
#[derive(Clone, Copy, Debug, Default)]
pub struct Retention {
    pub max_bytes: u64,
    pub max_age_hours: u64,
    pub segment_bytes: u64,
}

/// An entry read from a shard's log.
pub struct LogEntry {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

impl Cluster {
    /// Declares `shard`'s stream (idempotent; the arguments must stay the same).
    pub async fn declare_log(&self, shard: u32) -> Result<(), String> {
        let connection = self.connection().ok_or("the broker link is down")?;
        // On a channel of its own: a refused declare (other arguments) closes its channel,
        // which must not be the one every publish goes through.
        let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), AMQPValue::LongString("stream".into()));
        let replicas = self.membership().urls.len().clamp(1, 3) as i32;
        args.insert("x-initial-cluster-size".into(), AMQPValue::LongInt(replicas));
        let retention = self.0.retention;
        let segment = if retention.segment_bytes == 0 { 8 << 20 } else { retention.segment_bytes };
        args.insert(
            "x-stream-max-segment-size-bytes".into(),
            AMQPValue::LongLongInt(segment.min(i64::MAX as u64) as i64),
        );
        if retention.max_bytes > 0 {
            args.insert(
                "x-max-length-bytes".into(),
                AMQPValue::LongLongInt(retention.max_bytes.min(i64::MAX as u64) as i64),
            );
        }
        if retention.max_age_hours > 0 {
            let age = format!("{}h", retention.max_age_hours);
            args.insert("x-max-age".into(), AMQPValue::LongString(age.into()));
        }
        let options = QueueDeclareOptions { durable: true, ..Default::default() };
        let declared = channel.queue_declare(self.names().log(shard).into(), options, args).await;
        let _ = channel.close(200, "declared".into()).await;
        match declared {
            Ok(_) => Ok(()),
            // A log made with other arguments (another retention, an older release): used as it
            // is. Its retention changes through a broker policy, not by declaring it again.
            Err(e) if e.to_string().contains("PRECONDITION_FAILED") => {
                let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
                let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                let existing =
                    channel.queue_declare(self.names().log(shard).into(), passive, FieldTable::default()).await;
                let _ = channel.close(200, "declared".into()).await;
                existing.map_err(|e| e.to_string())?;
                tracing::warn!(shard, error = %e, "the shard's log exists with other settings (retention): used as it is");
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Appends `entry` to `shard`'s log, if the link is still the one of session `generation`
    /// (the one whose leases the caller's term was begun under). Returns once it is sent; the
    /// future it returns says whether the log confirmed it within [`CONFIRM_WITHIN`].
    /// Appends are sent in call order.
    pub async fn append(
        &self,
        shard: u32,
        generation: u64,
        entry: &[u8],
    ) -> Result<impl std::future::Future<Output = Result<(), String>> + 'static, String> {
        let properties = BasicProperties::default().with_delivery_mode(2);
        let confirm: oneshot::Receiver<Confirmed> =
            self.publish_in(Some(generation), "", &self.names().log(shard), false, entry, properties).await?;
        self.metrics().log_appended(entry.len());
        Ok(async move {
            match tokio::time::timeout(CONFIRM_WITHIN, confirm).await {
                Ok(Ok(Confirmed::Ack)) => Ok(()),
                Ok(Ok(other)) => Err(format!("{other:?}")),
                Ok(Err(_)) => Err("the confirm was lost".into()),
                Err(_) => Err(format!("no confirm within {CONFIRM_WITHIN:?}")),
            }
        })
    }

    /// Reads `shard`'s log from `from` (`None`: its first entry) until the link goes.
    pub async fn follow(&self, shard: u32, from: Option<u64>) -> Result<mpsc::Receiver<LogEntry>, String> {
        let connection = self.connection().ok_or("the broker link is down")?;
        let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
        channel.basic_qos(PREFETCH, BasicQosOptions::default()).await.map_err(|e| e.to_string())?;
        let mut args = FieldTable::default();
        let offset = match from {
            Some(offset) => AMQPValue::LongLongInt(offset as i64),
            None => AMQPValue::LongString(LongString::from("first")),
        };
        args.insert("x-stream-offset".into(), offset);
        let tag = format!("log-{shard}-{}", uuid::Uuid::new_v4().simple());
        let mut consumer = channel
            .basic_consume(self.names().log(shard).into(), tag.into(), BasicConsumeOptions::default(), args)
            .await
            .map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel(usize::from(PREFETCH));
        actix::spawn(async move {
            let mut unacked: Option<lapin::Acker> = None;
            let mut count = 0u64;
            loop {
                // Nothing more waiting: acknowledge what was read so far (credit for more).
                let next = match futures_util::FutureExt::now_or_never(consumer.next()) {
                    Some(next) => next,
                    None => {
                        if let Some(acker) = unacked.take() {
                            let _ = acker.ack(BasicAckOptions { multiple: true }).await;
                        }
                        tokio::select! {
                            next = consumer.next() => next,
                            // The reader went (it subscribes again, or stops following): the
                            // consumer goes with its channel, on the broker too, even though
                            // nothing more arrives.
                            () = tx.closed() => None,
                        }
                    }
                };
                let Some(Ok(delivery)) = next else { break };
                let offset = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get(&ShortString::from("x-stream-offset")).cloned());
                let Some(offset) = offset.and_then(|v| as_offset(&v)) else {
                    tracing::error!(shard, "a log entry without its offset; following stops");
                    break;
                };
                count += 1;
                if count % ACK_EVERY == 0 {
                    let _ = delivery.acker.ack(BasicAckOptions { multiple: true }).await;
                    unacked = None;
                } else {
                    unacked = Some(delivery.acker.clone());
                }
                if tx.send(LogEntry { offset, bytes: delivery.data }).await.is_err() {
                    break;
                }
            }
            let _ = channel.close(200, "unsubscribed".into()).await;
        });
        Ok(rx)
    }

    /// How many entries `shard`'s log holds, from the broker's statistics: seconds late, and
    /// its next offset only while retention has dropped nothing.
    pub async fn log_length(&self, shard: u32) -> Result<u64, String> {
        let connection = self.connection().ok_or("the broker link is down")?;
        let generation = self.generation();
        let channel = {
            let mut probe = self.0.probe_channel.lock();
            match probe.as_ref() {
                Some((g, channel)) if *g == generation && channel.status().connected() => Some(channel.clone()),
                _ => {
                    *probe = None;
                    None
                }
            }
        };
        let channel = match channel {
            Some(channel) => channel,
            None => {
                // Not the shared publishing channel: a passive declare that fails closes its own.
                let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
                *self.0.probe_channel.lock() = Some((generation, channel.clone()));
                channel
            }
        };
        let options = QueueDeclareOptions { passive: true, ..Default::default() };
        let declared = channel.queue_declare(self.names().log(shard).into(), options, FieldTable::default());
        match tokio::time::timeout(CONFIRM_WITHIN, declared).await {
            Ok(Ok(queue)) => Ok(u64::from(queue.message_count())),
            Ok(Err(e)) => {
                self.0.probe_channel.lock().take();
                Err(e.to_string())
            }
            Err(_) => Err(format!("no answer within {CONFIRM_WITHIN:?}")),
        }
    }
}

fn as_offset(value: &AMQPValue) -> Option<u64> {
    match value {
        AMQPValue::LongLongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::LongInt(v) => u64::try_from(*v).ok(),
        AMQPValue::Timestamp(v) => Some(*v),
        _ => None,
    }
}
