//! Every key on disk, built only from typed ids, and every one starting with its **slot**:
//!
//! ```text
//! [slot: u16 big-endian][kind: u8][rest]
//! ```
//!
//! So one slot's data is one contiguous key range (a shard moves as ranges), and a write batch
//! that changes a ticket, its new order, the deadline and the outbox stays inside one slot.
//! The kind byte says what a record is; within a slot, records of one kind sort together.

use crate::domain::{slot_of_id, Email, Entity, OrderId, PaymentId, Slot, TicketId, UserId};

pub const USER: u8 = b'u';
pub const EMAIL: u8 = b'e';
pub const TICKET: u8 = b't';
pub const ORDER: u8 = b'o';
pub const OUTBOX: u8 = b'x';
/// Unfinished work of an order, by due time: its expiry, or a ticket release still to run.
pub const DEADLINE: u8 = b'd';
pub const PAYMENT: u8 = b'p';
pub const PAYMENT_BY_ORDER: u8 = b'P';
pub const REFRESH: u8 = b'r';
pub const REFRESH_FAMILY: u8 = b'f';
pub const WEBHOOK_EVENT: u8 = b'w';
pub const CHARGE: u8 = b'c';
pub const REFUNDED_CHARGE: u8 = b'R';
pub const IDEMPOTENCY: u8 = b'k';
/// The ticket a create with an `Idempotency-Key` made, by the key's digest.
pub const CREATED_FOR_KEY: u8 = b'K';
/// The last outbox sequence number handed out in the slot (8 bytes, big-endian).
pub const OUTBOX_SEQ: u8 = b'q';
/// Outbox records that could not be decoded, moved aside so the rest keeps flowing.
pub const QUARANTINE: u8 = b'X';
/// Where this copy of a shard stands in the shard's log (in the shard's first slot; never
/// logged itself: every copy has its own).
pub const LOG_POSITION: u8 = b'L';
/// A ticket its seller withdrew: its id is never made again (a keyed create's retry).
pub const WITHDRAWN: u8 = b'W';
/// An entity's kept events (its audit trail), by entity, then outbox number.
pub const HISTORY: u8 = b'h';
/// Mail waiting to be sent, by the outbox number of the event that asked for it.
pub const MAIL: u8 = b'm';
/// A user's password reset not used yet.
pub const PASSWORD_RESET: u8 = b'z';

/// Bytes before a key's own parts: the slot and the kind.
pub const HEADER: usize = 3;

pub fn slotted(slot: Slot, kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(HEADER + parts.iter().map(|p| p.len()).sum::<usize>());
    key.extend_from_slice(&slot.to_be_bytes());
    key.push(kind);
    for p in parts {
        key.extend_from_slice(p);
    }
    key
}

/// The slot a key belongs to.
pub fn slot_of(key: &[u8]) -> Option<Slot> {
    Some(Slot(u16::from_be_bytes([*key.first()?, *key.get(1)?])))
}

/// What a kind byte names, in logs and metrics (`other` for a byte no record kind uses).
pub fn kind_name(kind: u8) -> &'static str {
    match kind {
        USER => "user",
        EMAIL => "email",
        TICKET => "ticket",
        ORDER => "order",
        OUTBOX => "outbox",
        DEADLINE => "deadline",
        PAYMENT => "payment",
        PAYMENT_BY_ORDER => "payment_by_order",
        REFRESH => "refresh",
        REFRESH_FAMILY => "refresh_family",
        WEBHOOK_EVENT => "webhook_event",
        CHARGE => "charge",
        REFUNDED_CHARGE => "refunded_charge",
        IDEMPOTENCY => "idempotency",
        CREATED_FOR_KEY => "created_for_key",
        OUTBOX_SEQ => "outbox_seq",
        QUARANTINE => "quarantine",
        LOG_POSITION => "log_position",
        WITHDRAWN => "withdrawn",
        HISTORY => "history",
        MAIL => "mail",
        PASSWORD_RESET => "password_reset",
        _ => "other",
    }
}

/// The kind byte of a key.
pub fn kind_of(key: &[u8]) -> Option<u8> {
    key.get(2).copied()
}

/// The first key of `kind` in `slot` (a prefix of every such key).
pub fn prefix(slot: Slot, kind: u8) -> Vec<u8> {
    slotted(slot, kind, &[])
}

pub fn user(id: &UserId) -> Vec<u8> {
    slotted(id.slot(), USER, &[id.as_bytes()])
}
pub fn password_reset(user: &UserId) -> Vec<u8> {
    slotted(user.slot(), PASSWORD_RESET, &[user.as_bytes()])
}
pub fn email(email: &Email) -> Vec<u8> {
    slotted(Slot::of_text(email.as_str()), EMAIL, &[email.as_str().as_bytes()])
}
pub fn ticket(id: &TicketId) -> Vec<u8> {
    slotted(id.slot(), TICKET, &[id.as_bytes()])
}
pub fn withdrawn_ticket(id: &TicketId) -> Vec<u8> {
    slotted(id.slot(), WITHDRAWN, &[id.as_bytes()])
}
pub fn order(id: &OrderId) -> Vec<u8> {
    slotted(id.slot(), ORDER, &[id.as_bytes()])
}
/// Mail `k` of event `seq` of `slot`.
pub fn mail(slot: Slot, seq: u64, k: u8) -> Vec<u8> {
    slotted(slot, MAIL, &[&seq.to_be_bytes(), &[k]])
}
pub fn outbox(slot: Slot, seq: u64) -> Vec<u8> {
    slotted(slot, OUTBOX, &[&seq.to_be_bytes()])
}
/// One kept event of an entity: its entries sort in outbox order after the entity's prefix
/// (its kind, `t` or `o`, then its id: an order's id never reads a ticket's history).
pub fn history(entity: &Entity, seq: u64) -> Vec<u8> {
    let mut key = history_prefix(entity);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}
pub fn history_prefix(entity: &Entity) -> Vec<u8> {
    let kind = match entity {
        Entity::Ticket(_) => TICKET,
        Entity::Order(_) => ORDER,
    };
    slotted(entity.slot(), HISTORY, &[&[kind], entity.id_bytes()])
}
pub fn outbox_seq(slot: Slot) -> Vec<u8> {
    slotted(slot, OUTBOX_SEQ, &[])
}
/// Deadline keys sort by time within a slot, so the due ones are a prefix scan away.
pub fn deadline(at_ms: i64, order: &OrderId) -> Vec<u8> {
    slotted(order.slot(), DEADLINE, &[&(at_ms.max(0) as u64).to_be_bytes(), order.as_bytes()])
}
pub fn payment(id: &PaymentId) -> Vec<u8> {
    slotted(id.slot(), PAYMENT, &[id.as_bytes()])
}
pub fn payment_by_order(order: &OrderId) -> Vec<u8> {
    slotted(order.slot(), PAYMENT_BY_ORDER, &[order.as_bytes()])
}
/// A refresh token lives in the slot its id carries (its user's, for tokens issued now).
pub fn refresh(id: &[u8; 16]) -> Vec<u8> {
    slotted(slot_of_id(id), REFRESH, &[id])
}
/// Index of the refresh tokens descended from one sign-in (revoked together).
pub fn refresh_family(family: &[u8; 16]) -> Vec<u8> {
    slotted(slot_of_id(family), REFRESH_FAMILY, &[family])
}
pub fn refresh_family_member(family: &[u8; 16], id: &[u8; 16]) -> Vec<u8> {
    slotted(slot_of_id(family), REFRESH_FAMILY, &[family, id])
}
pub fn webhook_event(event_id: &str) -> Vec<u8> {
    slotted(Slot::of_text(event_id), WEBHOOK_EVENT, &[event_id.as_bytes()])
}
/// Marks a provider charge of an order as refunded, so a repeated late confirmation refunds
/// it once.
pub fn refunded_charge(order: &OrderId, charge_id: &str) -> Vec<u8> {
    slotted(order.slot(), REFUNDED_CHARGE, &[charge_id.as_bytes()])
}
/// A charge the offline gateway made, under its idempotency key, in its order's slot.
pub fn charge(slot: Slot, idempotency_key: &str) -> Vec<u8> {
    slotted(slot, CHARGE, &[idempotency_key.as_bytes()])
}
/// An idempotency record, named by the digest of (caller, key); its slot is the digest's.
pub fn idempotency(digest: &[u8; 32]) -> Vec<u8> {
    slotted(slot_of_digest(digest), IDEMPOTENCY, &[digest])
}
/// The slot of an `Idempotency-Key` digest: a create with that key lives there.
pub fn slot_of_digest(digest: &[u8; 32]) -> Slot {
    Slot::from_field(u16::from_be_bytes([digest[0], digest[1]]))
}
pub fn created_for_key(digest: &[u8; 32]) -> Vec<u8> {
    slotted(slot_of_digest(digest), CREATED_FOR_KEY, &[digest])
}
pub fn quarantined(original: &[u8]) -> Vec<u8> {
    slotted(slot_of(original).unwrap_or(Slot(0)), QUARANTINE, &[original])
}

/// Splits a deadline key back into (time, order).
pub fn parse_deadline(key: &[u8]) -> Option<(i64, OrderId)> {
    let at: [u8; 8] = key.get(HEADER..HEADER + 8)?.try_into().ok()?;
    let id: [u8; 16] = key.get(HEADER + 8..HEADER + 24)?.try_into().ok()?;
    Some((u64::from_be_bytes(at) as i64, OrderId::from_bytes(id)))
}

/// Splits an outbox key back into (slot, sequence).
pub fn parse_outbox(key: &[u8]) -> Option<(Slot, u64)> {
    let seq: [u8; 8] = key.get(HEADER..HEADER + 8)?.try_into().ok()?;
    Some((slot_of(key)?, u64::from_be_bytes(seq)))
}

/// The last 16 bytes of a key as an id (index keys that end with one).
pub fn trailing_id(key: &[u8]) -> Option<[u8; 16]> {
    key.len().checked_sub(16).and_then(|start| key.get(start..)).and_then(|b| b.try_into().ok())
}

/// A readable form of a key for error messages and logs.
pub fn describe(key: &[u8]) -> String {
    let (Some(slot), Some(kind)) = (slot_of(key), kind_of(key)) else {
        return format!("<short key {}>", hex::encode(key));
    };
    let rest = &key[HEADER..];
    let name = kind_name(kind);
    let body = match kind {
        USER | TICKET | ORDER | PAYMENT | PAYMENT_BY_ORDER if rest.len() == 16 => {
            uuid::Uuid::from_slice(rest).map(|u| u.to_string()).unwrap_or_else(|_| hex::encode(rest))
        }
        EMAIL | WEBHOOK_EVENT | CHARGE | REFUNDED_CHARGE => String::from_utf8_lossy(rest).into_owned(),
        _ => hex::encode(rest),
    };
    format!("{slot}/{name}/{body}")
}

#[cfg(test)]
#[path = "keys_test.rs"]
mod tests;
