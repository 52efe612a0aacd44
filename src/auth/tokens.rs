//! Access tokens (JWT HS256 with `id`, `email`, `iat`, `exp`) and the seeds' `session` cookie,
//! which carries base64 of `{"jwt":"<token>"}`.

use crate::domain::User;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub id: String,
    pub email: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn issue(&self, user: &User, lifetime_seconds: u64) -> String {
        let iat = chrono::Utc::now().timestamp();
        let claims = Claims {
            id: user.id.to_string(),
            email: user.email.as_str().to_string(),
            iat,
            exp: iat + lifetime_seconds as i64,
        };
        // HS256 signing of a small struct cannot fail; an empty token would simply not verify.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok().map(|d| d.claims)
    }
}

/// The seeds' cookie-session encoding of an access token.
pub struct SessionCookie;

#[derive(Serialize, Deserialize)]
struct CookieBody {
    jwt: String,
}

impl SessionCookie {
    pub const NAME: &'static str = "session";
    pub const REFRESH_NAME: &'static str = "refresh";

    pub fn encode(token: &str) -> String {
        let body = serde_json::json!({ "jwt": token }).to_string();
        base64::engine::general_purpose::STANDARD.encode(body)
    }

    pub fn decode(value: &str) -> Option<String> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(value.trim()).ok()?;
        serde_json::from_slice::<CookieBody>(&bytes).ok().map(|b| b.jwt)
    }
}

#[cfg(test)]
#[path = "tokens_test.rs"]
mod tests;
