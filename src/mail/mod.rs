//! Where mail leaves the node: SMTP (`lettre`), with `[mail] smtp_url` set.
//!
//! A change that sends mail writes it into its shard (`<slot>m<seq><k>`, `storage::keys::mail`)
//! in the same write as the change, under the number of the event that asked for it. This
//! worker sends what is waiting in the slots this node owns, each slot in order, only once the
//! write is on disk (never before), and deletes it once the server took it: at least once (a
//! crash between the two sends it again), each mail named for good by its `Message-ID`
//! `<slot.seq.k@domain>`, so a receiving system can drop a repeat. It is not a sink of the
//! event publisher: a mail server that is down holds back mail, never the events, and never a
//! request (the write is all a request does). Moved with its shard, the queue is sent by the
//! new owner.

mod compose;

use crate::app::App;
use crate::domain::{MailEntry, Slot};
use crate::settings::MailSettings;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;

/// Mails read from the queue per pass.
const PASS: usize = 100;
/// Between looks at the queue while nothing fails.
const IDLE: Duration = Duration::from_millis(500);
/// How long one mail may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// Sends the queued mail, for as long as the node runs (`settings.smtp_url` set).
pub async fn run(app: Arc<App>) {
    let settings = app.settings().mail.clone();
    let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url) {
        Ok(builder) => builder.timeout(Some(SEND_TIMEOUT)).build(),
        Err(e) => {
            tracing::error!(error = %e, "mail.smtp_url cannot be used: no mail will be sent");
            return;
        }
    };
    // Checked with the settings; read once here rather than for every mail.
    let from: Mailbox = match settings.from.parse() {
        Ok(from) => from,
        Err(e) => {
            tracing::error!(error = %e, "mail.from cannot be used: no mail will be sent");
            return;
        }
    };
    let retry = Duration::from_secs_f64(settings.retry_seconds);
    let mut last_failure_logged: Option<std::time::Instant> = None;
    loop {
        let failed = match pass(&app, &transport, &settings, &from).await {
            Ok(sent) => {
                if sent > 0 {
                    tracing::debug!(sent, "mail sent");
                }
                false
            }
            Err(e) => {
                // Said once a minute at most: a server down for an hour is one line a minute.
                if last_failure_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "mail could not be sent; it waits and is tried again");
                    last_failure_logged = Some(std::time::Instant::now());
                }
                true
            }
        };
        // Polled: the outbox's wake-up is the event publisher's (one waiter), and mail may
        // wait half a second.
        tokio::time::sleep(if failed { retry } else { IDLE }).await;
    }
}

/// Sends what is waiting, each slot in order. A mail the server refuses for good (an address
/// it rejects), or that has no recipient any more, is dropped and counted: it must not hold
/// the others back. A recipient that cannot be looked up now (their node away) holds back its
/// slot's later mail for this pass only. The server unreachable or refusing for now ends the
/// pass (`Err`): everything waits for the next try.
async fn pass(
    app: &App,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    settings: &MailSettings,
    from: &Mailbox,
) -> Result<usize, String> {
    let pending = app.store().pending_mail(PASS).map_err(|e| e.to_string())?;
    let mut sent = 0;
    let mut held_back = std::collections::HashSet::new();
    for (key, slot, entry) in pending {
        if held_back.contains(&slot) {
            continue;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err((e, _)) => {
                tracing::error!(error = %e, "undecodable mail dropped");
                app.metrics().mail("dropped");
                remove(app, key)?;
                continue;
            }
        };
        match message(app, settings, from, slot, &entry).await {
            Ok(Some(message)) => match transport.send(message).await {
                Ok(_) => {
                    app.metrics().mail("sent");
                    sent += 1;
                }
                Err(e) if e.is_permanent() => {
                    tracing::warn!(error = %e, slot = slot.0, seq = entry.seq, "mail refused for good by the server: dropped");
                    app.metrics().mail("dropped");
                }
                Err(e) => {
                    app.metrics().mail("failed");
                    return Err(e.to_string());
                }
            },
            Ok(None) => app.metrics().mail("dropped"),
            Err(e) => {
                tracing::debug!(error = %e, slot = slot.0, "a mail's recipient cannot be looked up now; its slot waits");
                held_back.insert(slot);
                continue;
            }
        }
        remove(app, key)?;
    }
    Ok(sent)
}

/// The message for `entry`; `None` when it has no recipient any more (an account gone).
async fn message(
    app: &App,
    settings: &MailSettings,
    from: &Mailbox,
    slot: Slot,
    entry: &MailEntry,
) -> Result<Option<lettre::Message>, String> {
    let Some((to, letter)) = compose::letter(app, settings, entry).await? else { return Ok(None) };
    let domain = from.email.domain().to_string();
    let to: Mailbox = match to.parse() {
        Ok(to) => to,
        Err(e) => {
            tracing::warn!(error = %e, "mail to an address lettre refuses dropped");
            return Ok(None);
        }
    };
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(letter.subject)
        .message_id(Some(format!("<{}.{}.{}@{domain}>", slot.0, entry.seq, entry.k)))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(letter.body)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Removes a sent (or dropped) mail. Not flushed, like a delivered event's outbox entry: it
/// rides on the next durable write (a crash before that sends it again: at least once), and it
/// is taken while the disk is full, which a new write is not (a mail sent would otherwise be
/// sent again every try until space is freed).
fn remove(app: &App, key: Vec<u8>) -> Result<(), String> {
    app.store().remove_each([key]).map_err(|e| e.to_string())
}
