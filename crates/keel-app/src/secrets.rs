//! Encryption of personal data at rest (AES-256-GCM) and blind indexes for
//! looking it up (HMAC-SHA256), both derived from one 256-bit master key.
//!
//! The master key comes from `KEEL_SECRET_KEY` (64 hex characters or
//! base64), else from `secret.key` in the data directory, created with mode
//! 0600 on first start. Several nodes sharing a PostgreSQL database must share
//! the key (set `KEEL_SECRET_KEY`). The key is never logged.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

const VERSION_PREFIX: &str = "v1:";

#[derive(Clone)]
pub struct Secrets {
    cipher: Aes256Gcm,
    index_key: [u8; 32],
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("KEEL_SECRET_KEY must be 32 bytes as 64 hex characters or base64")]
    BadKey,
    #[error("cannot read or create the key file {path}: {cause}")]
    KeyFile { path: String, cause: String },
    #[error("stored ciphertext is corrupt or was encrypted with another key")]
    Decrypt,
}

fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master).expect("any key length");
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

fn parse_key(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) { hex::decode(s).ok()? } else { B64.decode(s).ok()? };
    bytes.try_into().ok()
}

impl Secrets {
    pub fn from_master(master: [u8; 32]) -> Secrets {
        let enc = derive(&master, "keel/pii-encryption/v1");
        Secrets {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&enc)),
            index_key: derive(&master, "keel/blind-index/v1"),
        }
    }

    /// The master key in use, without creating one: `KEEL_SECRET_KEY` if
    /// given, else `secret.key` in `data_dir`, else `None`. For `keel
    /// backup`, which must carry it beside the database.
    pub fn read_master(env_key: Option<&str>, data_dir: &Path) -> Result<Option<[u8; 32]>, SecretsError> {
        if let Some(k) = env_key.filter(|k| !k.trim().is_empty()) {
            return parse_key(k).map(Some).ok_or(SecretsError::BadKey);
        }
        let path = data_dir.join("secret.key");
        match std::fs::read_to_string(&path) {
            Ok(s) => parse_key(&s).map(Some).ok_or(SecretsError::BadKey),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SecretsError::KeyFile { path: path.display().to_string(), cause: e.to_string() }),
        }
    }

    /// Parses a key as `keel backup` writes it (64 hex characters).
    pub fn parse_master(text: &str) -> Result<[u8; 32], SecretsError> {
        parse_key(text).ok_or(SecretsError::BadKey)
    }

    /// Writes `key` to `path` (mode 0600), as `secret.key` is kept.
    pub fn write_master(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
        write_private(path, &hex::encode(key))
    }

    /// `KEEL_SECRET_KEY` if given, else `secret.key` in `data_dir`.
    pub fn load(env_key: Option<&str>, data_dir: &Path) -> Result<Secrets, SecretsError> {
        if let Some(k) = env_key.filter(|k| !k.trim().is_empty()) {
            return parse_key(k).map(Secrets::from_master).ok_or(SecretsError::BadKey);
        }
        let path = data_dir.join("secret.key");
        let err = |e: std::io::Error| SecretsError::KeyFile { path: path.display().to_string(), cause: e.to_string() };
        match std::fs::read_to_string(&path) {
            Ok(s) => parse_key(&s).map(Secrets::from_master).ok_or(SecretsError::BadKey),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(err)?;
                let key: [u8; 32] = rand::random();
                write_private(&path, &hex::encode(key)).map_err(err)?;
                tracing::info!(path = %path.display(), "generated a new secret key");
                Ok(Secrets::from_master(key))
            }
            Err(e) => Err(err(e)),
        }
    }

    /// A random key, for tests.
    pub fn ephemeral() -> Secrets {
        Secrets::from_master(rand::random())
    }

    /// `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn encrypt(&self, plaintext: &str) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ct = self.cipher.encrypt(&nonce, plaintext.as_bytes()).expect("AES-GCM encryption cannot fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{VERSION_PREFIX}{}", B64.encode(out))
    }

    pub fn decrypt(&self, stored: &str) -> Result<String, SecretsError> {
        let raw = stored.strip_prefix(VERSION_PREFIX).ok_or(SecretsError::Decrypt)?;
        let bytes = B64.decode(raw).map_err(|_| SecretsError::Decrypt)?;
        if bytes.len() < 12 + 16 {
            return Err(SecretsError::Decrypt);
        }
        let (nonce, ct) = bytes.split_at(12);
        let pt = self.cipher.decrypt(Nonce::from_slice(nonce), ct).map_err(|_| SecretsError::Decrypt)?;
        String::from_utf8(pt).map_err(|_| SecretsError::Decrypt)
    }

    pub fn encrypt_opt(&self, plaintext: Option<&str>) -> Option<String> {
        plaintext.map(|p| self.encrypt(p))
    }

    pub fn decrypt_opt(&self, stored: Option<&str>) -> Result<Option<String>, SecretsError> {
        stored.map(|s| self.decrypt(s)).transpose()
    }

    /// Deterministic keyed hash for equality lookups (e.g. by email) without
    /// storing the value in clear. Callers normalise first (trim, lowercase).
    pub fn blind_index(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key).expect("any key length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let s = Secrets::ephemeral();
        let c = s.encrypt("Ada Lovelace");
        assert!(c.starts_with("v1:"));
        assert_ne!(s.encrypt("Ada Lovelace"), c, "random nonces");
        assert_eq!(s.decrypt(&c).unwrap(), "Ada Lovelace");
        let mut bad = c.clone();
        bad.pop();
        bad.push(if c.ends_with('A') { 'B' } else { 'A' });
        assert!(s.decrypt(&bad).is_err());
        assert!(Secrets::ephemeral().decrypt(&c).is_err(), "another key cannot read it");
    }

    #[test]
    fn blind_index_is_keyed_and_stable() {
        let s = Secrets::from_master([7; 32]);
        assert_eq!(s.blind_index("a@b.c"), s.blind_index("a@b.c"));
        assert_ne!(s.blind_index("a@b.c"), Secrets::from_master([8; 32]).blind_index("a@b.c"));
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("keel-secrets-{}", rand::random::<u64>()));
        let a = Secrets::load(None, &dir).unwrap();
        let b = Secrets::load(None, &dir).unwrap();
        assert_eq!(b.decrypt(&a.encrypt("x")).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(Secrets::load(Some("short"), &dir), Err(SecretsError::BadKey)));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
