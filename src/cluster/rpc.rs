//! The caller's side of a forwarded request.
//!
//! The request is published to the owner's lease queue with `mandatory` and waited for its
//! publisher confirm: a shard whose owner is down has no queue, so the broker returns the
//! message with the confirm and the caller answers 503 at once, never after a timeout. The
//! message carries a correlation id, the map epoch, a per-message `expiration` no longer than
//! the caller's remaining time, and the absolute deadline the owner checks before running it:
//! a request the caller gave up on is never run later.

use super::messages::{Reply, Request};
use super::{Cluster, Shard};
use crate::actors::{wire, EntityError};
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::BasicProperties;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// AMQP header names.
pub const EPOCH: &str = "x-epoch";
pub const DEADLINE_MS: &str = "x-deadline-ms";
pub const REQUEST_ID: &str = "x-request-id";
pub const FROM: &str = "x-from";

impl Cluster {
    /// Sends `request` to the owner of `shard` and waits at most `timeout` for its reply.
    pub async fn forward(&self, shard: Shard, request: &Request, timeout: Duration) -> Result<Reply, EntityError> {
        let started = Instant::now();
        let outcome = self.forward_inner(shard, request, timeout, true).await;
        let label = match &outcome {
            Ok(_) => "ok",
            Err(Forward::LinkDown) => "link_down",
            Err(Forward::Unroutable) => "unroutable",
            Err(Forward::Timeout) => "timeout",
            Err(Forward::Failed(_)) => "failed",
        };
        self.metrics().forwarded(label, started.elapsed());
        match outcome {
            // A reply this release cannot read (an owner on another wire version): 503.
            Ok(bytes) => wire::decode::<Reply>(&bytes).map_err(|e| {
                tracing::warn!(shard = shard.0, error = %e, "a reply from the owning node could not be read");
                EntityError::Unavailable
            }),
            Err(Forward::Timeout) => Err(EntityError::NoReply),
            Err(Forward::Failed(e)) => {
                tracing::warn!(shard = shard.0, error = %e, "forwarding failed");
                Err(EntityError::Unavailable)
            }
            Err(_) => Err(EntityError::Unavailable),
        }
    }

    /// Sends `request` to the owner of `shard` without waiting for a reply (a wake-up).
    pub async fn tell(&self, shard: Shard, request: &Request, timeout: Duration) -> Result<(), EntityError> {
        match self.forward_inner(shard, request, timeout, false).await {
            Ok(_) => Ok(()),
            Err(_) => Err(EntityError::Unavailable),
        }
    }

    async fn forward_inner(
        &self,
        shard: Shard,
        request: &Request,
        timeout: Duration,
        want_reply: bool,
    ) -> Result<Vec<u8>, Forward> {
        let until = tokio::time::Instant::now() + timeout;
        let session = self.session().ok_or(Forward::LinkDown)?;
        let body = wire::encode(request).map_err(|e| Forward::Failed(e.to_string()))?;
        let id = uuid::Uuid::new_v4().to_string();
        let deadline_ms = crate::domain::now_ms() + timeout.as_millis() as i64;
        let mut headers = FieldTable::default();
        headers.insert(EPOCH.into(), AMQPValue::LongUInt(self.map().epoch()));
        headers.insert(DEADLINE_MS.into(), AMQPValue::LongLongInt(deadline_ms));
        headers.insert(FROM.into(), AMQPValue::LongString(LongString::from(self.map().me())));
        headers.insert(
            REQUEST_ID.into(),
            AMQPValue::LongString(LongString::from(crate::observability::current_request_id())),
        );
        let mut properties = BasicProperties::default()
            .with_correlation_id(id.as_str().into())
            .with_expiration(timeout.as_millis().max(1).to_string().into())
            .with_headers(headers);
        // The entry is removed however this ends, even if the caller's future is dropped.
        let (reply, _waiting) = if want_reply {
            properties = properties.with_reply_to(session.reply_queue.as_str().into());
            let (tx, rx) = oneshot::channel();
            self.0.pending.insert(id.clone(), tx);
            (Some(rx), Some(Waiting { cluster: self, id: id.clone() }))
        } else {
            (None, None)
        };
        let publish = session.channel.basic_publish(
            "".into(),
            self.names().shard(shard).into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            &body,
            properties,
        );
        // Not sent: nothing ran (503).
        let confirm = match tokio::time::timeout_at(until, publish).await {
            Ok(Ok(confirm)) => confirm,
            Ok(Err(e)) => return Err(Forward::Failed(e.to_string())),
            Err(_) => return Err(Forward::LinkDown),
        };
        // Sent: from here on the owner may have run it, so a failure is "no reply" (504),
        // except a return (no lease queue: the owner is down) or a nack, which ran nothing.
        let Ok(Ok(confirmation)) = tokio::time::timeout_at(until, confirm).await else {
            return Err(Forward::Timeout);
        };
        if confirmation.is_nack() {
            return Err(Forward::Failed("the broker refused the request (nack)".into()));
        }
        if confirmation.take_message().is_some() {
            return Err(Forward::Unroutable);
        }
        let Some(rx) = reply else { return Ok(Vec::new()) };
        match tokio::time::timeout_at(until, rx).await {
            Ok(Ok(bytes)) => Ok(bytes),
            // The link went down while waiting (its pending replies are dropped).
            Ok(Err(_)) | Err(_) => Err(Forward::Timeout),
        }
    }
}

/// A forwarded request's place in the pending-reply map.
struct Waiting<'a> {
    cluster: &'a Cluster,
    id: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.cluster.0.pending.remove(&self.id);
    }
}

enum Forward {
    /// Not sent: the link is down.
    LinkDown,
    /// No queue for the shard: its owner is down.
    Unroutable,
    /// Sent, but no reply in time: it may have run.
    Timeout,
    /// Not sent, or refused by the broker.
    Failed(String),
}
