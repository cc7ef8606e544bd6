//! Background jobs: exact rollups, sessions, the Redis queue, the worker, schedulers, the monitor and
//! the CLI. Redis tests use `REDIS_URL_FOR_TESTS` (scripts/test exports it) with a key prefix of
//! their own, and never flush anything. Nothing sleeps to synchronise: queues are drained with a
//! burst worker.

use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use squirrel::jobs::aggregate::{self, DailyArgs, HourlyArgs};
use squirrel::jobs::job::Instant;
use squirrel::jobs::{Dispatch, Job, JobArgs, JobKind, Queue, QueueSettings, Worker, monitor, scheduler};
use squirrel::store::{DAY_MS, Grain, HOUR_MS, NewPageview, Site, Store};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::on_both_backends;
use crate::process::OwnRedis;

on_both_backends!(
    rollups_are_exact_at_hour_and_day_boundaries_and_idempotent,
    late_pageviews_are_found_and_counted_by_the_backfills,
    sessions_follow_inactivity_across_windows_and_midnight,
    queued_jobs_run_once_and_two_schedulers_enqueue_nothing_twice,
    a_job_held_by_a_dead_worker_runs_again,
    failing_jobs_retry_then_land_in_the_dead_letter_list_the_monitor_reports,
    redis_restart_mid_run_loses_no_job_and_counts_nothing_twice,
    cli_prints_the_original_summary_lines,
);

/// 2025-09-01T00:00:00Z.
const DAY0: i64 = 1_756_684_800_000;
const MIN: i64 = 60_000;

fn t(s: &str) -> DateTime<Utc> {
    Instant::parse(s).unwrap().at
}

fn pv(site: &Site, at: i64, visitor: i64, path: &str) -> NewPageview {
    NewPageview {
        site_id: site.id,
        created_at: at,
        url: format!("https://e.com{path}"),
        path: path.into(),
        referrer: String::new(),
        referrer_domain: String::new(),
        utm_source: String::new(),
        utm_medium: String::new(),
        utm_campaign: String::new(),
        utm_term: String::new(),
        utm_content: String::new(),
        browser: "Chrome".into(),
        browser_version: "1".into(),
        os: "Linux".into(),
        device_type: "desktop",
        country: String::new(),
        is_bot: false,
        visitor_id: visitor,
        visitor_id_prev: None,
    }
}

fn bot(site: &Site, at: i64) -> NewPageview {
    NewPageview { is_bot: true, device_type: "bot", ..pv(site, at, 999, "/bot") }
}

fn hourly(start: &str, end: &str) -> HourlyArgs {
    HourlyArgs {
        hours: 24,
        start: Some(Instant::parse(start).unwrap()),
        end: Some(Instant::parse(end).unwrap()),
        site: None,
        verbose: false,
    }
}

fn daily(start: &str, end: &str) -> DailyArgs {
    DailyArgs {
        days: 30,
        start: Some(Instant::parse(start).unwrap()),
        end: Some(Instant::parse(end).unwrap()),
        site: None,
        verbose: false,
    }
}

async fn run_hourly(store: &Store, args: &HourlyArgs) -> String {
    let mut out = Vec::new();
    aggregate::hourly(store, args, Utc::now(), &mut out).await.expect("hourly aggregation");
    String::from_utf8(out).unwrap()
}

async fn run_daily(store: &Store, args: &DailyArgs) -> String {
    let mut out = Vec::new();
    aggregate::daily(store, args, Utc::now(), &mut out).await.expect("daily aggregation");
    String::from_utf8(out).unwrap()
}

/// `(bucket offset from DAY0 in hours or days, pageviews, unique visitors)`.
async fn rows(store: &Store, grain: Grain, site: &Site) -> Vec<(i64, i64, i64)> {
    let all = store.rollup_rows(grain, site.id, 0, i64::MAX / 2).await.unwrap();
    all.iter().map(|r| ((r.bucket - DAY0) / grain.ms(), r.pageview_count, r.unique_session_count)).collect()
}

pub(crate) fn redis_url() -> String {
    std::env::var("REDIS_URL_FOR_TESTS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub(crate) fn test_prefix() -> String {
    format!("squirrel:t:{}:", uuid::Uuid::new_v4().simple())
}

/// Deletes a test's keys (never anything else: no FLUSHDB).
pub(crate) async fn forget(prefix: &str) {
    let mut conn = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
    }
}

pub(crate) fn settings() -> QueueSettings {
    QueueSettings {
        heartbeat_ttl: Duration::from_secs(15),
        dedup_ttl: Duration::from_secs(600),
        max_attempts: 3,
        retry_delay: Duration::ZERO,
        dead_cap: 100,
    }
}

pub(crate) fn queue_at(url: &str, prefix: &str, settings: QueueSettings) -> Queue {
    Queue::open(url, prefix, "aggregations", settings).expect("queue opens")
}

/// Runs jobs until none is ready, as `squirrel worker --burst` does.
async fn run_pending(queue: &Queue, store: &Store) -> squirrel::jobs::worker::WorkerSummary {
    Worker::new(queue.clone(), store.clone(), Duration::from_secs(5)).run(CancellationToken::new(), true, "").await
}

async fn rollups_are_exact_at_hour_and_day_boundaries_and_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let other = app.create_site().await;
    let day1 = DAY0 + DAY_MS;
    app.store
        .insert_pageviews(&[
            pv(&site, DAY0, 1, "/"),                // 00:00:00.000 of day 0, hour 0
            pv(&site, DAY0 + HOUR_MS - 1, 1, "/a"), // 00:59:59.999, still hour 0
            pv(&site, DAY0 + HOUR_MS, 2, "/b"),     // 01:00:00.000, hour 1
            bot(&site, DAY0 + HOUR_MS + 5),         // stored, never counted
            pv(&site, day1 - 1, 3, "/c"),           // 23:59:59.999 of day 0
            pv(&site, day1, 3, "/c"),               // 00:00:00.000 of day 1
            pv(&other, DAY0 + 10, 7, "/x"),         // another site's
        ])
        .await
        .unwrap();
    let out = run_hourly(&app.store, &hourly("2025-09-01T00:00:00", "2025-09-02T01:00:00+00:00")).await;
    assert!(out.starts_with("Starting hourly aggregation for last 24 hours...\n"), "{out}");
    assert!(out.ends_with("Completed: 5 records created, 0 updated, 6 pageviews processed\n"), "{out}");
    assert_eq!(rows(&app.store, Grain::Hour, &site).await, vec![(0, 2, 1), (1, 1, 1), (23, 1, 1), (24, 1, 1)]);
    assert_eq!(rows(&app.store, Grain::Hour, &other).await, vec![(0, 1, 1)]);

    let again = run_hourly(&app.store, &hourly("2025-09-01T00:00:00", "2025-09-02T01:00:00+00:00")).await;
    assert!(again.ends_with("Completed: 0 records created, 0 updated, 0 pageviews processed\n"), "{again}");
    assert_eq!(rows(&app.store, Grain::Hour, &site).await, vec![(0, 2, 1), (1, 1, 1), (23, 1, 1), (24, 1, 1)]);

    let out = run_daily(&app.store, &daily("2025-09-01", "2025-09-02")).await;
    assert!(out.starts_with("Starting daily aggregation for last 30 days...\n"), "{out}");
    assert!(out.ends_with("Completed: 3 records created, 0 updated, 6 pageviews processed\n"), "{out}");
    assert_eq!(rows(&app.store, Grain::Day, &site).await, vec![(0, 4, 3), (1, 1, 1)]);
    let again = run_daily(&app.store, &daily("2025-09-01", "2025-09-02")).await;
    assert!(again.ends_with("Completed: 0 records created, 0 updated, 0 pageviews processed\n"), "{again}");

    // A window with only a bot has a row of zeros; offsets in --start are honoured.
    let verbose = HourlyArgs {
        verbose: true,
        site: Some(site.identifier.clone()),
        ..hourly("2025-09-01T02:00:00+01:00", "2025-09-01T03:00:00+01:00")
    };
    let out = run_hourly(&app.store, &verbose).await;
    assert!(out.contains(&format!("Site {}: 0 created, 0 updated, 0 pageviews processed\n", site.identifier)), "{out}");
    assert!(out.contains("  2025-09-01T01:00:00+00:00: 1 pageviews, 1 sessions\n"), "{out}");
}

async fn late_pageviews_are_found_and_counted_by_the_backfills(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let now = t("2025-09-03T12:30:00Z");
    let hour = |h: i64| DAY0 + h * HOUR_MS;
    app.store.insert_pageviews(&[pv(&site, hour(10), 1, "/"), pv(&site, hour(10) + 30 * MIN, 2, "/")]).await.unwrap();
    let direct = Dispatch::Direct(app.store.clone());
    let mut out = Vec::new();
    scheduler::queue_backfill_missing_hours(&app.store, &direct, now, &mut out).await.unwrap();
    assert_eq!(rows(&app.store, Grain::Hour, &site).await, vec![(10, 2, 2)]);
    assert!(app.store.changed_windows(Grain::Hour, site.id, 0, hour(72)).await.unwrap().is_empty());

    // Late rows in a closed hour (the original never counted them) and in an hour with no row yet.
    app.store
        .insert_pageviews(&[pv(&site, hour(10) + 59 * MIN, 3, "/late"), pv(&site, hour(11) + MIN, 3, "/")])
        .await
        .unwrap();
    assert_eq!(app.store.changed_windows(Grain::Hour, site.id, 0, hour(72)).await.unwrap(), vec![hour(10), hour(11)]);
    let mut out = Vec::new();
    scheduler::queue_backfill_missing_hours(&app.store, &direct, now, &mut out).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("Completed: 1 records created, 1 updated, 2 pageviews processed"), "{out}");
    assert!(out.ends_with("Queued/processed backfill for missing hours (last 7 days)\n"), "{out}");
    assert_eq!(rows(&app.store, Grain::Hour, &site).await, vec![(10, 3, 3), (11, 1, 1)]);

    let mut out = Vec::new();
    scheduler::queue_backfill_missing_days(&app.store, &direct, 7, now, &mut out).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(&format!("Site {}: queued 1 missing days\n", site.identifier)), "{out}");
    assert!(out.ends_with("Queued/processed backfill for 1 missing days\n"), "{out}");
    assert_eq!(rows(&app.store, Grain::Day, &site).await, vec![(0, 4, 3)]);
    app.store.insert_pageviews(&[pv(&site, hour(23) + 59 * MIN, 4, "/late")]).await.unwrap();
    let mut out = Vec::new();
    scheduler::queue_backfill_missing_days(&app.store, &direct, 7, now, &mut out).await.unwrap();
    assert_eq!(
        rows(&app.store, Grain::Day, &site).await,
        vec![(0, 5, 4)],
        "a stale day is redone, not only a missing one"
    );
    let mut out = Vec::new();
    scheduler::queue_backfill_missing_days(&app.store, &direct, 7, now, &mut out).await.unwrap();
    assert!(String::from_utf8(out).unwrap().ends_with("Queued/processed backfill for 0 missing days\n"));

    // The current-hour job covers the previous hour for a few minutes after it closes.
    app.store.insert_pageviews(&[pv(&site, hour(12) - 1, 5, "/last-ms")]).await.unwrap();
    let mut out = Vec::new();
    scheduler::queue_current_hour(&app.store, &direct, t("2025-09-01T12:02:00Z"), &mut out).await.unwrap();
    assert!(String::from_utf8(out).unwrap().ends_with("Queued/processed current-hour aggregation for all sites\n"));
    assert!(rows(&app.store, Grain::Hour, &site).await.contains(&(11, 2, 2)));
}

async fn sessions_follow_inactivity_across_windows_and_midnight(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let at = |h: i64, m: i64| DAY0 + h * HOUR_MS + m * MIN;
    let day1 = DAY0 + DAY_MS;
    let mut entry = pv(&site, at(10, 50), 1, "/landing");
    entry.referrer = "https://news.ycombinator.com/item".into();
    entry.referrer_domain = "news.ycombinator.com".into();
    let mut after_midnight = pv(&site, day1 + 10 * MIN, 22, "/b2");
    after_midnight.visitor_id_prev = Some(2); // the same visitor under yesterday's salt
    let mut later_that_night = pv(&site, day1 + 35 * MIN, 22, "/b3");
    later_that_night.visitor_id_prev = None; // past the first 30 minutes: no link recorded
    app.store
        .insert_pageviews(&[
            entry,
            pv(&site, at(11, 10), 1, "/pricing"), // 20 min later, next hour: same session
            pv(&site, at(11, 50), 1, "/again"),   // 40 min gap: a new session, a bounce
            bot(&site, at(11, 55)),
            pv(&site, at(23, 50), 2, "/b1"),
            after_midnight,
            later_that_night,
            pv(&site, at(12, 0), 3, "/solo"),
        ])
        .await
        .unwrap();
    // Window by window, as the current-hour jobs would.
    for h in 10..26 {
        let (start, end) = (at(h, 0), at(h + 1, 0));
        app.store.recompute_rollup(Grain::Hour, site.id, start, end).await.unwrap();
    }
    let sessions = app.store.sessions_of_site(site.id).await.unwrap();
    let summary: Vec<_> = sessions
        .iter()
        .map(|s| (s.entry_page.as_str(), s.exit_page.as_str(), s.pageview_count, s.is_bounce, s.duration_ms / MIN))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("/landing", "/pricing", 2, false, 20),
            ("/again", "/again", 1, true, 0),
            ("/solo", "/solo", 1, true, 0),
            ("/b1", "/b3", 3, false, 45)
        ]
    );
    assert_eq!(sessions[0].referrer_domain, "news.ycombinator.com");
    assert_eq!(sessions[0].referrer, "https://news.ycombinator.com/item");
    let assigned = app.store.pageview_sessions(site.id).await.unwrap();
    assert_eq!(assigned.iter().filter(|(_, s)| s.is_none()).count(), 1, "only the bot has no session");
    assert!(
        sessions.iter().all(|s| assigned.iter().any(|(id, sid)| *id == s.id && *sid == Some(s.id))),
        "a session's id is its entry pageview's"
    );

    // One pass over everything gives the same sessions.
    let single = spawn_app(backend).await;
    let site2 = single.create_site().await;
    let copies: Vec<_> =
        app.pageviews(&site).await.into_iter().map(|p| NewPageview { site_id: site2.id, ..p.row }).collect();
    single.store.insert_pageviews(&copies).await.unwrap();
    run_hourly(&single.store, &hourly("2025-09-01T00:00", "2025-09-03T00:00")).await;
    let again: Vec<_> = single
        .store
        .sessions_of_site(site2.id)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.pageview_count, s.duration_ms))
        .collect();
    assert_eq!(again, sessions.iter().map(|s| (s.pageview_count, s.duration_ms)).collect::<Vec<_>>());

    // A late pageview at 11:30 bridges the 11:10 and 11:50 sessions: they merge into one.
    app.store.insert_pageviews(&[pv(&site, at(11, 30), 1, "/late")]).await.unwrap();
    app.store.recompute_rollup(Grain::Hour, site.id, at(11, 0), at(12, 0)).await.unwrap();
    let merged: Vec<_> = app
        .store
        .sessions_of_site(site.id)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.entry_page.clone(), s.pageview_count))
        .collect();
    assert_eq!(merged, vec![("/landing".to_string(), 4), ("/solo".to_string(), 1), ("/b1".to_string(), 3)]);
    // Hourly unique counts are distinct visitors of the hour.
    assert!(rows(&app.store, Grain::Hour, &site).await.contains(&(11, 3, 1)));
}

async fn queued_jobs_run_once_and_two_schedulers_enqueue_nothing_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let (a, b) = (app.create_site().await, app.create_site().await);
    let now = Utc::now();
    let this_hour = Grain::Hour.floor(now.timestamp_millis());
    app.store.insert_pageviews(&[pv(&a, this_hour + 1, 1, "/"), pv(&b, this_hour + 2, 2, "/")]).await.unwrap();
    let prefix = test_prefix();
    let queue = queue_at(&redis_url(), &prefix, settings());
    let dispatch = Dispatch::Queue(queue.clone());
    // Two schedulers (think: two `workers` hosts) fire the same schedule at the same moment.
    let (mut out1, mut out2) = (Vec::new(), Vec::new());
    let (r1, r2) = tokio::join!(
        scheduler::queue_current_hour(&app.store, &dispatch, now, &mut out1),
        scheduler::queue_current_hour(&app.store, &dispatch, now, &mut out2),
    );
    r1.unwrap();
    r2.unwrap();
    let pending = queue.pending().await.unwrap();
    assert_eq!(pending.len(), 2, "one job per site, not two: {pending:?}");
    assert!(pending.iter().all(|j| j.kind == JobKind::AggregateHourlyStats && j.attempts == 0));
    // …and only one of them wins the schedule's lock for the period.
    let won = [
        queue.try_lock_schedule("queue-current-hour", "host-a", Duration::from_secs(60)).await.unwrap(),
        queue.try_lock_schedule("queue-current-hour", "host-b", Duration::from_secs(60)).await.unwrap(),
    ];
    assert_eq!(won, [true, false]);

    let done = run_pending(&queue, &app.store).await;
    assert_eq!((done.succeeded, done.retried, done.dead), (2, 0, 0));
    let hour = (this_hour - DAY0) / HOUR_MS;
    assert_eq!(rows(&app.store, Grain::Hour, &a).await.last(), Some(&(hour, 1, 1)));
    assert_eq!(rows(&app.store, Grain::Hour, &b).await.last(), Some(&(hour, 1, 1)));
    // Done jobs free their site+window: the next period enqueues again.
    let mut out = Vec::new();
    scheduler::queue_current_hour(&app.store, &dispatch, now, &mut out).await.unwrap();
    assert_eq!(queue.pending().await.unwrap().len(), 2);
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.length, stats.started, stats.failed), (2, 0, 0));
    forget(&prefix).await;
}

async fn a_job_held_by_a_dead_worker_runs_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    app.store.insert_pageviews(&[pv(&site, DAY0 + 5, 1, "/")]).await.unwrap();
    let prefix = test_prefix();
    let short = QueueSettings { heartbeat_ttl: Duration::from_millis(300), ..settings() };
    let queue = queue_at(&redis_url(), &prefix, short);
    let job = Job::new(
        JobKind::AggregateHourlyStats,
        JobArgs {
            site: site.identifier.clone(),
            start: "2025-09-01T00:00:00+00:00".into(),
            end: "2025-09-01T01:00:00+00:00".into(),
        },
    );
    queue.enqueue(&job).await.unwrap();
    // A worker takes the job, announces itself once, and dies mid-job (no ack, no more heartbeats).
    queue.heartbeat("doomed", "busy").await.unwrap();
    let (raw, taken) = queue.try_take("doomed").await.unwrap().expect("the job is taken");
    assert_eq!(taken.as_ref().map(|j| j.id.as_str()), Some(job.id.as_str()));
    assert_eq!(queue.stats().await.unwrap().started, 1);
    assert!(queue.enqueue(&job).await.unwrap() == squirrel::jobs::Enqueued::Duplicate, "still held: not queued twice");
    // While its heartbeat lives, nobody takes the job away from it.
    assert_eq!(queue.sweep().await.unwrap(), 0);
    // Then the heartbeat expires (deleted here rather than waited for).
    let mut conn = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: i64 =
        redis::cmd("DEL").arg(format!("{prefix}worker:aggregations:doomed")).query_async(&mut conn).await.unwrap();
    let done = run_pending(&queue, &app.store).await;
    assert_eq!(done.succeeded, 1, "the survivor re-ran the job");
    assert_eq!(rows(&app.store, Grain::Hour, &site).await, vec![(0, 1, 1)]);
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.length, stats.started), (0, 0));
    drop(raw);
    forget(&prefix).await;
}

async fn failing_jobs_retry_then_land_in_the_dead_letter_list_the_monitor_reports(backend: Backend) {
    let app = spawn_app(backend).await;
    let prefix = test_prefix();
    let queue = queue_at(&redis_url(), &prefix, QueueSettings { max_attempts: 2, ..settings() });
    let broken = Job::new(
        JobKind::AggregateDailyStats,
        JobArgs { site: "nobody".into(), start: "not a date".into(), end: "2025-09-01".into() },
    );
    queue.enqueue(&broken).await.unwrap();
    let gone = Job::new(
        JobKind::AggregateDailyStats,
        JobArgs { site: "deleted-site-ABCDEF".into(), start: "2025-09-01".into(), end: "2025-09-01".into() },
    );
    queue.enqueue(&gone).await.unwrap();
    let done = run_pending(&queue, &app.store).await;
    assert_eq!(
        (done.succeeded, done.retried, done.dead),
        (1, 1, 1),
        "a deleted site is no failure; bad args fail twice"
    );
    let dead = queue.dead_jobs().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job.id, broken.id);
    assert_eq!(dead[0].job.attempts, 2);
    assert!(dead[0].error.contains("not a date"), "{}", dead[0].error);

    let mut out = Vec::new();
    let health = monitor::check(Some(&queue), "aggregations", true, &mut out).await;
    let out = String::from_utf8(out).unwrap();
    assert_eq!(health.status, "no_workers", "{out}");
    assert_eq!(health.stats.unwrap().failed, 1);
    assert!(out.contains("🚨 NO WORKERS AVAILABLE: 0 jobs waiting"), "{out}");
    assert!(out.contains("📊 Queue Metrics for 'aggregations':"), "{out}");
    queue.heartbeat("alive", "idle").await.unwrap();
    let mut out = Vec::new();
    assert_eq!(monitor::check(Some(&queue), "aggregations", true, &mut out).await.status, "healthy");
    assert!(String::from_utf8(out).unwrap().contains("✅ Queue healthy: 0 pending, 0/1 workers active"));
    for i in 0..51 {
        let job = Job::new(
            JobKind::AggregateDailyStats,
            JobArgs { site: format!("s{i}"), start: "2025-09-01".into(), end: "2025-09-01".into() },
        );
        queue.enqueue(&job).await.unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(monitor::check(Some(&queue), "aggregations", false, &mut out).await.status, "warning");
    assert_eq!(String::from_utf8(out).unwrap(), "⚠️  Queue getting full: 51 jobs pending (threshold: 50)\n");
    let mut out = Vec::new();
    assert_eq!(monitor::check(None, "aggregations", false, &mut out).await.status, "error");
    assert_eq!(String::from_utf8(out).unwrap(), "❌ Redis connection not available\n");
    forget(&prefix).await;
}

async fn redis_restart_mid_run_loses_no_job_and_counts_nothing_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let mut redis = OwnRedis::start();
    let queue = queue_at(&redis.url(), "squirrel:", settings());
    let dispatch = Dispatch::Queue(queue.clone());
    let site_ref = &site;
    let rows_at = |h: i64| (0..3).map(|i| pv(site_ref, DAY0 + h * HOUR_MS + i, i, "/")).collect::<Vec<_>>();
    app.store.insert_pageviews(&rows_at(1)).await.unwrap();
    let mut out = Vec::new();
    scheduler::queue_backfill_missing_hours(&app.store, &dispatch, t("2025-09-02T00:00:00Z"), &mut out).await.unwrap();
    assert_eq!(queue.pending().await.unwrap().len(), 1);

    // A long-running worker is up when Redis goes away.
    let stop = CancellationToken::new();
    let worker = Worker::new(queue.clone(), app.store.clone(), Duration::from_secs(5));
    let running = {
        let stop = stop.clone();
        tokio::spawn(async move { worker.run(stop, false, "redis://127.0.0.1").await })
    };
    redis.down();
    app.store.insert_pageviews(&rows_at(2)).await.unwrap();
    let mut out = Vec::new();
    let refused =
        scheduler::queue_backfill_missing_hours(&app.store, &dispatch, t("2025-09-02T00:00:00Z"), &mut out).await;
    assert!(refused.is_err(), "enqueueing fails loudly while Redis is down");
    let mut out = Vec::new();
    assert_eq!(monitor::check(Some(&queue), "aggregations", false, &mut out).await.status, "error");
    assert_eq!(String::from_utf8(out).unwrap(), "❌ Redis connection not available\n");
    // Tracking never needed Redis.
    let status = app.get_pv(&format!("sid={}&p=/during-outage", site.identifier), MAC_CHROME).await.status();
    assert_eq!(status, 200);

    redis.up();
    let mut out = Vec::new();
    scheduler::queue_backfill_missing_hours(&app.store, &dispatch, t("2025-09-02T00:00:00Z"), &mut out).await.unwrap();
    // Drain deterministically, then stop the long-running worker, which finishes what it holds.
    run_pending(&queue, &app.store).await;
    stop.cancel();
    running.await.unwrap();
    run_pending(&queue, &app.store).await;
    assert_eq!(rows(&app.store, Grain::Hour, &site).await, vec![(1, 3, 3), (2, 3, 3)]);
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats.length, stats.started, stats.failed, stats.deferred), (0, 0, 0, 0));
    assert!(app.store.changed_windows(Grain::Hour, site.id, DAY0, DAY0 + DAY_MS).await.unwrap().is_empty());
}

fn squirrel(db: &TestDb) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squirrel"));
    cmd.current_dir(std::env::temp_dir())
        .env("DATABASE_URL", &db.url)
        .env_remove("REDIS_URL")
        .env_remove("SQUIRREL_REDIS_PREFIX")
        .env("SQUIRREL_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("squirrel runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

async fn cli_prints_the_original_summary_lines(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    app.store.insert_pageviews(&[pv(&site, DAY0 + 5, 1, "/"), pv(&site, DAY0 + HOUR_MS + 5, 1, "/")]).await.unwrap();
    let db = &app.db;
    let (code, out, err) = run(squirrel(db).args([
        "aggregate-hourly-stats",
        "--start",
        "2025-09-01T00:00:00",
        "--end",
        "2025-09-01T02:00:00",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Starting hourly aggregation for last 24 hours...\nCompleted: 2 records created, 0 updated, 2 pageviews processed\n"
    );
    let (code, out, _) =
        run(squirrel(db).args(["aggregate-daily-stats", "--start", "2025-09-01", "--end", "2025-09-01", "--verbose"]));
    assert_eq!(code, 0);
    assert!(out.contains(&format!("Site {}: 1 created, 0 updated, 2 pageviews processed\n", site.identifier)), "{out}");
    assert!(out.contains("  2025-09-01T00:00:00+00:00: 2 pageviews, 1 sessions\n"), "{out}");
    let (code, out, _) = run(squirrel(db).args(["aggregate-hourly-stats", "--site", "no-such-site-AAAAAA"]));
    assert_eq!(code, 1);
    assert!(out.contains("Site 'no-such-site-AAAAAA' not found"), "{out}");
    let (code, _, err) = run(squirrel(db).args(["aggregate-hourly-stats", "--start", "last tuesday"]));
    assert_eq!(code, 2);
    assert!(err.contains("ISO 8601"), "{err}");

    // No REDIS_URL: direct mode; the monitor reports an error and exits 0; a worker refuses.
    let (code, out, err) = run(squirrel(db).arg("queue-current-hour"));
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("Queued/processed current-hour aggregation for all sites\n"), "{out}");
    assert!(out.contains("Starting hourly aggregation"), "direct mode ran it: {out}");
    let (code, out, _) = run(squirrel(db).arg("queue-current-day"));
    assert_eq!(code, 0);
    assert!(out.ends_with("Queued/processed current-day aggregation for all sites\n"), "{out}");
    let (code, out, _) = run(squirrel(db).arg("monitor-queue-health"));
    assert_eq!((code, out.as_str()), (0, "❌ Redis connection not available\n"));
    let (code, _, err) = run(squirrel(db).arg("worker"));
    assert_eq!(code, 1);
    assert!(err.contains("Redis URL is required. Set REDIS_URL environment variable or use --redis-url"), "{err}");

    // With Redis: enqueue, then a burst worker drains and exits 0; the printed URL hides the password.
    let prefix = test_prefix();
    let with_redis = |cmd: &mut Command| {
        cmd.env("REDIS_URL", redis_url()).env("SQUIRREL_REDIS_PREFIX", &prefix);
    };
    let mut cmd = squirrel(db);
    with_redis(&mut cmd);
    let (code, out, err) = run(cmd.args(["queue-backfill-missing-days", "--days", "3650"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("Queued/processed backfill for 0 missing days\n"), "{out}");
    app.store.insert_pageviews(&[pv(&site, DAY0 + 2 * DAY_MS, 2, "/")]).await.unwrap();
    let mut cmd = squirrel(db);
    with_redis(&mut cmd);
    let (code, out, _) = run(cmd.args(["queue-backfill-missing-days", "--days", "3650"]));
    assert_eq!(code, 0);
    assert!(out.contains(&format!("Site {}: queued 1 missing days\n", site.identifier)), "{out}");
    let mut cmd = squirrel(db);
    with_redis(&mut cmd);
    let (code, out, err) = run(cmd.args(["worker", "--burst", "--queue", "aggregations"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Starting worker for queue 'aggregations' on redis://"), "{out}");
    assert_eq!(rows(&app.store, Grain::Day, &site).await, vec![(0, 2, 1), (2, 1, 1)]);
    let (code, out, _) = run(squirrel(db)
        .env("REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
        .args(["monitor-queue-health", "--verbose"]));
    assert_eq!(code, 0);
    assert_eq!(out, "❌ Redis connection not available\n");
    let (code, out, err) =
        run(squirrel(db).env("REDIS_URL", "redis://:hunter2@127.0.0.1:1/0").args(["worker", "--burst"]));
    assert_eq!(code, 1, "a burst worker without Redis fails: {err}");
    assert!(out.contains("redis://:***@127.0.0.1:1/0"), "{out}");
    assert!(!out.contains("hunter2") && !err.contains("hunter2"), "{out}{err}");
    forget(&prefix).await;
}

/// Spans kept in memory, for the trace-continuity test.
#[derive(Clone, Debug, Default)]
struct Collected(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Collected {
    fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        self.0.lock().unwrap().extend(batch);
        std::future::ready(Ok(()))
    }
}

#[test]
fn a_job_span_continues_the_trace_of_the_span_that_queued_it() {
    // tracing caches each callsite's interest across threads: another test's global subscriber
    // (with its filter) can switch our spans off. So the body runs alone, in a child process.
    if std::env::var_os("SQUIRREL_TRACE_TEST_CHILD").is_none() {
        let name = "jobs::a_job_span_continues_the_trace_of_the_span_that_queued_it";
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1"])
            .env("SQUIRREL_TRACE_TEST_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;
    let collected = Collected::default();
    let provider =
        opentelemetry_sdk::trace::SdkTracerProvider::builder().with_simple_exporter(collected.clone()).build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    // This thread only, and a runtime on this thread: no global state is touched. PostgreSQL: the
    // SQLite driver's worker thread keeps the caller's span until its next command, which would
    // make "has the span ended yet" a race here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let prefix = test_prefix();
    runtime.block_on(async {
        let db = TestDb::create(Backend::Postgres).await;
        let store = Store::connect(&squirrel::config::Config::for_tests(&db.url).store).await.unwrap();
        squirrel::accounts::create_user(&store, "trace@example.com", "long enough pw").await.unwrap();
        let site = squirrel::accounts::create_site(&store, "trace@example.com", "Traced").await.unwrap();
        store.insert_pageviews(&[pv(&site, Utc::now().timestamp_millis(), 1, "/")]).await.unwrap();
        let queue = queue_at(&redis_url(), &prefix, settings());
        let mut out = Vec::new();
        scheduler::queue_current_hour(&store, &Dispatch::Queue(queue.clone()), Utc::now(), &mut out).await.unwrap();
        assert_eq!(run_pending(&queue, &store).await.succeeded, 1);
        forget(&prefix).await;
        store.close().await;
    });
    // Tasks the runtime spawned (connections going back to the pool) may still hold spans open.
    drop(runtime);
    let _ = provider.force_flush();
    let spans = collected.0.lock().unwrap().clone();
    let names: Vec<_> = spans.iter().map(|s| s.name.to_string()).collect();
    let named =
        |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name} in {names:?}"));
    let attr = |span: &opentelemetry_sdk::trace::SpanData, key: &str| {
        span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
    };
    let command = named("queue_current_hour_command");
    let enqueue = named("enqueue_hourly_aggregation");
    assert_eq!(enqueue.parent_span_id, command.span_context.span_id());
    assert_eq!(attr(enqueue, "execution.mode").as_deref(), Some("enqueued"));
    let job = named("process aggregations");
    assert_eq!(job.span_context.trace_id(), enqueue.span_context.trace_id(), "the job continues the trace");
    assert_eq!(job.parent_span_id, enqueue.span_context.span_id());
    assert!(job.parent_span_is_remote, "its parent came through the payload");
    let aggregate = named("aggregate_hourly_stats_command");
    assert_eq!(aggregate.parent_span_id, job.span_context.span_id());
    assert_eq!(attr(aggregate, "command.total_created").as_deref(), Some("1"));
    let redis: Vec<_> = spans.iter().filter(|s| attr(s, "db.system.name").as_deref() == Some("redis")).collect();
    assert!(redis.iter().any(|s| s.parent_span_id == enqueue.span_context.span_id()), "EVALSHA enqueue is traced");
    assert!(redis.iter().all(|s| s.span_kind == opentelemetry::trace::SpanKind::Client));
    for span in &spans {
        for kv in &span.attributes {
            assert!(!kv.value.to_string().contains("redis://"), "{}: {} = {}", span.name, kv.key, kv.value);
        }
    }
}

async fn workers_process_runs_schedules_and_stops_cleanly_on_sigterm(backend: Backend) {
    use std::io::BufRead;
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let now = Utc::now().timestamp_millis();
    app.store.insert_pageviews(&[pv(&site, now - 2 * HOUR_MS, 1, "/"), pv(&site, now, 2, "/")]).await.unwrap();
    let prefix = test_prefix();
    let mut child = squirrel(&app.db)
        .arg("workers")
        .env("REDIS_URL", redis_url())
        .env("SQUIRREL_REDIS_PREFIX", &prefix)
        .env("SQUIRREL_LOG", "info")
        .env("SQUIRREL_LOG_FORMAT", "text")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Every schedule fires once at start; the worker runs what they queued. The log says when.
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut completed = 0;
    while completed < 2 {
        let line = lines.next().expect("workers keeps logging").unwrap();
        if line.contains("Completed:") && line.contains("job.id") {
            completed += 1;
        }
        seen.push(line);
        assert!(seen.len() < 500, "{seen:#?}");
    }
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(0), "{seen:#?}{rest:#?}");
    assert!(rest.iter().any(|l| l.contains("worker stopped")), "{rest:#?}");
    let counted = rows(&app.store, Grain::Hour, &site).await.len() + rows(&app.store, Grain::Day, &site).await.len();
    assert!(counted >= 2, "the jobs wrote rows: {seen:#?}");
    forget(&prefix).await;
}

on_both_backends!(workers_process_runs_schedules_and_stops_cleanly_on_sigterm);
