//! The user's devices in this app: register this one, list them, remove one.

use reqwest::Method;
use synckit_protocol::devices::RegisterDeviceRequest;
use synckit_protocol::paths;
use uuid::Uuid;

use crate::SyncKitClient;
use crate::error::Result;
use crate::http::Retry;
use crate::model::Device;

impl SyncKitClient {
    /// Registers this device (or returns the one registered under `name`, with `platform` updated).
    ///
    /// ```no_run
    /// # async fn demo(client: &synckit::SyncKitClient) -> synckit::Result<()> {
    /// let device = client.register_device("MacBook", "macos").await?;
    /// println!("{}", device.id);
    /// # Ok(()) }
    /// ```
    pub async fn register_device(&self, name: &str, platform: &str) -> Result<Device> {
        let req = RegisterDeviceRequest { name: name.to_owned(), platform: platform.to_owned() };
        self.call(Method::POST, paths::DEVICES, true, Some(&req), Retry::Idempotent).await
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
