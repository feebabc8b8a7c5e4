//! The user's stream: push (through the outbox), sync, pull, watch, status.

use anyhow::{Result, bail};
use serde_json::json;
use synckit::{ChangeEntry, Undecryptable};

use crate::errors::Skipped;
use crate::session::LoggedIn;
use crate::{Globals, output};

/// `synckit push TABLE ROW_ID JSON` (an upsert) or `synckit push TABLE ROW_ID --delete`: the change goes into the
/// profile's outbox, then the outbox is pushed. When the server cannot be reached the change waits there (said on
/// stderr) and the command still succeeds: `synckit sync`, or the next push, sends it. Prints {"change_id",
/// "pushed", "pending"}.
pub async fn push(globals: &Globals, table: String, row_id: String, data: Option<serde_json::Value>) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let (client, device) = (&logged_in.client, logged_in.profile.device_id);
    let change = match data {
        Some(data) => ChangeEntry::upsert(table, row_id, data),
        None => ChangeEntry::delete(table, row_id),
    };
    let queued = async {
        logged_in.unlock().await?;
        Ok(client.enqueue([change]).await?)
    };
    let change_id = queued.await.map_err(|e| logged_in.explain(e))?[0];
    // The pull cursor stays where it is: changes other devices pushed before this one are still to be pulled.
    let pushed = match client.push_outbox(device).await {
        Ok(pushed) => pushed,
        Err(e) if e.is_retryable() => {
            let pending = client.pending().await?;
            eprintln!(
                "synckit: not sent now ({e}); it waits in this profile's outbox, which holds {}: synckit sync sends \
                 them",
                changes(pending)
            );
            0
        }
        // A deleted device's token is refused; `explain` says to log in again, which registers the profile anew.
        Err(e) => return Err(logged_in.explain(e.into())),
    };
    output::one(json!({ "change_id": change_id, "pushed": pushed, "pending": client.pending().await? }))
}

/// `synckit sync`: pushes the outbox, then prints every change other devices pushed since the last pull or sync,
/// one JSON line each, saving the cursor after each page, and says on stderr what it did. Entries that cannot be
/// read are reported as `pull` reports them (exit status 3).
pub async fn sync(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let synced = async {
        let (client, device) = (&logged_in.client, logged_in.profile.device_id);
        logged_in.unlock().await?;
        let report = client
            .sync(device, |page| {
                let others = page.changes.iter().filter(|c| c.device_id != device).map(|c| &c.change);
                output::lines(others)?;
                report(&page.undecryptable);
                Ok(())
            })
            .await?;
        eprintln!(
            "synckit: pushed {}, pulled {}{}, {} pending",
            changes(report.pushed),
            changes(report.pulled),
            match report.undecryptable.len() {
                0 => String::new(),
                n => format!(", skipped {n} that cannot be read"),
            },
            report.pending
        );
        Ok(report.undecryptable.len())
    };
    let skipped = synced.await.map_err(|e: anyhow::Error| logged_in.explain(e))?;
    if skipped > 0 {
        return Err(Skipped(skipped).into());
    }
    Ok(())
}

/// "1 change", "3 changes".
fn changes(n: u64) -> String {
    if n == 1 { "1 change".to_owned() } else { format!("{n} changes") }
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

/// `synckit status`: the size and head of the user's stream, and how many changes of this profile wait in its
/// outbox. When the server cannot be reached it fails, saying how many wait.
pub async fn status(globals: &Globals) -> Result<()> {
    let logged_in = LoggedIn::open(globals)?;
    let client = &logged_in.client;
    let pending = client.pending().await?;
    let status = match client.status().await {
        Ok(status) => status,
        Err(e) if e.is_retryable() => {
            return Err(anyhow::Error::new(e)
                .context(format!("the server cannot be reached; {} wait in the outbox", changes(pending))));
        }
        Err(e) => return Err(logged_in.explain(e.into())),
    };
    output::one(json!({ "change_count": status.change_count, "cursor": status.cursor, "pending": pending }))
}
