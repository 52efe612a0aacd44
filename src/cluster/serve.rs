//! The owner's side of a forwarded request: refuse what must not run (past its deadline,
//! another map epoch), hand the rest to [`Inbound::serve`](super::Inbound::serve), and send
//! the reply to the caller's reply queue under its correlation id. A refusal is a reply too
//! (header `x-refused`): the caller then knows the request did not run.

use super::rpc::{DEADLINE_MS, EPOCH, REFUSED};
use super::{Cluster, Headers, Incoming, Shard, DROPPABLE};
use crate::deadline::Deadline;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::BasicProperties;
use std::sync::atomic::Ordering;

pub(super) async fn one(cluster: Cluster, shard: Shard, delivery: Delivery) {
    let table = delivery.properties.headers().clone().unwrap_or_default();
    let deadline = match table.inner().get(DEADLINE_MS) {
        Some(AMQPValue::LongLongInt(ms)) => Deadline::from_wall_ms(*ms),
        _ => Deadline::from_wall_ms(0),
    };
    let headers = text_headers(&table);
    let request_id = headers.get(crate::observability::REQUEST_ID_HEADER).cloned().unwrap_or_default();
    let span = tracing::info_span!(
        "forwarded request",
        request_id = %request_id,
        shard = shard.0,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty
    );
    // The caller's trace goes on here (another node: its sampling decision is kept).
    if crate::observability::telemetry::enabled() {
        use crate::observability::telemetry::{self, Trust};
        telemetry::continue_trace(&span, headers.get(telemetry::TRACEPARENT).map(String::as_str), Trust::Trusted);
    }
    let epoch = match table.inner().get(EPOCH) {
        Some(AMQPValue::LongUInt(e)) => *e,
        _ => 0,
    };
    let mine = cluster.membership().epoch;
    let droppable = headers.contains_key(DROPPABLE);
    let outcome = if deadline.passed() {
        // Its caller has given up, or is about to: running it now would be a surprise. Said
        // so, in case the caller still listens (a clock running ahead of the caller's).
        tracing::debug!(parent: &span, "forwarded request past its deadline dropped");
        Err("past its deadline on arrival".to_string())
    } else if epoch != mine {
        tracing::warn!(parent: &span, epoch, mine, "request from another shard map epoch refused");
        Err(format!("shard map epoch {epoch} is not this node's {mine}"))
    } else {
        let incoming = Incoming { shard, body: delivery.data, headers, deadline };
        tracing::Instrument::instrument(cluster.0.inbound.serve(incoming), span.clone()).await
    };
    let (Some(reply_to), Some(correlation)) = (delivery.properties.reply_to(), delivery.properties.correlation_id())
    else {
        return;
    };
    if droppable && cluster.0.drop_reply_marked.swap(false, Ordering::SeqCst) {
        tracing::warn!(parent: &span, "fault injection: this reply is dropped");
        return;
    }
    let mut reply_headers = FieldTable::default();
    let body = match outcome {
        Ok(body) => body,
        Err(why) => {
            reply_headers.insert(REFUSED.into(), AMQPValue::LongString(LongString::from(why.as_str())));
            Vec::new()
        }
    };
    let properties = BasicProperties::default().with_correlation_id(correlation.clone()).with_headers(reply_headers);
    if let Err(e) = cluster.publish("", reply_to.as_str(), false, &body, properties).await {
        tracing::warn!(parent: &span, error = %e, "reply not sent (the caller will time out)");
    }
}

/// The text and number headers of a message, as text (the transport's own are among them;
/// they do no harm).
pub(super) fn text_headers(table: &FieldTable) -> Headers {
    table
        .inner()
        .iter()
        .filter_map(|(name, value)| match value {
            AMQPValue::LongString(s) => Some((name.to_string(), s.to_string())),
            AMQPValue::LongUInt(n) => Some((name.to_string(), n.to_string())),
            AMQPValue::LongLongInt(n) => Some((name.to_string(), n.to_string())),
            _ => None,
        })
        .collect()
}
