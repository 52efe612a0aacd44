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
//! * `Client::from_url` panics on an unparsable URL and replaces the base URL's whole path
//!   with `/v1/...`; [`StripeGateway::try_new`] checks both before handing the URL over.

use super::{Charge, ChargeOutcome, GatewayError, PaymentGateway};
use actix_web::http::Uri;
use futures_util::future::BoxFuture;
use std::future::Future;
use std::time::Duration;
use stripe::{
    ChargeId, ChargeSourceParams, ChargeStatus, Client, CreateCharge, CreateRefund, Currency, ErrorCode, ErrorType,
    Metadata, Refund, RequestError, RequestStrategy, StripeError, TokenId,
};

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

    fn refund(&self, charge_id: String, idempotency_key: String) -> BoxFuture<'static, Result<String, GatewayError>> {
        let client = self.client_for(&idempotency_key);
        let timeout = self.request_timeout;
        Box::pin(async move {
            let client = client?;
            let charge: ChargeId =
                charge_id.parse().map_err(|_| GatewayError(format!("not a Stripe charge id: {charge_id:?}")))?;
            let result = with_retries("refund", timeout, || {
                let mut params = CreateRefund::new();
                params.charge = Some(charge.clone());
                Refund::create(&client, params)
            })
            .await;
            match result {
                Ok(refund) => Ok(refund.id.to_string()),
                Err(Failure::Declined(reason) | Failure::Rejected(reason)) => {
                    Err(GatewayError(format!("Stripe refused to refund {charge_id}: {reason}")))
                }
                Err(Failure::Transient(reason) | Failure::Unavailable(reason)) => Err(GatewayError(reason)),
            }
        })
    }
}

#[cfg(test)]
#[path = "stripe_test.rs"]
mod tests;
