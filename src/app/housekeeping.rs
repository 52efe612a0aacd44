//! Deletes expired idempotency records and webhook ids, once an hour.

use crate::storage::{SlotBatches, StorageError, Store};
use std::sync::Arc;

pub async fn run(app: Arc<super::App>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        app.throttle.prune();
        match (app.prune_idempotency_records().await, app.prune_seen_webhooks().await) {
            (Ok(keys), Ok(webhooks)) => tracing::debug!(keys, webhooks, "housekeeping pruned expired records"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}

/// Removes `expired` (forgetting an expired record needs no flush of its own: one sync at the
/// end). Returns how many.
pub(super) async fn remove_expired(store: &Store, expired: Vec<Vec<u8>>) -> Result<usize, StorageError> {
    let count = expired.len();
    let mut batches = SlotBatches::default();
    for key in expired {
        batches.remove(key);
    }
    batches.apply_then_sync(store).await?;
    Ok(count)
}
