//! `Price`: an amount in integer cents, parsed from the API's currency units.

use serde::{Deserialize, Serialize};

/// Largest accepted price: 1,000,000 currency units.
pub const MAX_PRICE_CENTS: u64 = 100_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(u64);

impl Price {
    pub fn from_cents(cents: u64) -> Self {
        Self(cents)
    }

    pub fn cents(&self) -> u64 {
        self.0
    }

    /// The API form: currency units, an integer when whole (`20`, not `20.0`), like the seeds.
    pub fn to_json(&self) -> serde_json::Value {
        if self.0 % 100 == 0 {
            serde_json::Value::from(self.0 / 100)
        } else {
            serde_json::Value::from(self.0 as f64 / 100.0)
        }
    }

    /// Parses a JSON number or numeric string: greater than 0, at most two decimals, at most
    /// 1,000,000. Works on the decimal text so that `12.35` is exactly 1235 cents.
    pub fn parse_json(value: &serde_json::Value) -> Option<Self> {
        let text = match value {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.trim().to_string(),
            _ => return None,
        };
        Self::parse_decimal(&text)
    }

    fn parse_decimal(text: &str) -> Option<Self> {
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        if frac.len() > 2 || !frac.chars().all(|c| c.is_ascii_digit()) || (text.contains('.') && frac.is_empty()) {
            return None;
        }
        if whole.len() > 9 {
            return None;
        }
        let whole: u64 = whole.parse().ok()?;
        let frac_cents: u64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<u64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        let cents = whole.checked_mul(100)?.checked_add(frac_cents)?;
        (cents > 0 && cents <= MAX_PRICE_CENTS).then_some(Self(cents))
    }
}

#[cfg(test)]
#[path = "price_test.rs"]
mod tests;
