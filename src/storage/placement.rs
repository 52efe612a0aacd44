//! What a data dir records of its place in a cluster: the cluster's name, the shard map's
//! epoch and shard count, and the shards whose data it holds. A node checks its configuration
//! against this record before it serves anything (`crate::cluster::placement`).

use super::{keys, StorageError, Store};
use crate::domain::Slot;
use serde::{Deserialize, Serialize};

const KEY: &str = "placement";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub cluster: String,
    pub epoch: u32,
    pub shard_count: u32,
    /// The shards this data dir holds data for.
    pub shards: Vec<u32>,
    /// Shards exported away (`shard export --remove`), with the epoch they left at: this data
    /// dir must not serve them again under that epoch or an older one.
    pub left: Vec<(u32, u32)>,
}

impl Store {
    /// The recorded placement, if this data dir was ever started (by a release that records it).
    pub fn placement(&self) -> Result<Option<Placement>, StorageError> {
        let Some(bytes) = self.meta(KEY)? else { return Ok(None) };
        let (placement, _) = bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
            .map_err(|e| StorageError::Corrupt { key: KEY.into(), reason: e.to_string() })?;
        Ok(Some(placement))
    }

    /// Records the placement durably.
    pub fn set_placement(&self, placement: &Placement) -> Result<(), StorageError> {
        let bytes = bincode::serde::encode_to_vec(placement, bincode::config::standard())
            .map_err(|e| StorageError::Encode(e.to_string()))?;
        self.set_meta(KEY, &bytes)
    }

    /// Whether any record of the shard's own data lives in a slot of `slots`. Idempotency
    /// claims and webhook markers are left out: any node that receives a request keeps those
    /// in the key's slot, whoever owns it.
    pub fn holds_data_in(&self, slots: std::ops::Range<u32>) -> Result<bool, StorageError> {
        let start = keys::prefix(Slot(slots.start as u16), 0);
        for item in self.data.range(start..).keys() {
            let key = item?;
            if keys::slot_of(&key).is_none_or(|s| u32::from(s.0) >= slots.end) {
                return Ok(false);
            }
            if !matches!(keys::kind_of(&key), Some(keys::IDEMPOTENCY | keys::WEBHOOK_EVENT)) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
