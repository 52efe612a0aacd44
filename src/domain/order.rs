//! An order: one buyer's reservation of one ticket, its 15-minute window, and the rules for
//! cancelling, expiring and paying. Pure code: the order actor sequences and persists these.

use super::{DomainError, Event, OrderId, PaymentId, Price, Rule, TicketId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    Created,
    AwaitingPayment,
    Complete,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::AwaitingPayment => "awaiting:payment",
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
        }
    }

    /// A live order holds its ticket.
    pub fn is_live(&self) -> bool {
        !matches!(self, Self::Cancelled)
    }
}

/// The ticket as it was when the order was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSnapshot {
    pub id: TicketId,
    pub title: String,
    pub price: Price,
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub expires_at_ms: i64,
    pub version: u64,
    pub ticket: TicketSnapshot,
    pub created_at_ms: i64,
    /// Set once the ticket actor confirmed the release of a cancelled order's hold; until then
    /// the deadline index keeps the order so the release is retried after a crash.
    pub ticket_released: bool,
    /// Numbered charge attempts: the idempotency key of attempt n is derived from (id, n).
    pub payment_attempt: u32,
    /// The card token of the current attempt, kept so that an attempt interrupted by a crash
    /// can be resumed with the same request (and so the same idempotency key).
    pub payment_token: Option<String>,
    /// The provider's charge id once paid.
    pub stripe_id: Option<String>,
}

/// What a payment attempt must send to the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    pub amount_cents: u64,
    pub token: String,
    pub idempotency_key: String,
}

impl Order {
    pub fn place(id: OrderId, buyer: UserId, ticket: TicketSnapshot, now_ms: i64, window_ms: i64) -> (Self, Event) {
        let order = Self {
            id,
            user_id: buyer,
            status: OrderStatus::Created,
            expires_at_ms: now_ms + window_ms,
            version: 0,
            ticket,
            created_at_ms: now_ms,
            ticket_released: false,
            payment_attempt: 0,
            payment_token: None,
            stripe_id: None,
        };
        let event = Event::OrderCreated(order.clone());
        (order, event)
    }

    /// The order as an event carries it: without the card token of an attempt in flight
    /// (events are kept in the order's history and fed to read models; the token is needed
    /// only by the order itself, to resume its attempt).
    pub fn for_event(&self) -> Self {
        Self { payment_token: None, ..self.clone() }
    }

    pub fn expires_at_iso(&self) -> String {
        iso_utc(self.expires_at_ms)
    }

    /// When this order's unfinished work is due, for the durable index of unfinished work:
    /// its expiry while it can expire, at once (`0`) for a cancelled order whose ticket is not
    /// released yet, and never once it is settled.
    pub fn work_due_ms(&self) -> Option<i64> {
        match self.status {
            OrderStatus::Created | OrderStatus::AwaitingPayment => Some(self.expires_at_ms),
            OrderStatus::Cancelled if !self.ticket_released => Some(0),
            OrderStatus::Cancelled | OrderStatus::Complete => None,
        }
    }

    pub fn check_owner(&self, caller: UserId) -> Result<(), DomainError> {
        if self.user_id == caller {
            Ok(())
        } else {
            Err(DomainError::NotAuthorized)
        }
    }

    /// The buyer cancels. Cancelling twice changes nothing (`Ok(vec![])`).
    pub fn cancel(&mut self, caller: UserId) -> Result<Vec<Event>, DomainError> {
        self.check_owner(caller)?;
        match self.status {
            OrderStatus::Cancelled => Ok(vec![]),
            OrderStatus::Complete => Err(Rule::CannotCancelCompleted.into()),
            OrderStatus::AwaitingPayment => Err(Rule::PaymentInProgress.into()),
            OrderStatus::Created => {
                self.status = OrderStatus::Cancelled;
                self.version += 1;
                Ok(vec![Event::OrderCancelled(self.clone())])
            }
        }
    }

    /// The window passed: an unpaid order is cancelled; anything else is left alone.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Event> {
        if self.status != OrderStatus::Created || now_ms < self.expires_at_ms {
            return vec![];
        }
        self.status = OrderStatus::Cancelled;
        self.version += 1;
        vec![Event::ExpirationComplete(self.clone()), Event::OrderCancelled(self.clone())]
    }

    /// Whether `caller` may start paying for this order now, by any means (a card token, a
    /// provider's hosted checkout page): their own order, still `created` and not expired. A
    /// payment already in flight is `PaymentInProgress`: a second way of paying for it could
    /// take the money twice ([`Self::begin_payment`] resumes its own attempt instead).
    pub fn check_payable(&self, caller: UserId, now_ms: i64) -> Result<(), DomainError> {
        self.check_owner(caller)?;
        match self.status {
            OrderStatus::Cancelled => Err(Rule::CannotPayCancelled.into()),
            OrderStatus::Complete => Err(Rule::AlreadyPaid.into()),
            OrderStatus::AwaitingPayment => Err(Rule::PaymentInProgress.into()),
            OrderStatus::Created if now_ms >= self.expires_at_ms => Err(Rule::OrderExpired.into()),
            OrderStatus::Created => Ok(()),
        }
    }

    /// Whether a payment the provider confirms now came too late to complete this order: it
    /// is cancelled, or still `created` past its window (its timer has not fired yet). A
    /// charge in flight (`awaiting:payment`) began in time and may complete it.
    pub fn confirmation_is_late(&self, now_ms: i64) -> bool {
        match self.status {
            OrderStatus::Cancelled => true,
            OrderStatus::Created => now_ms >= self.expires_at_ms,
            OrderStatus::AwaitingPayment | OrderStatus::Complete => false,
        }
    }

    /// Starts a charge: the order is `awaiting:payment` until the provider answers, so it can
    /// neither expire nor be cancelled under the charge. An attempt left `awaiting:payment`
    /// (the provider did not answer, or the node crashed) is resumed, not restarted: same
    /// token, same idempotency key, so it can never charge twice.
    pub fn begin_payment(&mut self, caller: UserId, token: &str, now_ms: i64) -> Result<ChargeRequest, DomainError> {
        let expired = DomainError::Rule(Rule::OrderExpired);
        if self.status == OrderStatus::AwaitingPayment {
            self.check_owner(caller)?;
            return self.charge_request().ok_or(expired);
        }
        self.check_payable(caller, now_ms)?;
        self.status = OrderStatus::AwaitingPayment;
        self.payment_attempt += 1;
        self.payment_token = Some(token.to_string());
        self.version += 1;
        self.charge_request().ok_or(expired)
    }

    /// The request of the attempt in flight, if any (also used to resume it).
    pub fn charge_request(&self) -> Option<ChargeRequest> {
        Some(ChargeRequest {
            amount_cents: self.ticket.price.cents(),
            token: self.payment_token.clone()?,
            idempotency_key: format!("order-{}-attempt-{}", self.id, self.payment_attempt),
        })
    }

    /// The provider confirmed the charge: the order is complete and the ticket stays sold.
    /// Returns `None` when the order was already complete (a repeated confirmation).
    pub fn complete(&mut self, payment_id: PaymentId, stripe_id: &str) -> Option<Event> {
        match self.status {
            OrderStatus::Complete => None,
            _ => {
                self.status = OrderStatus::Complete;
                self.payment_token = None;
                self.stripe_id = Some(stripe_id.to_string());
                self.version += 1;
                Some(Event::PaymentCreated { order: self.clone(), payment_id, stripe_id: stripe_id.to_string() })
            }
        }
    }

    /// The provider declined (`reason`): the order is payable again until it expires.
    pub fn payment_declined(&mut self, reason: &str) -> Option<Event> {
        if self.status != OrderStatus::AwaitingPayment {
            return None;
        }
        self.status = OrderStatus::Created;
        self.payment_token = None;
        self.version += 1;
        Some(Event::PaymentDeclined { order: self.clone(), reason: reason.to_string() })
    }
}

/// Milliseconds since the epoch as ISO-8601 UTC with millisecond precision.
pub fn iso_utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
#[path = "order_test.rs"]
mod tests;
