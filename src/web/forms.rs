//! A posted form (`application/x-www-form-urlencoded`), checked for its CSRF token before any
//! field is read.

use super::layout::Ctx;
use super::problem::PageError;
use crate::edge::caller::AuthUser;
use crate::edge::csrf;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use std::collections::HashMap;

/// The field and value a [`Confirmation`] page's form posts.
const CONFIRMED: (&str, &str) = ("confirm", "yes");

pub struct Form(HashMap<String, String>);

impl Form {
    /// Reads the body as a form; refuses it without this browser's CSRF token.
    pub fn read(req: &HttpRequest, body: &web::Bytes) -> Result<Self, PageError> {
        let fields: HashMap<String, String> = serde_urlencoded::from_bytes(body).map_err(|_| PageError::BadForm)?;
        if !csrf::verify(req, fields.get(csrf::FIELD).map(String::as_str)) {
            return Err(PageError::Forbidden);
        }
        Ok(Self(fields))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether it was posted from a [`Confirmation`] page.
    pub fn confirmed(&self) -> bool {
        self.get(CONFIRMED.0) == Some(CONFIRMED.1)
    }
}

/// A page that asks before an action that cannot be undone (it works without JavaScript): its
/// form posts the confirmation to `action`; its link keeps things as they are.
pub struct Confirmation<'a> {
    pub title: &'a str,
    pub question: Markup,
    pub consequence: &'a str,
    pub action: String,
    /// The button's id and words.
    pub confirm: (&'a str, &'a str),
    /// The way back: its address and words.
    pub keep: (String, &'a str),
}

impl Confirmation<'_> {
    pub fn render(self, ctx: &Ctx) -> HttpResponse {
        let body = html! {
            h1 { (self.question) }
            p { (self.consequence) }
            form method="post" action=(self.action) {
                (ctx.csrf_field())
                input type="hidden" name=(CONFIRMED.0) value=(CONFIRMED.1);
                div.actions {
                    button.danger type="submit" id=(self.confirm.0) { (self.confirm.1) }
                    a href=(self.keep.0) id="keep" { (self.keep.1) }
                }
            }
        };
        ctx.render(StatusCode::OK, self.title, body)
    }
}

/// A form posted by a signed-in user: its fields (the CSRF token checked first), who is
/// asking, and the user; with nobody signed in, off to sign in and then back to `back`.
pub fn posted_by_user(req: &HttpRequest, body: &web::Bytes, back: &str) -> Result<(Form, Ctx, AuthUser), PageError> {
    let form = Form::read(req, body)?;
    let ctx = Ctx::of(req);
    let user = ctx.signed_in(back)?.clone();
    Ok((form, ctx, user))
}

/// Where to go after signing in: a path of this site only (never `//host` or a URL).
/// Only visible ASCII counts: browsers drop tabs and newlines from a `Location`, which would
/// turn `/<tab>/evil.test` into `//evil.test`.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && p.bytes().all(|b| b.is_ascii_graphic())
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.contains("://") =>
        {
            p.into()
        }
        _ => "/".into(),
    }
}
