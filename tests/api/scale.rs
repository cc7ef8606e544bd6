//! Scale-out with the real binary: two `serve` and two `workers` processes on one PostgreSQL
//! database and one Redis (a key prefix of the test's own), under load. Afterwards the rollups,
//! sessions and the stats API equal the raw rows exactly, a single process recomputing everything
//! changes nothing, and no site+window was ever aggregated by two jobs at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use squirrel::store::{Grain, Store};

use crate::api_client::ApiClient;
use crate::faults::settled;
use crate::helpers::*;
use crate::jobs::{forget, queue_at, redis_url, settings, test_prefix};
use crate::process::*;
use crate::telemetry::{Behaviour, Receiver};

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serves_and_two_workers_give_the_exact_totals_of_one() {
    let mut receiver = Receiver::start(Behaviour::Accept).await;
    let db = TestDb::create(Backend::Postgres).await;
    let prefix = test_prefix();
    let with_redis = |mut cmd: std::process::Command| {
        cmd.env("REDIS_URL", redis_url()).env("SQUIRREL_REDIS_PREFIX", &prefix);
        cmd
    };
    let serves: Vec<Process> = (0..2)
        .map(|_| Process::spawn_serve(squirrel(&db.url)))
        .collect::<Vec<_>>()
        .into_iter()
        .map(Process::listening)
        .collect();
    let mut workers: Vec<Process> = (0..2)
        .map(|_| {
            let mut cmd = with_redis(squirrel(&db.url));
            // Each job's span, with its site+window and start and end times, goes to the receiver.
            cmd.env("AXIOM_API_TOKEN", "xaat-scale-test")
                .env("AXIOM_DOMAIN", receiver.base())
                .env("OTEL_BSP_MAX_QUEUE_SIZE", "1000000")
                .arg("workers");
            Process::spawn(cmd)
        })
        .collect();
    // Both wait on the queue before the first job is queued: one still starting up (a busy suite
    // once delayed a start by seconds) would leave every job to the other.
    for worker in &mut workers {
        tokio::task::block_in_place(|| {
            worker.wait_for_line("the worker waits for jobs", LONG, |line| line.contains("worker started"))
        });
    }

    // One account and three sites, through the API of one serve; statistics read from the other.
    let mut owner =
        ApiClient { base: serves[0].base.clone(), http: reqwest::Client::new(), cookie: None, bearer: None };
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let answer = owner.post("/api/v1/auth/signup", serde_json::json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    owner.keep_cookie(&answer);
    let mut sites = Vec::new();
    for name in ["one", "two", "three"] {
        let site = owner.create_site(name).await;
        sites.push((site["id"].as_str().unwrap().to_string(), site["identifier"].as_str().unwrap().to_string()));
    }
    let identifiers: Vec<String> = sites.iter().map(|(_, identifier)| identifier.clone()).collect();

    // Every client's requests alternate between the serves and the sites, so each visitor's
    // pageviews are written by both processes.
    let targets: Vec<Target> = serves
        .iter()
        .flat_map(|s| identifiers.iter().map(|site| Target { base: s.base.clone(), site: site.clone() }))
        .collect();
    let load = Load::start(&targets, 12, "scale");
    // Jobs run while pageviews keep coming, on both workers.
    for _ in 0..3 {
        load.until_acknowledged(200, LONG).await;
        enqueue_everything(&with_redis, &db.url);
    }
    let outcome = load.stop().await;
    enqueue_everything(&with_redis, &db.url);

    let store = Store::connect(&squirrel::config::Config::for_tests(&db.url).store).await.unwrap();
    let queue = queue_at(&redis_url(), &prefix, settings());
    let mut site_ids = Vec::new();
    for identifier in &identifiers {
        site_ids.push(store.site_by_identifier(identifier).await.unwrap().unwrap().id);
    }
    settled(&store, &queue, &site_ids).await.unwrap_or_else(|state| panic!("{state}"));
    let stored = stored_paths(&db.url, &identifiers).await;
    assert_eq!(assert_every_acknowledged_stored(&outcome, &stored, "two serves"), 0, "none stored unanswered");

    let mut rows_before = Vec::new();
    for ((uuid, _), &site_id) in sites.iter().zip(&site_ids) {
        let raw = store.pageviews_of_site(site_id).await.unwrap();
        let mut visitors_per_hour: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        for p in &raw {
            let hour = p.row.created_at - p.row.created_at % Grain::Hour.ms();
            visitors_per_hour.entry(hour).or_default().insert(p.row.visitor_id);
        }
        let visitors: BTreeSet<i64> = raw.iter().map(|p| p.row.visitor_id).collect();
        let hourly = store.rollup_rows(Grain::Hour, site_id, 0, i64::MAX / 2).await.unwrap();
        let daily = store.rollup_rows(Grain::Day, site_id, 0, i64::MAX / 2).await.unwrap();
        let expected_hours: Vec<(i64, i64, i64)> = visitors_per_hour
            .iter()
            .map(|(hour, v)| {
                let n = raw.iter().filter(|p| p.row.created_at - p.row.created_at % Grain::Hour.ms() == *hour).count();
                (*hour, n as i64, v.len() as i64)
            })
            .collect();
        let hours: Vec<(i64, i64, i64)> =
            hourly.iter().map(|r| (r.bucket, r.pageview_count, r.unique_session_count)).collect();
        assert_eq!(hours, expected_hours, "hourly rows = raw pageviews and distinct visitors per hour");
        assert_eq!(daily.iter().map(|r| r.pageview_count).sum::<i64>(), raw.len() as i64, "daily total");
        let sessions = store.sessions_of_site(site_id).await.unwrap();
        assert_eq!(sessions.iter().map(|s| s.pageview_count).sum::<i64>(), raw.len() as i64, "session pageviews");
        // Each client is one visitor whose pageviews are seconds apart: one session each.
        let session_visitors: BTreeSet<i64> = sessions.iter().map(|s| s.visitor_id).collect();
        assert_eq!(sessions.len(), session_visitors.len(), "one session per visitor");

        for range in ["today", "last_7_days"] {
            let stats = owner.get(&format!("/api/v1/stats?site_id={uuid}&range={range}&timezone_offset=0")).await;
            assert_eq!(stats.status, 200, "{}", stats.body);
            let totals = &stats.body["totals"];
            if range == "last_7_days" || daily.len() == 1 {
                assert_eq!(totals["pageviews"]["value"], raw.len() as i64, "{range}: {totals}");
                assert_eq!(totals["visitors"]["value"], visitors.len() as i64, "{range}: {totals}");
            }
        }
        rows_before.push((hourly, daily, sessions));
    }

    // One process recomputing every window of the last two days finds nothing to change.
    for args in [["aggregate-hourly-stats", "--hours", "48"], ["aggregate-daily-stats", "--days", "2"]] {
        let (code, out, err) = run(squirrel(&db.url).args(args));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(" 0 pageviews processed"), "{args:?}: {out}");
    }
    for (&site_id, before) in site_ids.iter().zip(&rows_before) {
        let hourly = store.rollup_rows(Grain::Hour, site_id, 0, i64::MAX / 2).await.unwrap();
        let daily = store.rollup_rows(Grain::Day, site_id, 0, i64::MAX / 2).await.unwrap();
        let sessions = store.sessions_of_site(site_id).await.unwrap();
        assert_eq!((&hourly, &daily, &sessions), (&before.0, &before.1, &before.2), "one process agrees");
    }

    let mut completed_per_process = Vec::new();
    for process in workers {
        let (code, lines) = tokio::task::block_in_place(|| process.terminate());
        assert_eq!(code, Some(0), "{lines:#?}");
        completed_per_process.push(lines.iter().filter(|l| l.contains("Completed:") && l.contains("job.id")).count());
    }
    assert!(completed_per_process.iter().all(|&n| n > 0), "both workers ran jobs: {completed_per_process:?}");
    for process in serves {
        let (code, lines) = tokio::task::block_in_place(|| process.terminate());
        assert_eq!(code, Some(0), "{lines:#?}");
    }

    // No two jobs for one site+window ever ran at the same time (the workers flushed at exit).
    receiver.drain();
    let mut runs: HashMap<[String; 4], Vec<(u64, u64)>> = HashMap::new();
    for span in receiver.spans().into_iter().filter(|s| s.name == "process aggregations") {
        let key = ["job.kind", "site.identifier", "aggregation.start", "aggregation.end"]
            .map(|k| span.attrs.get(k).cloned().unwrap_or_default());
        runs.entry(key).or_default().push((span.start, span.end));
    }
    let total: usize = runs.values().map(Vec::len).sum();
    assert!(total >= completed_per_process.iter().sum::<usize>(), "every job's span arrived: {total}");
    for (key, mut times) in runs {
        times.sort();
        for pair in times.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{key:?} ran twice at once: {pair:?}");
        }
    }
    store.close().await;
    forget(&prefix).await;
}

/// Queues every window with new pageviews (as the schedules do), from the CLI.
fn enqueue_everything(with_redis: &impl Fn(std::process::Command) -> std::process::Command, database_url: &str) {
    for args in [&["queue-current-hour"][..], &["queue-current-day"], &["queue-backfill-missing-hours"]] {
        let (code, _, err) = run(with_redis(squirrel(database_url)).args(args));
        assert_eq!(code, 0, "{args:?}: {err}");
    }
}
