//! Paying for an order.
//!
//! Paying writes `awaiting:payment` (with the attempt's token and number) *before* calling the
//! provider, and settles afterwards. Commands are atomic, so expiry and cancellation wait for
//! the charge. An attempt left `awaiting:payment` by a crash or a provider outage is resumed
//! with the same idempotency key, by the next payment request or at expiry, so it never
//! charges twice.
//!
//! The provider may also confirm a payment the order never asked for: a buyer paying on the
//! provider's hosted checkout page leaves the order `created` until the webhook arrives. A
//! confirmation completes a `created` order within its window or one `awaiting:payment`; one
//! that comes too late (the order cancelled, or `created` past its window) is refunded, once.

use super::{OrderActor, Paid};
use crate::actors::durable::{done, Step};
use crate::actors::EntityError;
use crate::domain::{now_ms, ChargeRequest, DomainError, OrderStatus, Payment, Rule, UserId};
use crate::payments::{Charge, ChargeOutcome, RefundOutcome};
use crate::storage::{keys, Marker};
use actix::prelude::*;

impl OrderActor {
    pub(super) fn pay(&mut self, caller: UserId, token: String, again: bool) -> Step<Self, Paid> {
        if again {
            if let Some(paid) = self.paid_by(caller) {
                return done(Ok(paid));
            }
        }
        let begun = self.update(move |order, _| order.begin_payment(caller, &token, now_ms()));
        Box::pin(begun.then(|result, act, _| match result {
            Ok(request) => Box::pin(act.run_charge(request).map(|r, act, _| {
                let payment = r?;
                let order = act.cell.current()?.cloned().ok_or(DomainError::NotFound)?;
                Ok(Paid { payment, order })
            })),
            Err(e) => done(Err(e)),
        }))
    }

    /// The order and its recorded payment, if `caller`'s order is complete (what a retried
    /// payment that may have run answers).
    fn paid_by(&self, caller: UserId) -> Option<Paid> {
        let order = self.cell.current().ok().flatten()?.clone();
        if order.status != OrderStatus::Complete || order.user_id != caller {
            return None;
        }
        let payment = self.deps.store.get::<Payment>(&keys::payment_by_order(&order.id)).ok().flatten()?;
        Some(Paid { payment, order })
    }

    /// Calls the provider for `request` and settles the order with the outcome.
    pub(super) fn run_charge(&mut self, request: ChargeRequest) -> Step<Self, Payment> {
        self.deps.faults.crash_point("before_charge");
        let gateway = self.deps.gateway.clone();
        let charge = Charge {
            amount_cents: request.amount_cents,
            currency: "usd".into(),
            token: request.token,
            idempotency_key: request.idempotency_key,
            order_id: self.link.id.to_string(),
        };
        let call = async move { gateway.charge(charge).await };
        let settled = call.into_actor(self).then(|outcome, act, _| {
            act.deps.faults.crash_point("after_charge");
            if outcome.is_ok() {
                act.retry.reset();
            }
            match outcome {
                Ok(ChargeOutcome::Succeeded { charge_id }) => act.settle_charge(charge_id),
                Ok(ChargeOutcome::Declined { reason }) => act.refused(DomainError::CardDeclined, reason),
                Ok(ChargeOutcome::Rejected { reason }) => {
                    tracing::info!(reason = %reason, "charge rejected by the provider");
                    act.refused(Rule::InvalidPaymentToken.into(), reason)
                }
                Err(e) => {
                    // Outcome unknown (the card may have been charged): stay `awaiting:payment`;
                    // the same key is asked again later. The caller hears "may have run".
                    tracing::warn!(error = %e, "payment provider unavailable; attempt left to resume");
                    act.retry_later();
                    done(Err(EntityError::NoReply))
                }
            }
        });
        Box::pin(settled.map(|settled, act, _| match settled {
            // The provider has acted but the disk is full, so its outcome is not recorded:
            // "nothing happened" would be false. The attempt stays `awaiting:payment` and is
            // resumed with the same key until it is recorded; the caller learns the outcome is
            // not known yet (may have run).
            Err(EntityError::StorageFull) => {
                tracing::warn!("a charge's outcome could not be recorded (storage full); attempt left to resume");
                act.retry_later();
                Err(EntityError::NoReply)
            }
            other => other,
        }))
    }

    /// The provider refused the charge: the order is payable again, the caller learns why, and
    /// the order's history keeps the provider's `reason`.
    fn refused(&mut self, why: DomainError, reason: String) -> Step<Self, Payment> {
        let reopened = self.update(move |order, changes| {
            changes.events.extend(order.payment_declined(&reason));
            Ok(())
        });
        Box::pin(reopened.map(move |r, _, _| r.and(Err(why.into()))))
    }

    /// A card charge succeeded. If another charge completed the order meanwhile (the buyer
    /// also paid on a checkout page), this one is refunded: one order, one payment.
    fn settle_charge(&mut self, charge_id: String) -> Step<Self, Payment> {
        if self.is_second_charge(&charge_id) {
            return Box::pin(
                self.refund_late_charge(charge_id)
                    .map(|r, _, _| r.and(Err(DomainError::from(Rule::AlreadyPaid).into()))),
            );
        }
        self.record_payment(charge_id)
    }

    /// Whether `charge_id` would be a second payment of a complete order (and is not refunded
    /// yet).
    fn is_second_charge(&self, charge_id: &str) -> bool {
        let Ok(Some(order)) = self.cell.current() else { return false };
        order.status == OrderStatus::Complete
            && order.stripe_id.as_deref() != Some(charge_id)
            && !self.deps.store.contains(&keys::refunded_charge(&order.id, charge_id)).unwrap_or(false)
    }

    /// Completes the order with a payment record (or returns the one already recorded).
    fn record_payment(&mut self, charge_id: String) -> Step<Self, Payment> {
        let store = self.deps.store.clone();
        self.update(move |o, changes| {
            if o.status == OrderStatus::Complete {
                return store
                    .get::<Payment>(&keys::payment_by_order(&o.id))
                    .ok()
                    .flatten()
                    .ok_or(Rule::AlreadyPaid.into());
            }
            let payment = Payment::of_charge(o, &charge_id, None, now_ms());
            if let Some(event) = o.complete(payment.id, &charge_id) {
                changes.event(event);
            }
            changes.put(keys::payment(&payment.id), &payment);
            changes.put(keys::payment_by_order(&o.id), &payment);
            Ok(payment)
        })
    }

    pub(super) fn confirm_payment(&mut self, charge_id: String) -> Step<Self, ()> {
        let order = match self.cell.current() {
            Ok(Some(o)) => o.clone(),
            Ok(None) => return done(Err(DomainError::NotFound.into())),
            Err(e) => return done(Err(e)),
        };
        match order.status {
            OrderStatus::Complete if self.is_second_charge(&charge_id) => self.refund_late_charge(charge_id),
            OrderStatus::Complete => done(Ok(())),
            // Past its window but its timer has not fired yet: expire it first, exactly as the
            // timer would (ticket released), then confirm again, which now refunds.
            OrderStatus::Created if order.confirmation_is_late(now_ms()) => self.expire_then_confirm(charge_id),
            // `created`: paid on the provider's own page (a checkout session), never through
            // `Pay`; `awaiting:payment`: the webhook overtook the charge's own answer.
            OrderStatus::Created | OrderStatus::AwaitingPayment => {
                Box::pin(self.record_payment(charge_id).map(|r, _, _| r.map(|_| ())))
            }
            OrderStatus::Cancelled
                if self.deps.store.contains(&keys::refunded_charge(&order.id, &charge_id)).unwrap_or(false) =>
            {
                done(Ok(()))
            }
            OrderStatus::Cancelled => self.refund_late_charge(charge_id),
        }
    }

    /// Expires a `created` order whose window has passed, then confirms `charge_id` against
    /// what it became: cancelled (refund), or, if the clock stepped back, still payable.
    fn expire_then_confirm(&mut self, charge_id: String) -> Step<Self, ()> {
        Box::pin(self.expire().then(move |expired, act, _| match expired {
            Ok(()) => act.confirm_payment(charge_id),
            Err(e) => done(Err(e)),
        }))
    }

    /// A charge arrived after the order was cancelled, or as a second payment of a complete
    /// order: refund it, and record the refund.
    fn refund_late_charge(&mut self, charge_id: String) -> Step<Self, ()> {
        let gateway = self.deps.gateway.clone();
        let key = format!("refund-{charge_id}");
        let charge = charge_id.clone();
        let refund = async move { gateway.refund(charge, key).await };
        Box::pin(refund.into_actor(self).then(move |refunded, act, _| match refunded {
            Ok(RefundOutcome::Refunded { refund_id }) => act.update(move |o, changes| {
                tracing::warn!(order = %o.id, charge = %charge_id, "late payment refunded");
                let payment = Payment::of_charge(o, &charge_id, Some(refund_id), now_ms());
                changes.put(keys::payment(&payment.id), &payment);
                changes.put(keys::refunded_charge(&o.id, &charge_id), &Marker);
                Ok(())
            }),
            // Asking again would not help (the provider does not know the charge, say): the
            // charge is recorded as settled, so the provider's retries stop, and an operator
            // looks at the payment record.
            Ok(RefundOutcome::Refused { reason }) => act.update(move |o, changes| {
                tracing::error!(order = %o.id, charge = %charge_id, %reason, "the provider refused to refund a late payment");
                let payment = Payment::of_charge(o, &charge_id, None, now_ms());
                changes.put(keys::payment(&payment.id), &payment);
                changes.put(keys::refunded_charge(&o.id, &charge_id), &Marker);
                Ok(())
            }),
            Err(e) => {
                tracing::error!(error = %e, "refund of a late payment failed");
                done(Err(EntityError::NoReply))
            }
        }))
    }
}
