//! The user's devices in this app: register this one, list them, remove one.

use reqwest::Method;
use synckit_protocol::devices::{RegisterDeviceRequest, RegisteredDevice};
use synckit_protocol::paths;
use uuid::Uuid;

use crate::SyncKitClient;
use crate::error::Result;
use crate::http::Retry;
use crate::model::Device;

impl SyncKitClient {
    /// Registers this device (or returns the one registered under `name`, with `platform` updated), and switches
    /// the session to the device's own token: from then on the client syncs as this device, and removing the
    /// device from another one signs this client out ([`ErrorKind::Unauthorized`](crate::ErrorKind::Unauthorized)).
    /// Save the [`session`](Self::session) afterwards to resume it in a later run.
    ///
    /// Call it after [`authenticate`](Self::authenticate), or again with the device's own session to renew its
    /// token; a device's token cannot register another name.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let device = client.register_device("MacBook", "macos").await?;
    /// println!("{}", device.id);
    /// # Ok(()) }
    /// ```
    pub async fn register_device(&self, name: &str, platform: &str) -> Result<Device> {
        let req = RegisterDeviceRequest { name: name.to_owned(), platform: platform.to_owned() };
        let before = self.require_session()?;
        let registered: RegisteredDevice =
            self.call(Method::POST, paths::DEVICES, true, Some(&req), Retry::Idempotent).await?;
        let mut state = self.inner.state.write().expect("not poisoned");
        // Only the session that asked: a sign-in to another account meanwhile keeps its own.
        if let Some(s) = state.session.as_mut().filter(|s| (s.user_id, s.app_id) == (before.user_id, before.app_id)) {
            s.token = registered.token;
            s.expires_at = registered.expires_at;
            s.device_id = Some(registered.device.id);
        }
        Ok(registered.device)
    }

    /// This user's devices in this app, oldest first.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// for d in client.list_devices().await? {
    ///     println!("{} {} {}", d.id, d.name, d.platform);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_devices(&self) -> Result<Vec<Device>> {
        self.call::<(), _>(Method::GET, paths::DEVICES, true, None, Retry::Idempotent).await
    }

    /// Removes a device; [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) if this user has none with that id.
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient, old: uuid::Uuid) -> synckit::Result<()> {
    /// client.delete_device(old).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_device(&self, device_id: Uuid) -> Result<()> {
        let path = paths::device(device_id);
        self.call::<(), ()>(Method::DELETE, &path, true, None, Retry::IfUnprocessed).await
    }
}
