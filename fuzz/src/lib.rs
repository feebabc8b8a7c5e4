//! What the fuzz targets (`fuzz_targets/`) and their seed generator (`examples/seeds.rs`) share: the fixed keys,
//! ids and objects the seeds are made with, so that a target recognises what an honest party produced, and the
//! reading of a target's input into pieces.
//!
//! Every target checks more than "no panic": see the comment at the top of each.

use std::sync::LazyLock;

use synckit::RecoveryKey;
use synckit::crypto::blob::BlobId;
use synckit::crypto::{Keys, SecretKey};
use uuid::Uuid;

/// The app, user, change and devices the seeds belong to.
pub const APP: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0a99);
pub const USER: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0005);
pub const CHANGE: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0c01);
/// The device that pulls (and reads the blob).
pub const DEVICE: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0d01);
/// The device that pushed.
pub const OTHER_DEVICE: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0d02);
/// The user's password.
pub const PASSWORD: &str = "correct horse battery staple";

/// The user's recovery key, as it was printed.
pub const RECOVERY_KEY: &str = "7N93-5DJR-KEDS-ZV5T-RFS4-PQZV-TT7B-9WQH-BEBH";

/// [`RECOVERY_KEY`], read.
pub fn recovery_key() -> RecoveryKey {
    RECOVERY_KEY.parse().expect("a recovery key as SyncKit prints it")
}

/// The user's master key.
pub fn master_key() -> SecretKey {
    SecretKey::from_bytes(&[0x42; 32]).expect("32 bytes")
}

/// The subkeys of [`master_key`].
pub fn keys() -> &'static Keys {
    static KEYS: LazyLock<Keys> = LazyLock::new(|| Keys::derive(&master_key()));
    &KEYS
}

/// The blob the blob seeds are sealed as (its id keys the blob's encryption).
pub fn blob_id() -> BlobId {
    keys().blob_id(&mut &b"the blob seeds' id"[..]).expect("in memory")
}

/// The embedded blob store's signing secrets: the current one, and a previous one it still accepts.
pub const URL_SECRET: [u8; 32] = [0x5a; 32];
pub const PREVIOUS_URL_SECRET: [u8; 32] = [0xa5; 32];
/// The device and token version the store's URLs are signed for.
pub const URL_DEVICE: Uuid = DEVICE;
pub const URL_TOKEN_VERSION: u64 = 3;
/// The upload id of the one object the blob URL seeds name.
pub const UPLOAD_ID: Uuid = Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0b01);

/// The content id (in the store's key) of the one object the blob URL seeds name.
pub fn stored_object_hash() -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(b"the object's content id")[..]);
    hash
}

/// The bytes of the one object the blob URL seeds upload and download: a real sealed blob.
pub fn stored_object() -> Vec<u8> {
    let plain = b"a small file, sealed as the SDK seals it";
    synckit::crypto::blob::BlobSealer::new(keys(), &blob_id(), plain.len() as u64).seal_all(plain).expect("in memory")
}

/// Reads `data` as `count ‖ count × u32 LE cut positions ‖ body` and cuts the body at those positions (taken
/// modulo its length, sorted): the same bytes, arriving in pieces as a network might deliver them.
pub fn split(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let count = usize::from(count % 16);
    if rest.len() < 4 * count {
        return (Vec::new(), rest);
    }
    let (cuts, body) = rest.split_at(4 * count);
    let cut = |c: &[u8]| u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize % (body.len() + 1);
    let mut at: Vec<usize> = cuts.chunks_exact(4).map(cut).collect();
    at.sort_unstable();
    (at, body)
}

/// `body` cut at the sorted positions `at`.
pub fn pieces<'a>(body: &'a [u8], at: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for &end in at {
        out.push(&body[start..end]);
        start = end;
    }
    out.push(&body[start..]);
    out
}

/// The input that [`split`] reads as `body` cut at `at`.
pub fn join(at: &[u32], body: &[u8]) -> Vec<u8> {
    let mut data = vec![u8::try_from(at.len()).expect("fewer than 16 cuts")];
    for cut in at {
        data.extend_from_slice(&cut.to_le_bytes());
    }
    data.extend_from_slice(body);
    data
}
