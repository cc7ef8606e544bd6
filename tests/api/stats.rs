//! `GET stats` and `GET realtime` against a hand-computed fixture: three visitors today (one of them
//! in a two-page session), one yesterday, a bot, all rolled up by the jobs' own recompute.

use serde_json::json;
use squirrel::store::{DAY_MS, Grain, HOUR_MS, NewPageview, now_ms};

use crate::api_client::{ApiClient, unique_email};
use crate::chart::{MIN, bot, pv, roll_up, setup};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    stats_totals_and_breakdowns_match_the_fixture,
    stats_parameters_are_checked,
    realtime_counts_the_last_five_minutes,
    many_stale_days_are_read_raw_while_the_background_refreshes_them
);

async fn stats_totals_and_breakdowns_match_the_fixture(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, site, id) = setup(&app).await;
    let m = Grain::Day.floor(now_ms());
    let at = |minutes: i64| m + minutes * MIN;
    app.store
        .insert_pageviews(&[
            NewPageview {
                referrer: "https://google.com/q".into(),
                referrer_domain: "google.com".into(),
                ..pv(&site, at(10), 1)
            },
            NewPageview { path: "/about".into(), ..pv(&site, at(12), 1) },
            NewPageview { browser: "Firefox".into(), utm_source: "news".into(), ..pv(&site, at(60), 2) },
            NewPageview { path: "/about".into(), country: "DE".into(), ..pv(&site, at(120), 3) },
            bot(&site, at(5)),
            pv(&site, m - 2 * HOUR_MS, 4),
        ])
        .await
        .unwrap();
    roll_up(&app, &site, m - DAY_MS, m + DAY_MS).await;

    let stats = alice.get(&format!("/api/v1/stats?site_id={id}&range=today")).await;
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(
        stats.body["totals"],
        json!({
            "pageviews": {"value": 4, "previous": 1},
            "visitors": {"value": 3, "previous": 1},
            "visits": {"value": 3, "previous": 1},
            "bounce_rate": {"value": 66.7, "previous": 100.0},
            "avg_visit_duration": {"value": 40, "previous": 0},
        })
    );
    assert!(stats.body.get("breakdown").is_none());

    let cases = [
        (
            "pages",
            "pageviews",
            json!([{"value": "/", "pageviews": 2, "visitors": 2}, {"value": "/about", "pageviews": 2, "visitors": 2}]),
        ),
        (
            "entry_pages",
            "visits",
            json!([{"value": "/", "visits": 2, "visitors": 2}, {"value": "/about", "visits": 1, "visitors": 1}]),
        ),
        (
            "exit_pages",
            "visits",
            json!([{"value": "/about", "visits": 2, "visitors": 2}, {"value": "/", "visits": 1, "visitors": 1}]),
        ),
        ("referrers", "visits", json!([{"value": "google.com", "visits": 1, "visitors": 1}])),
        ("utm_source", "pageviews", json!([{"value": "news", "pageviews": 1, "visitors": 1}])),
        ("utm_medium", "pageviews", json!([])),
        (
            "browsers",
            "pageviews",
            json!([{"value": "Chrome", "pageviews": 3, "visitors": 2}, {"value": "Firefox", "pageviews": 1, "visitors": 1}]),
        ),
        ("os", "pageviews", json!([{"value": "Linux", "pageviews": 4, "visitors": 3}])),
        ("devices", "pageviews", json!([{"value": "desktop", "pageviews": 4, "visitors": 3}])),
        ("countries", "pageviews", json!([{"value": "DE", "pageviews": 1, "visitors": 1}])),
    ];
    for (name, _, expected) in &cases {
        let answer = alice.get(&format!("/api/v1/stats?site_id={id}&range=today&breakdown={name}")).await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.body);
        assert_eq!(answer.body["breakdown"]["results"], *expected, "{name}");
        assert_eq!(answer.body["breakdown"]["count"], expected.as_array().unwrap().len(), "{name}");
    }

    let second = alice.get(&format!("/stats?site_id={id}&range=today&breakdown=pages&limit=1&page=2")).await.body;
    assert_eq!(second["breakdown"]["results"], json!([{"value": "/about", "pageviews": 2, "visitors": 2}]));
    assert_eq!((second["breakdown"]["count"].as_i64(), second["breakdown"]["page"].as_i64()), (Some(2), Some(2)));

    let about = alice.get(&format!("/api/v1/stats?site_id={id}&range=today&path=/about&breakdown=browsers")).await.body;
    assert_eq!(about["totals"]["pageviews"], json!({"value": 2, "previous": 0}));
    assert_eq!(about["totals"]["visitors"]["value"], 2);
    assert_eq!(about["totals"]["visits"]["value"], 2, "sessions that viewed /about");
    assert_eq!(about["breakdown"]["results"], json!([{"value": "Chrome", "pageviews": 2, "visitors": 2}]));

    let csv = app
        .http
        .get(format!("{}/api/v1/stats?site_id={id}&range=today&breakdown=pages&format=csv", app.base))
        .header("cookie", alice.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename="));
    assert_eq!(csv.text().await.unwrap(), "pages,pageviews,visitors\r\n/,2,2\r\n/about,2,2\r\n");

    let week = alice.get(&format!("/api/v1/stats?site_id={id}&range=last_7_days")).await.body;
    assert_eq!(week["totals"]["pageviews"]["value"], 5, "today's four and yesterday's one");
    assert_eq!(week["totals"]["visits"], json!({"value": 4, "previous": 0}), "from the per-day visit totals");
    assert_eq!(week["totals"]["bounce_rate"]["value"], 75.0);
    assert_eq!(week["totals"]["avg_visit_duration"]["value"], 30);

    // Daily ranges read the per-day breakdown rollups, refreshed when a day's raw rows change.
    let pages = |body: &serde_json::Value| body["breakdown"]["results"].clone();
    let week = alice.get(&format!("/api/v1/stats?site_id={id}&range=last_7_days&breakdown=pages")).await.body;
    assert_eq!(
        pages(&week),
        json!([{"value": "/", "pageviews": 3, "visitors": 3}, {"value": "/about", "pageviews": 2, "visitors": 2}])
    );
    let entries = alice.get(&format!("/api/v1/stats?site_id={id}&range=last_7_days&breakdown=entry_pages")).await.body;
    assert_eq!(pages(&entries)[0], json!({"value": "/", "visits": 3, "visitors": 3}));
    app.store.insert_pageviews(&[NewPageview { path: "/late".into(), ..pv(&site, m - 3 * HOUR_MS, 6) }]).await.unwrap();
    let stale = alice.get(&format!("/api/v1/stats?site_id={id}&range=last_7_days&breakdown=pages")).await.body;
    assert_eq!(pages(&stale), pages(&week), "as the chart: nothing new until the day is rolled up again");
    roll_up(&app, &site, m - DAY_MS, m).await;
    let fresh = alice.get(&format!("/api/v1/stats?site_id={id}&range=last_7_days&breakdown=pages")).await.body;
    assert_eq!(fresh["breakdown"]["count"], 3);
    assert_eq!(pages(&fresh)[2], json!({"value": "/late", "pageviews": 1, "visitors": 1}));
}

async fn stats_parameters_are_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _, id) = setup(&app).await;
    let cases = [
        (String::new(), "site_id parameter is required"),
        (format!("site_id={id}&breakdown=cities"), "Invalid breakdown. Must be one of: pages, entry_pages"),
        (format!("site_id={id}&breakdown=pages&limit=0"), "Invalid limit"),
        (format!("site_id={id}&breakdown=pages&page=x"), "Invalid page"),
        (format!("site_id={id}&format=xml"), "Invalid format"),
        (format!("site_id={id}&format=csv"), "format=csv needs a breakdown"),
        (format!("site_id={id}&range=forever"), "Invalid range"),
        (format!("site_id={id}&timezone_offset=x"), "Invalid timezone_offset"),
    ];
    for (query, message) in cases {
        let answer = alice.get(&format!("/api/v1/stats?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert!(answer.error().starts_with(message), "{query}: {}", answer.body);
    }
    let bob = ApiClient::signup(&app, &unique_email()).await;
    assert_eq!(bob.get(&format!("/api/v1/stats?site_id={id}")).await.status, 404);
    assert_eq!(bob.get(&format!("/api/v1/realtime?site_id={id}")).await.status, 404);
    assert_eq!(ApiClient::anonymous(&app).get(&format!("/api/v1/stats?site_id={id}")).await.status, 401);
    let token =
        alice.post("/api/v1/auth/tokens", json!({"name": "ci"})).await.body["token"].as_str().unwrap().to_string();
    let script = ApiClient::with_token(&app, &token);
    assert_eq!(script.get(&format!("/api/v1/stats?site_id={id}&breakdown=pages")).await.status, 200);
    assert_eq!(script.get(&format!("/api/v1/realtime?site_id={id}")).await.status, 200);
}

async fn realtime_counts_the_last_five_minutes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, site, id) = setup(&app).await;
    let now = now_ms();
    app.store
        .insert_pageviews(&[
            pv(&site, now - MIN, 1),
            pv(&site, now - 2 * MIN, 1),
            pv(&site, now - 3 * MIN, 2),
            pv(&site, now - 6 * MIN, 3),
            bot(&site, now - MIN),
        ])
        .await
        .unwrap();
    let answer = alice.get(&format!("/api/v1/realtime?site_id={id}")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({"visitors": 2, "pageviews": 3, "window_seconds": 300}));
}

async fn many_stale_days_are_read_raw_while_the_background_refreshes_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, site, id) = setup(&app).await;
    let today = Grain::Day.floor(now_ms());
    let rows: Vec<NewPageview> = (1..=10)
        .flat_map(|d| {
            let at = today - d * DAY_MS + HOUR_MS;
            [pv(&site, at, d), NewPageview { path: "/b".into(), ..pv(&site, at + MIN, d) }]
        })
        .collect();
    app.store.insert_pageviews(&rows).await.unwrap();
    roll_up(&app, &site, today - 11 * DAY_MS, today + DAY_MS).await;
    let expected =
        json!([{"value": "/", "pageviews": 10, "visitors": 10}, {"value": "/b", "pageviews": 10, "visitors": 10}]);
    let url = format!("/api/v1/stats?site_id={id}&range=last_30_days&breakdown=pages");
    let first = alice.get(&url).await.body;
    assert_eq!(first["breakdown"]["results"], expected, "ten stale days: read raw, exactly");
    assert_eq!(first["totals"]["visits"]["value"], 10);
    // The background task refreshes the days; wait for it with a deadline, then read the day rows.
    let (start, end) = (today - 29 * DAY_MS, today + DAY_MS);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.store.refresh_daily_breakdowns(site.id, start, end, 0).await.unwrap() > 0 {
        assert!(std::time::Instant::now() < deadline, "background refresh did not finish");
        tokio::task::yield_now().await;
    }
    let second = alice.get(&url).await.body;
    assert_eq!(second["breakdown"]["results"], expected, "the day rows agree with the raw rows");
    assert_eq!(second["totals"]["visits"]["value"], 10);
}
