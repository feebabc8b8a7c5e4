//! Browser sign-in: the OAuth 2.0 authorization code flow with PKCE (`S256`) and a loopback redirect, as RFC 8252
//! has native apps do it.
//!
//! [`SyncKitClient::sign_in_with_system_browser`](crate::SyncKitClient::sign_in_with_system_browser) does all of it
//! in one call. The steps, for an app that drives them itself:
//!
//! 1. [`generate_verifier`], its [`challenge`] and a [`generate_state`]; listen on `127.0.0.1` on any port.
//! 2. Open the browser at [`build_authorize_url`](crate::SyncKitClient::build_authorize_url) with that port.
//! 3. The browser comes back to [`redirect_uri`]`(port)` with `code` and `state`: check the state.
//! 4. [`authenticate_with_code`](crate::SyncKitClient::authenticate_with_code) exchanges the code for the session.
//!
//! Register `http://127.0.0.1/callback` as a redirect URI of the app: the server takes it on any port.
//!
//! # Layout
//! - here: the PKCE verifier, challenge and state, and the redirect URI.
//! - `browser`: [`open_browser`], the system browser (or `$BROWSER`).
//! - `loopback`: the listener the browser comes back to, and the page it shows.

mod browser;
pub(crate) mod loopback;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
pub use synckit_protocol::oauth::LOOPBACK_CALLBACK_PATH;

pub use self::browser::open_browser;

/// A new PKCE `code_verifier`: 32 random bytes in unpadded base64url, 43 characters (RFC 7636 section 4.1). Keep it
/// on the device: only its [`challenge`] goes to the browser.
///
/// ```
/// let verifier = synckit::oauth::generate_verifier();
/// assert_eq!(verifier.len(), 43);
/// assert_ne!(verifier, synckit::oauth::generate_verifier());
/// ```
pub fn generate_verifier() -> String {
    URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>())
}

/// The `S256` `code_challenge` of a verifier: `BASE64URL(SHA-256(verifier))`, unpadded (RFC 7636 section 4.2).
///
/// ```
/// // RFC 7636, appendix B.
/// let challenge = synckit::oauth::challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
/// assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
/// ```
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A new `state`: 16 random bytes in unpadded base64url. The browser must come back with the same one, so that a
/// page cannot hand the app a code of its own choosing.
///
/// ```
/// assert_ne!(synckit::oauth::generate_state(), synckit::oauth::generate_state());
/// ```
pub fn generate_state() -> String {
    URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<16>())
}

/// The redirect URI the browser comes back to: `http://127.0.0.1:{port}/callback`.
///
/// ```
/// assert_eq!(synckit::oauth::redirect_uri(51234), "http://127.0.0.1:51234/callback");
/// ```
pub fn redirect_uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}{LOOPBACK_CALLBACK_PATH}")
}

/// Whether `verifier` is one the server takes: 43 to 128 characters of `VERIFIER_CHARS`.
pub(crate) fn is_valid_verifier(verifier: &str) -> bool {
    use synckit_protocol::oauth::{VERIFIER_CHARS, VERIFIER_LEN};
    VERIFIER_LEN.contains(&verifier.len()) && verifier.chars().all(|c| VERIFIER_CHARS.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_one_of_rfc_7636() {
        // Appendix B: the verifier from the octets it lists, and the challenge it derives.
        let octets: [u8; 32] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191,
            240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let verifier = URL_SAFE_NO_PAD.encode(octets);
        assert_eq!(verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge(&verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn generated_verifiers_are_ones_the_server_takes() {
        for _ in 0..100 {
            let verifier = generate_verifier();
            assert!(is_valid_verifier(&verifier), "{verifier}");
            assert_eq!(challenge(&verifier).len(), 43);
        }
        assert!(!is_valid_verifier(&"a".repeat(42)), "too short");
        assert!(!is_valid_verifier(&"a".repeat(129)), "too long");
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(42))), "not a verifier character");
        assert!(is_valid_verifier(&"~".repeat(128)));
    }
}
