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

    /// Removes the kept events written before `cutoff_ms`, in the slots this node writes;
    /// returns how many.
    pub async fn prune_history(&self, cutoff_ms: i64) -> Result<usize, StorageError> {
        let mut expired = Vec::new();
        self.sweep(keys::HISTORY, |key, value| {
            if envelope::decode::<HistoryEntry>(key, value)?.at_ms < cutoff_ms {
                expired.push(key.to_vec());
            }
            Ok(true)
        })?;
        SlotBatches::remove_expired(self, expired).await
    }
}

#[cfg(test)]
#[path = "history_test.rs"]
mod tests;
