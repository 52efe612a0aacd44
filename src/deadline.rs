//! [`Deadline`]: the moment a caller stops waiting for a command. It travels with the command,
//! into an actor's mailbox on this node and across the wire to another, so that whoever would
//! run the command can tell that its caller has given up and drop it instead of running it late.
//!
//! On this node it is a monotonic instant; across the wire it is milliseconds since the epoch
//! (clocks of a cluster's nodes are assumed to agree within a fraction of a second, as NTP
//! keeps them).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(Instant);

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self(Instant::now() + timeout)
    }

    /// The deadline that arrived in a message as milliseconds since the epoch.
    pub fn from_wall_ms(ms: i64) -> Self {
        let left = ms.saturating_sub(wall_ms());
        let now = Instant::now();
        Self(if left > 0 { now + Duration::from_millis(left as u64) } else { now })
    }

    /// The deadline as milliseconds since the epoch, for the wire.
    pub fn wall_ms(self) -> i64 {
        let left = self.remaining().as_millis() as i64;
        wall_ms().saturating_add(left)
    }

    pub fn instant(self) -> Instant {
        self.0
    }

    /// Time left (zero once passed).
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    pub fn passed(self) -> bool {
        Instant::now() >= self.0
    }

    /// The earlier of the two.
    pub fn min(self, other: Self) -> Self {
        Self(self.0.min(other.0))
    }
}

/// Milliseconds since the epoch, now.
pub fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
