//! `RETENTION_DAYS`: pruning deletes only raw pageviews older than the cutoff, after rolling them up,
//! and nothing afterwards (backfills, explicit recomputes, the statistics API) loses a pruned day.

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use squirrel::jobs::aggregate::{self, DailyArgs, HourlyArgs};
use squirrel::jobs::{Dispatch, Queue, QueueSettings, retention, scheduler};
use squirrel::store::{DAY_MS, Grain, HOUR_MS, NewPageview, RollupRow, Site, Store, now_ms};
use tokio_util::sync::CancellationToken;

use crate::api_client::ApiClient;
use crate::chart::{MIN, bot, pv, roll_up, setup};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    prune_deletes_only_old_raw_rows_and_no_rollup_or_statistic_changes,
    prune_dry_run_reports_per_site_and_changes_nothing,
    workers_prune_every_hour_when_retention_is_set
);

fn today() -> i64 {
    Grain::Day.floor(now_ms())
}

fn days_ago(n: i64) -> i64 {
    today() - n * DAY_MS
}

async fn rollups(store: &Store, site: &Site) -> (Vec<RollupRow>, Vec<RollupRow>) {
    let (start, end) = (days_ago(400), today() + DAY_MS);
    (
        store.rollup_rows(Grain::Hour, site.id, start, end).await.unwrap(),
        store.rollup_rows(Grain::Day, site.id, start, end).await.unwrap(),
    )
}

/// What the dashboard shows for the last 30 days: totals, two breakdowns and the chart.
async fn statistics(alice: &ApiClient, id: &str) -> Vec<Value> {
    let mut answers = Vec::new();
    for query in [
        "stats?range=last_30_days",
        "stats?range=last_30_days&breakdown=pages",
        "stats?range=last_30_days&breakdown=referrers",
        "chart?range=last_30_days&timezone_offset=0",
    ] {
        let answer = alice.get(&format!("/api/v1/{query}&site_id={id}")).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
        answers.push(answer.body);
    }
    answers
}

async fn prune_deletes_only_old_raw_rows_and_no_rollup_or_statistic_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, site, id) = setup(&app).await;
    let other = app.create_site().await;
    let google = |at, visitor| NewPageview {
        referrer: "https://google.com/q".into(),
        referrer_domain: "google.com".into(),
        ..pv(&site, at, visitor)
    };
    let old = days_ago(20) + 9 * HOUR_MS;
    app.store
        .insert_pageviews(&[
            google(old, 1),
            NewPageview { path: "/about".into(), ..pv(&site, old + 5 * MIN, 1) },
            pv(&site, old + 3 * HOUR_MS, 2),
            bot(&site, old),
            pv(&site, days_ago(12) + 23 * HOUR_MS, 3),
            pv(&site, days_ago(2) + HOUR_MS, 4),
            NewPageview { path: "/new".into(), ..pv(&site, days_ago(2) + 2 * HOUR_MS, 5) },
            // Another site whose old days were never rolled up: the prune must do it first.
            pv(&other, days_ago(15) + HOUR_MS, 6),
            pv(&other, days_ago(15) + HOUR_MS + MIN, 6),
            pv(&other, days_ago(1), 7),
        ])
        .await
        .unwrap();
    roll_up(&app, &site, days_ago(21), today() + DAY_MS).await;
    let statistics_before = statistics(&alice, &id).await;
    assert_eq!(statistics_before[0]["totals"]["pageviews"]["value"], 6, "{}", statistics_before[0]);
    let rollups_before = rollups(&app.store, &site).await;

    let mut out = Vec::new();
    let report =
        retention::prune(&app.store, 10, false, Utc::now(), &CancellationToken::new(), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(report.cutoff, days_ago(10), "{text}");
    assert_eq!(report.sites, [(site.identifier.clone(), 5), (other.identifier.clone(), 2)], "{text}");
    assert_eq!(report.total, 7);
    let kept: Vec<i64> = app.pageviews(&site).await.iter().map(|p| p.row.created_at).collect();
    assert_eq!(kept, [days_ago(2) + HOUR_MS, days_ago(2) + 2 * HOUR_MS], "only rows after the cutoff stay");
    assert_eq!(app.pageviews(&other).await.len(), 1);
    assert_eq!(app.store.pruned_before().await.unwrap(), Some(days_ago(10)));

    assert_eq!(rollups(&app.store, &site).await, rollups_before, "pruning changes no rollup");
    let (hours, days) = rollups(&app.store, &other).await;
    let counts = |rows: &[RollupRow]| rows.iter().map(|r| (r.bucket, r.pageview_count)).collect::<Vec<_>>();
    assert_eq!(counts(&days), [(days_ago(15), 2)], "rolled up before its raw rows went");
    assert_eq!(counts(&hours), [(days_ago(15) + HOUR_MS, 2)]);

    // Everything that recomputes from raw rows leaves the pruned days alone.
    let (store, now, sink) = (&app.store, Utc::now(), &mut std::io::sink());
    let dispatch = Dispatch::Direct(store.clone());
    scheduler::queue_backfill_missing_hours(store, &dispatch, now, sink).await.unwrap();
    scheduler::queue_backfill_missing_days(store, &dispatch, 30, now, sink).await.unwrap();
    let daily = DailyArgs { days: 40, start: None, end: None, site: None, verbose: false };
    aggregate::daily(store, &daily, now, sink).await.unwrap();
    let hourly = HourlyArgs { hours: 40 * 24, start: None, end: None, site: None, verbose: false };
    aggregate::hourly(store, &hourly, now, sink).await.unwrap();
    assert_eq!(rollups(&app.store, &site).await, rollups_before, "backfills and recomputes keep pruned days");
    assert_eq!(counts(&rollups(&app.store, &other).await.1), [(days_ago(15), 2), (days_ago(1), 1)]);
    assert_eq!(statistics(&alice, &id).await, statistics_before, "the API answers as before the prune");

    let again =
        retention::prune(&app.store, 10, false, Utc::now(), &CancellationToken::new(), &mut std::io::sink()).await;
    assert_eq!(again.unwrap().total, 0);
    app.shutdown().await;
}

async fn prune_dry_run_reports_per_site_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    app.store
        .insert_pageviews(&[pv(&site, days_ago(30), 1), pv(&site, days_ago(9), 2), pv(&site, days_ago(1), 3)])
        .await
        .unwrap();
    let mut out = Vec::new();
    let report = retention::prune(&app.store, 8, true, Utc::now(), &CancellationToken::new(), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(report.sites, [(site.identifier.clone(), 2)]);
    let cutoff = chrono::DateTime::from_timestamp_millis(days_ago(8)).unwrap().format("%Y-%m-%dT00:00:00").to_string();
    assert!(text.contains(&cutoff), "names the cutoff {cutoff}: {text}");
    assert!(text.contains(&format!("Site {}: would delete 2 pageviews", site.identifier)), "{text}");
    assert_eq!(app.pageviews(&site).await.len(), 3, "a dry run deletes nothing");
    assert_eq!(app.store.pruned_before().await.unwrap(), None);
    assert!(rollups(&app.store, &site).await.1.is_empty(), "nor rolls anything up");

    // The same through the binary; and what it says without RETENTION_DAYS or with too small a one.
    let squirrel = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_squirrel"));
        cmd.current_dir(std::env::temp_dir()).env("DATABASE_URL", &app.db.url).env_remove("RETENTION_DAYS");
        cmd
    };
    let out = squirrel().args(["prune", "--dry-run"]).env("RETENTION_DAYS", "8").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("Site {}: would delete 2 pageviews", site.identifier)), "{stdout}");
    let out = squirrel().arg("prune").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("RETENTION_DAYS is not set"));
    let out = squirrel().arg("prune").env("RETENTION_DAYS", "3").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RETENTION_DAYS"), "the error names the variable");
    assert_eq!(app.pageviews(&site).await.len(), 3);
    app.shutdown().await;
}

async fn workers_prune_every_hour_when_retention_is_set(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    app.store.insert_pageviews(&[pv(&site, days_ago(40), 1), pv(&site, days_ago(1), 2)]).await.unwrap();
    let url = std::env::var("REDIS_URL_FOR_TESTS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("squirrel:t:{}:", uuid::Uuid::new_v4().simple());
    let settings = QueueSettings {
        heartbeat_ttl: Duration::from_secs(15),
        dedup_ttl: Duration::from_secs(600),
        max_attempts: 3,
        retry_delay: Duration::ZERO,
        dead_cap: 100,
    };
    let queue = Queue::open(&url, &prefix, "aggregations", settings).expect("queue opens");
    let stop = CancellationToken::new();
    let pruning = tokio::spawn(retention::run_every_period(app.store.clone(), queue, 30, stop.clone()));
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = app.pageviews(&site).await.len();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    pruning.await.unwrap();
    assert_eq!(left, 1, "the first period prunes at once");
    assert_eq!(rollups(&app.store, &site).await.1.len(), 1, "the pruned day was rolled up first");
    let mut conn = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(keys).query_async(&mut conn).await.unwrap();
    }
    app.shutdown().await;
}
