//! The jobs' subcommands, flattened into `cli::Command`: the original's management commands with
//! dashes (`aggregate-hourly-stats`, `queue-current-hour`, `worker`, …) plus `workers`, the whole
//! background process in one (with the hourly prune when `RETENTION_DAYS` is set), and `prune`. Each
//! is a thin call into the rest of `jobs`.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::aggregate::{self, DailyArgs, HourlyArgs};
use super::{DEFAULT_QUEUE, Dispatch, Queue, QueueSettings, Worker, monitor, retention, scheduler};
use crate::config::{RedisConfig, RetentionConfig, StoreConfig};
use crate::store::Store;

/// How often `workers` runs the health monitor.
const MONITOR_EVERY: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Recompute hourly rows (and sessions) from raw pageviews; default: the last 24 hours.
    AggregateHourlyStats {
        #[command(flatten)]
        args: HourlyArgs,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Recompute daily rows from raw pageviews; default: the last 30 days and today.
    AggregateDailyStats {
        #[command(flatten)]
        args: DailyArgs,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Queue (or, without REDIS_URL, run) every site's current-hour aggregation.
    QueueCurrentHour {
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        redis: RedisConfig,
    },
    /// Queue (or run) every site's current-day aggregation.
    QueueCurrentDay {
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        redis: RedisConfig,
    },
    /// Queue (or run) every hour of the last 7 days whose row is missing or out of date.
    QueueBackfillMissingHours {
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        redis: RedisConfig,
    },
    /// Queue (or run) every day of the last N days whose row is missing or out of date.
    QueueBackfillMissingDays {
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        redis: RedisConfig,
    },
    /// Run queued jobs until SIGTERM (or, with --burst, until the queue is empty).
    Worker {
        #[arg(long, default_value = DEFAULT_QUEUE)]
        queue: String,
        /// Exit 0 once no job is ready.
        #[arg(long)]
        burst: bool,
        /// Seconds a running job may go on after SIGTERM before it is put back on the queue.
        #[arg(long, env = "SQUIRREL_SHUTDOWN_GRACE", default_value_t = 30)]
        shutdown_grace_secs: u64,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        redis: RedisConfig,
    },
    /// The background process: a worker, the four schedulers and the queue health monitor.
    Workers {
        #[arg(long, default_value = DEFAULT_QUEUE)]
        queue: String,
        /// Seconds a running job may go on after SIGTERM before it is put back on the queue.
        #[arg(long, env = "SQUIRREL_SHUTDOWN_GRACE", default_value_t = 30)]
        shutdown_grace_secs: u64,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        redis: RedisConfig,
        #[command(flatten)]
        retention: RetentionConfig,
    },
    /// Delete raw pageviews older than RETENTION_DAYS after bringing their rollups up to date (rollups
    /// and sessions are kept); prints the cutoff and the count per site.
    Prune {
        /// Only print what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        retention: RetentionConfig,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Report queue length, failures and workers; status healthy/warning/overloaded/degraded/
    /// no_workers/error. Always exits 0 once it has reported.
    MonitorQueueHealth {
        #[arg(long, default_value = DEFAULT_QUEUE)]
        queue: String,
        #[arg(long)]
        verbose: bool,
        #[command(flatten)]
        redis: RedisConfig,
    },
}

pub async fn run(command: JobCommand) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    match command {
        JobCommand::AggregateHourlyStats { args, store } => {
            let store = Store::connect(&store).await.context("opening the database")?;
            let result = aggregate::hourly(&store, &args, Utc::now(), &mut stdout).await;
            store.close().await;
            result?;
        }
        JobCommand::AggregateDailyStats { args, store } => {
            let store = Store::connect(&store).await.context("opening the database")?;
            let result = aggregate::daily(&store, &args, Utc::now(), &mut stdout).await;
            store.close().await;
            result?;
        }
        JobCommand::QueueCurrentHour { store, redis } => {
            queue_command(scheduler::Schedule::CurrentHour, None, &store, &redis).await?;
        }
        JobCommand::QueueCurrentDay { store, redis } => {
            queue_command(scheduler::Schedule::CurrentDay, None, &store, &redis).await?;
        }
        JobCommand::QueueBackfillMissingHours { store, redis } => {
            queue_command(scheduler::Schedule::MissingHours, None, &store, &redis).await?;
        }
        JobCommand::QueueBackfillMissingDays { days, store, redis } => {
            queue_command(scheduler::Schedule::MissingDays, Some(days), &store, &redis).await?;
        }
        JobCommand::Worker { queue, burst, shutdown_grace_secs, store, redis } => {
            let queue = open_queue(&redis, &queue)?;
            println!("Starting worker for queue '{}' on {}", queue.name(), redis.masked_url());
            let store = Store::connect(&store).await.context("opening the database")?;
            let stop = stop_on_signal();
            let worker = Worker::new(queue, store.clone(), Duration::from_secs(shutdown_grace_secs));
            let summary = worker.run(stop, burst, &redis.masked_url()).await;
            store.close().await;
            if summary.gave_up {
                anyhow::bail!("Redis unavailable at {}", redis.masked_url());
            }
        }
        JobCommand::Workers { queue, shutdown_grace_secs, store, redis, retention } => {
            let queue = open_queue(&redis, &queue)?;
            let store = Store::connect(&store).await.context("opening the database")?;
            println!("Starting workers for queue '{}' on {}", queue.name(), redis.masked_url());
            let stop = stop_on_signal();
            let pruning = retention.retention_days.map(|days| {
                println!("Pruning raw pageviews older than {days} days every hour");
                tokio::spawn(retention::run_every_period(store.clone(), queue.clone(), days, stop.clone()))
            });
            run_workers(store.clone(), queue, redis.masked_url(), Duration::from_secs(shutdown_grace_secs), stop).await;
            if let Some(pruning) = pruning {
                let _ = pruning.await;
            }
            store.close().await;
        }
        JobCommand::Prune { dry_run, retention, store } => {
            let Some(days) = retention.retention_days else {
                println!("RETENTION_DAYS is not set: every pageview is kept, nothing to prune");
                return Ok(());
            };
            let store = Store::connect(&store).await.context("opening the database")?;
            let result = retention::prune(&store, days, dry_run, Utc::now(), &stop_on_signal(), &mut stdout).await;
            store.close().await;
            result.context("prune failed")?;
        }
        JobCommand::MonitorQueueHealth { queue, verbose, redis } => {
            let queue_handle = match &redis.redis_url {
                Some(_) => Some(open_queue(&redis, &queue)?),
                None => None,
            };
            monitor::check(queue_handle.as_ref(), &queue, verbose, &mut stdout).await;
        }
    }
    Ok(())
}

/// `worker`, the four schedules and the health monitor in one process, until `stop`. Each part is
/// a task on one tracker; `stop` ends the schedules and the monitor at once and the worker after
/// its running job.
pub async fn run_workers(store: Store, queue: Queue, masked_url: String, grace: Duration, stop: CancellationToken) {
    let tasks = TaskTracker::new();
    let worker = Worker::new(queue.clone(), store.clone(), grace);
    let holder = worker.id().to_string();
    {
        let stop = stop.clone();
        tasks.spawn(async move {
            worker.run(stop, false, &masked_url).await;
        });
    }
    tasks.spawn(scheduler::run_schedules(store, queue.clone(), holder, stop.clone()));
    {
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut interval = tokio::time::interval(MONITOR_EVERY);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = interval.tick() => {}
                }
                let mut lines = Vec::new();
                let health = monitor::check(Some(&queue), queue.name(), false, &mut lines).await;
                for line in String::from_utf8_lossy(&lines).lines() {
                    tracing::info!(status = health.status, "{line}");
                }
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}

async fn queue_command(
    schedule: scheduler::Schedule,
    days: Option<u32>,
    store: &StoreConfig,
    redis: &RedisConfig,
) -> anyhow::Result<()> {
    let store = Store::connect(store).await.context("opening the database")?;
    let dispatch = Dispatch::from_config(&store, redis, DEFAULT_QUEUE)?;
    let mut stdout = std::io::stdout();
    let result = match (schedule, days) {
        (scheduler::Schedule::MissingDays, Some(days)) => {
            scheduler::queue_backfill_missing_days(&store, &dispatch, days, Utc::now(), &mut stdout).await
        }
        _ => schedule.run(&store, &dispatch, Utc::now(), &mut stdout).await,
    };
    store.close().await;
    result.with_context(|| format!("{} failed", schedule.name()))
}

/// `squirrel healthcheck --queue`: Redis answers within `timeout` and at least one worker is registered.
pub async fn check_queue_health(redis: &RedisConfig, timeout: Duration) -> anyhow::Result<()> {
    let queue = open_queue(redis, DEFAULT_QUEUE)?;
    let stats = tokio::time::timeout(timeout, queue.stats())
        .await
        .with_context(|| format!("Redis at {} did not answer within {timeout:?}", redis.masked_url()))?
        .with_context(|| format!("Redis at {}", redis.masked_url()))?;
    anyhow::ensure!(stats.workers_total > 0, "no worker is registered on queue '{DEFAULT_QUEUE}'");
    println!("queue '{DEFAULT_QUEUE}': {} workers, {} jobs waiting", stats.workers_total, stats.length);
    Ok(())
}

fn open_queue(redis: &RedisConfig, name: &str) -> anyhow::Result<Queue> {
    let Some(url) = &redis.redis_url else {
        anyhow::bail!("Redis URL is required. Set REDIS_URL environment variable or use --redis-url");
    };
    Ok(Queue::open(url, &redis.redis_prefix, name, QueueSettings::from_config(redis))?)
}

/// A token cancelled by SIGINT/SIGTERM.
fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        crate::app::shutdown_signal().await;
        tracing::info!("shutdown requested; finishing the running job");
        trigger.cancel();
    });
    stop
}
