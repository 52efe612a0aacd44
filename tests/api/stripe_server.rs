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
//! * `POST /v1/checkout/sessions` opens a hosted payment page (`mode=payment`, one line item
//!   with `price_data`), answering Stripe's required-parameter errors; its `url` is this
//!   server's own `GET /pay/{session}`.
//!
//! Every API request is recorded for assertions, and [`StripeServer::fail_next`] /
//! [`StripeServer::delay_next`] inject outages.
//!
//! # The hosted payment page, for browser tests
//! `GET /pay/{session}` is a tiny HTML page showing the product (`id="product"`) and amount
//! (`id="amount"`) with a button `id="pay"` in a form that `POST`s to the same URL. Posting
//! pays like a buyer on Stripe's page ([`StripeServer::complete_checkout_session`]): a
//! succeeded charge and payment intent, and a signed `payment_intent.succeeded` webhook sent
//! to the URL given to [`StripeServer::set_webhook`]; then a `303` to the session's
//! `success_url` (`{CHECKOUT_SESSION_ID}` replaced, as Stripe does).

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

/// A Checkout Session the server opened, as it was asked for.
#[derive(Clone, Debug)]
pub struct StripeCheckoutSession {
    pub id: String,
    /// `line_items[0][price_data][unit_amount]`.
    pub amount: i64,
    pub currency: String,
    /// `line_items[0][price_data][product_data][name]`.
    pub name: String,
    pub quantity: i64,
    /// The session's `metadata[...]`.
    pub metadata: BTreeMap<String, String>,
    /// `payment_intent_data[metadata][...]`: what the payment's webhook carries.
    pub payment_intent_metadata: BTreeMap<String, String>,
    pub client_reference_id: Option<String>,
    pub success_url: String,
    pub cancel_url: Option<String>,
    /// The `expires_at` sent, if any.
    pub requested_expires_at: Option<i64>,
    /// When the session expires: the one sent, or Stripe's default of 24 hours.
    pub expires_at: i64,
    /// `http://127.0.0.1:PORT/pay/{id}`.
    pub url: String,
    /// `open`, then `complete` once paid.
    pub status: String,
    /// Set once paid.
    pub payment_intent: Option<String>,
    pub idempotency_key: Option<String>,
    /// The `payment_intent.succeeded` event of the payment, once paid (resent as is).
    event: Option<String>,
    /// The status the webhook endpoint answered to the last delivery.
    pub webhook_status: Option<u16>,
}

/// A payment intent made by paying a Checkout Session.
#[derive(Clone, Debug)]
pub struct StripePaymentIntent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub metadata: BTreeMap<String, String>,
    pub latest_charge: String,
    pub checkout_session: String,
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
    sessions: Vec<StripeCheckoutSession>,
    payment_intents: Vec<StripePaymentIntent>,
    /// Where the pay page sends its webhook, and the secret it signs with.
    webhook: Option<(String, String)>,
    /// This server's own base URL (`http://127.0.0.1:PORT/`), for session URLs.
    base_url: String,
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
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/pay/{session}", web::get().to(pay_page))
                .route("/pay/{session}", web::post().to(pay_page_submit))
                .default_service(web::to(handle))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .expect("bind the Stripe test server");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let base_url = format!("http://127.0.0.1:{port}/");
        state.lock().base_url = base_url.clone();
        Self { base_url, state, handle }
    }

    /// Where the pay page's button sends its signed webhook (the app's
    /// `/api/payments/webhook`) and the secret to sign with (the app's
    /// `payments.webhook_secret`).
    pub fn set_webhook(&self, url: &str, secret: &str) {
        self.state.lock().webhook = Some((url.to_string(), secret.to_string()));
    }

    /// Checkout Sessions opened, in order.
    pub fn checkout_sessions(&self) -> Vec<StripeCheckoutSession> {
        self.state.lock().sessions.clone()
    }

    /// Payment intents made by paying Checkout Sessions.
    pub fn payment_intents(&self) -> Vec<StripePaymentIntent> {
        self.state.lock().payment_intents.clone()
    }

    /// Pays an open session as a buyer on Stripe's page would (a succeeded charge and payment
    /// intent carrying `payment_intent_data[metadata]`) and sends a `payment_intent.succeeded`
    /// event to `webhook_url`, signed with `secret`; returns the status the endpoint answered.
    /// A session already paid sends its same event again (Stripe retrying the webhook).
    pub async fn complete_checkout_session(&self, session_id: &str, webhook_url: &str, secret: &str) -> u16 {
        complete_session(&self.state, session_id, webhook_url, secret)
            .await
            .unwrap_or_else(|e| panic!("completing checkout session {session_id}: {e}"))
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
        ("POST", "/v1/checkout/sessions") => create_checkout_session(s, r),
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
    let metadata = bracketed(&r.form, "metadata[");
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

/// Stripe's limits on a session's `expires_at`, in seconds from its creation.
const SESSION_LIFETIME: std::ops::RangeInclusive<i64> = 30 * 60..=24 * 3600;

fn create_checkout_session(s: &mut State, r: &RecordedRequest) -> (u16, Value) {
    let item = |name: &str| r.field(&format!("line_items[0]{name}"));
    let Some(mode) = r.field("mode") else {
        return missing("mode");
    };
    if mode != "payment" {
        // This server only opens one-off payments; Stripe would also take these two.
        let message = format!("Unsupported mode {mode:?} in this test server (payment only).");
        return (400, error("invalid_request_error", Some("parameter_invalid_string"), &message, Some("mode")));
    }
    let Some(success_url) = r.field("success_url") else {
        return missing("success_url");
    };
    for (param, url) in [("success_url", Some(success_url)), ("cancel_url", r.field("cancel_url"))] {
        if url.is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
            return invalid_param(param, "Not a valid URL", "url_invalid");
        }
    }
    if !r.form.iter().any(|(k, _)| k.starts_with("line_items[")) {
        return invalid_param("line_items", "`line_items` is required in `payment` mode.", "parameter_missing");
    }
    let Some(currency) = item("[price_data][currency]") else {
        return missing("line_items[0][price_data][currency]");
    };
    let Some(amount) = item("[price_data][unit_amount]") else {
        return missing("line_items[0][price_data][unit_amount]");
    };
    let Ok(amount) = amount.parse::<i64>() else {
        return invalid_param("line_items[0][price_data][unit_amount]", "Invalid integer", "parameter_invalid_integer");
    };
    let Some(name) = item("[price_data][product_data][name]") else {
        return missing("line_items[0][price_data][product_data][name]");
    };
    let Some(quantity) = item("[quantity]") else {
        return missing("line_items[0][quantity]");
    };
    let Ok(quantity) = quantity.parse::<i64>() else {
        return invalid_param("line_items[0][quantity]", "Invalid integer", "parameter_invalid_integer");
    };
    let now = chrono::Utc::now().timestamp();
    let requested_expires_at = match r.field("expires_at").map(str::parse::<i64>) {
        None => None,
        Some(Ok(at)) if SESSION_LIFETIME.contains(&(at - now)) => Some(at),
        Some(Ok(_)) => {
            let message = "The `expires_at` timestamp must be at least 30 minutes and at most 24 hours from \
                           Checkout Session creation.";
            return invalid_param("expires_at", message, "parameter_invalid_integer");
        }
        Some(Err(_)) => return invalid_param("expires_at", "Invalid integer", "parameter_invalid_integer"),
    };
    let id = format!("cs_test_{}", random_suffix(58));
    let session = StripeCheckoutSession {
        url: format!("{}pay/{id}", s.base_url),
        id,
        amount,
        currency: currency.to_string(),
        name: name.to_string(),
        quantity,
        metadata: bracketed(&r.form, "metadata["),
        payment_intent_metadata: bracketed(&r.form, "payment_intent_data[metadata]["),
        client_reference_id: r.field("client_reference_id").map(str::to_string),
        success_url: success_url.to_string(),
        cancel_url: r.field("cancel_url").map(str::to_string),
        requested_expires_at,
        expires_at: requested_expires_at.unwrap_or(now + SESSION_LIFETIME.end()),
        status: "open".into(),
        payment_intent: None,
        idempotency_key: r.idempotency_key.clone(),
        event: None,
        webhook_status: None,
    };
    let body = session_json(&session, now);
    s.sessions.push(session);
    (200, body)
}

/// The `key` → value pairs of the form fields `{prefix}key]` (`metadata[orderId]`).
fn bracketed(form: &[(String, String)], prefix: &str) -> BTreeMap<String, String> {
    form.iter().filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.strip_suffix(']')?.to_string(), v.clone()))).collect()
}

/// A `checkout.session` object as Stripe (API version 2023-10-16) returns it when created.
fn session_json(c: &StripeCheckoutSession, created: i64) -> Value {
    json!({
        "id": c.id,
        "object": "checkout.session",
        "amount_subtotal": c.amount * c.quantity,
        "amount_total": c.amount * c.quantity,
        "cancel_url": c.cancel_url,
        "client_reference_id": c.client_reference_id,
        "created": created,
        "currency": c.currency,
        "customer": null,
        "customer_email": null,
        "expires_at": c.expires_at,
        "livemode": false,
        "metadata": c.metadata,
        "mode": "payment",
        "payment_intent": c.payment_intent,
        "payment_method_types": ["card"],
        "payment_status": if c.status == "complete" { "paid" } else { "unpaid" },
        "status": c.status,
        "success_url": c.success_url,
        "ui_mode": "hosted",
        "url": c.url,
    })
}

/// Pays session `id` (once) and delivers its `payment_intent.succeeded` event to `webhook_url`.
async fn complete_session(state: &Mutex<State>, id: &str, webhook_url: &str, secret: &str) -> Result<u16, String> {
    let event = pay_session(&mut state.lock(), id)?;
    let signature = ticketing::payments::webhook::sign(event.as_bytes(), secret, chrono::Utc::now().timestamp());
    let client = reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?;
    let response = client
        .post(webhook_url)
        .header("Stripe-Signature", signature)
        .header("Content-Type", "application/json")
        .body(event)
        .send()
        .await
        .map_err(|e| format!("webhook to {webhook_url} not delivered: {e}"))?;
    let status = response.status().as_u16();
    if let Some(session) = state.lock().sessions.iter_mut().find(|c| c.id == id) {
        session.webhook_status = Some(status);
    }
    Ok(status)
}

/// The buyer pays an open session: a succeeded charge and payment intent, and the event
/// announcing them. A paid session answers its event again; an expired one cannot be paid.
fn pay_session(s: &mut State, id: &str) -> Result<String, String> {
    let now = chrono::Utc::now().timestamp();
    let index = s.sessions.iter().position(|c| c.id == id).ok_or_else(|| format!("no such session {id}"))?;
    if let Some(event) = &s.sessions[index].event {
        return Ok(event.clone());
    }
    let session = s.sessions[index].clone();
    if now >= session.expires_at {
        return Err(format!("session {id} expired"));
    }
    let charge = StripeCharge {
        id: format!("ch_{}", random_suffix(24)),
        amount: session.amount * session.quantity,
        currency: session.currency.clone(),
        source: "pm_card_visa".into(),
        metadata: session.payment_intent_metadata.clone(),
        status: "succeeded".into(),
        refunded: false,
        idempotency_key: None,
        created: now,
    };
    let intent = StripePaymentIntent {
        id: format!("pi_{}", random_suffix(24)),
        amount: charge.amount,
        currency: charge.currency.clone(),
        metadata: charge.metadata.clone(),
        latest_charge: charge.id.clone(),
        checkout_session: session.id.clone(),
    };
    let event = payment_intent_event(&intent, now).to_string();
    let paid = &mut s.sessions[index];
    paid.status = "complete".into();
    paid.payment_intent = Some(intent.id.clone());
    paid.event = Some(event.clone());
    s.charges.push(charge);
    s.payment_intents.push(intent);
    Ok(event)
}

/// The `payment_intent.succeeded` event Stripe sends once a session's payment succeeded.
fn payment_intent_event(pi: &StripePaymentIntent, created: i64) -> Value {
    json!({
        "id": format!("evt_{}", random_suffix(24)),
        "object": "event",
        "api_version": "2023-10-16",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": "payment_intent.succeeded",
        "data": {"object": {
            "id": pi.id,
            "object": "payment_intent",
            "amount": pi.amount,
            "amount_received": pi.amount,
            "capture_method": "automatic",
            "created": created,
            "currency": pi.currency,
            "latest_charge": pi.latest_charge,
            "livemode": false,
            "metadata": pi.metadata,
            "payment_method": format!("pm_{}", random_suffix(24)),
            "payment_method_types": ["card"],
            "status": "succeeded",
        }},
    })
}

/// `GET /pay/{session}`: what the buyer sees on Stripe's page, reduced to the product, the
/// amount and the pay button.
async fn pay_page(path: web::Path<String>, state: web::Data<Mutex<State>>) -> HttpResponse {
    let Some(session) = state.lock().sessions.iter().find(|c| c.id == *path).cloned() else {
        return HttpResponse::NotFound().content_type("text/html; charset=utf-8").body("<h1>No such session</h1>");
    };
    let total = session.amount * session.quantity;
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Pay {name}</title></head><body>\n\
         <h1 id=\"product\">{name}</h1>\n\
         <p id=\"amount\">{units}.{cents:02} {currency}</p>\n\
         <p id=\"status\">{status}</p>\n\
         <form id=\"pay-form\" method=\"post\" action=\"/pay/{id}\"><button id=\"pay\" type=\"submit\">Pay</button></form>\n\
         </body></html>\n",
        name = html_escape(&session.name),
        units = total / 100,
        cents = total % 100,
        currency = session.currency.to_uppercase(),
        status = session.status,
        id = session.id,
    );
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body)
}

/// `POST /pay/{session}`: the buyer pressed Pay. The webhook goes to the URL of
/// [`StripeServer::set_webhook`]; the buyer is then sent to the session's `success_url`.
async fn pay_page_submit(path: web::Path<String>, state: web::Data<Mutex<State>>) -> HttpResponse {
    let (session, webhook) = {
        let s = state.lock();
        (s.sessions.iter().find(|c| c.id == *path).cloned(), s.webhook.clone())
    };
    let Some(session) = session else {
        return HttpResponse::NotFound().content_type("text/html; charset=utf-8").body("<h1>No such session</h1>");
    };
    let Some((url, secret)) = webhook else {
        return HttpResponse::InternalServerError().body("no webhook configured: call StripeServer::set_webhook");
    };
    // Stripe redirects the buyer whatever the webhook endpoint answers (and retries it later).
    if session.event.is_none() {
        if let Err(e) = complete_session(&state, &session.id, &url, &secret).await {
            return HttpResponse::Gone().content_type("text/html; charset=utf-8").body(html_escape(&e));
        }
    }
    let location = session.success_url.replace("{CHECKOUT_SESSION_ID}", &session.id);
    HttpResponse::SeeOther().insert_header(("location", location)).finish()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
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
