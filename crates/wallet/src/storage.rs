//! The wallet directory: `wallet.json` and the stand-in keystore.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::seal::SealingKey;
use cyberid_crypto::{b64, random};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::WalletError;

const WALLET_FILE: &str = "wallet.json";
const KEYSTORE_DIR: &str = "keystore";
const KEYSTORE_KEY: &str = "device-key-wrapping.key";
const DEVICE_KEY_CONTEXT: &[u8] = b"cyberid-wallet/device-key/1";

#[derive(Serialize, Deserialize)]
pub struct WalletFile {
    pub version: u32,
    /// The platform this wallet enrols with.
    pub server: String,
    /// The device's PKCS#8 private key, sealed under the keystore key. Saved before the
    /// enrolment is sent, so that a retry after a lost answer proves the same device.
    pub sealed_device_key: String,
    /// Present once the platform has issued the credential.
    pub enrolment: Option<Enrolment>,
}

#[derive(Serialize, Deserialize)]
pub struct Enrolment {
    pub issuer: String,
    pub network_number: String,
    pub credential: String,
}

pub struct WalletStorage {
    dir: PathBuf,
}

fn storage_error(what: &str, path: &Path, error: impl std::fmt::Display) -> WalletError {
    WalletError::Storage(format!("{what} {}: {error}", path.display()))
}

impl WalletStorage {
    pub fn open(dir: &Path) -> Result<Self, WalletError> {
        fs::create_dir_all(dir).map_err(|e| storage_error("cannot create", dir, e))?;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    pub fn load(&self) -> Result<Option<WalletFile>, WalletError> {
        let path = self.dir.join(WALLET_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| storage_error("unreadable", &path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage_error("cannot read", &path, e)),
        }
    }

    /// Seals a device private key (PKCS#8) for `WalletFile::sealed_device_key`.
    pub fn seal_device_key(&self, pkcs8: &[u8]) -> Result<String, WalletError> {
        let sealed = self
            .keystore_key()?
            .seal(DEVICE_KEY_CONTEXT, pkcs8)
            .map_err(|e| WalletError::Storage(e.to_string()))?;
        Ok(b64::encode(sealed))
    }

    /// Replaces `wallet.json` atomically.
    pub fn save(&self, file: &WalletFile) -> Result<(), WalletError> {
        let text =
            serde_json::to_string_pretty(file).map_err(|e| WalletError::Storage(e.to_string()))?;
        let path = self.dir.join(WALLET_FILE);
        write_private(&path, text.as_bytes()).map_err(|e| storage_error("cannot write", &path, e))
    }

    pub fn device_key(&self, file: &WalletFile) -> Result<SigningKey, WalletError> {
        let sealed = b64::decode(&file.sealed_device_key)
            .map_err(|e| WalletError::Storage(e.to_string()))?;
        let pkcs8 = Zeroizing::new(
            self.keystore_key()?
                .open(DEVICE_KEY_CONTEXT, &sealed)
                .map_err(|_| {
                    WalletError::Storage(
                        "the device key cannot be unsealed with this keystore".into(),
                    )
                })?,
        );
        SigningKey::from_pkcs8(&pkcs8).map_err(|e| WalletError::Storage(e.to_string()))
    }

    /// The keystore's wrapping key, created on first use.
    fn keystore_key(&self) -> Result<SealingKey, WalletError> {
        let dir = self.dir.join(KEYSTORE_DIR);
        let path = dir.join(KEYSTORE_KEY);
        if !path.exists() {
            fs::create_dir_all(&dir).map_err(|e| storage_error("cannot create", &dir, e))?;
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
            let secret = Zeroizing::new(random::bytes::<32>());
            write_private(&path, secret.as_slice())
                .map_err(|e| storage_error("cannot write", &path, e))?;
        }
        let bytes =
            Zeroizing::new(fs::read(&path).map_err(|e| storage_error("cannot read", &path, e))?);
        let secret: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            WalletError::Storage(format!("{} is not a keystore key", path.display()))
        })?;
        Ok(SealingKey::new(secret))
    }
}

/// Writes a 0600 file through a temporary file and a rename, so a crash leaves either the
/// old or the new content.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        out.write_all(bytes)?;
        out.sync_all()?;
    }
    fs::rename(&temporary, path)
}
