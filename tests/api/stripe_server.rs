//! A local Stripe-compatible API for the tests: `POST /v1/charges` and `POST /v1/refunds`, form
//! encoded as async-stripe sends them, answered with JSON that async-stripe's `Charge` and
//! `Refund` types decode.
//!
//! It behaves like Stripe in test mode where the gateway depends on it:
//! * `tok_chargeDeclined*` is a `402` `card_error` (and a failed charge is kept, as Stripe does);
//!   any other well-formed `tok_…` succeeds; anything else is a `400` `invalid_request_error`
//!   ("No such token").
//! * Idempotency: a key seen before answers the stored response (no new charge); the same key
//!   with different parameters is a `400` `idempotency_error`. Like Stripe, `5xx` answers are
//!   not stored, so a retry after one does the work.
//! * A request without `Authorization: Bearer …` is a `401`.
//!
//! Every request is recorded for assertions, and [`StripeServer::fail_next`] /
//! [`StripeServer::delay_next`] inject outages.

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The decoded form body, in order (`metadata[orderId]` stays one key).
    pub form: Vec<(String, String)>,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub stripe_version: Option<String>,
    /// The status the server answered.
    pub status: u16,
}

impl RecordedRequest {
    /// The first value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A charge the server created (succeeded or, for a declined card, failed).
#[derive(Clone, Debug)]
pub struct StripeCharge {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub source: String,
    pub metadata: BTreeMap<String, String>,
    /// `succeeded` or `failed`.
    pub status: String,
    pub refunded: bool,
    pub idempotency_key: Option<String>,
    created: i64,
}

#[derive(Clone, Debug)]
pub struct StripeRefund {
    pub id: String,
    pub charge: String,
    pub amount: i64,
    pub idempotency_key: Option<String>,
}

/// What a request with an idempotency key was first answered, and what it asked.
struct Answered {
    path: String,
    form: Vec<(String, String)>,
    status: u16,
    body: Value,
}

#[derive(Default)]
struct State {
    requests: Vec<RecordedRequest>,
    charges: Vec<StripeCharge>,
    refunds: Vec<StripeRefund>,
    /// The first answer to each idempotency key.
    answered: HashMap<String, Answered>,
    fail_next: usize,
    delay_next: usize,
    delay: Duration,
}

pub struct StripeServer {
    /// `http://127.0.0.1:PORT/`, to give to `StripeGateway::new`.
    pub base_url: String,
    state: Arc<Mutex<State>>,
    handle: actix_web::dev::ServerHandle,
}

impl StripeServer {
    /// Starts on a random port inside the current actix system; stops when dropped.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(0)
            .bind(("127.0.0.1", 0))
            .expect("bind the Stripe test server");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { base_url: format!("http://127.0.0.1:{port}/"), state, handle }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.clone()
    }

    /// The requests received for one path (`/v1/charges`).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }

    /// The next `n` requests answer `500 api_error` (and are not stored under their key).
    pub fn fail_next(&self, n: usize) {
        self.state.lock().fail_next = n;
    }

    /// The next `n` requests are answered only after `by` (and then processed normally, like a
    /// request whose client gave up waiting).
    pub fn delay_next(&self, n: usize, by: Duration) {
        let mut state = self.state.lock();
        state.delay_next = n;
        state.delay = by;
    }

    /// Charges created, in order, including the failed charges of declined cards.
    pub fn charges(&self) -> Vec<StripeCharge> {
        self.state.lock().charges.clone()
    }

    /// Charges that took money.
    pub fn succeeded_charges(&self) -> Vec<StripeCharge> {
        self.charges().into_iter().filter(|c| c.status == "succeeded").collect()
    }

    pub fn refunds(&self) -> Vec<StripeRefund> {
        self.state.lock().refunds.clone()
    }
}

impl Drop for StripeServer {
    fn drop(&mut self) {
        // `stop` sends the command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let form = std::str::from_utf8(&body)
        .ok()
        .and_then(|s| web::Query::<Vec<(String, String)>>::from_query(s).ok())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let mut recorded = RecordedRequest {
        method: req.method().to_string(),
        path: req.path().to_string(),
        form,
        idempotency_key: header("idempotency-key"),
        authorization: header("authorization"),
        content_type: header("content-type"),
        stripe_version: header("stripe-version"),
        status: 0,
    };

    let delay = {
        let mut s = state.lock();
        if s.delay_next > 0 {
            s.delay_next -= 1;
            Some(s.delay)
        } else {
            None
        }
    };
    if let Some(delay) = delay {
        actix_web::rt::time::sleep(delay).await;
    }

    let mut s = state.lock();
    let (status, body, replayed) = answer(&mut s, &recorded);
    recorded.status = status;
    s.requests.push(recorded);
    drop(s);

    let mut response = HttpResponse::build(StatusCode::from_u16(status).expect("a valid status"));
    response.insert_header(("request-id", format!("req_{}", random_suffix(14))));
    if replayed {
        response.insert_header(("idempotent-replayed", "true"));
    }
    response.json(body)
}

/// (status, body, replayed from the idempotency store).
fn answer(s: &mut State, r: &RecordedRequest) -> (u16, Value, bool) {
    if !r.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer ") && a.len() > "Bearer ".len()) {
        return (401, error("invalid_request_error", None, "You did not provide an API key.", None), false);
    }
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return (500, error("api_error", None, "An unknown error occurred", None), false);
    }
    if let Some(key) = &r.idempotency_key {
        if let Some(first) = s.answered.get(key) {
            if first.path == r.path && first.form == r.form {
                return (first.status, first.body.clone(), true);
            }
            let message = format!(
                "Keys for idempotent requests can only be used with the same parameters they were first used with. \
                 Try using a key other than '{key}' if you meant to execute a different request."
            );
            return (400, error("idempotency_error", None, &message, None), false);
        }
    }
    let (status, body) = match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/v1/charges") => create_charge(s, r),
        ("POST", "/v1/refunds") => create_refund(s, r),
        (method, path) => {
            let message = format!("Unrecognized request URL ({method}: {path}).");
            return (404, error("invalid_request_error", None, &message, None), false);
        }
    };
    if let Some(key) = &r.idempotency_key {
        let first = Answered { path: r.path.clone(), form: r.form.clone(), status, body: body.clone() };
        s.answered.insert(key.clone(), first);
    }
    (status, body, false)
}

fn create_charge(s: &mut State, r: &RecordedRequest) -> (u16, Value) {
    let Some(amount) = r.field("amount") else {
        return missing("amount");
    };
    let Ok(amount) = amount.parse::<i64>() else {
        return invalid_param("amount", "Invalid integer", "parameter_invalid_integer");
    };
    if amount <= 0 {
        return invalid_param("amount", "This value must be greater than or equal to 1.", "parameter_invalid_integer");
    }
    let Some(currency) = r.field("currency") else {
        return missing("currency");
    };
    let Some(source) = r.field("source") else {
        return invalid_param("source", "Must provide source or customer.", "parameter_missing");
    };
    let well_formed = source
        .strip_prefix("tok_")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !well_formed {
        let message = format!("No such token: '{source}'");
        return (400, error("invalid_request_error", Some("resource_missing"), &message, Some("source")));
    }
    let metadata: BTreeMap<String, String> = r
        .form
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_string(), v.clone())))
        .collect();
    let declined = source.starts_with("tok_chargeDeclined");
    let charge = StripeCharge {
        id: format!("ch_{}", random_suffix(24)),
        amount,
        currency: currency.to_string(),
        source: source.to_string(),
        metadata,
        status: if declined { "failed" } else { "succeeded" }.into(),
        refunded: false,
        idempotency_key: r.idempotency_key.clone(),
        created: chrono::Utc::now().timestamp(),
    };
    s.charges.push(charge.clone());
    if declined {
        let mut body = error("card_error", Some("card_declined"), "Your card was declined.", None);
        body["error"]["decline_code"] = json!(decline_code(source));
        body["error"]["charge"] = json!(charge.id);
        return (402, body);
    }
    (200, charge_json(&charge))
}

fn create_refund(s: &mut State, r: &RecordedRequest) -> (u16, Value) {
    let Some(charge_id) = r.field("charge") else {
        return invalid_param(
            "charge",
            "One of the following params should be provided for this request: payment_intent or charge.",
            "parameter_missing",
        );
    };
    let Some(charge) = s.charges.iter_mut().find(|c| c.id == charge_id) else {
        let message = format!("No such charge: '{charge_id}'");
        return (400, error("invalid_request_error", Some("resource_missing"), &message, Some("charge")));
    };
    if charge.status != "succeeded" {
        let message = format!("Charge {charge_id} has not been captured, so it cannot be refunded.");
        return (400, error("invalid_request_error", None, &message, Some("charge")));
    }
    if charge.refunded {
        let message = format!("Charge {charge_id} has already been refunded.");
        return (400, error("invalid_request_error", Some("charge_already_refunded"), &message, Some("charge")));
    }
    charge.refunded = true;
    let refund = StripeRefund {
        id: format!("re_{}", random_suffix(24)),
        charge: charge.id.clone(),
        amount: charge.amount,
        idempotency_key: r.idempotency_key.clone(),
    };
    let body = json!({
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "balance_transaction": format!("txn_{}", random_suffix(24)),
        "charge": refund.charge,
        "created": chrono::Utc::now().timestamp(),
        "currency": charge.currency,
        "destination_details": null,
        "metadata": {},
        "payment_intent": null,
        "reason": null,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "succeeded",
        "transfer_reversal": null,
    });
    s.refunds.push(refund);
    (200, body)
}

/// A charge object as Stripe (API version 2023-10-16) returns it for a card token.
fn charge_json(c: &StripeCharge) -> Value {
    let (brand, last4) = match c.source.as_str() {
        "tok_mastercard" => ("MasterCard", "4444"),
        "tok_amex" => ("American Express", "8431"),
        _ => ("Visa", "4242"),
    };
    let card = json!({
        "id": format!("card_{}", random_suffix(24)),
        "object": "card",
        "address_city": null,
        "address_country": null,
        "address_line1": null,
        "address_line1_check": null,
        "address_line2": null,
        "address_state": null,
        "address_zip": null,
        "address_zip_check": null,
        "brand": brand,
        "country": "US",
        "customer": null,
        "cvc_check": "pass",
        "dynamic_last4": null,
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": random_suffix(16),
        "funding": "credit",
        "last4": last4,
        "metadata": {},
        "name": null,
        "tokenization_method": null
    });
    let outcome = json!({
        "network_status": "approved_by_network",
        "reason": null,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": "Payment complete.",
        "type": "authorized"
    });
    // Two halves: one json! this size exceeds the macro recursion limit.
    let mut charge = json!({
        "id": c.id,
        "object": "charge",
        "amount": c.amount,
        "amount_captured": c.amount,
        "amount_refunded": if c.refunded { c.amount } else { 0 },
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": format!("txn_{}", random_suffix(24)),
        "billing_details": {"address": null, "email": null, "name": null, "phone": null},
        "calculated_statement_descriptor": "TICKETING",
        "captured": true,
        "created": c.created,
        "currency": c.currency,
        "customer": null,
        "description": null,
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": null,
        "failure_message": null,
        "fraud_details": {},
        "invoice": null,
    });
    let rest = json!({
        "livemode": false,
        "metadata": c.metadata,
        "on_behalf_of": null,
        "outcome": outcome,
        "paid": true,
        "payment_intent": null,
        "payment_method": format!("card_{}", random_suffix(24)),
        "payment_method_details": null,
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": format!("https://pay.stripe.com/receipts/{}", random_suffix(32)),
        "refunded": c.refunded,
        "review": null,
        "shipping": null,
        "source": card,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": c.status,
        "transfer_data": null,
        "transfer_group": null

    });
    if let (Some(charge), Value::Object(rest)) = (charge.as_object_mut(), rest) {
        charge.extend(rest);
    }
    charge
}

fn decline_code(token: &str) -> &'static str {
    match token {
        "tok_chargeDeclinedInsufficientFunds" => "insufficient_funds",
        "tok_chargeDeclinedFraudulent" => "fraudulent",
        "tok_chargeDeclinedLostCard" => "lost_card",
        "tok_chargeDeclinedStolenCard" => "stolen_card",
        _ => "generic_decline",
    }
}

fn error(kind: &str, code: Option<&str>, message: &str, param: Option<&str>) -> Value {
    let mut error = json!({"type": kind, "message": message});
    if let Some(code) = code {
        error["code"] = json!(code);
        error["doc_url"] = json!(format!("https://stripe.com/docs/error-codes/{}", code.replace('_', "-")));
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    json!({ "error": error })
}

fn missing(param: &str) -> (u16, Value) {
    invalid_param(param, &format!("Missing required param: {param}."), "parameter_missing")
}

fn invalid_param(param: &str, message: &str, code: &str) -> (u16, Value) {
    (400, error("invalid_request_error", Some(code), message, Some(param)))
}

fn random_suffix(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}
