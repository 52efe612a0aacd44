//! Password reset, on the node that owns the account's slot: a link asked for (mailed by
//! `crate::mail`, whose token `auth::reset` derives) and a link used (a new password; every
//! session of the account ends).

use super::accounts::Accounts;
use super::error::AppError;
use crate::auth::reset;
use crate::domain::{now_ms, Email, Event, Password, PasswordReset, RefreshToken, User};
use crate::storage::{keys, EmailOwner, WriteBatch};
use rand::RngCore;

impl Accounts {
    /// Writes a reset for `email`'s account, with the event that mails its link, if the account
    /// exists. Nothing tells the caller whether it does.
    pub async fn request_reset(&self, email: &Email) -> Result<(), AppError> {
        let Some(EmailOwner(user)) = self.store.get::<EmailOwner>(&keys::email(email))? else {
            // As long as a write would take: the time of the answer does not tell either.
            self.store.sync().await;
            return Ok(());
        };
        let mut nonce = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        let expires_at_ms = now_ms() + reset::VALID_MS;
        let token = reset::token(self.settings().jwt_secret.expose().as_bytes(), user, &nonce, expires_at_ms);
        let mut batch = WriteBatch::default();
        batch
            .put(keys::password_reset(&user), &PasswordReset { token_digest: reset::digest(&token), expires_at_ms })?;
        let event = Event::PasswordResetRequested { user, email: email.as_str().to_string(), nonce, expires_at_ms };
        self.store.push_event(&mut batch, user.slot(), event)?;
        Ok(self.store.commit(batch).await?)
    }

    /// Sets `password` for the account of `token`'s link, if the link is the account's latest,
    /// unused and unexpired; the link is spent and every refresh token of the account revoked,
    /// in the same write.
    pub async fn reset_password(&self, token: &str, password: Password) -> Result<(), AppError> {
        let user_id = reset::user_of(token).ok_or(AppError::ResetRejected)?;
        self.live_reset(user_id, token)?;
        let hash = self.hash_password(password).await?;
        // Serialised with refreshes (none may rotate a token this revokes) and with other uses
        // of the link: checked again now, so two uses at once make one change.
        let _serialised = self.refresh_lock.lock().await;
        let key = self.live_reset(user_id, token)?;
        let mut user = self.store.get::<User>(&keys::user(&user_id))?.ok_or(AppError::ResetRejected)?;
        user.password_hash = hash;
        let mut batch = WriteBatch::default();
        batch.put(keys::user(&user_id), &user)?;
        batch.remove(key);
        // The account's refresh tokens live in its slot (families begun before slots existed
        // excepted); one that does not decode is left as it is (its refresh fails anyway).
        let tokens = self.store.scan_slot_lenient::<RefreshToken>(user_id.slot(), keys::REFRESH, usize::MAX)?;
        for (token_key, token) in tokens {
            if let Ok(mut token) = token {
                if token.user_id == user_id && !token.revoked {
                    token.revoked = true;
                    batch.put(token_key, &token)?;
                }
            }
        }
        Ok(self.store.commit(batch).await?)
    }

    /// The key of `user`'s reset if `token` is its link, unused and unexpired.
    fn live_reset(&self, user: crate::domain::UserId, token: &str) -> Result<Vec<u8>, AppError> {
        let key = keys::password_reset(&user);
        let reset = self.store.get::<PasswordReset>(&key)?.ok_or(AppError::ResetRejected)?;
        if !crate::auth::digest_matches(token.as_bytes(), &reset.token_digest) || reset.expires_at_ms <= now_ms() {
            return Err(AppError::ResetRejected);
        }
        Ok(key)
    }
}
