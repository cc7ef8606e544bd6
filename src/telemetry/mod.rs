//! Telemetry: logs now, OpenTelemetry traces and metrics to Axiom or any OTLP backend (issue 3).
//!
//! Set up once by `main` (and once per test process); nothing else installs global state. Span names
//! and attribute keys come from [`names`].

pub mod names;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Log line format, `SQUIRREL_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logging and tracing settings.
#[derive(Debug, Clone, clap::Args)]
pub struct TelemetryConfig {
    /// `text` for people, `json` for log shippers.
    #[arg(long, env = "SQUIRREL_LOG_FORMAT", default_value = "text", value_enum, global = true)]
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax.
    #[arg(long, env = "SQUIRREL_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// Installs the global subscriber. Call once per process.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log)
        .map_err(|err| anyhow::anyhow!("SQUIRREL_LOG must be a log filter like `info` or `squirrel=debug`: {err}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    match config.log_format {
        // Colours only for a person at a terminal; log files and pipes get plain text.
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
        LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).try_init()?
        }
    }
    Ok(())
}
