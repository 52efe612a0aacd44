//! Unit tests of the output gate.

use super::*;
use crate::domain::{Price, Slot, Ticket, TicketId, UserId};
use crate::storage::keys;

fn ticket() -> Ticket {
    Ticket {
        id: TicketId::parse("0190a3c4-1111-7000-8000-00000000000b").unwrap(),
        title: "gated".into(),
        price: Price::from_cents(500),
        user_id: UserId::new_in(Slot(11)),
        version: 0,
        order_id: None,
        updated_at_ms: 0,
    }
}

/// A cell whose one write is already on disk, as when the group commit's flush came before
/// the step's reply was handed over.
async fn cell_with_a_flushed_write(dir: &std::path::Path) -> (DurableCell<Ticket>, u64) {
    let store = Store::open(dir, Arc::new(|_| {})).unwrap();
    let ticket = ticket();
    let key = keys::ticket(&ticket.id);
    let mut batch = WriteBatch::default();
    batch.put(key.clone(), &ticket).unwrap();
    let pending = store.write(batch).unwrap();
    let seq = pending.seq;
    pending.durable().await.unwrap();
    let cell = DurableCell {
        key,
        state: Loaded::Ready(Some(ticket)),
        store,
        stats: Arc::new(ActorStats::new(1)),
        last_write: seq,
        last_queued: seq,
    };
    (cell, seq)
}

#[actix_rt::test]
async fn a_traced_step_whose_write_is_on_disk_before_its_reply_still_has_its_flush_wait() {
    let dir = tempfile::tempdir().unwrap();
    let (cell, seq) = cell_with_a_flushed_write(dir.path()).await;
    assert!(cell.gate().is_none(), "nothing left to wait for");
    let gate = cell.gate_of_step(seq - 1, true).expect("the step that wrote shows its wait in its trace");
    assert_eq!(gate.seq, seq);
    gate.passed().await.expect("a wait of nothing");
    assert!(cell.gate_of_step(seq - 1, false).is_none(), "untraced: no wait at all");
    assert!(cell.gate_of_step(seq, true).is_none(), "a step that wrote nothing waits for nothing on disk");
}
