//! The node's HTTP surface in one place: the middleware every request passes, in order, and
//! every route, the JSON API's (`crate::http`) and the pages' (`crate::web`). The one module
//! that names both; they share only `crate::edge`, below them.
//!
//! A request goes, outermost first, through:
//! 1. `edge::answer`: whatever goes wrong below is answered in the shape the client asked for
//!    (JSON, or an HTML page for a browser outside `/api`);
//! 2. `edge::observe`: the in-flight bound (503 past it), the span, the metrics, the panic
//!    guard;
//! 3. `edge::session::renew`: an expired access cookie renewed from the refresh cookie;
//! 4. `edge::body_deadline`: the body read in time (408) and under the limit (413);
//! 5. `http::idempotency`: a POST with an `Idempotency-Key` made once;
//!
//! then its route, or the 404 of an unknown path.

use crate::edge::{self, ApiError, AppState};
use crate::{http, web};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::web::{Data, JsonConfig, PathConfig, PayloadConfig, QueryConfig, ServiceConfig};
use actix_web::{App, HttpResponse};

/// The whole HTTP application of a node, for one server worker.
pub fn app(
    state: Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(from_fn(http::idempotency::idempotency))
        .wrap(from_fn(edge::body_deadline::body_deadline))
        .wrap(from_fn(edge::session::renew))
        .wrap(from_fn(edge::observe::observe))
        .wrap(from_fn(edge::answer::in_the_asked_shape))
        .configure(|cfg| routes(cfg, state))
}

/// Every route, the extractors' limits and refusals, and the 404 of an unknown path.
fn routes(cfg: &mut ServiceConfig, state: Data<AppState>) {
    let limit = state.settings.http.body_limit_bytes;
    let fault_injection = state.settings.testing.fault_injection;
    let admin_enabled = !state.settings.admin.token.is_empty();
    cfg.app_data(state)
        .app_data(JsonConfig::default().limit(limit))
        .app_data(PayloadConfig::default().limit(limit))
        .app_data(QueryConfig::default().error_handler(|e, _| ApiError::bad_request(query_refused(&e)).into()))
        .app_data(PathConfig::default().error_handler(|_, _| ApiError::NotFound.into()))
        .configure(http::health::routes)
        .configure(http::users::routes)
        .configure(http::tickets::routes)
        .configure(http::orders::routes)
        .configure(http::payments::routes)
        .configure(http::openapi::routes)
        .configure(web::routes);
    if admin_enabled {
        cfg.configure(http::admin::routes).configure(http::admin_page::routes);
    }
    if fault_injection {
        cfg.configure(http::testing::routes);
    }
    cfg.default_service(actix_web::web::to(|| async { Err::<HttpResponse, _>(ApiError::NotFound) }));
}

/// A query string that does not fit its request, in words for its caller: serde's own
/// message names the parameters it expected as Rust would.
fn query_refused(error: &actix_web::error::QueryPayloadError) -> String {
    let text = error.to_string();
    let unknown = text.split_once("unknown field `").and_then(|(_, rest)| rest.rsplit_once("`, expected"));
    match unknown {
        Some((name, _)) if !name.is_empty() => format!("{name} is not a parameter of this request"),
        Some(_) => "A query parameter has no name".to_string(),
        None => text.trim_start_matches("Query deserialize error: ").to_string(),
    }
}
