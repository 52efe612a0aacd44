//! `Idempotency-Key` on POST: the first response for a (caller, key) is stored for 24 h and
//! replayed to a retry with the same request; the same key with a different request is 422;
//! a retry while the first is still running is 409 with `Retry-After`. The key is claimed on
//! the node owning its slot, whichever node the request came through. A 504 ("it may have
//! run") keeps the key, and a retry runs again as the same keyed request (a keyed reservation
//! finds the order its first attempt made); other server errors free the key.

use crate::app::idempotency::{KeyOutcome, StoredResponse};
use crate::app::keyed::{ClaimedKey, Keyed};
use crate::app::App;
use crate::edge::caller::current_user;
use crate::edge::error::unreadable_body;
use crate::edge::ApiError;
use crate::edge::AppState;
use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const HEADER: &str = "Idempotency-Key";

/// Headers worth replaying (the body's type, cookies, links).
const REPLAYED_HEADERS: [header::HeaderName; 3] = [header::CONTENT_TYPE, header::SET_COOKIE, header::LINK];

pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (Some(key), true) = (key, req.method() == Method::POST) else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::bad_request("Idempotency-Key must be 1 to 255 characters").into());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await.map(|r| r.map_into_boxed_body());
    };
    let scope = current_user(req.request()).map(|u| u.id.to_string()).unwrap_or_else(|| "anonymous".into());
    let body = req.extract::<web::Bytes>().await.map_err(|e| unreadable_body(&e))?;
    let mut hasher = Sha256::new();
    hasher.update(req.path().as_bytes());
    hasher.update([0]);
    hasher.update(&body);
    let request_hash: [u8; 32] = hasher.finalize().into();
    req.set_payload(Payload::from(body));

    let claimed = match state.app.claim_key(&scope, &key, request_hash).await.map_err(ApiError::from)? {
        Keyed::Replay(stored) => {
            let mut res = HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK));
            for (k, v) in stored.headers {
                res.append_header((k, v));
            }
            res.insert_header(("Idempotent-Replayed", "true"));
            return Ok(req.into_response(res.body(stored.body)));
        }
        Keyed::Claimed(claimed) => claimed,
    };
    req.extensions_mut().insert(claimed.clone());
    let unsettled = Unsettled { app: Arc::clone(&state.app), claimed: Some(claimed) };

    let response = match next.call(req).await {
        Ok(res) => res,
        Err(e) => {
            unsettled.settle(unkept(e.as_response_error().status_code())).await;
            return Err(e);
        }
    };
    let status = response.status();
    if status.is_server_error() || matches!(status, StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS) {
        unsettled.settle(unkept(status)).await;
        return Ok(response.map_into_boxed_body());
    }
    let headers: Vec<(String, String)> = REPLAYED_HEADERS
        .iter()
        .flat_map(|name| {
            response.headers().get_all(name).filter_map(|v| v.to_str().ok()).map(|v| (name.to_string(), v.to_string()))
        })
        .collect();
    let (http_req, res) = response.into_parts();
    let (head, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body).await else {
        unsettled.settle(KeyOutcome::Uncertain).await;
        return Err(ApiError::internal("response body could not be read").into());
    };
    let stored = StoredResponse { status: status.as_u16(), headers, body: bytes.to_vec() };
    unsettled.settle(KeyOutcome::Done(stored)).await;
    Ok(ServiceResponse::new(http_req, head.set_body(bytes).map_into_boxed_body()))
}

/// How a key is settled after an answer that is not kept for replay: a 504 may have run (a
/// retry runs again, as the same request); anything else did not, or is worth asking again
/// (409 still running, 429 throttled): the key is freed.
fn unkept(status: StatusCode) -> KeyOutcome {
    if status == StatusCode::GATEWAY_TIMEOUT {
        KeyOutcome::Uncertain
    } else {
        KeyOutcome::Release
    }
}

/// A claimed key not settled yet. Dropped unsettled (the client went away mid-request, a
/// panic unwound the handler), it is settled as uncertain: the request may have run.
struct Unsettled {
    app: Arc<App>,
    claimed: Option<ClaimedKey>,
}

impl Unsettled {
    async fn settle(mut self, outcome: KeyOutcome) {
        if let Some(claimed) = self.claimed.take() {
            self.app.settle_key(claimed, outcome).await;
        }
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        if let Some(claimed) = self.claimed.take() {
            let app = Arc::clone(&self.app);
            actix_web::rt::spawn(async move { app.settle_key(claimed, KeyOutcome::Uncertain).await });
        }
    }
}
