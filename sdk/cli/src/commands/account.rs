//! The account and this profile's login: signup, login, passwd, recovery-key, recover, logout.

use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use serde_json::json;
use synckit::keystore::MemoryKeyStore;
use synckit::{Device, ErrorKind, RecoveryKey, SyncKitClient, SyncKitConfig};
use uuid::Uuid;

use crate::profile::{Profile, ProfileDir};
use crate::session::{self, LoggedIn};
use crate::{Globals, output, password};

/// The device name when the host has none to give.
const FALLBACK_DEVICE_NAME: &str = "synckit-cli";

/// `synckit signup EMAIL`: creates the account. It does not log in: login picks the app and the device.
pub async fn signup(globals: &Globals, email: &str) -> Result<()> {
    // Registering touches no key or cursor, so no profile is needed (nor a HOME to find one in).
    let config = SyncKitConfig::new(globals.server(), globals.api_key.clone().unwrap_or_default())
        .key_store(Arc::new(MemoryKeyStore::default()));
    let client = SyncKitClient::new(config);
    let password = password::for_new_account(email)?;
    let user_id = client.register(email, &password).await?;
    eprintln!("created the account {email}; next: synckit login {email}");
    output::one(json!({ "user_id": user_id }))
}

/// `synckit login EMAIL [--device NAME]`: signs in, unlocks the key, registers the device, saves the profile.
pub async fn login(globals: &Globals, email: &str, device_name: Option<String>) -> Result<()> {
    let login = Login::start(globals, None)?;
    let password = password::current(email)?;
    let (user_id, app_id) = login.client.authenticate(email, &password).await.map_err(|e| match e.kind() {
        // The server does not say which of the two was wrong, so that no one can probe for accounts.
        ErrorKind::WrongPassword => anyhow!("wrong password, or no account for {email}"),
        _ => e.into(),
    })?;
    let device = login.finish(globals, &password, device_name).await?;
    eprintln!("logged in as {email} on device {}", device.name);
    output::one(json!({ "user_id": user_id, "app_id": app_id, "device_id": device.id }))
}

/// `synckit login --browser [--device NAME]`: signs in on the server's page in the browser, then unlocks the key
/// with the password, registers the device and saves the profile, as login does.
pub async fn login_in_browser(globals: &Globals, client_id: Option<String>, device_name: Option<String>) -> Result<()> {
    let login = Login::start(globals, client_id)?;
    let (user_id, app_id) = login
        .client
        .sign_in_with_browser(|url| {
            // Also for a shell on another machine than the browser, where opening one here would not help.
            eprintln!("Open this URL to sign in: {url}");
            if let Err(e) = synckit::oauth::open_browser(url) {
                eprintln!("synckit: note: could not open a browser ({e}): open the URL yourself");
            }
            Ok(())
        })
        .await
        .context("signing in through the browser failed")?;
    // Said before the password is asked for, so that a code slipped in for another account does not go unnoticed.
    let email = login.client.session().map(|s| s.email).unwrap_or_default();
    eprintln!("signed in as {email} through the browser");
    // The page signed in; the key is unlocked only here, with the password typed into this terminal. Nothing
    // checks that password against the account's before the account's first key is wrapped with it, so a first
    // device asks twice.
    let first_device = !login.client.has_server_key().await?;
    let password = password::to_unlock(first_device)?;
    let device = login.finish(globals, &password, device_name).await?;
    eprintln!("logged in as {email} on device {}", device.name);
    output::one(json!({ "user_id": user_id, "app_id": app_id, "device_id": device.id }))
}

/// A login under way: where its profile goes, and the client that signs in.
struct Login {
    server: String,
    api_key: String,
    dir: ProfileDir,
    /// The profile's earlier login, whatever its account.
    previous: Option<Profile>,
    client: SyncKitClient,
}

impl Login {
    fn start(globals: &Globals, client_id: Option<String>) -> Result<Self> {
        let server = globals.server();
        let api_key = globals
            .api_key
            .clone()
            .context("logging in needs the app's API key: pass --api-key KEY or set SYNCKIT_API_KEY")?;
        let dir = globals.profile_dir()?;
        // A damaged profile must not stand in the way of the login that replaces it.
        let previous = dir.load().ok().flatten();
        let mut config = session::config(&dir, &server, &api_key, globals.keychain);
        config.oauth_client_id = client_id.filter(|id| !id.is_empty());
        let client = SyncKitClient::new(config);
        Ok(Self { server, api_key, dir, previous, client })
    }

    /// Once signed in: unlocks the key, registers the device and saves the profile.
    async fn finish(self, globals: &Globals, password: &str, device_name: Option<String>) -> Result<Device> {
        let Self { server, api_key, dir, previous, client } = self;
        let signed_in = client.session().expect("signed in");
        let (user_id, app_id) = (signed_in.user_id, signed_in.app_id);
        let previous =
            previous.filter(|p| p.server == server && p.session.user_id == user_id && p.session.app_id == app_id);
        // Created only now, so a failed sign-in leaves nothing behind.
        dir.create()?;

        let name = device_name.unwrap_or_else(host_name);
        let device = match unlock_and_register(&client, password, &name, previous.as_ref().map(|p| p.device_id)).await {
            Ok(device) => device,
            Err(e) => {
                // Without a saved session nothing would ever use (or remove) the unlocked key: forget it now. A
                // profile still logged in to this account keeps it.
                if previous.is_none() {
                    let _ = client.logout();
                }
                return Err(e);
            }
        };

        save_profile(globals, &dir, server, api_key, &client, &device)?;
        Ok(device)
    }
}

/// Saves the profile of a login: its server, app, session and device.
fn save_profile(
    globals: &Globals,
    dir: &ProfileDir,
    server: String,
    api_key: String,
    client: &SyncKitClient,
    device: &Device,
) -> Result<()> {
    let profile = Profile {
        server,
        api_key: Some(api_key),
        session: client.session().expect("still signed in"),
        device_id: device.id,
        device_name: device.name.clone(),
        keychain: globals.keychain,
    };
    dir.save(&profile)
}

/// Unlocks the key and registers the device, once signed in.
async fn unlock_and_register(
    client: &SyncKitClient,
    password: &str,
    name: &str,
    previous_device: Option<Uuid>,
) -> Result<Device> {
    unlock(client, password).await?;
    register(client, name, previous_device).await
}

/// Registers the device, once signed in and unlocked.
async fn register(client: &SyncKitClient, name: &str, previous_device: Option<Uuid>) -> Result<Device> {
    let existing = client.list_devices().await?.into_iter().find(|d| d.name == name);
    let device = client.register_device(name, std::env::consts::OS).await?;
    // Registering a name that exists returns that device. Two profiles under one name are one device, and a
    // device never pulls its own pushes: say so, since the default name is the same for every profile on a host.
    if existing.is_some_and(|d| Some(d.id) != previous_device) {
        eprintln!(
            "synckit: note: using the existing device {name} ({}); profiles sharing a device do not see each \
             other's changes: pass --device NAME for a separate one",
            device.id
        );
    }
    Ok(device)
}

/// The account's key, opened with the password; else the key this device kept from an earlier login; else this is
/// the account's first device and creates it. The server's envelope is opened even when the device kept the key:
/// the password is at hand, and a device holding the key is the only one that can upgrade a version 1 envelope
/// (which the SDK does while opening it), so the account's other devices can unlock.
async fn unlock(client: &SyncKitClient, password: &str) -> Result<()> {
    if client.has_server_key().await? {
        return Ok(client.setup_encryption_existing(password).await?);
    }
    match client.try_load_key_from_keychain().await {
        Err(e) if e.kind() == ErrorKind::Locked => {}
        loaded => return Ok(loaded?),
    }
    match client.setup_encryption_new(password).await {
        // Another device created it between the two calls: use that one.
        Err(e) if e.kind() == ErrorKind::Conflict => Ok(client.setup_encryption_existing(password).await?),
        result => Ok(result?),
    }
}

/// The machine's host name, the default device name.
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| FALLBACK_DEVICE_NAME.to_owned())
}

/// `synckit passwd`: changes the password and keeps this profile signed in.
pub async fn passwd(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let email = logged_in.profile.session.email.clone();
    let current = password::current(&email)?;
    let new = password::replacement()?;
    logged_in.client.change_password(&current, &new).await.map_err(|e| logged_in.explain(e.into()))?;
    // The change revoked every earlier token, this profile's too: keep the fresh one it answered with.
    let mut profile = logged_in.profile.clone();
    profile.session = logged_in.client.session().expect("still signed in");
    logged_in.dir.save(&profile).with_context(|| {
        format!("the password was changed, but the new session was not saved: run synckit login {email}")
    })?;
    eprintln!(
        "password changed; other devices must log in again with the new password, and any recovery key stopped \
         working (synckit recovery-key makes a new one)"
    );
    Ok(())
}

/// What recovery-key and recover say on stderr beside the key they print.
const STORE_IT: &str = "this recovery key is shown once and SyncKit keeps no copy: store it safely (printed, or in a \
     password manager); with it anyone can take over the account, and without it a forgotten password loses the data";

/// `synckit recovery-key`: makes a new recovery key and prints it once.
pub async fn recovery_key(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let email = logged_in.profile.session.email.clone();
    let password = password::current(&email)?;
    let key = logged_in.client.create_recovery_key(&password).await.map_err(|e| logged_in.explain(e.into()))?;
    eprintln!("synckit: {STORE_IT}; a recovery key made before no longer works");
    output::one(json!({ "recovery_key": key.to_string() }))
}

/// `synckit recover EMAIL [--device NAME]`: sets a new password with the recovery key, then logs this profile in
/// as login does, and prints the new recovery key once.
pub async fn recover(globals: &Globals, email: &str, device_name: Option<String>) -> Result<()> {
    let server = globals.server();
    let api_key = globals
        .api_key
        .clone()
        .context("recovering needs the app's API key: pass --api-key KEY or set SYNCKIT_API_KEY")?;
    // Read before anything is asked or sent, so a typo costs nothing.
    let key: RecoveryKey = password::recovery_key()?.parse()?;
    let new = password::replacement()?;
    let dir = globals.profile_dir()?;
    // A damaged profile must not stand in the way of the login that replaces it.
    let previous = dir.load().ok().flatten();
    // Before the recovery, which keeps the key in it: owner-only, as login makes it.
    dir.create()?;
    let client = session::client(&dir, &server, &api_key, globals.keychain);
    let next = client.recover(email, &key, &new).await.map_err(|e| match e.kind() {
        ErrorKind::WrongRecoveryKey => anyhow!("this is not the recovery key of {email} (or there is no such account)"),
        _ => e.into(),
    })?;
    eprintln!("synckit: the password of {email} is changed; other devices must log in again; {STORE_IT}");
    // From here on the old recovery key is used up: the new one must reach the user whatever else fails.
    let logged_in = log_in_after_recovery(globals, &client, server, api_key, previous, device_name, &new).await;
    match logged_in {
        Ok(device) => {
            eprintln!("logged in as {email} on device {}", device.name);
            let session = client.session().expect("recover signed in");
            let (user_id, app_id, recovery_key) = (session.user_id, session.app_id, next.to_string());
            output::one(
                json!({ "user_id": user_id, "app_id": app_id, "device_id": device.id, "recovery_key": recovery_key }),
            )
        }
        Err(e) => {
            output::one(json!({ "recovery_key": next.to_string() }))?;
            Err(e.context(format!(
                "recovered, but this profile is not logged in: run synckit login {email} with the new password"
            )))
        }
    }
}

/// After a recovery: unlocks (when the app had no key, sets one up), registers the device and saves the profile.
async fn log_in_after_recovery(
    globals: &Globals,
    client: &SyncKitClient,
    server: String,
    api_key: String,
    previous: Option<Profile>,
    device_name: Option<String>,
    password: &str,
) -> Result<Device> {
    let dir = globals.profile_dir()?;
    let session = client.session().expect("recover signed in");
    let previous = previous
        .filter(|p| p.server == server && p.session.user_id == session.user_id && p.session.app_id == session.app_id);
    if !client.is_unlocked() {
        unlock(client, password).await?;
    }
    let name = device_name.unwrap_or_else(host_name);
    let device = register(client, &name, previous.as_ref().map(|p| p.device_id)).await?;
    save_profile(globals, &dir, server, api_key, client, &device)?;
    Ok(device)
}

/// `synckit logout`: forgets the session and the unlocked key. The protocol has no sign-out call: the token stays
/// valid until it expires, but nothing keeps it any more.
pub async fn logout(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open_any(globals)?;
    logged_in.client.logout()?;
    logged_in.dir.remove()?;
    eprintln!("logged out of {}", logged_in.profile.session.email);
    Ok(())
}
