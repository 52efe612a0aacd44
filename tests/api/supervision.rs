//! Actor lifecycle: supervised restarts after a panic, passivation when idle, and never two
//! live actors for one id.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use ticketing::domain::TicketId;

#[actix_web::test]
async fn a_panicking_ticket_actor_is_restarted_and_serves_its_persisted_state() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "before", json!(10)).await;
    let id_text = t["id"].as_str().unwrap().to_string();
    let path = format!("/api/tickets/{id_text}");
    let res = app
        .put(&path)
        .header("Cookie", &me.cookie)
        .json(&json!({"title": "persisted", "price": 11}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let id = TicketId::parse(&id_text).unwrap();
    let stats = app.state.app.router().here().tickets.stats(&id).expect("the actor is live");
    let activations = app.state.app.router().here().tickets.activations();

    let res = app.post(&format!("/testing/tickets/{id_text}/panic")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "the panicking request gets a 500, not a retry hint");
    assert_eq!(error_messages(res).await, ["Something went wrong"]);

    // The supervisor restarts it once the 500 is out; requests after that are served by the
    // restarted actor, with the state reloaded from disk.
    eventually(Duration::from_secs(5), "the supervisor restarts the actor", || async { stats.restarts() == 1 }).await;
    let stored: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!((stored["title"].as_str(), stored["version"].as_u64()), (Some("persisted"), Some(1)));
    assert_eq!(stats.restarts(), 1, "restarted exactly once");
    let after = app.state.app.router().here().tickets.stats(&id).expect("still live");
    assert!(std::sync::Arc::ptr_eq(&stats, &after), "restarted in place: same registry slot");
    assert_eq!(
        app.state.app.router().here().tickets.activations(),
        activations,
        "a restart is not a second activation"
    );
    // It keeps working: writes continue from the persisted version.
    let res =
        app.put(&path).header("Cookie", &me.cookie).json(&json!({"title": "after", "price": 12})).send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["version"], 2);
}

#[actix_web::test]
async fn requests_queued_behind_a_panic_are_still_served() {
    let app = spawn_app().await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "x", json!(10)).await;
    let id = t["id"].as_str().unwrap().to_string();
    let path = format!("/api/tickets/{id}");
    let panic_url = format!("/testing/tickets/{id}/panic");
    let panic = app.post(&panic_url).send();
    let updates = (0..20).map(|i| {
        app.put(&path).header("Cookie", &me.cookie).json(&json!({"title": format!("t{i}"), "price": 5})).send()
    });
    let (panicked, results) = futures::join!(panic, futures::future::join_all(updates));
    assert_eq!(panicked.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR);
    let statuses: Vec<_> = results.iter().map(|r| r.as_ref().unwrap().status()).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let stored: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["version"], 20);
    let id = TicketId::parse(&id).unwrap();
    let stats = app.state.app.router().here().tickets.stats(&id).unwrap();
    eventually(Duration::from_secs(5), "the panic led to a restart", || async { stats.restarts() == 1 }).await;
}

#[actix_web::test]
async fn an_idle_actor_is_passivated_and_reactivates_with_the_same_state() {
    let app = spawn_app_with(|s| s.actors.idle_seconds = 0.3).await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "sleepy", json!(7)).await;
    let id = TicketId::parse(t["id"].as_str().unwrap()).unwrap();
    assert!(app.state.app.router().here().tickets.is_live(&id));
    eventually(Duration::from_secs(5), "the idle actor is passivated", || async {
        !app.state.app.router().here().tickets.is_live(&id)
    })
    .await;
    let activations = app.state.app.router().here().tickets.activations();
    let stored: Value = app.get(&format!("/api/tickets/{id}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored, t);
    assert!(app.state.app.router().here().tickets.is_live(&id), "reactivated on demand");
    assert_eq!(app.state.app.router().here().tickets.activations(), activations + 1);
}

#[actix_web::test]
async fn a_burst_on_an_inactive_ticket_activates_exactly_one_actor() {
    let app = spawn_app_with(|s| s.actors.idle_seconds = 0.2).await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "x", json!(7)).await;
    let id = TicketId::parse(t["id"].as_str().unwrap()).unwrap();
    eventually(Duration::from_secs(5), "passivated", || async { !app.state.app.router().here().tickets.is_live(&id) })
        .await;
    let before = app.state.app.router().here().tickets.activations();
    let path = format!("/api/tickets/{id}");
    let reads = (0..200).map(|_| app.get(&path).send());
    for res in futures::future::join_all(reads).await {
        assert_eq!(res.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(
        app.state.app.router().here().tickets.activations(),
        before + 1,
        "one activation for 200 concurrent requests"
    );
    assert_eq!(app.state.app.router().here().tickets.live_count(), 1);
}

#[actix_web::test]
async fn updates_racing_passivation_are_never_lost() {
    // A tiny idle time makes the actor passivate between bursts, so writes keep landing on
    // freshly activated actors; every acknowledged update must still count.
    let app = spawn_app_with(|s| s.actors.idle_seconds = 0.02).await;
    let me = app.signin().await;
    let t = app.create_ticket(&me, "x", json!(1)).await;
    let path = format!("/api/tickets/{}", t["id"].as_str().unwrap());
    let id = ticketing::domain::TicketId::parse(t["id"].as_str().unwrap()).unwrap();
    let mut acknowledged = 0;
    for round in 0..8 {
        if round % 2 == 1 {
            // Every other burst lands on an actor that has just passivated (waited for, not
            // slept for, so a loaded machine cannot skip it); the others race passivation.
            eventually(Duration::from_secs(5), "the actor passivates between bursts", || async {
                !app.state.app.router().here().tickets.is_live(&id)
            })
            .await;
        }
        let burst = (0..10).map(|i| {
            app.put(&path)
                .header("Cookie", &me.cookie)
                .json(&json!({"title": format!("r{round}-{i}"), "price": 2}))
                .send()
        });
        for res in futures::future::join_all(burst).await {
            assert_eq!(res.unwrap().status(), StatusCode::OK);
            acknowledged += 1;
        }
        tokio::time::sleep(Duration::from_millis(15 * (round % 3))).await;
    }
    let stored: Value = app.get(&path).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["version"], acknowledged);
    assert!(
        app.state.app.router().here().tickets.activations() > 1,
        "the actor was passivated and reactivated along the way"
    );
}
