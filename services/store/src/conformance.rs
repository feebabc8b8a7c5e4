//! The conformance suite: the behaviour every storage adapter must show, written once against the ports.
//!
//! An adapter crate runs it with [`conformance_suite!`](crate::conformance_suite), giving an async expression
//! that builds fresh [`Stores`]:
//!
//! ```ignore
//! synckit_store::conformance_suite!(async { my_adapter::fresh_stores().await });
//! ```
//!
//! Every case uses random ids and emails, so cases do not depend on each other's data.

use std::collections::HashSet;

use uuid::Uuid;

use crate::usage::{Transfer, today};
use crate::{
    AccountRecovery, AccountStore, App, AppKeyEnvelope, AuthorizationCode, BlobCatalog, BlobHash, BlobRecord,
    ChangelogStore, KeyConflict, KeyEnvelope, KeyRewrap, LoginKeyChange, LoginKeyChanged, NewApp, NewEntry, NewUser,
    PendingPlan, PlanRecord, PutKeyOutcome, RecoverableKey, Recovered, RecoveredKey, Recovery, RecoveryKeyChange,
    RecoveryKeyRefused, SecretName, StoreError, StreamId, SweptUpload, TokenStanding, UploadBegun, UserBytes,
};

pub use crate::Stores;

/// Emits one `#[tokio::test]` per conformance case, each on stores built by `$setup`.
#[macro_export]
macro_rules! conformance_suite {
    ($setup:expr) => {
        $crate::conformance_suite!(@cases $setup;
            append_numbers_entries_contiguously,
            append_is_idempotent,
            read_pages_by_cursor,
            read_pages_by_bytes,
            streams_are_isolated,
            concurrent_appends_to_one_stream_stay_contiguous,
            users,
            recovery_keys,
            apps_are_created_found_and_changed,
            deleting_an_app_removes_its_data,
            authorization_codes_are_redeemed_once,
            plans_are_kept_and_replaced,
            devices,
            token_standing_sees_password_changes_and_removed_devices,
            key_envelopes,
            secrets,
            blobs_begin_and_confirm,
            blobs_are_deleted_and_can_come_back,
            blob_sweeps_take_old_pending_uploads_once,
            usage_counts_what_is_stored_and_transferred_once,
            usage_is_kept_per_day,
            superseded_entries_keep_their_place_and_free_their_payloads,
        );
    };
    (@cases $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let stores: $crate::conformance::Stores = $setup.await;
                $crate::conformance::$case(stores).await;
            }
        )*
    };
}

fn stream() -> StreamId {
    StreamId { app_id: Uuid::now_v7(), user_id: Uuid::now_v7() }
}

fn entries(n: usize) -> Vec<NewEntry> {
    (0..n)
        .map(|i| NewEntry {
            change_id: Uuid::now_v7(),
            payload: format!("payload-{i}-{}", Uuid::new_v4()).into_bytes(),
        })
        .collect()
}

async fn read_all(store: &dyn ChangelogStore, s: StreamId) -> Vec<crate::Entry> {
    let mut all = Vec::new();
    loop {
        let page = store.read(s, all.len() as u64, 500, usize::MAX).await.unwrap();
        if page.entries.is_empty() {
            return all;
        }
        all.extend(page.entries);
    }
}

pub async fn append_numbers_entries_contiguously(stores: Stores) {
    let log = &*stores.changelog;
    let s = stream();
    let device = Uuid::now_v7();
    assert_eq!(log.head(s).await.unwrap(), 0);

    let first = entries(3);
    let second = entries(2);
    let a = log.append(s, device, first.clone()).await.unwrap();
    assert_eq!((a.head, a.accepted, a.duplicates), (3, 3, 0));
    let b = log.append(s, device, second.clone()).await.unwrap();
    assert_eq!((b.head, b.accepted, b.duplicates), (5, 2, 0));
    assert_eq!(log.head(s).await.unwrap(), 5);

    let all = read_all(log, s).await;
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    for (stored, sent) in all.iter().zip(first.iter().chain(&second)) {
        assert_eq!(stored.change_id, sent.change_id);
        assert_eq!(stored.payload, sent.payload);
        assert_eq!(stored.device_id, device);
    }

    // An empty append changes nothing and reports the head.
    let empty = log.append(s, device, Vec::new()).await.unwrap();
    assert_eq!((empty.head, empty.accepted, empty.duplicates), (5, 0, 0));
}

pub async fn append_is_idempotent(stores: Stores) {
    let log = &*stores.changelog;
    let s = stream();
    let device = Uuid::now_v7();
    let batch = entries(3);

    log.append(s, device, batch[..2].to_vec()).await.unwrap();
    // A retry overlapping the first push stores only what is new.
    let retry = log.append(s, device, batch.clone()).await.unwrap();
    assert_eq!((retry.head, retry.accepted, retry.duplicates), (3, 1, 2));
    let again = log.append(s, device, batch.clone()).await.unwrap();
    assert_eq!((again.head, again.accepted, again.duplicates), (3, 0, 3));

    // The same id twice in one batch is stored once, with the first payload.
    let twice = entries(1).remove(0);
    let copy = NewEntry { change_id: twice.change_id, payload: b"second copy".to_vec() };
    let r = log.append(s, device, vec![twice.clone(), copy]).await.unwrap();
    assert_eq!((r.head, r.accepted, r.duplicates), (4, 1, 1));

    let all = read_all(log, s).await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].payload, twice.payload);
    // A duplicate never rewrites the stored payload.
    assert_eq!(all[0].payload, batch[0].payload);
}

pub async fn read_pages_by_cursor(stores: Stores) {
    let log = &*stores.changelog;
    let s = stream();
    log.append(s, Uuid::now_v7(), entries(7)).await.unwrap();

    let p = log.read(s, 0, 3, usize::MAX).await.unwrap();
    assert_eq!(p.head, 7);
    assert_eq!(p.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    let p = log.read(s, 3, 3, usize::MAX).await.unwrap();
    assert_eq!(p.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5, 6]);
    let p = log.read(s, 6, 3, usize::MAX).await.unwrap();
    assert_eq!(p.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [7]);
    let p = log.read(s, 7, 3, usize::MAX).await.unwrap();
    assert!(p.entries.is_empty());
    assert_eq!(p.head, 7);

    // Beyond the head: no entries, and the head tells the caller so.
    let p = log.read(s, 100, 3, usize::MAX).await.unwrap();
    assert!(p.entries.is_empty());
    assert_eq!(p.head, 7);

    // A stream nobody wrote to reads as empty.
    let p = log.read(stream(), 0, 500, usize::MAX).await.unwrap();
    assert_eq!((p.entries.len(), p.head), (0, 0));

    // Timestamps come back as stored, to the second at least.
    let now = time::OffsetDateTime::now_utc();
    let first = &log.read(s, 0, 1, usize::MAX).await.unwrap().entries[0];
    assert!((now - first.created_at).whole_seconds().abs() < 60, "created_at {}", first.created_at);
}

pub async fn read_pages_by_bytes(stores: Stores) {
    let log = &*stores.changelog;
    let s = stream();
    let sizes = [100, 100, 100, 300, 50, 50];
    let batch: Vec<NewEntry> =
        sizes.iter().map(|&n| NewEntry { change_id: Uuid::now_v7(), payload: vec![7; n] }).collect();
    log.append(s, Uuid::now_v7(), batch).await.unwrap();
    let seqs = |p: &crate::Page| p.entries.iter().map(|e| e.seq).collect::<Vec<_>>();

    // The page stops before the entry that would take it past the budget; an exact fit is kept.
    let p = log.read(s, 0, 500, 250).await.unwrap();
    assert_eq!((seqs(&p), p.head), (vec![1, 2], 6));
    let p = log.read(s, 0, 500, 300).await.unwrap();
    assert_eq!(seqs(&p), [1, 2, 3]);
    // An entry larger than the whole budget still comes, alone, so a reader always gets on.
    let p = log.read(s, 3, 500, 250).await.unwrap();
    assert_eq!(seqs(&p), [4]);
    assert_eq!(p.entries[0].payload.len(), 300);
    // The count limit still applies, and a budget past the rest returns the rest.
    let p = log.read(s, 4, 1, 1000).await.unwrap();
    assert_eq!(seqs(&p), [5]);
    let p = log.read(s, 4, 500, 1000).await.unwrap();
    assert_eq!(seqs(&p), [5, 6]);
    let p = log.read(s, 6, 500, 0).await.unwrap();
    assert_eq!((p.entries.len(), p.head), (0, 6));
}

pub async fn streams_are_isolated(stores: Stores) {
    let log = &*stores.changelog;
    let app = Uuid::now_v7();
    let user_a = StreamId { app_id: app, user_id: Uuid::now_v7() };
    let user_b = StreamId { app_id: app, user_id: Uuid::now_v7() };
    let other_app = StreamId { app_id: Uuid::now_v7(), user_id: user_a.user_id };
    let shared = entries(2);

    // The same change ids in three streams are three independent sets of entries.
    for s in [user_a, user_b, other_app] {
        let r = log.append(s, Uuid::now_v7(), shared.clone()).await.unwrap();
        assert_eq!((r.head, r.accepted), (2, 2));
    }
    log.append(user_a, Uuid::now_v7(), entries(3)).await.unwrap();
    assert_eq!(log.head(user_a).await.unwrap(), 5);
    assert_eq!(log.head(user_b).await.unwrap(), 2);
    assert_eq!(log.head(other_app).await.unwrap(), 2);
    assert_eq!(read_all(log, user_b).await.len(), 2);
}

pub async fn concurrent_appends_to_one_stream_stay_contiguous(stores: Stores) {
    let s = stream();
    let writers = 8;
    let pushes = 10;
    let per_push = 5;
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let log = stores.changelog.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for _ in 0..pushes {
                let batch = entries(per_push);
                // Each push is sent twice, as a client retrying after a lost response would.
                let first = log.append(s, Uuid::now_v7(), batch.clone()).await.unwrap();
                let retry = log.append(s, Uuid::now_v7(), batch.clone()).await.unwrap();
                assert_eq!(first.accepted as usize, per_push);
                assert_eq!(retry.duplicates as usize, per_push);
                sent.extend(batch.into_iter().map(|e| e.change_id));
            }
            sent
        }));
    }
    let mut sent = HashSet::new();
    for t in futures::future::join_all(tasks).await {
        sent.extend(t.unwrap());
    }

    let all = read_all(&*stores.changelog, s).await;
    assert_eq!(all.len(), writers * pushes * per_push);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "sequence numbers must be contiguous");
    }
    let stored: HashSet<Uuid> = all.iter().map(|e| e.change_id).collect();
    assert_eq!(stored, sent, "every change stored exactly once");
}

fn new_user() -> NewUser {
    NewUser {
        id: Uuid::now_v7(),
        email: format!("{}@example.com", Uuid::new_v4()),
        salt: vec![7; 32],
        login_key_hash: vec![9; 32],
    }
}

pub async fn users(stores: Stores) {
    let accounts = &*stores.accounts;
    let user = new_user();
    accounts.create_user(user.clone()).await.unwrap();

    let mut same_email = new_user();
    same_email.email = user.email.clone();
    assert!(matches!(accounts.create_user(same_email).await, Err(StoreError::AlreadyExists)));

    let found = accounts.user_by_email(&user.email).await.unwrap().expect("user by email");
    assert_eq!((found.id, &found.salt, &found.login_key_hash), (user.id, &user.salt, &user.login_key_hash));
    assert_eq!(found.token_version, 0);
    assert_eq!(accounts.user(user.id).await.unwrap(), Some(found));
    assert_eq!(accounts.user_by_email("nobody@example.com").await.unwrap(), None);
    assert_eq!(accounts.user(Uuid::now_v7()).await.unwrap(), None);

    // A password change bumps the token version, and only one of two racing changes wins.
    let change = |expected_token_version, byte: u8, rewrapped_keys| LoginKeyChange {
        user_id: user.id,
        expected_token_version,
        salt: vec![byte; 32],
        login_key_hash: vec![byte + 1; 32],
        rewrapped_keys,
    };
    let v = accounts.change_login_key(change(0, 1, vec![])).await.unwrap();
    assert_eq!(v, LoginKeyChanged::Changed { token_version: 1 });
    assert_eq!(accounts.change_login_key(change(0, 3, vec![])).await.unwrap(), LoginKeyChanged::TokenRevoked);
    let changed = accounts.user(user.id).await.unwrap().unwrap();
    assert_eq!((changed.salt, changed.login_key_hash, changed.token_version), (vec![1; 32], vec![2; 32], 1));

    // The envelopes of every app of the account change with the password, or nothing does.
    let (notes, photos, stray) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let in_app = |app_id| StreamId { app_id, user_id: user.id };
    accounts.put_key(in_app(notes), b"notes, old password", 0).await.unwrap();
    accounts.put_key(in_app(photos), b"photos, old password", 0).await.unwrap();
    accounts.put_key(in_app(photos), b"photos, old password again", 1).await.unwrap();
    let someone_else = stream();
    accounts.put_key(someone_else, b"another account's", 0).await.unwrap();
    let rewrap = |app_id: Uuid, expected_version| KeyRewrap {
        app_id,
        envelope: format!("{app_id}, new password").into_bytes(),
        expected_version,
    };
    let conflict = |app_id, current, expected| LoginKeyChanged::KeyConflict { app_id, current, expected };
    for (rewrapped, refused) in [
        (vec![rewrap(notes, 1)], conflict(photos, 2, 0)),
        (vec![rewrap(notes, 1), rewrap(photos, 1)], conflict(photos, 2, 1)),
        (vec![rewrap(notes, 1), rewrap(photos, 2), rewrap(stray, 0)], conflict(stray, 0, 0)),
        (vec![rewrap(notes, 1), rewrap(photos, 2), rewrap(notes, 1)], conflict(notes, 1, 1)),
    ] {
        assert_eq!(accounts.change_login_key(change(1, 5, rewrapped)).await.unwrap(), refused);
        let unchanged = accounts.user(user.id).await.unwrap().unwrap();
        assert_eq!((unchanged.salt, unchanged.token_version), (vec![1; 32], 1), "a key conflict changes no password");
        assert_eq!(accounts.key(in_app(notes)).await.unwrap().unwrap().envelope, b"notes, old password");
    }

    let done = accounts.change_login_key(change(1, 7, vec![rewrap(photos, 2), rewrap(notes, 1)])).await.unwrap();
    assert_eq!(done, LoginKeyChanged::Changed { token_version: 2 });
    assert_eq!(accounts.user(user.id).await.unwrap().unwrap().salt, vec![7; 32]);
    let mut expected = vec![
        AppKeyEnvelope { app_id: notes, key: KeyEnvelope { envelope: rewrap(notes, 0).envelope, version: 2 } },
        AppKeyEnvelope { app_id: photos, key: KeyEnvelope { envelope: rewrap(photos, 0).envelope, version: 3 } },
    ];
    expected.sort_by_key(|k| k.app_id);
    assert_eq!(accounts.account_keys(user.id).await.unwrap(), expected);
    assert_eq!(accounts.key(someone_else).await.unwrap().unwrap().envelope, b"another account's");
    assert_eq!(accounts.account_keys(Uuid::now_v7()).await.unwrap(), vec![]);
}

pub async fn recovery_keys(stores: Stores) {
    let accounts = &*stores.accounts;
    let user = new_user();
    accounts.create_user(user.clone()).await.unwrap();
    assert_eq!(accounts.recovery(user.id).await.unwrap(), None, "no recovery key until one is set");
    assert_eq!(accounts.recovery(Uuid::now_v7()).await.unwrap(), None);

    let (notes, photos, stray) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let in_app = |app_id| StreamId { app_id, user_id: user.id };
    accounts.put_key(in_app(notes), b"notes", 0).await.unwrap();
    accounts.put_key(in_app(photos), b"photos", 0).await.unwrap();
    accounts.put_key(in_app(photos), b"photos again", 1).await.unwrap();
    let sealed = |app_id: Uuid, expected_version| KeyRewrap {
        app_id,
        envelope: format!("{app_id}, recovery").into_bytes(),
        expected_version,
    };
    let set = |hash: u8, recovery_envelopes| RecoveryKeyChange {
        user_id: user.id,
        expected_login_key_hash: user.login_key_hash.clone(),
        recovery_key_hash: vec![hash; 32],
        recovery_envelopes,
    };
    // Every app at its current version, or nothing is set.
    let conflict =
        |app_id, current, expected| Some(RecoveryKeyRefused::KeyConflict(KeyConflict { app_id, current, expected }));
    for (envelopes, refused) in [
        (vec![sealed(notes, 1)], conflict(photos, 2, 0)),
        (vec![sealed(notes, 1), sealed(photos, 1)], conflict(photos, 2, 1)),
        (vec![sealed(notes, 1), sealed(photos, 2), sealed(stray, 0)], conflict(stray, 0, 0)),
    ] {
        assert_eq!(accounts.set_recovery_key(set(1, envelopes)).await.unwrap(), refused);
        assert_eq!(accounts.recovery(user.id).await.unwrap(), None, "a refused recovery key sets nothing");
    }
    // Nor is anything set once the password is no longer the one the caller proved, which is the reason given
    // even where the versions are off too (as they are after a password change).
    let stale = |envelopes| RecoveryKeyChange { expected_login_key_hash: vec![0xee; 32], ..set(1, envelopes) };
    for envelopes in [vec![sealed(photos, 2), sealed(notes, 1)], vec![sealed(photos, 1), sealed(notes, 1)]] {
        assert_eq!(
            accounts.set_recovery_key(stale(envelopes)).await.unwrap(),
            Some(RecoveryKeyRefused::PasswordChanged)
        );
        assert_eq!(accounts.recovery(user.id).await.unwrap(), None, "a refused recovery key sets nothing");
    }
    assert_eq!(accounts.set_recovery_key(set(1, vec![sealed(photos, 2), sealed(notes, 1)])).await.unwrap(), None);
    let mut keys = vec![
        RecoverableKey { app_id: notes, version: 1, recovery_envelope: Some(sealed(notes, 0).envelope) },
        RecoverableKey { app_id: photos, version: 2, recovery_envelope: Some(sealed(photos, 0).envelope) },
    ];
    keys.sort_by_key(|k| k.app_id);
    let recovery = AccountRecovery { recovery_key_hash: vec![1; 32], keys: keys.clone() };
    assert_eq!(accounts.recovery(user.id).await.unwrap(), Some(recovery));
    // An app whose key comes after the recovery key is listed, without a recovery envelope.
    let later = Uuid::now_v7();
    accounts.put_key(in_app(later), b"later", 0).await.unwrap();
    let listed = accounts.recovery(user.id).await.unwrap().unwrap().keys;
    let uncovered = listed.iter().find(|k| k.app_id == later).unwrap();
    assert_eq!((uncovered.version, &uncovered.recovery_envelope), (1, &None));

    // A recovery replaces password, recovery key and every app's envelopes, or nothing.
    let recovered = |app_id, expected_version| RecoveredKey {
        app_id,
        envelope: format!("{app_id}, recovered").into_bytes(),
        recovery_envelope: format!("{app_id}, next recovery").into_bytes(),
        expected_version,
    };
    let recovery = |expected_hash: u8, keys| Recovery {
        user_id: user.id,
        expected_recovery_key_hash: vec![expected_hash; 32],
        salt: vec![5; 32],
        login_key_hash: vec![6; 32],
        recovery_key_hash: vec![7; 32],
        keys,
    };
    let before = accounts.user(user.id).await.unwrap().unwrap();
    let every_app = || vec![recovered(notes, 1), recovered(photos, 2), recovered(later, 1)];
    assert_eq!(accounts.recover(recovery(9, every_app())).await.unwrap(), Recovered::RecoveryKeyChanged);
    let stale = vec![recovered(notes, 1), recovered(photos, 1), recovered(later, 1)];
    let refused = Recovered::KeyConflict(KeyConflict { app_id: photos, current: 2, expected: 1 });
    assert_eq!(accounts.recover(recovery(1, stale)).await.unwrap(), refused);
    let unchanged = accounts.user(user.id).await.unwrap().unwrap();
    assert_eq!((unchanged.salt, unchanged.token_version), (before.salt, 0), "a refused recovery changes nothing");
    assert_eq!(accounts.recovery(user.id).await.unwrap().unwrap().recovery_key_hash, vec![1; 32]);

    assert_eq!(accounts.recover(recovery(1, every_app())).await.unwrap(), Recovered::Changed { token_version: 1 });
    let changed = accounts.user(user.id).await.unwrap().unwrap();
    assert_eq!((changed.salt, changed.login_key_hash, changed.token_version), (vec![5; 32], vec![6; 32], 1));
    let now = accounts.recovery(user.id).await.unwrap().unwrap();
    assert_eq!(now.recovery_key_hash, vec![7; 32]);
    for key in every_app() {
        let listed = now.keys.iter().find(|k| k.app_id == key.app_id).unwrap();
        assert_eq!(
            (listed.version, &listed.recovery_envelope),
            (key.expected_version + 1, &Some(key.recovery_envelope))
        );
        assert_eq!(accounts.key(in_app(key.app_id)).await.unwrap().unwrap().envelope, key.envelope);
    }
    // The old recovery key is used up.
    assert_eq!(accounts.recover(recovery(1, every_app())).await.unwrap(), Recovered::RecoveryKeyChanged);

    // A password change ends the recovery key: one set by whoever learned the password must not outlive it.
    let rewrap = |app_id, expected_version| KeyRewrap { app_id, envelope: b"new password".to_vec(), expected_version };
    let change = LoginKeyChange {
        user_id: user.id,
        expected_token_version: 1,
        salt: vec![3; 32],
        login_key_hash: vec![4; 32],
        rewrapped_keys: vec![rewrap(notes, 2), rewrap(photos, 3), rewrap(later, 2)],
    };
    assert_eq!(accounts.change_login_key(change).await.unwrap(), LoginKeyChanged::Changed { token_version: 2 });
    assert_eq!(accounts.recovery(user.id).await.unwrap(), None, "no recovery key after a password change");
    assert_eq!(accounts.recover(recovery(7, every_app())).await.unwrap(), Recovered::RecoveryKeyChanged);
}

/// A new app of `owner` with a random API key hash and client id.
fn new_app(owner_id: Option<Uuid>, redirect_uris: &[&str]) -> NewApp {
    NewApp {
        id: Uuid::now_v7(),
        name: format!("App {}", Uuid::new_v4()),
        owner_id,
        client_id: format!("cid_{}", Uuid::new_v4().simple()),
        redirect_uris: redirect_uris.iter().map(|uri| (*uri).to_owned()).collect(),
        api_key_hash: Uuid::new_v4().as_bytes().repeat(2),
    }
}

/// Creates `new` and checks that the store answers it as given.
async fn create_app(accounts: &dyn AccountStore, new: &NewApp) -> App {
    let app = accounts.create_app(new.clone()).await.unwrap();
    let given = (&new.name, new.owner_id, &new.client_id, &new.redirect_uris);
    assert_eq!((app.id, (&app.name, app.owner_id, &app.client_id, &app.redirect_uris)), (new.id, given));
    app
}

pub async fn apps_are_created_found_and_changed(stores: Stores) {
    let accounts = &*stores.accounts;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let uris = ["https://notes.example.com/cb", "http://127.0.0.1/cb", "com.example.notes:/cb"];
    let notes_new = new_app(Some(ada), &uris);
    let notes = create_app(accounts, &notes_new).await;
    let photos = create_app(accounts, &new_app(Some(ada), &[])).await;
    let operators = create_app(accounts, &new_app(None, &[])).await;
    let bobs = create_app(accounts, &new_app(Some(bob), &[])).await;

    assert_eq!(accounts.app(notes.id).await.unwrap(), Some(notes.clone()));
    assert_eq!(accounts.app(Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(accounts.app_by_key_hash(&notes_new.api_key_hash).await.unwrap(), Some(notes.clone()));
    assert_eq!(accounts.app_by_key_hash(&[0; 32]).await.unwrap(), None);
    // An owner's apps are theirs alone, oldest first; the operator sees every app.
    assert_eq!(accounts.apps(Some(ada)).await.unwrap(), [notes.clone(), photos.clone()]);
    assert_eq!(accounts.apps(Some(bob)).await.unwrap(), std::slice::from_ref(&bobs));
    assert_eq!(accounts.apps(Some(Uuid::now_v7())).await.unwrap(), []);
    let every = accounts.apps(None).await.unwrap();
    for app in [&notes, &photos, &operators, &bobs] {
        assert!(every.contains(app), "{app:?} is among every app");
    }

    // An id, an API key hash or a client id is never shared.
    for clash in [
        NewApp { id: notes.id, ..new_app(None, &[]) },
        NewApp { api_key_hash: notes_new.api_key_hash.clone(), ..new_app(None, &[]) },
        NewApp { client_id: notes.client_id.clone(), ..new_app(None, &[]) },
    ] {
        assert!(matches!(accounts.create_app(clash).await, Err(StoreError::AlreadyExists)));
    }

    // Redirect URIs are replaced as a whole, in the order given.
    let replaced = ["com.example.notes:/v2".to_owned(), "https://notes.example.com/v2".to_owned()];
    let changed = accounts.set_redirect_uris(notes.id, &replaced).await.unwrap().unwrap();
    assert_eq!(changed, App { redirect_uris: replaced.to_vec(), ..notes.clone() });
    assert_eq!(accounts.app(notes.id).await.unwrap(), Some(changed));
    assert_eq!(accounts.set_redirect_uris(notes.id, &[]).await.unwrap().unwrap().redirect_uris, Vec::<String>::new());
    assert_eq!(accounts.set_redirect_uris(Uuid::now_v7(), &replaced).await.unwrap(), None);
    assert_eq!(accounts.app(photos.id).await.unwrap(), Some(photos.clone()), "another app is untouched");

    // A new API key hash: the one before finds nothing at once.
    let rotated = Uuid::new_v4().as_bytes().repeat(2);
    assert!(accounts.set_api_key_hash(notes.id, &rotated).await.unwrap());
    assert_eq!(accounts.app_by_key_hash(&notes_new.api_key_hash).await.unwrap(), None);
    assert_eq!(accounts.app_by_key_hash(&rotated).await.unwrap().map(|app| app.id), Some(notes.id));
    assert!(!accounts.set_api_key_hash(Uuid::now_v7(), &[1; 32]).await.unwrap());
}

pub async fn deleting_an_app_removes_its_data(stores: Stores) {
    let accounts = &*stores.accounts;
    let (user, other) = (new_user(), new_user());
    accounts.create_user(user.clone()).await.unwrap();
    accounts.create_user(other.clone()).await.unwrap();
    let doomed_new = new_app(Some(user.id), &["com.example.a:/cb"]);
    let doomed = create_app(accounts, &doomed_new).await;
    let kept = create_app(accounts, &new_app(Some(user.id), &[])).await;
    // Two users with data in both apps: entries, a device, a key envelope and a blob in each stream.
    let mut devices = Vec::new();
    for (app_id, user_id) in [(doomed.id, user.id), (doomed.id, other.id), (kept.id, user.id), (kept.id, other.id)] {
        let s = StreamId { app_id, user_id };
        let device = accounts.upsert_device(s, Uuid::now_v7(), "laptop", "linux").await.unwrap();
        stores.changelog.append(s, device.id, entries(3)).await.unwrap();
        accounts.put_key(s, b"wrapped", 0).await.unwrap();
        let upload = begin(&*stores.blobs, s, [4; 32], 10, [0; 32]).await;
        assert!(stores.blobs.confirm(s, [4; 32], Some(upload), 10, [0; 32]).await.unwrap());
        devices.push((s, device.id));
    }

    assert!(accounts.delete_app(doomed.id).await.unwrap());
    assert!(!accounts.delete_app(doomed.id).await.unwrap(), "gone already");
    assert_eq!(accounts.app(doomed.id).await.unwrap(), None);
    assert_eq!(accounts.app_by_key_hash(&doomed_new.api_key_hash).await.unwrap(), None);
    assert_eq!(accounts.apps(Some(user.id)).await.unwrap(), std::slice::from_ref(&kept));
    for (s, device) in devices {
        let gone = s.app_id == doomed.id;
        let standing = accounts.token_standing(s, Some(device)).await.unwrap().unwrap();
        assert_eq!((standing.device_registered, standing.app_exists), (!gone, !gone), "{s:?}: tokens of it stand");
        assert_eq!(stores.changelog.head(s).await.unwrap(), if gone { 0 } else { 3 }, "{s:?}");
        assert_eq!(read_all(&*stores.changelog, s).await.len(), if gone { 0 } else { 3 });
        assert_eq!(accounts.devices(s).await.unwrap().len(), usize::from(!gone));
        assert_eq!(accounts.key(s).await.unwrap().is_some(), !gone);
        assert_eq!(stores.blobs.blob(s, [4; 32]).await.unwrap().is_some(), !gone);
    }
    // A password change no longer has the deleted app's envelope to re-wrap, nor a recovery to cover.
    let keys = accounts.account_keys(user.id).await.unwrap();
    assert_eq!(keys.iter().map(|k| k.app_id).collect::<Vec<_>>(), [kept.id]);
}

pub async fn authorization_codes_are_redeemed_once(stores: Stores) {
    let accounts = &*stores.accounts;
    let user = new_user();
    accounts.create_user(user.clone()).await.unwrap();
    let notes = create_app(accounts, &new_app(None, &["http://127.0.0.1/callback"])).await;
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let grant = |code: u8, app_id: Uuid, expires_at: time::OffsetDateTime| AuthorizationCode {
        code_hash: [code; 32].iter().chain(Uuid::new_v4().as_bytes()).copied().collect(),
        app_id,
        user_id: user.id,
        redirect_uri: "http://127.0.0.1:49152/callback".to_owned(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        token_version: 3,
        expires_at,
    };

    assert_eq!(accounts.app_by_client_id(&notes.client_id).await.unwrap(), Some(notes.clone()));
    assert_eq!(accounts.app_by_client_id("cid_unknown").await.unwrap(), None);

    // Answered as stored, once.
    let code = grant(1, notes.id, now + time::Duration::seconds(60));
    accounts.store_authorization_code(code.clone(), now).await.unwrap();
    assert_eq!(accounts.redeem_authorization_code(&code.code_hash).await.unwrap(), Some(code.clone()));
    assert_eq!(accounts.redeem_authorization_code(&code.code_hash).await.unwrap(), None, "redeemed once");
    assert_eq!(accounts.redeem_authorization_code(&[7; 48]).await.unwrap(), None, "never issued");

    // An expired grant is still answered (the caller refuses it) until a later code sweeps it away.
    let stale = grant(2, notes.id, now - time::Duration::seconds(1));
    accounts.store_authorization_code(stale.clone(), now - time::Duration::seconds(61)).await.unwrap();
    let fresh = grant(3, notes.id, now + time::Duration::seconds(60));
    accounts.store_authorization_code(fresh.clone(), now).await.unwrap();
    assert_eq!(accounts.redeem_authorization_code(&stale.code_hash).await.unwrap(), None, "swept");
    assert_eq!(accounts.redeem_authorization_code(&fresh.code_hash).await.unwrap(), Some(fresh));
    let expired = grant(4, notes.id, now - time::Duration::seconds(1));
    accounts.store_authorization_code(expired.clone(), now - time::Duration::seconds(61)).await.unwrap();
    assert_eq!(accounts.redeem_authorization_code(&expired.code_hash).await.unwrap(), Some(expired));

    // Deleting the app voids its codes.
    let pending = grant(5, notes.id, now + time::Duration::seconds(60));
    accounts.store_authorization_code(pending.clone(), now).await.unwrap();
    assert!(accounts.delete_app(notes.id).await.unwrap());
    assert_eq!(accounts.redeem_authorization_code(&pending.code_hash).await.unwrap(), None, "its app is gone");
    assert_eq!(accounts.app_by_client_id(&notes.client_id).await.unwrap(), None);
}

pub async fn plans_are_kept_and_replaced(stores: Stores) {
    let accounts = &*stores.accounts;
    let app = create_app(accounts, &new_app(None, &[])).await;
    assert_eq!(accounts.app_plan(app.id).await.unwrap(), None, "no plan until one is set");
    let plan = PlanRecord { storage_bytes: 50_000_000_000, burst: 5, next: None };
    assert!(accounts.set_app_plan(app.id, plan).await.unwrap());
    assert_eq!(accounts.app_plan(app.id).await.unwrap(), Some(plan));
    let next = PendingPlan { storage_bytes: 1, burst: 20, from_period: 24_323 };
    let changed = PlanRecord { storage_bytes: 100_000_000_000_000, burst: 1, next: Some(next) };
    assert!(accounts.set_app_plan(app.id, changed).await.unwrap());
    assert_eq!(accounts.app_plan(app.id).await.unwrap(), Some(changed));
    assert!(!accounts.set_app_plan(Uuid::now_v7(), plan).await.unwrap(), "no such app");
    assert!(accounts.delete_app(app.id).await.unwrap());
    assert_eq!(accounts.app_plan(app.id).await.unwrap(), None, "gone with its app");
}

pub async fn devices(stores: Stores) {
    let accounts = &*stores.accounts;
    let s = stream();
    let other = StreamId { app_id: s.app_id, user_id: Uuid::now_v7() };

    let mac = accounts.upsert_device(s, Uuid::now_v7(), "MacBook", "macos").await.unwrap();
    let phone = accounts.upsert_device(s, Uuid::now_v7(), "Phone", "ios").await.unwrap();
    // Same name again: same device, platform updated.
    let again = accounts.upsert_device(s, Uuid::now_v7(), "MacBook", "linux").await.unwrap();
    assert_eq!(again.id, mac.id);
    assert_eq!(again.platform, "linux");
    // Another user may use the same name for a device of their own.
    let theirs = accounts.upsert_device(other, Uuid::now_v7(), "MacBook", "macos").await.unwrap();
    assert_ne!(theirs.id, mac.id);

    let listed = accounts.devices(s).await.unwrap();
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [mac.id, phone.id]);
    assert!(accounts.has_device(s, phone.id).await.unwrap());
    assert!(!accounts.has_device(other, phone.id).await.unwrap());

    // Deleting goes only through the owning stream.
    assert!(!accounts.delete_device(other, phone.id).await.unwrap());
    assert!(accounts.delete_device(s, phone.id).await.unwrap());
    assert!(!accounts.delete_device(s, phone.id).await.unwrap());
    assert!(!accounts.has_device(s, phone.id).await.unwrap());
    assert_eq!(accounts.devices(s).await.unwrap().len(), 1);
    assert_eq!(accounts.devices(other).await.unwrap().len(), 1);
}

pub async fn token_standing_sees_password_changes_and_removed_devices(stores: Stores) {
    let accounts = &*stores.accounts;
    let user = new_user();
    accounts.create_user(user.clone()).await.unwrap();
    let app = create_app(accounts, &new_app(None, &[])).await;
    let s = StreamId { app_id: app.id, user_id: user.id };
    let standing =
        |token_version, device_registered| Some(TokenStanding { token_version, device_registered, app_exists: true });

    assert_eq!(accounts.token_standing(s, None).await.unwrap(), standing(0, false));
    let laptop = accounts.upsert_device(s, Uuid::now_v7(), "laptop", "linux").await.unwrap();
    assert_eq!(accounts.token_standing(s, Some(laptop.id)).await.unwrap(), standing(0, true));
    // The device is the stream's: the same user in another app, or another device id, has none; an app that does
    // not exist is said so.
    let other_app = StreamId { app_id: Uuid::now_v7(), user_id: user.id };
    let no_app = TokenStanding { token_version: 0, device_registered: false, app_exists: false };
    assert_eq!(accounts.token_standing(other_app, Some(laptop.id)).await.unwrap(), Some(no_app));
    assert_eq!(accounts.token_standing(s, Some(Uuid::now_v7())).await.unwrap(), standing(0, false));

    let change = LoginKeyChange {
        user_id: user.id,
        expected_token_version: 0,
        salt: vec![1; 32],
        login_key_hash: vec![2; 32],
        rewrapped_keys: vec![],
    };
    accounts.change_login_key(change).await.unwrap();
    assert_eq!(accounts.token_standing(s, Some(laptop.id)).await.unwrap(), standing(1, true));
    assert!(accounts.delete_device(s, laptop.id).await.unwrap());
    assert_eq!(accounts.token_standing(s, Some(laptop.id)).await.unwrap(), standing(1, false));

    let nobody = StreamId { app_id: s.app_id, user_id: Uuid::now_v7() };
    assert_eq!(accounts.token_standing(nobody, None).await.unwrap(), None);
}

pub async fn key_envelopes(stores: Stores) {
    let accounts = &*stores.accounts;
    let s = stream();
    assert_eq!(accounts.key(s).await.unwrap(), None);

    assert_eq!(accounts.put_key(s, b"v1", 0).await.unwrap(), PutKeyOutcome::Stored { version: 1 });
    // A second "first" write loses instead of overwriting the key.
    assert_eq!(accounts.put_key(s, b"other", 0).await.unwrap(), PutKeyOutcome::Conflict { current: 1 });
    assert_eq!(accounts.put_key(s, b"v2", 1).await.unwrap(), PutKeyOutcome::Stored { version: 2 });
    assert_eq!(accounts.put_key(s, b"stale", 1).await.unwrap(), PutKeyOutcome::Conflict { current: 2 });
    assert_eq!(accounts.put_key(s, b"ahead", 7).await.unwrap(), PutKeyOutcome::Conflict { current: 2 });

    let key = accounts.key(s).await.unwrap().unwrap();
    assert_eq!((key.envelope.as_slice(), key.version), (&b"v2"[..], 2));
    assert_eq!(accounts.key(StreamId { app_id: s.app_id, user_id: Uuid::now_v7() }).await.unwrap(), None);
}

pub async fn secrets(stores: Stores) {
    let accounts = &*stores.accounts;
    for name in SecretName::ALL {
        let first = name.as_str().as_bytes();
        assert_eq!(accounts.secret(name, first).await.unwrap(), first);
        assert_eq!(accounts.secret(name, b"second").await.unwrap(), first, "{name:?} keeps its first value");
    }
    stores.accounts.ping().await.unwrap();
    stores.changelog.ping().await.unwrap();
}

/// The upload id of a fresh pending record.
async fn begin(blobs: &dyn BlobCatalog, s: StreamId, hash: BlobHash, size: u64, checksum: [u8; 32]) -> Uuid {
    match blobs.begin_upload(s, hash, size, checksum).await.unwrap() {
        UploadBegun::Pending { upload_id: Some(upload_id) } => upload_id,
        begun => panic!("expected a pending upload with an id, got {begun:?}"),
    }
}

pub async fn blobs_are_deleted_and_can_come_back(stores: Stores) {
    let blobs = &*stores.blobs;
    let (s, other) = (stream(), stream());
    let hash = [9u8; 32];
    let first = begin(blobs, s, hash, 10, [1; 32]).await;
    assert!(blobs.confirm(s, hash, Some(first), 10, [1; 32]).await.unwrap());
    let theirs = begin(blobs, other, hash, 10, [1; 32]).await;
    assert_eq!(blobs.delete(stream(), hash).await.unwrap(), None, "another stream has no such blob");

    let deleted = blobs.delete(s, hash).await.unwrap().expect("the blob was there");
    assert_eq!((deleted.size, deleted.confirmed, deleted.upload_id), (10, true, Some(first)));
    assert_eq!(blobs.blob(s, hash).await.unwrap(), None);
    assert_eq!(blobs.delete(s, hash).await.unwrap(), None, "gone already");
    assert_eq!(
        blobs.blob(other, hash).await.unwrap().and_then(|r| r.upload_id),
        Some(theirs),
        "the other stream's stays"
    );
    // Uploaded again: a fresh upload id, so a fresh object.
    let again = begin(blobs, s, hash, 10, [1; 32]).await;
    assert_ne!(again, first);
    // A pending upload can be deleted too.
    assert_eq!(blobs.delete(s, hash).await.unwrap().map(|r| (r.confirmed, r.upload_id)), Some((false, Some(again))));
}

pub async fn blobs_begin_and_confirm(stores: Stores) {
    let blobs = &*stores.blobs;
    let (s, other) = (stream(), stream());
    let hash = [7u8; 32];
    assert_eq!(blobs.blob(s, hash).await.unwrap(), None);
    assert!(!blobs.confirm(s, hash, None, 100, [1; 32]).await.unwrap(), "nothing begun, nothing to confirm");

    let id = begin(blobs, s, hash, 100, [1; 32]).await;
    let pending = BlobRecord { size: 100, checksum: [1; 32], confirmed: false, upload_id: Some(id) };
    assert_eq!(blobs.blob(s, hash).await.unwrap(), Some(pending));
    // A new upload of the same hash replaces the pending record, and uploads to the same object.
    assert_eq!(begin(blobs, s, hash, 200, [2; 32]).await, id, "a pending record keeps its upload id");
    assert!(!blobs.confirm(s, hash, Some(id), 100, [1; 32]).await.unwrap(), "the replaced declaration is gone");
    assert!(!blobs.confirm(other, hash, Some(id), 200, [2; 32]).await.unwrap(), "another stream cannot confirm it");
    assert!(!blobs.confirm(s, hash, Some(Uuid::new_v4()), 200, [2; 32]).await.unwrap(), "nor another upload");
    assert!(!blobs.confirm(s, hash, None, 200, [2; 32]).await.unwrap(), "nor an object keyed by hash alone");
    assert_eq!(blobs.blob(other, hash).await.unwrap(), None);

    assert!(blobs.confirm(s, hash, Some(id), 200, [2; 32]).await.unwrap());
    assert!(blobs.confirm(s, hash, Some(id), 200, [2; 32]).await.unwrap(), "confirming is idempotent");
    let confirmed = BlobRecord { size: 200, checksum: [2; 32], confirmed: true, upload_id: Some(id) };
    assert_eq!(blobs.blob(s, hash).await.unwrap(), Some(confirmed));
    // Once confirmed, a new upload changes nothing.
    assert_eq!(blobs.begin_upload(s, hash, 300, [3; 32]).await.unwrap(), UploadBegun::AlreadyConfirmed(confirmed));
    assert_eq!(blobs.blob(s, hash).await.unwrap(), Some(confirmed));

    // The same hash in another stream is another blob.
    assert_ne!(begin(blobs, other, hash, 5, [5; 32]).await, id);
    assert_eq!(blobs.blob(s, hash).await.unwrap(), Some(confirmed));
}

pub async fn blob_sweeps_take_old_pending_uploads_once(stores: Stores) {
    let blobs = stores.blobs.clone();
    let s = stream();
    let (old, confirmed) = ([1u8; 32], [2u8; 32]);
    let old_id = begin(&*blobs, s, old, 10, [0; 32]).await;
    let confirmed_id = begin(&*blobs, s, confirmed, 10, [0; 32]).await;
    assert!(blobs.confirm(s, confirmed, Some(confirmed_id), 10, [0; 32]).await.unwrap());

    let an_hour_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    assert!(blobs.sweep_pending(an_hour_ago, 100).await.unwrap().is_empty(), "nothing is that old");

    // Two sweepers at once: each pending upload goes to exactly one of them, with the upload id naming its object.
    let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(5);
    let (a, b) = tokio::join!(blobs.sweep_pending(later, 100), blobs.sweep_pending(later, 100));
    let swept: Vec<SweptUpload> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_eq!(swept, [SweptUpload { stream: s, hash: old, upload_id: Some(old_id) }]);
    assert_eq!(blobs.blob(s, old).await.unwrap(), None);
    assert!(blobs.blob(s, confirmed).await.unwrap().unwrap().confirmed, "confirmed blobs are never swept");

    // Begun again after its sweep, the blob is another upload: the swept object is never the new one.
    let again = begin(&*blobs, s, old, 10, [0; 32]).await;
    assert_ne!(again, old_id);
    assert!(!blobs.confirm(s, old, Some(old_id), 10, [0; 32]).await.unwrap(), "the swept upload stays gone");
    assert!(blobs.confirm(s, old, Some(again), 10, [0; 32]).await.unwrap());

    // The limit bounds one sweep.
    for i in 0..5u8 {
        blobs.begin_upload(s, [10 + i; 32], 1, [0; 32]).await.unwrap();
    }
    assert_eq!(blobs.sweep_pending(later + time::Duration::seconds(5), 3).await.unwrap().len(), 3);
    assert_eq!(blobs.sweep_pending(later + time::Duration::seconds(5), 3).await.unwrap().len(), 2);
}

fn payload_bytes(entries: &[NewEntry]) -> u64 {
    entries.iter().map(|e| e.payload.len() as u64).sum()
}

pub async fn usage_counts_what_is_stored_and_transferred_once(stores: Stores) {
    let (usage, today) = (&*stores.usage, today());
    let app = create_app(&*stores.accounts, &new_app(None, &[])).await;
    let (s, t) =
        (StreamId { app_id: app.id, user_id: Uuid::now_v7() }, StreamId { app_id: app.id, user_id: Uuid::now_v7() });
    let standing = usage.standing(app.id, today).await.unwrap();
    assert_eq!((standing.plan, standing.stored_bytes, standing.transfer_bytes), (None, 0, 0), "nothing yet");

    // A push counts its payloads as stored and transferred; its retry, and a push of it with one more, only the new.
    let first = entries(3);
    stores.changelog.append(s, Uuid::now_v7(), first.clone()).await.unwrap();
    stores.changelog.append(s, Uuid::now_v7(), first.clone()).await.unwrap();
    let more = entries(1);
    let again: Vec<NewEntry> = first.iter().cloned().chain(more.iter().cloned()).collect();
    stores.changelog.append(s, Uuid::now_v7(), again).await.unwrap();
    let pushed = payload_bytes(&first) + payload_bytes(&more);
    let standing = usage.standing(app.id, today).await.unwrap();
    assert_eq!((standing.stored_bytes, standing.transfer_bytes), (pushed, pushed));

    // A blob counts once it is confirmed, once however often; deleting it frees what it stored.
    let upload = begin(&*stores.blobs, t, [7; 32], 1000, [1; 32]).await;
    assert_eq!(usage.standing(app.id, today).await.unwrap().stored_bytes, pushed, "pending uploads store nothing");
    for _ in 0..2 {
        assert!(stores.blobs.confirm(t, [7; 32], Some(upload), 1000, [1; 32]).await.unwrap());
    }
    let standing = usage.standing(app.id, today).await.unwrap();
    assert_eq!((standing.stored_bytes, standing.transfer_bytes), (pushed + 1000, pushed + 1000));
    let pending = begin(&*stores.blobs, t, [8; 32], 500, [1; 32]).await;
    assert!(stores.blobs.delete(t, [8; 32]).await.unwrap().is_some(), "{pending}");
    assert!(stores.blobs.delete(t, [7; 32]).await.unwrap().is_some());
    let standing = usage.standing(app.id, today).await.unwrap();
    assert_eq!((standing.stored_bytes, standing.transfer_bytes), (pushed, pushed + 1000), "deleting frees storage");

    // What the services count themselves adds up, per stream and day.
    let pulled = Transfer { stream: t, day: today, bytes: 300 };
    usage.record_transfer(vec![pulled, pulled, Transfer { stream: s, day: today, bytes: 0 }]).await.unwrap();
    usage.record_transfer(vec![Transfer { stream: stream(), day: today, bytes: 5 }]).await.unwrap();
    let standing = usage.standing(app.id, today).await.unwrap();
    assert_eq!(standing.transfer_bytes, pushed + 1600, "another app's transfer is its own");

    let plan = PlanRecord { storage_bytes: 10, burst: 2, next: None };
    stores.accounts.set_app_plan(app.id, plan).await.unwrap();
    assert_eq!(usage.standing(app.id, today).await.unwrap().plan, Some(plan));

    let report = usage.app_usage(app.id, today, today).await.unwrap();
    assert_eq!((report.stored_bytes, report.transfer_bytes), (pushed, pushed + 1600));
    let mut users = report.users.clone();
    users.sort_by_key(|u| u.user_id != s.user_id);
    assert_eq!(
        users,
        [
            UserBytes { user_id: s.user_id, stored_bytes: pushed, transfer_bytes: pushed },
            UserBytes { user_id: t.user_id, stored_bytes: 0, transfer_bytes: 1600 },
        ]
    );
    assert_eq!(report.days.len(), 1);
    assert_eq!(
        (report.days[0].day, report.days[0].stored_bytes, report.days[0].transfer_bytes),
        (today, pushed, pushed + 1600)
    );

    assert!(stores.accounts.delete_app(app.id).await.unwrap());
    let standing = usage.standing(app.id, today).await.unwrap();
    assert_eq!((standing.plan, standing.stored_bytes, standing.transfer_bytes), (None, 0, 0), "gone with its app");
}

pub async fn usage_is_kept_per_day(stores: Stores) {
    let (usage, today) = (&*stores.usage, today());
    let s = stream();
    let stored = entries(2);
    stores.changelog.append(s, Uuid::now_v7(), stored.clone()).await.unwrap();
    let stored = payload_bytes(&stored);
    // Transfers of earlier days (a flush that began before midnight lands on its own day).
    usage
        .record_transfer(vec![
            Transfer { stream: s, day: today - 2, bytes: 40 },
            Transfer { stream: s, day: today - 40, bytes: 7 },
        ])
        .await
        .unwrap();
    let report = usage.app_usage(s.app_id, today - 3, today).await.unwrap();
    let days: Vec<(i32, u64, u64)> =
        report.days.iter().map(|d| (d.day - today, d.stored_bytes, d.transfer_bytes)).collect();
    // Before today's push the stream stored nothing.
    assert_eq!(days, [(-3, 0, 0), (-2, 0, 40), (-1, 0, 0), (0, stored, stored)]);
    assert_eq!((report.stored_bytes, report.transfer_bytes), (stored, stored + 40), "day -40 is before the period");
    assert_eq!(usage.standing(s.app_id, today - 2).await.unwrap().transfer_bytes, stored + 40);
    assert_eq!(usage.standing(s.app_id, today).await.unwrap().transfer_bytes, stored);
    // Asked about days that have passed, today's push is after all of them.
    let past = usage.app_usage(s.app_id, today - 3, today - 1).await.unwrap();
    assert_eq!(past.days.iter().map(|d| d.stored_bytes).collect::<Vec<_>>(), [0, 0, 0]);
    assert_eq!(past.transfer_bytes, 40);
}

pub async fn superseded_entries_keep_their_place_and_free_their_payloads(stores: Stores) {
    let (changelog, s) = (&*stores.changelog, stream());
    let device = Uuid::now_v7();
    let appended = entries(5);
    changelog.append(s, device, appended.clone()).await.unwrap();
    let stored = stores.usage.standing(s.app_id, today()).await.unwrap().stored_bytes;
    let freed = (appended[1].payload.len() + appended[3].payload.len()) as u64;

    // Repeats, and a sequence number past the head, are skipped.
    let done = changelog.supersede(s, vec![2, 4, 4, 99]).await.unwrap();
    assert_eq!((done.entries, done.bytes), (2, freed));
    assert_eq!(changelog.supersede(s, vec![2, 4]).await.unwrap().entries, 0, "superseded already");
    assert_eq!(changelog.supersede(stream(), vec![1]).await.unwrap().entries, 0, "another stream has none");

    let read = read_all(changelog, s).await;
    assert_eq!(read.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5], "every place is kept");
    for (entry, new) in read.iter().zip(&appended) {
        let superseded = entry.seq == 2 || entry.seq == 4;
        assert_eq!(entry.superseded, superseded, "{}", entry.seq);
        assert_eq!(entry.change_id, new.change_id);
        assert_eq!(entry.payload, if superseded { Vec::new() } else { new.payload.clone() });
    }
    assert_eq!(changelog.head(s).await.unwrap(), 5);
    assert_eq!(stores.usage.standing(s.app_id, today()).await.unwrap().stored_bytes, stored - freed);
    // A late retry of a superseded change is still a duplicate.
    let retry = changelog.append(s, device, vec![appended[1].clone()]).await.unwrap();
    assert_eq!((retry.head, retry.accepted, retry.duplicates), (5, 0, 1));
}
