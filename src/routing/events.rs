//! Domain events and the transport: the outbox's sink that publishes this node's events to the
//! other nodes ([`BrokerEvents`]), and what other nodes' events are to this node's read model
//! (`super::inbound`). The body is the seeds' JSON payload; the event in the wire encoding
//! travels beside it for other `ticketing` nodes.

use crate::actors::wire;
use crate::cluster::events::OutgoingEvent;
use crate::cluster::Cluster;
use crate::domain::{Event, Slot};
use crate::events::{EventSink, PublishedEvent};
use crate::storage::StoredEvent;
use futures_util::future::LocalBoxFuture;

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
            let mut outgoing = Vec::with_capacity(events.len());
            for stored in events {
                let event = &stored.event;
                outgoing.push(OutgoingEvent {
                    routing_key: routing_key(event),
                    subject: event.subject().to_string(),
                    slot: slot.0,
                    seq: stored.seq,
                    body: serde_json::to_vec(&PublishedEvent::from_event(event).payload).map_err(|e| e.to_string())?,
                    wire: wire::encode(event).map_err(|e| e.to_string())?,
                });
            }
            self.cluster.publish_events(outgoing).await
        })
    }
}
