//! The built-in gateway: no network, Stripe's test tokens. `tok_chargeDeclined*` is declined,
//! any other `tok_…` succeeds, anything else is rejected as Stripe would. Results are stored
//! under the idempotency key, so a replayed key answers the first result (like Stripe). It has
//! no hosted payment page: a checkout is answered [`CheckoutOutcome::NotSupported`].

use super::{Charge, ChargeOutcome, CheckoutOutcome, CheckoutRequest, GatewayError, PaymentGateway, RefundOutcome};
use crate::storage::migrate::charge_slot;
use crate::storage::{envelope::Kind, keys, Record, Store, WriteBatch};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub struct OfflineGateway {
    store: Store,
}

/// A charge decided by the offline gateway.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OfflineCharge {
    pub charge_id: Option<String>,
    pub declined: Option<String>,
    pub rejected: Option<String>,
    pub amount_cents: u64,
    pub token: String,
    pub refunded: bool,
}

impl Record for OfflineCharge {
    const KIND: Kind = Kind::Charge;
}

impl OfflineGateway {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn decide(charge: &Charge) -> OfflineCharge {
        let token = charge.token.as_str();
        let valid = token
            .strip_prefix("tok_")
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let mut record = OfflineCharge {
            charge_id: None,
            declined: None,
            rejected: None,
            amount_cents: charge.amount_cents,
            token: charge.token.clone(),
            refunded: false,
        };
        if !valid {
            record.rejected = Some("Invalid payment token".into());
        } else if token.starts_with("tok_chargeDeclined") {
            record.declined = Some("Your card was declined".into());
        } else {
            record.charge_id = Some(format!("ch_offline_{}", uuid::Uuid::new_v4().simple()));
        }
        record
    }

    /// The charges this gateway has made (for tests and the admin view).
    pub fn charges(store: &Store) -> Result<Vec<OfflineCharge>, crate::storage::StorageError> {
        Ok(store.sweep_all::<OfflineCharge>(keys::CHARGE)?.into_iter().map(|(_, c)| c).collect())
    }
}

impl PaymentGateway for OfflineGateway {
    fn charge(&self, charge: Charge) -> BoxFuture<'static, Result<ChargeOutcome, GatewayError>> {
        let store = self.store.clone();
        Box::pin(async move {
            // The charge is kept in its order's slot, like the order's other records.
            let key = keys::charge(charge_slot(&charge.idempotency_key), &charge.idempotency_key);
            let storage = |e: crate::storage::StorageError| GatewayError(e.to_string());
            let record = match store.get::<OfflineCharge>(&key).map_err(storage)? {
                Some(existing) => existing,
                None => {
                    let record = Self::decide(&charge);
                    let mut batch = WriteBatch::default();
                    batch.put(key, &record).map_err(storage)?;
                    store.commit(batch).await.map_err(storage)?;
                    record
                }
            };
            Ok(match (record.charge_id, record.declined, record.rejected) {
                (Some(charge_id), _, _) => ChargeOutcome::Succeeded { charge_id },
                (_, Some(reason), _) => ChargeOutcome::Declined { reason },
                (_, _, reason) => ChargeOutcome::Rejected { reason: reason.unwrap_or_default() },
            })
        })
    }

    fn checkout(&self, _request: CheckoutRequest) -> BoxFuture<'static, Result<CheckoutOutcome, GatewayError>> {
        Box::pin(async { Ok(CheckoutOutcome::NotSupported) })
    }

    fn refund(
        &self,
        charge_id: String,
        idempotency_key: String,
    ) -> BoxFuture<'static, Result<RefundOutcome, GatewayError>> {
        let store = self.store.clone();
        Box::pin(async move {
            let storage = |e: crate::storage::StorageError| GatewayError(e.to_string());
            let mut batch = WriteBatch::default();
            let mut found = false;
            // A rare path (a charge that came after its order was cancelled): a sweep of the
            // charges finds it by the provider's id.
            for (key, mut c) in store.sweep_all::<OfflineCharge>(keys::CHARGE).map_err(storage)? {
                if c.charge_id.as_deref() == Some(charge_id.as_str()) {
                    found = true;
                    if !c.refunded {
                        c.refunded = true;
                        batch.put(key, &c).map_err(storage)?;
                    }
                }
            }
            if !found {
                // A charge this gateway never made, reported by a signed webhook: the offline
                // gateway stands in for the provider, so it records the charge as refunded
                // (under the refund's own key) rather than refusing forever.
                let key = keys::charge(charge_slot(&idempotency_key), &idempotency_key);
                let record = OfflineCharge {
                    charge_id: Some(charge_id.clone()),
                    declined: None,
                    rejected: None,
                    amount_cents: 0,
                    token: String::new(),
                    refunded: true,
                };
                batch.put(key, &record).map_err(storage)?;
            }
            store.commit(batch).await.map_err(storage)?;
            Ok(RefundOutcome::Refunded { refund_id: format!("re_offline_{}", uuid::Uuid::new_v4().simple()) })
        })
    }
}
