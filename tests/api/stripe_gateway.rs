//! `StripeGateway` (the real async-stripe client) against the local Stripe-compatible server.

use crate::stripe_server::StripeServer;
use std::time::{Duration, Instant};
use ticketing::payments::stripe::{StripeGateway, MAX_ATTEMPTS};
use ticketing::payments::RefundOutcome;
use ticketing::payments::{Charge, ChargeOutcome, PaymentGateway};

const SECRET: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";

fn gateway(server: &StripeServer) -> StripeGateway {
    StripeGateway::new(&server.base_url, SECRET)
}

fn charge(token: &str, key: &str) -> Charge {
    Charge {
        amount_cents: 2550,
        currency: "usd".into(),
        token: token.into(),
        idempotency_key: key.into(),
        order_id: format!("order-{key}"),
    }
}

fn charge_id(outcome: ChargeOutcome) -> String {
    match outcome {
        ChargeOutcome::Succeeded { charge_id } => charge_id,
        other => panic!("expected a successful charge, got {other:?}"),
    }
}

#[actix_web::test]
async fn a_visa_charge_succeeds_and_stripe_sees_cents_usd_the_token_the_key_the_order_and_the_secret() {
    let server = StripeServer::start().await;
    let outcome = gateway(&server).charge(charge("tok_visa", "order-1:1")).await.unwrap();

    let id = charge_id(outcome);
    assert!(id.starts_with("ch_"), "{id}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str(), r.status), ("POST", "/v1/charges", 200));
    assert_eq!(r.field("amount"), Some("2550"));
    assert_eq!(r.field("currency"), Some("usd"));
    assert_eq!(r.field("source"), Some("tok_visa"));
    assert_eq!(r.field("metadata[orderId]"), Some("order-order-1:1"));
    assert_eq!(r.idempotency_key.as_deref(), Some("order-1:1"));
    assert_eq!(r.authorization.as_deref(), Some(format!("Bearer {SECRET}").as_str()));
    assert_eq!(r.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert!(r.stripe_version.is_some(), "async-stripe pins an API version");
    let charges = server.succeeded_charges();
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0].id, id);
    assert_eq!(charges[0].amount, 2550);
    assert_eq!(charges[0].idempotency_key.as_deref(), Some("order-1:1"));
}

#[actix_web::test]
async fn a_base_url_without_a_trailing_slash_reaches_the_same_paths() {
    let server = StripeServer::start().await;
    let gateway = StripeGateway::new(server.base_url.trim_end_matches('/'), SECRET);
    charge_id(gateway.charge(charge("tok_mastercard", "k")).await.unwrap());
    assert_eq!(server.requests()[0].path, "/v1/charges");
}

#[actix_web::test]
async fn the_same_idempotency_key_twice_makes_one_charge_and_answers_the_same_charge_id() {
    let server = StripeServer::start().await;
    let gateway = gateway(&server);
    let first = charge_id(gateway.charge(charge("tok_visa", "order-2:1")).await.unwrap());
    let second = charge_id(gateway.charge(charge("tok_visa", "order-2:1")).await.unwrap());

    assert_eq!(first, second);
    assert_eq!(server.charges().len(), 1);
    assert_eq!(server.requests_to("/v1/charges").len(), 2);
    let third = charge_id(gateway.charge(charge("tok_visa", "order-2:2")).await.unwrap());
    assert_ne!(third, first, "a new attempt number is a new charge");
    assert_eq!(server.charges().len(), 2);
}

#[actix_web::test]
async fn a_declined_card_is_declined_with_stripes_message_and_stays_declined_on_replay() {
    let server = StripeServer::start().await;
    let gateway = gateway(&server);
    let outcome = gateway.charge(charge("tok_chargeDeclined", "order-3:1")).await.unwrap();

    assert_eq!(outcome, ChargeOutcome::Declined { reason: "Your card was declined.".into() });
    assert_eq!(server.requests()[0].status, 402);
    assert_eq!(server.requests().len(), 1, "a decline is final: no retry");
    assert!(server.succeeded_charges().is_empty());
    let again = gateway.charge(charge("tok_chargeDeclined", "order-3:1")).await.unwrap();
    assert!(matches!(again, ChargeOutcome::Declined { .. }), "{again:?}");
    assert_eq!(server.charges().len(), 1, "the replay made no new (failed) charge");
}

#[actix_web::test]
async fn a_token_stripe_does_not_know_is_rejected() {
    let server = StripeServer::start().await;
    let outcome = gateway(&server).charge(charge("tok_no-such-token", "order-4:1")).await.unwrap();

    match outcome {
        ChargeOutcome::Rejected { reason } => assert!(reason.contains("No such token"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 1, "a 400 is final: no retry");
    assert_eq!(server.requests()[0].status, 400);
    assert!(server.charges().is_empty());
}

#[actix_web::test]
async fn a_string_that_is_not_a_token_is_rejected_without_calling_stripe() {
    let server = StripeServer::start().await;
    let outcome = gateway(&server).charge(charge("4242424242424242", "order-5:1")).await.unwrap();

    assert!(matches!(outcome, ChargeOutcome::Rejected { .. }), "{outcome:?}");
    assert!(server.requests().is_empty());
}

#[actix_web::test]
async fn two_500s_then_success_is_one_charge_and_every_attempt_carries_the_same_key() {
    let server = StripeServer::start().await;
    server.fail_next(2);
    let outcome = gateway(&server).charge(charge("tok_visa", "order-6:1")).await.unwrap();

    let id = charge_id(outcome);
    let requests = server.requests();
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 500, 200]);
    assert!(requests.iter().all(|r| r.idempotency_key.as_deref() == Some("order-6:1")), "{requests:?}");
    assert!(requests.iter().all(|r| r.form == requests[0].form), "every attempt is the same request");
    assert_eq!(server.charges().len(), 1);
    assert_eq!(server.charges()[0].id, id);
}

#[actix_web::test]
async fn persistent_500s_are_a_gateway_error_after_a_few_attempts_and_charge_nothing() {
    let server = StripeServer::start().await;
    server.fail_next(usize::MAX);
    let started = Instant::now();
    let result = gateway(&server).charge(charge("tok_visa", "order-7:1")).await;

    let error = result.expect_err("an outage is not an outcome");
    assert!(error.0.contains("500"), "{error}");
    assert_eq!(server.requests().len(), MAX_ATTEMPTS);
    assert!(server.requests().iter().all(|r| r.idempotency_key.as_deref() == Some("order-7:1")));
    assert!(server.charges().is_empty());
    assert!(started.elapsed() < Duration::from_secs(3), "backoff is short: {:?}", started.elapsed());

    // Once Stripe is back, asking again with the same key charges exactly once.
    server.fail_next(0);
    charge_id(gateway(&server).charge(charge("tok_visa", "order-7:1")).await.unwrap());
    assert_eq!(server.charges().len(), 1);
}

#[actix_web::test]
async fn reusing_a_key_for_a_different_charge_is_a_gateway_error_not_a_second_charge() {
    let server = StripeServer::start().await;
    let gateway = gateway(&server);
    charge_id(gateway.charge(charge("tok_visa", "order-8:1")).await.unwrap());
    let mut different = charge("tok_visa", "order-8:1");
    different.amount_cents += 100;
    let result = gateway.charge(different).await;

    assert!(result.is_err(), "{result:?}");
    assert_eq!(server.charges().len(), 1);
    assert_eq!(server.requests().len(), 2, "an idempotency conflict is not retried");
}

#[actix_web::test]
async fn a_closed_port_is_a_gateway_error_quickly() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let gateway = StripeGateway::new(&format!("http://127.0.0.1:{port}/"), SECRET);
    let started = Instant::now();
    let result = gateway.charge(charge("tok_visa", "order-9:1")).await;

    assert!(result.is_err(), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[actix_web::test]
async fn a_stripe_that_does_not_answer_in_time_is_a_gateway_error_after_the_request_timeout() {
    let server = StripeServer::start().await;
    server.delay_next(1, Duration::from_secs(1));
    let gateway = gateway(&server).with_request_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let result = gateway.charge(charge("tok_visa", "order-10:1")).await;

    let error = result.expect_err("no answer is not an outcome");
    assert!(error.0.contains("within"), "{error}");
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    // The slow request may still go through on Stripe's side; the same key then finds it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.requests().is_empty() && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let first = server.charges().first().map(|c| c.id.clone()).expect("the slow charge completed");
    let again = charge_id(gateway.charge(charge("tok_visa", "order-10:1")).await.unwrap());
    assert_eq!(again, first);
    assert_eq!(server.charges().len(), 1);
}

#[actix_web::test]
async fn a_refund_refunds_the_charge_survives_a_500_and_replays_under_its_key() {
    let server = StripeServer::start().await;
    let gateway = gateway(&server);
    let charge_id = charge_id(gateway.charge(charge("tok_visa", "order-11:1")).await.unwrap());
    server.fail_next(1);
    let refunded = gateway.refund(charge_id.clone(), "refund-order-11".into()).await.unwrap();
    let RefundOutcome::Refunded { refund_id } = &refunded else { panic!("refunded: {refunded:?}") };
    assert!(refund_id.starts_with("re_"), "{refund_id}");
    let refunds = server.requests_to("/v1/refunds");
    assert_eq!(refunds.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 200]);
    assert!(refunds.iter().all(|r| r.field("charge") == Some(charge_id.as_str())));
    assert!(refunds.iter().all(|r| r.idempotency_key.as_deref() == Some("refund-order-11")));
    assert_eq!(server.refunds().len(), 1);
    assert_eq!(server.refunds()[0].idempotency_key.as_deref(), Some("refund-order-11"));
    assert!(server.charges()[0].refunded);
    let again = gateway.refund(charge_id, "refund-order-11".into()).await.unwrap();
    assert_eq!(again, refunded);
    assert_eq!(server.refunds().len(), 1);
}

#[actix_web::test]
async fn refunding_a_charge_stripe_does_not_know_is_refused_for_good_not_retried() {
    let server = StripeServer::start().await;
    let gateway = gateway(&server);
    let result = gateway.refund("ch_unknown".into(), "refund-x".into()).await;
    assert!(
        matches!(&result, Ok(RefundOutcome::Refused { reason }) if reason.contains("No such charge")),
        "{result:?}"
    );
    let result = gateway.refund("not-a-charge".into(), "refund-y".into()).await;
    assert!(matches!(result, Ok(RefundOutcome::Refused { .. })), "{result:?}");
    assert_eq!(server.requests().len(), 1, "a malformed id never reaches Stripe");
}
