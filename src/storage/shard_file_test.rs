use super::*;
use crate::storage::{Marker, WriteBatch};

async fn store_with(slots: &[u16]) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), std::sync::Arc::new(|_| {})).unwrap();
    for slot in slots {
        let mut batch = WriteBatch::default();
        batch.put(keys::slotted(Slot(*slot), keys::CHARGE, &[b"k"]), &Marker).unwrap();
        store.commit(batch).await.unwrap();
    }
    (store, dir)
}

fn header(first: u32, end: u32) -> ShardHeader {
    ShardHeader { cluster: "c".into(), shard_count: 64, shard: 1, first_slot: first, end_slot: end, exported_at_ms: 0 }
}

#[actix_rt::test]
async fn a_shard_file_carries_exactly_its_slots_and_imports_elsewhere() {
    let (store, _dir) = store_with(&[63, 64, 100, 127, 128]).await;
    let mut file = Vec::new();
    assert_eq!(store.export_shard(&header(64, 128), &mut file).unwrap(), 3);
    let (read, records) = Store::read_shard_file(file.as_slice()).unwrap();
    assert_eq!(read, header(64, 128));
    let (other, _dir2) = store_with(&[]).await;
    other.import_records(&records).unwrap();
    assert!(other.holds_data_in(64..128).unwrap());
    assert!(!other.holds_data_in(0..64).unwrap() && !other.holds_data_in(128..4096).unwrap());
    assert_eq!(store.remove_slots(64, 128).unwrap(), 3);
    assert!(!store.holds_data_in(64..128).unwrap());
    assert!(store.holds_data_in(0..64).unwrap() && store.holds_data_in(128..129).unwrap());
}

#[actix_rt::test]
async fn a_damaged_or_truncated_shard_file_is_refused() {
    let (store, _dir) = store_with(&[70, 80]).await;
    let mut file = Vec::new();
    store.export_shard(&header(64, 128), &mut file).unwrap();
    for at in [20, file.len() / 2, file.len() - 40] {
        let mut damaged = file.clone();
        damaged[at] ^= 0x01;
        assert!(Store::read_shard_file(damaged.as_slice()).is_err(), "a flipped bit at {at}");
    }
    assert!(Store::read_shard_file(&file[..file.len() - 1]).is_err(), "truncated");
    assert!(Store::read_shard_file(&b"not a shard file at all"[..]).is_err());
}
