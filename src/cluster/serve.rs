//! The owner's side of a forwarded request: refuse what must not run (past its deadline,
//! another map epoch, a wire version this release cannot read), run the rest through the
//! application, and reply to the caller's reply queue with its correlation id.

use super::messages::{Reply, Request};
use super::rpc::{DEADLINE_MS, EPOCH, FROM, REQUEST_ID};
use super::{Cluster, Handler};
use crate::actors::wire;
use lapin::message::Delivery;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use std::sync::Arc;
use tracing::Instrument;

pub(super) async fn one(cluster: Cluster, handler: Arc<dyn Handler>, delivery: Delivery) {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let header = |name: &str| headers.inner().get(name).cloned();
    let text = |name: &str| match header(name) {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        _ => String::new(),
    };
    let request_id = text(REQUEST_ID);
    let from = text(FROM);
    let deadline_ms = match header(DEADLINE_MS) {
        Some(AMQPValue::LongLongInt(ms)) => ms,
        _ => 0,
    };
    if deadline_ms <= crate::domain::now_ms() {
        // The caller has given up (and answered 504): running it now would be a surprise.
        tracing::debug!(request_id, from, "forwarded request past its deadline dropped");
        return;
    }
    let epoch = match header(EPOCH) {
        Some(AMQPValue::LongUInt(e)) => e,
        _ => 0,
    };
    let span = tracing::info_span!("forwarded request", request_id = %request_id, from = %from);
    // The test-only fault loses the reply to a keyed ticket create (not a bootstrap page).
    let mut droppable = false;
    let reply = if epoch != cluster.map().epoch() {
        tracing::warn!(parent: &span, epoch, mine = cluster.map().epoch(), "request from another shard map epoch refused");
        Reply::Refused(format!("shard map epoch {epoch} is not this node's {}", cluster.map().epoch()))
    } else {
        match wire::decode::<Request>(&delivery.data) {
            Ok(request) => {
                droppable = matches!(request, Request::CreateTicket { .. });
                let started = std::time::Instant::now();
                let run = crate::observability::REQUEST_ID.scope(request_id.clone(), handler.serve(request));
                let reply = run.instrument(span.clone()).await;
                let took_ms = started.elapsed().as_secs_f64() * 1000.0;
                tracing::debug!(parent: &span, took_ms, "forwarded request served");
                reply
            }
            Err(e) => {
                tracing::warn!(parent: &span, error = %e, "forwarded request not understood");
                Reply::Refused(e.to_string())
            }
        }
    };
    let (Some(reply_to), Some(correlation)) = (delivery.properties.reply_to(), delivery.properties.correlation_id())
    else {
        return;
    };
    let Some(session) = cluster.session() else { return };
    if droppable && cluster.0.drop_a_reply.swap(false, std::sync::atomic::Ordering::SeqCst) {
        tracing::warn!(parent: &span, "fault injection: this reply is dropped");
        return;
    }
    let body = match wire::encode(&reply) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(parent: &span, error = %e, "reply cannot be encoded");
            return;
        }
    };
    let mut reply_headers = FieldTable::default();
    reply_headers.insert(REQUEST_ID.into(), AMQPValue::LongString(request_id.as_str().into()));
    let properties = BasicProperties::default().with_correlation_id(correlation.clone()).with_headers(reply_headers);
    let sent = session
        .channel
        .basic_publish("".into(), reply_to.clone(), BasicPublishOptions::default(), &body, properties)
        .await;
    if let Err(e) = sent {
        tracing::warn!(parent: &span, error = %e, "reply not sent (the caller will time out)");
    }
}
