//! What crosses between nodes: a request for something a shard owns, and its reply. Both are
//! carried in the versioned wire encoding (`actors::wire`); the AMQP properties around them
//! (`rpc`) carry the correlation id, the map epoch, the caller's deadline and the request id.

use crate::actors::EntityError;
use crate::app::{AppError, Session};
use crate::domain::{Order, Ticket, TicketDraft, UserId};
use serde::{Deserialize, Serialize};

/// A request for the node that owns the shard.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// A command to an entity actor: `kind` is the actor kind (`ticket`, `order`), `id` and
    /// `command` in the wire encoding, `timeout_ms` the caller's own bound when it has one (a
    /// payment waits longer than the default ask).
    Entity { kind: String, id: Vec<u8>, command: Vec<u8>, timeout_ms: Option<u64> },
    /// An account use case (a user lives in the slot of its email).
    Account(AccountRequest),
    /// A ticket created with an `Idempotency-Key`: it lives in the slot of the key's digest, on
    /// the node that also keeps which ticket the key made.
    CreateTicket { seller: UserId, draft: TicketDraft, key: [u8; 32] },
    /// A page of the tickets (then orders) of a shard, for a node bootstrapping its read
    /// model: those after `after` (a disk key), in key order.
    Snapshot { shard: u32, orders: bool, after: Option<Vec<u8>> },
}

/// A page of a shard's entities; `next` is the cursor for the following page, if any.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SnapshotPage {
    pub tickets: Vec<Ticket>,
    pub orders: Vec<Order>,
    pub next: Option<Vec<u8>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum AccountRequest {
    SignUp {
        email: String,
        password: String,
    },
    SignIn {
        email: String,
        password: String,
    },
    Refresh {
        token: String,
    },
    SignOut {
        token: String,
    },
    /// A new access token for a valid refresh token, which stays as it is (last: the wire
    /// names variants by position).
    Renew {
        token: String,
    },
    /// A sign-in with the client's address, for the account's own throttle.
    SignInFrom {
        email: String,
        password: String,
        client: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// The entity's reply in the wire encoding, or why the command failed.
    Entity(Result<Vec<u8>, EntityError>),
    /// A session (sign-up, sign-in, refresh), nothing (sign-out), or why not.
    Account(Result<Option<Session>, AppError>),
    Ticket(Result<Ticket, AppError>),
    Snapshot(Result<SnapshotPage, AppError>),
    /// The owner refused the request before running it (another epoch, an unknown message).
    Refused(String),
}
