//! Payments: the [`PaymentGateway`] trait and its two implementations, [`offline`] (the
//! default: Stripe's test-token behaviour, no network) and [`stripe`] (the real async-stripe
//! client against a configurable API base URL), plus Stripe webhook signature checks
//! ([`webhook`]).
//!
//! Every charge carries an idempotency key derived from the order and its attempt number, so a
//! retried or resumed charge is answered with the first result instead of charging again; a
//! checkout session's key is derived from the order, so an order has at most one.

pub mod offline;
pub mod stripe;
pub mod webhook;

use futures_util::future::BoxFuture;
use std::sync::Arc;

/// One charge, as the order actor asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    /// Integer cents.
    pub amount_cents: u64,
    /// ISO currency code, lower case (`usd`).
    pub currency: String,
    /// The card token from the client (`tok_visa`...).
    pub token: String,
    pub idempotency_key: String,
    /// Sent as metadata so webhooks can find the order.
    pub order_id: String,
}

/// What the provider decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Money taken; the provider's charge id.
    Succeeded { charge_id: String },
    /// The card was declined (402 to the client; the order stays payable).
    Declined { reason: String },
    /// The request itself was refused (unknown token...): 400 to the client.
    Rejected { reason: String },
}

/// The provider could not be reached or failed: the outcome is unknown and the same
/// idempotency key must be used to ask again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("payment provider unavailable: {0}")]
pub struct GatewayError(pub String);

/// A hosted payment page for one order (Stripe Checkout): the buyer pays on the provider's
/// page and the provider confirms by webhook, with the order id in the payment's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// Integer cents.
    pub amount_cents: u64,
    /// ISO currency code, lower case (`usd`).
    pub currency: String,
    /// What the buyer sees on the provider's page (the ticket's title).
    pub product_name: String,
    /// Sent as metadata on the session and on its payment, so webhooks can find the order.
    pub order_id: String,
    /// Where the provider sends the buyer after paying, and after giving up.
    pub success_url: String,
    pub cancel_url: String,
    /// Derived from the order alone, so asking again never opens a second page to pay on.
    pub idempotency_key: String,
    /// When the order expires (ms since the epoch); the page should close no later, where the
    /// provider allows it.
    pub expires_at_ms: i64,
}

/// A hosted payment page the provider opened.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckoutSession {
    /// The provider's id (`cs_...`).
    pub id: String,
    /// Where to send the buyer.
    pub url: String,
}

/// What the gateway answered to a checkout request. A provider that could not be reached is
/// the `Err(GatewayError)` of the call, not one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckoutOutcome {
    Created(CheckoutSession),
    /// This gateway has no hosted payment page (offline): pay with a card token instead.
    NotSupported,
    /// The provider refused the request itself (a bad URL...): asking again cannot help.
    Rejected {
        reason: String,
    },
}

/// What became of a refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    /// The money went back; the provider's refund id.
    Refunded { refund_id: String },
    /// The provider will never refund this charge (it does not know it, say): asking again
    /// would not help, so the caller records it and an operator looks.
    Refused { reason: String },
}

pub trait PaymentGateway: Send + Sync + 'static {
    fn charge(&self, charge: Charge) -> BoxFuture<'static, Result<ChargeOutcome, GatewayError>>;

    /// Opens a hosted payment page for an order; the provider confirms the payment by webhook.
    fn checkout(&self, request: CheckoutRequest) -> BoxFuture<'static, Result<CheckoutOutcome, GatewayError>>;

    /// Refunds a charge in full (a payment that arrived after its order expired).
    fn refund(
        &self,
        charge_id: String,
        idempotency_key: String,
    ) -> BoxFuture<'static, Result<RefundOutcome, GatewayError>>;
}

pub type Gateway = Arc<dyn PaymentGateway>;
