//! `synckit-server`: run the server, apply migrations, or administer a deployment.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use synckit_server::settings::{FlagOverrides, Role, Settings};
use synckit_server::{Engines, Server, admin, gateway, telemetry};
use tokio::net::TcpListener;

/// End-to-end encrypted sync server. With no arguments, serves every service on the embedded default.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file of settings (sections as in docs/operations.md: `[blob] url_expiry_secs = 300`).
    #[arg(long, global = true, env = "SYNCKIT_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory of the embedded default [default: ./synckit-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Run only one service [default: all].
    #[arg(long, global = true, value_enum)]
    role: Option<Role>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Administer the deployment.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print the configuration of a gateway (a Caddyfile, for Caddy 2.6 or later) that listens on `--listen` and
    /// routes each path to the instances of the role that serves it, with health checks on their `/readyz`.
    Gateway(GatewayArgs),
}

/// The instances of each role, as `host:port` lists.
#[derive(Debug, clap::Args)]
struct GatewayArgs {
    /// Instances of the auth role.
    #[arg(long, value_delimiter = ',', required = true)]
    auth: Vec<String>,
    /// Instances of the ingest role.
    #[arg(long, value_delimiter = ',', required = true)]
    ingest: Vec<String>,
    /// Instances of the query role.
    #[arg(long, value_delimiter = ',', required = true)]
    query: Vec<String>,
    /// Instances of the blob role.
    #[arg(long, value_delimiter = ',', required = true)]
    blob: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an app with no owner; prints {"app_id", "api_key", "client_id"} as JSON on stdout. The API key is
    /// shown this once.
    CreateApp {
        #[arg(long)]
        name: String,
        /// Where OAuth may send a user back to: https, http on loopback, or a private-use scheme such as
        /// com.example.app:/callback. Repeat for each.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
    },
    /// List every app of the deployment as JSON on stdout ({"apps": [...]}), without secrets.
    ListApps,
    /// Give an app a new API key, printed as {"app_id", "api_key"}; the one before stops working at once.
    RotateKey { app_id: uuid::Uuid },
    /// Print the monthly price of a plan as {"storage_gb", "burst", "monthly_usd"}: $0.15 per GB stored plus $0.03
    /// per GB of transfer budget (burst x storage). Reads no database.
    Quote {
        /// GB stored (10^9 bytes), more than 0 and at most 100000, with at most 9 decimals.
        #[arg(long, value_name = "G")]
        storage_gb: String,
        /// The transfer budget as a multiple of storage, 1 to 20 [default: 5, Simple mode].
        #[arg(long, value_name = "B")]
        burst: Option<u32>,
    },
    /// Put an app on a plan at once (fractions of a GB allowed, for tests and trials); prints the app's plan.
    SetPlan {
        #[arg(long, value_name = "ID")]
        app: uuid::Uuid,
        /// GB stored (10^9 bytes), more than 0 and at most 100000, with at most 9 decimals.
        #[arg(long, value_name = "G")]
        storage_gb: String,
        /// The transfer budget as a multiple of storage, 1 to 20 [default: 5, Simple mode].
        #[arg(long, value_name = "B")]
        burst: Option<u32>,
    },
    /// Print an app's usage this billing period as {"period", "stored_bytes", "transfer_bytes",
    /// "storage_limit_bytes", "transfer_limit_bytes"} (limits null without a plan).
    Usage {
        #[arg(long, value_name = "ID")]
        app: uuid::Uuid,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        // Needs no settings: it prints configuration for another program.
        Some(Command::Gateway(args)) => return gateway(cli.listen, &args),
        Some(command) => command,
        None => Command::Serve,
    };
    let flags = FlagOverrides { listen: cli.listen, data_dir: cli.data_dir.clone(), role: cli.role };
    let settings = match Settings::load(cli.config.as_deref(), &flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("synckit-server: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // Before the runtime: the exporters' HTTP client runs one of its own, which cannot be made inside another.
    let telemetry = match telemetry::init(settings.log_format, settings.role) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("synckit-server: bad configuration: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let code = match runtime.block_on(run(command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("synckit-server: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Tasks still running end with the runtime, and their spans with them; then the last spans and metrics go out.
    drop(runtime);
    telemetry.shutdown();
    code
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            raise_open_file_limit(settings.serve.max_connections);
            let server = Server::build(&settings).await?;
            let listener = TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("listening on {}", settings.listen))?;
            tracing::info!(addr = %listener.local_addr()?, role = ?settings.role, "synckit-server listening");
            server.run(listener, shutdown_signal()).await;
            Ok(())
        }
        Command::Migrate => {
            Engines::open_storage(&settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Admin(AdminCommand::Quote { storage_gb, burst }) => {
            println!("{}", serde_json::to_string(&admin::quote(&storage_gb, burst)?)?);
            Ok(())
        }
        Command::Admin(command) => {
            let stores = Engines::open_storage(&settings).await?;
            let accounts = &*stores.accounts;
            let printed = match command {
                AdminCommand::CreateApp { name, redirect_uris } => {
                    serde_json::to_string(&admin::create_app(accounts, &name, &redirect_uris).await?)?
                }
                AdminCommand::ListApps => serde_json::to_string(&admin::list_apps(accounts).await?)?,
                AdminCommand::RotateKey { app_id } => {
                    serde_json::to_string(&admin::rotate_key(accounts, app_id).await?)?
                }
                AdminCommand::SetPlan { app, storage_gb, burst } => {
                    serde_json::to_string(&admin::set_plan(accounts, app, &storage_gb, burst).await?)?
                }
                AdminCommand::Usage { app } => {
                    serde_json::to_string(&admin::usage(accounts, &*stores.usage, app).await?)?
                }
                AdminCommand::Quote { .. } => unreachable!("quoted above, without storage"),
            };
            println!("{printed}");
            Ok(())
        }
        // Printed by `main` before any settings are read.
        Command::Gateway(_) => anyhow::bail!("the gateway configuration is printed without serving"),
    }
}

fn gateway(listen: Option<std::net::SocketAddr>, args: &GatewayArgs) -> ExitCode {
    let listen = listen.unwrap_or_else(|| Settings::default().listen);
    let upstreams = gateway::Upstreams {
        auth: args.auth.clone(),
        ingest: args.ingest.clone(),
        query: args.query.clone(),
        blob: args.blob.clone(),
    };
    match gateway::caddyfile(listen, &upstreams) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("synckit-server gateway: {e}");
            ExitCode::from(2)
        }
    }
}

/// Connections, SQLite, the Postgres pool and blob files all take file descriptors, and the soft limit is often a
/// small 1,024 under a far higher hard one; the server takes what it is allowed.
fn raise_open_file_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(limit, "open-file limit");
            if max_connections as u64 > limit / 2 {
                tracing::warn!(
                    limit,
                    max_connections,
                    "serve.max_connections is over half the open-file limit: connections could starve the databases \
                     and blob files of descriptors"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
