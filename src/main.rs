//! `squirrel`: reads `.env`, parses the command line, sets up telemetry and runs one subcommand.

use clap::Parser;
use squirrel::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Before any thread exists: dotenvy sets process environment variables.
    if let Err(err) = cli::load_env_file(&args) {
        eprintln!("error: {err:#}");
        return std::process::ExitCode::from(2);
    }
    let cli = Cli::parse_from(args);
    if let Err(err) = squirrel::telemetry::init(&cli.telemetry) {
        eprintln!("error: {err:#}");
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
