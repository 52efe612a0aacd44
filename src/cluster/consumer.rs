//! The link's consumers, and how one that ends says so: the link ([`super::link`]) starts
//! again what a broker cancelled or a closed channel ended, instead of going on deaf.

use futures_util::StreamExt;
use lapin::message::Delivery;

/// The link's own consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Consumer {
    /// Replies to this node's forwarded requests (its exclusive reply queue).
    Replies,
    /// Other nodes' events (this node's durable event queue).
    Events,
}

/// Tells the link that one of its consumers ended, and why.
pub(super) type ConsumerEnded = tokio::sync::mpsc::UnboundedSender<(Consumer, String)>;

impl Consumer {
    /// The next delivery of `consumer`, this one of the link's; `None` once it ended, which
    /// `ended` has then been told.
    pub(super) async fn next(self, consumer: &mut lapin::Consumer, ended: &ConsumerEnded) -> Option<Delivery> {
        match next_delivery(consumer).await {
            Ok(delivery) => Some(delivery),
            Err(why) => {
                let _ = ended.send((self, why));
                None
            }
        }
    }
}

/// The next delivery of `consumer`, or why its stream ended (an error, or the broker
/// cancelling it).
pub(super) async fn next_delivery(consumer: &mut lapin::Consumer) -> Result<Delivery, String> {
    match consumer.next().await {
        Some(Ok(delivery)) => Ok(delivery),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("cancelled or closed".to_string()),
    }
}
