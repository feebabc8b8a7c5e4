//! The usage port: what each stream stores and transfers, as the plans' limits and the bills need it.
//!
//! Stored bytes are kept per stream by the writes that change them, in the same transaction: an append adds the
//! payloads it stored (a retried change id adds nothing), a blob's first confirmation adds its size, and deleting a
//! confirmed blob takes it off. Transferred bytes are kept per stream and UTC day: an append records the payloads
//! it stored, a blob's first confirmation its size, and [`UsageStore::record_transfer`] what the services counted
//! themselves (pulls, downloads). Each day's net change of stored bytes is kept beside its transfer, so the stored
//! bytes at any day's end are now's less the changes since. Days that have passed are never written again, so a past
//! period's usage never changes.

use async_trait::async_trait;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::{PlanRecord, StoreError, StreamId};

/// A UTC day as the store keeps it: days since 1970-01-01.
pub type Day = i32;

/// The UTC day `date` is.
pub fn day_of(date: Date) -> Day {
    date.to_julian_day() - Date::from_calendar_date(1970, time::Month::January, 1).expect("a date").to_julian_day()
}

/// The date of `day`.
pub fn date_of(day: Day) -> Date {
    let epoch = Date::from_calendar_date(1970, time::Month::January, 1).expect("a date").to_julian_day();
    Date::from_julian_day(epoch + day).expect("a stored day is a plausible date")
}

/// Today, in UTC.
pub fn today() -> Day {
    day_of(OffsetDateTime::now_utc().date())
}

/// Bytes one stream transferred on one day, to add to what is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    pub stream: StreamId,
    pub day: Day,
    pub bytes: u64,
}

/// What an app's limits are checked against: its plan, what it stores now and what it transferred since a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub plan: Option<PlanRecord>,
    pub stored_bytes: u64,
    pub transfer_bytes: u64,
}

/// One user's usage in an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBytes {
    pub user_id: Uuid,
    pub stored_bytes: u64,
    pub transfer_bytes: u64,
}

/// One day of an app's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayBytes {
    pub day: Day,
    /// Bytes stored at the day's end (today: now).
    pub stored_bytes: u64,
    pub transfer_bytes: u64,
}

/// An app's usage since a day: now's stored bytes, and the transfer since then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppBytes {
    pub stored_bytes: u64,
    pub transfer_bytes: u64,
    /// Each user that stores anything or transferred anything since the day, in no particular order.
    pub users: Vec<UserBytes>,
    /// Each day from the first asked for through `until`, in order, days without traffic included.
    pub days: Vec<DayBytes>,
}

/// Stored and transferred bytes, per stream and day.
#[async_trait]
pub trait UsageStore: Send + Sync + 'static {
    /// Adds transfers the services counted (pulls, downloads). Several of one stream and day add up.
    async fn record_transfer(&self, transfers: Vec<Transfer>) -> Result<(), StoreError>;

    /// The app's plan, its stored bytes now, and its transfer from day `since` on. Cheap: read on the sync path.
    async fn standing(&self, app_id: Uuid, since: Day) -> Result<Standing, StoreError>;

    /// The app's usage from day `since` through day `until`, per user and per day.
    async fn app_usage(&self, app_id: Uuid, since: Day, until: Day) -> Result<AppBytes, StoreError>;
}

impl std::fmt::Debug for dyn UsageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn UsageStore")
    }
}

/// An app's usage from what an adapter read in one snapshot: each stream's stored bytes now (`stored`, by user), and
/// each (day, user) row from day `since` on (`days`: transfer and net change of stored bytes), later days included.
/// The stored bytes at each day's end are worked back from now's. What every adapter's [`UsageStore::app_usage`]
/// answers.
pub fn app_bytes(stored: &[(Uuid, u64)], days: &[(Day, Uuid, u64, i64)], since: Day, until: Day) -> AppBytes {
    let mut users: std::collections::BTreeMap<Uuid, UserBytes> = stored
        .iter()
        .map(|&(user_id, stored_bytes)| (user_id, UserBytes { user_id, stored_bytes, transfer_bytes: 0 }))
        .collect();
    for &(_, user_id, transfer, _) in days.iter().filter(|(day, _, transfer, _)| *day <= until && *transfer > 0) {
        users.entry(user_id).or_insert(UserBytes { user_id, stored_bytes: 0, transfer_bytes: 0 }).transfer_bytes +=
            transfer;
    }
    let stored_now: u64 = users.values().map(|u| u.stored_bytes).sum();
    // Changes after `until` happened after every day asked for.
    let mut stored = i128::from(stored_now)
        - days.iter().filter(|(day, ..)| *day > until).map(|&(.., delta)| i128::from(delta)).sum::<i128>();
    let mut per_day = Vec::new();
    for day in (since..=until).rev() {
        let of_day = days.iter().filter(|(d, ..)| *d == day);
        let transfer_bytes = of_day.clone().map(|&(_, _, transfer, _)| transfer).sum();
        per_day.push(DayBytes { day, stored_bytes: u64::try_from(stored.max(0)).unwrap_or(u64::MAX), transfer_bytes });
        stored -= of_day.map(|&(.., delta)| i128::from(delta)).sum::<i128>();
    }
    per_day.reverse();
    AppBytes {
        stored_bytes: stored_now,
        transfer_bytes: per_day.iter().map(|d| d.transfer_bytes).sum(),
        users: users.into_values().collect(),
        days: per_day,
    }
}
