//! The scenarios, one module each, and what they share: the scenario kinds, the per-user session, and turning an
//! async function of the fleet and a user into a goose transaction.

pub mod blobs;
pub mod firstsync;
pub mod live;
pub mod push;
pub mod steady;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use goose::prelude::*;

use crate::api::Failure;
use crate::device::{Device, Fleet};

/// The scenarios, by the names `--scenarios` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Push,
    FirstSync,
    Steady,
    Live,
    Blobs,
}

impl Kind {
    /// The scenario's name: lowercase letters only, so that goose's machine name (which `--scenarios` matches) is
    /// the name itself.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Push => "push",
            Kind::FirstSync => "firstsync",
            Kind::Steady => "steady",
            Kind::Live => "live",
            Kind::Blobs => "blobs",
        }
    }

    /// Devices per account unless `--devices-per-account` says otherwise: one stream per device where a device
    /// works alone, several where devices exchange changes.
    pub fn devices_per_account(self) -> usize {
        match self {
            Kind::Push | Kind::FirstSync | Kind::Blobs => 1,
            Kind::Steady | Kind::Live => 4,
        }
    }
}

/// Every scenario, as goose runs them.
pub fn all(fleet: &Arc<Fleet>) -> Result<Vec<Scenario>, GooseError> {
    Ok(vec![
        push::scenario(fleet),
        firstsync::scenario(fleet),
        steady::scenario(fleet)?,
        live::scenario(fleet)?,
        blobs::scenario(fleet),
    ])
}

/// What a simulated user keeps between its transactions (goose's session data).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub device: Arc<Device>,
    /// The cursor of what this device has pulled (`steady`).
    pub cursor: Arc<AtomicU64>,
    /// The device's open event stream (`live`).
    pub stream: Option<Arc<live::EventStream>>,
}

/// The user's session, set up first if an earlier attempt failed (so that a failed set-up is retried and counted,
/// never a panic on missing session data).
pub(crate) async fn session(fleet: &Fleet, user: &mut GooseUser, kind: Kind) -> Result<Session, Failure> {
    if let Some(session) = user.get_session_data::<Session>() {
        return Ok(session.clone());
    }
    let device = Arc::new(fleet.join(user, kind).await?);
    let session = Session { device, cursor: Arc::default(), stream: None };
    user.set_session_data(session.clone());
    Ok(session)
}

/// A transaction that runs `$step(&fleet, user)`.
macro_rules! step {
    ($fleet:expr, $step:path) => {{
        let fleet = ::std::sync::Arc::clone($fleet);
        let function: ::goose::prelude::TransactionFunction = ::std::sync::Arc::new(move |user| {
            let fleet = ::std::sync::Arc::clone(&fleet);
            Box::pin(async move { $step(&fleet, user).await })
        });
        ::goose::prelude::Transaction::new(function)
    }};
}
pub(crate) use step;

/// The on-start transaction of scenario `kind`: sign up or in, unlock, register the device.
pub(crate) fn set_up(fleet: &Arc<Fleet>, kind: Kind) -> Transaction {
    let fleet = Arc::clone(fleet);
    let function: TransactionFunction = Arc::new(move |user| {
        let fleet = Arc::clone(&fleet);
        Box::pin(async move { session(&fleet, user, kind).await.map(drop) })
    });
    Transaction::new(function).set_name("set up device").set_on_start()
}
