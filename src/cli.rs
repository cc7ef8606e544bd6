//! The `squirrel` command line: one subcommand per task, each a thin call into the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::accounts;
use crate::app::{App, shutdown_signal};
use crate::config::{Config, StoreConfig};
use crate::store::Store;
use crate::telemetry::TelemetryConfig;

#[derive(Debug, Parser)]
#[command(name = "squirrel", version, about = "Squirrel Stats: privacy-friendly, cookieless web analytics")]
pub struct Cli {
    /// Read settings from this file (KEY=VALUE lines) instead of `./.env`. The real environment wins.
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start and matched once: the size of `Serve`'s settings costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server: tracking, API and dashboard.
    Serve(Config),
    /// Create or upgrade the database schema, then exit.
    Migrate(StoreConfig),
    /// Create a user account.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Create a site for an existing user; prints the site identifier on the last line.
    CreateSite {
        /// The owner's email.
        #[arg(long)]
        owner: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// List every site with owner, identifier, id and stored pageviews (bots excluded).
    Sites {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Print the telemetry export settings, send one test span, and report whether the backend
    /// (Axiom or any OTLP endpoint) accepted it; exits non-zero with the reason when it did not.
    TelemetryCheck,
    /// GET a health endpoint; exit 0 on a 2xx answer, 1 otherwise (the container's `HEALTHCHECK`:
    /// the final image has no curl).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8000/health/live")]
        url: String,
        /// Check the job queue instead (for `workers`): Redis answers and a worker is registered.
        #[arg(long, conflicts_with = "url")]
        queue: bool,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
        #[command(flatten)]
        redis: crate::config::RedisConfig,
    },
    /// Background jobs: aggregate-*, queue-*, worker, workers, monitor-queue-health.
    #[command(flatten)]
    Jobs(crate::jobs::commands::JobCommand),
}

impl Command {
    /// Async worker threads for this command; `TOKIO_WORKER_THREADS` wins, as in any Tokio program.
    ///
    /// `serve` on SQLite: one per core but one. The other core is the ingest writer's (a thread of
    /// its own, busy whenever tracking is) and SQLite's; on 2 cores two async workers fought the
    /// writer for CPU, and one served ~16 % more tracking hits with less CPU (bench/README.md).
    /// On PostgreSQL the statistics passes compute on the async workers between queries, so tracking
    /// keeps a worker of its own meanwhile: one per core, Tokio's default, as every other command.
    pub fn async_workers(&self) -> usize {
        if let Some(n) = std::env::var("TOKIO_WORKER_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok())
            && n > 0
        {
            return n;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match self {
            Command::Serve(config)
                if crate::store::Dialect::from_url(&config.store.database_url)
                    == Some(crate::store::Dialect::Sqlite) =>
            {
                cores.saturating_sub(1).max(1)
            }
            _ => cores,
        }
    }
}

/// Loads `--env-file FILE` (an error if missing) or `./.env` (if present) into the environment,
/// before clap reads it. Variables already set are kept. Must run before any thread starts.
pub fn load_env_file(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let mut explicit = None;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let arg = arg.to_string_lossy();
        if arg == "--env-file" {
            explicit = iter.next().map(PathBuf::from);
        } else if let Some(path) = arg.strip_prefix("--env-file=") {
            explicit = Some(PathBuf::from(path));
        }
    }
    match explicit {
        Some(path) => {
            dotenvy::from_path(&path).with_context(|| format!("reading --env-file {}", path.display()))?;
        }
        None => match dotenvy::dotenv() {
            Ok(_) => {}
            Err(err) if err.not_found() => {}
            Err(err) => return Err(err).context("reading ./.env"),
        },
    }
    Ok(())
}

pub async fn run(command: Command, telemetry: &TelemetryConfig) -> anyhow::Result<()> {
    match command {
        Command::TelemetryCheck => crate::telemetry::check::run(telemetry).await,
        Command::Serve(config) => serve(config).await,
        Command::Healthcheck { url, queue, timeout, redis } => {
            let timeout = std::time::Duration::from_secs(timeout);
            if queue {
                crate::jobs::commands::check_queue_health(&redis, timeout).await
            } else {
                healthcheck(&url, timeout).await
            }
        }
        Command::Jobs(command) => crate::jobs::commands::run(command).await,
        Command::Migrate(store) => {
            let store = Store::connect(&store).await.context("opening the database")?;
            store.close().await;
            println!("Migrations applied");
            Ok(())
        }
        Command::CreateUser { email, password, store } => {
            let store = Store::connect(&store).await.context("opening the database")?;
            let user = accounts::create_user(&store, &email, &password).await?;
            store.close().await;
            println!("Created user {} (id {})", user.email, user.id);
            Ok(())
        }
        Command::CreateSite { owner, name, store } => {
            let store = Store::connect(&store).await.context("opening the database")?;
            let site = accounts::create_site(&store, &owner, &name).await?;
            store.close().await;
            println!("Created site \"{}\" (id {}) for {}", site.name, site.uuid, owner.trim());
            println!("{}", site.identifier);
            Ok(())
        }
        Command::Sites { json, store } => {
            let store = Store::connect(&store).await.context("opening the database")?;
            let sites = store.all_sites().await?;
            store.close().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&sites)?);
            } else {
                print_sites_table(&sites);
            }
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    tracing::info!(addr = %app.local_addr(), backend = app.store().dialect().system_name(), "squirrel serving");
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; finishing in-flight requests and pending writes");
        trigger.cancel();
    });
    app.run_until_stopped(stop).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

async fn healthcheck(url: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().timeout(timeout).build().context("building the HTTP client")?;
    let response = client.get(url).send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "GET {url}: {status}");
    println!("{url}: {status}");
    Ok(())
}

fn print_sites_table(sites: &[crate::store::SiteSummary]) {
    if sites.is_empty() {
        println!("No sites yet. Create one with: squirrel create-site --owner EMAIL --name NAME");
        return;
    }
    let width = |f: fn(&crate::store::SiteSummary) -> usize, title: &str| {
        sites.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let (wo, wi, wn) = (
        width(|s| s.owner.chars().count(), "OWNER"),
        width(|s| s.identifier.len(), "IDENTIFIER"),
        width(|s| s.name.chars().count(), "NAME"),
    );
    println!("{:<wo$}  {:<wi$}  {:<wn$}  {:<36}  PAGEVIEWS", "OWNER", "IDENTIFIER", "NAME", "ID");
    for s in sites {
        println!("{:<wo$}  {:<wi$}  {:<wn$}  {:<36}  {}", s.owner, s.identifier, s.name, s.id, s.pageview_count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_on_sqlite_leaves_a_core_to_the_ingest_writer() {
        if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
            panic!("unset TOKIO_WORKER_THREADS to run this test: it overrides what is checked here");
        }
        let cores = std::thread::available_parallelism().unwrap().get();
        let command = |args: &[&str]| Cli::try_parse_from([&["squirrel"], args].concat()).unwrap().command;
        let sqlite = command(&["serve", "--database-url", "sqlite://x.db"]);
        let postgres = command(&["serve", "--database-url", "postgres://u@localhost/db"]);
        let migrate = command(&["migrate", "--database-url", "sqlite://x.db"]);
        assert_eq!(sqlite.async_workers(), cores.saturating_sub(1).max(1));
        assert_eq!(postgres.async_workers(), cores);
        assert_eq!(migrate.async_workers(), cores);
    }
}
