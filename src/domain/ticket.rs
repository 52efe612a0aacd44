//! A ticket and its rules: who may edit it, when it can be reserved, and how each change
//! moves its version. Pure code: the ticket actor sequences and persists these calls.

use super::{DomainError, Event, FieldError, OrderId, Price, TicketId, UserId};
use serde::{Deserialize, Serialize};

/// Title and price after validation, ready to apply to a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketDraft {
    pub title: String,
    pub price: Price,
}

/// Which route is validating: the seeds word the price rule differently on update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DraftFor {
    Create,
    Update,
}

impl TicketDraft {
    /// Validates a request body's `title` and `price`, reporting every failed rule in field order.
    pub fn parse(
        title: Option<&serde_json::Value>,
        price: Option<&serde_json::Value>,
        purpose: DraftFor,
    ) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let title = match title {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() && s.trim().chars().count() <= 200 => {
                Some(s.trim().to_string())
            }
            _ => {
                errors.push(FieldError { field: "title", message: "Title is required" });
                None
            }
        };
        let price = match price.and_then(Price::parse_json) {
            Some(p) => Some(p),
            None => {
                let message = match purpose {
                    DraftFor::Create => "Price must be greater than 0",
                    DraftFor::Update => "Price must be provided and must be greater than 0",
                };
                errors.push(FieldError { field: "price", message });
                None
            }
        };
        match (title, price) {
            (Some(title), Some(price)) if errors.is_empty() => Ok(Self { title, price }),
            _ => Err(DomainError::Validation(errors)),
        }
    }
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
        let event = Event::ticket_created(&ticket);
        (ticket, event)
    }

    /// Seed rule order: a reserved ticket is refused before ownership is checked.
    pub fn update(&mut self, caller: UserId, draft: TicketDraft, now_ms: i64) -> Result<Event, DomainError> {
        if self.order_id.is_some() {
            return Err(DomainError::Rule("Cannot edit a reserved ticket"));
        }
        if self.user_id != caller {
            return Err(DomainError::NotAuthorized);
        }
        self.title = draft.title;
        self.price = draft.price;
        Ok(self.bump(now_ms))
    }

    /// Grants the ticket to `order`: the single point where a reservation is decided.
    pub fn reserve(&mut self, order: OrderId, buyer: UserId, now_ms: i64) -> Result<Event, DomainError> {
        if self.order_id.is_some() {
            return Err(DomainError::Rule("Ticket is already reserved"));
        }
        if self.user_id == buyer {
            return Err(DomainError::Rule("Cannot buy your own ticket"));
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

    fn bump(&mut self, now_ms: i64) -> Event {
        self.version += 1;
        self.updated_at_ms = now_ms;
        Event::ticket_updated(self)
    }
}

#[cfg(test)]
#[path = "ticket_test.rs"]
mod tests;
