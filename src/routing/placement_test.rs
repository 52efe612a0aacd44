use super::*;
use crate::domain::{Slot, SLOTS};
use crate::storage::{keys, WriteBatch};

fn map(me: &str, members: &[&str], epoch: u32) -> ShardMap {
    ShardMap::of(me, members, 64, epoch)
}

async fn write_in_every_slot(store: &Store) {
    for slot in (0..SLOTS).step_by(8) {
        let mut batch = WriteBatch::default();
        batch.put(keys::slotted(Slot(slot as u16), keys::CHARGE, &[b"k"]), &crate::storage::Marker).unwrap();
        store.commit(batch).await.unwrap();
    }
}

#[actix_rt::test]
async fn a_node_refuses_a_map_that_moves_shards_it_holds_data_for() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), std::sync::Arc::new(|_| {})).unwrap();
    check_and_record(&store, "c", &map("a", &[], 1)).unwrap();
    write_in_every_slot(&store).await;
    // The same map again: fine.
    check_and_record(&store, "c", &map("a", &[], 1)).unwrap();
    // Giving shards to b, even under a new epoch: refused, with the shards named.
    let err = check_and_record(&store, "c", &map("a", &["a", "b"], 2)).unwrap_err();
    assert!(matches!(err, PlacementError::WouldMove { ref shards } if !shards.is_empty()), "{err}");
    // Another cluster's name, or an older epoch: refused.
    assert!(matches!(check_and_record(&store, "d", &map("a", &[], 1)), Err(PlacementError::OtherCluster { .. })));
    assert_eq!(store.placement().unwrap().unwrap().shards.len(), 64);
}

#[actix_rt::test]
async fn an_empty_data_dir_may_take_any_shards_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), std::sync::Arc::new(|_| {})).unwrap();
    let m = map("b", &["a", "b", "c"], 1);
    check_and_record(&store, "c", &m).unwrap();
    let recorded = store.placement().unwrap().unwrap();
    assert_eq!(recorded.shards, m.mine().iter().map(|s| s.0).collect::<Vec<_>>());
    // Nothing held yet, so a new map that moves them is accepted, at a newer epoch.
    check_and_record(&store, "c", &map("b", &["a", "c", "b", "d"], 2)).unwrap();
    assert!(matches!(
        check_and_record(&store, "c", &map("b", &["a", "b", "c"], 1)),
        Err(PlacementError::OlderEpoch { .. })
    ));
}

#[actix_rt::test]
async fn a_shard_exported_away_is_not_served_again_under_the_old_map() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), std::sync::Arc::new(|_| {})).unwrap();
    let before = map("a", &["a", "b"], 1);
    check_and_record(&store, "c", &before).unwrap();
    write_in_every_slot(&store).await;
    let after = map("a", &["a", "b", "c"], 2);
    let gone: Vec<Shard> = before.mine().iter().copied().filter(|s| !after.is_mine(*s)).collect();
    assert!(!gone.is_empty());
    for shard in &gone {
        let slots = before.slots(*shard);
        store.remove_slots(slots.start, slots.end).unwrap();
        store.record_shard(shard.0, false).unwrap();
    }
    let err = check_and_record(&store, "c", &before).unwrap_err();
    assert!(matches!(err, PlacementError::Left { .. }), "{err}");
    check_and_record(&store, "c", &after).unwrap();
}
