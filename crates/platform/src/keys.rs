//! Platform keys: created on first start in `<data>/keys/platform-keys.json` (mode 0600),
//! loaded afterwards. Every node of one platform must load the same file.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cyberid_crypto::jose::SigningKey;
use cyberid_crypto::keyed_digest::DigestKey;
use cyberid_crypto::pin::PinOprfSecret;
use cyberid_crypto::seal::SealingKey;
use cyberid_crypto::{b64, random};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const KEYS_FILE: &str = "platform-keys.json";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("platform keys at {path}: {message}")]
    File { path: PathBuf, message: String },
}

/// The stored form. Secrets are base64url; issuer keys are PKCS#8.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    issuer_keys: Vec<StoredSigningKey>,
    person_digest_key: String,
    data_wrapping_key: String,
    pin_oprf_key: String,
    mac_key: String,
    pairwise_subject_key: String,
}

#[derive(Serialize, Deserialize)]
struct StoredSigningKey {
    kid: String,
    pkcs8: String,
    created_at: i64,
}

/// The loaded keys.
pub struct PlatformKeys {
    /// Signs credentials, status lists and (later) ID tokens. The first is current; the
    /// rest stay published for verification during rotation.
    pub issuer: Vec<SigningKey>,
    /// Keys the citizen ID number digest ("one person, one account").
    pub person_digest: DigestKey,
    /// Wraps per-person data keys.
    pub data_wrapping: SealingKey,
    /// Master secret of the per-account PIN OPRF keys.
    pub pin_oprf: PinOprfSecret,
    /// Authenticates what the platform hands out and checks later without storing it:
    /// enrolment tickets, authorization codes, wallet challenges; and keys client-secret
    /// digests. Each use has its own purpose label.
    pub mac: DigestKey,
    /// Derives pairwise subjects. Never rotated: subjects must stay stable for life.
    pub pairwise_subject: DigestKey,
    /// A one-way fingerprint of the secrets above, recorded in the store so that a node
    /// with other keys cannot join (it would let a person enrol twice).
    pub fingerprint: String,
}

impl std::fmt::Debug for PlatformKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformKeys")
            .field(
                "issuer",
                &self.issuer.iter().map(|k| k.kid()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PlatformKeys {
    /// The current issuer key.
    pub fn current_issuer(&self) -> &SigningKey {
        // `load` refuses a key file without issuer keys, so the list is never empty.
        &self.issuer[0]
    }

    /// Loads `<data_dir>/keys/platform-keys.json`, which must exist: for tools that must use
    /// a running platform's keys, never make new ones.
    pub fn load(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join("keys").join(KEYS_FILE);
        if !path.exists() {
            return Err(KeyError::File {
                path,
                message: "not found: point --data at the platform's data directory (the one `cyberid serve` uses)".into(),
            });
        }
        Self::load_or_create(data_dir)
    }

    /// Loads `<data_dir>/keys/platform-keys.json`, creating it if absent.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let dir = data_dir.join("keys");
        let path = dir.join(KEYS_FILE);
        let fail = |message: String| KeyError::File {
            path: path.clone(),
            message,
        };
        if !path.exists() {
            fs::create_dir_all(&dir).map_err(|e| fail(format!("cannot create directory: {e}")))?;
            let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
            create(&path).map_err(|e| fail(e.to_string()))?;
        }
        let mode = fs::metadata(&path)
            .map_err(|e| fail(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "file mode is {:o}; it must not be readable by group or others (chmod 600)",
                mode & 0o777
            )));
        }
        let text = Zeroizing::new(fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?);
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|e| fail(format!("not a platform key file: {e}")))?;
        load(&file).map_err(fail)
    }
}

fn secret32(text: &str, name: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let bytes = Zeroizing::new(b64::decode(text).map_err(|_| format!("{name} is not base64url"))?);
    let array: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| format!("{name} must be 32 bytes"))?;
    Ok(Zeroizing::new(array))
}

fn load(file: &KeyFile) -> Result<PlatformKeys, String> {
    if file.version != 1 {
        return Err(format!("unsupported key file version {}", file.version));
    }
    if file.issuer_keys.is_empty() {
        return Err("no issuer keys".into());
    }
    let issuer = file
        .issuer_keys
        .iter()
        .map(|stored| {
            let pkcs8 = Zeroizing::new(
                b64::decode(&stored.pkcs8).map_err(|_| "issuer key is not base64url")?,
            );
            SigningKey::from_pkcs8(&pkcs8)
                .map(|key| key.with_kid(stored.kid.clone()))
                .map_err(|_| "issuer key is not a P-256 PKCS#8 key")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let person_digest = DigestKey::new(&*secret32(&file.person_digest_key, "person_digest_key")?);
    let mut others = Zeroizing::new(Vec::with_capacity(128));
    for (text, name) in [
        (&file.data_wrapping_key, "data_wrapping_key"),
        (&file.pin_oprf_key, "pin_oprf_key"),
        (&file.mac_key, "mac_key"),
        (&file.pairwise_subject_key, "pairwise_subject_key"),
    ] {
        others.extend_from_slice(&*secret32(text, name)?);
    }
    let fingerprint = b64::encode(&person_digest.digest("platform-key-fingerprint", &others)[..16]);
    Ok(PlatformKeys {
        issuer,
        fingerprint,
        person_digest,
        data_wrapping: SealingKey::new(&*secret32(&file.data_wrapping_key, "data_wrapping_key")?),
        pin_oprf: PinOprfSecret::new(*secret32(&file.pin_oprf_key, "pin_oprf_key")?),
        mac: DigestKey::new(&*secret32(&file.mac_key, "mac_key")?),
        pairwise_subject: DigestKey::new(&*secret32(
            &file.pairwise_subject_key,
            "pairwise_subject_key",
        )?),
    })
}

/// Writes a new key file without ever exposing a partial or world-readable file, and
/// without overwriting one that another process created meanwhile.
fn create(path: &Path) -> std::io::Result<()> {
    let (key, pkcs8) = SigningKey::generate().map_err(std::io::Error::other)?;
    let kid = key.verifying_key().thumbprint();
    let file = KeyFile {
        version: 1,
        issuer_keys: vec![StoredSigningKey {
            kid,
            pkcs8: b64::encode(&pkcs8),
            created_at: crate::now(),
        }],
        person_digest_key: b64::encode(random::bytes::<32>()),
        data_wrapping_key: b64::encode(random::bytes::<32>()),
        pin_oprf_key: b64::encode(random::bytes::<32>()),
        mac_key: b64::encode(random::bytes::<32>()),
        pairwise_subject_key: b64::encode(random::bytes::<32>()),
    };
    let text = Zeroizing::new(serde_json::to_string_pretty(&file).map_err(std::io::Error::other)?);
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
    }
    // hard_link fails if the target exists: the first writer wins, the others load its keys.
    let linked = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let first = PlatformKeys::load_or_create(dir.path()).unwrap();
        let path = dir.path().join("keys").join(KEYS_FILE);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let second = PlatformKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(first.current_issuer().kid(), second.current_issuer().kid());
        assert_eq!(
            first.person_digest.digest("p", b"x"),
            second.person_digest.digest("p", b"x")
        );
        assert_eq!(first.fingerprint, second.fingerprint);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            PlatformKeys::load_or_create(other.path())
                .unwrap()
                .fingerprint,
            first.fingerprint
        );
    }

    #[test]
    fn refuses_readable_or_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        PlatformKeys::load_or_create(dir.path()).unwrap();
        let path = dir.path().join("keys").join(KEYS_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(PlatformKeys::load_or_create(dir.path()).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "{}").unwrap();
        assert!(PlatformKeys::load_or_create(dir.path()).is_err());
    }
}
