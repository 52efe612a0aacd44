//! Fills a closed data dir as a node that has traded for a while would hold it: tickets for
//! sale spread over every slot, some of them held by orders with a pending deadline, and the
//! read model built from the records (no events: nobody has seen them yet). For the benchmark's scale scenario and the recovery tests: writing a
//! million tickets through HTTP would take minutes and measure nothing of interest.

use crate::domain::{now_ms, Order, OrderId, Price, Slot, Ticket, TicketId, UserId, SLOTS};
use crate::storage::{keys, DeadlineEntry, StorageError, Store, WriteBatch};
use std::path::Path;

/// What was written.
pub struct Seeded {
    pub seller: UserId,
    pub buyer: UserId,
    /// Every ticket, the held ones first.
    pub tickets: Vec<TicketId>,
}

/// Writes `tickets` tickets (title `seat N`, 15.00) and holds the first `held` of them for
/// orders expiring `expires_in_ms` from now. No node may have `path` open.
pub async fn seed(path: &Path, tickets: usize, held: usize, expires_in_ms: i64) -> Result<Seeded, StorageError> {
    seed_with(path, tickets, held, expires_in_ms, |n| (format!("seat {n}"), Price::from_cents(1500))).await
}

/// [`seed`], ticket `n` titled and priced by `listing(n)`.
pub async fn seed_with(
    path: &Path,
    tickets: usize,
    held: usize,
    expires_in_ms: i64,
    listing: impl Fn(usize) -> (String, Price),
) -> Result<Seeded, StorageError> {
    let store = Store::open(path, std::sync::Arc::new(|_| {}))?;
    let (seller, buyer) = (UserId::new_in(Slot(0)), UserId::new_in(Slot(1)));
    let now = now_ms();
    let (mut held_ids, mut free_ids) = (Vec::new(), Vec::with_capacity(tickets));
    let per_slot = tickets.div_ceil(SLOTS as usize).max(1);
    for slot in 0..SLOTS {
        let slot = Slot(slot as u16);
        let mut batch = WriteBatch::default();
        for _ in 0..per_slot.min(tickets - held_ids.len() - free_ids.len()) {
            let n = held_ids.len() + free_ids.len();
            let id = TicketId::new_in(slot);
            let (title, price) = listing(n);
            let mut ticket =
                Ticket { id, title, price, user_id: seller, version: 0, order_id: None, updated_at_ms: now };
            if n < held {
                let order_id = OrderId::new_in(slot);
                let (order, _) = Order::place(order_id, buyer, ticket.snapshot(), now, expires_in_ms);
                ticket.order_id = Some(order_id);
                ticket.version = 1;
                batch.put(keys::order(&order_id), &order)?;
                batch.put(keys::deadline(order.expires_at_ms, &order_id), &DeadlineEntry { ticket_id: id })?;
            }
            batch.put(keys::ticket(&id), &ticket)?;
            if n < held {
                held_ids.push(id)
            } else {
                free_ids.push(id)
            }
        }
        store.apply(batch)?;
        if held_ids.len() + free_ids.len() == tickets {
            break;
        }
    }
    super::projection::ReadModel::open(&store)?;
    store.close().await;
    held_ids.extend(free_ids);
    Ok(Seeded { seller, buyer, tickets: held_ids })
}
