//! Unit tests of `idempotency`.

use super::*;
use std::sync::Arc;

fn record(created_at_ms: i64, outcome: Outcome) -> IdempotencyRecord {
    IdempotencyRecord { request_hash: [0; 32], created_at_ms, outcome }
}

async fn put(store: &Store, digest: &[u8; 32], record: IdempotencyRecord) {
    let mut batch = WriteBatch::default();
    batch.put(keys::idempotency(digest), &record).unwrap();
    store.commit(batch).await.unwrap();
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    (dir, store)
}

#[actix_web::test]
async fn prune_deletes_only_records_older_than_a_day() {
    let (_dir, store) = open();
    let (old, fresh) = (key_digest("u", "old"), key_digest("u", "fresh"));
    put(&store, &old, record(now_ms() - KEEP_MS - 1_000, Outcome::Running)).await;
    put(&store, &fresh, record(now_ms(), Outcome::Running)).await;
    assert_eq!(prune(&store).await.unwrap(), 1);
    assert!(!store.contains(&keys::idempotency(&old)).unwrap());
    assert!(store.contains(&keys::idempotency(&fresh)).unwrap());
}

#[actix_web::test]
async fn an_abandoned_claim_can_be_taken_over() {
    let (_dir, store) = open();
    let key = key_digest("u", "k");
    put(&store, &key, record(now_ms() - ABANDONED_MS - 1_000, Outcome::Running)).await;
    assert!(matches!(claim(&store, &key, [0; 32]).await, Ok(Claim::Claimed { .. })));
    assert!(
        matches!(claim(&store, &key, [0; 32]).await, Err(AppError::IdempotencyInProgress)),
        "now it is ours and running"
    );
    assert!(matches!(claim(&store, &key, [1; 32]).await, Err(AppError::IdempotencyMismatch)));
}

#[actix_web::test]
async fn an_uncertain_key_runs_again_as_the_same_request_and_keeps_its_first_claim_time() {
    let (_dir, store) = open();
    let key = key_digest("u", "k");
    let Ok(Claim::Claimed { first_claimed_ms, again: false, run }) = claim(&store, &key, [0; 32]).await else {
        panic!("first claim")
    };
    settle(&store, &key, [0; 32], run, KeyOutcome::Uncertain).await.unwrap();
    assert!(matches!(claim(&store, &key, [1; 32]).await, Err(AppError::IdempotencyMismatch)), "another request");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let Ok(Claim::Claimed { first_claimed_ms: again_first, again: true, run: second }) =
        claim(&store, &key, [0; 32]).await
    else {
        panic!("the retry runs again")
    };
    assert_eq!(again_first, first_claimed_ms, "the first claim's time is kept");
    // A late settle of the first run changes nothing of the second's.
    settle(&store, &key, [0; 32], run, KeyOutcome::Release).await.unwrap();
    assert!(matches!(claim(&store, &key, [0; 32]).await, Err(AppError::IdempotencyInProgress)), "still the second's");
    let done = StoredResponse { status: 201, headers: vec![], body: b"{}".to_vec() };
    settle(&store, &key, [0; 32], second, KeyOutcome::Done(done.clone())).await.unwrap();
    assert_eq!(claim(&store, &key, [0; 32]).await.unwrap(), Claim::Replay(done));
}

#[actix_web::test]
async fn a_released_key_is_free_again() {
    let (_dir, store) = open();
    let key = key_digest("u", "k");
    let Ok(Claim::Claimed { run, .. }) = claim(&store, &key, [0; 32]).await else { panic!("claimed") };
    settle(&store, &key, [0; 32], run, KeyOutcome::Release).await.unwrap();
    assert!(matches!(claim(&store, &key, [1; 32]).await, Ok(Claim::Claimed { .. })), "free for any request");
}
