//! The mail a change sends: which events ask for one, to whom (a user, by id: their address is
//! read where their account lives) and with what (a snapshot of the order as it was).

use super::{Event, Order, UserId};
use serde::{Deserialize, Serialize};

/// One mail to send. (Stored: new variants go last.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mail {
    /// To the buyer: the order is paid, with its receipt.
    OrderConfirmed(Order),
    /// To the buyer: the order expired unpaid, the ticket was released.
    OrderExpired(Order),
    /// To the seller: their ticket was sold.
    TicketSold(Order),
    /// To the account's address: a link to set a new password. The link's token is derived
    /// from the nonce and the node's secret when the mail is written, so it is stored nowhere.
    PasswordReset { user: UserId, email: String, nonce: [u8; 16], expires_at_ms: i64 },
}

impl Mail {
    /// The mail `event` sends, if any.
    pub fn for_event(event: &Event) -> Vec<Mail> {
        match event {
            Event::PaymentCreated { order, .. } => {
                vec![Mail::OrderConfirmed(order.clone()), Mail::TicketSold(order.clone())]
            }
            Event::ExpirationComplete(order) => vec![Mail::OrderExpired(order.clone())],
            Event::PasswordResetRequested { user, email, nonce, expires_at_ms } => vec![Mail::PasswordReset {
                user: *user,
                email: email.clone(),
                nonce: *nonce,
                expires_at_ms: *expires_at_ms,
            }],
            _ => Vec::new(),
        }
    }
}

/// A mail waiting to be sent, under the number of the event that asked for it and its place
/// among that event's mails: (slot, seq, k) names it for good (its `Message-ID`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailEntry {
    pub seq: u64,
    pub k: u8,
    /// When the change that asked for it was written (a receipt's "paid at").
    pub at_ms: i64,
    pub mail: Mail,
}
