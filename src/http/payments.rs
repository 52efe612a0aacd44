//! `/api/payments`: pay for an order, and the Stripe webhook.

use super::error::ApiError;
use super::extract::{AuthUser, JsonObject};
use super::orders::{ensure_exists, order_id};
use super::AppState;
use crate::actors::order::{ConfirmPayment, PayOrder};
use crate::domain::{now_ms, FieldError};
use crate::payments::webhook;
use crate::storage::{keys, WebhookSeen, WriteBatch};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

/// How long a payment may wait for its order actor: longer than the provider's worst case
/// (three attempts of ten seconds), so a slow success is not reported as a failure.
const PROVIDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(45);

/// Signatures older (or newer) than this are refused, as Stripe's libraries do.
const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;
/// Stripe retries a webhook for up to three days; seen event ids are kept well past that.
const WEBHOOK_DEDUP_MS: i64 = 7 * 24 * 3600 * 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/payments", web::post().to(pay)).route("/api/payments/webhook", web::post().to(stripe_webhook));
}

async fn pay(state: web::Data<AppState>, user: AuthUser, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let token = body.str("token").map(str::trim).filter(|t| !t.is_empty());
    let order = body.str("orderId").map(str::trim).filter(|t| !t.is_empty());
    let mut errors = Vec::new();
    if token.is_none() {
        errors.push(FieldError { field: "token", message: "Invalid value" });
    }
    if order.is_none() {
        errors.push(FieldError { field: "orderId", message: "Invalid value" });
    }
    let (Some(token), Some(order)) = (token, order) else {
        return Err(ApiError::Validation(errors));
    };
    let id = order_id(order)?;
    ensure_exists(&state, &id)?;
    let pay = PayOrder { caller: user.id, token: token.to_string() };
    let payment = state.orders.ask_within(id, pay, PROVIDER_TIMEOUT).await?;
    Ok(HttpResponse::Created().json(json!({ "id": payment.id })))
}

/// Verifies the `Stripe-Signature` over the raw bytes, de-duplicates by event id, and
/// completes the order named in the charge's metadata.
async fn stripe_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let secret = state.settings.payments.webhook_secret.expose();
    if secret.is_empty() {
        tracing::warn!("webhook received but payments.webhook_secret is not set; refused");
        return Err(ApiError::bad_request("Webhook signature cannot be verified"));
    }
    let header = req.headers().get("Stripe-Signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    webhook::verify(header, &body, secret, chrono::Utc::now().timestamp(), SIGNATURE_TOLERANCE_SECONDS)
        .map_err(|e| ApiError::bad_request(format!("Invalid Stripe signature: {e}")))?;
    let event: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
    let event_id =
        event["id"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("Event id missing"))?;
    // Claim the event id first (compare-and-swap), so concurrent deliveries of one event are
    // handled once; a failure frees the claim so Stripe's retry is handled.
    let seen_key = keys::webhook_event(event_id);
    let seen = crate::storage::Store::encode(&WebhookSeen { received_at_ms: now_ms() })?;
    if !state.store.compare_and_swap(&seen_key, None, Some(&seen))? {
        return Ok(HttpResponse::Ok().json(json!({ "received": true, "duplicate": true })));
    }
    match handle_event(&state, &event, event_id).await {
        Ok(()) => {
            state.store.sync().await;
            Ok(HttpResponse::Ok().json(json!({ "received": true })))
        }
        Err(e) => {
            let mut batch = WriteBatch::default();
            batch.remove(seen_key);
            state.store.commit(batch).await?;
            Err(e)
        }
    }
}

async fn handle_event(state: &AppState, event: &Value, event_id: &str) -> Result<(), ApiError> {
    let kind = event["type"].as_str().unwrap_or_default();
    if matches!(kind, "payment_intent.succeeded" | "charge.succeeded") {
        let object = &event["data"]["object"];
        let charge_id = object["latest_charge"].as_str().or(object["id"].as_str()).unwrap_or_default().to_string();
        let order = object["metadata"]["orderId"].as_str().or(object["metadata"]["order_id"].as_str());
        match order.and_then(crate::domain::OrderId::parse) {
            Some(order) if state.store.contains(&keys::order(&order))? => {
                state.orders.ask_within(order, ConfirmPayment { charge_id }, PROVIDER_TIMEOUT).await?;
            }
            _ => tracing::warn!(event = event_id, "webhook for an unknown order ignored"),
        }
    }
    Ok(())
}

/// Forgets webhook event ids older than the de-duplication window (housekeeping).
pub async fn prune_seen_webhooks(store: &crate::storage::Store) -> Result<usize, crate::storage::StorageError> {
    let cutoff = now_ms() - WEBHOOK_DEDUP_MS;
    let mut batch = WriteBatch::default();
    let mut pruned = 0;
    for (key, seen) in store.scan::<WebhookSeen>(&[keys::WEBHOOK_EVENT], None, usize::MAX)? {
        if seen.received_at_ms < cutoff {
            batch.remove(key);
            pruned += 1;
        }
    }
    store.commit(batch).await?;
    Ok(pruned)
}
