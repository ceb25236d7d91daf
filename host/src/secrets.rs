//! Secrets: values an operator sets once (`PUT /admin/secrets/{name}`,
//! `nova secrets set`) and the plugins whose manifests list them read
//! through `wasi:config/store`.
//!
//! Values are kept in the store encrypted with XChaCha20-Poly1305 under
//! the host's secrets key, a fresh random nonce per write and the secret's
//! name as associated data (a value cannot be moved to another name). The
//! key is `NOVA_SECRETS_KEY` (64 hex digits), or a key generated into
//! `DATA_DIR/secrets.key` (mode 0600) on first start. Hosts that share a
//! store must share the key. A value never leaves this module but to the
//! plugins that may read it: the listing has names and times, errors name
//! the secret, logs and metrics nothing of it.

use std::io::Write;
use std::path::Path;

use crate::store::{SecretRow, Store, StoreError, now_ms};
use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use nova_plugin_host::capability::{self, CapabilityError};
use nova_plugin_host::manifest::check_config_key;

/// Longest secret value.
pub const MAX_SECRET_BYTES: usize = 64 << 10;
/// Most secrets one store holds.
pub const MAX_SECRETS: usize = 10_000;
const KEY_FILE: &str = "secrets.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0}")]
    Invalid(String),
    #[error("the store is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error(
        "secret {0:?} cannot be decrypted with this host's secrets key (do the hosts sharing this store share NOVA_SECRETS_KEY?)"
    )]
    Undecryptable(String),
    #[error("cannot encrypt: {0}")]
    Crypto(String),
}

/// Why the secrets key cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("NOVA_SECRETS_KEY must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`")]
    BadEnv,
    #[error("secrets key file {path}: {message}")]
    File { path: String, message: String },
}

/// Encrypts and decrypts secret values, and keeps them in the store.
pub struct Vault {
    store: Store,
    cipher: XChaCha20Poly1305,
}

impl Vault {
    /// The vault over `store`, with `key` (from `NOVA_SECRETS_KEY`) or the
    /// key file in `data_dir`, made if missing.
    pub fn open(store: Store, key: Option<&str>, data_dir: &Path) -> Result<Self, KeyError> {
        let key = match key {
            Some(hex_key) => parse_key(hex_key).ok_or(KeyError::BadEnv)?,
            None => key_file(&data_dir.join(KEY_FILE))?,
        };
        Ok(Vault {
            store,
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
    }

    /// Creates or replaces `name`.
    pub async fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        check_config_key(name)
            .map_err(|why| SecretError::Invalid(format!("secret name: {why}")))?;
        if value.len() > MAX_SECRET_BYTES {
            return Err(SecretError::Invalid(format!(
                "a secret's value is at most {MAX_SECRET_BYTES} bytes"
            )));
        }
        let existing = self.store.secret_list().await?;
        if existing.len() >= MAX_SECRETS && !existing.iter().any(|(n, _)| n == name) {
            return Err(SecretError::Invalid(format!(
                "the store holds its limit of {MAX_SECRETS} secrets; delete one first"
            )));
        }
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| SecretError::Crypto(e.to_string()))?;
        let ciphertext = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|e| SecretError::Crypto(e.to_string()))?;
        self.store
            .secret_put(&SecretRow {
                name: name.to_owned(),
                nonce: nonce.to_vec(),
                ciphertext,
                updated_at: now_ms(),
            })
            .await?;
        tracing::info!(secret = name, "secret set");
        Ok(())
    }

    /// Every secret's name and when it was last set (unix ms).
    pub async fn list(&self) -> Result<Vec<(String, i64)>, SecretError> {
        Ok(self.store.secret_list().await?)
    }

    /// Deletes `name`; false if there was none.
    pub async fn remove(&self, name: &str) -> Result<bool, SecretError> {
        let removed = self.store.secret_delete(name).await?;
        if removed {
            tracing::info!(secret = name, "secret deleted");
        }
        Ok(removed)
    }

    /// The values of those of `names` that exist.
    pub async fn reveal(&self, names: &[String]) -> Result<Vec<(String, String)>, SecretError> {
        let rows = self.store.secret_get_many(names).await?;
        rows.into_iter()
            .map(|row| {
                let plain = (row.nonce.len() == 24)
                    .then(|| {
                        self.cipher
                            .decrypt(
                                XNonce::from_slice(&row.nonce),
                                Payload {
                                    msg: &row.ciphertext,
                                    aad: row.name.as_bytes(),
                                },
                            )
                            .ok()
                    })
                    .flatten()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| SecretError::Undecryptable(row.name.clone()))?;
                Ok((row.name, plain))
            })
            .collect()
    }
}

#[async_trait]
impl capability::Secrets for Vault {
    async fn reveal(&self, names: &[String]) -> Result<Vec<(String, String)>, CapabilityError> {
        Vault::reveal(self, names)
            .await
            .map_err(|e| CapabilityError::Unavailable(e.to_string()))
    }
}

fn parse_key(hex_key: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_key.trim()).ok()?;
    bytes.try_into().ok()
}

/// Reads the key file, or makes one (32 random bytes, hex, mode 0600).
/// A file others can read is refused: it would give away every secret.
fn key_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let fail = |message: String| KeyError::File {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| fail(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(fail(format!(
                    "is readable by others (mode {:o}); chmod 600 it",
                    mode & 0o777
                )));
            }
            parse_key(&text).ok_or_else(|| fail("does not hold 64 hex digits".into()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(|e| fail(e.to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| fail(e.to_string()))?;
            file.write_all(hex::encode(key).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(e.to_string()))?;
            tracing::info!(path = %path.display(), "made a secrets key; hosts sharing this store need the same NOVA_SECRETS_KEY");
            Ok(key)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn vault(dir: &Path) -> Vault {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        Vault::open(store, None, dir).expect("vault")
    }

    #[tokio::test]
    async fn values_round_trip_and_rest_encrypted() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path()).await;
        v.set("api_key", "s3cr3t-value").await.unwrap();
        v.set("other", "two").await.unwrap();
        let got = v
            .reveal(&["api_key".into(), "missing".into()])
            .await
            .unwrap();
        assert_eq!(
            got,
            vec![("api_key".to_string(), "s3cr3t-value".to_string())]
        );
        let row = &v.store.secret_get_many(&["api_key".into()]).await.unwrap()[0];
        assert!(
            !row.ciphertext.windows(6).any(|w| w == b"s3cr3t"),
            "stored encrypted"
        );
        // Rotation: the next read sees the new value.
        v.set("api_key", "rotated").await.unwrap();
        assert_eq!(v.reveal(&["api_key".into()]).await.unwrap()[0].1, "rotated");
        assert!(v.remove("api_key").await.unwrap());
        assert!(v.reveal(&["api_key".into()]).await.unwrap().is_empty());
        // The key file was made private.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn a_value_moved_to_another_name_or_key_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let v = vault(dir.path()).await;
        v.set("a", "alpha").await.unwrap();
        let mut row = v.store.secret_get_many(&["a".into()]).await.unwrap()[0].clone();
        row.name = "b".into();
        v.store.secret_put(&row).await.unwrap();
        let err = v.reveal(&["b".into()]).await.unwrap_err();
        assert!(err.to_string().contains("cannot be decrypted"), "{err}");
        assert!(!err.to_string().contains("alpha"));

        let other = Vault::open(v.store.clone(), Some(&"11".repeat(32)), dir.path()).unwrap();
        assert!(matches!(
            other.reveal(&["a".into()]).await,
            Err(SecretError::Undecryptable(_))
        ));
    }

    #[test]
    fn bad_keys_and_names_are_refused() {
        assert!(parse_key("abc").is_none());
        assert!(parse_key(&"zz".repeat(32)).is_none());
        assert!(parse_key(&"ab".repeat(32)).is_some());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, "ab".repeat(32)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = key_file(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
