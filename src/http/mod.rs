//! The HTTP edge: a thin JSON adapter over the application layer (`crate::app`). Handlers
//! parse a request into typed values, call one use case, and shape the response; no domain
//! rule, storage access or actor lives here (`tests/api/architecture.rs` checks it).

pub mod admin;
mod admin_page;
pub mod body_deadline;
pub mod error;
pub mod extract;
mod health;
pub mod idempotency;
pub mod openapi;
pub mod orders;
pub mod payments;
pub mod session;
mod testing;
pub mod tickets;
pub mod users;

use crate::app::App;
use crate::settings::Settings;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next};
use actix_web::{web, HttpResponse};
use error::{error_body, ApiError};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Everything a handler may use, shared by all workers.
pub struct AppState {
    pub settings: Settings,
    pub app: Arc<App>,
    /// Requests being served now (bounded by `http.max_in_flight`).
    pub in_flight: AtomicUsize,
}

impl AppState {
    pub fn new(settings: Settings, app: Arc<App>) -> Self {
        Self { settings, app, in_flight: AtomicUsize::new(0) }
    }

    /// Admits one more request if the node is under its bound; the guard lets it go.
    fn admit(&self) -> Option<InFlight<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(&self.in_flight);
        (before < self.settings.http.max_in_flight).then_some(guard)
    }
}

/// One admitted request, counted until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Registers every route and the error boundary on an `App`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let limit = state.settings.http.body_limit_bytes;
        let fault_injection = state.settings.testing.fault_injection;
        let admin_enabled = !state.settings.admin.token.is_empty();
        cfg.app_data(state)
            .app_data(web::JsonConfig::default().limit(limit))
            .app_data(web::PayloadConfig::default().limit(limit))
            .app_data(web::QueryConfig::default().error_handler(|e, _| ApiError::bad_request(e.to_string()).into()))
            .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()))
            .configure(health::routes)
            .configure(users::routes)
            .configure(tickets::routes)
            .configure(orders::routes)
            .configure(payments::routes)
            .configure(openapi::routes)
            .configure(crate::web::routes);
        if admin_enabled {
            cfg.configure(admin::routes).configure(admin_page::routes);
        }
        if fault_injection {
            cfg.configure(testing::routes);
        }
        cfg.default_service(web::to(|req: actix_web::HttpRequest| async move {
            if crate::web::is_page(req.path()) {
                return Err(crate::web::problem::PageError::NotFound.into());
            }
            Err::<HttpResponse, actix_web::Error>(ApiError::NotFound.into())
        }));
    }
}

/// Turns any error response that is not already ours (405 from routing, 413 from the payload
/// limit, a 500 from actix) into the API's JSON error format, or on a page into an error page.
pub fn json_errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let ours = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
        if ours {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        if crate::web::is_page(res.request().path()) {
            let (req, _) = res.into_parts();
            let page = crate::web::problem::status_page(status);
            return Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, page).map_into_right_body()));
        }
        let message = match status {
            StatusCode::NOT_FOUND => "Not Found",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large",
            StatusCode::UNAUTHORIZED => "Not authorized",
            s if s.is_server_error() => "Something went wrong",
            _ => status.canonical_reason().unwrap_or("Bad request"),
        };
        let (req, _) = res.into_parts();
        let response = HttpResponse::build(status).json(error_body(message));
        Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, response).map_into_right_body()))
    })
}

/// Per request: the node's in-flight bound (past it, 503 + Retry-After at once; probes are
/// exempt), `HEAD` served as `GET`, a tracing span, the metrics, and a panic guard so that a
/// bug answers a JSON 500 instead of dropping the connection.
pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let probe = matches!(req.path(), "/healthz" | "/readyz" | "/metrics");
    let _admitted = match &state {
        Some(state) if !probe => match state.admit() {
            Some(admitted) => Some(admitted),
            None => {
                state.app.metrics().shed("node");
                if crate::web::is_page(req.path()) {
                    return Err(crate::web::problem::PageError::Unavailable.into());
                }
                return Err(ApiError::Unavailable.into());
            }
        },
        _ => None,
    };
    let started = Instant::now();
    // Known methods only: a label per made-up method would grow the metrics without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m.to_string(),
        _ => "other".to_string(),
    };
    // `HEAD` on any `GET` route answers as `GET` would: routed as a `GET`, while the HTTP
    // codec, which saw `HEAD`, sends the headers only.
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let metrics = state.as_ref().map(|s| s.app.metrics().clone());
    // The caller's request id if it sent a sane one, else a new one; logged on every line of
    // the request, sent back, and carried to another node with a forwarded request. Probes
    // (a scraper's, a load balancer's) go without: they are the cheapest requests there are.
    let request_id = if probe {
        String::new()
    } else {
        req.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| format!("{:016x}", rand::random::<u64>()), str::to_string)
    };
    let span = tracing::info_span!("request", %method, %route, %request_id, status = tracing::field::Empty);
    let call = crate::observability::REQUEST_ID.scope(request_id.clone(), next.call(req));
    let outcome = AssertUnwindSafe(call.instrument(span.clone())).catch_unwind().await;
    let status = match &outcome {
        Ok(Ok(res)) => res.status(),
        Ok(Err(e)) => e.as_response_error().status_code(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    span.record("status", status.as_u16());
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::debug!(parent: &span, status = status.as_u16(), took_ms, "request completed");
    if let Some(metrics) = metrics {
        metrics.request(&method, &route, status.as_u16(), started.elapsed());
    }
    match outcome {
        Ok(Ok(mut res)) => {
            if request_id.is_empty() {
                return Ok(res);
            }
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&request_id) {
                res.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), value);
            }
            Ok(res)
        }
        Ok(Err(e)) => Err(e),
        Err(_) => {
            tracing::error!(parent: &span, "request handler panicked");
            Err(ApiError::internal("handler panicked").into())
        }
    }
}
