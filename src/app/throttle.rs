//! Sign-in throttling: failed sign-ins are counted per client address (on the node that
//! received them, whatever the account) and per account and address (on the node that owns
//! the account: its slot's node, so the count holds whichever node the attempts go through).
//! Only failures count, so a load of correct sign-ins is never slowed.
//!
//! Each limit is a GCRA bucket (`governor`): `burst` failures at once, then one more per
//! `refill`. A key whose bucket is empty is refused (429) without its password being checked
//! until the bucket has room again. The account's node asks again right before hashing, so a
//! flood sent all at once gets at most the hashing permits' worth of attempts past the limit. An address that fails a thousand times is refused; the
//! account's owner, signing in from another address, is not.

use crate::settings::ThrottleSettings;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::Hash;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// One limit over keys of type `K`.
pub struct Throttle<K: Hash + Eq + Clone> {
    failures: DefaultKeyedRateLimiter<K>,
    /// Keys refused until the instant given (their bucket ran empty on a failure).
    blocked: DashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(burst: u32, refill: Duration) -> Self {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(refill.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Self { failures: DefaultKeyedRateLimiter::keyed(quota), blocked: DashMap::new() }
    }

    /// How long `key` must still wait, if it must.
    pub fn refused_for(&self, key: &K) -> Option<Duration> {
        let until = *self.blocked.get(key)?;
        let now = Instant::now();
        let left = until.saturating_duration_since(now);
        if left.is_zero() {
            // Only if still expired: a failure may have just blocked it again.
            self.blocked.remove_if(key, |_, until| *until <= now);
            return None;
        }
        Some(left)
    }

    /// Counts a failure of `key`; once its bucket is empty, it is refused for a while.
    pub fn failed(&self, key: &K) {
        if let Err(not_until) = self.failures.check_key(key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            self.blocked.insert(key.clone(), Instant::now() + wait);
        }
    }

    /// Forgets keys that are back to a fresh state (housekeeping: keeps memory bounded by
    /// recent failures).
    pub fn prune(&self) {
        self.failures.retain_recent();
        self.failures.shrink_to_fit();
        let now = Instant::now();
        self.blocked.retain(|_, until| *until > now);
    }
}

/// The two sign-in limits of a node, and the two of password reset requests.
pub struct SignInThrottle {
    /// Failures from one client address, any account (checked where the request arrives).
    pub by_address: Throttle<String>,
    /// Failures for one account from one address (checked on the account's node).
    pub by_account: Throttle<(String, String)>,
    /// Password reset requests, apart from sign-ins (asking for a link must not cost anyone
    /// their sign-in attempts): per client address, and per account's address.
    pub resets_by_address: Throttle<String>,
    pub resets_by_account: Throttle<String>,
}

/// Reset links one address may ask for at once, then one a minute.
const RESETS_PER_ADDRESS: u32 = 10;
/// Reset links one account may be sent at once, then one every five minutes.
const RESETS_PER_ACCOUNT: u32 = 3;

impl SignInThrottle {
    pub fn new(settings: &ThrottleSettings) -> Self {
        Self {
            by_address: Throttle::new(
                settings.address_failures,
                Duration::from_secs_f64(settings.address_refill_seconds),
            ),
            by_account: Throttle::new(
                settings.account_failures,
                Duration::from_secs_f64(settings.account_refill_seconds),
            ),
            resets_by_address: Throttle::new(RESETS_PER_ADDRESS, Duration::from_secs(60)),
            resets_by_account: Throttle::new(RESETS_PER_ACCOUNT, Duration::from_secs(300)),
        }
    }

    pub fn prune(&self) {
        self.by_address.prune();
        self.by_account.prune();
        self.resets_by_address.prune();
        self.resets_by_account.prune();
    }
}

#[cfg(test)]
#[path = "throttle_test.rs"]
mod tests;
