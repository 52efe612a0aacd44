//! What every request goes through first: the node's in-flight bound, a tracing span with its
//! request id, the metrics, and a guard that turns a panic into a 500.

use super::error::ApiError;
use super::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;
use tracing::Instrument;

/// With telemetry on, the request's span continues the trace of its `traceparent` (the
/// sampled flag honoured from a trusted proxy only), and its log lines name the trace.
fn continue_trace(span: &tracing::Span, req: &ServiceRequest, state: &AppState) {
    use crate::observability::telemetry::{self, Trust};
    let traceparent = req.headers().get(telemetry::TRACEPARENT).and_then(|v| v.to_str().ok());
    let trust = if super::caller::from_trusted_proxy(req.request()) {
        Trust::Trusted
    } else {
        Trust::Untrusted { sample_ratio: state.settings.telemetry.sample_ratio }
    };
    telemetry::continue_trace(span, traceparent, trust);
}

/// The live ticket stream's path (`crate::http::ticket_stream`): not counted in
/// `http.max_in_flight`, as it stays open.
pub const TICKET_STREAM: &str = "/api/tickets/stream";

/// Per request: the node's in-flight bound (past it, 503 + Retry-After at once; probes are
/// exempt), `HEAD` served as `GET`, a tracing span, the metrics, and a panic guard so that a
/// bug answers a 500 instead of dropping the connection (both in the shape the client asked
/// for, by `super::answer`).
pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // The probes, and the live stream (bounded by `live.max_streams` instead).
    let probe = matches!(req.path(), "/healthz" | "/readyz" | "/metrics" | TICKET_STREAM);
    let _admitted = match &state {
        Some(state) if !probe => match state.admit() {
            Some(admitted) => Some(admitted),
            None => {
                state.app.metrics().shed("node");
                return Err(ApiError::Unavailable.into());
            }
        },
        _ => None,
    };
    let started = Instant::now();
    // Known methods only: a label per made-up method would grow the metrics without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    // `HEAD` on any `GET` route answers as `GET` would: routed as a `GET`, while the HTTP
    // codec, which saw `HEAD`, sends the headers only.
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let metrics = state.as_ref().map(|s| s.app.metrics().clone());
    // The caller's request id if it sent a sane one, else a new one; logged on every line of
    // the request, sent back, and carried to another node with a forwarded request. Probes
    // (a scraper's, a load balancer's) go without: they are the cheapest requests there are.
    let request_id = if probe {
        String::new()
    } else {
        req.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_string)
    };
    let span = tracing::info_span!(
        "request",
        %method,
        %route,
        %request_id,
        status = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty
    );
    if let Some(state) = state.as_ref().filter(|_| !probe && crate::observability::telemetry::enabled()) {
        continue_trace(&span, &req, state);
    }
    let call = crate::observability::REQUEST_ID.scope(request_id.clone(), next.call(req));
    let outcome = AssertUnwindSafe(call.instrument(span.clone())).catch_unwind().await;
    let status = match &outcome {
        Ok(Ok(res)) => res.status(),
        Ok(Err(e)) => e.as_response_error().status_code(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    span.record("status", status.as_u16());
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::debug!(parent: &span, status = status.as_u16(), took_ms, "request completed");
    if let Some(metrics) = metrics {
        metrics.request(&method, &route, status.as_u16(), started.elapsed());
    }
    match outcome {
        Ok(Ok(mut res)) => {
            if request_id.is_empty() {
                return Ok(res);
            }
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&request_id) {
                res.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), value);
            }
            Ok(res)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => {
            tracing::error!(parent: &span, "request handler panicked");
            Err(ApiError::internal("handler panicked").into())
        }
    }
}
