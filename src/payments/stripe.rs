//! The real Stripe gateway: async-stripe's `Client` against a configurable API base URL
//! (`https://api.stripe.com/` in production, a local Stripe-compatible server in tests).
//!
//! # Why it retries itself, and why that is safe
//! A 5xx or a dropped connection says nothing about whether Stripe took the money. The only
//! safe way to find out is to ask again *with the same idempotency key*: Stripe then answers
//! the stored result of the first request instead of charging twice. async-stripe's own retry
//! strategies (`Retry`, `ExponentialBackoff`) generate a fresh random key and back off for
//! seconds, so every call here uses `RequestStrategy::Idempotent(order's key)` (which sends
//! exactly once) and the retry loop lives in this module, reusing that key on every attempt.
//! After [`MAX_ATTEMPTS`] the outcome is still unknown and the caller gets a [`GatewayError`];
//! it keeps the key and may ask again later.
//!
//! # Why each attempt has its own timeout
//! The hyper client inside async-stripe has no connect or read timeout, so a black-holed
//! connection would otherwise hang the order actor forever. A timed-out attempt is *not*
//! retried here: the worst case would be several full timeouts in a row, and the caller can
//! ask again with the same key just as safely.
//!
//! # How async-stripe reports failures (0.41, read from its source)
//! * Any non-2xx whose body is a Stripe error object becomes `StripeError::Stripe(RequestError)`
//!   with `http_status` filled in: a decline is `402` + `card_error`, an unknown token is
//!   `400` + `invalid_request_error`, an outage is `5xx` (`api_error`).
//! * A non-2xx whose body is *not* a Stripe error object (a proxy's HTML 502, or a Stripe error
//!   with a `code` this version does not know) becomes `StripeError::JSONSerialize` and the
//!   status is lost, so it is treated like a 5xx: retried with the same key, then reported as
//!   unavailable.
//! * Connection failures are `StripeError::ClientError`.
//! * Checkout Sessions are not compiled in (the `checkout` feature would build all of
//!   billing), so a session is created with the client's generic `post_form`, from the form
//!   below: same client, same key strategy, same retries and failure classification.
//! * `Client::from_url` panics on an unparsable URL and replaces the base URL's whole path
//!   with `/v1/...`; [`StripeGateway::try_new`] checks both before handing the URL over.

use super::{
    Charge, ChargeOutcome, CheckoutOutcome, CheckoutRequest, CheckoutSession, GatewayError, PaymentGateway,
    RefundOutcome,
};
use actix_web::http::Uri;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::Duration;
use stripe::{
    ChargeId, ChargeSourceParams, ChargeStatus, Client, CreateCharge, CreateRefund, Currency, ErrorCode, ErrorType,
    Metadata, PaymentIntentId, Refund, RequestError, RequestStrategy, StripeError, TokenId,
};

/// What a refund names.
enum RefundTarget {
    Charge(ChargeId),
    Intent(PaymentIntentId),
}

/// Attempts per charge or refund when Stripe answers 5xx or the connection fails.
pub const MAX_ATTEMPTS: usize = 3;

/// The pause before the 2nd and 3rd attempts: short, because a buyer is waiting and the
/// caller can always ask again later with the same key.
const BACKOFF: [Duration; MAX_ATTEMPTS - 1] = [Duration::from_millis(50), Duration::from_millis(100)];

/// Bound on one HTTP exchange with Stripe, connecting included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct StripeGateway {
    /// An unusable base URL is kept as the error every call answers, so that a bad setting
    /// shows up as "payment provider unavailable" instead of a panic at startup.
    client: Result<Client, GatewayError>,
    request_timeout: Duration,
}

impl StripeGateway {
    /// A gateway for `api_base` (`https://api.stripe.com/`, or `http://127.0.0.1:PORT/` in
    /// tests; a trailing slash is optional). An unusable `api_base` does not panic: every call
    /// then fails with a [`GatewayError`] naming the problem. Use [`Self::try_new`] to find out
    /// at startup.
    pub fn new(api_base: &str, secret_key: &str) -> Self {
        Self::try_new(api_base, secret_key)
            .unwrap_or_else(|e| Self { client: Err(e), request_timeout: DEFAULT_REQUEST_TIMEOUT })
    }

    /// Like [`Self::new`], but refuses an unusable `api_base` up front.
    pub fn try_new(api_base: &str, secret_key: &str) -> Result<Self, GatewayError> {
        let base = check_api_base(api_base)?;
        // `from_url` panics on a URL it cannot parse. `check_api_base` accepts only plain
        // `http(s)://host[:port][/]`, so this is not expected to fire; the guard is there so
        // that a disagreement between the two URL parsers is an error, not a crash.
        let client = std::panic::catch_unwind(|| Client::from_url(base.as_str(), secret_key))
            .map_err(|_| GatewayError(format!("invalid Stripe API base URL {api_base:?}")))?;
        Ok(Self { client: Ok(client), request_timeout: DEFAULT_REQUEST_TIMEOUT })
    }

    /// Replaces [`DEFAULT_REQUEST_TIMEOUT`] (tests use a short one).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// A client that sends `idempotency_key` with every request it makes.
    fn client_for(&self, idempotency_key: &str) -> Result<Client, GatewayError> {
        if idempotency_key.is_empty() {
            // Without a key a retry could charge twice: refuse rather than risk it.
            return Err(GatewayError("refusing a Stripe request without an idempotency key".into()));
        }
        let client = self.client.clone()?;
        Ok(client.with_strategy(RequestStrategy::Idempotent(idempotency_key.to_string())))
    }
}

/// Stripe refuses a Checkout Session `expires_at` less than 30 minutes or more than 24 hours
/// after it receives the request.
const CHECKOUT_LIFETIME_SECONDS: std::ops::RangeInclusive<i64> = 30 * 60..=24 * 3600;

/// Room for the time between deciding on `expires_at` and Stripe checking it (retries
/// included), and for clocks that disagree a little.
const CHECKOUT_EXPIRY_MARGIN_SECONDS: i64 = 60;

/// The `expires_at` (Unix seconds) to send for an order expiring at `order_expires_at_ms`:
/// the order's own expiry, rounded down so the page never outlives it. `None` when Stripe
/// would refuse it: an order closer than 30 minutes to its expiry (the usual 15-minute order)
/// gets Stripe's default lifetime (24 hours), and one further than 24 hours away outlives that
/// default anyway. A page that outlives its order is safe: a payment confirmed after the order
/// expired is refunded (`actors::order::payment`).
///
/// The choice depends on the time; the idempotency key names the parameters sent, so a later
/// request that crosses the 30-minute line opens a new session rather than being refused.
fn checkout_expiry(order_expires_at_ms: i64, now_ms: i64) -> Option<i64> {
    let at = order_expires_at_ms.div_euclid(1000);
    let lifetime = at - now_ms.div_euclid(1000);
    let allowed = CHECKOUT_LIFETIME_SECONDS.start() + CHECKOUT_EXPIRY_MARGIN_SECONDS
        ..=CHECKOUT_LIFETIME_SECONDS.end() - CHECKOUT_EXPIRY_MARGIN_SECONDS;
    allowed.contains(&lifetime).then_some(at)
}

/// `POST /v1/checkout/sessions` as a form (`line_items[0][price_data][currency]=usd`...).
#[derive(Clone, Debug, Serialize)]
struct SessionForm {
    mode: &'static str,
    line_items: [LineItem; 1],
    success_url: String,
    cancel_url: String,
    /// Shown in Stripe's dashboard next to the session.
    client_reference_id: String,
    metadata: OrderMetadata,
    /// The webhook handled is `payment_intent.succeeded`, whose object is the intent, not
    /// the session: the order id must be on the intent too.
    payment_intent_data: PaymentIntentData,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

#[derive(Clone, Debug, Serialize)]
struct LineItem {
    price_data: PriceData,
    quantity: u64,
}

#[derive(Clone, Debug, Serialize)]
struct PriceData {
    currency: String,
    unit_amount: i64,
    product_data: ProductData,
}

#[derive(Clone, Debug, Serialize)]
struct ProductData {
    name: String,
}

#[derive(Clone, Debug, Serialize)]
struct OrderMetadata {
    #[serde(rename = "orderId")]
    order_id: String,
}

#[derive(Clone, Debug, Serialize)]
struct PaymentIntentData {
    metadata: OrderMetadata,
}

/// The fields of Stripe's `checkout.session` object used here.
#[derive(Debug, Deserialize)]
struct CreatedSession {
    id: String,
    url: Option<String>,
}

impl SessionForm {
    fn new(request: &CheckoutRequest, unit_amount: i64, now_ms: i64) -> Self {
        let order = || OrderMetadata { order_id: request.order_id.clone() };
        Self {
            mode: "payment",
            line_items: [LineItem {
                price_data: PriceData {
                    currency: request.currency.to_ascii_lowercase(),
                    unit_amount,
                    product_data: ProductData { name: request.product_name.clone() },
                },
                quantity: 1,
            }],
            success_url: request.success_url.clone(),
            cancel_url: request.cancel_url.clone(),
            client_reference_id: request.order_id.clone(),
            metadata: order(),
            payment_intent_data: PaymentIntentData { metadata: order() },
            expires_at: checkout_expiry(request.expires_at_ms, now_ms),
        }
    }
}

/// Accepts `http(s)://host[:port]` with an empty or `/` path and returns it with the slash.
fn check_api_base(api_base: &str) -> Result<String, GatewayError> {
    let invalid = |why: &str| GatewayError(format!("invalid Stripe API base URL {api_base:?}: {why}"));
    let trimmed = api_base.trim();
    let uri: Uri = trimmed.parse().map_err(|_| invalid("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(invalid("the scheme must be http or https"));
    }
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(invalid("expected http(s)://host[:port]/"));
    }
    // async-stripe sets the request path to `/v1/...`, dropping whatever path the base had:
    // a base like `https://proxy/stripe/` would silently talk to `https://proxy/v1/...`.
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(invalid("a path or query would be ignored; use http(s)://host[:port]/"));
    }
    Ok(format!("{}://{}/", uri.scheme_str().unwrap_or("https"), authority))
}

/// Why an exchange with Stripe did not produce the object asked for.
#[derive(Debug)]
enum Failure {
    /// The card was refused: a final answer (Stripe stores it under the key too).
    Declined(String),
    /// Stripe refused the request itself (unknown token...): asking again cannot help.
    Rejected(String),
    /// Outcome unknown, and asking again with the same key may get an answer.
    Transient(String),
    /// Outcome unknown, and asking again right now will not help (timeout, our own
    /// configuration, a key reused for different parameters).
    Unavailable(String),
}

fn classify(error: &StripeError) -> Failure {
    match error {
        StripeError::Stripe(e) => classify_request_error(e),
        // The request may or may not have reached Stripe; the key makes asking again safe.
        StripeError::ClientError(_) => Failure::Transient(error.to_string()),
        // async-stripe drops the status when an error body does not decode (see module doc),
        // so this may be a 5xx from something in front of Stripe.
        StripeError::JSONSerialize(e) => {
            Failure::Transient(format!("undecodable response from Stripe at {}: {}", e.path(), e.inner()))
        }
        StripeError::Timeout => Failure::Unavailable(error.to_string()),
        StripeError::QueryStringSerialize(_) | StripeError::UnsupportedVersion => {
            Failure::Unavailable(error.to_string())
        }
    }
}

fn classify_request_error(e: &RequestError) -> Failure {
    let message = || e.message.clone().unwrap_or_else(|| e.to_string());
    if e.http_status >= 500 || e.error_type == ErrorType::Api {
        return Failure::Transient(e.to_string());
    }
    if e.http_status == 402 || e.error_type == ErrorType::Card {
        let reason = e
            .message
            .clone()
            .or_else(|| e.code.map(|c| c.to_string()))
            .unwrap_or_else(|| "Your card was declined.".into());
        return Failure::Declined(reason);
    }
    if e.http_status == 429 || e.error_type == ErrorType::RateLimit {
        return Failure::Transient(e.to_string());
    }
    if e.code == Some(ErrorCode::IdempotencyKeyInUse) {
        // Another request with this key is still in flight; its result will be stored.
        return Failure::Transient(e.to_string());
    }
    match e.error_type {
        // The key was first used with other parameters: that first request's outcome stands
        // and cannot be read this way, so "rejected" would wrongly say no money was taken.
        ErrorType::IdempotencyError => Failure::Unavailable(e.to_string()),
        ErrorType::InvalidRequest | ErrorType::Validation => Failure::Rejected(message()),
        // Authentication, permissions, unknown kinds: our side is wrong, not the buyer's.
        _ => Failure::Unavailable(e.to_string()),
    }
}

/// Runs `send` until it succeeds, fails for good, or [`MAX_ATTEMPTS`] are used up. `send`
/// must build the same request each time, carrying the same idempotency key.
async fn with_retries<T, F, Fut>(what: &str, timeout: Duration, send: F) -> Result<T, Failure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, StripeError>>,
{
    let mut attempt = 1;
    loop {
        let failure = match tokio::time::timeout(timeout, send()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => classify(&error),
            Err(_) => Failure::Unavailable(format!("no answer from Stripe within {timeout:?}")),
        };
        match failure {
            Failure::Transient(reason) if attempt < MAX_ATTEMPTS => {
                tracing::warn!(what, attempt, %reason, "Stripe request failed; retrying with the same idempotency key");
                tokio::time::sleep(BACKOFF[attempt - 1]).await;
                attempt += 1;
            }
            Failure::Transient(reason) => {
                return Err(Failure::Transient(format!("{reason} (gave up after {attempt} attempts)")));
            }
            other => return Err(other),
        }
    }
}

impl PaymentGateway for StripeGateway {
    fn charge(&self, charge: Charge) -> BoxFuture<'static, Result<ChargeOutcome, GatewayError>> {
        let client = self.client_for(&charge.idempotency_key);
        let timeout = self.request_timeout;
        Box::pin(async move {
            let client = client?;
            // Stripe would answer these with invalid_request_error; async-stripe's typed
            // parameters cannot even carry them, so they are refused without a round trip.
            let Ok(token) = charge.token.parse::<TokenId>() else {
                return Ok(ChargeOutcome::Rejected { reason: "Invalid payment token".into() });
            };
            let Ok(currency) = charge.currency.to_ascii_lowercase().parse::<Currency>() else {
                return Ok(ChargeOutcome::Rejected { reason: format!("Unsupported currency {:?}", charge.currency) });
            };
            let Ok(amount) = i64::try_from(charge.amount_cents) else {
                return Ok(ChargeOutcome::Rejected { reason: "Amount too large".into() });
            };
            let metadata = Metadata::from([("orderId".to_string(), charge.order_id.clone())]);
            let result = with_retries("charge", timeout, || {
                let mut params = CreateCharge::new();
                params.amount = Some(amount);
                params.currency = Some(currency);
                params.source = Some(ChargeSourceParams::Token(token.clone()));
                params.metadata = Some(metadata.clone());
                stripe::Charge::create(&client, params)
            })
            .await;
            match result {
                Ok(created) => match created.status {
                    ChargeStatus::Succeeded => Ok(ChargeOutcome::Succeeded { charge_id: created.id.to_string() }),
                    ChargeStatus::Failed => Ok(ChargeOutcome::Declined {
                        reason: created.failure_message.unwrap_or_else(|| "Your card was declined.".into()),
                    }),
                    // Not final yet (card charges do not normally pend); asking again with the
                    // same key returns the same charge, by then hopefully settled.
                    ChargeStatus::Pending => {
                        Err(GatewayError(format!("Stripe charge {} is still pending", created.id)))
                    }
                },
                Err(Failure::Declined(reason)) => Ok(ChargeOutcome::Declined { reason }),
                Err(Failure::Rejected(reason)) => Ok(ChargeOutcome::Rejected { reason }),
                Err(Failure::Transient(reason) | Failure::Unavailable(reason)) => Err(GatewayError(reason)),
            }
        })
    }

    fn checkout(&self, request: CheckoutRequest) -> BoxFuture<'static, Result<CheckoutOutcome, GatewayError>> {
        let timeout = self.request_timeout;
        let Ok(amount) = i64::try_from(request.amount_cents) else {
            return Box::pin(async { Ok(CheckoutOutcome::Rejected { reason: "Amount too large".into() }) });
        };
        // Built once, so every attempt sends the same parameters under the same key. The key
        // names the parameters too: the same request replays the same session, and one that
        // differs (another return URL, an expiry past the 30-minute line) opens a new session
        // instead of being refused for good; a second payment is refunded anyway.
        let form = SessionForm::new(&request, amount, crate::domain::now_ms());
        let digest = serde_json::to_vec(&form).map(|f| hex::encode(&Sha256::digest(f)[..8])).unwrap_or_default();
        let client = self.client_for(&format!("{}-{digest}", request.idempotency_key));
        Box::pin(async move {
            let client = client?;
            let result = with_retries("checkout session", timeout, || {
                client.post_form::<CreatedSession, _>("checkout/sessions", form.clone())
            })
            .await;
            match result {
                Ok(CreatedSession { id, url: Some(url) }) => Ok(CheckoutOutcome::Created(CheckoutSession { id, url })),
                // Only embedded sessions come without a URL; this form never asks for one.
                Ok(CreatedSession { id, url: None }) => {
                    Err(GatewayError(format!("Stripe checkout session {id} has no url")))
                }
                Err(Failure::Declined(reason) | Failure::Rejected(reason)) => Ok(CheckoutOutcome::Rejected { reason }),
                Err(Failure::Transient(reason) | Failure::Unavailable(reason)) => Err(GatewayError(reason)),
            }
        })
    }

    fn refund(
        &self,
        charge_id: String,
        idempotency_key: String,
    ) -> BoxFuture<'static, Result<RefundOutcome, GatewayError>> {
        let client = self.client_for(&idempotency_key);
        let timeout = self.request_timeout;
        Box::pin(async move {
            let client = client?;
            // A webhook names a charge (`ch_`, `py_`) or, from older API versions, only the
            // payment intent (`pi_`): both can be refunded.
            let target = match (charge_id.parse::<ChargeId>(), charge_id.parse::<PaymentIntentId>()) {
                (Ok(charge), _) => RefundTarget::Charge(charge),
                (_, Ok(intent)) => RefundTarget::Intent(intent),
                _ => return Ok(RefundOutcome::Refused { reason: format!("not a Stripe charge id: {charge_id:?}") }),
            };
            let result = with_retries("refund", timeout, || {
                let mut params = CreateRefund::new();
                match &target {
                    RefundTarget::Charge(charge) => params.charge = Some(charge.clone()),
                    RefundTarget::Intent(intent) => params.payment_intent = Some(intent.clone()),
                }
                Refund::create(&client, params)
            })
            .await;
            match result {
                Ok(refund) => Ok(RefundOutcome::Refunded { refund_id: refund.id.to_string() }),
                Err(Failure::Declined(reason) | Failure::Rejected(reason)) => {
                    Ok(RefundOutcome::Refused { reason: format!("Stripe refused to refund {charge_id}: {reason}") })
                }
                Err(Failure::Transient(reason) | Failure::Unavailable(reason)) => Err(GatewayError(reason)),
            }
        })
    }
}

#[cfg(test)]
#[path = "stripe_test.rs"]
mod tests;
