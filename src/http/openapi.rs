//! The published contract: an OpenAPI 3.1 document generated from the route handlers' own
//! `#[utoipa::path]` attributes and the view models' schemas, served at `/api/openapi.json`,
//! with a browsable page at `/api/docs` (server-rendered, no script). Conventions the schema
//! cannot say are in `docs/api.md`.
//!
//! Every operation also documents the API's error answers (one rule, applied here rather than
//! repeated on every handler): the statuses any request can meet (400, 408, 413, 429, 500, 503,
//! 504) and those of its kind (401 where a user or admin is needed, 404 where a path names an
//! entity, 409/422 where an `Idempotency-Key` applies, 507 where the API writes).

use super::schemas::{
    Credentials, CurrentUser, CurrentUserClaims, EmailBody, ErrorBody, ErrorEntry, MessageBody, NewOrder, NewPayment,
    PaymentView, ResetBody, TicketDraftBody, UserView,
};
use crate::edge::page;
use crate::json::{OrderTicketView, OrderView, TicketView};
use actix_web::{web, HttpResponse};
use maud::html;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketing",
        description = "A ticket marketplace: sell tickets, reserve one, pay within the order window.",
        contact(name = "ticketing"),
        license(name = "MIT")
    ),
    paths(
        super::users::signup,
        super::users::signin,
        super::users::signout,
        super::users::current_user,
        super::users::refresh,
        super::users::request_password_reset,
        super::users::reset_password,
        super::tickets::create,
        super::tickets::list,
        super::ticket_stream::stream,
        super::tickets::show,
        super::tickets::update,
        super::tickets::withdraw,
        super::orders::create,
        super::orders::list,
        super::orders::show,
        super::orders::cancel,
        super::payments::pay,
        super::payments::stripe_webhook,
        super::health::healthz,
        super::health::readyz,
        super::health::metrics,
        super::admin::list,
        super::admin::show,
        super::admin::passivate,
        super::admin::cluster,
        super::admin::ticket_history,
        super::admin::order_history
    ),
    components(schemas(
        ErrorBody,
        ErrorEntry,
        Credentials,
        EmailBody,
        ResetBody,
        MessageBody,
        UserView,
        CurrentUser,
        CurrentUserClaims,
        TicketDraftBody,
        NewOrder,
        NewPayment,
        PaymentView,
        TicketView,
        OrderView,
        OrderTicketView
    ))
)]
struct ApiDoc;

/// The document (built once: it depends only on the code).
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(build)
}

/// The handlers' document, with the error answers added to every operation.
fn build() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "admin",
        SecurityScheme::Http(
            HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("The admin token")).build(),
        ),
    );
    components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("session"))));
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            // Handlers of different modules share names (`create`, `list`): the id says both.
            operation.operation_id = Some(operation_id(method, path));
            add_error_responses(path, method, operation);
        }
    }
    doc
}

/// `get_api_tickets_id` for `GET /api/tickets/{id}`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    format!("{method}_{}", words.join("_"))
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("post", item.post.as_mut()),
        ("put", item.put.as_mut()),
        ("delete", item.delete.as_mut()),
        ("head", item.head.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, o)| o.map(|o| (m, o)))
    .collect()
}

fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))))
                .build(),
        )
        .into()
}

fn add_error_responses(path: &str, method: &str, operation: &mut Operation) {
    let probe = matches!(path, "/healthz" | "/readyz" | "/metrics");
    let mut statuses: Vec<(&str, &str)> = vec![("500", "A server fault (generic message)")];
    if !probe {
        statuses.extend([
            ("400", "Validation or a business rule refused the request (every failure listed)"),
            ("408", "The request's body did not arrive in time"),
            ("413", "The body is over the configured limit"),
            ("503", "Overloaded, or the owning node is unreachable: retry after `Retry-After`"),
            ("504", "The owning node did not answer in time; the request may have run"),
        ]);
    }
    let public = matches!(
        (method, path),
        ("get", "/api/tickets" | "/api/tickets/{id}" | "/api/users/currentuser")
            | ("post", "/api/users/signup" | "/api/users/signin" | "/api/users/signout" | "/api/payments/webhook")
    );
    if !public && !probe {
        statuses.push(("401", "Not signed in, or not the owner (`Not authorized`)"));
    }
    if path.contains('{') || path == "/api/orders" || path == "/api/payments" {
        statuses.push(("404", "No such entity (an unknown or malformed id)"));
    }
    if method == "post" && !probe {
        statuses.push(("409", "A request with this `Idempotency-Key` is still running"));
        statuses.push(("422", "This `Idempotency-Key` was used with another request"));
    }
    if matches!(method, "post" | "put" | "delete") && !probe && !path.starts_with("/admin") {
        statuses.push(("507", "The node's disk is full: nothing was changed; retry after `Retry-After`"));
    }
    if path == "/api/users/signin" {
        statuses.push(("429", "Too many failed sign-ins: retry after `Retry-After`"));
    }
    if path == "/api/payments" {
        statuses.push(("402", "The card was declined; the order stays payable"));
    }
    for (status, description) in statuses {
        operation.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description));
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(openapi_json)).route("/api/docs", web::get().to(docs_page));
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

/// The document as a page: every operation with its summary, parameters and answers.
async fn docs_page() -> HttpResponse {
    let doc = document();
    let body = html! {
        h1 { "The ticketing API" }
        p { "The machine-readable document is at " a href="/api/openapi.json" { "/api/openapi.json" } " (OpenAPI 3.1); conventions are in the repository's docs/api.md." }
        @for (path, item) in &doc.paths.paths {
            @for (method, operation) in [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("DELETE", &item.delete)] {
                @if let Some(operation) = operation {
                    section.card {
                        h2 { code { (method) " " (path) } }
                        @if let Some(summary) = &operation.summary { p { (summary) } }
                        @if let Some(description) = &operation.description { p.muted { (description) } }
                        dl.facts {
                            @for (status, response) in &operation.responses.responses {
                                dt { (status) }
                                dd { @match response { RefOr::T(r) => { (r.description) }, RefOr::Ref(r) => { (r.ref_location) } } }
                            }
                        }
                    }
                }
            }
        }
    };
    page::respond(actix_web::http::StatusCode::OK, page::bare("API", body))
}
