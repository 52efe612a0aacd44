//! `GET /api/tickets/stream`: ticket changes as Server-Sent Events (see `crate::events::live`
//! for what is sent, the ids and their resumption, and the bounds).

use crate::edge::{ApiError, AppState};
use crate::events::live::{Frame, Start, Subscription};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::stream::{self, Stream, StreamExt};
use std::time::Duration;

/// The path, exempt from `http.max_in_flight` (a stream is bounded by `live.max_streams`).
pub const PATH: &str = crate::edge::observe::TICKET_STREAM;

/// Sent first: how long a browser waits before reconnecting.
const RETRY: &[u8] = b"retry: 2000\n\n";
/// Sent for a `Last-Event-ID` this node cannot resume from: the client reloads its list.
const RESET: &[u8] = b"event: reset\ndata: {}\n\n";
/// A comment line: keeps proxies from closing an idle stream, and finds a gone client.
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StreamQuery {
    since: Option<String>,
}

#[utoipa::path(get, path = "/api/tickets/stream", tag = "tickets",
    params(("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: what followed it is sent first (on the same node), or a `reset` event"),
           ("since" = Option<String>, Query, description = "Where to start when no `Last-Event-ID` is sent: a page's stream position (its `data-live-since`), resumed when this node can, else the stream starts now")),
    responses(
        (status = 200, description = "Server-Sent Events: `listed`, `reserved`, `released`, `sold`, `withdrawn` and `updated`, each with the ticket as JSON; `reset` when the list must be read again; a comment as heartbeat", content_type = "text/event-stream", body = String),
        (status = 503, description = "Too many streams open on this node", body = super::schemas::ErrorBody)))]
pub(super) async fn stream(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    // A browser reconnecting sends the last id it got: newer than the page's `since`.
    let start = match (req.headers().get("last-event-id").and_then(|v| v.to_str().ok()), query.since.as_deref()) {
        (Some(last), _) => Start::After(last),
        (None, Some(since)) => Start::Page(since),
        (None, None) => Start::Now,
    };
    let Some(subscription) = state.app.live().subscribe(start) else {
        state.app.metrics().shed("streams");
        return Err(ApiError::Unavailable);
    };
    let heartbeat = Duration::from_secs_f64(state.app.settings().live.heartbeat_seconds);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        // Tells a buffering proxy (nginx) to pass each event on at once.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(frames(subscription, heartbeat)))
}

/// The stream's bytes: the retry hint, what was missed (or a reset), the id the client is now
/// up to date with, then each change as it comes and a heartbeat while none does. Ends when
/// the feed closes the subscription.
fn frames(
    mut subscription: Subscription,
    heartbeat: Duration,
) -> impl Stream<Item = Result<Frame, std::convert::Infallible>> {
    let mut first = vec![Frame::from_static(RETRY)];
    match subscription.missed.take() {
        Some(missed) => first.extend(missed),
        None => first.push(Frame::from_static(RESET)),
    }
    first.push(subscription.at.clone());
    let tick = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let live = stream::unfold((subscription, tick), |(mut subscription, mut tick)| async move {
        let frame = tokio::select! {
            frame = subscription.frames.recv() => frame?,
            _ = tick.tick() => Frame::from_static(HEARTBEAT),
        };
        Some((frame, (subscription, tick)))
    });
    stream::iter(first).chain(live).map(Ok)
}
