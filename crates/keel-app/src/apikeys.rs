//! API keys: `keel_sk_` followed by 256 random bits, shown once, stored as a
//! SHA-256 hash. Every key is scoped to a staff role: it can do what a
//! user with that role can, and no more.

use crate::{in_tx, Actor, App, AppError, Result};
use keel_domain::access::Role;
use keel_domain::catalog::text;
use keel_domain::ids::ApiKeyId;
use keel_domain::time::now_micros;
use keel_store::apikeys::{self as db, ApiKeyRow};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "keel_sk_";

/// A key as a request presents it, once verified.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub last_used_at: Option<i64>,
    pub role: Role,
    pub expires_at: Option<i64>,
}

/// What a new key is for.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    pub expires_at: Option<i64>,
    /// The staff user or key creating it (`None` on the command line).
    pub created_by: Option<String>,
    /// The creator's role: a key never grants more than its creator holds.
    pub creator_role: Role,
}

/// The longest expiry a key may be given.
pub const MAX_EXPIRY_DAYS: i64 = 3650;

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor(format!("api_key:{}", self.key_id))
    }
}

/// How Keel stores a random secret it issued (API keys, integration keys,
/// session tokens, recovery codes): SHA-256 in hex. A slow hash adds
/// nothing for secrets of this entropy.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl App {
    /// Creates a full-access (owner) key that never expires: the command
    /// line's and the test kit's. Returns it with its secret, which is not stored.
    pub async fn create_api_key(&self, name: &str) -> Result<(ApiKeyRow, String)> {
        self.create_scoped_api_key(NewApiKey {
            name: name.to_owned(),
            role: Role::Owner,
            expires_at: None,
            created_by: None,
            creator_role: Role::Owner,
        })
        .await
    }

    /// Creates a key scoped to a role; returns it with its secret (shown once).
    pub async fn create_scoped_api_key(&self, new: NewApiKey) -> Result<(ApiKeyRow, String)> {
        let name = text("name", &new.name, 100)?;
        if !new.creator_role.can_grant(new.role) {
            return Err(AppError::Forbidden { message: format!("a {} cannot create a key with role {}", new.creator_role.as_str(), new.role.as_str()) });
        }
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let secret = format!("{KEY_PREFIX}{}", hex::encode(raw));
        let row = ApiKeyRow {
            id: ApiKeyId::generate().to_string(),
            name,
            prefix: secret[..KEY_PREFIX.len() + 6].to_owned(),
            secret_hash: hash_secret(&secret),
            created_at: now_micros(),
            last_used_at: None,
            expires_at: new.expires_at,
            revoked_at: None,
            role: new.role.as_str().to_owned(),
            created_by: new.created_by,
        };
        in_tx!(self, |tx| {
            db::insert(&mut tx, &row).await?;
            Ok(())
        })?;
        Ok((row, secret))
    }

    /// The principal behind a presented secret, if the key is live.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>> {
        if !secret.starts_with(KEY_PREFIX) || secret.len() > 200 {
            return Ok(None);
        }
        let mut conn = self.store.reader().await?;
        let Some(k) = db::by_hash(&mut conn, &hash_secret(secret)).await? else { return Ok(None) };
        let now = now_micros();
        if k.revoked_at.is_some() || k.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        // An unknown role (a row written by a newer version) grants nothing.
        let Ok(role) = Role::parse("role", &k.role) else { return Ok(None) };
        Ok(Some(Principal { key_id: k.id, name: k.name, last_used_at: k.last_used_at, role, expires_at: k.expires_at }))
    }

    /// Keys, newest first; never their secrets.
    pub async fn list_api_keys(&self, limit: i64, starting_after: Option<&str>) -> Result<Vec<ApiKeyRow>> {
        let mut conn = self.store.reader().await?;
        Ok(db::list(&mut conn, limit, starting_after).await?)
    }

    /// Revokes a key (idempotent); returns it as it now is.
    pub async fn revoke_api_key(&self, id: &str, by_role: Role) -> Result<ApiKeyRow> {
        in_tx!(self, |tx| {
            let Some(k) = db::by_id(&mut tx, id).await? else { return Err(AppError::not_found("api_key", id)) };
            let role = Role::parse("role", &k.role).unwrap_or(Role::Owner);
            if !by_role.can_grant(role) {
                return Err(AppError::Forbidden { message: format!("a {} cannot revoke a key with role {}", by_role.as_str(), role.as_str()) });
            }
            db::revoke(&mut tx, id, now_micros()).await?;
            Ok(db::by_id(&mut tx, id).await?.unwrap_or(k))
        })
    }

    /// Records use of a key (callers throttle this).
    pub async fn touch_api_key(&self, key_id: &str) -> Result<()> {
        in_tx!(self, |tx| {
            db::touch(&mut tx, key_id, now_micros()).await?;
            Ok(())
        })
    }

    /// Revokes live keys with this name (the demo key is replaced each start).
    pub async fn revoke_api_keys_named(&self, name: &str) -> Result<u64> {
        in_tx!(self, |tx| Ok(db::revoke_named(&mut tx, name, now_micros()).await?))
    }
}
