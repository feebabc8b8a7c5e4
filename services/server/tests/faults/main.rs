//! The fault suite: real processes stopped and started under a real workload, and the outcome counted.
//!
//! Each test is one scenario. It starts what it needs as processes of its own (the `synckit-server` binary, a
//! private Postgres made with `initdb`, a private `nats-server`; never the shared ones other tests use), drives it
//! with SDK clients (writers pushing in a loop, devices in live sync), injects the fault, and then reads the whole
//! stream back. It prints one line, `fault NAME: pushes=… acknowledged=… lost=0 duplicated=0 unrecovered=0 (…)`,
//! and fails if any of those three counts is not zero:
//! - lost: changes of acknowledged pushes (or blobs of acknowledged uploads) that the store does not give back;
//! - duplicated: changes stored more than once, or handed to a live-sync device more than once;
//! - unrecovered: writers with no push acknowledged after the fault, and live-sync devices that do not hold every
//!   stored change within 20 s of the last push, with no help from the test.
//!
//! The scenarios run one at a time (a nextest test group, and [`serial`] under `cargo test`). See docs/faults.md.
//!
//! # Layout
//! - [`procs`]: the processes: [`procs::OwnPostgres`], [`procs::OwnNats`], [`procs::ServerProcess`].
//! - [`workload`]: the SDK clients and the counting.
//! - one module per scenario: [`postgres_restart`], [`nats_restart`], [`server_kill`], [`s3_unreachable`].

mod nats_restart;
mod postgres_restart;
mod procs;
mod s3_unreachable;
#[path = "../common/sdk_device.rs"]
mod sdk_device;
mod server_kill;
mod workload;

/// One scenario at a time, whatever runs the tests: they load the machine on purpose, and timing matters to them.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}
