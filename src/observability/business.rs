//! Business metrics: what the marketplace did, not how the machine did it. Counted once per
//! change in a cluster and never for a request that failed on our side: changes are counted
//! from the durable event stream by the node that owns the entity
//! ([`crate::events::business`]), requests by the node that answered them, for outcomes a
//! client was actually told (no 5xx).

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry};

/// Why an order ended without being paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    ByBuyer,
    Expired,
}

/// What a payment attempt (`POST /api/payments`) came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentOutcome {
    Paid,
    /// The provider declined the card.
    Declined,
    /// Refused before any charge: not the caller's order, not payable any more, bad input.
    Refused,
}

/// What a provider webhook delivery came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Handled,
    Duplicate,
    /// Not authentic or not understood (4xx).
    Refused,
}

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
        let business = Self {
            orders_created,
            orders_paid,
            orders_cancelled,
            hold,
            paid_cents,
            listings,
            payment_attempts,
            webhooks,
        };
        business.zero();
        Ok(business)
    }

    /// Every labelled series exists from the start at 0, so a rate or a ratio over them is
    /// defined before the first event (and dashboards show 0, not "no data").
    fn zero(&self) {
        for reason in ["buyer", "expired"] {
            self.orders_cancelled.with_label_values(&[reason]);
        }
        for outcome in ["paid", "released"] {
            self.hold.with_label_values(&[outcome]);
        }
        for change in ["created", "withdrawn"] {
            self.listings.with_label_values(&[change]);
        }
        for outcome in ["paid", "declined", "refused"] {
            self.payment_attempts.with_label_values(&[outcome]);
        }
        for outcome in ["handled", "duplicate", "refused"] {
            self.webhooks.with_label_values(&[outcome]);
        }
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
    pub fn order_cancelled(&self, why: Cancelled, held_s: f64) {
        let reason = match why {
            Cancelled::ByBuyer => "buyer",
            Cancelled::Expired => "expired",
        };
        self.orders_cancelled.with_label_values(&[reason]).inc();
        self.hold.with_label_values(&["released"]).observe(held_s.max(0.0));
    }

    pub fn listing_created(&self) {
        self.listings.with_label_values(&["created"]).inc();
    }

    pub fn listing_withdrawn(&self) {
        self.listings.with_label_values(&["withdrawn"]).inc();
    }

    pub fn payment_attempt(&self, outcome: PaymentOutcome) {
        let outcome = match outcome {
            PaymentOutcome::Paid => "paid",
            PaymentOutcome::Declined => "declined",
            PaymentOutcome::Refused => "refused",
        };
        self.payment_attempts.with_label_values(&[outcome]).inc();
    }

    pub fn webhook(&self, outcome: WebhookOutcome) {
        let outcome = match outcome {
            WebhookOutcome::Handled => "handled",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Refused => "refused",
        };
        self.webhooks.with_label_values(&[outcome]).inc();
    }
}
