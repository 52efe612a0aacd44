//! The wire form of commands and replies: what a request to an entity becomes when it leaves
//! the process (a RabbitMQ message between nodes).
//!
//! ```text
//! [wire version: u8][bincode(serde) payload]
//! ```
//!
//! A receiver that does not know the version refuses the message (the caller answers 503),
//! never guesses. On a single node the local path round-trips every command and reply through
//! this encoding when `testing.wire_roundtrip` is on, so the whole API suite proves that every
//! command and reply survives the wire.
//!
//! The bytes are pinned: `tests/fixtures/wire/` holds every variant of every command, reply,
//! error and event as this encoding writes it, checked by `cargo test --test wire`; its README
//! says when to bump [`WIRE_VERSION`] and how a cluster is upgraded.

use serde::{de::DeserializeOwned, Serialize};

/// What this release sends.
pub const WIRE_VERSION: u8 = 2;
/// Largest message a decode may allocate.
const MAX_MESSAGE_BYTES: usize = 4 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE_BYTES>()
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("unknown wire version {0} (this release speaks {WIRE_VERSION})")]
    UnknownVersion(u8),
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let mut out = vec![WIRE_VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config()).map_err(|e| WireError::Encode(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let [version, payload @ ..] = bytes else { return Err(WireError::Decode("empty message".into())) };
    if *version != WIRE_VERSION {
        return Err(WireError::UnknownVersion(*version));
    }
    let (value, read) =
        bincode::serde::decode_from_slice(payload, config()).map_err(|e| WireError::Decode(e.to_string()))?;
    if read != payload.len() {
        return Err(WireError::Decode(format!("{} trailing bytes", payload.len() - read)));
    }
    Ok(value)
}

/// Encodes and decodes `value`, as if it had crossed the wire.
pub fn round_trip<T: Serialize + DeserializeOwned>(value: &T) -> Result<T, WireError> {
    decode(&encode(value)?)
}

#[cfg(test)]
#[path = "wire_test.rs"]
mod tests;
