//! `synckit`: SyncKit from a shell, for headless apps, scripts and support.
//!
//! Each profile directory is one device of one account: `synckit login` signs in, unlocks the encryption key and
//! registers the device there, and every later command resumes from it. Results go to stdout as JSON (one object,
//! or one object per line); messages and errors go to stderr, so a script can pipe stdout straight into `jq`.
//! Exit status: 0 done, 1 failed, 2 a usage error, 3 a pull that skipped entries it cannot read (see `errors.rs`).
//!
//! The unlocked key is kept in `<profile>/keys` (the SDK's `FileKeyStore`, owner-only files), which works on
//! headless machines and in CI. `--keychain` or `SYNCKIT_KEYCHAIN=1` at login keeps it in the OS keychain instead
//! (the SDK's `default_key_store`, which falls back to the same files where no keychain answers).
//!
//! # Layout
//! - `main.rs`: the command line (clap), dispatch, and how errors end the process.
//! - `profile.rs`: the profile directory and its `profile.json`.
//! - `password.rs`: passwords from the environment or a terminal prompt.
//! - `session.rs`: building the SDK client for a profile and resuming a saved login.
//! - `commands/`: one file per group of commands (account, sync, blobs, devices).
//! - `output.rs`: JSON on stdout; `errors.rs`: the one-line message an error ends with, and the exit status.

mod commands;
mod errors;
mod output;
mod password;
mod profile;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use uuid::Uuid;

/// SyncKit from the command line: end-to-end encrypted sync for headless apps and scripts.
///
/// Results are JSON on stdout; messages go to stderr. The password comes from SYNCKIT_PASSWORD, else a prompt
/// on the terminal; a new one (passwd) from SYNCKIT_NEW_PASSWORD, else two prompts. Variables in the environment
/// can be read by other processes of the same user: prefer the prompt where one is possible.
#[derive(Debug, Parser)]
#[command(name = "synckit", version, max_term_width = 110)]
struct Cli {
    /// The server's URL [default: http://127.0.0.1:8080]. After login the profile remembers it.
    #[arg(long, env = "SYNCKIT_SERVER", global = true, value_name = "URL")]
    server: Option<String>,

    /// The app's API key, from `synckit-server admin create-app`. Needed to log in; the profile remembers it.
    // The key must not show up in `--help` when it is set in the environment.
    #[arg(long, env = "SYNCKIT_API_KEY", global = true, value_name = "KEY", hide_env_values = true)]
    api_key: Option<String>,

    /// The profile directory: one device of one account [default: $XDG_CONFIG_HOME/synckit/default, else
    /// ~/.config/synckit/default].
    #[arg(long, env = "SYNCKIT_PROFILE", global = true, value_name = "DIR")]
    profile: Option<PathBuf>,

    /// At login, keep the unlocked key in the OS keychain instead of the file `<profile>/keys` (where no
    /// keychain answers, the file is used anyway). The profile remembers the choice.
    #[arg(
        long,
        env = "SYNCKIT_KEYCHAIN",
        global = true,
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    keychain: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an account with this email; the password is SYNCKIT_PASSWORD or asked twice. Prints {"user_id"}.
    Signup { email: String },

    /// Sign in, unlock the encryption key and register this profile as a device. Prints {"user_id", "app_id",
    /// "device_id"}.
    ///
    /// With --browser, sign in on the server's page in the browser instead (the one $BROWSER names, else the
    /// system's; the URL is printed on stderr too, for a remote shell). The app needs http://127.0.0.1/callback
    /// among its redirect URIs. The encryption key is still unlocked here, with the password (SYNCKIT_PASSWORD or
    /// a prompt), never on the page, which the server serves.
    Login {
        /// The account's email (not with --browser).
        #[arg(conflicts_with = "browser")]
        email: Option<String>,
        /// Sign in through the browser.
        #[arg(long)]
        browser: bool,
        /// With --browser, the app's OAuth client id [default: the server's answer for the API key].
        #[arg(long, env = "SYNCKIT_CLIENT_ID", value_name = "ID")]
        client_id: Option<String>,
        /// The device's name, unique per account: two profiles logged in under one name are one device and do
        /// not see each other's changes [default: this machine's host name].
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
    },

    /// Push one change to a row: an upsert of JSON, or with --delete a delete. The change goes into this profile's
    /// outbox first: when the server cannot be reached it waits there (said on stderr, exit status 0) until
    /// `synckit sync` or the next push sends it. Prints {"change_id", "pushed", "pending"}.
    // A negative number is JSON too.
    #[command(allow_negative_numbers = true)]
    Push {
        table: String,
        row_id: String,
        /// The row's new content, as JSON (required unless --delete).
        #[arg(value_parser = parse_json, conflicts_with = "delete")]
        json: Option<serde_json::Value>,
        /// Delete the row instead.
        #[arg(long)]
        delete: bool,
    },

    /// Print the changes other devices pushed since the last pull, one JSON object per line, and remember how
    /// far it got. Entries that cannot be read (altered, forged, or from a faulty device) are listed on stderr
    /// and skipped, and the exit status is then 3; the next pull starts after them.
    Pull,

    /// Like pull, then keep printing changes as other devices push them (live sync), until interrupted. Entries
    /// that cannot be read are listed on stderr as they pass.
    Watch,

    /// Push this profile's outbox, then print the changes other devices pushed since the last pull or sync, one
    /// JSON object per line, and say on stderr how many went each way. Entries that cannot be read are listed on
    /// stderr and skipped, and the exit status is then 3.
    Sync,

    /// Print the account's stream and this profile's outbox: {"change_count", "cursor", "pending"}.
    Status,

    /// Encrypted files, up to 500 MiB: upload one, or download one by id.
    Blob {
        #[command(subcommand)]
        action: BlobAction,
    },

    /// List the account's devices, one JSON object per line, or delete one.
    Devices {
        #[command(subcommand)]
        action: Option<DevicesAction>,
    },

    /// Change the account password (current: SYNCKIT_PASSWORD or a prompt; new: SYNCKIT_NEW_PASSWORD or two
    /// prompts). Other devices must log in again.
    Passwd,

    /// Make a new recovery key for the account, the one way back after a forgotten password (the password:
    /// SYNCKIT_PASSWORD or a prompt). Prints {"recovery_key"} once: store it safely. One made before stops working.
    RecoveryKey,

    /// Set a new password with the recovery key after a forgotten one (the key: SYNCKIT_RECOVERY_KEY or a prompt;
    /// the new password: SYNCKIT_NEW_PASSWORD or two prompts), and log this profile in as a device, as login does.
    /// Prints {"user_id", "app_id", "device_id", "recovery_key"}: the new recovery key, shown once, replaces the one
    /// used (if logging in fails after the recovery, {"recovery_key"} alone). Other devices must log in again.
    Recover {
        email: String,
        /// The device's name, as for login [default: this machine's host name].
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
    },

    /// Forget this profile's session and unlocked key.
    Logout,
}

#[derive(Debug, Subcommand)]
enum BlobAction {
    /// Encrypt and upload a file. Prints {"id", "size", "already_existed"}; the id downloads it on any device of
    /// the account.
    Put { file: PathBuf },
    /// Download and decrypt a blob into FILE, which is replaced only once the whole blob is verified. Prints
    /// {"id", "size", "path"}.
    Get { id: String, file: PathBuf },
    /// Delete a blob of this account in this app: it can no longer be downloaded on any device, and its bytes are
    /// removed from the store. Prints {"id", "deleted": true}.
    Rm { id: String },
}

#[derive(Debug, Subcommand)]
enum DevicesAction {
    /// Delete a device by id. Its changes stay; it can no longer push.
    Delete {
        #[arg(value_parser = parse_device_id)]
        id: Uuid,
    },
}

/// The options every command shares, resolved from flags and the environment.
#[derive(Debug)]
struct Globals {
    server: Option<String>,
    api_key: Option<String>,
    /// Resolved when a command needs it: signup does not, and works without a HOME.
    profile: Option<PathBuf>,
    keychain: bool,
}

impl Globals {
    fn profile_dir(&self) -> anyhow::Result<profile::ProfileDir> {
        profile::ProfileDir::resolve(self.profile.clone())
    }

    /// The server to sign up or log in to; later commands use the one their profile saved.
    fn server(&self) -> String {
        self.server.clone().unwrap_or_else(|| session::DEFAULT_SERVER.to_owned())
    }
}

fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("not valid JSON: {e}"))
}

fn parse_device_id(s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s).map_err(|_| "not a device id (a UUID, as `synckit devices` lists them)".to_owned())
}

fn main() -> ExitCode {
    // Usage errors exit here with status 2.
    let cli = Cli::parse();
    // Checked here rather than by clap, whose "required arguments were not provided" names one argument and not the
    // flag that stands in for it.
    if let Command::Push { json: None, delete: false, .. } = cli.command {
        usage_error("push", "push needs the row's JSON, or --delete to delete the row");
    }
    if let Command::Login { email: None, browser: false, .. } = cli.command {
        usage_error("login", "login needs the account's EMAIL, or --browser to sign in through the browser");
    }
    // One thread is plenty: the commands are sequential, and the SDK moves key derivation off it.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return errors::exit(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => errors::exit(e),
    }
}

/// Ends the process as clap ends it for a missing argument of `command`: the message, the usage, status 2.
fn usage_error(command: &str, message: &str) -> ! {
    let mut cli = Cli::command();
    cli.build();
    cli.find_subcommand_mut(command)
        .expect("a command of the CLI")
        .error(clap::error::ErrorKind::MissingRequiredArgument, message)
        .exit()
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let globals = Globals { server: cli.server, api_key: cli.api_key, profile: cli.profile, keychain: cli.keychain };
    use commands::{account, blobs, devices, sync};
    match cli.command {
        Command::Signup { email } => account::signup(&globals, &email).await,
        Command::Login { browser: true, client_id, device, .. } => {
            account::login_in_browser(&globals, client_id, device).await
        }
        // `main` refused a login with neither.
        Command::Login { email, device, .. } => {
            account::login(&globals, &email.expect("checked in main"), device).await
        }
        // clap leaves the JSON out exactly when --delete is given.
        Command::Push { table, row_id, json, .. } => sync::push(&globals, table, row_id, json).await,
        Command::Pull => sync::pull(&globals).await,
        Command::Watch => sync::watch(&globals).await,
        Command::Sync => sync::sync(&globals).await,
        Command::Status => sync::status(&globals).await,
        Command::Blob { action: BlobAction::Put { file } } => blobs::put(&globals, &file).await,
        Command::Blob { action: BlobAction::Get { id, file } } => blobs::get(&globals, &id, &file).await,
        Command::Blob { action: BlobAction::Rm { id } } => blobs::rm(&globals, &id).await,
        Command::Devices { action: None } => devices::list(&globals).await,
        Command::Devices { action: Some(DevicesAction::Delete { id }) } => devices::delete(&globals, id).await,
        Command::Passwd => account::passwd(&globals).await,
        Command::RecoveryKey => account::recovery_key(&globals).await,
        Command::Recover { email, device } => account::recover(&globals, &email, device).await,
        Command::Logout => account::logout(&globals).await,
    }
}
