//! [`Checkpoint`]: an Ed25519 signature over the chain's head, and the key that makes it.

use std::fs;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::AuditError;

/// A signed statement "the chain had `seq` records and the last one hashed to `hash`".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Sequence number of the last record covered.
    pub seq: u64,
    /// Hash of that record.
    pub hash: String,
    /// When the checkpoint was made, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Ed25519 signature over [`Checkpoint::message`], lowercase hex.
    pub sig: String,
}

impl Checkpoint {
    /// The bytes that are signed. Versioned so the format can change safely.
    pub fn message(seq: u64, hash: &str, ts_ms: i64) -> String {
        format!("dozor-audit-checkpoint:v1:{seq}:{hash}:{ts_ms}")
    }

    pub(crate) fn sign(key: &SigningKey, seq: u64, hash: &str, ts_ms: i64) -> Checkpoint {
        let sig = key.sign(Self::message(seq, hash, ts_ms).as_bytes());
        Checkpoint {
            seq,
            hash: hash.to_owned(),
            ts_ms,
            sig: hex::encode(sig.to_bytes()),
        }
    }

    /// Whether the signature is valid for `key`.
    pub fn is_signed_by(&self, key: &VerifyingKey) -> bool {
        let Ok(bytes) = hex::decode(&self.sig) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&bytes) else {
            return false;
        };
        key.verify(
            Self::message(self.seq, &self.hash, self.ts_ms).as_bytes(),
            &sig,
        )
        .is_ok()
    }
}

fn read_hex32(path: &Path) -> Result<[u8; 32], AuditError> {
    let text = fs::read_to_string(path).map_err(AuditError::io("read", path))?;
    let bytes = hex::decode(text.trim()).map_err(|_| AuditError::BadKey(path.to_owned()))?;
    bytes
        .try_into()
        .map_err(|_| AuditError::BadKey(path.to_owned()))
}

/// Loads the signing key from `dir`, generating and storing a new pair on first start.
pub(crate) fn load_or_create_key(dir: &Path) -> Result<SigningKey, AuditError> {
    let key_path = dir.join(crate::files::SIGNING_KEY);
    if key_path.exists() {
        return Ok(SigningKey::from_bytes(&read_hex32(&key_path)?));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| AuditError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(&key_path)
        .map_err(AuditError::io("create", &key_path))?;
    file.write_all(hex::encode(seed).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(AuditError::io("write", &key_path))?;
    let pub_path = dir.join(crate::files::PUBLIC_KEY);
    fs::write(&pub_path, hex::encode(key.verifying_key().to_bytes()))
        .map_err(AuditError::io("write", &pub_path))?;
    Ok(key)
}

/// Loads the public key from `dir`.
pub(crate) fn load_public_key(dir: &Path) -> Result<VerifyingKey, AuditError> {
    let path = dir.join(crate::files::PUBLIC_KEY);
    VerifyingKey::from_bytes(&read_hex32(&path)?).map_err(|_| AuditError::BadKey(path))
}
