//! Unit tests of `idempotency`.

use super::*;
use std::sync::Arc;

fn record(created_at_ms: i64) -> IdempotencyRecord {
    IdempotencyRecord { request_hash: [0; 32], created_at_ms, outcome: Outcome::Running }
}

#[actix_web::test]
async fn prune_deletes_only_records_older_than_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    let (old, fresh) = (storage_key("u", "old"), storage_key("u", "fresh"));
    for (key, at) in [(&old, now_ms() - KEEP_MS - 1_000), (&fresh, now_ms())] {
        let mut batch = WriteBatch::default();
        batch.put(key.clone(), &record(at)).unwrap();
        store.commit(batch).await.unwrap();
    }
    assert_eq!(prune(&store).await.unwrap(), 1);
    assert!(!store.contains(&old).unwrap());
    assert!(store.contains(&fresh).unwrap());
}

#[actix_web::test]
async fn an_abandoned_claim_can_be_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    let key = storage_key("u", "k");
    let mut batch = WriteBatch::default();
    batch.put(key.clone(), &record(now_ms() - ABANDONED_MS - 1_000)).unwrap();
    store.commit(batch).await.unwrap();
    assert!(matches!(claim(&store, &key, [0; 32]), Ok(Claim::Claimed(_))));
    assert!(matches!(claim(&store, &key, [0; 32]), Err(AppError::IdempotencyInProgress)), "now it is ours and running");
    assert!(matches!(claim(&store, &key, [1; 32]), Err(AppError::IdempotencyMismatch)));
}
