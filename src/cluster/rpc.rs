//! The caller's side of a request to a shard's owner, and the truth about its outcome.
//!
//! The request is published to the owner's lease queue with `mandatory`, a correlation id, the
//! map epoch, a per-message `expiration` no longer than the caller's remaining time, and the
//! absolute deadline the owner checks before running it. Then the caller waits for whichever
//! comes first:
//!
//! * the reply (its correlation id on this node's reply queue): done, or refused by the owner
//!   before running (epoch, a message it cannot read): [`Undelivered::NotRun`];
//! * the request itself, returned by the broker (no lease queue: the owner is down), matched by
//!   correlation id whichever confirm carried it (`publish`): [`Undelivered::NotRun`];
//! * a probe returned: once a second while waiting, a mandatory, zero-TTL probe goes to the
//!   same queue; its return means the owner's queue vanished while the request was in it or
//!   running, so the caller stops waiting at once: [`Undelivered::MayHaveRun`];
//! * a nack, a lost channel or link, or the deadline: [`Undelivered::MayHaveRun`].

use super::publish::{Arrival, Confirmed};
use super::{Cluster, Headers, Shard};
use crate::deadline::Deadline;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::BasicProperties;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// AMQP header names the transport itself uses.
pub const EPOCH: &str = "x-epoch";
pub const DEADLINE_MS: &str = "x-deadline-ms";
pub const FROM: &str = "x-from";
/// On a probe: nothing to run, nothing to answer.
pub const PROBE: &str = "x-probe";
/// On a message of the terms exchange: the shard a node begins serving.
pub const NEW_OWNER: &str = "x-new-owner";
/// On a reply: the owner refused the request before running it, and why.
pub const REFUSED: &str = "x-refused";

/// How often a waiting caller checks that the owner's queue still exists.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long after its confirm a probe's return may still arrive on another confirm.
const RETURN_GRACE: Duration = Duration::from_millis(100);

/// Why a request got no reply, told truthfully.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Undelivered {
    /// Provably not run: the link was down, the broker returned it (the owner is down), or the
    /// owner refused it before running it. Safe to retry as a new request.
    #[error("not run: {0}")]
    NotRun(String),
    /// Sent, but no reply: it may have run (no reply before the deadline, the owner or the link
    /// gone while it waited).
    #[error("may have run: {0}")]
    MayHaveRun(String),
}

impl Cluster {
    /// Sends `body` to the owner of `shard` and waits for its reply until `deadline`.
    pub async fn ask(
        &self,
        shard: Shard,
        body: &[u8],
        headers: &Headers,
        deadline: Deadline,
    ) -> Result<Vec<u8>, Undelivered> {
        let started = Instant::now();
        let outcome = self.ask_inner(shard, body, headers, deadline).await;
        let label = match &outcome {
            Ok(_) => "ok",
            Err(Undelivered::NotRun(_)) => "not_run",
            Err(Undelivered::MayHaveRun(_)) => "may_have_run",
        };
        self.metrics().forwarded(label, started.elapsed());
        if let Err(e) = &outcome {
            tracing::debug!(shard = shard.0, error = %e, "forwarded request undelivered");
        }
        outcome
    }

    async fn ask_inner(
        &self,
        shard: Shard,
        body: &[u8],
        headers: &Headers,
        deadline: Deadline,
    ) -> Result<Vec<u8>, Undelivered> {
        let session = self.session().ok_or_else(|| Undelivered::NotRun("the broker link is down".into()))?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut arrival = self.wait_for(&id);
        self.0.pending_shard.insert(id.clone(), shard);
        let properties =
            self.request_properties(&id, headers, deadline).with_reply_to(session.reply_queue.as_str().into());
        let queue = self.names().shard(shard);
        let mut confirmed = self.publish("", &queue, true, body, properties).await.map_err(Undelivered::NotRun)?;
        let mut confirm_done = false;
        let until = tokio::time::Instant::from_std(deadline.instant());
        loop {
            tokio::select! {
                // A reply already here wins over anything that resolves with it.
                biased;
                got = &mut arrival.rx => return match got {
                    Ok(Arrival::Reply { body, refused: None }) => Ok(body),
                    Ok(Arrival::Reply { refused: Some(why), .. }) => {
                        Err(Undelivered::NotRun(format!("refused by the owner: {why}")))
                    }
                    Ok(Arrival::Returned) => Err(Undelivered::NotRun("no owner serves the shard".into())),
                    Ok(Arrival::NewOwner) => {
                        Err(Undelivered::MayHaveRun("another node began serving the shard while waiting".into()))
                    }
                    // The link went down while waiting (its pending requests are dropped).
                    Err(_) => Err(Undelivered::MayHaveRun("the broker link was lost".into())),
                },
                got = &mut confirmed, if !confirm_done => {
                    confirm_done = true;
                    match got {
                        Ok(Confirmed::Ack) => {}
                        Ok(Confirmed::Nack) => return Err(Undelivered::MayHaveRun("the broker nacked the request".into())),
                        Ok(Confirmed::Lost(e)) => return Err(Undelivered::MayHaveRun(e)),
                        Err(_) => return Err(Undelivered::MayHaveRun("the confirm was lost".into())),
                    }
                }
                () = self.until_gone(&queue) => {
                    return Err(Undelivered::MayHaveRun("the owner's queue vanished while waiting".into()));
                }
                () = tokio::time::sleep_until(until) => return Err(Undelivered::MayHaveRun("no reply in time".into())),
            }
        }
    }

    /// Registers a waiter under correlation id `id`; it is removed however the wait ends.
    fn wait_for(&self, id: &str) -> Waiting<'_> {
        let (tx, rx) = oneshot::channel();
        self.0.pending.insert(id.to_string(), tx);
        Waiting { cluster: self, id: id.to_string(), rx }
    }

    /// Resolves once `queue` is gone: every second a probe is sent to it
    /// ([`Cluster::queue_exists`]). Never resolves while the queue exists.
    async fn until_gone(&self, queue: &str) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            if self.queue_exists(queue).await == Some(false) {
                return;
            }
        }
    }

    /// Tells every node that this node begins serving `shard` now: a request still waiting for
    /// a reply from the shard's previous owner will get none (its queue went with it).
    pub async fn announce_owner(&self, shard: Shard) {
        let mut headers = FieldTable::default();
        headers.insert(NEW_OWNER.into(), AMQPValue::LongUInt(shard.0));
        let properties = BasicProperties::default().with_headers(headers);
        let exchange = self.names().terms_exchange();
        if let Ok(confirmed) = self.publish(&exchange, "", false, &[], properties).await {
            let _ = confirmed.await;
        }
    }

    /// A node began serving `shard`: every request waiting on it from before ends its wait.
    pub(super) fn owner_changed(&self, shard: Shard) {
        let ids: Vec<String> =
            self.0.pending_shard.iter().filter(|e| *e.value() == shard).map(|e| e.key().clone()).collect();
        for id in ids {
            self.0.pending_shard.remove(&id);
            if let Some((_, waiter)) = self.0.pending.remove(&id) {
                let _ = waiter.send(Arrival::NewOwner);
            }
        }
    }

    /// Whether `queue` exists, by a mandatory, zero-TTL probe (the broker returns it when there
    /// is no queue; no channel is closed, unlike a passive declare). `None`: not known (the
    /// link is down).
    pub(super) async fn queue_exists(&self, queue: &str) -> Option<bool> {
        let id = format!("probe-{}", uuid::Uuid::new_v4());
        let mut waiting = self.wait_for(&id);
        let mut headers = FieldTable::default();
        headers.insert(PROBE.into(), AMQPValue::Boolean(true));
        let properties = BasicProperties::default()
            .with_correlation_id(id.as_str().into())
            .with_expiration("0".into())
            .with_headers(headers);
        let confirmed = self.publish("", queue, true, &[], properties).await.ok()?;
        let _ = confirmed.await;
        // A return comes before its confirm, but may ride on another message's confirm
        // (`publish`): allow the task that carries it a moment.
        match tokio::time::timeout(RETURN_GRACE, &mut waiting.rx).await {
            Ok(Ok(Arrival::Returned)) => Some(false),
            Ok(Err(_)) => None,
            _ => Some(true),
        }
    }

    fn request_properties(&self, id: &str, headers: &Headers, deadline: Deadline) -> BasicProperties {
        let mut table = FieldTable::default();
        for (name, value) in headers {
            table.insert(name.as_str().into(), AMQPValue::LongString(LongString::from(value.as_str())));
        }
        let membership = self.membership();
        table.insert(EPOCH.into(), AMQPValue::LongUInt(membership.epoch));
        table.insert(DEADLINE_MS.into(), AMQPValue::LongLongInt(deadline.wall_ms()));
        table.insert(FROM.into(), AMQPValue::LongString(LongString::from(membership.node.as_str())));
        BasicProperties::default()
            .with_correlation_id(id.into())
            .with_expiration(deadline.remaining().as_millis().max(1).to_string().into())
            .with_headers(table)
    }
}

/// A request's or probe's place among the waiters.
struct Waiting<'a> {
    cluster: &'a Cluster,
    id: String,
    rx: oneshot::Receiver<Arrival>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.cluster.0.pending.remove(&self.id);
        self.cluster.0.pending_shard.remove(&self.id);
    }
}
