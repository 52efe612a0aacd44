//! Accounts and sessions (`sign_up`, `sign_in`, `refresh`, `sign_out`): a unique email,
//! argon2id passwords, HS256 access tokens, and rotating, revocable refresh tokens.
//!
//! A user lives in the slot of its normalised email ([`Slot::of_text`]): the email index, the
//! user record and the user's refresh tokens (whose ids carry that slot) are one slot's data.
//! The email index is claimed in a storage transaction within that slot, which is what makes
//! concurrent signups safe.

use super::error::AppError;
use crate::auth::{password, Claims, JwtKeys};
use crate::domain::{now_ms, slot_of_id, Email, Password, RefreshToken, Slot, User, UserId};
use crate::settings::AuthSettings;
use crate::storage::{keys, EmailOwner, SlotBatches, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;

type AuthError = AppError;

#[derive(Clone)]
pub struct Accounts {
    pub(super) store: Store,
    tokens: JwtKeys,
    settings: AuthSettings,
    /// Serialises refresh-token read-modify-writes (rotation, revocation): two concurrent
    /// refreshes with one token must not both succeed, and a sign-out must not be undone by a
    /// refresh racing it. Refreshes are rare, so one lock per node is cheap.
    pub(super) refresh_lock: Arc<tokio::sync::Mutex<()>>,
    /// Bounds concurrent argon2 work: each hash holds ~19 MiB, so a sign-in flood must queue
    /// rather than exhaust memory through the blocking pool.
    hashing: Arc<tokio::sync::Semaphore>,
}

/// A freshly signed-in session: the access token and the refresh token to set as cookies.
/// Serialisable: a node forwards account use cases to the node owning the user's slot (the
/// user's password hash is cleared before it leaves that node).
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub user: User,
    pub access_token: String,
    pub refresh_token: String,
}

impl Accounts {
    pub fn new(store: Store, settings: AuthSettings) -> Self {
        let tokens = JwtKeys::new(settings.jwt_secret.expose().as_bytes());
        let permits = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        Self {
            store,
            tokens,
            settings,
            refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
            hashing: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// A place among the bounded concurrent argon2 hashes.
    async fn permit_to_hash(&self) -> Result<tokio::sync::SemaphorePermit<'_>, AppError> {
        self.hashing.acquire().await.map_err(|e| AppError::Internal(e.to_string()))
    }

    /// A new password's hash, within that bound.
    pub(super) async fn hash_password(&self, password: Password) -> Result<String, AppError> {
        let _permit = self.permit_to_hash().await?;
        Ok(password::hash(password).await?)
    }

    /// Claims of a valid, unexpired access token; anything else is "signed out".
    pub fn verify(&self, token: &str) -> Option<Claims> {
        self.tokens.verify(token)
    }

    pub async fn sign_up(&self, email: Email, password: Password) -> Result<Session, AuthError> {
        let hash = self.hash_password(password).await?;
        let slot = Slot::of_text(email.as_str());
        let user = User { id: UserId::new_in(slot), email, password_hash: hash, created_at_ms: now_ms() };
        let user_record = Store::encode(&user)?;
        let claimed = self
            .store
            .insert_unique(keys::email(&user.email), &EmailOwner(user.id), vec![(keys::user(&user.id), user_record)])
            .await?;
        if !claimed {
            return Err(AuthError::EmailInUse);
        }
        self.open_session(user, None, None).await
    }

    /// `admit` is asked once this attempt's turn to hash has come, right before the password
    /// is checked: a throttle decided then also holds back the attempts that were queued
    /// behind others when it tripped (a flood sent all at once). `failed` is called when the
    /// credentials are wrong, before the turn passes to the next attempt, so that one sees it.
    pub async fn sign_in(
        &self,
        email: &Email,
        password: &str,
        admit: impl FnOnce() -> Result<(), AuthError>,
        failed: impl FnOnce(),
    ) -> Result<Session, AuthError> {
        let user = match self.store.get::<EmailOwner>(&keys::email(email))? {
            Some(EmailOwner(id)) => self.store.get::<User>(&keys::user(&id))?,
            None => None,
        };
        // Verify against a dummy hash for unknown emails too, so timing does not tell them apart.
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let user = {
            let _permit = self.permit_to_hash().await?;
            admit()?;
            let ok = password::verify(password.to_string(), hash).await?;
            match user {
                Some(user) if ok => user,
                _ => {
                    failed();
                    return Err(AuthError::InvalidCredentials);
                }
            }
        };
        self.open_session(user, None, None).await
    }

    /// Trades a refresh token for a new session. The old token is spent; presenting a spent
    /// token again revokes its whole family (it was stolen, or replayed).
    pub async fn refresh(&self, token: &str) -> Result<Session, AuthError> {
        let _serialised = self.refresh_lock.lock().await;
        let (key, mut record) = self.live_refresh_record(token)?;
        if record.used {
            self.revoke_family(record.family).await?;
            return Err(AuthError::RefreshRejected);
        }
        record.used = true;
        let user = self.store.get::<User>(&keys::user(&record.user_id))?.ok_or(AuthError::RefreshRejected)?;
        let family = record.family;
        self.open_session(user, Some(family), Some((key, record))).await
    }

    /// A new access token for a live refresh token, which is **not** rotated: the browser
    /// requests that all arrive with one expired access cookie renew independently, and none
    /// of them trips reuse detection. `None`: the token was spent by an explicit refresh (its
    /// successor may be on its way to the browser right now); revoked, expired or unknown
    /// tokens are refused.
    pub async fn renew(&self, token: &str) -> Result<Option<Session>, AuthError> {
        let (_, record) = self.live_refresh_record(token)?;
        if record.used {
            return Ok(None);
        }
        let user = self.store.get::<User>(&keys::user(&record.user_id))?.ok_or(AuthError::RefreshRejected)?;
        let access_token = self.tokens.issue(&user, self.settings.access_token_seconds);
        Ok(Some(Session { user, access_token, refresh_token: token.to_string() }))
    }

    /// The stored record of a refresh token whose secret matches and that is neither revoked
    /// nor expired (it may be spent), with its key.
    fn live_refresh_record(&self, token: &str) -> Result<(Vec<u8>, RefreshToken), AuthError> {
        let (id, secret) = parse_refresh(token).ok_or(AuthError::RefreshRejected)?;
        let key = keys::refresh(&id);
        let record = self.store.get::<RefreshToken>(&key)?.ok_or(AuthError::RefreshRejected)?;
        if !crate::auth::digest_matches(&secret, &record.secret_hash)
            || record.revoked
            || record.expires_at_ms <= now_ms()
        {
            return Err(AuthError::RefreshRejected);
        }
        Ok((key, record))
    }

    /// Revokes a refresh token and its family (sign-out). Unknown tokens are ignored.
    pub async fn sign_out(&self, token: &str) -> Result<(), AuthError> {
        let _serialised = self.refresh_lock.lock().await;
        if let Some((id, _)) = parse_refresh(token) {
            if let Some(record) = self.store.get::<RefreshToken>(&keys::refresh(&id))? {
                self.revoke_family(record.family).await?;
            }
        }
        Ok(())
    }

    async fn revoke_family(&self, family: [u8; 16]) -> Result<(), AuthError> {
        // The family index names the family's tokens, so sign-out reads only those. Tokens of
        // one family share its slot, except those issued before slots existed.
        let mut batches = SlotBatches::default();
        let prefix = keys::refresh_family(&family);
        for index_key in self.store.scan_keys(&prefix, usize::MAX)? {
            let Some(id) = keys::trailing_id(&index_key).filter(|_| index_key.len() == prefix.len() + 16) else {
                continue;
            };
            let key = keys::refresh(&id);
            if let Some(mut record) = self.store.get::<RefreshToken>(&key)? {
                if !record.revoked {
                    record.revoked = true;
                    batches.put(key, &record)?;
                }
            }
        }
        Ok(batches.commit(&self.store).await?)
    }

    /// Issues a session; `spent` is the refresh token it replaces, marked used in the same
    /// batch as the new one (one flush: a crash cannot leave the old one spent and no new one;
    /// tokens issued before slots existed may live in another slot, and then get their own).
    async fn open_session(
        &self,
        user: User,
        family: Option<[u8; 16]>,
        spent: Option<(Vec<u8>, RefreshToken)>,
    ) -> Result<Session, AuthError> {
        let access_token = self.tokens.issue(&user, self.settings.access_token_seconds);
        let mut id = [0u8; 16];
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut id);
        rand::thread_rng().fill_bytes(&mut secret);
        // A token lives in its family's slot; a new family (named by its first token) in its
        // user's slot. Families begun before slots existed keep their own.
        let slot = family.map_or_else(|| user.id.slot(), |f| slot_of_id(&f));
        id[14..16].copy_from_slice(&slot.to_be_bytes());
        let record = RefreshToken {
            user_id: user.id,
            family: family.unwrap_or(id),
            secret_hash: Sha256::digest(secret).into(),
            expires_at_ms: now_ms() + (self.settings.refresh_token_seconds as i64) * 1000,
            used: false,
            revoked: false,
        };
        let mut batches = SlotBatches::default();
        if let Some((spent_key, spent)) = spent {
            batches.put(spent_key, &spent)?;
        }
        batches.put(keys::refresh(&id), &record)?;
        batches.put(keys::refresh_family_member(&record.family, &id), &crate::storage::Marker)?;
        batches.commit(&self.store).await?;
        let refresh_token = format!("{}.{}", hex::encode(id), hex::encode(secret));
        Ok(Session { user, access_token, refresh_token })
    }
}

/// The slot of a refresh token (its family's, carried in its id); `None` if malformed.
pub fn refresh_slot(token: &str) -> Option<Slot> {
    parse_refresh(token).map(|(id, _)| slot_of_id(&id))
}

fn parse_refresh(token: &str) -> Option<([u8; 16], Vec<u8>)> {
    let (id, secret) = token.split_once('.')?;
    let id: [u8; 16] = hex::decode(id).ok()?.try_into().ok()?;
    let secret = hex::decode(secret).ok()?;
    (secret.len() == 32).then_some((id, secret))
}
