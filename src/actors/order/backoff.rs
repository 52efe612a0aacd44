//! Retrying an unfinished step (a ticket release, a provider outage): exponential backoff, so
//! a step that keeps failing never becomes a retry storm.

/// The first retry delay, doubled while the step keeps failing, up to the maximum.
const FIRST_MS: i64 = 2_000;
const MAX_MS: i64 = 60_000;

#[derive(Default)]
pub struct Backoff {
    /// The current delay (0: nothing is failing).
    current_ms: i64,
}

impl Backoff {
    /// The delay before the next retry, longer each time.
    pub fn next_delay_ms(&mut self) -> i64 {
        self.current_ms = (self.current_ms * 2).clamp(FIRST_MS, MAX_MS);
        self.current_ms
    }

    /// The step settled: the next failure starts from the beginning again.
    pub fn reset(&mut self) {
        self.current_ms = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_a_minute_and_restart_once_settled() {
        let mut b = Backoff::default();
        let delays: Vec<i64> = (0..7).map(|_| b.next_delay_ms()).collect();
        assert_eq!(delays, [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
        b.reset();
        assert_eq!(b.next_delay_ms(), 2_000);
    }
}
