//! The start-up check that a node's configuration fits its data dir: a node never serves a
//! shard whose data another node holds, and never drops a shard whose data it holds. Moving a
//! shard is a manual procedure (`ticketing shard export` / `import`, README "Running a
//! cluster"), not something a changed member list may do by accident.

use super::shard_map::{Shard, ShardMap};
use crate::storage::{Placement, Store};

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("this data dir belongs to cluster {recorded:?}, not {configured:?} (cluster.name)")]
    OtherCluster { recorded: String, configured: String },
    #[error("this data dir was made for {recorded} shards, the configuration says {configured} (cluster.shards is fixed when a cluster is created)")]
    ShardCount { recorded: u32, configured: u32 },
    #[error("this data dir is at shard map epoch {recorded}, the configuration is at older epoch {configured} (cluster.epoch)")]
    OlderEpoch { recorded: u32, configured: u32 },
    #[error("the configuration would move shards {shards:?} to other nodes, but this data dir holds their data; export them first (README, \"Moving a shard\")")]
    WouldMove { shards: Vec<u32> },
    #[error("shard {shard} was exported away from this data dir at epoch {left_at}: its new owner serves it; start with the new members and an epoch above {left_at}")]
    Left { shard: u32, left_at: u32 },
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// Checks `map` against what `store` records, then records the new placement.
pub fn check_and_record(store: &Store, cluster: &str, map: &ShardMap) -> Result<(), PlacementError> {
    let mine = map.mine();
    let recorded = store.placement()?;
    if let Some(recorded) = &recorded {
        if recorded.cluster != cluster {
            return Err(PlacementError::OtherCluster {
                recorded: recorded.cluster.clone(),
                configured: cluster.into(),
            });
        }
        if recorded.shard_count != map.shard_count() {
            return Err(PlacementError::ShardCount { recorded: recorded.shard_count, configured: map.shard_count() });
        }
        if recorded.epoch > map.epoch() {
            return Err(PlacementError::OlderEpoch { recorded: recorded.epoch, configured: map.epoch() });
        }
        let mut moved = Vec::new();
        for shard in recorded.shards.iter().map(|s| Shard(*s)).filter(|s| !mine.contains(s)) {
            if shard.0 < map.shard_count() && store.holds_data_in(map.slots(shard))? {
                moved.push(shard.0);
            }
        }
        if !moved.is_empty() {
            return Err(PlacementError::WouldMove { shards: moved });
        }
        // A node restarted with the map from before a move must not serve what it gave away.
        if let Some((shard, left_at)) =
            recorded.left.iter().find(|(s, at)| mine.contains(&Shard(*s)) && map.epoch() <= *at)
        {
            return Err(PlacementError::Left { shard: *shard, left_at: *left_at });
        }
    }
    // Fences that a later epoch has outgrown are dropped: the recorded epoch now refuses older maps.
    let left = recorded
        .map(|r| r.left.into_iter().filter(|(s, at)| *at >= map.epoch() && !mine.contains(&Shard(*s))).collect())
        .unwrap_or_default();
    store.set_placement(&Placement {
        cluster: cluster.into(),
        epoch: map.epoch(),
        shard_count: map.shard_count(),
        shards: mine.iter().map(|s| s.0).collect(),
        left,
    })?;
    Ok(())
}

#[cfg(test)]
#[path = "placement_test.rs"]
mod tests;
