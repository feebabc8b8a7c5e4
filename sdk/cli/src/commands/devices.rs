//! The account's devices in this app: list and delete.

use anyhow::{Result, anyhow};
use synckit::ErrorKind;
use uuid::Uuid;

use crate::session::LoggedIn;
use crate::{Globals, output};

/// `synckit devices`: one JSON line per device, oldest first.
pub async fn list(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let devices = logged_in.client.list_devices().await.map_err(|e| logged_in.explain(e.into()))?;
    output::lines(&devices)
}

/// `synckit devices delete ID`: removes a device; its changes stay in the stream.
pub async fn delete(globals: &Globals, id: Uuid) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    logged_in.client.delete_device(id).await.map_err(|e| match e.kind() {
        ErrorKind::NotFound => anyhow!("this account has no device {id}: synckit devices lists them"),
        _ => logged_in.explain(e.into()),
    })?;
    eprintln!("deleted device {id}");
    if id == logged_in.profile.device_id {
        eprintln!(
            "synckit: note: that was this profile's own device; run synckit login {} to register it again before \
             pushing",
            logged_in.profile.session.email
        );
    }
    Ok(())
}
