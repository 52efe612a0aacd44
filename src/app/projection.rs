//! The read model: the lists the API serves (tickets for sale, a buyer's orders, a seller's
//! tickets), kept in the node's read-model tree and fed by the outbox's events, never by scans
//! of entity records. In a cluster every node feeds the same projection from every node's
//! events.
//!
//! Rows carry the entity's version and an event older than a row is ignored, so applying an
//! event twice (at-least-once delivery, a replay after a crash) changes nothing. The whole
//! model is rebuilt from entity records once, when it is missing or its version changes
//! (a data dir migrated from an earlier release).

use super::search::TicketIndex;
use crate::domain::{Event, Order, OrderId, OrderStatus, Slot, Ticket, TicketId, UserId};
use crate::events::live::{Change, Live};
use crate::events::EventSink;
use crate::storage::read_model::ReadModelBatch;
use crate::storage::{keys, Kind, Marker, ReadModelTree, Record, StorageError, Store, StoredEvent};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bumped when the rows change shape: the model is then rebuilt at start-up.
const VERSION: u32 = 1;

const FOR_SALE: u8 = b's';
const TICKET: u8 = b't';
const BY_SELLER: u8 = b'S';
const BY_BUYER: u8 = b'O';
/// Why an order was cancelled, which the seeds' `order:cancelled` does not say: seen expire
/// (`expiration:complete`, which an expiry writes before its `order:cancelled`), or seen
/// cancelled with no expiry (the buyer). A model rebuilt from records knows neither.
const EXPIRED: u8 = b'x';
const CANCELLED: u8 = b'c';

/// Where a listed ticket stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListingState {
    ForSale,
    Reserved,
    Sold,
    /// Withdrawn by its seller: in no list any more; the row keeps its version, so an older
    /// event arriving late cannot list it again. (Last: rows name variants by position.)
    Withdrawn,
}

/// A ticket as its seller sees it in their list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub ticket: Ticket,
    pub state: ListingState,
}

impl Record for Listing {
    const KIND: Kind = Kind::Projection;
}

fn key(kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![kind];
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

#[derive(Clone)]
pub struct ReadModel {
    tree: ReadModelTree,
    /// Told what each applied ticket event meant to a buyer (the live stream).
    live: Option<Live>,
    /// The tickets for sale, searchable (kept with the rows, rebuilt at start-up).
    index: Arc<TicketIndex>,
}

impl ReadModel {
    /// Opens the read model, rebuilding it from the entity records if it is missing or stale.
    pub fn open(store: &Store) -> Result<Self, StorageError> {
        let model = Self { tree: store.read_model().clone(), live: None, index: Default::default() };
        if model.tree.version()? != Some(VERSION) {
            model.rebuild(store)?;
        }
        Ok(model)
    }

    /// Builds the search index from the rows (a serving node's start-up: a node that only
    /// writes rows, seeding or importing a shard, needs none).
    pub fn indexed(self) -> Self {
        let started = std::time::Instant::now();
        // Streamed from the rows, in id (creation) order: the index is built without holding
        // every ticket at once. Reserved tickets are in it too (not for sale): released, they
        // keep their place in the newest order. A row that does not decode is left out,
        // loudly (its ticket's next event mends it).
        let rows = self.tree.iter::<Listing>(&[TICKET]).filter_map(|row| {
            row.map_err(|e| tracing::error!(error = %e, "a ticket left out of the search index")).ok()
        });
        let indexed = rows.filter_map(|listing| match listing.state {
            ListingState::ForSale => Some((listing.ticket, true)),
            ListingState::Reserved => Some((listing.ticket, false)),
            ListingState::Sold | ListingState::Withdrawn => None,
        });
        let model = Self { index: Arc::new(TicketIndex::build(indexed)), ..self };
        tracing::info!(
            tickets = model.index.listed(),
            index_mib = model.index.heap_bytes() >> 20,
            took_ms = started.elapsed().as_millis() as u64,
            "search index built"
        );
        model
    }

    /// The search index of the tickets for sale.
    pub fn index(&self) -> &TicketIndex {
        &self.index
    }

    /// Tells `live` what each ticket change applied from now on meant to a buyer.
    pub fn telling(mut self, live: Live) -> Self {
        self.live = Some(live);
        self
    }

    fn rebuild(&self, store: &Store) -> Result<(), StorageError> {
        let started = std::time::Instant::now();
        self.tree.clear()?;
        let mut sold = std::collections::HashSet::new();
        let mut orders = 0usize;
        let mut unreadable = 0usize;
        store.sweep(keys::ORDER, |k, v| {
            let Some(order) = readable::<Order>(k, v, &mut unreadable) else { return Ok(true) };
            if order.status == OrderStatus::Complete {
                sold.insert(order.id);
            }
            self.put_order(&order, None)?;
            orders += 1;
            Ok(true)
        })?;
        let mut tickets = 0usize;
        store.sweep(keys::TICKET, |k, v| {
            let Some(ticket) = readable::<Ticket>(k, v, &mut unreadable) else { return Ok(true) };
            let state = match ticket.order_id {
                None => ListingState::ForSale,
                Some(o) if sold.contains(&o) => ListingState::Sold,
                Some(_) => ListingState::Reserved,
            };
            self.put_listing(&Listing { ticket, state })?;
            tickets += 1;
            Ok(true)
        })?;
        self.tree.set_version(VERSION)?;
        tracing::info!(
            tickets,
            orders,
            unreadable,
            took_ms = started.elapsed().as_millis() as u64,
            "read model rebuilt"
        );
        Ok(())
    }

    /// Applies one event (idempotent).
    pub fn apply(&self, event: &Event) -> Result<(), StorageError> {
        match event {
            Event::TicketCreated(t) | Event::TicketUpdated(t) => {
                let current = self.tree.get::<Listing>(&key(TICKET, &[t.id.as_bytes()]))?;
                if current.as_ref().is_some_and(|c| c.ticket.version > t.version) {
                    return Ok(());
                }
                if current.as_ref().is_some_and(|c| c.state == ListingState::Withdrawn) {
                    return Ok(());
                }
                let state = match (t.order_id, &current) {
                    (None, _) => ListingState::ForSale,
                    (Some(o), Some(c)) if c.state == ListingState::Sold && c.ticket.order_id == Some(o) => {
                        ListingState::Sold
                    }
                    (Some(_), _) => ListingState::Reserved,
                };
                self.changed(current.as_ref(), Listing { ticket: t.clone(), state })
            }
            Event::TicketDeleted(t) => {
                let current = self.tree.get::<Listing>(&key(TICKET, &[t.id.as_bytes()]))?;
                if current.as_ref().is_some_and(|c| c.ticket.version > t.version) {
                    return Ok(());
                }
                self.changed(current.as_ref(), Listing { ticket: t.clone(), state: ListingState::Withdrawn })
            }
            Event::OrderCreated(o) | Event::OrderUpdated(o) | Event::PaymentDeclined { order: o, .. } => {
                self.put_order(o, None)
            }
            Event::OrderCancelled(o) => self.put_order(o, Some(CANCELLED)),
            Event::ExpirationComplete(o) => self.put_order(o, Some(EXPIRED)),
            Event::PaymentCreated { order, .. } => {
                self.put_order(order, None)?;
                let listing_key = key(TICKET, &[order.ticket.id.as_bytes()]);
                match self.tree.get::<Listing>(&listing_key)? {
                    Some(current) if current.ticket.order_id == Some(order.id) => {
                        let sold = Listing { state: ListingState::Sold, ..current.clone() };
                        self.changed(Some(&current), sold)
                    }
                    _ => Ok(()),
                }
            }
            // Written by an earlier release; the model was rebuilt from records on upgrade.
            Event::Recorded { .. } => Ok(()),
            Event::PasswordResetRequested { .. } => Ok(()),
        }
    }

    /// Applies an order as a snapshot (a node bootstrapping from another's records): a
    /// complete order marks its ticket sold, as its `payment:created` event would have.
    pub fn apply_order_snapshot(&self, order: &Order) -> Result<(), StorageError> {
        self.put_order(order, None)?;
        if order.status != OrderStatus::Complete {
            return Ok(());
        }
        let listing_key = key(TICKET, &[order.ticket.id.as_bytes()]);
        match self.tree.get::<Listing>(&listing_key)? {
            Some(current) if current.ticket.order_id == Some(order.id) && current.state != ListingState::Sold => {
                let sold = Listing { state: ListingState::Sold, ..current.clone() };
                self.changed(Some(&current), sold)
            }
            _ => Ok(()),
        }
    }

    /// Writes `listing`'s rows, replacing `current`, keeps the search index with them, and
    /// tells the live stream what changed.
    fn changed(&self, current: Option<&Listing>, listing: Listing) -> Result<(), StorageError> {
        let change = change(current, &listing);
        self.put_listing(&listing)?;
        let before = current.map(|c| &c.ticket);
        self.index.set(before, &listing.ticket, listing.state == ListingState::ForSale);
        if let (Some(live), Some(change)) = (&self.live, change) {
            live.tell(change, &listing.ticket);
        }
        Ok(())
    }

    /// Writes `listing`'s rows. Rows already as they should be are not written again (a
    /// seller's marker while the ticket is listed, the for-sale row of a ticket not for sale);
    /// decided by the rows themselves, so a row left wrong by a cut-short apply is mended by
    /// the ticket's next event.
    fn put_listing(&self, listing: &Listing) -> Result<(), StorageError> {
        let t = &listing.ticket;
        let mut batch = ReadModelBatch::default();
        let for_sale = key(FOR_SALE, &[t.id.as_bytes()]);
        if listing.state == ListingState::ForSale {
            batch.put(for_sale, t)?;
        } else if self.tree.contains(&for_sale)? {
            batch.remove(for_sale);
        }
        let by_seller = key(BY_SELLER, &[t.user_id.as_bytes(), t.id.as_bytes()]);
        if listing.state == ListingState::Withdrawn {
            batch.remove(by_seller);
        } else if !self.tree.contains(&by_seller)? {
            batch.put(by_seller, &Marker)?;
        }
        batch.put(key(TICKET, &[t.id.as_bytes()]), listing)?;
        self.tree.apply(batch)
    }

    /// Writes `order`'s row unless a newer one is there, with the `cancelled` marker (why it
    /// was cancelled) if any: markers are kept even for an older event (they only add).
    fn put_order(&self, order: &Order, cancelled: Option<u8>) -> Result<(), StorageError> {
        let row = key(BY_BUYER, &[order.user_id.as_bytes(), order.id.as_bytes()]);
        let mut batch = ReadModelBatch::default();
        if let Some(marker) = cancelled {
            batch.put(key(marker, &[order.id.as_bytes()]), &Marker)?;
        }
        if self.tree.get::<Order>(&row)?.is_none_or(|current| current.version <= order.version) {
            batch.put(row, order)?;
        }
        self.tree.apply(batch)
    }

    /// Tickets for sale, oldest first, after `after`; `true` when more follow.
    pub fn for_sale_after(&self, after: Option<TicketId>, limit: usize) -> Result<(Vec<Ticket>, bool), StorageError> {
        let after = after.map(|id| key(FOR_SALE, &[id.as_bytes()]));
        let mut rows = self.tree.scan::<Ticket>(&[FOR_SALE], after.as_deref(), limit + 1)?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        Ok((rows.into_iter().map(|(_, t)| t).collect(), more))
    }

    /// A ticket for sale (`None`: not for sale, or unknown).
    pub fn for_sale(&self, id: TicketId) -> Result<Option<Ticket>, StorageError> {
        self.tree.get::<Ticket>(&key(FOR_SALE, &[id.as_bytes()]))
    }

    /// Where a ticket stands, as far as this node's events tell (`None`: not seen).
    pub fn listing(&self, id: TicketId) -> Result<Option<Listing>, StorageError> {
        self.tree.get::<Listing>(&key(TICKET, &[id.as_bytes()]))
    }

    /// A buyer's orders, oldest first.
    pub fn orders_of(&self, buyer: &UserId) -> Result<Vec<Order>, StorageError> {
        let prefix = key(BY_BUYER, &[buyer.as_bytes()]);
        Ok(self.tree.scan::<Order>(&prefix, None, usize::MAX)?.into_iter().map(|(_, o)| o).collect())
    }

    /// Why a cancelled `order` was cancelled, as far as this node's events tell: `Some(true)`
    /// its window ran out, `Some(false)` its buyer cancelled it, `None` not known (a model
    /// rebuilt from records).
    pub fn expired(&self, order: OrderId) -> Result<Option<bool>, StorageError> {
        if self.tree.get::<Marker>(&key(EXPIRED, &[order.as_bytes()]))?.is_some() {
            return Ok(Some(true));
        }
        Ok(self.tree.get::<Marker>(&key(CANCELLED, &[order.as_bytes()]))?.map(|_| false))
    }

    /// A seller's tickets with where each stands, oldest first.
    pub fn tickets_of(&self, seller: &UserId) -> Result<Vec<Listing>, StorageError> {
        let prefix = key(BY_SELLER, &[seller.as_bytes()]);
        let mut out = Vec::new();
        for (k, Marker) in self.tree.scan::<Marker>(&prefix, None, usize::MAX)? {
            let Some(id) = keys::trailing_id(&k) else { continue };
            if let Some(listing) = self.tree.get::<Listing>(&key(TICKET, &[&id]))? {
                out.push(listing);
            }
        }
        Ok(out)
    }
}

/// What replacing `current` by `next` means to a buyer (`None`: nothing they would see: the
/// same event again, or a version bump of a ticket that stays reserved).
fn change(current: Option<&Listing>, next: &Listing) -> Option<Change> {
    use ListingState::*;
    let before = current.map(|c| c.state);
    if current.is_some_and(|c| c.ticket == next.ticket && c.state == next.state) {
        return None;
    }
    match (before, next.state) {
        (Some(Withdrawn), _) => None,
        (_, Withdrawn) => Some(Change::Withdrawn),
        (None, ForSale) => Some(Change::Listed),
        (Some(ForSale), ForSale) => Some(Change::Updated),
        (Some(Reserved | Sold), ForSale) => Some(Change::Released),
        (Some(Sold), Sold) => None,
        (_, Sold) => Some(Change::Sold),
        (Some(Reserved), Reserved) => None,
        (_, Reserved) => Some(Change::Reserved),
    }
}

/// A record the rebuild can use. One that does not decode is reported (its actor reports it
/// too) and skipped: one bad record must not keep the node from starting.
fn readable<T: Record>(key: &[u8], bytes: &[u8], unreadable: &mut usize) -> Option<T> {
    match crate::storage::envelope::decode(key, bytes) {
        Ok(record) => Some(record),
        Err(e) => {
            tracing::error!(error = %e, "record skipped by the read-model rebuild");
            *unreadable += 1;
            None
        }
    }
}

impl EventSink for ReadModel {
    fn publish<'a>(&'a self, _slot: Slot, events: &'a [StoredEvent]) -> LocalBoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            for e in events {
                self.apply(&e.event).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
#[path = "projection_test.rs"]
mod tests;
