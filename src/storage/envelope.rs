//! The on-disk record format: a versioned envelope around a bincode payload.
//!
//! ```text
//! [format version: u8][kind: u8][payload: bincode(serde)]
//! ```
//! * version 1 (legacy): fixed-width integers, the v1 record schemas (see [`Record::decode_v1`]).
//! * version 2 (current): variable-width integers, the current schemas.
//!
//! Reading dispatches on the version byte, so a release can always read what an older one wrote;
//! a record that does not decode is an error naming its key, never a silent skip or a panic.

use super::StorageError;
use serde::{de::DeserializeOwned, Serialize};

/// What this release writes.
pub const FORMAT_VERSION: u8 = 2;
/// The previous format, still readable.
pub const LEGACY_FORMAT_VERSION: u8 = 1;

/// Which record type a value holds; checked on read so that a key can never be decoded as the
/// wrong type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    User = 1,
    EmailIndex = 2,
    Ticket = 3,
    Order = 4,
    Event = 5,
    Deadline = 6,
    Payment = 7,
    RefreshToken = 8,
    WebhookEvent = 9,
    Charge = 10,
    Marker = 11,
    Idempotency = 12,
    /// Outbox entries holding typed events, as releases before trace context wrote them (kind
    /// 5 holds the JSON-text events of earlier data); still read, as [`Kind::TracedEvent`]s
    /// without a trace.
    TypedEvent = 13,
    /// A row of a read model.
    Projection = 14,
    /// Where a copy of a shard stands in the shard's log (`log::Position`).
    LogPosition = 15,
    /// An entity's kept event (`domain::HistoryEntry`).
    History = 16,
    /// Outbox entries, version 2: a typed event and the trace context of the write that made it.
    TracedEvent = 17,
    /// Mail waiting to be sent (`domain::MailEntry`).
    Mail = 18,
    /// A password reset not used yet (`domain::PasswordReset`).
    PasswordReset = 19,
}

/// A type stored in an envelope.
pub trait Record: Serialize + DeserializeOwned {
    const KIND: Kind;

    /// Decodes the payload of a version-1 envelope, for kinds whose schema changed since.
    fn decode_v1(_payload: &[u8]) -> Option<Self> {
        None
    }

    /// Decodes the current-format payload of an earlier kind of this record (a record whose
    /// schema changed under a new kind), `None` for any other kind.
    fn decode_earlier_kind(_kind: u8, _payload: &[u8]) -> Option<Self> {
        None
    }
}

/// Largest allocation a decode may make. A corrupt length prefix would otherwise ask for
/// exabytes, and an allocation failure aborts the process (it cannot be caught).
const MAX_RECORD_BYTES: usize = 16 << 20;

fn current() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

pub(crate) fn legacy() -> impl bincode::config::Config {
    bincode::config::standard().with_fixed_int_encoding().with_limit::<MAX_RECORD_BYTES>()
}

pub fn encode<T: Record>(value: &T) -> Result<Vec<u8>, StorageError> {
    let mut out = vec![FORMAT_VERSION, T::KIND as u8];
    bincode::serde::encode_into_std_write(value, &mut out, current())
        .map_err(|e| StorageError::Encode(e.to_string()))?;
    Ok(out)
}

/// Encodes the payload of one field alone, to be placed into records by [`encode_around`].
pub fn encode_field<F: Serialize>(field: &F) -> Result<Vec<u8>, StorageError> {
    bincode::serde::encode_to_vec(field, current()).map_err(|e| StorageError::Encode(e.to_string()))
}

/// Encodes a record of type `T` from its fields: `head` (a tuple of the fields before), one
/// field already encoded by [`encode_field`], and `tail` (a tuple of the fields after; `()`
/// for none). bincode writes a struct, like a tuple, as its fields one after another, so this
/// equals `encode::<T>` of the whole (tested) while a field written into several records is
/// encoded once.
pub fn encode_around<T: Record, H: Serialize, E: Serialize>(
    head: &H,
    field: &[u8],
    tail: &E,
) -> Result<Vec<u8>, StorageError> {
    let failed = |e: bincode::error::EncodeError| StorageError::Encode(e.to_string());
    let mut out = Vec::with_capacity(field.len() + 24);
    out.extend_from_slice(&[FORMAT_VERSION, T::KIND as u8]);
    bincode::serde::encode_into_std_write(head, &mut out, current()).map_err(failed)?;
    out.extend_from_slice(field);
    bincode::serde::encode_into_std_write(tail, &mut out, current()).map_err(failed)?;
    Ok(out)
}

pub fn decode<T: Record>(key: &[u8], bytes: &[u8]) -> Result<T, StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt { key: super::keys::describe(key), reason };
    let [version, kind, payload @ ..] = bytes else {
        return Err(corrupt("record shorter than its envelope header".into()));
    };
    if *kind != T::KIND as u8 {
        if *version == FORMAT_VERSION {
            if let Some(value) = T::decode_earlier_kind(*kind, payload) {
                return Ok(value);
            }
        }
        return Err(corrupt(format!("expected kind {:?} ({}), found {kind}", T::KIND, T::KIND as u8)));
    }
    match *version {
        FORMAT_VERSION => {
            let (value, read) = bincode::serde::decode_from_slice(payload, current())
                .map_err(|e| corrupt(format!("bad v{FORMAT_VERSION} payload: {e}")))?;
            if read != payload.len() {
                return Err(corrupt(format!("{} trailing bytes", payload.len() - read)));
            }
            Ok(value)
        }
        LEGACY_FORMAT_VERSION => T::decode_v1(payload).ok_or_else(|| corrupt("bad v1 payload".into())),
        other => Err(corrupt(format!("unknown format version {other}"))),
    }
}

/// Decodes only the first fields of a current record of type `T` (`H`: a tuple of them), for
/// scans that need no more: bincode writes a struct's fields in order, so its head is a
/// prefix of its payload.
pub fn decode_head<T: Record, H: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<H, StorageError> {
    let corrupt = |reason: String| StorageError::Corrupt { key: super::keys::describe(key), reason };
    match bytes {
        [FORMAT_VERSION, kind, payload @ ..] if *kind == T::KIND as u8 => {
            let (head, _) = bincode::serde::decode_from_slice(payload, current())
                .map_err(|e| corrupt(format!("bad head of a {:?} record: {e}", T::KIND)))?;
            Ok(head)
        }
        _ => Err(corrupt(format!("not a current {:?} record", T::KIND))),
    }
}

/// Decodes a whole current payload as `T` (used by `decode_earlier_kind` impls).
pub(crate) fn decode_current<T: DeserializeOwned>(payload: &[u8]) -> Option<T> {
    let (value, read) = bincode::serde::decode_from_slice(payload, current()).ok()?;
    (read == payload.len()).then_some(value)
}

/// Decodes a whole legacy payload with the legacy config (used by `decode_v1` impls).
pub(crate) fn decode_legacy<T: DeserializeOwned>(payload: &[u8]) -> Option<T> {
    let (value, read) = bincode::serde::decode_from_slice(payload, legacy()).ok()?;
    (read == payload.len()).then_some(value)
}
