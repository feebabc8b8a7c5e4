//! Hashing of login keys, API keys and authorization codes, and making API keys, OAuth client ids and codes.
//!
//! A login key is an Argon2id output and an API key is 32 random bytes: both have full entropy, so a single
//! SHA-256 is as strong as any slow hash here, and lets an API key be found by its hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of every API key, so a leaked one is recognisable in logs and secret scanners.
const API_KEY_PREFIX: &str = "sk_";
/// Prefix of every OAuth client id, so that one is never mistaken for an API key.
const CLIENT_ID_PREFIX: &str = "cid_";

/// What the store keeps of a login key.
pub fn login_key_hash(login_key: &[u8]) -> Vec<u8> {
    Sha256::digest(login_key).to_vec()
}

/// Whether `login_key` hashes to `stored`, in time independent of where they differ.
pub fn login_key_matches(login_key: &[u8], stored: &[u8]) -> bool {
    login_key_hash(login_key).ct_eq(stored).into()
}

/// What the store keeps of an API key.
pub fn api_key_hash(api_key: &str) -> Vec<u8> {
    Sha256::digest(api_key.as_bytes()).to_vec()
}

/// A new random API key: `sk_` and 32 random bytes in URL-safe base64.
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random::<32>()))
}

/// A new OAuth client id: `cid_` and 16 random bytes in lowercase hex, as the migration gave apps made before. It is
/// public, so it needs no more than to be unique and unrelated to the app's id.
pub fn new_client_id() -> String {
    let hex: String = random::<16>().iter().map(|b| format!("{b:02x}")).collect();
    format!("{CLIENT_ID_PREFIX}{hex}")
}

/// A new single-use secret of 256 bits in URL-safe base64 (43 characters): an OAuth authorization code, or the
/// sign-in page's CSRF token.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random::<32>())
}

/// What the store keeps of an authorization code: 256 random bits, so one SHA-256 suffices, as for API keys.
pub fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
}

/// The salt pre-login answers for an email with no account: stable, and unpredictable without the server's key.
pub fn fake_salt(prelogin_key: &[u8], email: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(prelogin_key).expect("HMAC takes any key length");
    mac.update(b"synckit prelogin salt\0");
    mac.update(email.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_keys_match_only_their_hash() {
        let stored = login_key_hash(&[7; 32]);
        assert!(login_key_matches(&[7; 32], &stored));
        assert!(!login_key_matches(&[8; 32], &stored));
    }

    #[test]
    fn api_keys_are_random_and_prefixed() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with("sk_") && a.len() == 3 + 43, "{a}");
    }

    #[test]
    fn client_ids_are_random_hex_and_prefixed() {
        let (a, b) = (new_client_id(), new_client_id());
        assert_ne!(a, b);
        let hex = a.strip_prefix("cid_").unwrap();
        assert!(hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{a}");
    }

    #[test]
    fn fake_salts_are_stable_per_email_and_key() {
        let key = [1; 32];
        assert_eq!(fake_salt(&key, "a@x.io"), fake_salt(&key, "a@x.io"));
        assert_ne!(fake_salt(&key, "a@x.io"), fake_salt(&key, "b@x.io"));
        assert_ne!(fake_salt(&key, "a@x.io"), fake_salt(&[2; 32], "a@x.io"));
        assert_eq!(fake_salt(&key, "a@x.io").len(), 32);
    }
}
