use super::*;
use crate::crypto::derive_key;

/// The header of an envelope: version, parameters, salt.
fn header(version: u8, params: KdfParams, salt: &[u8; SALT_BYTES]) -> Vec<u8> {
    let mut header = vec![version];
    for v in [params.memory_kib, params.iterations, params.parallelism] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    header.extend_from_slice(salt);
    header
}

/// An envelope sealed by hand under `wrapping`, as anyone who knows that key (the server, if it is the login key)
/// can make one.
fn seal(header: Vec<u8>, wrapping: &SecretKey, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_BYTES] = random_bytes();
    let sealed = XChaCha20Poly1305::new(wrapping.as_bytes()).seal(&nonce, aad, plaintext);
    [header, nonce.to_vec(), sealed].concat()
}

/// A version 1 envelope as SyncKit used to write it: the login derivation as the wrapping key.
fn legacy_envelope(master: &SecretKey, password: &str, salt: &[u8; SALT_BYTES], app: Uuid, user: Uuid) -> Vec<u8> {
    let wrapping = derive_key(password, salt, KdfParams::DEFAULT).unwrap();
    seal(header(1, KdfParams::DEFAULT, salt), &wrapping, master.as_bytes(), &aad_v1(app, user))
}

#[test]
fn envelopes_open_only_with_the_password_and_for_their_user() {
    let (app, user) = (Uuid::now_v7(), Uuid::now_v7());
    let master = SecretKey::generate();
    let envelope = wrap_master_key(&master, "correct horse", app, user).unwrap();
    assert_eq!((envelope.len(), envelope[0]), (V2_BYTES, ENVELOPE_VERSION));
    assert_eq!(unwrap_master_key(&envelope, "correct horse", app, user).unwrap(), master);
    assert_eq!(unwrap_master_key(&envelope, "wrong", app, user).unwrap_err().kind(), ErrorKind::WrongPassword);
    // Another user's or app's envelope handed over by the server does not open as this user's.
    assert!(unwrap_master_key(&envelope, "correct horse", app, Uuid::now_v7()).is_err());
    assert!(unwrap_master_key(&envelope, "correct horse", Uuid::now_v7(), user).is_err());
    // Every wrap uses a fresh salt and nonce.
    assert_ne!(envelope, wrap_master_key(&master, "correct horse", app, user).unwrap());

    for at in [HEADER_BYTES - 1, HEADER_BYTES + 1, V2_BYTES - 1] {
        let mut tampered = envelope.clone();
        tampered[at] ^= 1;
        assert!(unwrap_master_key(&tampered, "correct horse", app, user).is_err(), "byte {at} flipped");
    }
    let kind = |bytes: &[u8]| unwrap_master_key(bytes, "correct horse", app, user).unwrap_err().kind();
    assert_eq!(kind(&envelope[..50]), ErrorKind::Crypto);
    assert_eq!(kind(&[]), ErrorKind::Crypto);
    let mut unknown = envelope.clone();
    unknown[0] = 3;
    assert_eq!(kind(&unknown), ErrorKind::Crypto);
}

#[test]
fn the_wrapping_key_is_never_the_login_key_for_any_salt() {
    // Same password, salt and parameters: the only difference is the label, and it separates the two.
    let salt: [u8; SALT_BYTES] = random_bytes();
    let login = derive_key("correct horse", &salt, KdfParams::DEFAULT).unwrap();
    assert_ne!(wrapping_key("correct horse", &salt, KdfParams::DEFAULT).unwrap(), login);
}

#[test]
fn an_envelope_sealed_with_the_login_key_is_refused() {
    // The server knows the login key (it receives it) and the login salt (it answers pre-login with it).
    let (app, user) = (Uuid::now_v7(), Uuid::now_v7());
    let login_salt: [u8; SALT_BYTES] = random_bytes();
    let server_key = SecretKey::generate();

    // As version 1, exactly the envelope the server can forge: refused, whatever the password.
    let forged = legacy_envelope(&server_key, "correct horse", &login_salt, app, user);
    let err = unwrap_master_key(&forged, "correct horse", app, user).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto);
    assert!(err.to_string().contains("version 1"), "{err}");
    // Nor does it pass as an upgrade for a device that holds the real key.
    let err = Envelope::parse(&forged).unwrap().confirm_legacy("correct horse", app, user, &SecretKey::generate());
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Crypto);

    // As version 2, with a valid key check: the login key is not the wrapping key, so it does not open.
    let login = derive_key("correct horse", &login_salt, KdfParams::DEFAULT).unwrap();
    let plaintext = [server_key.as_bytes().as_slice(), &key_check(&server_key, app, user)].concat();
    let header = header(ENVELOPE_VERSION, KdfParams::DEFAULT, &login_salt);
    let aad = aad_v2(&header, app, user);
    let forged = seal(header, &login, &plaintext, &aad);
    assert!(unwrap_master_key(&forged, "correct horse", app, user).is_err());
}

#[test]
fn kdf_parameters_other_than_synckits_are_refused_before_deriving() {
    let (app, user) = (Uuid::now_v7(), Uuid::now_v7());
    let envelope = wrap_master_key(&SecretKey::generate(), "correct horse", app, user).unwrap();
    let hostile = [
        KdfParams { memory_kib: 4 << 20, iterations: 64, parallelism: 1 },
        KdfParams { memory_kib: u32::MAX, iterations: u32::MAX, parallelism: u32::MAX },
        KdfParams { memory_kib: 65536, iterations: 4, parallelism: 1 },
        KdfParams { memory_kib: 8, iterations: 1, parallelism: 1 },
        KdfParams { memory_kib: 65536, iterations: 3, parallelism: 4 },
    ];
    for params in hostile {
        for version in [LEGACY_ENVELOPE_VERSION, ENVELOPE_VERSION] {
            let mut bytes = envelope.clone();
            bytes.truncate(if version == ENVELOPE_VERSION { V2_BYTES } else { V1_BYTES });
            bytes[..HEADER_BYTES].copy_from_slice(&header(version, params, &[0; SALT_BYTES]));
            // `parse` takes no password: a refusal here is a refusal before any derivation.
            let err = Envelope::parse(&bytes).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Crypto, "{params:?}");
            assert!(err.to_string().contains("before deriving"), "{err}");
        }
    }
}

#[test]
fn a_key_that_fails_its_check_is_not_adopted() {
    // Sealed under the right wrapping key (only a device with the password could), but with a wrong check value.
    let (app, user) = (Uuid::now_v7(), Uuid::now_v7());
    let salt: [u8; SALT_BYTES] = random_bytes();
    let wrapping = wrapping_key("correct horse", &salt, KdfParams::DEFAULT).unwrap();
    let master = SecretKey::generate();
    let header = header(ENVELOPE_VERSION, KdfParams::DEFAULT, &salt);
    let aad = aad_v2(&header, app, user);
    let check_of_another_user = key_check(&master, app, Uuid::now_v7());
    let plaintext = [master.as_bytes().as_slice(), &check_of_another_user].concat();
    let envelope = seal(header, &wrapping, &plaintext, &aad);
    let err = unwrap_master_key(&envelope, "correct horse", app, user).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto);
    assert!(err.to_string().contains("key check"), "{err}");
}

#[test]
fn a_legacy_envelope_only_confirms_the_key_a_device_holds() {
    let (app, user) = (Uuid::now_v7(), Uuid::now_v7());
    let master = SecretKey::generate();
    let envelope = legacy_envelope(&master, "correct horse", &random_bytes(), app, user);
    let parsed = Envelope::parse(&envelope).unwrap();
    assert!(parsed.is_legacy());
    parsed.confirm_legacy("correct horse", app, user, &master).unwrap();
    let kind = |password: &str, held: &SecretKey| parsed.confirm_legacy(password, app, user, held).unwrap_err().kind();
    assert_eq!(kind("wrong", &master), ErrorKind::WrongPassword);
    assert_eq!(kind("correct horse", &SecretKey::generate()), ErrorKind::Crypto);
    // Confirming is for version 1 only; opening is for version 2 only.
    let current = wrap_master_key(&master, "correct horse", app, user).unwrap();
    let current = Envelope::parse(&current).unwrap();
    assert_eq!(current.confirm_legacy("correct horse", app, user, &master).unwrap_err().kind(), ErrorKind::Crypto);
    assert_eq!(parsed.open("correct horse", app, user).unwrap_err().kind(), ErrorKind::Crypto);
}
