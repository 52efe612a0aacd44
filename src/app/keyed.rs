//! Use cases of requests with an `Idempotency-Key`: the key is claimed on the node owning its
//! slot before the request runs, and settled there with how it ended (`idempotency` holds the
//! records and their rules).

use super::idempotency::{key_digest, Claim, KeyOutcome, StoredResponse};
use super::{App, AppError};
use crate::domain::{OrderId, Slot};
use crate::routing::command::{ClaimKey, SettleKey};

/// A key this request now holds: settle it with how the request ended.
#[derive(Clone, Debug)]
pub struct ClaimedKey {
    pub digest: [u8; 32],
    request_hash: [u8; 32],
    /// When the key was first claimed (a retry after an uncertain outcome keeps it).
    pub first_claimed_ms: i64,
    /// A retry of a request that may have run: what it did is answered, not done again.
    pub again: bool,
    /// This run of the key (what settles it).
    run: i64,
}

impl ClaimedKey {
    /// The order id a keyed reservation makes: the same for every retry of the request.
    pub fn order_id_in(&self, slot: Slot) -> OrderId {
        OrderId::derived_in(slot, self.first_claimed_ms, &self.digest)
    }
}

pub enum Keyed {
    /// Run the request, then [`App::settle_key`].
    Claimed(ClaimedKey),
    /// The request already ran: answer this.
    Replay(StoredResponse),
}

impl App {
    /// Claims `key` of caller `scope` for a request whose content hashes to `request_hash`.
    pub async fn claim_key(&self, scope: &str, key: &str, request_hash: [u8; 32]) -> Result<Keyed, AppError> {
        let digest = key_digest(scope, key);
        Ok(match self.router.ask(ClaimKey { digest, request_hash }).await? {
            Claim::Claimed { first_claimed_ms, again, run } => {
                Keyed::Claimed(ClaimedKey { digest, request_hash, first_claimed_ms, again, run })
            }
            Claim::Replay(response) => Keyed::Replay(response),
        })
    }

    /// Settles a claimed key with how its request ended; a failure is logged (the claim then
    /// lapses after a minute).
    pub async fn settle_key(&self, claimed: ClaimedKey, outcome: KeyOutcome) {
        let settle =
            SettleKey { digest: claimed.digest, request_hash: claimed.request_hash, run: claimed.run, outcome };
        if let Err(e) = self.router.ask(settle).await {
            tracing::warn!(error = %e, "an idempotency key could not be settled");
        }
    }
}
