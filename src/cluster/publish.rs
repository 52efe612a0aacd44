//! Every publish on the link's channel, and the one place a returned message finds its request.
//!
//! lapin (4.12) attaches a `basic.return` to whichever publisher confirm resolves first, not to
//! the confirm of the message that was returned: a multiple-ack resolves its tags in hash-map
//! order. Requests, replies, probes and events share the channel, so the return of a request
//! can arrive with an event's confirm, and a request's own confirm can say "ack" although the
//! broker returned it. So no confirm is trusted to be about its own message: every confirm is
//! awaited to the end (never dropped, so no return is lost), and a return it carries is handed
//! to the request or probe waiting under the returned message's own correlation id.

use super::Cluster;
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use lapin::Confirmation;
use tokio::sync::oneshot;

/// What comes back to a waiting request or probe (`rpc`), by its correlation id.
pub(super) enum Arrival {
    Reply {
        body: Vec<u8>,
        refused: Option<String>,
    },
    Returned,
    /// Another node began serving the shard: the queue the request went to is gone.
    NewOwner,
}

/// What the broker said of a published message, as far as its own confirm tells.
#[derive(Debug)]
pub(super) enum Confirmed {
    /// Taken (routed somewhere, or returned: a return reaches its waiter separately).
    Ack,
    /// Refused by the broker (an internal error of a queue): it may or may not be enqueued.
    Nack,
    /// The channel failed before confirming: it may or may not have reached the broker.
    Lost(String),
}

impl Cluster {
    /// Publishes `body` and returns the receiver of its confirm. The confirm is awaited on its
    /// own task whatever the caller does, so a return it carries is always handed over.
    /// `Err`: not published at all (the link is down, or the channel refused the frame).
    pub(super) async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<oneshot::Receiver<Confirmed>, String> {
        self.publish_in(None, exchange, routing_key, mandatory, body, properties).await
    }

    /// [`Cluster::publish`], only in broker session `generation` when given (the one whose
    /// leases the caller relies on): `Err` if the link has been replaced since.
    pub(super) async fn publish_in(
        &self,
        generation: Option<u64>,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<oneshot::Receiver<Confirmed>, String> {
        let session = self.session().ok_or("the broker link is down")?;
        if generation.is_some_and(|g| g != session.generation) {
            return Err("the link that held the lease is gone".into());
        }
        let sent = std::time::Instant::now();
        let options = BasicPublishOptions { mandatory, ..Default::default() };
        let confirm = session
            .channel
            .basic_publish(exchange.into(), routing_key.into(), options, body, properties)
            .await
            .map_err(|e| e.to_string())?;
        let (tx, rx) = oneshot::channel();
        let cluster = self.clone();
        actix::spawn(async move {
            let confirmed = match confirm.await {
                Ok(confirmation) => {
                    let nack = confirmation.is_nack();
                    cluster.returned(confirmation);
                    if nack {
                        Confirmed::Nack
                    } else {
                        cluster.confirmed_at(sent);
                        Confirmed::Ack
                    }
                }
                Err(e) => Confirmed::Lost(e.to_string()),
            };
            let _ = tx.send(confirmed);
        });
        Ok(rx)
    }

    /// Hands the message a confirm carries back, if any, to whoever waits under its
    /// correlation id (a request: it did not run; a probe: the queue is gone).
    fn returned(&self, confirmation: Confirmation) {
        let Some(message) = confirmation.take_message() else { return };
        let Some(id) = message.delivery.properties.correlation_id().as_ref().map(|s| s.to_string()) else {
            return;
        };
        if let Some((_, waiter)) = self.0.pending.remove(&id) {
            let _ = waiter.send(Arrival::Returned);
        }
    }
}
