//! The HTML document every page is (a skip link, the navigation, one `main` with the page's
//! single `h1`, a footer), the headers every page response carries (a strict
//! Content-Security-Policy: our own stylesheet and script only, no inline code, forms posted
//! only to this site or to the places named), and the error pages, in plain words: never raw
//! JSON, never a cause chain. The pages (`crate::web`) fill the navigation and the body; the
//! API's document page and `super::answer` use the rest.

use super::caller::{current_user, AuthUser};
use super::csrf::{self, Csrf};
use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};

/// A whole document: `nav` in the header, `body` in `main`.
pub fn document(title: &str, nav: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" class="no-js" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ticketing" }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" href="/favicon.ico" type="image/svg+xml";
                script src="/static/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header { (nav) }
                main id="main" { (body) }
                footer { p { "ticketing: a ticket you reserve is held for you while you pay." } }
            }
        }
    }
}

/// A document whose navigation does not depend on who is asking (error pages, the API's).
pub fn bare(title: &str, body: Markup) -> Markup {
    document(title, html! { nav aria-label="Main" { a.brand href="/" { "ticketing" } } }, body)
}

/// The navigation: what `user` (signed in or not) can do. `csrf_token` goes with the sign-out
/// form.
pub fn nav(user: Option<&AuthUser>, csrf_token: &str) -> Markup {
    html! {
        nav aria-label="Main" {
            a.brand href="/" { "ticketing" }
            ul {
                @if let Some(user) = user {
                    li { a href="/tickets/new" { "Sell" } }
                    li { a href="/tickets/mine" { "My tickets" } }
                    li { a href="/orders" { "My orders" } }
                    li {
                        form.inline method="post" action="/auth/signout" {
                            input type="hidden" name=(csrf::FIELD) value=(csrf_token);
                            button.link type="submit" id="signout" { "Sign out" }
                        }
                    }
                    li.who { (user.claims.email) }
                } @else {
                    li { a href="/auth/signup" { "Sign up" } }
                    li { a href="/auth/signin" { "Sign in" } }
                }
            }
        }
    }
}

/// The error page for `status` with the navigation of whoever asked (`req`), so a signed-in
/// person still looks signed in; and the CSRF cookie its sign-out form needs, if new.
pub fn error_page_for(req: &HttpRequest, status: StatusCode) -> HttpResponse {
    let csrf = Csrf::of(req);
    let user = current_user(req);
    let (title, text) = words(status);
    let mut response = respond(status, document(title, nav(user.as_ref(), &csrf.token), message(title, text)));
    let secure =
        req.app_data::<actix_web::web::Data<super::AppState>>().is_some_and(|s| s.settings.auth.secure_cookies);
    if let Some(cookie) = csrf.cookie(secure) {
        let _ = response.add_cookie(&cookie);
    }
    response
}

/// An HTML response with the page headers.
pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    respond_with(status, markup, "")
}

/// An HTML response with the page headers, its forms allowed to post to `form_targets` (origins,
/// space-separated) besides this site.
pub fn respond_with(status: StatusCode, markup: Markup, form_targets: &str) -> HttpResponse {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self' {form_targets}; base-uri 'none'; frame-ancestors 'none'"
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// The error page for `status`, in plain words (a 503 says when to come back).
pub fn error_page(status: StatusCode) -> HttpResponse {
    let (title, text) = words(status);
    message_page(status, title, text)
}

/// The title and text of the error page for `status`.
fn words(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => {
            ("Page not found", "There is nothing here. The ticket or order may have been removed.")
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            ("Busy right now", "The marketplace is busy or part of it is restarting. Nothing was done: please try again in a moment.")
        }
        StatusCode::GATEWAY_TIMEOUT => (
            "No answer in time",
            "The marketplace did not answer in time, so it may have done what you asked. Look at your orders and tickets before trying again.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("Not possible here", "This page cannot be used that way. Go back and try again.")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("Too much text", "What you sent is too long. Go back, shorten it and try again.")
        }
        StatusCode::REQUEST_TIMEOUT => ("Too slow", "The form took too long to arrive. Go back and try again."),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            ("Not allowed", "You are not allowed to do that. Sign in with the account it belongs to.")
        }
        StatusCode::TOO_MANY_REQUESTS => ("Too many tries", "Please wait a little and try again."),
        s if s.is_server_error() => ("Something went wrong", "Something went wrong on our side. Please try again."),
        _ => ("That did not work", "The request could not be handled. Go back and try again."),
    }
}

fn message(title: &str, text: &str) -> Markup {
    html! {
        h1 { (title) }
        p { (text) }
        p { a href="/" { "Back to the tickets" } }
    }
}

/// An error page with its own words.
pub fn message_page(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    let mut response = respond(status, bare(title, message(title, text)));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}
