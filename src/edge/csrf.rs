//! CSRF protection by double submission: a random token in an HttpOnly `csrf` cookie and the
//! same token in a hidden field of every form. Another site can make a browser post a form
//! (the session cookie is `SameSite=Lax`, which still sends it on a top-level POST from
//! another site in some browsers), but it can read neither the cookie nor our pages, so it
//! cannot put the token in the form. Compared in constant time.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;
use rand::RngCore;

pub const COOKIE: &str = "csrf";
/// The hidden form field.
pub const FIELD: &str = "csrf";

/// The token of this browser, and whether it is new (its cookie must then be set).
#[derive(Clone, Debug)]
pub struct Csrf {
    pub token: String,
    pub fresh: bool,
}

impl Csrf {
    /// The browser's token, or a new one.
    pub fn of(req: &HttpRequest) -> Self {
        match req.cookie(COOKIE).map(|c| c.value().to_string()).filter(|t| well_formed(t)) {
            Some(token) => Self { token, fresh: false },
            None => {
                let mut bytes = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                Self { token: hex::encode(bytes), fresh: true }
            }
        }
    }

    /// The cookie to set when the token is new.
    pub fn cookie(&self, secure: bool) -> Option<Cookie<'static>> {
        self.fresh.then(|| {
            Cookie::build(COOKIE, self.token.clone())
                .path("/")
                .http_only(true)
                .secure(secure)
                .same_site(SameSite::Lax)
                .finish()
        })
    }
}

fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a posted form carries this browser's token.
pub fn verify(req: &HttpRequest, posted: Option<&str>) -> bool {
    let (Some(cookie), Some(posted)) = (req.cookie(COOKIE), posted) else { return false };
    let cookie = cookie.value();
    well_formed(cookie) && bool::from(subtle::ConstantTimeEq::ct_eq(cookie.as_bytes(), posted.as_bytes()))
}
