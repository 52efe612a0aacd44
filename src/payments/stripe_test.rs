//! Unit tests of `stripe`.

use super::*;

fn request_error(http_status: u16, error_type: ErrorType, code: Option<ErrorCode>) -> RequestError {
    RequestError { http_status, error_type, message: Some("message".into()), code, ..RequestError::default() }
}

#[test]
fn base_urls_with_and_without_a_trailing_slash_are_both_accepted() {
    assert_eq!(check_api_base("http://127.0.0.1:4242").unwrap(), "http://127.0.0.1:4242/");
    assert_eq!(check_api_base("http://127.0.0.1:4242/").unwrap(), "http://127.0.0.1:4242/");
    assert_eq!(check_api_base("https://api.stripe.com/").unwrap(), "https://api.stripe.com/");
}

#[test]
fn base_urls_whose_path_async_stripe_would_drop_are_refused() {
    for bad in ["https://proxy/stripe/", "http://h/?x=1", "ftp://h/", "api.stripe.com", "", "not a url"] {
        assert!(check_api_base(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn an_unusable_base_url_does_not_panic_and_fails_every_call() {
    let gateway = StripeGateway::new("not a url", "sk_test_x");
    assert!(gateway.client.is_err());
    assert!(StripeGateway::try_new("not a url", "sk_test_x").is_err());
}

#[test]
fn an_error_code_async_stripe_does_not_know_makes_the_whole_error_body_undecodable() {
    // Why `JSONSerialize` is treated as "outcome unknown" rather than as a bad answer:
    // async-stripe 0.41's `ErrorCode` has no catch-all, so a decline with a newer code
    // loses its status and type entirely.
    let known = r#"{"type":"card_error","code":"card_declined","message":"Your card was declined."}"#;
    assert!(serde_json::from_str::<RequestError>(known).is_ok());
    let newer = r#"{"type":"card_error","code":"authentication_required","message":"..."}"#;
    assert!(serde_json::from_str::<RequestError>(newer).is_err());
}

#[test]
fn declines_rejections_and_outages_are_told_apart() {
    let card = request_error(402, ErrorType::Card, Some(ErrorCode::CardDeclined));
    assert!(matches!(classify_request_error(&card), Failure::Declined(m) if m == "message"));
    let missing = request_error(400, ErrorType::InvalidRequest, Some(ErrorCode::ResourceMissing));
    assert!(matches!(classify_request_error(&missing), Failure::Rejected(_)));
    let outage = request_error(500, ErrorType::Api, None);
    assert!(matches!(classify_request_error(&outage), Failure::Transient(_)));
    let busy = request_error(409, ErrorType::IdempotencyError, Some(ErrorCode::IdempotencyKeyInUse));
    assert!(matches!(classify_request_error(&busy), Failure::Transient(_)));
    let reused = request_error(400, ErrorType::IdempotencyError, None);
    assert!(matches!(classify_request_error(&reused), Failure::Unavailable(_)));
    let auth = request_error(401, ErrorType::Authentication, None);
    assert!(matches!(classify_request_error(&auth), Failure::Unavailable(_)));
    assert!(matches!(classify(&StripeError::ClientError("refused".into())), Failure::Transient(_)));
}

#[test]
fn a_checkout_session_closes_with_its_order_only_where_stripe_allows_it() {
    let now = 1_700_000_000_000;
    let minutes = |m: i64| now + m * 60_000 + 999;
    assert_eq!(checkout_expiry(minutes(15), now), None, "under Stripe's 30-minute minimum");
    assert_eq!(checkout_expiry(minutes(30), now), None, "no margin for the time to reach Stripe");
    assert_eq!(checkout_expiry(minutes(60), now), Some((now + 60 * 60_000) / 1000), "rounded down, never later");
    assert_eq!(checkout_expiry(minutes(25 * 60), now), None, "past 24 hours Stripe's default comes first");
}
