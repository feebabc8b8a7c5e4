//! XChaCha20-Poly1305, the one AEAD of the SDK, as draft-irtf-cfrg-xchacha-03 defines it: HChaCha20 of the key and
//! the nonce's first 16 bytes gives a subkey, under which the ChaCha20-Poly1305 of RFC 8439 seals with the 12-byte
//! nonce `0 0 0 0 ‖ the nonce's last 8 bytes`.
//!
//! ChaCha20-Poly1305 is aws-lc's (through aws-lc-rs, already the TLS provider of the SDK's HTTP client): assembly for
//! the CPU at hand, chosen once, with a per-message set-up small enough that a 256-byte entry costs a few hundred
//! nanoseconds. HChaCha20 is RustCrypto's `chacha20::hchacha`. The subkey depends on the nonce's first 16 bytes only,
//! so [`PrefixKey`] keeps it for messages whose nonces share them. The bytes are those of any other
//! XChaCha20-Poly1305: the tests check the draft's test vector and agree with the RustCrypto implementation both
//! ways.

use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use chacha20::cipher::consts::U10;
use zeroize::{Zeroize, Zeroizing};

use super::{KEY_BYTES, NONCE_BYTES, TAG_BYTES};

/// The part of a nonce that HChaCha20 reads, and the part that ChaCha20-Poly1305 does.
pub(crate) const PREFIX_BYTES: usize = 16;
pub(crate) const SUFFIX_BYTES: usize = NONCE_BYTES - PREFIX_BYTES;

/// A key for XChaCha20-Poly1305; the key bytes are wiped when it is dropped.
#[derive(Clone)]
pub(crate) struct XChaCha20Poly1305 {
    key: Zeroizing<[u8; KEY_BYTES]>,
}

/// A sealed message did not open: tampered, truncated, or sealed under another key, nonce or associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unauthentic;

impl XChaCha20Poly1305 {
    pub(crate) fn new(key: &[u8; KEY_BYTES]) -> Self {
        Self { key: Zeroizing::new(*key) }
    }

    /// Appends `plaintext` sealed under `nonce` with `aad` to `out`: the ciphertext, then the 16-byte tag.
    pub(crate) fn seal_into(&self, nonce: &[u8; NONCE_BYTES], aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let (prefix, suffix) = super::split_nonce(nonce);
        self.prefix_key(prefix).seal_into(suffix, aad, plaintext, out);
    }

    /// `plaintext` sealed under `nonce` with `aad`: ciphertext ‖ tag.
    pub(crate) fn seal(&self, nonce: &[u8; NONCE_BYTES], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plaintext.len() + TAG_BYTES);
        self.seal_into(nonce, aad, plaintext, &mut out);
        out
    }

    /// Opens what [`XChaCha20Poly1305::seal`] sealed under the same key, nonce and associated data.
    pub(crate) fn open(&self, nonce: &[u8; NONCE_BYTES], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unauthentic> {
        let (prefix, suffix) = super::split_nonce(nonce);
        self.prefix_key(prefix).open(suffix, aad, sealed)
    }

    /// The key for every nonce that begins with `prefix`: HChaCha20's subkey, derived once.
    pub(crate) fn prefix_key(&self, prefix: &[u8; PREFIX_BYTES]) -> PrefixKey {
        let mut subkey: [u8; KEY_BYTES] = chacha20::hchacha::<U10>(self.key.as_ref().into(), prefix.into()).into();
        let key = UnboundKey::new(&CHACHA20_POLY1305, &subkey).expect("an HChaCha20 output is a ChaCha20 key");
        subkey.zeroize();
        PrefixKey(LessSafeKey::new(key))
    }
}

/// XChaCha20-Poly1305 for nonces with one 16-byte prefix, given their last 8 bytes: made by
/// [`XChaCha20Poly1305::prefix_key`]. aws-lc wipes the subkey when it is dropped.
pub(crate) struct PrefixKey(LessSafeKey);

impl PrefixKey {
    /// [`XChaCha20Poly1305::seal_into`] for the nonce `prefix ‖ suffix`.
    pub(crate) fn seal_into(&self, suffix: &[u8; SUFFIX_BYTES], aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(plaintext.len() + TAG_BYTES);
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(chacha_nonce(suffix), Aad::from(aad), &mut out[start..])
            .expect("ChaCha20-Poly1305 seals any in-memory buffer");
        out.extend_from_slice(tag.as_ref());
    }

    /// [`XChaCha20Poly1305::open`] for the nonce `prefix ‖ suffix`.
    pub(crate) fn open(&self, suffix: &[u8; SUFFIX_BYTES], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unauthentic> {
        if sealed.len() < TAG_BYTES {
            return Err(Unauthentic);
        }
        let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_BYTES);
        let mut plaintext = ciphertext.to_vec();
        match self.0.open_in_place_separate_tag(chacha_nonce(suffix), Aad::from(aad), tag, &mut plaintext) {
            Ok(_) => Ok(plaintext),
            Err(_) => {
                // aws-lc leaves unauthenticated plaintext behind: wipe it rather than hand it to the allocator.
                plaintext.zeroize();
                Err(Unauthentic)
            }
        }
    }
}

/// ChaCha20-Poly1305's 12-byte nonce for an XChaCha20-Poly1305 nonce ending in `suffix`.
fn chacha_nonce(suffix: &[u8; SUFFIX_BYTES]) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(suffix);
    Nonce::assume_unique_for_key(nonce)
}

#[cfg(test)]
mod tests {
    use chacha20poly1305::KeyInit;
    use chacha20poly1305::aead::{Aead, Payload};
    use proptest::prelude::*;

    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn seals_the_drafts_test_vector() {
        // draft-irtf-cfrg-xchacha-03, appendix A.3.1.
        let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, \
                          sunscreen would be it.";
        let aad = hex("50515253c0c1c2c3c4c5c6c7");
        let key: [u8; 32] = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f").try_into().unwrap();
        let nonce: [u8; 24] = hex("404142434445464748494a4b4c4d4e4f5051525354555657").try_into().unwrap();
        let expected = hex("bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
             731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
             2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
             21f9664c97637da9768812f615c68b13b52e
             c0875924c1c7987947deafd8780acf49");
        let cipher = XChaCha20Poly1305::new(&key);
        assert_eq!(cipher.seal(&nonce, &aad, plaintext), expected);
        assert_eq!(cipher.open(&nonce, &aad, &expected).unwrap(), plaintext);
    }

    #[test]
    fn refuses_what_was_not_sealed_so() {
        let cipher = XChaCha20Poly1305::new(&[7; 32]);
        let nonce = [1; 24];
        let sealed = cipher.seal(&nonce, b"aad", b"hello");
        assert_eq!(sealed.len(), 5 + TAG_BYTES);
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert_eq!(cipher.open(&nonce, b"aad", &tampered), Err(Unauthentic));
        assert_eq!(cipher.open(&nonce, b"aae", &sealed), Err(Unauthentic));
        assert_eq!(cipher.open(&[2; 24], b"aad", &sealed), Err(Unauthentic));
        // Another nonce that differs only where HChaCha20 reads it, and only where ChaCha20-Poly1305 does.
        let (mut early, mut late) = (nonce, nonce);
        early[0] ^= 1;
        late[23] ^= 1;
        assert_eq!(cipher.open(&early, b"aad", &sealed), Err(Unauthentic));
        assert_eq!(cipher.open(&late, b"aad", &sealed), Err(Unauthentic));
        assert_eq!(XChaCha20Poly1305::new(&[8; 32]).open(&nonce, b"aad", &sealed), Err(Unauthentic));
        assert_eq!(cipher.open(&nonce, b"aad", &sealed[..TAG_BYTES - 1]), Err(Unauthentic));
        assert_eq!(cipher.open(&nonce, b"aad", &sealed[..sealed.len() - 1]), Err(Unauthentic));
        assert_eq!(cipher.open(&nonce, b"aad", &[]), Err(Unauthentic));
        let empty = cipher.seal(&nonce, b"", b"");
        assert_eq!(cipher.open(&nonce, b"", &empty).unwrap(), b"");
    }

    proptest! {
        #[test]
        fn agrees_with_rustcrypto_both_ways(
            key: [u8; 32],
            nonce: [u8; 24],
            aad in proptest::collection::vec(any::<u8>(), 0..80),
            plaintext in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            let ours = XChaCha20Poly1305::new(&key);
            let theirs = chacha20poly1305::XChaCha20Poly1305::new(&key.into());
            let sealed = ours.seal(&nonce, &aad, &plaintext);
            let expected = theirs.encrypt(&nonce.into(), Payload { msg: &plaintext, aad: &aad }).unwrap();
            prop_assert_eq!(&sealed, &expected);
            prop_assert_eq!(&ours.open(&nonce, &aad, &expected).unwrap(), &plaintext);
            let opened = theirs.decrypt(&nonce.into(), Payload { msg: &sealed, aad: &aad }).unwrap();
            prop_assert_eq!(&opened, &plaintext);
        }
    }
}
