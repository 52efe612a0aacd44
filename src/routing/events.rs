//! Domain events and the transport: the outbox's sink that publishes this node's events to the
//! other nodes ([`BrokerEvents`]), and what other nodes' events are to this node's read model
//! (`super::inbound`). The body is the seeds' JSON payload; the event in the wire encoding
//! travels beside it for other `ticketing` nodes.

use crate::actors::wire;
use crate::cluster::events::OutgoingEvent;
use crate::cluster::Cluster;
use crate::domain::{Event, Slot};
use crate::events::{EventSink, PublishedEvent};
use crate::observability::telemetry;
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
            // Open until the broker confirmed them: each event's publishing, in the trace of
            // the request that wrote it, and the parent of other nodes' consuming it.
            let mut spans = Vec::new();
            for stored in events {
                // A local event goes out as a bare placeholder: its number reaches the other
                // nodes (a reader waiting for the slot's latest event is not left waiting),
                // what it says does not.
                let placeholder = stored.event.is_local().then(|| Event::Recorded {
                    subject: stored.event.subject().to_string(),
                    entity_id: stored.event.entity_id(),
                    payload: "{}".into(),
                });
                let event = placeholder.as_ref().unwrap_or(&stored.event);
                let traceparent = stored.trace.filter(|_| telemetry::enabled()).and_then(|trace| {
                    let span = tracing::debug_span!("publish event", subject = event.subject(), seq = stored.seq);
                    telemetry::continue_stored(&span, &trace);
                    let traceparent = telemetry::traceparent_of(&span);
                    spans.push(span);
                    traceparent
                });
                outgoing.push(OutgoingEvent {
                    traceparent,
                    routing_key: routing_key(event),
                    subject: event.subject().to_string(),
                    slot: slot.0,
                    seq: stored.seq,
                    body: serde_json::to_vec(&PublishedEvent::from_event(event).payload).map_err(|e| e.to_string())?,
                    wire: wire::encode(event).map_err(|e| e.to_string())?,
                });
            }
            let published = self.cluster.publish_events(outgoing).await;
            drop(spans);
            published
        })
    }
}
