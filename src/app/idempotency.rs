//! The records behind `Idempotency-Key` on POST, kept on the node owning the key's slot (a
//! record lives in the slot of its (caller, key) digest; `crate::routing` takes claims there):
//!
//! * the first response for a (caller, key) is kept for 24 h and replayed to a retry of the
//!   same request; the same key with another request is refused; a retry while the first still
//!   runs is refused as in progress;
//! * a request answered "may have run" (504) leaves its key **uncertain**: a retry runs again,
//!   and the commands behind keyed requests are idempotent by construction (a keyed reservation
//!   makes the order id derived from its key, a cancel of a cancelled order changes nothing),
//!   so the change happens once and the retry gets the original answer;
//! * any other server error frees the key, so it can be retried.
//!
//! It also holds the owner's side of a keyed ticket create (`create_keyed_here`).

use super::error::AppError;
use crate::actors::ticket::{CreateTicket, GetTicket, TicketActor};
use crate::actors::{EntityError, Registry};
use crate::deadline::Deadline;
use crate::domain::{now_ms, DomainError, Rule, Ticket, TicketDraft, TicketId, UserId};
use crate::storage::{envelope::Kind, keys, Record, StorageError, Store, WriteBatch};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const KEEP_MS: i64 = 24 * 3600 * 1000;
/// A claim running longer than this was abandoned (the node crashed): the key is free again.
const ABANDONED_MS: i64 = 60_000;

/// A response as it is replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Stored: variants are named by position (append only).
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Outcome {
    /// Running since the record's creation (records of earlier releases).
    Running,
    Done(StoredResponse),
    /// Answered "may have run": a retry runs again.
    Uncertain,
    /// Running since this time (ms).
    RunningSince(i64),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct IdempotencyRecord {
    request_hash: [u8; 32],
    /// When the key was first claimed: ids a keyed request derives are ordered by it.
    created_at_ms: i64,
    outcome: Outcome,
}

impl Record for IdempotencyRecord {
    const KIND: Kind = Kind::Idempotency;
}

/// What a claim found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Claim {
    /// The request is this caller's to run (first time, or `again` after an uncertain
    /// outcome or an abandoned run); settle it afterwards. `first_claimed_ms` is when the key
    /// was first claimed; `run` names this run of it (settling needs it).
    Claimed { first_claimed_ms: i64, again: bool, run: i64 },
    /// The request already ran: answer this.
    Replay(StoredResponse),
}

/// How a claimed request ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOutcome {
    /// Its response, kept for replay.
    Done(StoredResponse),
    /// It may have run (504): the key stays, and a retry runs again.
    Uncertain,
    /// It failed without running: the key is freed.
    Release,
}

/// The digest that names a caller's key: its record, and the slot of what a create made with it.
pub fn key_digest(scope: &str, key: &str) -> [u8; 32] {
    Sha256::digest(format!("{scope}\0{key}").as_bytes()).into()
}

/// Claims the key atomically (a compare-and-swap), or reports what holds it.
pub async fn claim(store: &Store, digest: &[u8; 32], request_hash: [u8; 32]) -> Result<Claim, AppError> {
    let key = keys::idempotency(digest);
    loop {
        let now = now_ms();
        let current = store.get_raw(&key)?;
        let (mut first_claimed_ms, mut again) = (now, false);
        if let Some(bytes) = &current {
            let existing: IdempotencyRecord = crate::storage::envelope::decode(&key, bytes)?;
            let age = now - existing.created_at_ms;
            let running_since = match existing.outcome {
                Outcome::Running => Some(existing.created_at_ms),
                Outcome::RunningSince(at) => Some(at),
                Outcome::Done(_) | Outcome::Uncertain => None,
            };
            let abandoned = running_since.is_some_and(|at| now - at > ABANDONED_MS);
            if age <= KEEP_MS {
                if existing.request_hash != request_hash {
                    return Err(AppError::IdempotencyMismatch);
                }
                match existing.outcome {
                    Outcome::Done(response) => return Ok(Claim::Replay(response)),
                    _ if running_since.is_some() && !abandoned => return Err(AppError::IdempotencyInProgress),
                    // Uncertain or abandoned: run again, as the same keyed request.
                    _ => (first_claimed_ms, again) = (existing.created_at_ms, true),
                }
            }
        }
        let running =
            IdempotencyRecord { request_hash, created_at_ms: first_claimed_ms, outcome: Outcome::RunningSince(now) };
        if store.compare_and_swap(&key, current.as_deref(), Some(&Store::encode(&running)?)).await? {
            return Ok(Claim::Claimed { first_claimed_ms, again, run: now });
        }
    }
}

/// Settles run `run` of a claimed key with how its request ended.
pub async fn settle(
    store: &Store,
    digest: &[u8; 32],
    request_hash: [u8; 32],
    run: i64,
    outcome: KeyOutcome,
) -> Result<(), AppError> {
    let key = keys::idempotency(digest);
    let created_at_ms = match store.get::<IdempotencyRecord>(&key)? {
        Some(IdempotencyRecord { request_hash: hash, created_at_ms, outcome: Outcome::RunningSince(at) })
            if hash == request_hash && at == run =>
        {
            created_at_ms
        }
        // Taken over meanwhile (abandoned, then claimed by a retry that runs now), or settled
        // already: not this run's to settle.
        Some(_) => return Ok(()),
        None => now_ms(),
    };
    let mut batch = WriteBatch::default();
    let stored = match outcome {
        KeyOutcome::Done(response) => Outcome::Done(response),
        KeyOutcome::Uncertain => Outcome::Uncertain,
        KeyOutcome::Release => {
            batch.remove(key);
            store.commit(batch).await?;
            return Ok(());
        }
    };
    batch.put(key, &IdempotencyRecord { request_hash, created_at_ms, outcome: stored })?;
    store.commit(batch).await?;
    Ok(())
}

/// Deletes records older than 24 h (housekeeping).
pub async fn prune(store: &Store) -> Result<usize, StorageError> {
    let cutoff = now_ms() - KEEP_MS;
    let mut expired = Vec::new();
    store.sweep(keys::IDEMPOTENCY, |key, value| {
        let record: IdempotencyRecord = crate::storage::envelope::decode(key, value)?;
        if record.created_at_ms < cutoff {
            expired.push(key.to_vec());
        }
        Ok(true)
    })?;
    crate::storage::SlotBatches::remove_expired(store, expired).await
}

/// The ticket a keyed create made (`keys::created_for_key`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct CreatedFor(pub TicketId);

impl Record for CreatedFor {
    const KIND: Kind = Kind::Idempotency;
}

/// A keyed create on the node owning the key's slot. It records which ticket the key makes
/// before making it (compare-and-swap), and creates that ticket only if it does not exist
/// yet: one effect however often, and through whichever node, it is retried.
pub async fn create_keyed_here(
    store: &Store,
    tickets: &Registry<TicketActor>,
    seller: UserId,
    draft: TicketDraft,
    key: [u8; 32],
    deadline: Deadline,
) -> Result<Ticket, AppError> {
    let record = keys::created_for_key(&key);
    let id = match store.get::<CreatedFor>(&record)? {
        Some(CreatedFor(id)) => id,
        None => {
            let fresh = TicketId::new_in(keys::slot_of_digest(&key));
            let encoded = Store::encode(&CreatedFor(fresh))?;
            if store.compare_and_swap(&record, None, Some(&encoded)).await? {
                fresh
            } else {
                store.get::<CreatedFor>(&record)?.map(|c| c.0).ok_or(AppError::Unavailable)?
            }
        }
    };
    match tickets.ask(id, CreateTicket { seller, draft }, deadline).await {
        Ok(ticket) => Ok(ticket),
        Err(EntityError::Domain(DomainError::Rule(Rule::TicketExists))) => {
            let ticket = tickets.ask(id, GetTicket, deadline).await?;
            if ticket.user_id != seller {
                return Err(DomainError::NotAuthorized.into());
            }
            Ok(ticket)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
#[path = "idempotency_test.rs"]
mod tests;
