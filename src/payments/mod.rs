//! Payments: the [`PaymentGateway`] trait and its two implementations, [`offline`] (the
//! default: Stripe's test-token behaviour, no network) and [`stripe`] (the real async-stripe
//! client against a configurable API base URL), plus Stripe webhook signature checks
//! ([`webhook`]).
//!
//! Every charge carries an idempotency key derived from the order and its attempt number, so a
//! retried or resumed charge is answered with the first result instead of charging again.

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

pub trait PaymentGateway: Send + Sync + 'static {
    fn charge(&self, charge: Charge) -> BoxFuture<'static, Result<ChargeOutcome, GatewayError>>;

    /// Refunds a charge in full (a payment that arrived after its order expired).
    fn refund(&self, charge_id: String, idempotency_key: String) -> BoxFuture<'static, Result<String, GatewayError>>;
}

pub type Gateway = Arc<dyn PaymentGateway>;
