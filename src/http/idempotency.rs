//! `Idempotency-Key` on POST: the first response for a (caller, key) is stored for 24 h and
//! replayed to a retry with the same request; the same key with a different request is 422;
//! a retry while the first is still running is 409 with `Retry-After`. Server errors (5xx) are
//! not stored, so they can be retried.

use super::error::ApiError;
use super::extract::current_user;
use super::AppState;
use crate::domain::now_ms;
use crate::storage::{envelope::Kind, Record, StorageError, Store, WriteBatch};
use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const HEADER: &str = "Idempotency-Key";
const KEEP_MS: i64 = 24 * 3600 * 1000;
/// An in-flight claim older than this was abandoned (the node crashed): the key is free again.
const ABANDONED_MS: i64 = 60_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Outcome {
    Running,
    Done { status: u16, headers: Vec<(String, String)>, body: Vec<u8> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct IdempotencyRecord {
    request_hash: [u8; 32],
    created_at_ms: i64,
    outcome: Outcome,
}

impl Record for IdempotencyRecord {
    const KIND: Kind = Kind::Idempotency;
}

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
    let body = req.extract::<web::Bytes>().await.map_err(body_error)?;
    let mut hasher = Sha256::new();
    hasher.update(req.path().as_bytes());
    hasher.update([0]);
    hasher.update(&body);
    let request_hash: [u8; 32] = hasher.finalize().into();
    req.set_payload(Payload::from(body));

    let store_key = storage_key(&scope, &key);
    match claim(&state.store, &store_key, request_hash).map_err(ApiError::from)? {
        Claim::Replay(status, headers, body) => {
            let mut res = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK));
            for (k, v) in headers {
                res.append_header((k, v));
            }
            res.insert_header(("Idempotent-Replayed", "true"));
            return Ok(req.into_response(res.body(body)));
        }
        Claim::Mismatch => {
            return Err(ApiError::Unprocessable("Idempotency-Key was used with a different request".into()).into())
        }
        Claim::Running => {
            return Err(ApiError::Conflict("A request with this Idempotency-Key is still running".into()).into())
        }
        Claim::Claimed => {}
    }

    let response = next.call(req).await;
    let response = match response {
        Ok(res) => res,
        Err(e) => {
            release(&state.store, &store_key).await;
            return Err(e);
        }
    };
    let status = response.status();
    if status.is_server_error() {
        release(&state.store, &store_key).await;
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
    let bytes = to_bytes(body).await.map_err(|_| ApiError::internal("response body could not be read"))?;
    let record = IdempotencyRecord {
        request_hash,
        created_at_ms: now_ms(),
        outcome: Outcome::Done { status: status.as_u16(), headers, body: bytes.to_vec() },
    };
    let mut batch = WriteBatch::default();
    batch.put(store_key, &record).map_err(ApiError::from)?;
    state.store.commit(batch).await.map_err(ApiError::from)?;
    Ok(ServiceResponse::new(http_req, head.set_body(bytes).map_into_boxed_body()))
}

/// The request body could not be read: oversize is a 413, anything else a 400, in the API's
/// format (an error returned from middleware bypasses the JSON error handlers).
fn body_error(e: actix_web::Error) -> ApiError {
    match e.as_error::<actix_web::error::PayloadError>() {
        Some(actix_web::error::PayloadError::Overflow) => ApiError::PayloadTooLarge,
        _ if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::bad_request("Malformed request body"),
    }
}

fn storage_key(scope: &str, key: &str) -> Vec<u8> {
    let mut k = vec![crate::storage::keys::IDEMPOTENCY];
    k.extend_from_slice(&Sha256::digest(format!("{scope}\0{key}").as_bytes()));
    k
}

enum Claim {
    Claimed,
    Replay(u16, Vec<(String, String)>, Vec<u8>),
    Mismatch,
    Running,
}

/// Claims the key atomically (a compare-and-swap), or reports what holds it.
fn claim(store: &Store, key: &[u8], request_hash: [u8; 32]) -> Result<Claim, StorageError> {
    let running = IdempotencyRecord { request_hash, created_at_ms: now_ms(), outcome: Outcome::Running };
    loop {
        let current = store.get_raw(key)?;
        if let Some(bytes) = &current {
            let existing: IdempotencyRecord = crate::storage::envelope::decode(key, bytes)?;
            let age = now_ms() - existing.created_at_ms;
            let expired = age > KEEP_MS || (matches!(existing.outcome, Outcome::Running) && age > ABANDONED_MS);
            if !expired {
                return Ok(match (existing.request_hash == request_hash, existing.outcome) {
                    (false, _) => Claim::Mismatch,
                    (true, Outcome::Running) => Claim::Running,
                    (true, Outcome::Done { status, headers, body }) => Claim::Replay(status, headers, body),
                });
            }
        }
        if store.compare_and_swap(key, current.as_deref(), Some(&Store::encode(&running)?))? {
            return Ok(Claim::Claimed);
        }
    }
}

/// Frees a claim whose request failed, so a retry can run.
async fn release(store: &Store, key: &[u8]) {
    let mut batch = WriteBatch::default();
    batch.remove(key.to_vec());
    if let Err(e) = store.commit(batch).await {
        tracing::warn!(error = %e, "idempotency claim could not be released");
    }
}

/// Deletes records older than 24 h (run periodically by the node's housekeeping task).
pub async fn prune(store: &Store) -> Result<usize, StorageError> {
    let cutoff = now_ms() - KEEP_MS;
    let mut batch = WriteBatch::default();
    let mut pruned = 0;
    for (key, record) in store.scan::<IdempotencyRecord>(&[crate::storage::keys::IDEMPOTENCY], None, usize::MAX)? {
        if record.created_at_ms < cutoff {
            batch.remove(key);
            pruned += 1;
        }
    }
    store.commit(batch).await?;
    Ok(pruned)
}

#[cfg(test)]
#[path = "idempotency_test.rs"]
mod tests;
