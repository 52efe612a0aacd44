//! The published events against their JSON Schemas (`docs/events/*.schema.json`): a scenario
//! through the real app emits every subject, and every payload it publishes must validate.

use crate::helpers::*;
use jsonschema::{Draft, Validator};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use ticketing::events::PublishedEvent;

/// Every published subject; each has `docs/events/<subject with : as .>.schema.json`.
const SUBJECTS: [&str; 7] = [
    "ticket:created",
    "ticket:updated",
    "ticket:deleted",
    "order:created",
    "order:cancelled",
    "expiration:complete",
    "payment:created",
];

/// Subjects that only feed read models and must never be published.
const INTERNAL: [&str; 2] = ["order:updated", "payment:declined"];

fn schema_path(subject: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/events")
        .join(format!("{}.schema.json", subject.replace(':', ".")))
}

fn load_schema(subject: &str) -> Value {
    let path = schema_path(subject);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A draft 2020-12 validator that asserts `format` (off by default in 2020-12).
fn validator(schema: &Value) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

/// The validator of every subject, keyed by subject.
fn validators() -> BTreeMap<&'static str, Validator> {
    SUBJECTS.iter().map(|s| (*s, validator(&load_schema(s)))).collect()
}

/// The validation errors of `payload` (empty: valid).
fn errors(v: &Validator, payload: &Value) -> Vec<String> {
    v.iter_errors(payload).map(|e| format!("at '{}': {e}", e.instance_path)).collect()
}

/// Every object in a schema is closed and requires every property (but the optional ones).
fn assert_strict(subject: &str, node: &Value, optional: &[&str]) {
    let Some(map) = node.as_object() else { return };
    if map.get("type") == Some(&json!("object")) {
        assert_eq!(map.get("additionalProperties"), Some(&json!(false)), "{subject}: an object is open");
        let props: BTreeSet<&str> = map["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let required: BTreeSet<&str> =
            map["required"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
        let expected: BTreeSet<&str> = props.iter().copied().filter(|p| !optional.contains(p)).collect();
        assert_eq!(required, expected, "{subject}: required fields");
    }
    for child in map.values() {
        match child {
            Value::Array(items) => items.iter().for_each(|i| assert_strict(subject, i, optional)),
            other => assert_strict(subject, other, optional),
        }
    }
}

async fn ok(res: reqwest::Response, expected: StatusCode, what: &str) -> Value {
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(status, expected, "{what}: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Lists, edits, reserves, releases, withdraws and sells tickets on an app with the default
/// order window; returns what it published.
async fn marketplace_scenario() -> Vec<PublishedEvent> {
    let app = spawn_app().await;
    let (seller, buyer) = (app.signin().await, app.signin().await);

    // ticket:created (a decimal price sent as a string), ticket:updated (edited).
    let edited = app.create_ticket(&seller, "concert", json!("15.75")).await;
    let edited_id = edited["id"].as_str().unwrap();
    let res = app
        .put(&format!("/api/tickets/{edited_id}"))
        .header("Cookie", &seller.cookie)
        .json(&json!({"title": "concert (front row)", "price": 40}))
        .send()
        .await
        .unwrap();
    ok(res, StatusCode::OK, "edit").await;

    // ticket:deleted.
    let withdrawn = app.create_ticket(&seller, "withdrawn", json!(10)).await;
    let res = app
        .delete(&format!("/api/tickets/{}", withdrawn["id"].as_str().unwrap()))
        .header("Cookie", &seller.cookie)
        .send()
        .await
        .unwrap();
    ok(res, StatusCode::NO_CONTENT, "withdraw").await;

    // order:created, ticket:updated (reserved, with orderId), order:cancelled, ticket:updated
    // (released).
    let order = app.order_ok(&buyer, edited_id).await;
    let res = app
        .delete(&format!("/api/orders/{}", order["id"].as_str().unwrap()))
        .header("Cookie", &buyer.cookie)
        .send()
        .await
        .unwrap();
    ok(res, StatusCode::NO_CONTENT, "cancel").await;

    // payment:created, for a ticket with cents.
    let sold = app.create_ticket(&seller, "theatre", json!(12.5)).await;
    let order = app.order_ok(&buyer, sold["id"].as_str().unwrap()).await;
    let res = app
        .post("/api/payments")
        .header("Cookie", &buyer.cookie)
        .json(&json!({"token": "tok_visa", "orderId": order["id"]}))
        .send()
        .await
        .unwrap();
    ok(res, StatusCode::CREATED, "pay").await;

    app.published().await
}

/// An order left unpaid on an app with a one-second window; returns what it published.
async fn expiry_scenario() -> Vec<PublishedEvent> {
    let app = spawn_app_with(|s| s.orders.expiration_seconds = 1.0).await;
    let (seller, buyer) = (app.signin().await, app.signin().await);
    let ticket = app.create_ticket(&seller, "expires", json!(20)).await;
    let order = app.order_ok(&buyer, ticket["id"].as_str().unwrap()).await;
    let id = order["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(10), "expiration:complete and order:cancelled are published", || {
        let (app, id) = (&app, &id);
        async move {
            let subjects = app.subjects_of(id).await;
            subjects.iter().any(|s| s == "expiration:complete") && subjects.iter().any(|s| s == "order:cancelled")
        }
    })
    .await;
    // And the ticket's release after it.
    eventually(Duration::from_secs(10), "the ticket is released", || async {
        app.get_json(&format!("/api/tickets/{}", ticket["id"].as_str().unwrap()), None).await.1.get("orderId").is_none()
    })
    .await;
    app.published().await
}

#[actix_web::test]
async fn every_published_event_matches_its_subjects_schema() {
    let validators = validators();
    let mut events = marketplace_scenario().await;
    events.extend(expiry_scenario().await);

    let mut problems = Vec::new();
    let mut seen = BTreeMap::<String, usize>::new();
    for e in &events {
        *seen.entry(e.subject.clone()).or_default() += 1;
        if INTERNAL.contains(&e.subject.as_str()) {
            problems.push(format!("internal event published: {} {}", e.subject, e.payload));
            continue;
        }
        match validators.get(e.subject.as_str()) {
            None => problems.push(format!("no schema for subject {:?} (payload {})", e.subject, e.payload)),
            Some(v) => {
                let errs = errors(v, &e.payload);
                if !errs.is_empty() {
                    problems.push(format!(
                        "{} {} does not validate:\n    {}",
                        e.subject,
                        e.payload,
                        errs.join("\n    ")
                    ));
                }
            }
        }
    }
    for subject in SUBJECTS {
        if !seen.contains_key(subject) {
            problems.push(format!("{subject} was never published by the scenario"));
        }
    }
    // Both forms of ticket:updated: reserved (with orderId) and not.
    let updated: Vec<&PublishedEvent> = events.iter().filter(|e| e.subject == "ticket:updated").collect();
    if !updated.iter().any(|e| e.payload.get("orderId").is_some())
        || updated.iter().all(|e| e.payload.get("orderId").is_some())
    {
        problems.push("ticket:updated was not seen both with and without orderId".into());
    }
    assert!(problems.is_empty(), "{} published events, by subject {seen:?}:\n{}", events.len(), problems.join("\n"));
}

#[actix_web::test]
async fn the_schemas_are_strict_and_reject_bad_payloads() {
    for subject in SUBJECTS {
        let schema = load_schema(subject);
        let name = subject.replace(':', ".");
        assert!(jsonschema::draft202012::meta::is_valid(&schema), "{subject}: not a valid draft 2020-12 schema");
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{subject}");
        assert!(schema["$id"].as_str().unwrap().ends_with(&format!("/{name}.schema.json")), "{subject}: $id");
        assert_eq!(schema["title"], subject);
        assert!(schema["description"].as_str().is_some_and(|d| !d.is_empty()), "{subject}: description");
        let optional: &[&str] = if subject == "ticket:updated" { &["orderId"] } else { &[] };
        assert_strict(subject, &schema, optional);
    }

    let v = validators();
    let (id, other) = ("0190f5d2-8f3a-7c1e-9a4b-1234567890ab", "0190f5d2-8f3a-7c1e-9a4b-ba0987654321");
    let ticket = json!({"id": id, "version": 0, "title": "t", "price": 20, "userId": other});
    let order = json!({
        "id": id, "version": 0, "status": "created", "userId": other,
        "expiresAt": "2026-01-31T12:00:00.000Z", "ticket": {"id": other, "price": 12.5}
    });
    let with = |base: &Value, key: &str, value: Value| {
        let mut b = base.clone();
        b[key] = value;
        b
    };
    let without = |base: &Value, key: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    // The good ones pass, so the rejections below are about the one change each makes.
    assert_eq!(errors(&v["ticket:created"], &ticket), Vec::<String>::new());
    assert_eq!(
        errors(&v["ticket:updated"], &with(&with(&ticket, "version", json!(2)), "orderId", json!(id))),
        Vec::<String>::new()
    );
    assert_eq!(errors(&v["order:created"], &order), Vec::<String>::new());

    let bad: Vec<(&str, &str, Value)> = vec![
        ("missing field", "ticket:created", without(&ticket, "userId")),
        ("extra field", "ticket:created", with(&ticket, "orderId", json!(other))),
        ("price as a string", "ticket:created", with(&ticket, "price", json!("20"))),
        ("zero price", "ticket:created", with(&ticket, "price", json!(0))),
        ("fractional version", "ticket:created", with(&ticket, "version", json!(1.5))),
        ("negative version", "ticket:created", with(&ticket, "version", json!(-1))),
        ("empty title", "ticket:created", with(&ticket, "title", json!(""))),
        ("id not a uuid", "ticket:created", with(&ticket, "id", json!("ticket-1"))),
        ("null orderId", "ticket:updated", with(&with(&ticket, "version", json!(2)), "orderId", Value::Null)),
        ("ticket:deleted at version 0", "ticket:deleted", json!({"id": id, "version": 0})),
        ("bad status", "order:created", with(&order, "status", json!("pending"))),
        ("expiresAt not a date-time", "order:created", with(&order, "expiresAt", json!("tomorrow"))),
        ("expiresAt not UTC", "order:created", with(&order, "expiresAt", json!("2026-01-31T13:00:00.000+01:00"))),
        (
            "extra field in ticket",
            "order:created",
            with(&order, "ticket", json!({"id": other, "price": 12.5, "title": "t"})),
        ),
        ("missing ticket price", "order:created", with(&order, "ticket", json!({"id": other}))),
        ("missing ticket", "order:cancelled", json!({"id": id, "version": 1})),
        ("orderId a number", "expiration:complete", json!({"orderId": 7})),
        ("extra field", "expiration:complete", json!({"orderId": id, "version": 1})),
        ("empty stripeId", "payment:created", json!({"id": id, "orderId": other, "stripeId": ""})),
        ("missing stripeId", "payment:created", json!({"id": id, "orderId": other})),
    ];
    for (what, subject, payload) in bad {
        assert!(!v[subject].is_valid(&payload), "{subject} accepted a payload with {what}: {payload}");
    }
}
