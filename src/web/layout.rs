//! What every page is rendered with: who is asking and what their forms need ([`Ctx`]), the
//! navigation (what a signed-in or signed-out person can do), and the pieces of a form. The
//! document shell and the page headers are `crate::edge::page`'s (a strict
//! Content-Security-Policy: forms post only to this site or, with the Stripe gateway, to
//! Checkout).

use super::problem::{PageError, Problems};
use crate::edge::caller::{current_user, AuthUser};
use crate::edge::csrf::{self, Csrf};
use crate::edge::{page, AppState};
use crate::settings::PaymentProvider;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

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
    pub fn signed_in(&self, next: &str) -> Result<&AuthUser, PageError> {
        self.user.as_ref().ok_or_else(|| PageError::SignIn { next: next.into() })
    }

    /// A full page in the shell, answered with `status`.
    pub fn render(&self, status: StatusCode, title: &str, body: Markup) -> HttpResponse {
        let markup = page::document(title, self.nav(), body);
        let mut response = page::respond_with(status, markup, &self.form_targets);
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
        page::nav(self.user.as_ref(), &self.csrf.token)
    }
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
    let hint_id = format!("{name}-hint");
    let described: Vec<&str> =
        [attrs.hint.is_some().then_some(hint_id.as_str()), (!messages.is_empty()).then_some(error_id.as_str())]
            .into_iter()
            .flatten()
            .collect();
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value)
                required[attrs.required] autocomplete=[attrs.autocomplete] inputmode=[attrs.inputmode]
                // After a refused form the first field to fix has the focus, with or without
                // JavaScript (one `autofocus` in a page: HTML allows no more).
                autofocus[problems.first_field() == Some(name)]
                aria-invalid=[(!messages.is_empty()).then_some("true")]
                aria-describedby=[(!described.is_empty()).then(|| described.join(" "))];
            @if let Some(hint) = &attrs.hint {
                p.hint.muted id=(hint_id) { (hint) }
            }
            @if !messages.is_empty() {
                p.error id=(error_id) role="alert" {
                    @for (i, m) in messages.iter().enumerate() { @if i > 0 { " " } (m) }
                }
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
    /// What the field takes, said before anything is refused.
    pub hint: Option<String>,
}

/// The messages of a form that concern no field.
pub fn general_problems(problems: &Problems) -> Markup {
    let general = problems.general();
    html! {
        @if !general.is_empty() {
            div.problems role="alert" id="problems" tabindex="-1" {
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
