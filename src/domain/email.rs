//! `Email`: a syntactically valid, normalised (trimmed, lower-cased) address.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    /// Accepts `local@domain.tld` without spaces, at most 254 characters. Lower-cased so that
    /// uniqueness is case-insensitive.
    pub fn parse(raw: &str) -> Option<Self> {
        let s = raw.trim();
        if s.is_empty() || s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (local, domain) = s.rsplit_once('@')?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return None;
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
            || !domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-')
        {
            return None;
        }
        Some(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[path = "email_test.rs"]
mod tests;
