//! Every error answer leaves in the shape its client asked for (`super::shape`), whoever made
//! it: a route's handler, an extractor (a body over the limit, a malformed path), a middleware
//! (the body deadline, the overload shedding, a panic), or the 404 of an unknown path. The
//! outermost middleware, so it sees them all, errors returned by other middleware included.
//!
//! An error answer already in the asked shape is kept as it is (the API's specific words and
//! fields, a page's own text). One in the other shape, or a bare status, is answered again in
//! the asked one, with the same status: the API's error body with the words for that status,
//! or the error page for it. A response a handler built itself (a form shown again with its
//! problems, the readiness report) is its route's answer and is left alone.

use super::error::{error_body, status_message};
use super::page;
use super::shape::Shape;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use std::fmt;

/// The middleware (module doc).
pub async fn in_the_asked_shape(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    // Decided before the call: a middleware's error comes back without its request.
    let shape = Shape::of(req.request());
    match next.call(req).await {
        Ok(res) => {
            let made_from_error = res.response().error().is_some();
            let (req, res) = res.into_parts();
            if shape == Shape::Html && made_from_error && res.status() == StatusCode::NOT_FOUND {
                // With the asker's navigation: a signed-in person must not look signed out.
                let page = page::error_page_for(&req, StatusCode::NOT_FOUND);
                return Ok(ServiceResponse::new(
                    req,
                    kept_headers(&res, page).map_into_boxed_body().map_into_right_body(),
                ));
            }
            Ok(ServiceResponse::new(req, reshaped(shape, res, made_from_error)))
        }
        Err(error) => Err(Shaped { error, shape }.into()),
    }
}

/// An error a middleware returned, answered in the shape its request asked for.
struct Shaped {
    error: actix_web::Error,
    shape: Shape,
}

impl fmt::Debug for Shaped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (answered as {:?})", self.error, self.shape)
    }
}

impl fmt::Display for Shaped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for Shaped {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        reshaped(self.shape, self.error.error_response(), true).map_into_boxed_body()
    }
}

/// `res` if it is no error, or an error answer in the asked shape already, or a handler's own
/// answer; else the same status answered again in the asked shape.
fn reshaped<B: MessageBody + 'static>(
    shape: Shape,
    res: HttpResponse<B>,
    made_from_error: bool,
) -> HttpResponse<EitherBody<B, BoxBody>> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res.map_into_left_body();
    }
    let keep = match body_shape(&res) {
        Some(body) if body == shape => true,
        // The other shape: an error's answer is reshaped, a handler's own response is kept.
        Some(_) => !made_from_error,
        None => false,
    };
    if keep {
        return res.map_into_left_body();
    }
    let new = match shape {
        Shape::Json => HttpResponse::build(status).json(error_body(status_message(status))),
        Shape::Html => page::error_page(status),
    };
    kept_headers(&res, new).map_into_boxed_body().map_into_right_body()
}

/// `new`, answering instead of `res`, with what `res` said besides its body.
fn kept_headers<B>(res: &HttpResponse<B>, mut new: HttpResponse) -> HttpResponse {
    for name in [header::RETRY_AFTER, header::SET_COOKIE, header::HeaderName::from_static("x-request-id")] {
        let values: Vec<_> = res.headers().get_all(&name).cloned().collect();
        // Cookies add up (the new page may set its own); the others are the first answer's.
        if !values.is_empty() && name != header::SET_COOKIE {
            new.headers_mut().remove(&name);
        }
        for value in values {
            new.headers_mut().append(name.clone(), value);
        }
    }
    if res.head().connection_type() == ConnectionType::Close {
        new.head_mut().set_connection_type(ConnectionType::Close);
    }
    new
}

/// The shape of a response's body, by its content type; `None` for anything else (a bare
/// status, actix's plain-text errors).
fn body_shape<B>(res: &HttpResponse<B>) -> Option<Shape> {
    let content_type = res.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    if content_type.starts_with("application/json") {
        Some(Shape::Json)
    } else if content_type.starts_with("text/html") {
        Some(Shape::Html)
    } else {
        None
    }
}
