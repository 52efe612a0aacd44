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
        if self.order_id == Some(order) {
            return Err(DomainError::Rule("Ticket is already reserved"));
        }
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
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(title: &str, cents: u64) -> TicketDraft {
        TicketDraft { title: title.into(), price: Price::from_cents(cents) }
    }

    fn ticket() -> (Ticket, UserId) {
        let seller = UserId::new();
        (Ticket::create(TicketId::new(), seller, draft("concert", 2000), 0).0, seller)
    }

    #[test]
    fn validation_reports_every_failed_field_in_order() {
        let err = TicketDraft::parse(Some(&json!("  ")), Some(&json!(-10)), DraftFor::Create).unwrap_err();
        assert_eq!(
            err,
            DomainError::Validation(vec![
                FieldError { field: "title", message: "Title is required" },
                FieldError { field: "price", message: "Price must be greater than 0" },
            ])
        );
        let err = TicketDraft::parse(Some(&json!("ok")), None, DraftFor::Update).unwrap_err();
        assert_eq!(
            err,
            DomainError::Validation(vec![FieldError {
                field: "price",
                message: "Price must be provided and must be greater than 0"
            }])
        );
    }

    #[test]
    fn titles_are_trimmed_and_must_be_text() {
        let d = TicketDraft::parse(Some(&json!("  gig ")), Some(&json!(5)), DraftFor::Create).unwrap();
        assert_eq!(d.title, "gig");
        assert!(TicketDraft::parse(Some(&json!(5)), Some(&json!(5)), DraftFor::Create).is_err());
    }

    #[test]
    fn a_new_ticket_is_at_version_zero_and_emits_created() {
        let (t, _) = ticket();
        assert_eq!(t.version, 0);
        assert_eq!(Event::ticket_created(&t).subject, "ticket:created");
    }

    #[test]
    fn every_update_bumps_the_version_by_one() {
        let (mut t, seller) = ticket();
        for v in 1..=3 {
            t.update(seller, draft("x", 100 * v), 0).unwrap();
            assert_eq!(t.version, v);
        }
    }

    #[test]
    fn only_the_owner_may_update() {
        let (mut t, _) = ticket();
        assert_eq!(t.update(UserId::new(), draft("x", 1), 0), Err(DomainError::NotAuthorized));
        assert_eq!(t.version, 0);
    }

    #[test]
    fn a_reserved_ticket_cannot_be_edited_even_by_its_owner() {
        let (mut t, seller) = ticket();
        t.reserve(OrderId::new(), UserId::new(), 0).unwrap();
        assert_eq!(t.update(seller, draft("x", 1), 0), Err(DomainError::Rule("Cannot edit a reserved ticket")));
    }

    #[test]
    fn a_ticket_is_reserved_once_and_released_only_by_its_order() {
        let (mut t, seller) = ticket();
        let (first, second) = (OrderId::new(), OrderId::new());
        t.reserve(first, UserId::new(), 0).unwrap();
        assert_eq!(t.reserve(second, UserId::new(), 0), Err(DomainError::Rule("Ticket is already reserved")));
        assert!(t.release(second, 0).is_none());
        assert_eq!(t.order_id, Some(first));
        assert!(t.release(first, 0).is_some());
        assert_eq!(t.order_id, None);
        assert_eq!(t.version, 2);
        assert_eq!(t.reserve(OrderId::new(), seller, 0), Err(DomainError::Rule("Cannot buy your own ticket")));
    }
}
