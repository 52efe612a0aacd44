//! `/api/payments`: pay for an order, and the Stripe webhook (raw bytes to the use case, which
//! checks the signature over them).

use super::extract::JsonObject;
use super::orders::order_id;
use crate::app::keyed::ClaimedKey;
use crate::app::payments::WebhookOutcome;
use crate::edge::caller::AuthUser;
use crate::edge::error::{ApiError, FieldError};
use crate::edge::AppState;
use actix_web::HttpMessage;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/payments", web::post().to(pay)).route("/api/payments/webhook", web::post().to(stripe_webhook));
}

#[utoipa::path(post, path = "/api/payments", tag = "payments", request_body = super::schemas::NewPayment,
    params(("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$", description = "Makes the request once; a retry replays the first answer")),
    responses((status = 201, description = "Paid: the order complete", body = super::schemas::PaymentView)))]
pub(super) async fn pay(
    state: web::Data<AppState>,
    user: AuthUser,
    body: JsonObject,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
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
    // With an `Idempotency-Key` (`idempotency` put its claim here).
    let key = req.extensions().get::<ClaimedKey>().cloned();
    let payment = state.app.pay(user.id, order_id(order)?, token.to_string(), key.as_ref()).await?;
    Ok(HttpResponse::Created().json(json!({ "id": payment.id })))
}

#[utoipa::path(post, path = "/api/payments/webhook", tag = "payments", request_body = serde_json::Value,
    params(("Stripe-Signature" = String, Header, pattern = "^[ -~]*$", description = "Stripe's signature over the raw body")),
    responses((status = 200, description = "The event handled (or a duplicate of one)", body = serde_json::Value)))]
pub(super) async fn stripe_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let signature = req.headers().get("Stripe-Signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    Ok(match state.app.handle_webhook(&body, signature).await? {
        WebhookOutcome::Handled => HttpResponse::Ok().json(json!({ "received": true })),
        WebhookOutcome::Duplicate => HttpResponse::Ok().json(json!({ "received": true, "duplicate": true })),
    })
}
