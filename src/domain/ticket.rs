//! A ticket and its rules: who may edit it, when it can be reserved, and how each change
//! moves its version. Pure code: the ticket actor sequences and persists these calls.

use super::{DomainError, Event, Field, OrderId, Price, Rule, TicketId, TicketSnapshot, UserId};
use serde::{Deserialize, Serialize};

/// Title and price after validation, ready to apply to a ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketDraft {
    pub title: String,
    pub price: Price,
}

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

impl TicketDraft {
    /// Validates a title and a price (`None`: missing or not a valid price), reporting every
    /// invalid field in field order. The title is read by [`title`].
    pub fn new(title: Option<&str>, price: Option<Price>) -> Result<Self, DomainError> {
        let title = title.and_then(self::title);
        match (title, price) {
            (Some(title), Some(price)) => Ok(Self { title: title.to_string(), price }),
            (title, price) => {
                let mut invalid = Vec::new();
                if title.is_none() {
                    invalid.push(Field::Title);
                }
                if price.is_none() {
                    invalid.push(Field::Price);
                }
                Err(DomainError::Validation(invalid))
            }
        }
    }
}

/// A title as it is kept: trimmed of whitespace at both ends, then 1 to [`MAX_TITLE_CHARS`]
/// characters, none of them a control character (U+0000..U+001F, U+007F..U+009F). A title is
/// one line of text shown on pages, in lists and in events: a NUL, an escape or a line break
/// inside it has no meaning there, and a title of nothing but such characters is no title at
/// all, so both are refused rather than cleaned up.
pub fn title(raw: &str) -> Option<&str> {
    let title = raw.trim();
    let valid = !title.is_empty() && title.chars().count() <= MAX_TITLE_CHARS && !title.chars().any(char::is_control);
    valid.then_some(title)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub title: String,
    pub price: Price,
    pub user_id: UserId,
    /// Starts at 0, +1 on every change, in the ticket actor's mailbox order.
    pub version: u64,
    /// The order holding this ticket (reserved or sold); `None` when it is for sale.
    pub order_id: Option<OrderId>,
    pub updated_at_ms: i64,
}

impl Ticket {
    pub fn create(id: TicketId, seller: UserId, draft: TicketDraft, now_ms: i64) -> (Self, Event) {
        let ticket = Self {
            id,
            title: draft.title,
            price: draft.price,
            user_id: seller,
            version: 0,
            order_id: None,
            updated_at_ms: now_ms,
        };
        let event = Event::TicketCreated(ticket.clone());
        (ticket, event)
    }

    /// Seed rule order: a reserved ticket is refused before ownership is checked.
    pub fn update(&mut self, caller: UserId, draft: TicketDraft, now_ms: i64) -> Result<Event, DomainError> {
        if self.order_id.is_some() {
            return Err(Rule::CannotEditReserved.into());
        }
        if self.user_id != caller {
            return Err(DomainError::NotAuthorized);
        }
        self.title = draft.title;
        self.price = draft.price;
        Ok(self.bump(now_ms))
    }

    /// The owner withdraws the listing: the ticket is gone; its last version (raised by one)
    /// and its `ticket:deleted` event are returned. Only the owner may, and only while no
    /// order holds it.
    pub fn withdraw(mut self, caller: UserId, now_ms: i64) -> Result<(Self, Event), DomainError> {
        if self.user_id != caller {
            return Err(DomainError::NotAuthorized);
        }
        if self.order_id.is_some() {
            return Err(Rule::CannotDeleteReserved.into());
        }
        self.touch(now_ms);
        let event = Event::TicketDeleted(self.clone());
        Ok((self, event))
    }

    /// Grants the ticket to `order`: the single point where a reservation is decided.
    pub fn reserve(&mut self, order: OrderId, buyer: UserId, now_ms: i64) -> Result<Event, DomainError> {
        if self.order_id.is_some() {
            return Err(Rule::TicketReserved.into());
        }
        if self.user_id == buyer {
            return Err(Rule::CannotBuyOwnTicket.into());
        }
        self.order_id = Some(order);
        Ok(self.bump(now_ms))
    }

    /// Frees the ticket if, and only if, `order` holds it; a stale or repeated release is a no-op.
    pub fn release(&mut self, order: OrderId, now_ms: i64) -> Option<Event> {
        if self.order_id != Some(order) {
            return None;
        }
        self.order_id = None;
        Some(self.bump(now_ms))
    }

    /// The ticket as an order records it.
    pub fn snapshot(&self) -> TicketSnapshot {
        TicketSnapshot { id: self.id, title: self.title.clone(), price: self.price, version: self.version }
    }

    fn bump(&mut self, now_ms: i64) -> Event {
        self.touch(now_ms);
        Event::TicketUpdated(self.clone())
    }

    /// One change more: the version rises by one.
    fn touch(&mut self, now_ms: i64) {
        self.version += 1;
        self.updated_at_ms = now_ms;
    }
}

#[cfg(test)]
#[path = "ticket_test.rs"]
mod tests;
