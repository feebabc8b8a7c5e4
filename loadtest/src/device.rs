//! Simulated devices and the accounts they belong to, set up through the API as the SDK sets them up: sign up, sign in,
//! a real key envelope (`PUT /api/sync/keys`), and a registered device with its own token.
//!
//! Key derivation is where a load generator could spend its whole CPU, so it is paid where it must be:
//! - the login key (Argon2id, 64 MiB, ~120 ms) is derived **once per process**: every account of a run signs up with
//!   the same password and salt. The server stores what it is sent, so its work per sign-up and sign-in is the same.
//! - each account's master key is wrapped into a real version 2 envelope with the SDK's [`wrap_master_key`]: **one
//!   Argon2id run per account**, on a blocking thread, at most [`KDF_AT_ONCE`] at a time (each takes 64 MiB).
//! - the other devices of an account sign in and fetch the envelope, but take the unlocked key from the account in
//!   this process, as an SDK device does from its keychain after its first unlock, instead of deriving again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use goose::prelude::*;
use synckit::crypto::{KdfParams, Keys, SALT_BYTES, SecretKey, derive_key, random_bytes, wrap_master_key};
use synckit_protocol::accounts::{AuthRequest, AuthResponse, RegisterRequest, RegisterResponse};
use synckit_protocol::devices::{RegisterDeviceRequest, RegisteredDevice};
use synckit_protocol::keys::{KeyEnvelope, PutKeyRequest, PutKeyResponse};
use synckit_protocol::paths;
use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use crate::api::{Call, Failure, failure};
use crate::options::Settings;
use crate::scenarios::Kind;

/// Argon2id runs at once in this process: each holds 64 MiB.
pub const KDF_AT_ONCE: usize = 2;
/// The password of every simulated account (the load test's accounts are throwaway, and the server never sees it).
const PASSWORD: &str = "synckit load test password";

/// One account in one app: what its devices share.
#[derive(Debug)]
pub struct Account {
    pub email: String,
    pub user_id: Uuid,
    pub app_id: Uuid,
    /// The subkeys of the account's master key.
    pub keys: Keys,
    /// The envelope this process stored, which every other device of the account must find on the server.
    envelope: Vec<u8>,
    /// When each push of the account was acknowledged, by the cursor it answered: the `live` scenario's devices
    /// measure from here to the commit event they receive.
    pub acks: Mutex<HashMap<u64, Instant>>,
    /// Set once the account's history is pushed (`firstsync`).
    pub history: OnceCell<u64>,
}

impl Account {
    /// When the push that answered `cursor` was acknowledged, if a device of this process has seen it.
    pub fn acked_at(&self, cursor: u64) -> Option<Instant> {
        self.acks.lock().unwrap_or_else(PoisonError::into_inner).get(&cursor).copied()
    }

    /// Notes that the push that answered `cursor` was acknowledged now, and forgets acknowledgements older than a
    /// minute, which no event can still be waiting for.
    pub fn acked(&self, cursor: u64, at: Instant) {
        let mut acks = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
        acks.insert(cursor, at);
        if acks.len() > 1024 {
            acks.retain(|_, t| t.elapsed() < Duration::from_secs(60));
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests(keys: Keys) -> Self {
        Self {
            email: "test@example.invalid".into(),
            user_id: Uuid::now_v7(),
            app_id: Uuid::now_v7(),
            keys,
            envelope: Vec::new(),
            acks: Mutex::default(),
            history: OnceCell::new(),
        }
    }
}

/// One simulated device: a registered device of an account, with its own token.
#[derive(Debug)]
pub struct Device {
    pub account: Arc<Account>,
    pub id: Uuid,
    pub token: String,
}

/// An account as its devices wait for it: set once, by whichever device gets there first.
type AccountCell = Arc<OnceCell<Arc<Account>>>;

/// The login key every account of this process signs up and in with.
struct Login {
    salt: Vec<u8>,
    key: Vec<u8>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Login(..)")
    }
}

/// What the simulated users of one process share: settings, the login key, and the accounts by scenario.
#[derive(Debug)]
pub struct Fleet {
    pub settings: Settings,
    /// Tells this run's accounts apart from any other run's on the same deployment.
    run: String,
    login: OnceCell<Login>,
    kdf: Semaphore,
    /// Devices started so far, by scenario.
    started: Mutex<HashMap<Kind, Arc<AtomicUsize>>>,
    /// Accounts by scenario and number, each set up once by the first of its devices to get there.
    accounts: Mutex<HashMap<(Kind, usize), AccountCell>>,
}

impl Fleet {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            run: Uuid::new_v4().simple().to_string()[..12].to_owned(),
            login: OnceCell::new(),
            kdf: Semaphore::new(KDF_AT_ONCE),
            started: Mutex::default(),
            accounts: Mutex::default(),
        }
    }

    /// Sets up the next device of scenario `kind` with `user`: its account first if it is the account's first
    /// device to get here, then a device of its own.
    pub async fn join(&self, user: &mut GooseUser, kind: Kind) -> Result<Device, Failure> {
        let counter = self.started.lock().unwrap_or_else(PoisonError::into_inner).entry(kind).or_default().clone();
        let number = counter.fetch_add(1, Ordering::Relaxed);
        let per_account = self.settings.devices_per_account.map_or(kind.devices_per_account(), |n| n as usize);
        let account_number = number / per_account;
        let cell = self
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((kind, account_number))
            .or_default()
            .clone();
        // The sign-in token of the device that created the account, which need not sign in again.
        let mut signed_in = None;
        let (creator, created) = (&mut *user, &mut signed_in);
        let account = cell
            .get_or_try_init(|| async move {
                let (account, token) = self.sign_up(creator, kind, account_number).await?;
                *created = Some(token);
                Ok::<_, Failure>(Arc::new(account))
            })
            .await?
            .clone();
        let sign_in_token = match signed_in {
            Some(token) => token,
            None => self.sign_in(user, &account).await?,
        };
        let name = format!("load-{}-{number}", kind.name());
        let req = RegisterDeviceRequest { name, platform: "loadtest".into() };
        let device: RegisteredDevice =
            Call::new(GooseMethod::Post, paths::DEVICES, "device").token(&sign_in_token).json(&req).call(user).await?;
        Ok(Device { account, id: device.device.id, token: device.token })
    }

    /// Registers a new device of `device`'s account, as a new install of the app does, and returns its token.
    pub async fn new_device(
        &self,
        user: &mut GooseUser,
        device: &Device,
        name: &str,
    ) -> Result<(Uuid, String), Failure> {
        let token = self.sign_in(user, &device.account).await?;
        let req = RegisterDeviceRequest { name: name.to_owned(), platform: "loadtest".into() };
        let registered: RegisteredDevice =
            Call::new(GooseMethod::Post, paths::DEVICES, "device").token(&token).json(&req).call(user).await?;
        Ok((registered.device.id, registered.token))
    }

    /// Creates an account, signs in, and stores a fresh master key's envelope: the account and the sign-in token.
    async fn sign_up(&self, user: &mut GooseUser, kind: Kind, number: usize) -> Result<(Account, String), Failure> {
        let login = self.login().await?;
        let email = format!("load-{}-{}-{number}@loadtest.invalid", self.run, kind.name());
        let req = RegisterRequest {
            email: email.clone(),
            salt: login.salt.clone().into(),
            login_key: login.key.clone().into(),
        };
        let _: RegisterResponse =
            Call::new(GooseMethod::Post, paths::ACCOUNTS_REGISTER, "sign up").json(&req).call(user).await?;
        let auth = self.authenticate(user, &email).await?;

        let master = SecretKey::generate();
        let envelope = {
            let _slot = self.kdf.acquire().await.expect("never closed");
            let (master, app, user_id) = (master.clone(), auth.app_id, auth.user_id);
            tokio::task::spawn_blocking(move || wrap_master_key(&master, PASSWORD, app, user_id))
                .await
                .map_err(|e| failure(format!("wrapping the master key: {e}")))?
                .map_err(|e| failure(format!("wrapping the master key: {e}")))?
        };
        let req = PutKeyRequest { envelope: envelope.clone().into(), expected_version: None };
        let _: PutKeyResponse =
            Call::new(GooseMethod::Put, paths::KEYS, "keys").token(&auth.token).json(&req).call(user).await?;
        let account = Account {
            email,
            user_id: auth.user_id,
            app_id: auth.app_id,
            keys: Keys::derive(&master),
            envelope,
            acks: Mutex::default(),
            history: OnceCell::new(),
        };
        Ok((account, auth.token))
    }

    /// Signs in to `account` again, as its next device, and checks the server holds the envelope this process stored.
    async fn sign_in(&self, user: &mut GooseUser, account: &Account) -> Result<String, Failure> {
        let auth = self.authenticate(user, &account.email).await?;
        let stored: KeyEnvelope =
            Call::new(GooseMethod::Get, paths::KEYS, "keys").token(&auth.token).call(user).await?;
        if stored.envelope.as_bytes() != account.envelope {
            return Err(failure(format!("the server answers another key envelope for {}", account.email)));
        }
        Ok(auth.token)
    }

    async fn authenticate(&self, user: &mut GooseUser, email: &str) -> Result<AuthResponse, Failure> {
        let login = self.login().await?;
        let req = AuthRequest {
            email: email.to_owned(),
            login_key: login.key.clone().into(),
            api_key: self.settings.api_key.clone(),
        };
        Call::new(GooseMethod::Post, paths::AUTH, "sign in").json(&req).call(user).await
    }

    /// The process's login key, derived on first use.
    async fn login(&self) -> Result<&Login, Failure> {
        self.login
            .get_or_try_init(|| async {
                let salt: [u8; SALT_BYTES] = random_bytes();
                let key = tokio::task::spawn_blocking(move || derive_key(PASSWORD, &salt, KdfParams::DEFAULT))
                    .await
                    .map_err(|e| failure(format!("deriving the login key: {e}")))?
                    .map_err(|e| failure(format!("deriving the login key: {e}")))?;
                Ok(Login { salt: salt.to_vec(), key: key.as_bytes().to_vec() })
            })
            .await
    }
}
