//! Reading and pruning the entities' kept events (the audit trail). They are written with
//! the outbox entries of the same events (`Store::write` numbers both), so an entity's history
//! is on disk, and in its shard's log, exactly when its change is.

use super::{envelope, keys, SlotBatches, StorageError, Store};
use crate::domain::{Entity, HistoryEntry};

/// A page of one entity's history, oldest first.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// Whether entries after the last one follow.
    pub more: bool,
}

impl Store {
    /// Up to `limit` of `entity`'s kept events numbered after `after`, oldest first.
    pub fn history(&self, entity: &Entity, after: u64, limit: usize) -> Result<HistoryPage, StorageError> {
        let prefix = keys::history_prefix(entity);
        let mut entries = Vec::new();
        let mut more = false;
        for item in self.data.range(keys::history(entity, after.saturating_add(1))..) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            if entries.len() == limit {
                more = true;
                break;
            }
            entries.push(envelope::decode::<HistoryEntry>(&k, &v)?);
        }
        Ok(HistoryPage { entries, more })
    }

    /// Removes the kept events written before `cutoff_ms` in the slots this node writes (a
    /// follower's copy is pruned by its owner, through the log); returns how many. The scan
    /// runs off the caller's thread, reads only each entry's head (number and time), leaves
    /// an entry that does not decode (logged), and removes at most `PRUNE_ROUND` entries a
    /// round, so what it holds stays bounded however much has expired.
    pub async fn prune_history(&self, cutoff_ms: i64) -> Result<usize, StorageError> {
        let mut removed = 0;
        loop {
            let store = self.clone();
            let expired = tokio::task::spawn_blocking(move || store.expired_history(cutoff_ms))
                .await
                .map_err(|e| StorageError::Failed(format!("history scan: {e}")))??;
            let round = expired.len();
            removed += SlotBatches::remove_expired(self, expired).await?;
            if round < PRUNE_ROUND {
                return Ok(removed);
            }
        }
    }

    /// Up to `PRUNE_ROUND` keys of kept events older than `cutoff_ms`, in slots written here.
    fn expired_history(&self, cutoff_ms: i64) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut expired = Vec::new();
        self.sweep(keys::HISTORY, |key, value| {
            if !keys::slot_of(key).is_some_and(|slot| self.writes_slot(slot)) {
                return Ok(true);
            }
            match envelope::decode_head::<HistoryEntry, (u64, i64)>(key, value) {
                Ok((_, at_ms)) if at_ms < cutoff_ms => expired.push(key.to_vec()),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a kept event cannot be read; left in place"),
            }
            Ok(expired.len() < PRUNE_ROUND)
        })?;
        Ok(expired)
    }
}

/// Kept events removed per round of a prune.
const PRUNE_ROUND: usize = 10_000;

#[cfg(test)]
#[path = "history_test.rs"]
mod tests;
