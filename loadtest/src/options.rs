//! The command line: every goose option (`--host`, `--users`, `--scenarios`, `--report-file`, `--threshold`, …) and
//! the few of the load test's own.

use clap::Parser;
use goose::config::GooseConfiguration;

/// Goose's options and the load test's settings, parsed from one command line.
#[derive(Debug, Parser)]
#[command(
    name = "synckit-loadtest",
    about = "Load tests a SyncKit deployment with simulated devices that encrypt as the SDK does.",
    after_help = "Scenarios (--scenarios): push, firstsync, steady, live, blobs. The app's API key comes from \
                  SYNCKIT_API_KEY."
)]
pub struct Options {
    #[command(flatten)]
    pub goose: GooseConfiguration,
    #[command(flatten)]
    pub settings: Settings,
}

/// What the scenarios do, beyond what goose's own options say.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Entries in the history a new device pulls in `firstsync`, pushed once per account before its first sync.
    #[arg(long, default_value_t = 2_000, help_heading = "SyncKit")]
    pub history: u64,
    /// Simulated devices per account: devices of one account see each other's pushes. Default: 1 for push,
    /// firstsync and blobs; 4 for steady and live.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16), help_heading = "SyncKit")]
    pub devices_per_account: Option<u32>,
    /// Size of each file the `blobs` scenario uploads and downloads, in MiB.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=500), help_heading = "SyncKit")]
    pub blob_mib: u64,
    /// Milliseconds between one device's pushes in `steady` and `live`: with N users, about N * 1000 / this pushes
    /// a second in all.
    #[arg(long, default_value_t = 1_000, help_heading = "SyncKit")]
    pub interval_ms: u64,
    /// The app's API key: read from `SYNCKIT_API_KEY` by the binary, never from the command line (where other users
    /// of the machine would see it).
    #[arg(skip)]
    pub api_key: String,
}
