//! `firstsync`: a new device of an account with a history (`--history` entries of 1 KiB, pushed once per account)
//! pulls all of it page by page and decrypts every entry. Each iteration is one more new device; it is removed again
//! once it has synced, so that an account's devices do not pile up over a long run.

use std::sync::Arc;
use std::time::Instant;

use goose::prelude::*;
use synckit_protocol::limits::{MAX_PULL_LIMIT, MAX_PUSH_ENTRIES};
use synckit_protocol::paths;
use synckit_protocol::sync::{PullRequest, PullResponse, PushRequest, PushResponse};
use uuid::Uuid;

use super::push::ENTRY_BYTES;
use super::{Kind, session, set_up, step};
use crate::api::{Call, Failure, failure};
use crate::device::{Device, Fleet};
use crate::entries;

pub fn scenario(fleet: &Arc<Fleet>) -> Scenario {
    Scenario::new(Kind::FirstSync.name())
        .register_transaction(set_up(fleet, Kind::FirstSync))
        .register_transaction(step!(fleet, first_sync).set_name("first sync of a new device"))
}

async fn first_sync(fleet: &Fleet, user: &mut GooseUser) -> TransactionResult {
    let device = session(fleet, user, Kind::FirstSync).await?.device;
    let account = Arc::clone(&device.account);
    let (seeder, seeding) = (&mut *user, &*device);
    let history = *account.history.get_or_try_init(move || push_history(fleet, seeder, seeding)).await?;

    let (new_id, token) = fleet.new_device(user, &device, &format!("new-{}", Uuid::now_v7())).await?;
    let started = Instant::now();
    let (mut cursor, mut opened) = (0, 0u64);
    loop {
        let req = PullRequest { cursor, limit: Some(MAX_PULL_LIMIT) };
        let page: PullResponse =
            Call::new(GooseMethod::Post, paths::PULL, "pull").token(&token).json(&req).call(user).await?;
        opened += entries::open(&account, &page.entries)? as u64;
        cursor = page.cursor;
        if !page.has_more {
            break;
        }
    }
    let took = started.elapsed();
    let ok = opened == history;
    let name = format!("first sync of {history} entries");
    let error = format!("{name}: {opened} entries opened");
    user.record_custom_request_duration("SYNC", &name, took, ok, None, (!ok).then_some(error.as_str())).await?;

    let path = paths::device(new_id);
    Call::new(GooseMethod::Delete, &path, "device").token(&device.token).send(user).await?;
    if ok { Ok(()) } else { Err(failure(error)) }
}

/// Pushes the account's history, `--history` entries in batches of 500, once; the number of entries.
async fn push_history(fleet: &Fleet, user: &mut GooseUser, device: &Device) -> Result<u64, Failure> {
    let history = fleet.settings.history;
    let mut left = history;
    while left > 0 {
        let n = left.min(MAX_PUSH_ENTRIES as u64);
        let req =
            PushRequest { device_id: device.id, entries: entries::seal(&device.account, n as usize, ENTRY_BYTES) };
        let _: PushResponse = Call::new(GooseMethod::Post, paths::PUSH, "push history")
            .token(&device.token)
            .json(&req)
            .call(user)
            .await?;
        left -= n;
    }
    Ok(history)
}
