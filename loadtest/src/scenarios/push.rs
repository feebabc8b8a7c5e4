//! `push`: each device pushes batches of 500 entries of 1 KiB, one after the other, as fast as they are acknowledged.

use std::sync::Arc;

use goose::prelude::*;
use synckit_protocol::limits::MAX_PUSH_ENTRIES;
use synckit_protocol::paths;
use synckit_protocol::sync::{PushRequest, PushResponse};

use super::{Kind, session, set_up, step};
use crate::api::{Call, failure};
use crate::device::Fleet;
use crate::entries;

/// Plaintext bytes of each pushed entry (the serialised change; its payload is 40 bytes longer).
pub const ENTRY_BYTES: usize = 1024;

pub fn scenario(fleet: &Arc<Fleet>) -> Scenario {
    Scenario::new(Kind::Push.name())
        .register_transaction(set_up(fleet, Kind::Push))
        .register_transaction(step!(fleet, push_batch).set_name("push 500 x 1 KiB"))
}

async fn push_batch(fleet: &Fleet, user: &mut GooseUser) -> TransactionResult {
    let device = session(fleet, user, Kind::Push).await?.device;
    let req =
        PushRequest { device_id: device.id, entries: entries::seal(&device.account, MAX_PUSH_ENTRIES, ENTRY_BYTES) };
    let answer: PushResponse =
        Call::new(GooseMethod::Post, paths::PUSH, "push").token(&device.token).json(&req).call(user).await?;
    if answer.accepted as usize != MAX_PUSH_ENTRIES {
        return Err(failure(format!("push: {} of {MAX_PUSH_ENTRIES} new entries accepted", answer.accepted)));
    }
    Ok(())
}
