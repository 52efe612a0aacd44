//! Upgrades a data dir written by an earlier release to the current key layout.
//!
//! * Layout 1 (the first releases): every record in sled's default tree under
//!   `[kind][rest]` keys, outbox events stored as JSON text, a `orders-by-user` index.
//! * Layout 2 (this release): records in the `entities` tree under `[slot][kind][rest]`
//!   ([`super::keys`]), typed outbox events, lists served from the read model.
//!
//! The migration copies every layout-1 record into the `entities` tree under its new key,
//! flushes, records the layout in `meta`, and only then empties the old tree: a crash at any
//! point leaves either the old data (and the copy is redone) or the finished migration. The
//! read model is rebuilt afterwards from the entity records (`crate::app::projection`).
//!
//! Ids written by layout 1 carry random bytes where ids now carry their slot; those bytes are
//! their slot, so routing by id finds them. Unfinished work is settled on the way: a deadline
//! whose order was never written, or whose order is cancelled but still holds its ticket, is
//! made due at once, so the node releases those holds as it starts.

use super::envelope;
use super::records::JsonEvent;
use super::{keys, DeadlineEntry, Marker, StorageError, StoredEvent};
use crate::domain::{slot_of_id, Event, Order, OrderId, OrderStatus, Payment, PaymentId, Slot, TicketId, UserId};

/// The key layout this release writes.
pub const LAYOUT: u32 = 2;
const LAYOUT_KEY: &str = "layout";
/// Present while the old tree is being emptied after a finished copy.
const CLEARING_KEY: &str = "clearing_layout_1";
const CHUNK: usize = 1_000;

pub fn run(db: &sled::Db, data: &sled::Tree, meta: &sled::Tree) -> Result<(), StorageError> {
    let layout = meta.get(LAYOUT_KEY)?.and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok()).map(u32::from_be_bytes);
    let legacy: &sled::Tree = db;
    if layout == Some(LAYOUT) {
        if !legacy.is_empty() {
            if meta.get(CLEARING_KEY)?.is_none() {
                // Not our unfinished clean-up: an older release wrote here after the migration
                // (a rollback). Clearing it would lose those writes.
                return Err(StorageError::Refused(
                    "the data dir holds layout-1 records written after its migration (an older release ran on it); restore a backup or migrate it by hand",
                ));
            }
            // A migration that crashed while emptying the old tree: finish the clean-up.
            legacy.clear()?;
            meta.remove(CLEARING_KEY)?;
            db.flush()?;
        }
        return Ok(());
    }
    if let Some(newer) = layout.filter(|l| *l > LAYOUT) {
        return Err(StorageError::Corrupt {
            key: "meta/layout".into(),
            reason: format!(
                "data dir has layout {newer}, written by a newer release; this release reads up to {LAYOUT}"
            ),
        });
    }
    let started = std::time::Instant::now();
    let mut copied = 0usize;
    let mut batch = sled::Batch::default();
    let mut pending = 0usize;
    for item in legacy.iter() {
        let (key, value) = item?;
        for (new_key, new_value) in convert(legacy, &key, &value)? {
            batch.insert(new_key, new_value);
            pending += 1;
            copied += 1;
        }
        if pending >= CHUNK {
            data.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    data.apply_batch(batch)?;
    db.flush()?;
    meta.insert(LAYOUT_KEY, &LAYOUT.to_be_bytes())?;
    db.flush()?;
    if !legacy.is_empty() {
        legacy.clear()?;
        db.flush()?;
        tracing::info!(
            records = copied,
            took_ms = started.elapsed().as_millis() as u64,
            "data dir migrated to layout 2"
        );
    }
    Ok(())
}

type Entry = (Vec<u8>, Vec<u8>);

fn id16(rest: &[u8]) -> Option<[u8; 16]> {
    rest.get(..16)?.try_into().ok()
}

/// The new key(s) and value(s) of one layout-1 record (none: dropped, rebuilt elsewhere).
fn convert(legacy: &sled::Tree, key: &[u8], value: &[u8]) -> Result<Vec<Entry>, StorageError> {
    let Some((&kind, rest)) = key.split_first() else { return Ok(vec![]) };
    let same = |new_key: Vec<u8>| Ok(vec![(new_key, value.to_vec())]);
    let id = id16(rest);
    match (kind, id) {
        (keys::USER, Some(id)) => same(keys::user(&UserId::from_bytes(id))),
        (keys::TICKET, Some(id)) => same(keys::ticket(&TicketId::from_bytes(id))),
        (keys::ORDER, Some(id)) => same(keys::order(&OrderId::from_bytes(id))),
        (keys::PAYMENT_BY_ORDER, Some(id)) => same(keys::payment_by_order(&OrderId::from_bytes(id))),
        (keys::REFRESH, Some(id)) => same(keys::refresh(&id)),
        (keys::PAYMENT, Some(id)) => {
            let mut out = vec![(keys::payment(&PaymentId::from_bytes(id)), value.to_vec())];
            // Refund markers are re-made from the payments that record a refund.
            if let Ok(p) = envelope::decode::<Payment>(key, value) {
                if p.refund_id.is_some() {
                    out.push((keys::refunded_charge(&p.order_id, &p.stripe_id), envelope::encode(&Marker)?));
                }
            }
            Ok(out)
        }
        (keys::REFRESH_FAMILY, _) => match (id16(rest), rest.get(16..).and_then(id16)) {
            (Some(family), Some(member)) => same(keys::refresh_family_member(&family, &member)),
            _ => Ok(vec![]),
        },
        (keys::EMAIL, _) => same(keys::slotted(Slot::of_text(&String::from_utf8_lossy(rest)), keys::EMAIL, &[rest])),
        (keys::WEBHOOK_EVENT, _) => same(keys::webhook_event(&String::from_utf8_lossy(rest))),
        (keys::CHARGE, _) => {
            let idempotency_key = String::from_utf8_lossy(rest).into_owned();
            same(keys::charge(charge_slot(&idempotency_key), &idempotency_key))
        }
        (keys::IDEMPOTENCY, _) => match <[u8; 32]>::try_from(rest) {
            Ok(digest) => same(keys::idempotency(&digest)),
            Err(_) => Ok(vec![]),
        },
        (keys::OUTBOX, _) => outbox_entry(key, value),
        (keys::DEADLINE, _) => deadline_entry(legacy, rest, value),
        // The orders-by-user index and refund markers are rebuilt; nothing else is known.
        (b'O', _) | (keys::REFUNDED_CHARGE, _) => Ok(vec![]),
        _ => same(keys::quarantined(&[&[0u8, 0][..], key].concat())),
    }
}

/// The slot of a charge's order, from the idempotency key `order-<id>-attempt-<n>`.
pub fn charge_slot(idempotency_key: &str) -> Slot {
    idempotency_key
        .strip_prefix("order-")
        .and_then(|rest| rest.get(..36))
        .and_then(OrderId::parse)
        .map_or_else(|| Slot::of_text(idempotency_key), |o| o.slot())
}

fn outbox_entry(key: &[u8], value: &[u8]) -> Result<Vec<Entry>, StorageError> {
    match envelope::decode::<JsonEvent>(key, value) {
        Ok(old) => {
            let slot = uuid::Uuid::try_parse(&old.entity_id).map(|u| slot_of_id(u.as_bytes())).unwrap_or(Slot(0));
            let event = Event::Recorded { subject: old.subject, entity_id: old.entity_id, payload: old.payload };
            let record = StoredEvent { seq: old.seq, event, trace: None };
            Ok(vec![(keys::outbox(slot, old.seq), envelope::encode(&record)?)])
        }
        Err(e) => {
            tracing::error!(error = %e, "undecodable outbox record of the earlier layout quarantined");
            Ok(vec![(keys::quarantined(&[&[0u8, 0][..], key].concat()), value.to_vec())])
        }
    }
}

/// A deadline keeps its time, unless it stands for a hold that must be released now.
fn deadline_entry(legacy: &sled::Tree, rest: &[u8], value: &[u8]) -> Result<Vec<Entry>, StorageError> {
    let (Some(at), Some(order)) = (rest.get(..8), rest.get(8..).and_then(id16)) else { return Ok(vec![]) };
    let mut at = u64::from_be_bytes(at.try_into().unwrap_or_default()) as i64;
    let old_order_key = [&[keys::ORDER][..], &order].concat();
    let release_now = match legacy.get(&old_order_key)? {
        None => true,
        Some(bytes) => envelope::decode::<Order>(&old_order_key, &bytes)
            .map(|o| o.status == OrderStatus::Cancelled && !o.ticket_released)
            .unwrap_or(false),
    };
    if release_now {
        at = 0;
    }
    // Check the value decodes, so a broken one is set aside now rather than failing at its time.
    let new_key = keys::deadline(at, &OrderId::from_bytes(order));
    if let Err(e) = envelope::decode::<DeadlineEntry>(&new_key, value) {
        tracing::error!(error = %e, "undecodable deadline of the earlier layout quarantined");
        return Ok(vec![(keys::quarantined(&new_key), value.to_vec())]);
    }
    Ok(vec![(new_key, value.to_vec())])
}

#[cfg(test)]
#[path = "migrate_test.rs"]
mod tests;
