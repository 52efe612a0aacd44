//! Every key on disk, built only from typed ids. One sled tree holds all records; the first byte
//! of a key says what it is, so a batch can change a ticket, an order, the outbox and the
//! deadline index atomically.

use crate::domain::{Email, OrderId, PaymentId, TicketId, UserId};

pub const USER: u8 = b'u';
pub const EMAIL: u8 = b'e';
pub const TICKET: u8 = b't';
pub const ORDER: u8 = b'o';
pub const ORDERS_BY_USER: u8 = b'O';
pub const OUTBOX: u8 = b'x';
pub const DEADLINE: u8 = b'd';
pub const PAYMENT: u8 = b'p';
pub const PAYMENT_BY_ORDER: u8 = b'P';
pub const REFRESH: u8 = b'r';
pub const REFRESH_FAMILY: u8 = b'f';
pub const WEBHOOK_EVENT: u8 = b'w';
pub const CHARGE: u8 = b'c';
pub const REFUNDED_CHARGE: u8 = b'R';
pub const IDEMPOTENCY: u8 = b'k';
/// Outbox records that could not be decoded, moved aside so the rest keeps flowing.
pub const QUARANTINE: u8 = b'X';

fn with(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
    key.push(prefix);
    for p in parts {
        key.extend_from_slice(p);
    }
    key
}

pub fn user(id: &UserId) -> Vec<u8> {
    with(USER, &[id.as_bytes()])
}
pub fn email(email: &Email) -> Vec<u8> {
    with(EMAIL, &[email.as_str().as_bytes()])
}
pub fn ticket(id: &TicketId) -> Vec<u8> {
    with(TICKET, &[id.as_bytes()])
}
pub fn order(id: &OrderId) -> Vec<u8> {
    with(ORDER, &[id.as_bytes()])
}
pub fn order_by_user(user: &UserId, order: &OrderId) -> Vec<u8> {
    with(ORDERS_BY_USER, &[user.as_bytes(), order.as_bytes()])
}
pub fn orders_of_user(user: &UserId) -> Vec<u8> {
    with(ORDERS_BY_USER, &[user.as_bytes()])
}
pub fn outbox(seq: u64) -> Vec<u8> {
    with(OUTBOX, &[&seq.to_be_bytes()])
}
/// Deadline keys sort by time, so the due ones are a prefix scan away.
pub fn deadline(at_ms: i64, order: &OrderId) -> Vec<u8> {
    with(DEADLINE, &[&(at_ms.max(0) as u64).to_be_bytes(), order.as_bytes()])
}
pub fn payment(id: &PaymentId) -> Vec<u8> {
    with(PAYMENT, &[id.as_bytes()])
}
pub fn payment_by_order(order: &OrderId) -> Vec<u8> {
    with(PAYMENT_BY_ORDER, &[order.as_bytes()])
}
pub fn refresh(id: &[u8; 16]) -> Vec<u8> {
    with(REFRESH, &[id])
}
/// Index of the refresh tokens descended from one sign-in (revoked together).
pub fn refresh_family(family: &[u8; 16]) -> Vec<u8> {
    with(REFRESH_FAMILY, &[family])
}
pub fn refresh_family_member(family: &[u8; 16], id: &[u8; 16]) -> Vec<u8> {
    with(REFRESH_FAMILY, &[family, id])
}
pub fn webhook_event(event_id: &str) -> Vec<u8> {
    with(WEBHOOK_EVENT, &[event_id.as_bytes()])
}
/// Marks a provider charge as refunded, so a repeated late confirmation refunds it once.
pub fn refunded_charge(charge_id: &str) -> Vec<u8> {
    with(REFUNDED_CHARGE, &[charge_id.as_bytes()])
}
pub fn charge(idempotency_key: &str) -> Vec<u8> {
    with(CHARGE, &[idempotency_key.as_bytes()])
}

/// Splits a deadline key back into (time, order).
pub fn parse_deadline(key: &[u8]) -> Option<(i64, OrderId)> {
    let at: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    let id: [u8; 16] = key.get(9..25)?.try_into().ok()?;
    Some((u64::from_be_bytes(at) as i64, OrderId::from_bytes(id)))
}

/// A readable form of a key for error messages and logs.
pub fn describe(key: &[u8]) -> String {
    let Some((&prefix, rest)) = key.split_first() else {
        return "<empty key>".into();
    };
    let name = match prefix {
        USER => "user",
        EMAIL => "email",
        TICKET => "ticket",
        ORDER => "order",
        ORDERS_BY_USER => "orders-by-user",
        OUTBOX => "outbox",
        DEADLINE => "deadline",
        PAYMENT => "payment",
        PAYMENT_BY_ORDER => "payment-by-order",
        REFRESH => "refresh-token",
        REFRESH_FAMILY => "refresh-family",
        WEBHOOK_EVENT => "webhook-event",
        CHARGE => "charge",
        REFUNDED_CHARGE => "refunded-charge",
        IDEMPOTENCY => "idempotency-key",
        QUARANTINE => "quarantined-event",
        _ => "unknown",
    };
    let body = match prefix {
        USER | TICKET | ORDER | PAYMENT | PAYMENT_BY_ORDER if rest.len() == 16 => {
            uuid::Uuid::from_slice(rest).map(|u| u.to_string()).unwrap_or_else(|_| hex::encode(rest))
        }
        EMAIL | WEBHOOK_EVENT | CHARGE | REFUNDED_CHARGE => String::from_utf8_lossy(rest).into_owned(),
        _ => hex::encode(rest),
    };
    format!("{name}/{body}")
}

#[cfg(test)]
#[path = "keys_test.rs"]
mod tests;
