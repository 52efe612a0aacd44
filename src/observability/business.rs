//! Business metrics: what the marketplace did, not how the machine did it. Changes are counted
//! from the durable event stream by the node that owns the entity
//! ([`crate::events::business`]): once per change while that node runs; after a crash or a
//! failover, events whose delivery was not yet recorded are delivered (and counted) again.
//! Requests are counted by the node that answered them, for outcomes a client was actually
//! told (never a 5xx).

use crate::domain::CancelReason;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// What a payment attempt (`POST /api/payments`, or the page's pay form) came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid,
    /// The provider declined the card.
    Declined,
    /// Refused by a rule, before or instead of a charge: not the caller's order, not payable
    /// any more, a token the provider does not accept.
    Refused,
}

impl PaymentOutcome {
    const ALL: [Self; 3] = [Self::Paid, Self::Declined, Self::Refused];
    fn label(self) -> &'static str {
        match self {
            Self::Paid => "paid",
            Self::Declined => "declined",
            Self::Refused => "refused",
        }
    }
}

/// What a payment provider's webhook delivery came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookDelivery {
    Handled,
    /// The provider sent the same event again.
    Duplicate,
    /// Not authentic or not understood (4xx).
    Refused,
}

impl WebhookDelivery {
    const ALL: [Self; 3] = [Self::Handled, Self::Duplicate, Self::Refused];
    fn label(self) -> &'static str {
        match self {
            Self::Handled => "handled",
            Self::Duplicate => "duplicate",
            Self::Refused => "refused",
        }
    }
}

/// The `outcome` of a hold, and the `change` of a listing.
const HOLD_ENDED: [&str; 2] = ["paid", "released"];
const LISTING: [&str; 2] = ["created", "withdrawn"];

#[derive(Clone)]
pub struct Business {
    orders_created: IntCounter,
    orders_paid: IntCounter,
    orders_cancelled: IntCounterVec,
    hold: HistogramVec,
    paid_cents: IntCounter,
    listings: IntCounterVec,
    payment_attempts: IntCounterVec,
    webhooks: IntCounterVec,
}

impl Business {
    pub(super) fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let orders_created = IntCounter::new("orders_created_total", "Orders created (a ticket reserved)")?;
        let orders_paid = IntCounter::new("orders_paid_total", "Orders paid (complete)")?;
        let orders_cancelled = IntCounterVec::new(
            Opts::new(
                "orders_cancelled_total",
                "Orders cancelled, by reason: the buyer cancelled, or its time ran out",
            ),
            &["reason"],
        )?;
        let hold = HistogramVec::new(
            HistogramOpts::new(
                "order_hold_duration_seconds",
                "How long a ticket was held: from its order's creation to paid or released",
            )
            .buckets(vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0]),
            &["outcome"],
        )?;
        let paid_cents =
            IntCounter::new("orders_paid_amount_cents_total", "Sum of the prices of paid orders, in cents")?;
        let listings = IntCounterVec::new(
            Opts::new("listings_total", "Listings created and withdrawn by their sellers"),
            &["change"],
        )?;
        let payment_attempts = IntCounterVec::new(
            Opts::new("payment_attempts_total", "Payment attempts by outcome (paid, declined, refused)"),
            &["outcome"],
        )?;
        let webhooks = IntCounterVec::new(
            Opts::new("webhooks_total", "Payment provider webhooks by outcome (handled, duplicate, refused)"),
            &["outcome"],
        )?;
        registry.register(Box::new(orders_created.clone()))?;
        registry.register(Box::new(orders_paid.clone()))?;
        registry.register(Box::new(orders_cancelled.clone()))?;
        registry.register(Box::new(hold.clone()))?;
        registry.register(Box::new(paid_cents.clone()))?;
        registry.register(Box::new(listings.clone()))?;
        registry.register(Box::new(payment_attempts.clone()))?;
        registry.register(Box::new(webhooks.clone()))?;
        // Every labelled series exists from the start at 0, so a rate or a ratio over them is
        // defined before the first event (and a dashboard shows 0, not "no data").
        for why in CancelReason::ALL {
            orders_cancelled.with_label_values(&[why.as_str()]);
        }
        for ended in HOLD_ENDED {
            hold.with_label_values(&[ended]);
        }
        for change in LISTING {
            listings.with_label_values(&[change]);
        }
        for outcome in PaymentOutcome::ALL {
            payment_attempts.with_label_values(&[outcome.label()]);
        }
        for delivery in WebhookDelivery::ALL {
            webhooks.with_label_values(&[delivery.label()]);
        }
        Ok(Self {
            orders_created,
            orders_paid,
            orders_cancelled,
            hold,
            paid_cents,
            listings,
            payment_attempts,
            webhooks,
        })
    }

    pub fn order_created(&self) {
        self.orders_created.inc();
    }

    /// An order paid `cents` after holding its ticket `held_s` seconds.
    pub fn order_paid(&self, cents: u64, held_s: f64) {
        self.orders_paid.inc();
        self.paid_cents.inc_by(cents);
        self.hold.with_label_values(&["paid"]).observe(held_s.max(0.0));
    }

    /// An order cancelled after holding its ticket `held_s` seconds.
    pub fn order_cancelled(&self, why: CancelReason, held_s: f64) {
        self.orders_cancelled.with_label_values(&[why.as_str()]).inc();
        self.hold.with_label_values(&["released"]).observe(held_s.max(0.0));
    }

    pub fn listing_created(&self) {
        self.listings.with_label_values(&["created"]).inc();
    }

    pub fn listing_withdrawn(&self) {
        self.listings.with_label_values(&["withdrawn"]).inc();
    }

    pub fn payment_attempt(&self, outcome: PaymentOutcome) {
        self.payment_attempts.with_label_values(&[outcome.label()]).inc();
    }

    pub fn webhook(&self, delivery: WebhookDelivery) {
        self.webhooks.with_label_values(&[delivery.label()]).inc();
    }
}
