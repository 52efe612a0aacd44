//! Unit tests of `log`.

use super::*;

#[test]
fn entries_survive_their_encoding_and_another_format_is_refused() {
    let entries = [
        Entry::Term { term: 3, node: "node-2".into(), nonce: 7 },
        Entry::Ops { term: 3, seq: 41, ops: vec![(b"k1".to_vec(), Some(b"v".to_vec())), (b"k2".to_vec(), None)] },
    ];
    for entry in entries {
        let bytes = entry.encode().unwrap();
        assert_eq!(Entry::decode(&bytes).unwrap(), entry);
        let mut other = bytes.clone();
        other[0] = LOG_FORMAT + 1;
        assert!(matches!(Entry::decode(&other), Err(StorageError::Corrupt { .. })));
        assert!(Entry::decode(&bytes[..bytes.len() - 1]).is_err(), "a cut entry is refused");
    }
    assert!(Entry::decode(&[]).is_err());
}

struct Never;

impl Appender for Never {
    fn append(&self, _shard: u32, _entry: Vec<u8>) -> oneshot::Receiver<Result<(), String>> {
        oneshot::channel().1
    }
    fn unconfirmed(&self, _shard: u32, _why: String) {}
}

#[test]
fn entries_are_numbered_only_in_the_established_term() {
    let logs = ShardLogs::new(64, Arc::new(Never));
    assert_eq!(logs.shard_of(Slot(0)), 0);
    assert_eq!(logs.shard_of(Slot(4095)), 63);
    assert_eq!(logs.slots(1), 64..128);
    assert!(matches!(logs.term_for(&keys::prefix(Slot(70), keys::TICKET)), Err(StorageError::NotServed)));
    logs.establish(1, Position { term: 2, seq: 10, resume_at: Some(5), chain_at_resume: 9 });
    assert_eq!(logs.term_for(&keys::prefix(Slot(70), keys::TICKET)).unwrap(), (1, 2));
    assert_eq!(logs.next(1, 2).map(|p| p.seq), Some(11));
    assert_eq!(logs.next(1, 1), None, "an earlier term writes nothing");
    logs.fence(1);
    assert_eq!(logs.next(1, 2), None, "a fenced shard writes nothing");
}

/// Confirms every entry at once (or refuses them all) and keeps them, in order.
#[derive(Default)]
struct Recorder {
    entries: parking_lot::Mutex<Vec<(u32, Vec<u8>)>>,
    refuse: std::sync::atomic::AtomicBool,
    unconfirmed: parking_lot::Mutex<Vec<u32>>,
}

impl Appender for Recorder {
    fn append(&self, shard: u32, entry: Vec<u8>) -> oneshot::Receiver<Result<(), String>> {
        let (tx, rx) = oneshot::channel();
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = tx.send(Err("nack".into()));
        } else {
            self.entries.lock().push((shard, entry));
            let _ = tx.send(Ok(()));
        }
        rx
    }
    fn unconfirmed(&self, shard: u32, _why: String) {
        self.unconfirmed.lock().push(shard);
    }
}

fn logged_store(recorder: &Arc<Recorder>) -> (super::super::Store, Arc<ShardLogs>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = super::super::Store::open(dir.path(), Arc::new(|_| {})).unwrap();
    let logs = Arc::new(ShardLogs::new(64, Arc::clone(recorder) as Arc<dyn Appender>));
    store.with_logs(Arc::clone(&logs));
    (store, logs, dir)
}

/// Every key and value of `slots` but the copy's own position.
fn contents(store: &super::super::Store, slots: std::ops::Range<u32>) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..=u8::MAX)
        .filter(|kind| *kind != keys::LOG_POSITION)
        .flat_map(|kind| store.scan_kind_in_slots(kind, slots.clone(), None, usize::MAX).unwrap())
        .collect()
}

#[actix_web::test]
async fn every_way_of_writing_a_slot_goes_through_its_log_and_a_follower_ends_up_identical() {
    use super::super::{Marker, SlotBatches, WriteBatch};
    use crate::domain::TicketId;
    let recorder = Arc::new(Recorder::default());
    let (owner, logs, _dir) = logged_store(&recorder);
    let slot = Slot(70);
    let shard = logs.shard_of(slot);
    let key = |n: u8| keys::slotted(slot, keys::TICKET, &[&[n; 16]]);
    // Not served here yet: refused before anything is queued.
    let mut batch = WriteBatch::default();
    batch.put(key(1), &Marker).unwrap();
    assert!(matches!(owner.commit(batch).await, Err(StorageError::NotServed)));
    logs.establish(shard, Position { term: 1, ..Default::default() });

    // A durable commit, a compare-and-swap, a unique insert, an applied batch, single removals
    // and a housekeeping removal.
    for n in 1..=4 {
        let mut batch = WriteBatch::default();
        batch.put(key(n), &Marker).unwrap();
        owner.commit(batch).await.unwrap();
    }
    assert!(owner.compare_and_swap(&key(5), None, Some(b"swapped")).await.unwrap());
    assert!(!owner.compare_and_swap(&key(5), None, Some(b"again")).await.unwrap());
    let also = vec![(key(7), b"also".to_vec())];
    assert!(owner.insert_unique(key(6), &Marker, also).await.unwrap());
    let mut batch = WriteBatch::default();
    batch.remove(key(1));
    owner.apply(batch).unwrap();
    owner.remove_each([key(2)]).unwrap();
    SlotBatches::remove_expired(&owner, vec![key(3)]).await.unwrap();
    owner.sync().await;
    // A ticket created through the writer's own path, with an outbox event, for good measure.
    let mut batch = WriteBatch::default();
    let ticket = TicketId::new_in(slot);
    batch.put(keys::ticket(&ticket), &Marker).unwrap();
    owner.commit(batch).await.unwrap();

    let entries = recorder.entries.lock().clone();
    assert!(entries.iter().all(|(s, _)| *s == shard));
    let follower_recorder = Arc::new(Recorder::default());
    let (follower, _, _dir2) = logged_store(&follower_recorder);
    let mut chain = crate::replication::chain::Chain::resume(Position::default());
    let marker = Entry::Term { term: 1, node: "owner".into(), nonce: 1 }.encode().unwrap();
    chain.read(0, &marker, None).unwrap();
    for (offset, (_, bytes)) in entries.iter().enumerate() {
        match chain.read(offset as u64 + 1, bytes, None).unwrap() {
            crate::replication::chain::Step::Apply(Entry::Ops { ops, .. }, position) => {
                follower.apply_followed(shard, ops, &position).unwrap()
            }
            other => panic!("entry {offset} did not count: {other:?}"),
        }
    }
    follower.sync().await;
    let slots = logs.slots(shard);
    let (mine, theirs) = (contents(&owner, slots.clone()), contents(&follower, slots.clone()));
    assert_eq!(mine.len(), 5, "keys 4, 5, 6, 7 and the ticket");
    assert_eq!(mine, theirs, "the follower's copy is the owner's");
    assert_eq!(follower.log_position(shard).unwrap().map(|p| p.seq), Some(entries.len() as u64));
    assert_eq!(owner.log_position(shard).unwrap().map(|p| p.seq), Some(entries.len() as u64));
}

#[actix_web::test]
async fn a_write_the_log_does_not_confirm_is_not_acknowledged_and_fences_its_shard() {
    use super::super::{Marker, WriteBatch};
    let recorder = Arc::new(Recorder::default());
    let (owner, logs, _dir) = logged_store(&recorder);
    let slot = Slot(70);
    let shard = logs.shard_of(slot);
    logs.establish(shard, Position { term: 1, ..Default::default() });
    recorder.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut batch = WriteBatch::default();
    batch.put(keys::slotted(slot, keys::TICKET, &[&[1; 16]]), &Marker).unwrap();
    assert!(matches!(owner.commit(batch).await, Err(StorageError::Unreplicated)));
    assert_eq!(*recorder.unconfirmed.lock(), vec![shard]);
    assert_eq!(logs.term(shard), None, "fenced until a new term");
    assert!(!owner.writes_slot(slot));
    let mut batch = WriteBatch::default();
    batch.put(keys::slotted(slot, keys::TICKET, &[&[2; 16]]), &Marker).unwrap();
    assert!(matches!(owner.commit(batch).await, Err(StorageError::NotServed)));
}
