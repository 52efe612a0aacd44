//! Use cases of paying: a buyer pays for an order with a card token, or opens the provider's
//! hosted checkout page for it, and the provider confirms a charge by webhook (signature
//! checked over the raw bytes, events de-duplicated by id).

use super::keyed::ClaimedKey;
use super::{App, AppError};
use crate::actors::order::{ConfirmPayment, Pay};
use crate::actors::EntityError;
use crate::deadline::Deadline;
use crate::domain::{now_ms, DomainError, OrderId, Payment, UserId};
use crate::observability::business::{PaymentOutcome, WebhookDelivery};
use crate::payments::{webhook, CheckoutOutcome, CheckoutRequest, CheckoutSession};
use crate::routing::command::To;
use crate::storage::{keys, StorageError, Store, WebhookSeen, WriteBatch};
use serde_json::Value;
use std::time::Duration;

/// How long a payment may wait for its order actor: longer than the provider's worst case
/// (three attempts of ten seconds), so a slow success is not reported as a failure.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(45);
/// Signatures older (or newer) than this are refused, as Stripe's libraries do.
const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;
/// Stripe retries a webhook for up to three days; seen event ids are kept well past that.
const WEBHOOK_DEDUP_MS: i64 = 7 * 24 * 3600 * 1000;

/// What became of a webhook delivery.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Handled,
    /// The same event was handled before (the provider retried).
    Duplicate,
}

impl App {
    /// Pays `order` with a card token. With an `Idempotency-Key` whose first attempt may have
    /// run (`key.again`), an order that attempt completed answers its payment again.
    pub async fn pay(
        &self,
        caller: UserId,
        order: OrderId,
        token: String,
        key: Option<&ClaimedKey>,
    ) -> Result<Payment, AppError> {
        let again = key.is_some_and(|k| k.again);
        let command = To::new(order, Pay { caller, token, again });
        let paid = self
            .router
            .ask_until(command, Deadline::after(PROVIDER_TIMEOUT))
            .await
            .map(|r| r.payment)
            .map_err(AppError::from);
        let outcome = match &paid {
            Ok(_) => Some(PaymentOutcome::Paid),
            Err(AppError::Domain(DomainError::CardDeclined)) => Some(PaymentOutcome::Declined),
            Err(e) if e.is_server_fault() => None,
            Err(_) => Some(PaymentOutcome::Refused),
        };
        if let Some(outcome) = outcome {
            self.metrics.business().payment_attempt(outcome);
        }
        paid
    }

    /// Opens the provider's hosted payment page for the caller's order (a Stripe Checkout
    /// Session); the order completes when the provider's webhook confirms the payment. The
    /// order must be payable now, by the rule `pay` applies ([`crate::domain::Order::check_payable`]).
    /// [`AppError::CheckoutNotSupported`] means this gateway has no such page: pay with a token.
    ///
    /// The order is only read, not changed: a session costs nothing until paid, and the
    /// webhook settles whatever happened to the order meanwhile (a late payment is refunded).
    pub async fn checkout(
        &self,
        caller: UserId,
        order: OrderId,
        success_url: String,
        cancel_url: String,
    ) -> Result<CheckoutSession, AppError> {
        let order = self.order(caller, order).await?;
        order.check_payable(caller, now_ms())?;
        let request = CheckoutRequest {
            amount_cents: order.ticket.price.cents(),
            currency: "usd".into(),
            product_name: order.ticket.title.clone(),
            order_id: order.id.to_string(),
            success_url,
            cancel_url,
            // One session per order, however often the buyer (or a retry) asks.
            idempotency_key: format!("order-{}-checkout", order.id),
            expires_at_ms: order.expires_at_ms,
        };
        match self.gateway.checkout(request).await {
            Ok(CheckoutOutcome::Created(session)) => Ok(session),
            Ok(CheckoutOutcome::NotSupported) => Err(AppError::CheckoutNotSupported),
            // Our request was wrong (a URL the provider refuses...), not the buyer's doing.
            Ok(CheckoutOutcome::Rejected { reason }) => {
                Err(AppError::Internal(format!("the provider refused the checkout session: {reason}")))
            }
            Err(e) => {
                // The provider may have made the session (it costs nothing until paid).
                tracing::warn!(order = %order.id, error = %e, "checkout session: no answer from the provider");
                Err(AppError::NoReply)
            }
        }
    }

    /// Verifies the `Stripe-Signature` over the raw bytes, de-duplicates by event id, and
    /// completes the order named in the charge's metadata.
    pub async fn handle_webhook(&self, raw_body: &[u8], signature: &str) -> Result<WebhookOutcome, AppError> {
        let handled = self.handle_webhook_once(raw_body, signature).await;
        let counted = match &handled {
            Ok(WebhookOutcome::Handled) => Some(WebhookDelivery::Handled),
            Ok(WebhookOutcome::Duplicate) => Some(WebhookDelivery::Duplicate),
            Err(e) if e.is_server_fault() => None,
            Err(_) => Some(WebhookDelivery::Refused),
        };
        if let Some(outcome) = counted {
            self.metrics.business().webhook(outcome);
        }
        handled
    }

    async fn handle_webhook_once(&self, raw_body: &[u8], signature: &str) -> Result<WebhookOutcome, AppError> {
        let secret = self.settings.payments.webhook_secret.expose();
        if secret.is_empty() {
            tracing::warn!("webhook received but payments.webhook_secret is not set; refused");
            return Err(AppError::WebhookRefused("Webhook signature cannot be verified".into()));
        }
        webhook::verify(signature, raw_body, secret, chrono::Utc::now().timestamp(), SIGNATURE_TOLERANCE_SECONDS)
            .map_err(|e| AppError::WebhookRefused(format!("Invalid Stripe signature: {e}")))?;
        let event: Value =
            serde_json::from_slice(raw_body).map_err(|e| AppError::WebhookRefused(format!("Malformed JSON: {e}")))?;
        let event_id = event["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AppError::WebhookRefused("Event id missing".into()))?;
        // Claim the event id first (compare-and-swap), so concurrent deliveries of one event are
        // handled once; a failure frees the claim so the provider's retry is handled.
        let seen_key = keys::webhook_event(event_id);
        let seen = Store::encode(&WebhookSeen { received_at_ms: now_ms() })?;
        if !self.store.compare_and_swap(&seen_key, None, Some(&seen)).await? {
            return Ok(WebhookOutcome::Duplicate);
        }
        match self.confirm_charge(&event, event_id).await {
            Ok(()) => {
                self.store.sync().await;
                Ok(WebhookOutcome::Handled)
            }
            Err(e) => {
                let mut batch = WriteBatch::default();
                batch.remove(seen_key);
                self.store.commit(batch).await?;
                Err(e)
            }
        }
    }

    async fn confirm_charge(&self, event: &Value, event_id: &str) -> Result<(), AppError> {
        let kind = event["type"].as_str().unwrap_or_default();
        if !matches!(kind, "payment_intent.succeeded" | "charge.succeeded") {
            return Ok(());
        }
        let object = &event["data"]["object"];
        let charge_id = object["latest_charge"].as_str().or(object["id"].as_str()).unwrap_or_default().to_string();
        let order = object["metadata"]["orderId"].as_str().or(object["metadata"]["order_id"].as_str());
        let Some(order) = order.and_then(OrderId::parse) else {
            tracing::warn!(event = event_id, "webhook without an order ignored");
            return Ok(());
        };
        let command = To::new(order, ConfirmPayment { charge_id });
        match self.router.ask_until(command, Deadline::after(PROVIDER_TIMEOUT)).await {
            Err(EntityError::Domain(DomainError::NotFound)) => {
                tracing::warn!(event = event_id, "webhook for an unknown order ignored");
                Ok(())
            }
            other => other.map(|_| ()).map_err(AppError::from),
        }
    }

    /// Forgets webhook event ids older than the de-duplication window (housekeeping).
    pub(super) async fn prune_seen_webhooks(&self) -> Result<usize, StorageError> {
        let cutoff = now_ms() - WEBHOOK_DEDUP_MS;
        let mut expired: Vec<Vec<u8>> = Vec::new();
        self.store.sweep(keys::WEBHOOK_EVENT, |key, value| {
            let seen: WebhookSeen = crate::storage::envelope::decode(key, value)?;
            if seen.received_at_ms < cutoff {
                expired.push(key.to_vec());
            }
            Ok(true)
        })?;
        crate::storage::SlotBatches::remove_expired(&self.store, expired).await
    }
}
