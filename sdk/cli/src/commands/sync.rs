//! The user's stream: push, pull, status.

use anyhow::{Result, bail};
use serde_json::json;
use synckit::ChangeEntry;

use crate::session::LoggedIn;
use crate::{Globals, output};

/// `synckit push TABLE ROW_ID JSON` (an upsert) or `synckit push TABLE ROW_ID --delete`.
pub async fn push(globals: &Globals, table: String, row_id: String, data: Option<serde_json::Value>) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let change = match data {
        Some(data) => ChangeEntry::upsert(table, row_id, data),
        None => ChangeEntry::delete(table, row_id),
    };
    let pushed = async {
        logged_in.unlock().await?;
        Ok(logged_in.client.push(logged_in.profile.device_id, [change]).await?)
    };
    // A deleted device's token is refused; `explain` says to log in again, which registers the profile anew.
    let cursor = pushed.await.map_err(|e| logged_in.explain(e))?;
    // The pull cursor stays where it is: changes other devices pushed before this one are still to be pulled.
    output::one(json!({ "cursor": cursor }))
}

/// `synckit pull`: every change other devices pushed since the last pull, one JSON line each.
pub async fn pull(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    pull_pages(&logged_in).await.map_err(|e| logged_in.explain(e))
}

async fn pull_pages(logged_in: &LoggedIn) -> Result<()> {
    let (client, device) = (&logged_in.client, logged_in.profile.device_id);
    logged_in.unlock().await?;
    let mut cursor = client.load_cursor(device)?;
    loop {
        // The SDK leaves out this device's own changes; the cursor still moves past them.
        let (changes, next, has_more) = client.pull(device, cursor).await?;
        output::lines(&changes)?;
        // Saved once the page is printed: an interrupted pull prints a page again rather than skipping one.
        client.save_cursor(device, next)?;
        if has_more && next <= cursor {
            bail!("the server says more changes follow cursor {cursor} but returned none");
        }
        if !has_more {
            return Ok(());
        }
        cursor = next;
    }
}

/// `synckit watch`: what `pull` prints, then every change as it arrives, until Ctrl-C.
pub async fn watch(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let watched = async {
        let (client, device) = (&logged_in.client, logged_in.profile.device_id);
        logged_in.unlock().await?;
        let mut live = client.live(device, client.load_cursor(device)?);
        loop {
            let page = tokio::select! {
                page = live.next() => page,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let Some(page) = page else { return Ok(()) };
            let page = page?;
            output::lines(&page.changes)?;
            // Saved once printed, as in pull.
            client.save_cursor(device, page.cursor)?;
        }
    };
    watched.await.map_err(|e: anyhow::Error| logged_in.explain(e))
}

/// `synckit status`: the size and head of the user's stream.
pub async fn status(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let status = logged_in.client.status().await.map_err(|e| logged_in.explain(e.into()))?;
    output::one(status)
}
