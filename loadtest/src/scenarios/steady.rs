//! `steady`: devices of one account (4 by default) each push a few small changes (1 to 5 entries of 256 B) every
//! `--interval-ms`, and pull and decrypt whatever the account's devices pushed since their last pull.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use goose::prelude::*;
use synckit::crypto::random_bytes;
use synckit_protocol::limits::MAX_PULL_LIMIT;
use synckit_protocol::paths;
use synckit_protocol::sync::{PullRequest, PullResponse, PushRequest, PushResponse};

use super::{Kind, Session, session, set_up, step};
use crate::api::Call;
use crate::device::Fleet;
use crate::entries;

/// Plaintext bytes of each small change.
pub const SMALL_ENTRY_BYTES: usize = 256;

pub fn scenario(fleet: &Arc<Fleet>) -> Result<Scenario, GooseError> {
    let interval = Duration::from_millis(fleet.settings.interval_ms);
    Ok(Scenario::new(Kind::Steady.name())
        .set_wait_time(interval, interval)?
        .register_transaction(set_up(fleet, Kind::Steady))
        .register_transaction(step!(fleet, change_and_pull).set_name("push a few changes, pull the others'")))
}

async fn change_and_pull(fleet: &Fleet, user: &mut GooseUser) -> TransactionResult {
    let session = session(fleet, user, Kind::Steady).await?;
    let device = &session.device;
    let count = 1 + usize::from(random_bytes::<1>()[0] % 5);
    let req = PushRequest { device_id: device.id, entries: entries::seal(&device.account, count, SMALL_ENTRY_BYTES) };
    let _: PushResponse =
        Call::new(GooseMethod::Post, paths::PUSH, "push").token(&device.token).json(&req).call(user).await?;
    pull_all(user, &session).await
}

/// Pulls and decrypts everything of the account past the device's cursor, page by page, and moves the cursor.
pub(crate) async fn pull_all(user: &mut GooseUser, session: &Session) -> TransactionResult {
    let device = &session.device;
    let mut cursor = session.cursor.load(Ordering::Relaxed);
    loop {
        let req = PullRequest { cursor, limit: Some(MAX_PULL_LIMIT) };
        let page: PullResponse =
            Call::new(GooseMethod::Post, paths::PULL, "pull").token(&device.token).json(&req).call(user).await?;
        entries::open(&device.account, &page.entries)?;
        cursor = page.cursor;
        session.cursor.store(cursor, Ordering::Relaxed);
        if !page.has_more {
            return Ok(());
        }
    }
}
