//! Plans and prices, and their wire types. SyncKit is priced on what an app stores and may transfer, never per user
//! or per request, and the bill is known before the period starts. The server prices with this engine, and so can
//! anyone else: a quote is the same everywhere.
//!
//! A [`Plan`] is storage (in bytes; a GB is 10^9 bytes) and a burst: the transfer budget of a billing period is
//! burst × storage. Simple mode fixes the burst at [`SIMPLE_BURST`]; Builder mode lets the developer choose it in
//! [`BURST_RANGE`]. One engine prices both: per month, $0.15 per GB stored plus $0.03 per GB of transfer budget, so
//! `GB × (0.15 + 0.03 × burst)`, in exact integer arithmetic and rounded half up to the cent ([`Plan::monthly_price`]).
//! Billing periods are calendar months in UTC ([`Period`]).

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use time::{Month, OffsetDateTime};

/// Bytes in a GB, as SyncKit prices them.
pub const BYTES_PER_GB: u64 = 1_000_000_000;
/// The monthly price of a GB stored, in cents.
pub const STORAGE_CENTS_PER_GB: u64 = 15;
/// The monthly price of a GB of transfer budget, in cents.
pub const TRANSFER_CENTS_PER_GB: u64 = 3;
/// The burst of Simple mode.
pub const SIMPLE_BURST: u32 = 5;
/// The bursts Builder mode takes.
pub const BURST_RANGE: RangeInclusive<u32> = 1..=20;
/// The largest storage a plan has: 100,000 GB (100 TB).
pub const MAX_STORAGE_BYTES: u64 = 100_000 * BYTES_PER_GB;
/// A plan's storage is given in GB with at most this many decimals (a byte).
pub const GB_DECIMALS: usize = 9;

/// Storage and burst: what an app may store, and may transfer in a billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Plan {
    storage_bytes: u64,
    burst: u32,
}

/// Why a plan is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError(pub String);

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

impl Plan {
    /// A plan of `storage_bytes` (more than none, at most [`MAX_STORAGE_BYTES`]) and a burst in [`BURST_RANGE`].
    pub fn new(storage_bytes: u64, burst: u32) -> Result<Self, PlanError> {
        if storage_bytes == 0 || storage_bytes > MAX_STORAGE_BYTES {
            return Err(PlanError(format!(
                "storage must be more than 0 GB and at most {} GB",
                MAX_STORAGE_BYTES / BYTES_PER_GB
            )));
        }
        if !BURST_RANGE.contains(&burst) {
            return Err(PlanError(format!(
                "burst must be a whole number from {} to {}, not {burst}",
                BURST_RANGE.start(),
                BURST_RANGE.end()
            )));
        }
        Ok(Self { storage_bytes, burst })
    }

    /// A plan of `storage_gb` (decimal text, see [`parse_gb`]) and `burst`, or Simple mode's when `None`.
    pub fn from_gb(storage_gb: &str, burst: Option<u32>) -> Result<Self, PlanError> {
        Self::new(parse_gb(storage_gb)?, burst.unwrap_or(SIMPLE_BURST))
    }

    pub fn storage_bytes(&self) -> u64 {
        self.storage_bytes
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// What may be transferred in a billing period: burst × storage.
    pub fn transfer_bytes(&self) -> u64 {
        self.storage_bytes * u64::from(self.burst)
    }

    /// The price of a month: `GB × (0.15 + 0.03 × burst)` dollars, rounded half up to the cent.
    pub fn monthly_price(&self) -> Usd {
        let cents_per_gb = u128::from(STORAGE_CENTS_PER_GB + TRANSFER_CENTS_PER_GB * u64::from(self.burst));
        let scaled = u128::from(self.storage_bytes) * cents_per_gb;
        let per_gb = u128::from(BYTES_PER_GB);
        let cents = (scaled + per_gb / 2) / per_gb;
        Usd { cents: u64::try_from(cents).expect("at most 100,000 GB at 20x is far below u64::MAX cents") }
    }

    /// Whether moving from `current` to this plan lowers no limit: then it applies at once (a change that lowers
    /// storage or the transfer budget waits for the next period, so that nothing stored or used already is over a
    /// limit the period was not sold with).
    pub fn lowers_nothing_of(&self, current: &Plan) -> bool {
        self.storage_bytes >= current.storage_bytes && self.transfer_bytes() >= current.transfer_bytes()
    }
}

/// An amount in whole cents, shown as dollars with two decimals (`0.30`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd {
    cents: u64,
}

impl Usd {
    pub fn cents(&self) -> u64 {
        self.cents
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.cents / 100, self.cents % 100)
    }
}

/// Bytes from GB written as decimal text: digits, maybe a point and at most [`GB_DECIMALS`] more digits (`"50"`,
/// `"0.5"`, `"0.000001"`), exactly: no floating point on the way.
pub fn parse_gb(text: &str) -> Result<u64, PlanError> {
    let bad = || PlanError(format!("storage_gb must be a decimal number of GB such as 50 or 0.5, not {text:?}"));
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || (text.contains('.') && fraction.is_empty()) {
        return Err(bad());
    }
    if fraction.len() > GB_DECIMALS {
        return Err(PlanError(format!("storage_gb has at most {GB_DECIMALS} decimals (a byte), not {text:?}")));
    }
    let too_large = || PlanError(format!("storage must be at most {} GB", MAX_STORAGE_BYTES / BYTES_PER_GB));
    let whole: u64 = whole.parse().map_err(|_| too_large())?;
    let fraction: u64 = format!("{fraction:0<GB_DECIMALS$}").parse().map_err(|_| bad())?;
    whole.checked_mul(BYTES_PER_GB).and_then(|w| w.checked_add(fraction)).ok_or_else(too_large)
}

/// Bytes as GB in decimal text, as short as exact: `50`, `0.5`.
pub fn format_gb(bytes: u64) -> String {
    let (whole, fraction) = (bytes / BYTES_PER_GB, bytes % BYTES_PER_GB);
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0GB_DECIMALS$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// A billing period: a calendar month in UTC, written `2026-12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: i32,
    month: Month,
}

impl Period {
    /// The period `at` falls in.
    pub fn containing(at: OffsetDateTime) -> Self {
        let at = at.to_offset(time::UtcOffset::UTC);
        Self { year: at.year(), month: at.month() }
    }

    /// The period now.
    pub fn current() -> Self {
        Self::containing(OffsetDateTime::now_utc())
    }

    /// The period after this one.
    pub fn next(&self) -> Self {
        match self.month {
            Month::December => Self { year: self.year + 1, month: Month::January },
            month => Self { year: self.year, month: month.next() },
        }
    }

    /// The months since year 0 (`year × 12 + month − 1`): how the store keeps a period, in order.
    pub fn index(&self) -> i64 {
        i64::from(self.year) * 12 + i64::from(u8::from(self.month)) - 1
    }

    /// Its first day.
    pub fn first_day(&self) -> time::Date {
        time::Date::from_calendar_date(self.year, self.month, 1).expect("the first of a month is a date")
    }

    /// The period of [`index`](Self::index) `index`.
    pub fn from_index(index: i64) -> Self {
        let year = i32::try_from(index.div_euclid(12)).expect("a stored period is of a plausible year");
        let month = u8::try_from(index.rem_euclid(12) + 1).expect("1 to 12");
        Self { year, month: Month::try_from(month).expect("1 to 12 is a month") }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, u8::from(self.month))
    }
}

/// Storage in GB on the wire: a JSON number (`50`, `0.5`), or decimal text (`"0.5"`), read exactly
/// ([`parse_gb`]); written as an integer when it is one. Holds bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StorageGb(pub u64);

impl Serialize for StorageGb {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(BYTES_PER_GB) {
            serializer.serialize_u64(self.0 / BYTES_PER_GB)
        } else {
            // At most 100,000 GB in bytes is 14 digits: a double holds it, and prints it back as the same decimal.
            let gb: f64 = format_gb(self.0).parse().expect("a decimal parses as a double");
            serializer.serialize_f64(gb)
        }
    }
}

impl<'de> Deserialize<'de> for StorageGb {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = StorageGb;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of GB, such as 50 or 0.5")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<StorageGb, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<StorageGb, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<StorageGb, E> {
                // Display writes the shortest decimal that reads back as `v`, never an exponent.
                self.visit_str(&v.to_string())
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StorageGb, E> {
                parse_gb(v).map(StorageGb).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A price: `synckit-server admin quote` and `GET /api/apps/quote?storage_gb=…&burst=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub storage_gb: StorageGb,
    pub burst: u32,
    /// Dollars a month, two decimals.
    pub monthly_usd: String,
}

impl Quote {
    pub fn of(plan: &Plan) -> Self {
        Self {
            storage_gb: StorageGb(plan.storage_bytes()),
            burst: plan.burst(),
            monthly_usd: plan.monthly_price().to_string(),
        }
    }
}

/// A plan as the API shows it: its price and the limits it sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanTerms {
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub storage_gb: StorageGb,
    pub burst: u32,
    /// Dollars a month, two decimals.
    pub monthly_usd: String,
    pub storage_limit_bytes: u64,
    /// What may be transferred in a billing period: burst × storage.
    pub transfer_limit_bytes: u64,
}

impl PlanTerms {
    pub fn of(plan: &Plan) -> Self {
        let quote = Quote::of(plan);
        Self {
            storage_gb: quote.storage_gb,
            burst: quote.burst,
            monthly_usd: quote.monthly_usd,
            storage_limit_bytes: plan.storage_bytes(),
            transfer_limit_bytes: plan.transfer_bytes(),
        }
    }
}

/// A plan change that waits for a later billing period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScheduledPlan {
    #[serde(flatten)]
    pub terms: PlanTerms,
    /// The billing period it starts with (`2027-01`).
    pub from: String,
}

/// `GET` and `PUT /api/apps/{id}/plan`: the app's plan in this billing period, and a change waiting for the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppPlan {
    /// This billing period (`2026-12`).
    pub period: String,
    /// `null` while the app has no plan.
    pub current: Option<PlanTerms>,
    /// A change that lowers a limit, from the next period on.
    pub next: Option<ScheduledPlan>,
}

/// `PUT /api/apps/{id}/plan`: the plan to move to. Without `burst`, Simple mode's 5.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPlanRequest {
    /// GB stored, more than 0 and at most 100,000, with at most 9 decimals.
    #[cfg_attr(feature = "openapi", schema(value_type = f64, minimum = 0.000000001, maximum = 100000))]
    pub storage_gb: StorageGb,
    /// 1 to 20; 5 when left out (Simple mode).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 20))]
    pub burst: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(storage_gb: &str, burst: Option<u32>) -> String {
        Plan::from_gb(storage_gb, burst).unwrap().monthly_price().to_string()
    }

    #[test]
    fn the_published_examples_hold() {
        assert_eq!(price("1", None), "0.30");
        assert_eq!(price("50", None), "15.00");
        assert_eq!(price("200", None), "60.00");
        assert_eq!(price("1", Some(5)), "0.30", "Builder mode at 5x prices as Simple mode");
    }

    #[test]
    fn builder_mode_prices_its_burst_from_the_same_engine() {
        assert_eq!(price("10", Some(1)), "1.80"); // 10 × (0.15 + 0.03)
        assert_eq!(price("10", Some(20)), "7.50"); // 10 × (0.15 + 0.60)
        assert_eq!(price("100000", Some(20)), "75000.00");
        assert_eq!(Plan::from_gb("2", Some(3)).unwrap().transfer_bytes(), 6 * BYTES_PER_GB);
    }

    #[test]
    fn fractions_round_half_up_to_the_cent() {
        // 0.1 GB at 5x: 0.03 exactly.
        assert_eq!(price("0.1", None), "0.03");
        // 0.05 GB at 5x: 0.015, half a cent: up.
        assert_eq!(price("0.05", None), "0.02");
        // 0.049999999 GB at 5x: 0.01499999997: down.
        assert_eq!(price("0.049999999", None), "0.01");
        // One byte costs nothing a month.
        assert_eq!(price("0.000000001", None), "0.00");
        // 1.5 GB at 1x: 0.27.
        assert_eq!(price("1.5", Some(1)), "0.27");
    }

    #[test]
    fn storage_is_parsed_exactly_and_refused_clearly() {
        assert_eq!(parse_gb("0.5"), Ok(500_000_000));
        assert_eq!(parse_gb("0.000000001"), Ok(1));
        assert_eq!(parse_gb("007"), Ok(7 * BYTES_PER_GB));
        assert_eq!(format_gb(500_000_000), "0.5");
        assert_eq!(format_gb(7 * BYTES_PER_GB), "7");
        assert_eq!(format_gb(1), "0.000000001");
        for bad in ["", ".5", "5.", "-1", "1e3", "1,5", " 1", "0x10", "1.2.3", "NaN"] {
            assert!(parse_gb(bad).unwrap_err().0.contains("decimal number"), "{bad:?}");
        }
        assert!(parse_gb("1.0000000001").unwrap_err().0.contains("at most 9 decimals"));
        assert!(parse_gb("99999999999999999999").unwrap_err().0.contains("at most 100000 GB"));
        assert!(Plan::from_gb("0", None).unwrap_err().0.contains("more than 0 GB"));
        assert!(Plan::from_gb("100000.000000001", None).unwrap_err().0.contains("at most 100000 GB"));
        assert!(Plan::from_gb("1", Some(0)).unwrap_err().0.contains("from 1 to 20"));
        assert!(Plan::from_gb("1", Some(21)).unwrap_err().0.contains("from 1 to 20"));
    }

    #[test]
    fn a_change_that_lowers_a_limit_is_told_apart() {
        let current = Plan::from_gb("10", Some(5)).unwrap();
        assert!(Plan::from_gb("20", Some(5)).unwrap().lowers_nothing_of(&current));
        assert!(Plan::from_gb("10", Some(5)).unwrap().lowers_nothing_of(&current));
        assert!(Plan::from_gb("25", Some(2)).unwrap().lowers_nothing_of(&current), "more storage, same transfer");
        assert!(!Plan::from_gb("20", Some(2)).unwrap().lowers_nothing_of(&current), "less transfer");
        assert!(!Plan::from_gb("5", Some(20)).unwrap().lowers_nothing_of(&current), "less storage");
    }

    #[test]
    fn storage_on_the_wire_is_exact() {
        let read = |json: &str| serde_json::from_str::<StorageGb>(json).map(|gb| gb.0).map_err(|e| e.to_string());
        assert_eq!(read("50"), Ok(50 * BYTES_PER_GB));
        assert_eq!(read("0.1"), Ok(100_000_000));
        assert_eq!(read("\"0.000000001\""), Ok(1));
        assert!(read("-1").unwrap_err().contains("decimal number"));
        assert!(read("0.0000000001").unwrap_err().contains("at most 9 decimals"));
        assert_eq!(serde_json::to_string(&StorageGb(50 * BYTES_PER_GB)).unwrap(), "50");
        assert_eq!(serde_json::to_string(&StorageGb(500_000_001)).unwrap(), "0.500000001");
        assert_eq!(serde_json::to_string(&StorageGb(MAX_STORAGE_BYTES - 1)).unwrap(), "99999.999999999");
        let quote = Quote::of(&Plan::from_gb("1", None).unwrap());
        assert_eq!(serde_json::to_string(&quote).unwrap(), r#"{"storage_gb":1,"burst":5,"monthly_usd":"0.30"}"#);
    }

    #[test]
    fn periods_are_utc_months() {
        let at = time::macros::datetime!(2026-12-31 23:30 -02:00);
        let period = Period::containing(at);
        assert_eq!(period.to_string(), "2027-01", "01:30 UTC on the first");
        assert_eq!(Period::containing(time::macros::datetime!(2026-12-31 23:59 UTC)).next(), period);
        assert_eq!(period.next().to_string(), "2027-02");
        assert_eq!(Period::from_index(period.index()), period);
        assert!(period.next().index() == period.index() + 1);
    }
}
