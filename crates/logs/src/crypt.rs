//! Encryption at rest of parts: AES-256-GCM with a key read from a file.
//!
//! A [`Key`] is never used to encrypt anything itself: [`Key::derive`] makes a [`Cipher`]
//! for one unit (a part, named by its random id) with HKDF-SHA256 (RFC 5869). A cipher seals
//! a byte string into `nonce (12 B) || ciphertext || tag (16 B)` with a fresh random nonce,
//! and opens it again only if not one byte — of the sealed string or of the associated data
//! the caller binds it to (which file, which block) — changed. Deriving a key per part keeps
//! each AES-GCM key to a few thousand random nonces, far inside the 2^32 that NIST SP 800-38D
//! allows one key, however many blocks a store writes over its life. The part writer seals
//! each block of `data` on its own, so a read stays one `read_exact_at` per block, and the
//! whole `index`; see `docs/format/logs.md`.
//!
//! A key is known by its id: the first 8 bytes of the SHA-256 of its 32 bytes, in hex. Parts
//! record the id of the key that sealed them, so opening a part with another key fails by
//! name before any decryption is tried. The id reveals nothing usable about the key (a hash
//! of 256 secret bits); the key bytes are never printed, not even by `Debug`.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::LogsError;

/// The algorithm's name, as `meta.json` records it.
pub const ALGORITHM: &str = "AES-256-GCM";
/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of the nonce in front of every sealed string.
pub const NONCE_LEN: usize = 12;
/// Bytes of the authentication tag behind every sealed string.
pub const TAG_LEN: usize = 16;
/// How much longer a sealed string is than its plaintext.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A secret key (from a key file) and its id.
///
/// Holds HKDF's pseudorandom key (extracted from the key bytes), from which
/// [`Key::derive`] expands the ciphers; the key bytes themselves are dropped once hashed.
pub struct Key {
    prk: [u8; 32],
    id: String,
}

impl fmt::Debug for Key {
    // By hand: a derived Debug would print the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Keys are equal when their ids are: 64 bits of SHA-256 do not collide by accident, and
/// comparing ids keeps the secret out of any comparison.
impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.id == other.id
    }
}

impl Eq for Key {}

impl Drop for Key {
    fn drop(&mut self) {
        // Best effort (`black_box` keeps the compiler from dropping the dead store): the
        // secret should not outlive the key in freed memory.
        self.prk.fill(0);
        std::hint::black_box(&mut self.prk);
    }
}

impl Key {
    /// The key of these bytes.
    pub fn new(bytes: &[u8; KEY_LEN]) -> Key {
        let digest = Sha256::digest(bytes);
        Key {
            prk: hkdf_extract(&[], bytes),
            id: hex::encode(&digest[..8]),
        }
    }

    /// Reads a key file: exactly 32 raw bytes, or 64 hex digits, or the base64 (standard
    /// alphabet, padded or not) of 32 bytes; text may be surrounded by whitespace such as a
    /// trailing newline. Anything else is an error naming the file (and never its content).
    pub fn from_file(path: &Path) -> Result<Key, LogsError> {
        let mut contents = std::fs::read(path).map_err(LogsError::io("read", path))?;
        warn_if_readable_by_others(path);
        let key = parse(&contents)
            .map_err(|why| LogsError::Encryption(format!("key file {}: {why}", path.display())));
        // Best effort, as in `Drop`: the buffer held the key.
        contents.fill(0);
        std::hint::black_box(&mut contents);
        key
    }

    /// The key's id: the first 8 bytes of the SHA-256 of the key, 16 hex digits.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The cipher of the unit `info` names (for a part: a fixed label and the part's random
    /// id): AES-256-GCM under HKDF-SHA256-Expand(this key, `info`, 32 bytes).
    pub fn derive(&self, info: &[u8]) -> Cipher {
        let mut key = hkdf_expand_32(&self.prk, info);
        let cipher = Cipher(Aes256Gcm::new(&key.into()));
        key.fill(0);
        std::hint::black_box(&mut key);
        cipher
    }
}

/// An AES-256-GCM key derived from a [`Key`]: seals and opens byte strings.
#[derive(Clone)]
pub struct Cipher(Aes256Gcm);

impl fmt::Debug for Cipher {
    // By hand: a derived Debug would print the round keys, which are the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher { .. }")
    }
}

impl Cipher {
    /// Appends `plain`, sealed and bound to `aad`, to `out`: a random nonce, the ciphertext
    /// (as long as `plain`) and the tag, [`OVERHEAD`] bytes more than `plain`.
    pub fn seal(&self, aad: &[u8], plain: &[u8], out: &mut Vec<u8>) -> Result<(), LogsError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| LogsError::Encryption(format!("no random nonce: {e}")))?;
        let start = out.len();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        match self.0.encrypt_in_place_detached(
            &Nonce::from(nonce),
            aad,
            &mut out[start + NONCE_LEN..],
        ) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(LogsError::Limit(format!(
                    "{} bytes are too many to seal",
                    plain.len()
                )))
            }
        }
    }

    /// Opens a string [`Cipher::seal`] made with the same `aad`, in place; returns the
    /// plaintext (a part of `sealed`). Any change to the string or the associated data is
    /// an error ([`LogsError::Corrupt`]), and then `sealed` holds no plaintext.
    pub fn open<'a>(&self, aad: &[u8], sealed: &'a mut [u8]) -> Result<&'a [u8], LogsError> {
        let len = sealed.len();
        if len < OVERHEAD {
            return Err(LogsError::Corrupt(format!(
                "a sealed string of {len} bytes, shorter than its nonce and tag"
            )));
        }
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let (body, tag) = rest.split_at_mut(len - OVERHEAD);
        let nonce: [u8; NONCE_LEN] = (&*nonce)
            .try_into()
            .map_err(|_| LogsError::Corrupt("bad nonce".into()))?;
        let tag: [u8; TAG_LEN] = (&*tag)
            .try_into()
            .map_err(|_| LogsError::Corrupt("bad tag".into()))?;
        self.0
            .decrypt_in_place_detached(&Nonce::from(nonce), aad, body, &Tag::from(tag))
            .map_err(|_| LogsError::Corrupt("a sealed string does not authenticate".into()))?;
        Ok(body)
    }
}

/// HKDF-Extract (RFC 5869 §2.2) without a salt (RustCrypto's `hkdf`).
fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> [u8; 32] {
    let salt = (!salt.is_empty()).then_some(salt);
    hkdf::Hkdf::<Sha256>::extract(salt, ikm).0.into()
}

/// HKDF-Expand (RFC 5869 §2.3) of 32 bytes.
fn hkdf_expand_32(prk: &[u8; 32], info: &[u8]) -> [u8; 32] {
    let mut okm = [0u8; 32];
    // A 32-byte PRK is always long enough and 32 bytes of output always fit (at most
    // 255 × 32): neither call can fail, and a key must never silently be zeros.
    let expanded = hkdf::Hkdf::<Sha256>::from_prk(prk)
        .map_err(|_| ())
        .and_then(|h| h.expand(info, &mut okm).map_err(|_| ()));
    if expanded.is_err() {
        unreachable!("BUG: HKDF-SHA256 refused a 32-byte PRK or a 32-byte output");
    }
    okm
}

/// What a key file must hold, for the error messages.
const EXPECTED: &str = "need 32 raw bytes, 64 hex digits or base64 of 32 bytes";

/// The key in a key file's `contents`, or why there is none (never quoting the contents).
fn parse(contents: &[u8]) -> Result<Key, String> {
    // Raw first: 32 random bytes may happen to look like anything, and text never is 32
    // bytes long (hex is 64 characters, base64 43 or 44).
    if let Ok(raw) = <&[u8; KEY_LEN]>::try_from(contents) {
        return Ok(Key::new(raw));
    }
    let Ok(text) = std::str::from_utf8(contents) else {
        return Err(format!(
            "{} bytes that are not text and not 32 bytes long ({EXPECTED})",
            contents.len()
        ));
    };
    let text = text.trim();
    let chars = text.chars().count();
    if text.is_empty() {
        return Err(format!("is empty ({EXPECTED})"));
    }
    let mut decoded = if text.bytes().all(|b| b.is_ascii_hexdigit()) {
        if chars != 2 * KEY_LEN {
            return Err(format!("{chars} hex digits ({EXPECTED})"));
        }
        hex::decode(text).map_err(|_| format!("bad hex digits ({EXPECTED})"))?
    } else {
        let padded = &base64::engine::general_purpose::STANDARD;
        let bare = &base64::engine::general_purpose::STANDARD_NO_PAD;
        padded
            .decode(text)
            .or_else(|_| bare.decode(text))
            .map_err(|_| {
                format!("{chars} characters that are neither hex nor base64 ({EXPECTED})")
            })?
    };
    let key = <&[u8; KEY_LEN]>::try_from(decoded.as_slice())
        .map(Key::new)
        .map_err(|_| {
            format!(
                "{chars} characters of base64 that decode to {} bytes ({EXPECTED})",
                decoded.len()
            )
        });
    decoded.fill(0);
    std::hint::black_box(&mut decoded);
    key
}

/// Logs a warning when the key file's mode lets users other than its owner read it.
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", m.permissions().mode() & 0o777),
            "the log encryption key file is accessible to other users; chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_strings_open_only_with_their_cipher_and_associated_data() {
        let key = Key::new(&[7; KEY_LEN]);
        let cipher = key.derive(b"part 1");
        let mut sealed = Vec::new();
        cipher
            .seal(b"here", b"secret message", &mut sealed)
            .unwrap();
        assert_eq!(sealed.len(), 14 + OVERHEAD);
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            cipher.open(b"here", &mut sealed.clone()).unwrap(),
            b"secret message"
        );
        assert_eq!(
            key.derive(b"part 1")
                .open(b"here", &mut sealed.clone())
                .unwrap(),
            b"secret message",
            "derivation is deterministic"
        );
        assert!(cipher.open(b"there", &mut sealed.clone()).is_err());
        assert!(
            key.derive(b"part 2")
                .open(b"here", &mut sealed.clone())
                .is_err()
        );
        let other = Key::new(&[8; KEY_LEN]).derive(b"part 1");
        assert!(other.open(b"here", &mut sealed.clone()).is_err());
        for i in 0..sealed.len() {
            let mut s = sealed.clone();
            s[i] ^= 1;
            assert!(cipher.open(b"here", &mut s).is_err(), "byte {i}");
        }
        for cut in 0..sealed.len() {
            assert!(cipher.open(b"here", &mut sealed[..cut].to_vec()).is_err());
        }
        let mut again = Vec::new();
        cipher.seal(b"here", b"secret message", &mut again).unwrap();
        assert_ne!(sealed, again, "a fresh nonce every time");
    }

    #[test]
    fn hkdf_matches_rfc_5869() {
        // Test case 1 of RFC 5869 (the first 32 of its 42 output bytes).
        let prk = hkdf_extract(
            &hex::decode("000102030405060708090a0b0c").unwrap(),
            &[11; 22],
        );
        assert_eq!(
            hex::encode(prk),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
        );
        let okm = hkdf_expand_32(&prk, &hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap());
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
        // Test case 3: no salt, no info.
        let prk = hkdf_extract(&[], &[11; 22]);
        assert_eq!(
            hex::encode(prk),
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"
        );
        assert_eq!(
            hex::encode(hkdf_expand_32(&prk, &[])),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
    }

    #[test]
    fn ids_are_sha256_prefixes_and_debug_hides_the_key() {
        let key = Key::new(&[0; KEY_LEN]);
        // SHA-256 of 32 zero bytes starts 66687aadf862bd77.
        assert_eq!(key.id(), "66687aadf862bd77");
        assert_eq!(format!("{key:?}"), "Key { id: \"66687aadf862bd77\", .. }");
        assert_eq!(format!("{:?}", key.derive(b"x")), "Cipher { .. }");
    }
}
