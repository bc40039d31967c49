//! API keys: a prefix followed by 256 random bits, shown once, stored as a
//! SHA-256 hash. A secret key (`keel_sk_`) is scoped to a staff role: it can
//! do what a user with that role can, and no more, within its own rate
//! limit. A publishable key (`keel_pk_`) is safe in a browser: it reads the
//! catalog and drives carts and checkout only (the route table says which
//! routes), and is limited per client address rather than per key, since
//! every shopper of a headless storefront presents the same one.

use crate::{in_tx, Actor, App, AppError, Result};
use keel_domain::access::Role;
use keel_domain::catalog::text;
use keel_domain::ids::ApiKeyId;
use keel_domain::time::now_micros;
use keel_store::apikeys::{self as db, ApiKeyRow};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const KEY_PREFIX: &str = "keel_sk_";
pub const PUBLISHABLE_PREFIX: &str = "keel_pk_";

/// The requests a secret key may make per minute unless it has its own
/// limit (`keel serve` takes the default from `KEEL_RATE_LIMIT_API_PER_MIN`).
pub const DEFAULT_RATE_LIMIT_PER_MIN: u32 = 6000;
pub const MAX_RATE_LIMIT_PER_MIN: i64 = 1_000_000;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// A secret key with a staff role's permissions.
    Role(Role),
    /// A publishable key: catalog reads, carts and checkout.
    Storefront,
}

impl KeyScope {
    /// `publishable`, or a role name.
    pub fn parse(field: &str, s: &str) -> std::result::Result<KeyScope, keel_domain::Invalid> {
        if s == PUBLISHABLE {
            return Ok(KeyScope::Storefront);
        }
        Role::parse(field, s).map(KeyScope::Role)
    }

    pub fn role(self) -> Option<Role> {
        match self {
            KeyScope::Role(r) => Some(r),
            KeyScope::Storefront => None,
        }
    }

    /// `secret` or `publishable`.
    pub fn kind(self) -> &'static str {
        match self {
            KeyScope::Role(_) => SECRET,
            KeyScope::Storefront => PUBLISHABLE,
        }
    }
}

const SECRET: &str = "secret";
const PUBLISHABLE: &str = "publishable";

/// A key as a request presents it, once verified.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key_id: String,
    pub name: String,
    pub last_used_at: Option<i64>,
    pub scope: KeyScope,
    pub expires_at: Option<i64>,
    /// The key's own limit (secret keys); `None`: the configured default.
    pub rate_limit_per_min: Option<u32>,
}

/// What a new key is for.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub scope: KeyScope,
    pub expires_at: Option<i64>,
    /// Secret keys only: requests per minute (1 to [`MAX_RATE_LIMIT_PER_MIN`]).
    pub rate_limit_per_min: Option<i64>,
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

    /// Whom personal data in a response is shown to: a role's viewer, or,
    /// for a publishable key, the shopper holding the cart (who reaches
    /// carts only by their unguessable ids and lists nothing).
    pub fn viewer(&self) -> crate::privacy::Viewer {
        match self.scope {
            KeyScope::Role(role) => crate::privacy::Viewer::for_role(role),
            KeyScope::Storefront => crate::privacy::Viewer::SHOPPER,
        }
    }
}

/// What a stored key may do; `None` for a kind or role this version does
/// not know.
pub fn scope_of(k: &ApiKeyRow) -> Option<KeyScope> {
    match k.kind.as_str() {
        SECRET => Role::parse("role", &k.role).ok().map(KeyScope::Role),
        PUBLISHABLE => Some(KeyScope::Storefront),
        _ => None,
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
            scope: KeyScope::Role(Role::Owner),
            expires_at: None,
            rate_limit_per_min: None,
            created_by: None,
            creator_role: Role::Owner,
        })
        .await
    }

    /// Creates a key scoped to a role; returns it with its secret (shown once).
    pub async fn create_scoped_api_key(&self, new: NewApiKey) -> Result<(ApiKeyRow, String)> {
        let name = text("name", &new.name, 100)?;
        let prefix = match new.scope {
            KeyScope::Role(role) if !new.creator_role.can_grant(role) => {
                return Err(AppError::Forbidden { message: format!("a {} cannot create a key with role {}", new.creator_role.as_str(), role.as_str()) });
            }
            KeyScope::Role(_) => KEY_PREFIX,
            KeyScope::Storefront if new.rate_limit_per_min.is_some() => {
                return Err(keel_domain::Invalid::new(
                    "rate_limit_per_min",
                    "not_allowed",
                    "publishable keys are limited per client address, not per key",
                )
                .into());
            }
            KeyScope::Storefront => PUBLISHABLE_PREFIX,
        };
        if new.rate_limit_per_min.is_some_and(|n| !(1..=MAX_RATE_LIMIT_PER_MIN).contains(&n)) {
            return Err(keel_domain::Invalid::new(
                "rate_limit_per_min",
                "invalid_value",
                format!("must be between 1 and {MAX_RATE_LIMIT_PER_MIN}"),
            )
            .into());
        }
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let secret = format!("{prefix}{}", hex::encode(raw));
        let row = ApiKeyRow {
            id: ApiKeyId::generate().to_string(),
            name,
            prefix: secret[..prefix.len() + 6].to_owned(),
            secret_hash: hash_secret(&secret),
            created_at: now_micros(),
            last_used_at: None,
            expires_at: new.expires_at,
            revoked_at: None,
            role: new.scope.role().map_or(PUBLISHABLE, Role::as_str).to_owned(),
            kind: new.scope.kind().to_owned(),
            rate_limit_per_min: new.rate_limit_per_min,
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
        if !(secret.starts_with(KEY_PREFIX) || secret.starts_with(PUBLISHABLE_PREFIX)) || secret.len() > 200 {
            return Ok(None);
        }
        let mut conn = self.store.reader().await?;
        let Some(k) = db::by_hash(&mut conn, &hash_secret(secret)).await? else { return Ok(None) };
        let now = now_micros();
        if k.revoked_at.is_some() || k.expires_at.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        // An unknown kind or role (a row written by a newer version) grants nothing.
        let Some(scope) = scope_of(&k) else { return Ok(None) };
        if (scope == KeyScope::Storefront) != secret.starts_with(PUBLISHABLE_PREFIX) {
            return Ok(None);
        }
        let rate_limit_per_min = k.rate_limit_per_min.and_then(|n| u32::try_from(n).ok());
        Ok(Some(Principal { key_id: k.id, name: k.name, last_used_at: k.last_used_at, scope, expires_at: k.expires_at, rate_limit_per_min }))
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
            // A key of unknown scope is treated as an owner's.
            if let KeyScope::Role(role) = scope_of(&k).unwrap_or(KeyScope::Role(Role::Owner)) {
                if !by_role.can_grant(role) {
                    return Err(AppError::Forbidden { message: format!("a {} cannot revoke a key with role {}", by_role.as_str(), role.as_str()) });
                }
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
