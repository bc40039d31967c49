//! API keys: `keel_sk_` followed by 256 random bits, shown once, stored as a
//! SHA-256 hash.

use crate::{in_tx, Actor, App, Result};
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
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor(format!("api_key:{}", self.key_id))
    }
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl App {
    /// Creates a key and returns it with its secret, which is not stored.
    pub async fn create_api_key(&self, name: &str) -> Result<(ApiKeyRow, String)> {
        let name = text("name", name, 100)?;
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
            expires_at: None,
            revoked_at: None,
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
        Ok(Some(Principal { key_id: k.id, name: k.name, last_used_at: k.last_used_at }))
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
