//! Deletes expired idempotency records and webhook ids, once an hour.

use crate::storage::{keys, StorageError, Store, WriteBatch};
use std::collections::BTreeMap;
use std::sync::Arc;

pub async fn run(app: Arc<super::App>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        match (app.prune_idempotency_records().await, app.prune_seen_webhooks().await) {
            (Ok(keys), Ok(webhooks)) => tracing::debug!(keys, webhooks, "housekeeping pruned expired records"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}

/// Removes `expired`, one batch per slot (a batch never spans two slots). Returns how many.
pub(super) async fn remove_by_slot(store: &Store, expired: Vec<Vec<u8>>) -> Result<usize, StorageError> {
    let count = expired.len();
    let mut batches: BTreeMap<u16, WriteBatch> = BTreeMap::new();
    for key in expired {
        let slot = keys::slot_of(&key).map_or(0, |s| s.0);
        batches.entry(slot).or_default().remove(key);
    }
    // Forgetting an expired record needs no flush of its own: one sync at the end.
    for batch in batches.into_values() {
        store.apply(batch)?;
    }
    store.sync().await;
    Ok(count)
}
