//! Unit tests of `tokens`.

use super::*;
use crate::domain::{Email, UserId};

fn user() -> User {
    User {
        id: UserId::new_in(crate::domain::Slot(1)),
        email: Email::parse("a@b.co").unwrap(),
        password_hash: String::new(),
        created_at_ms: 0,
    }
}

#[test]
fn issued_tokens_verify_with_the_same_secret_only() {
    let keys = JwtKeys::new(b"0123456789abcdef0123");
    let token = keys.issue(&user(), 60);
    assert_eq!(keys.verify(&token).unwrap().email, "a@b.co");
    assert!(JwtKeys::new(b"another-secret-0123456").verify(&token).is_none());
    assert!(keys.verify("garbage").is_none());
}

#[test]
fn expired_tokens_do_not_verify() {
    let keys = JwtKeys::new(b"0123456789abcdef0123");
    let now = chrono::Utc::now().timestamp();
    let claims = Claims { id: "x".into(), email: "a@b.co".into(), iat: now - 100, exp: now - 10 };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
    assert!(keys.verify(&token).is_none());
}

#[test]
fn session_cookies_round_trip_and_reject_garbage() {
    let v = SessionCookie::encode("abc.def.ghi");
    assert_eq!(SessionCookie::decode(&v).as_deref(), Some("abc.def.ghi"));
    assert!(SessionCookie::decode("%%%").is_none());
}
