//! `Price`: an amount in integer cents, parsed from decimal currency units.

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

    /// Whole currency units when the price has no cents (`Some(20)` for 2000 cents).
    pub fn whole_units(&self) -> Option<u64> {
        (self.0 % 100 == 0).then_some(self.0 / 100)
    }

    /// The price in currency units with two decimals (`12.50`, `20.00`).
    pub fn decimal(&self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// The price in currency units with two decimals and the thousands grouped (`1,000.00`),
    /// as people read it.
    pub fn grouped(&self) -> String {
        let whole = (self.0 / 100).to_string();
        let mut out = String::with_capacity(whole.len() + whole.len() / 3 + 3);
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(digit);
        }
        format!("{out}.{:02}", self.0 % 100)
    }

    /// The price in currency units as a float (for formats that want a number).
    pub fn units(&self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// Parses decimal currency units (`"20"`, `"12.35"`): greater than 0, at most two
    /// decimals, at most 1,000,000. Works on the text, so `12.35` is exactly 1235 cents.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
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
