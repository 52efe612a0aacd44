//! The records behind `Idempotency-Key` on POST: the first response for a (caller, key) is kept
//! for 24 h and replayed to a retry of the same request; the same key with another request is
//! refused; a retry while the first still runs is refused as in progress. Server errors are
//! not kept, so they can be retried. A record lives in the slot of its (caller, key) digest.

use super::{App, AppError};
use crate::domain::now_ms;
use crate::storage::{envelope::Kind, keys, Record, StorageError, Store, WriteBatch};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const KEEP_MS: i64 = 24 * 3600 * 1000;
/// An in-flight claim older than this was abandoned (the node crashed): the key is free again.
const ABANDONED_MS: i64 = 60_000;

/// A response as it is replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Outcome {
    Running,
    Done(StoredResponse),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct IdempotencyRecord {
    request_hash: [u8; 32],
    created_at_ms: i64,
    outcome: Outcome,
}

impl Record for IdempotencyRecord {
    const KIND: Kind = Kind::Idempotency;
}

/// A key this request now holds: finish it with the response, or release it.
pub struct ClaimedKey {
    storage_key: Vec<u8>,
    request_hash: [u8; 32],
}

pub enum Claim {
    /// Run the request, then [`App::finish_idempotent`] or [`App::release_idempotency_key`].
    Claimed(ClaimedKey),
    /// The request already ran: answer this.
    Replay(StoredResponse),
}

/// The digest that names a caller's key: its record, and the slot of what a create made with it.
pub fn key_digest(scope: &str, key: &str) -> [u8; 32] {
    Sha256::digest(format!("{scope}\0{key}").as_bytes()).into()
}

fn storage_key(scope: &str, key: &str) -> Vec<u8> {
    keys::idempotency(&key_digest(scope, key))
}

/// The ticket a keyed create made (`keys::created_for_key`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct CreatedFor(pub crate::domain::TicketId);

impl Record for CreatedFor {
    const KIND: Kind = Kind::Idempotency;
}

impl App {
    /// Claims `key` of caller `scope` for a request whose content hashes to `request_hash`.
    pub fn claim_idempotency_key(&self, scope: &str, key: &str, request_hash: [u8; 32]) -> Result<Claim, AppError> {
        let storage_key = storage_key(scope, key);
        claim(&self.store, &storage_key, request_hash)
    }

    /// Keeps the response of a claimed key for replay.
    pub async fn finish_idempotent(&self, claimed: ClaimedKey, response: StoredResponse) -> Result<(), AppError> {
        let record = IdempotencyRecord {
            request_hash: claimed.request_hash,
            created_at_ms: now_ms(),
            outcome: Outcome::Done(response),
        };
        let mut batch = WriteBatch::default();
        batch.put(claimed.storage_key, &record)?;
        self.store.commit(batch).await?;
        Ok(())
    }

    /// Frees a claim whose request failed, so a retry can run.
    pub async fn release_idempotency_key(&self, claimed: ClaimedKey) {
        let mut batch = WriteBatch::default();
        batch.remove(claimed.storage_key);
        if let Err(e) = self.store.commit(batch).await {
            tracing::warn!(error = %e, "idempotency claim could not be released");
        }
    }

    /// Deletes records older than 24 h (housekeeping).
    pub(super) async fn prune_idempotency_records(&self) -> Result<usize, StorageError> {
        prune(&self.store).await
    }
}

/// Claims the key atomically (a compare-and-swap), or reports what holds it.
fn claim(store: &Store, key: &[u8], request_hash: [u8; 32]) -> Result<Claim, AppError> {
    let running = IdempotencyRecord { request_hash, created_at_ms: now_ms(), outcome: Outcome::Running };
    loop {
        let current = store.get_raw(key)?;
        if let Some(bytes) = &current {
            let existing: IdempotencyRecord = crate::storage::envelope::decode(key, bytes)?;
            let age = now_ms() - existing.created_at_ms;
            let expired = age > KEEP_MS || (matches!(existing.outcome, Outcome::Running) && age > ABANDONED_MS);
            if !expired {
                return match (existing.request_hash == request_hash, existing.outcome) {
                    (false, _) => Err(AppError::IdempotencyMismatch),
                    (true, Outcome::Running) => Err(AppError::IdempotencyInProgress),
                    (true, Outcome::Done(response)) => Ok(Claim::Replay(response)),
                };
            }
        }
        if store.compare_and_swap(key, current.as_deref(), Some(&Store::encode(&running)?))? {
            return Ok(Claim::Claimed(ClaimedKey { storage_key: key.to_vec(), request_hash }));
        }
    }
}

async fn prune(store: &Store) -> Result<usize, StorageError> {
    let cutoff = now_ms() - KEEP_MS;
    let mut expired = Vec::new();
    store.sweep(keys::IDEMPOTENCY, |key, value| {
        let record: IdempotencyRecord = crate::storage::envelope::decode(key, value)?;
        if record.created_at_ms < cutoff {
            expired.push(key.to_vec());
        }
        Ok(true)
    })?;
    super::housekeeping::remove_expired(store, expired).await
}

#[cfg(test)]
#[path = "idempotency_test.rs"]
mod tests;
