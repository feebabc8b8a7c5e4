//! SyncKit's load test: goose scenarios whose simulated users are real devices of real accounts. Each signs up (or
//! signs in as another device of its account), stores or fetches a real key envelope, registers a device and then
//! runs its scenario, encrypting every change and file with the SDK's own primitives, so the server handles real
//! ciphertext of realistic sizes.
//!
//! ```text
//! SYNCKIT_API_KEY=sk_… cargo run --release -p synckit-loadtest -- \
//!     --host http://127.0.0.1:8080 --scenarios live --users 200 --increase-rate 20 --run-time 60s \
//!     --report-file report.html --no-telnet
//! ```
//!
//! Every goose option works (`--report-file`, `--threshold`, `--test-plan`, …): see `loadtest/README.md`.
//!
//! # Layout
//! - [`options`]: the command line, goose's options and the load test's own ([`Settings`]).
//! - `device`: accounts and devices, set up through the API, and where key derivation is paid (`Fleet`).
//! - `scenarios`: `push`, `firstsync`, `steady`, `live` and `blobs`, one module each.
//! - `entries`: changes sealed and opened as the SDK seals and opens them.
//! - `api`: requests through goose under stable names (`POST push`), failing on any answer but a success.

mod api;
mod device;
mod entries;
pub mod options;
mod scenarios;

use std::sync::Arc;

use goose::prelude::*;

use device::Fleet;
pub use options::{Options, Settings};

/// The load test, configured and with every scenario registered, ready for goose to execute.
pub fn attack(options: Options) -> Result<GooseAttack, GooseError> {
    let fleet = Arc::new(Fleet::new(options.settings));
    let mut attack = GooseAttack::initialize_with_config(options.goose)?;
    for scenario in scenarios::all(&fleet)? {
        attack = attack.register_scenario(scenario);
    }
    Ok(attack)
}

/// Runs the load test to its end: goose's metrics, or its error (a threshold that failed, a bad option).
pub async fn run(options: Options) -> Result<GooseMetrics, GooseError> {
    attack(options)?.execute().await
}
