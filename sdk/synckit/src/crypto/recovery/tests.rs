use super::*;
use crate::crypto::wrap_master_key;

fn fixed() -> RecoveryKey {
    RecoveryKey(Zeroizing::new(std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11))))
}

#[test]
fn the_printed_form_reads_back_however_it_is_typed() {
    let key = fixed();
    let printed = key.to_string();
    assert_eq!(printed.len(), CHARS + CHARS / GROUP - 1);
    assert!(printed.split('-').all(|g| g.len() == GROUP && g.bytes().all(|b| ALPHABET.contains(&b))), "{printed}");
    assert_eq!(printed.parse::<RecoveryKey>().unwrap(), key);
    assert_eq!(printed.to_lowercase().parse::<RecoveryKey>().unwrap(), key);
    assert_eq!(format!("  {}\n", printed.replace('-', " ")).parse::<RecoveryKey>().unwrap(), key);
    // The letters that look like digits are read as those digits.
    let lookalikes = printed.replace('0', "o").replace('1', "l");
    assert_eq!(lookalikes.parse::<RecoveryKey>().unwrap(), key);
    for _ in 0..100 {
        let key = RecoveryKey::generate();
        assert_eq!(key.to_string().parse::<RecoveryKey>().unwrap(), key);
    }
}

#[test]
fn every_single_typo_is_caught_by_the_checksum() {
    let printed: Vec<char> = fixed().to_string().chars().collect();
    let mut tried = 0;
    for at in (0..printed.len()).filter(|&i| printed[i] != '-') {
        for &other in ALPHABET.iter().filter(|&&a| char::from(a) != printed[at]) {
            let mut typo = printed.clone();
            typo[at] = char::from(other);
            let typo: String = typo.into_iter().collect();
            let err = typo.parse::<RecoveryKey>().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{typo}");
            assert!(err.to_string().contains("checksum"), "{err}");
            tried += 1;
        }
    }
    assert_eq!(tried, CHARS * 31);
    // Two neighbours swapped.
    let mut swapped = printed.clone();
    let at =
        (0..printed.len() - 1).find(|&i| printed[i] != '-' && printed[i + 1] != '-' && printed[i] != printed[i + 1]);
    let at = at.unwrap();
    swapped.swap(at, at + 1);
    assert!(swapped.into_iter().collect::<String>().parse::<RecoveryKey>().is_err());
}

#[test]
fn a_malformed_key_says_what_is_wrong() {
    let printed = fixed().to_string();
    let message = |s: &str| {
        let err = s.parse::<RecoveryKey>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{s}");
        err.to_string()
    };
    assert!(message(&printed[..printed.len() - 5]).contains("has 32"), "a group left out");
    assert!(message(&format!("{printed}-ABCD")).contains("has 40"));
    assert!(message("").contains("has 0"));
    assert!(message(&printed.replacen(|c: char| c.is_ascii_alphanumeric(), "U", 1)).contains("'U'"));
    assert!(message(&printed.replacen('-', "_", 1)).contains("'_'"));
}

#[test]
fn the_login_and_wrapping_keys_are_apart_and_fixed() {
    let key = fixed();
    assert_ne!(key.login_key(), key.wrapping_key());
    let hkdf = Hkdf::<Sha256>::new(Some(b"synckit/recovery/v1"), key.0.as_slice());
    let mut login = [0u8; 32];
    hkdf.expand(b"synckit/recovery/v1/login-key", &mut login).unwrap();
    assert_eq!(key.login_key().as_bytes(), &login, "the documented derivation");
}

#[test]
fn recovery_envelopes_open_only_with_their_key_for_their_app_and_user() {
    let (app, user, master, key) = (Uuid::now_v7(), Uuid::now_v7(), SecretKey::generate(), RecoveryKey::generate());
    let envelope = seal_recovery_envelope(&master, &key, app, user);
    assert_eq!((envelope.len(), envelope[0]), (RECOVERY_ENVELOPE_BYTES, RECOVERY_ENVELOPE_VERSION));
    assert_eq!(open_recovery_envelope(&envelope, &key, app, user).unwrap(), master);
    assert_ne!(envelope, seal_recovery_envelope(&master, &key, app, user), "a fresh nonce each time");

    let refused = |bytes: &[u8], key: &RecoveryKey, app, user| {
        assert_eq!(open_recovery_envelope(bytes, key, app, user).unwrap_err().kind(), ErrorKind::Crypto);
    };
    refused(&envelope, &RecoveryKey::generate(), app, user);
    refused(&envelope, &key, Uuid::now_v7(), user);
    refused(&envelope, &key, app, Uuid::now_v7());
    for at in [0, 1, 30, RECOVERY_ENVELOPE_BYTES - 1] {
        let mut tampered = envelope.clone();
        tampered[at] ^= 1;
        refused(&tampered, &key, app, user);
    }
    refused(&envelope[..RECOVERY_ENVELOPE_BYTES - 1], &key, app, user);
    refused(&[], &key, app, user);
    // A password envelope is not a recovery envelope, nor the other way round.
    refused(&wrap_master_key(&master, "pass", app, user).unwrap(), &key, app, user);
    assert!(crate::crypto::unwrap_master_key(&envelope, "pass", app, user).is_err());
}

#[test]
fn an_envelope_sealed_with_the_login_key_the_server_receives_is_refused() {
    // The server receives the recovery login key; with it, it seals a key of its own, with a valid key check.
    let (app, user, key) = (Uuid::now_v7(), Uuid::now_v7(), RecoveryKey::generate());
    let planted = SecretKey::generate();
    let forged = seal_with(&planted, &key.login_key(), &random_bytes(), app, user);
    let err = open_recovery_envelope(&forged, &key, app, user).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto, "{err}");
}

#[test]
fn a_key_without_its_check_is_refused() {
    // Sealed under the right wrapping key (as if it had leaked), but not a SyncKit master key for this user.
    let (app, user, key) = (Uuid::now_v7(), Uuid::now_v7(), RecoveryKey::generate());
    let nonce: [u8; NONCE_BYTES] = random_bytes();
    let plaintext = [7u8; KEY_BYTES + CHECK_BYTES];
    let sealed = XChaCha20Poly1305::new(key.wrapping_key().as_bytes()).seal(&nonce, &aad(app, user), &plaintext);
    let forged = [&[RECOVERY_ENVELOPE_VERSION][..], &nonce, &sealed].concat();
    let err = open_recovery_envelope(&forged, &key, app, user).unwrap_err();
    assert!(err.to_string().contains("key check"), "{err}");
}
