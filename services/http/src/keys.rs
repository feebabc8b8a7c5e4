//! Signing keys with ids, so that a deployment can rotate a secret without cutting off what the old one signed.
//!
//! A [`KeyRing`] holds the current key, which signs, and the previous keys, which only verify: a token or URL names
//! the id of the key that signed it, and stays valid after a rotation until it expires, for as long as its key is
//! kept among the previous ones. A key's id is a short hash of the key: it tells a verifier which key to use and
//! reveals nothing of a secret of 32 random bytes or more.

use sha2::{Digest, Sha256};

/// The shortest signing secret accepted.
pub const MIN_SECRET_BYTES: usize = 32;

/// A signing secret too short to be safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortSecret(pub usize);

impl std::fmt::Display for ShortSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the signing secret is {} bytes; it must be at least {MIN_SECRET_BYTES}", self.0)
    }
}

impl std::error::Error for ShortSecret {}

/// One secret and its id.
pub struct SigningKey {
    id: String,
    secret: Vec<u8>,
}

impl SigningKey {
    /// A key from a secret of at least [`MIN_SECRET_BYTES`].
    pub fn new(secret: &[u8]) -> Result<Self, ShortSecret> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(ShortSecret(secret.len()));
        }
        Ok(Self { id: key_id(secret), secret: secret.to_vec() })
    }

    /// The key's public name: 16 hex digits of a domain-separated SHA-256 of the secret.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret itself, for the MAC that signs with it.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.id)
    }
}

fn key_id(secret: &[u8]) -> String {
    let digest = Sha256::new().chain_update(b"synckit key id\0").chain_update(secret).finalize();
    hex::encode(&digest[..8])
}

/// The current signing key and the previous ones that still verify.
#[derive(Debug)]
pub struct KeyRing {
    /// The current key first; no two keys with one id.
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring that signs with `current` and also accepts what `previous` signed.
    pub fn new<'a>(current: &[u8], previous: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, ShortSecret> {
        let mut keys = vec![SigningKey::new(current)?];
        for secret in previous {
            let key = SigningKey::new(secret)?;
            if keys.iter().all(|k| k.id != key.id) {
                keys.push(key);
            }
        }
        Ok(Self { keys })
    }

    /// The key that signs.
    pub fn current(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// Every key, the current one first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The keys to verify something signed under `id`: that key alone, or none when it is unknown (retired, or
    /// another deployment's). Without an id (signed before keys had ids) every key is tried.
    pub fn candidates<'a>(&'a self, id: Option<&'a str>) -> impl Iterator<Item = &'a SigningKey> {
        self.keys.iter().filter(move |k| id.is_none_or(|id| k.id == id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_keys_without_showing_them() {
        let ring = KeyRing::new(&[1; 32], [[2; 32].as_slice(), [1; 32].as_slice()]).unwrap();
        let (current, previous) = (ring.current().id(), ring.keys()[1].id());
        assert_eq!(current.len(), 16);
        assert_ne!(current, previous);
        assert_eq!(ring.keys().len(), 2, "a previous key equal to the current one is dropped");
        assert_eq!(KeyRing::new(&[1; 32], []).unwrap().current().id(), current, "ids are stable");
        assert!(!format!("{ring:?}").contains("[1, 1"), "{ring:?}");

        assert_eq!(ring.candidates(Some(previous)).map(SigningKey::id).collect::<Vec<_>>(), [previous]);
        assert_eq!(ring.candidates(Some("0123456789abcdef")).count(), 0);
        assert_eq!(ring.candidates(None).count(), 2);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(SigningKey::new(&[1; 31]).unwrap_err(), ShortSecret(31));
        assert_eq!(KeyRing::new(&[1; 32], [[2; 31].as_slice()]).unwrap_err(), ShortSecret(31));
        assert_eq!(ShortSecret(31).to_string(), "the signing secret is 31 bytes; it must be at least 32");
    }
}
