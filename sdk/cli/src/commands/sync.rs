//! The user's stream: push, pull, status.

use anyhow::{Result, bail};
use serde_json::json;
use synckit::{ChangeEntry, Undecryptable};

use crate::errors::Skipped;
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

/// `synckit pull`: every change other devices pushed since the last pull, one JSON line each. Entries that cannot
/// be read are reported on stderr as they are passed over, and the pull ends with [`Skipped`] (exit status 3).
pub async fn pull(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let skipped = pull_pages(&logged_in).await.map_err(|e| logged_in.explain(e))?;
    if skipped > 0 {
        return Err(Skipped(skipped).into());
    }
    Ok(())
}

/// Pulls and prints every page; returns how many entries it passed over.
async fn pull_pages(logged_in: &LoggedIn) -> Result<usize> {
    let (client, device) = (&logged_in.client, logged_in.profile.device_id);
    logged_in.unlock().await?;
    let mut cursor = client.load_cursor(device)?;
    let mut skipped = 0;
    loop {
        // The SDK leaves out this device's own changes; the cursor still moves past them.
        let page = client.pull(device, cursor).await?;
        output::lines(&page.changes)?;
        skipped += report(&page.undecryptable);
        // Saved once the page is printed: an interrupted pull prints a page again rather than skipping one.
        client.save_cursor(device, page.cursor)?;
        if page.has_more && page.cursor <= cursor {
            bail!("the server says more changes follow cursor {cursor} but returned none");
        }
        if !page.has_more {
            return Ok(skipped);
        }
        cursor = page.cursor;
    }
}

/// Says on stderr which entries were passed over, one line each, before the cursor moves past them: the only time
/// they are reported. Returns how many.
fn report(undecryptable: &[Undecryptable]) -> usize {
    for skipped in undecryptable {
        eprintln!("synckit: {skipped}");
    }
    undecryptable.len()
}

/// `synckit watch`: what `pull` prints, then every change as it arrives, until Ctrl-C. Entries that cannot be read
/// are reported on stderr as in pull.
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
            // Reported as they pass, and watching goes on: a long-running watch has no single result for an exit
            // status to qualify.
            report(&page.undecryptable);
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
