//! A request's body must arrive within `http.request_timeout_seconds` (the headers have as
//! long, by the server's own request timeout): a client trickling one byte every few seconds
//! is answered 408 and its connection closed, instead of holding a connection and a worker's
//! attention for minutes. The body is read here, bounded by `http.body_limit_bytes`, and
//! handed on in memory; requests without a body pass straight through. Its refusals are
//! answered in the shape the client asked for (`super::answer`).

use super::error::ApiError;
use super::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage};
use futures_util::StreamExt;
use std::time::Duration;

/// The body the request says follows: `Some(length)` when declared (`Some(0)`: none), `None`
/// when chunked, or `Some(0)` when nothing is said.
fn declared_length(req: &ServiceRequest) -> Option<u64> {
    let headers = req.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    // An unreadable length was refused by the HTTP parser already; 0 lets it through untouched.
    Some(headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse().ok()).unwrap_or(0))
}

enum Unread {
    TooLarge,
    Broken,
}

pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else { return next.call(req).await };
    let declared = declared_length(&req);
    if declared == Some(0) {
        return next.call(req).await;
    }
    let limit = state.settings.http.body_limit_bytes;
    if declared.is_some_and(|n| n > limit as u64) {
        // Refused before a byte is read: a large body would only be waited for.
        return Err(ApiError::PayloadTooLarge.into());
    }
    let timeout = Duration::from_secs_f64(state.settings.http.request_timeout_seconds);
    let mut payload = req.take_payload();
    let read = async move {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            // The HTTP layer's own overflow is a body too large, not a broken one.
            let chunk = chunk.map_err(|e| match e {
                PayloadError::Overflow => Unread::TooLarge,
                _ => Unread::Broken,
            })?;
            if body.len() + chunk.len() > limit {
                return Err(Unread::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(body)) => {
            req.set_payload(Payload::from(body));
            next.call(req).await
        }
        Ok(Err(Unread::TooLarge)) => Err(ApiError::PayloadTooLarge.into()),
        Ok(Err(Unread::Broken)) => Err(ApiError::bad_request("Malformed request body").into()),
        Err(_) => {
            state.app.metrics().shed("slow_request");
            Err(ApiError::RequestTimeout.into())
        }
    }
}
