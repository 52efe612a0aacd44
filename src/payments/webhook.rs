//! Stripe webhook signatures, as a pure function of the header, the raw body, the endpoint
//! secret and the current time (so tests need neither a clock nor Stripe).
//!
//! Stripe sends `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where each `v1` is
//! the hex HMAC-SHA256, keyed with the endpoint secret (the whole `whsec_...` string), of
//! `"<t>.<raw body>"`. Several `v1` entries appear while a secret is being rolled, so any one
//! matching is enough; `v0` (test-mode, legacy) and unknown entries are ignored. The signature
//! covers the *raw* bytes: verify before parsing the JSON, never a re-serialised copy.
//!
//! The timestamp is part of the signed text, so checking it bounds how long a captured request
//! can be replayed. It is checked in both directions because a timestamp far in the future
//! would otherwise stay replayable for that long.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

/// Stripe's own libraries accept signatures up to five minutes old.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header: {0}")]
    Malformed(&'static str),
    #[error("signature timestamp {timestamp} is more than {tolerance_secs}s away from now ({now})")]
    Stale { timestamp: i64, now: i64, tolerance_secs: i64 },
    #[error("no v1 signature matches the payload")]
    Mismatch,
}

/// Checks a `Stripe-Signature` header against the raw request body.
///
/// The signature is checked before the timestamp, so [`SignatureError::Stale`] only ever
/// describes an authentic but old (or future-dated) request: a replay, not a forgery.
pub fn verify(
    header: &str,
    raw_body: &[u8],
    secret: &str,
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let parsed = parse(header)?;
    let expected = mac(parsed.timestamp_text, raw_body, secret);
    // Every candidate is compared, without stopping at the first match, so the time taken does
    // not reveal which entry (if any) matched.
    let matched = parsed
        .signatures
        .iter()
        .fold(Choice::from(0), |any, candidate| any | expected.as_slice().ct_eq(candidate.as_slice()));
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    let tolerance = u64::try_from(tolerance_secs).unwrap_or(0);
    if now_unix.abs_diff(parsed.timestamp) > tolerance {
        return Err(SignatureError::Stale { timestamp: parsed.timestamp, now: now_unix, tolerance_secs });
    }
    Ok(())
}

/// A valid `Stripe-Signature` header for `raw_body` signed at `t` (what Stripe would send).
pub fn sign(raw_body: &[u8], secret: &str, t: i64) -> String {
    format!("t={t},v1={}", hex::encode(mac(&t.to_string(), raw_body, secret)))
}

struct Parsed<'a> {
    /// As written in the header: the signed text uses these exact characters.
    timestamp_text: &'a str,
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse(header: &str) -> Result<Parsed<'_>, SignatureError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let mut timestamp_text = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item.trim().split_once('=').ok_or(SignatureError::Malformed("an entry without '='"))?;
        match key.trim() {
            "t" if timestamp_text.is_some() => return Err(SignatureError::Malformed("more than one timestamp")),
            "t" => timestamp_text = Some(value.trim()),
            "v1" => {
                let bytes = hex::decode(value.trim())
                    .map_err(|_| SignatureError::Malformed("a v1 signature that is not hex"))?;
                signatures.push(bytes);
            }
            _ => {}
        }
    }
    let timestamp_text = timestamp_text.ok_or(SignatureError::Malformed("no timestamp"))?;
    let timestamp =
        timestamp_text.parse().map_err(|_| SignatureError::Malformed("a timestamp that is not an integer"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1 signature"));
    }
    Ok(Parsed { timestamp_text, timestamp, signatures })
}

fn mac(timestamp_text: &str, raw_body: &[u8], secret: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this never fails; an empty MAC could never match.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return Vec::new();
    };
    mac.update(timestamp_text.as_bytes());
    mac.update(b".");
    mac.update(raw_body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
#[path = "webhook_test.rs"]
mod tests;
