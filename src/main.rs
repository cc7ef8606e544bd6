//! `squirrel`: reads `.env`, parses the command line, sets up telemetry, runs one subcommand, and
//! flushes telemetry before exiting, whatever the subcommand and however it ended (SIGTERM
//! included: `serve` returns normally after draining).

use clap::Parser;
use squirrel::cli::{self, Cli};

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Before any thread exists: dotenvy sets process environment variables.
    if let Err(err) = cli::load_env_file(&args) {
        eprintln!("error: {err:#}");
        return std::process::ExitCode::from(2);
    }
    let cli = Cli::parse_from(args);
    // Before the runtime: the exporters' threads get background priority as they start, which needs
    // no other thread starting meanwhile.
    let telemetry = match squirrel::telemetry::init(&cli.telemetry) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.command.async_workers())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            telemetry.shutdown();
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(cli::run(cli.command, &cli.telemetry));
    // Outside the runtime, so the flush's blocking waits can't stall it; bounded by
    // SQUIRREL_TELEMETRY_FLUSH_SECS, so a dead backend cannot hold the exit.
    telemetry.shutdown();
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core), and memory freed in one
/// arena is never reused by another: under ingest load that fragmentation was ~2 MB of RSS for no
/// speed. Two arenas serve two cores. `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
