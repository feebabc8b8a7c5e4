//! Ranges, keys, and the signatures of URLs across a key rotation.

use super::*;

#[test]
fn ranges() {
    assert_eq!(parse_range("bytes=10-"), Some((10, None)));
    assert_eq!(parse_range("bytes=0-99"), Some((0, Some(99))));
    assert_eq!(parse_range("bytes=5-4"), None);
    assert_eq!(parse_range("bytes=-100"), None);
    assert_eq!(parse_range("bytes=1-2,4-5"), None);
    assert_eq!(parse_range("items=1-2"), None);
}

#[test]
fn keys_come_only_from_ids() {
    let (app, user) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let hash = "ab".repeat(32);
    let key = object_key((app.clone(), user.clone(), hash.clone())).unwrap();
    assert_eq!(key.to_string(), format!("{app}/{user}/{hash}"), "a blob from before upload ids");
    let upload_id = Uuid::new_v4();
    let name = format!("{hash}.{upload_id}");
    let key = object_key((app.clone(), user.clone(), name.clone())).unwrap();
    assert_eq!(key.to_string(), format!("{app}/{user}/{name}"));
    assert_eq!(key.upload_id, Some(upload_id));
    let braced = format!("{hash}.{{{upload_id}}}");
    assert!(object_key((app.clone(), user.clone(), braced)).is_err(), "one spelling per object");
    assert!(object_key((app.clone(), user.clone(), format!("{hash}.x"))).is_err());
    assert!(object_key(("..".into(), user.clone(), hash.clone())).is_err());
    assert!(object_key((app.clone(), user.clone(), "../x".into())).is_err());
    assert!(object_key((app, user, "AB".repeat(32))).is_err());
}

/// Every holder still stands: these tests are about signatures.
struct AnyHolder;

#[async_trait]
impl HolderCheck for AnyHolder {
    async fn check(&self, _: StreamId, _: UrlHolder) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The store's own check of a download URL it signed, as the transfer handler makes it.
async fn check(store: &LocalStore, query: &str, key: &ObjectKey) -> Result<(), ApiError> {
    let signed = signed_part(query);
    store.verify(&AnyHolder, "GET", key, "", "", &signed).await
}

fn signed_part(query: &str) -> Signed {
    let param = |name: &str| {
        query.split('&').find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('='))).map(str::to_owned)
    };
    Signed {
        expires: param("expires").unwrap().parse().unwrap(),
        device: param("device").unwrap().parse().unwrap(),
        tv: param("tv").unwrap().parse().unwrap(),
        kid: param("kid"),
        signature: param("signature").unwrap(),
    }
}

#[tokio::test]
async fn urls_signed_before_a_rotation_verify_while_the_old_key_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new, stranger) = ([1; 32], [2; 32], [3; 32]);
    let store = |current: &[u8; 32], previous: Option<&[u8; 32]>| {
        let keys = KeyRing::new(current, previous.map(|p| p.as_slice())).unwrap();
        LocalStore::open(dir.path(), keys).unwrap()
    };
    let key = object_key((Uuid::now_v7().to_string(), Uuid::now_v7().to_string(), "ab".repeat(32))).unwrap();
    let expires = expiry(Duration::from_secs(60));
    let holder = UrlHolder { device_id: Uuid::now_v7(), token_version: 0 };
    let before = store(&old, None).sign("GET", &key, "", "", expires, holder);
    assert!(before.contains(&format!("kid={}", KeyRing::new(&old, []).unwrap().current().id())), "{before}");

    let rotated = store(&new, Some(&old));
    assert!(check(&rotated, &before, &key).await.is_ok(), "the previous key still verifies");
    assert!(check(&rotated, &rotated.sign("GET", &key, "", "", expires, holder), &key).await.is_ok());
    let refused = |result: Result<(), ApiError>| result.unwrap_err().code == ErrorCode::InvalidSignature;
    assert!(refused(check(&store(&new, None), &before, &key).await), "a dropped key verifies nothing");
    let foreign = store(&stranger, None).sign("GET", &key, "", "", expires, holder);
    assert!(refused(check(&rotated, &foreign, &key).await), "nor does another deployment's");
    // Naming a known key id does not make another key's signature pass.
    let forged = foreign.replace(
        &format!("kid={}", KeyRing::new(&stranger, []).unwrap().current().id()),
        &format!("kid={}", KeyRing::new(&new, []).unwrap().current().id()),
    );
    assert!(refused(check(&rotated, &forged, &key).await));
}
