//! Faults under load, with the real binary: `kill -9` of `serve`, PostgreSQL restarted, a SQLite disk
//! that fills up, Redis down then back. In each, every pageview answered 200 is in the database, and
//! anything else the clients get is a 503 with `Retry-After` (README, "Failure behaviour").
//! (SIGTERM under load: shutdown.rs; OTLP backend down, slow or refusing: telemetry.rs.)

use std::time::Duration;

use squirrel::jobs::Queue;
use squirrel::store::{Grain, Store};

use crate::helpers::*;
use crate::on_both_backends;
use crate::process::*;

const CLIENTS: usize = 12;
const LONG: Duration = Duration::from_secs(60);

/// Runs a blocking step (a process start or stop) without stalling the load clients' runtime.
fn blocking<T>(step: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(step)
}

on_both_backends!(kill_9_under_load_loses_no_acknowledged_pageview);

async fn kill_9_under_load_loses_no_acknowledged_pageview(backend: Backend) {
    let db = TestDb::create(backend).await;
    let site = create_site(&db.url);
    let serve = Process::serve(squirrel(&db.url));
    let load = Load::start(&[Target { base: serve.base.clone(), site: site.clone() }], CLIENTS, "kill");
    load.until_acknowledged(300, LONG).await;
    blocking(|| serve.kill9());
    let outcome = load.stop().await;

    // Read through a fresh connection, as the next process would: SQLite recovers its WAL here.
    let stored = stored_paths(&db.url, &[site]).await;
    let unanswered = assert_every_acknowledged_stored(&outcome, &stored, "after kill -9");
    assert!(outcome.acknowledged.len() >= 300 && outcome.no_answer > 0, "killed mid-load: {outcome:?}");
    // Only a request in flight at the kill can be stored without its 200: one per client at most.
    assert!(unanswered <= CLIENTS, "{unanswered} stored without an answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restart_mid_load_answers_503_and_recovers_without_restart() {
    let pg = blocking(OwnPostgres::start);
    let url = pg.url();
    let site = create_site(&url);
    let serve = Process::serve(squirrel(&url));
    let load = Load::start(&[Target { base: serve.base.clone(), site: site.clone() }], CLIENTS, "pg");
    load.until_acknowledged(100, LONG).await;

    blocking(|| pg.down());
    load.until_unavailable(CLIENTS as u64, LONG).await;
    blocking(|| pg.up());
    load.until_acknowledged(100, LONG).await;
    let outcome = load.stop().await;

    assert_eq!(outcome.no_answer, 0, "serve stayed up and answered every request");
    let (code, lines) = blocking(|| serve.terminate());
    assert_eq!(code, Some(0), "{lines:#?}");
    let stored = stored_paths(&url, &[site]).await;
    let unanswered = assert_every_acknowledged_stored(&outcome, &stored, "after the PostgreSQL restart");
    // A COMMIT whose answer was lost with the connection can be stored and still answered 503.
    assert!(unanswered <= CLIENTS, "{unanswered} stored without a 200");
    assert!(outcome.unavailable >= CLIENTS as u64, "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_answers_503_and_recovers_when_space_returns() {
    let disk = blocking(|| SmallDisk::mount("16m"));
    let url = format!("sqlite://{}", disk.path().join("squirrel.db").display());
    let site = create_site(&url);
    let serve = Process::serve(squirrel(&url));
    let load = Load::start(&[Target { base: serve.base.clone(), site: site.clone() }], CLIENTS, "full");
    load.until_acknowledged(50, LONG).await;

    disk.fill();
    load.until_unavailable(CLIENTS as u64, LONG).await;
    disk.free();
    load.until_acknowledged(100, LONG).await;
    let outcome = load.stop().await;

    assert_eq!(outcome.no_answer, 0, "serve stayed up and answered every request");
    let (code, lines) = blocking(|| serve.terminate());
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("database or disk is full")), "the cause is logged: {lines:#?}");
    let stored = stored_paths(&url, &[site]).await;
    assert_every_acknowledged_stored(&outcome, &stored, "after the disk filled up");
}

/// Redis stops for a minute (the outage; twelve times the worker's longest backoff of 5 s), then comes back.
const REDIS_OUTAGE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_then_back_tracking_continues_and_workers_resume() {
    let mut redis = blocking(OwnRedis::start);
    let db = TestDb::create(Backend::Postgres).await;
    let site = create_site(&db.url);
    let redis_url = redis.url();
    let with_redis = move |mut cmd: std::process::Command| {
        cmd.env("REDIS_URL", &redis_url).env("SQUIRREL_REDIS_PREFIX", "squirrel:");
        cmd
    };
    let serve = Process::serve(with_redis(squirrel(&db.url)));
    let mut workers = {
        let mut cmd = with_redis(squirrel(&db.url));
        cmd.arg("workers");
        Process::spawn(cmd)
    };
    let completed = |l: &str| l.contains("Completed:") && l.contains("job.id");
    let load = Load::start(&[Target { base: serve.base.clone(), site: site.clone() }], CLIENTS, "redis");
    load.until_acknowledged(100, LONG).await;
    blocking(|| workers.wait_for_lines("the startup schedules' jobs", LONG, 2, completed));
    // Queued just before Redis stops: it runs before or after the outage, but it runs.
    let (code, _, err) = run(with_redis(squirrel(&db.url)).arg("queue-current-day"));
    assert_eq!(code, 0, "{err}");

    blocking(|| redis.down());
    let down_at = std::time::Instant::now();
    // Idle, it fails to take a job; finishing one, it fails to acknowledge it: either is logged.
    let noticed =
        |l: &str| l.contains("queue unavailable; retrying") || l.contains("could not update the queue; retrying");
    blocking(|| workers.wait_for_line("the worker notices", LONG, noticed));
    let (code, out, err) = run(with_redis(squirrel(&db.url)).arg("queue-current-hour"));
    assert_ne!(code, 0, "enqueueing fails loudly while Redis is down: {out}{err}");
    load.until_acknowledged(100, LONG).await;
    tokio::time::sleep(REDIS_OUTAGE.saturating_sub(down_at.elapsed())).await;
    blocking(|| redis.up());
    blocking(|| workers.wait_for_line("the worker resumes", LONG, |l| l.contains("Redis is back; resuming")));
    load.until_acknowledged(100, LONG).await;
    let outcome = load.stop().await;
    assert_eq!(outcome.unavailable + outcome.no_answer, 0, "tracking never needed Redis: {outcome:?}");

    // Jobs queued after the outage run too; nothing is left queued or held, and the rollups are exact.
    // First the queue drains: a window's job still running when the load stopped would make these
    // enqueues duplicates of it (dedup holds until a job ends), and that run may predate the last rows.
    let queue = crate::jobs::queue_at(&redis.url(), "squirrel:", crate::jobs::settings());
    let drained_by = std::time::Instant::now() + LONG;
    loop {
        let stats = queue.stats().await.unwrap();
        if stats.length == 0 && stats.started == 0 {
            break;
        }
        assert!(std::time::Instant::now() < drained_by, "the queue never drained: {stats:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for command in ["queue-current-hour", "queue-current-day"] {
        let (code, _, err) = run(with_redis(squirrel(&db.url)).arg(command));
        assert_eq!(code, 0, "{command}: {err}");
    }
    let store = Store::connect(&squirrel::config::Config::for_tests(&db.url).store).await.unwrap();
    let site_id = store.site_by_identifier(&site).await.unwrap().unwrap().id;
    if let Err(state) = settled(&store, &queue, &[site_id]).await {
        panic!("{state}; workers' log:\n{}", workers.lines().join("\n"));
    }
    let raw = store.count_pageviews(site_id).await.unwrap();
    assert_eq!(raw, outcome.acknowledged.len() as i64, "every acknowledged pageview stored, none more");
    for grain in [Grain::Hour, Grain::Day] {
        let rows = store.rollup_rows(grain, site_id, 0, i64::MAX / 2).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.pageview_count).sum::<i64>(), raw, "{grain:?} totals");
    }
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.failed, stats.deferred), (0, 0), "no job failed or waits for a retry");
    assert!(queue.dead_jobs().await.unwrap().is_empty());
    let (code, lines) = blocking(|| workers.terminate());
    assert_eq!(code, Some(0), "{lines:#?}");
    let (code, lines) = blocking(|| serve.terminate());
    assert_eq!(code, Some(0), "{lines:#?}");
    store.close().await;
}

/// Waits until the queue is idle and no hour or day of `sites` has raw rows its rollup has not seen;
/// at the deadline, says what is still pending. The deadline is shorter than the schedules' first
/// period (60 s), so only the jobs the test queued can settle it.
pub async fn settled(store: &Store, queue: &Queue, sites: &[i64]) -> Result<(), String> {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = queue.stats().await.unwrap();
        let mut changed = 0;
        for &site in sites {
            for grain in [Grain::Hour, Grain::Day] {
                changed += store.changed_windows(grain, site, 0, i64::MAX / 2).await.unwrap().len();
            }
        }
        if stats.length == 0 && stats.started == 0 && changed == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > end {
            return Err(format!("not settled: {stats:?}, {changed} windows changed"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
