//! What each mail says, in plain text, and to whom.

use crate::app::{App, AppError};
use crate::domain::{iso_utc, now_ms, DomainError, Mail, MailEntry, Order};
use crate::json::Amount;
use crate::settings::MailSettings;

pub struct Letter {
    pub subject: String,
    pub body: String,
}

/// The recipient's address and the letter for `entry`; `None` when there is no one to send it
/// to any more (an account or a ticket gone, a reset link expired). `Err`: the recipient could
/// not be looked up now.
pub async fn letter(app: &App, settings: &MailSettings, entry: &MailEntry) -> Result<Option<(String, Letter)>, String> {
    let mail = &entry.mail;
    let base = settings.base_url.trim_end_matches('/');
    let address = |user| async move { app.contact(user).await.map_err(|e| e.to_string()) };
    Ok(match mail {
        Mail::OrderConfirmed(order) => {
            address(order.user_id).await?.map(|to| (to, confirmed(base, order, entry.at_ms)))
        }
        Mail::OrderExpired(order) => address(order.user_id).await?.map(|to| (to, expired(base, order))),
        Mail::TicketSold(order) => match app.ticket(order.ticket.id).await {
            Ok(ticket) => address(ticket.user_id).await?.map(|to| (to, sold(base, order))),
            Err(AppError::Domain(DomainError::NotFound)) => None,
            Err(e) => return Err(e.to_string()),
        },
        // A link that no longer works is not sent (the queue was held up past its 30 minutes).
        Mail::PasswordReset { expires_at_ms, .. } if *expires_at_ms <= now_ms() => None,
        Mail::PasswordReset { user, email, nonce, expires_at_ms } => {
            let secret = app.settings().auth.jwt_secret.expose().as_bytes();
            let token = crate::auth::reset::token(secret, *user, nonce, *expires_at_ms);
            Some((email.clone(), reset(base, &token)))
        }
    })
}

fn confirmed(base: &str, order: &Order, paid_at_ms: i64) -> Letter {
    let paid_at = iso_utc(paid_at_ms);
    Letter {
        subject: format!("Your ticket: {}", order.ticket.title),
        body: format!(
            "Thank you: your order is paid and the ticket is yours.\n\n\
             Receipt\n\
             Order number: {id}\n\
             Ticket: {title}\n\
             Price: {price}\n\
             Paid at: {paid_at}\n\
             Payment reference: {reference}\n\n\
             Your receipt, to print or keep: {base}/orders/{id}/receipt\n",
            id = order.id,
            title = order.ticket.title,
            price = Amount(order.ticket.price),
            reference = order.stripe_id.as_deref().unwrap_or("-"),
        ),
    }
}

fn expired(base: &str, order: &Order) -> Letter {
    Letter {
        subject: format!("Your order for {} expired", order.ticket.title),
        body: format!(
            "Your order {id} for {title} was not paid in time, so it expired and the ticket was \
             released. It may still be for sale: {base}/tickets/{ticket}\n",
            id = order.id,
            title = order.ticket.title,
            ticket = order.ticket.id,
        ),
    }
}

fn sold(base: &str, order: &Order) -> Letter {
    Letter {
        subject: format!("You sold {}", order.ticket.title),
        body: format!(
            "Your ticket {title} was sold for {price} (order {id}).\n\nYour tickets: {base}/tickets/mine\n",
            title = order.ticket.title,
            price = Amount(order.ticket.price),
            id = order.id,
        ),
    }
}

fn reset(base: &str, token: &str) -> Letter {
    Letter {
        subject: "Reset your password".into(),
        body: format!(
            "Someone asked to reset the password of your ticketing account. To choose a new one, \
             open this link within 30 minutes (it works once):\n\n{base}/auth/reset?token={token}\n\n\
             If it was not you, ignore this mail: your password stays as it is.\n"
        ),
    }
}
