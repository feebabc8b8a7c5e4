//! The recovery key: a random secret shown to the user once, the one way back to the account's data after a
//! forgotten password that leaves the server as blind as before.
//!
//! A recovery key is 160 random bits. It has full entropy, so no slow derivation is needed: HKDF-SHA256 with the
//! salt `synckit/recovery/v1` extracts it once and two labels expand it into two unrelated keys.
//!
//! - The **recovery login key** (`synckit/recovery/v1/login-key`) signs in for a recovery. The server receives it
//!   and keeps its SHA-256, as it does a login key.
//! - The **recovery wrapping key** (`synckit/recovery/v1/wrapping-key`) seals the master key of each app into a
//!   recovery envelope, and never leaves the device. Knowing the login key (or any password-derived value) tells
//!   nothing about it: HKDF's outputs under distinct labels are independent, and none of the password derivations
//!   (Argon2id) takes a recovery key at all.
//!
//! A recovery envelope is sealed like a version 2 key envelope: the plaintext is the master key and its key check
//! (an HMAC of the key bound to the app and user), and the associated data binds it to the app and user too. A
//! candidate master key is adopted only if both hold.
//!
//! ```text
//! version = 3 (1 byte) ‖ nonce (24)
//!   ‖ XChaCha20-Poly1305(recovery wrapping key, nonce, master key (32) ‖ key check (32),
//!                        aad = "synckit/recovery-envelope/v1" ‖ app id ‖ user id ‖ version)
//! ```
//!
//! 105 bytes. Version 3 is the byte after the password envelope's versions 1 and 2, so neither parser takes the
//! other's envelopes.
//!
//! The printed form is Crockford base32 (digits and letters without I, L, O and U): the 160 bits are 32
//! characters, and 4 more carry a 20-bit checksum (the start of SHA-256 of a label and the key), in nine groups of
//! four: `XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX`. A mistyped character is caught before anything is sent,
//! but for one typo in a million.

use std::fmt;
use std::str::FromStr;

use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::aead::XChaCha20Poly1305;
use super::envelope::{CHECK_BYTES, check_matches, key_check};
use super::{KEY_BYTES, NONCE_BYTES, SecretKey, TAG_BYTES, random_bytes};
use crate::error::{Error, ErrorKind, Result};

/// The first byte of a recovery envelope.
pub const RECOVERY_ENVELOPE_VERSION: u8 = 3;
/// The bytes of a recovery envelope.
pub const RECOVERY_ENVELOPE_BYTES: usize = 1 + NONCE_BYTES + KEY_BYTES + CHECK_BYTES + TAG_BYTES;

/// Random bytes in a recovery key: 160 bits, 32 base32 characters.
const KEY_LEN: usize = 20;
const KEY_CHARS: usize = KEY_LEN * 8 / 5;
const CHECK_CHARS: usize = 4;
const CHARS: usize = KEY_CHARS + CHECK_CHARS;
const GROUP: usize = 4;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

const HKDF_SALT: &[u8] = b"synckit/recovery/v1";
const LOGIN_LABEL: &[u8] = b"synckit/recovery/v1/login-key";
const WRAPPING_LABEL: &[u8] = b"synckit/recovery/v1/wrapping-key";
const CHECKSUM_LABEL: &[u8] = b"synckit/recovery-key/checksum/v1";
const AAD_LABEL: &[u8] = b"synckit/recovery-envelope/v1";

/// A recovery key: 160 random bits, wiped from memory when dropped. `Display` prints the form to show the user
/// (once); `FromStr` reads it back, whatever the case and spacing, and refuses a typo by its checksum.
///
/// ```
/// use synckit::{ErrorKind, RecoveryKey};
/// let key = RecoveryKey::generate();
/// let printed = key.to_string();
/// assert_eq!(printed.len(), 44); // nine groups of four, with dashes
/// assert_eq!(printed.to_lowercase().replace('-', " ").parse::<RecoveryKey>().unwrap(), key);
/// // Debug output never shows it.
/// assert_eq!(format!("{key:?}"), "RecoveryKey(..)");
/// // A mistyped character is caught before anything is sent.
/// let typo = if printed.starts_with('A') { printed.replacen('A', "B", 1) } else { format!("A{}", &printed[1..]) };
/// assert_eq!(typo.parse::<RecoveryKey>().unwrap_err().kind(), ErrorKind::InvalidInput);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey(..)")
    }
}

impl RecoveryKey {
    /// A new random recovery key.
    ///
    /// ```
    /// use synckit::RecoveryKey;
    /// assert_ne!(RecoveryKey::generate(), RecoveryKey::generate());
    /// ```
    pub fn generate() -> Self {
        Self(Zeroizing::new(random_bytes()))
    }

    /// The recovery login key: what a recovery signs in with. The server receives it and keeps only its hash; it
    /// opens no envelope.
    ///
    /// ```
    /// use synckit::RecoveryKey;
    /// let key = RecoveryKey::generate();
    /// assert_eq!(key.login_key(), key.login_key());
    /// assert_ne!(key.login_key(), RecoveryKey::generate().login_key());
    /// ```
    pub fn login_key(&self) -> SecretKey {
        self.expand(LOGIN_LABEL)
    }

    /// The key recovery envelopes are sealed under. It never leaves the device.
    fn wrapping_key(&self) -> SecretKey {
        self.expand(WRAPPING_LABEL)
    }

    fn expand(&self, label: &[u8]) -> SecretKey {
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        Hkdf::<Sha256>::new(Some(HKDF_SALT), self.0.as_slice())
            .expand(label, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        SecretKey::from_bytes(key.as_slice()).expect("32 bytes")
    }

    /// The 20-bit checksum of the key, as four base32 digits.
    fn checksum(bytes: &[u8; KEY_LEN]) -> [u8; CHECK_CHARS] {
        let digest = Sha256::new().chain_update(CHECKSUM_LABEL).chain_update(bytes).finalize();
        let bits = u32::from_be_bytes([0, digest[0], digest[1], digest[2]]) >> 4;
        std::array::from_fn(|i| ALPHABET[((bits >> (5 * (CHECK_CHARS - 1 - i))) & 31) as usize])
    }
}

impl fmt::Display for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = Zeroizing::new(Vec::with_capacity(CHARS));
        let (mut acc, mut bits) = (0u32, 0);
        for &byte in self.0.iter() {
            acc = (acc << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                chars.push(ALPHABET[((acc >> bits) & 31) as usize]);
            }
        }
        chars.extend_from_slice(&Self::checksum(&self.0));
        for (i, group) in chars.chunks(GROUP).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(std::str::from_utf8(group).expect("base32 is ASCII"))?;
        }
        Ok(())
    }
}

impl FromStr for RecoveryKey {
    type Err = Error;

    /// Reads a recovery key as [`Display`](fmt::Display) prints it. Case, dashes and spaces do not matter, and `O`,
    /// `I` and `L` are read as the digits they look like. Anything else that is not the key, a character out of
    /// place, a character too many or too few, or a typo the checksum catches, is [`ErrorKind::InvalidInput`].
    fn from_str(s: &str) -> Result<Self> {
        let invalid = |message: String| Error::new(ErrorKind::InvalidInput, message);
        let mut digits = Zeroizing::new(Vec::with_capacity(CHARS));
        for c in s.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            let digit = ALPHABET.iter().position(|&a| char::from(a) == c).ok_or_else(|| {
                invalid(format!(
                    "{c:?} is not a character of a recovery key, which has only digits and the letters A to Z but \
                     U; check what was typed"
                ))
            })?;
            digits.push(digit as u8);
        }
        if digits.len() != CHARS {
            return Err(invalid(format!(
                "a recovery key has {CHARS} characters (nine groups of four); this has {}: check for a missing or \
                 extra group",
                digits.len()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        let (mut acc, mut bits, mut at) = (0u32, 0, 0);
        for &digit in &digits[..KEY_CHARS] {
            acc = (acc << 5) | u32::from(digit);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes[at] = (acc >> bits) as u8;
                at += 1;
            }
        }
        let expected = Self::checksum(&bytes);
        let given: Vec<u8> = digits[KEY_CHARS..].iter().map(|&d| ALPHABET[usize::from(d)]).collect();
        if given != expected {
            return Err(invalid(
                "this is not the recovery key as it was printed: its checksum does not match, so a character is \
                 mistyped; check each group"
                    .to_owned(),
            ));
        }
        Ok(Self(bytes))
    }
}

/// Seals `master`, the master key of `user` in `app`, under the recovery key: a recovery envelope, safe to hand to
/// the server.
///
/// ```
/// use synckit::RecoveryKey;
/// use synckit::crypto::{SecretKey, open_recovery_envelope, seal_recovery_envelope};
/// let (app, user, master, key) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), SecretKey::generate(), RecoveryKey::generate());
/// let envelope = seal_recovery_envelope(&master, &key, app, user);
/// assert_eq!(open_recovery_envelope(&envelope, &key, app, user).unwrap(), master);
/// ```
pub fn seal_recovery_envelope(master: &SecretKey, recovery_key: &RecoveryKey, app_id: Uuid, user_id: Uuid) -> Vec<u8> {
    seal_with(master, &recovery_key.wrapping_key(), &random_bytes(), app_id, user_id)
}

/// [`seal_recovery_envelope`] with a given nonce, which the fuzz targets check opened envelopes against.
#[cfg(fuzzing)]
pub(crate) fn seal_recovery_envelope_with(
    master: &SecretKey,
    recovery_key: &RecoveryKey,
    nonce: &[u8; NONCE_BYTES],
    app_id: Uuid,
    user_id: Uuid,
) -> Vec<u8> {
    seal_with(master, &recovery_key.wrapping_key(), nonce, app_id, user_id)
}

/// [`seal_recovery_envelope`] under a given wrapping key and nonce.
fn seal_with(master: &SecretKey, wrapping: &SecretKey, nonce: &[u8; NONCE_BYTES], app: Uuid, user: Uuid) -> Vec<u8> {
    let mut plaintext = Zeroizing::new([0u8; KEY_BYTES + CHECK_BYTES]);
    plaintext[..KEY_BYTES].copy_from_slice(master.as_bytes());
    plaintext[KEY_BYTES..].copy_from_slice(&key_check(master, app, user));
    let mut envelope = Vec::with_capacity(RECOVERY_ENVELOPE_BYTES);
    envelope.push(RECOVERY_ENVELOPE_VERSION);
    envelope.extend_from_slice(nonce);
    XChaCha20Poly1305::new(wrapping.as_bytes()).seal_into(nonce, &aad(app, user), plaintext.as_slice(), &mut envelope);
    envelope
}

/// The master key of `user` in `app` in a recovery envelope, opened with the recovery key. Anything but a recovery
/// envelope sealed by this recovery key for this app and user, with a key inside that passes its key check, is
/// [`ErrorKind::Crypto`], and no key comes out of it.
///
/// ```
/// use synckit::{ErrorKind, RecoveryKey};
/// use synckit::crypto::{SecretKey, open_recovery_envelope, seal_recovery_envelope};
/// let (app, user, key) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), RecoveryKey::generate());
/// let envelope = seal_recovery_envelope(&SecretKey::generate(), &key, app, user);
/// let other_app = uuid::Uuid::now_v7();
/// assert_eq!(open_recovery_envelope(&envelope, &key, other_app, user).unwrap_err().kind(), ErrorKind::Crypto);
/// ```
pub fn open_recovery_envelope(
    envelope: &[u8],
    recovery_key: &RecoveryKey,
    app_id: Uuid,
    user_id: Uuid,
) -> Result<SecretKey> {
    if envelope.len() != RECOVERY_ENVELOPE_BYTES || envelope[0] != RECOVERY_ENVELOPE_VERSION {
        return Err(Error::new(
            ErrorKind::Crypto,
            format!(
                "the recovery envelope of app {app_id} is not one SyncKit makes ({} bytes, version byte {})",
                envelope.len(),
                envelope.first().copied().unwrap_or(0)
            ),
        ));
    }
    let (nonce, sealed) = envelope[1..].split_first_chunk().expect("the length was checked");
    let opened = Zeroizing::new(
        XChaCha20Poly1305::new(recovery_key.wrapping_key().as_bytes())
            .open(nonce, &aad(app_id, user_id), sealed)
            .map_err(|_| {
                Error::new(
                    ErrorKind::Crypto,
                    format!(
                        "the recovery envelope of app {app_id} does not open with this recovery key, which the server \
                         accepted: the envelope was not sealed by it for this user and app, and nothing in it is used"
                    ),
                )
            })?,
    );
    let (key, check) = opened.split_at(KEY_BYTES);
    let candidate = SecretKey::from_bytes(key)?;
    if !check_matches(&candidate, app_id, user_id, check) {
        return Err(Error::new(
            ErrorKind::Crypto,
            format!(
                "the recovery envelope of app {app_id} opened, but the key inside fails its key check: it was not \
                 made by SyncKit for this user, and it is not used"
            ),
        ));
    }
    Ok(candidate)
}

fn aad(app_id: Uuid, user_id: Uuid) -> Vec<u8> {
    [AAD_LABEL, app_id.as_bytes(), user_id.as_bytes(), &[RECOVERY_ENVELOPE_VERSION]].concat()
}

#[cfg(test)]
mod tests;
