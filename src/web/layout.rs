//! The page shell and what every page response carries: a skip link, the navigation (what a
//! signed-in or signed-out person can do), one `main` with the page's single `h1`, and the
//! security headers (a strict Content-Security-Policy: our own stylesheet and script only, no
//! inline code, forms posted only to this site or, with the Stripe gateway, to Checkout).

use super::csrf::{self, Csrf};
use super::problem::Problems;
use crate::http::extract::{current_user, AuthUser};
use crate::http::AppState;
use crate::settings::PaymentProvider;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup, DOCTYPE};

/// Who is asking, and what their forms need.
pub struct Ctx {
    pub user: Option<AuthUser>,
    pub csrf: Csrf,
    secure_cookies: bool,
    /// Where forms may lead besides this site (Stripe Checkout, with the Stripe gateway).
    form_targets: String,
}

impl Ctx {
    pub fn of(req: &HttpRequest) -> Self {
        let state = req.app_data::<web::Data<AppState>>();
        let secure_cookies = state.is_some_and(|s| s.settings.auth.secure_cookies);
        let form_targets = match state {
            Some(s) if s.settings.payments.provider == PaymentProvider::Stripe => {
                format!("https://checkout.stripe.com {}", origin(&s.settings.payments.stripe_api_base))
            }
            _ => String::new(),
        };
        Self { user: current_user(req), csrf: Csrf::of(req), secure_cookies, form_targets }
    }

    /// The signed-in user, or off to sign in and back to `next`.
    pub fn signed_in(&self, next: &str) -> Result<&AuthUser, super::problem::PageError> {
        self.user.as_ref().ok_or_else(|| super::problem::PageError::SignIn { next: next.into() })
    }

    /// A full page in the shell, answered with `status`.
    pub fn render(&self, status: StatusCode, title: &str, body: Markup) -> HttpResponse {
        let markup = shell(title, self.nav(), body);
        let mut response = respond_with(status, markup, &self.form_targets);
        if let Some(cookie) = self.csrf.cookie(self.secure_cookies) {
            let _ = response.add_cookie(&cookie);
        }
        response
    }

    /// The hidden field every form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(csrf::FIELD) value=(self.csrf.token); }
    }

    fn nav(&self) -> Markup {
        html! {
            nav aria-label="Main" {
                a.brand href="/" { "ticketing" }
                ul {
                    @if let Some(user) = &self.user {
                        li { a href="/tickets/new" { "Sell a ticket" } }
                        li { a href="/tickets/mine" { "My tickets" } }
                        li { a href="/orders" { "My orders" } }
                        li {
                            form.inline method="post" action="/auth/signout" {
                                (self.csrf_field())
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
}

/// An error page's shell: no navigation that depends on who is asking.
pub fn bare(title: &str, body: Markup) -> Markup {
    shell(title, html! { nav aria-label="Main" { a.brand href="/" { "ticketing" } } }, body)
}

fn shell(title: &str, nav: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" class="no-js" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ticketing" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/countdown.js" defer {}
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

/// An HTML response with the page headers.
pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    respond_with(status, markup, "")
}

fn respond_with(status: StatusCode, markup: Markup, form_targets: &str) -> HttpResponse {
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

/// After a successful POST: see the result at `to` (a reload does not post again).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, to.to_string())).finish()
}

/// A labelled input with its messages, tied to it for screen readers.
pub fn field(problems: &Problems, name: &str, label: &str, kind: &str, value: &str, attrs: FieldAttrs) -> Markup {
    let messages = problems.on(name);
    let id = format!("{name}-field");
    let error_id = format!("{name}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value)
                required[attrs.required] autocomplete=[attrs.autocomplete] inputmode=[attrs.inputmode]
                aria-invalid=[(!messages.is_empty()).then_some("true")]
                aria-describedby=[(!messages.is_empty()).then_some(error_id.as_str())];
            @if !messages.is_empty() {
                p.error id=(error_id) role="alert" { @for m in &messages { (m) " " } }
            }
        }
    }
}

/// The optional attributes of an input.
#[derive(Default)]
pub struct FieldAttrs {
    pub required: bool,
    pub autocomplete: Option<&'static str>,
    pub inputmode: Option<&'static str>,
}

/// The messages of a form that concern no field.
pub fn general_problems(problems: &Problems) -> Markup {
    let general = problems.general();
    html! {
        @if !general.is_empty() {
            div.problems role="alert" id="problems" {
                @for m in &general { p { (m) } }
            }
        }
    }
}

/// `scheme://host:port` of a URL (for the CSP).
fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return String::new() };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(['\'', ';', ' ']) {
        return String::new();
    }
    format!("{scheme}://{host}")
}
