//! The domain: plain types and rules, with no actors, HTTP or disk. Each actor calls these
//! methods in its mailbox order and persists what they return.

mod email;
mod error;
mod events;
mod history;
mod ids;
mod mail;
mod order;
mod payment;
mod price;
mod ticket;
mod user;

pub use email::Email;
pub use error::{DomainError, Field, Rule};
pub use events::Event;
pub use history::{CancelReason, Entity, HistoryEntry, Step};
pub use ids::{shard_of_slot, slot_of_id, slots_of_shard, OrderId, PaymentId, Slot, TicketId, UserId, SLOTS};
pub use mail::{Mail, MailEntry};
pub use order::{iso_utc, ChargeRequest, Order, OrderStatus, TicketSnapshot};
pub use payment::Payment;
pub use price::{Price, MAX_PRICE_CENTS};
pub use ticket::{Ticket, TicketDraft, MAX_TITLE_CHARS};
pub use user::{Password, PasswordReset, RefreshToken, User};

/// Milliseconds since the Unix epoch, the one clock the domain is given.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
