//! `GET chart` against hand-computed fixtures: pageviews inserted at chosen instants around the
//! viewer's local midnight and month ends, rolled up with the jobs' own recompute, then read back in
//! time zones −330 (India: half-hour), 0 and +300 (New York winter), JavaScript's minutes-west sign.

use chrono::{Datelike, Days, NaiveDate};
use serde_json::{Value, json};
use squirrel::store::{DAY_MS, Grain, HOUR_MS, NewPageview, Site, now_ms};

use crate::api_client::{ApiClient, unique_email};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    today_and_yesterday_are_cut_at_local_midnight_in_every_zone,
    daily_ranges_follow_the_local_calendar_and_month_ends,
    chart_parameters_are_checked_with_messages,
);

pub(crate) const MIN: i64 = 60_000;

pub(crate) fn pv(site: &Site, at: i64, visitor: i64) -> NewPageview {
    NewPageview {
        site_id: site.id,
        created_at: at,
        url: "https://e.com/".into(),
        path: "/".into(),
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

pub(crate) fn bot(site: &Site, at: i64) -> NewPageview {
    NewPageview { is_bot: true, device_type: "bot", ..pv(site, at, 999) }
}

/// Runs the hourly and daily rollups over every UTC day touching `[start, end)`, a day at a time.
pub(crate) async fn roll_up(app: &TestApp, site: &Site, start: i64, end: i64) {
    let mut day = Grain::Day.floor(start);
    while day < end {
        app.store.recompute_rollup(Grain::Hour, site.id, day, day + DAY_MS).await.unwrap();
        app.store.recompute_rollup(Grain::Day, site.id, day, day + DAY_MS).await.unwrap();
        day += DAY_MS;
    }
}

/// Alice and her site, as the API and the store know them.
pub(crate) async fn setup(app: &TestApp) -> (ApiClient, Site, String) {
    let alice = ApiClient::signup(app, &unique_email()).await;
    let created = alice.create_site("Blog").await;
    let site = app.store.site_by_identifier(created["identifier"].as_str().unwrap()).await.unwrap().unwrap();
    (alice, site, created["id"].as_str().unwrap().to_string())
}

fn iso_utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn date_of(ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().date_naive()
}

fn ms_of(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
}

async fn today_and_yesterday_are_cut_at_local_midnight_in_every_zone(backend: Backend) {
    let app = spawn_app(backend).await;
    for offset in [-330_i64, 0, 300] {
        let (alice, site, id) = setup(&app).await;
        let now = now_ms();
        // The viewer's local midnight today, as a UTC instant.
        let midnight = Grain::Day.floor(now - offset * MIN) + offset * MIN;
        app.store
            .insert_pageviews(&[
                pv(&site, midnight + 10 * MIN, 1),
                pv(&site, midnight + 20 * MIN, 1),
                pv(&site, midnight + 70 * MIN, 2),
                pv(&site, midnight + 23 * HOUR_MS + 59 * MIN, 2),
                bot(&site, midnight + 15 * MIN),
                pv(&site, midnight - 5 * MIN, 3),      // yesterday's last local hour
                pv(&site, midnight - 24 * HOUR_MS, 4), // yesterday's first local minute
                pv(&site, midnight + 24 * HOUR_MS, 5), // tomorrow
            ])
            .await
            .unwrap();
        roll_up(&app, &site, midnight - 2 * DAY_MS, midnight + 2 * DAY_MS).await;

        let today = alice.get(&format!("/api/v1/chart?site_id={id}&range=today&timezone_offset={offset}")).await;
        assert_eq!(today.status, 200, "{}", today.body);
        let body = &today.body;
        assert_eq!((body["range"].as_str(), body["data_type"].as_str()), (Some("today"), Some("hourly")));
        assert_eq!(body["timezone_offset"], offset, "echoed");
        let hours = body["hours"].as_array().unwrap();
        assert_eq!(hours.len(), 24, "offset {offset}");
        assert_eq!(
            hours[0],
            json!({"hour": iso_utc(midnight), "hour_display": "12:00 AM", "pageviews": 2, "unique_sessions": 1}),
            "offset {offset}"
        );
        assert_eq!(
            hours[1],
            json!({"hour": iso_utc(midnight + HOUR_MS), "hour_display": "1:00 AM", "pageviews": 1, "unique_sessions": 1})
        );
        assert_eq!((hours[13]["hour_display"].as_str(), hours[13]["pageviews"].as_i64()), (Some("1:00 PM"), Some(0)));
        assert_eq!((hours[23]["hour_display"].as_str(), hours[23]["pageviews"].as_i64()), (Some("11:00 PM"), Some(1)));
        assert_eq!(body["total_pageviews"], 4, "offset {offset}");
        assert_eq!(body["total_unique_sessions"], 2, "two visitors, not the sum of hours (3)");
        if offset == -330 {
            assert!(
                body["hours"][0]["hour"].as_str().unwrap().contains(":30:00+00:00"),
                "India's hours start at :30 UTC"
            );
        }

        let yesterday = alice.get(&format!("/chart?site_id={id}&range=yesterday&timezone_offset={offset}")).await.body;
        let hours = yesterday["hours"].as_array().unwrap();
        assert_eq!(hours[0]["pageviews"], 1, "offset {offset}");
        assert_eq!(hours[0]["hour"], iso_utc(midnight - DAY_MS));
        assert_eq!(hours[23]["pageviews"], 1);
        assert_eq!(
            (yesterday["total_pageviews"].as_i64(), yesterday["total_unique_sessions"].as_i64()),
            (Some(2), Some(2))
        );

        let compared = alice
            .get(&format!("/api/v1/chart?site_id={id}&range=today&timezone_offset={offset}&compare=previous"))
            .await
            .body;
        assert_eq!(compared["total_pageviews"], 4);
        assert_eq!(compared["previous"]["total_pageviews"], 2);
        assert_eq!(compared["previous"]["hours"][23]["pageviews"], 1);
    }
}

async fn daily_ranges_follow_the_local_calendar_and_month_ends(backend: Backend) {
    let app = spawn_app(backend).await;
    for offset in [-330_i64, 0, 300] {
        let (alice, site, id) = setup(&app).await;
        let today = date_of(now_ms() - offset * MIN);
        let first_of_month = today.with_day(1).unwrap();
        let last_of_prev = first_of_month.pred_opt().unwrap();
        let noon = |d: NaiveDate| ms_of(d) + 12 * HOUR_MS;
        let two_days_ago = today.checked_sub_days(Days::new(2)).unwrap();
        let seven_days_ago = today.checked_sub_days(Days::new(7)).unwrap();
        app.store
            .insert_pageviews(&[
                pv(&site, noon(two_days_ago), 1),
                pv(&site, noon(two_days_ago) + MIN, 1),
                pv(&site, noon(two_days_ago) + 2 * MIN, 2),
                pv(&site, noon(seven_days_ago), 3),
                pv(&site, ms_of(last_of_prev) + 23 * HOUR_MS + 59 * MIN, 4), // last minute of last month (UTC)
                pv(&site, ms_of(first_of_month), 5),                         // first minute of this month (UTC)
                bot(&site, noon(two_days_ago)),
            ])
            .await
            .unwrap();
        roll_up(&app, &site, ms_of(last_of_prev.with_day(1).unwrap()), ms_of(today) + 2 * DAY_MS).await;

        // What each UTC day holds, by hand: (date, visitor) of every human pageview above.
        let stored = [
            (two_days_ago, 1),
            (two_days_ago, 1),
            (two_days_ago, 2),
            (seven_days_ago, 3),
            (last_of_prev, 4),
            (first_of_month, 5),
        ];
        let expected = |d: NaiveDate| {
            let on_day: Vec<i64> = stored.iter().filter(|(day, _)| *day == d).map(|(_, v)| *v).collect();
            let visitors: std::collections::BTreeSet<i64> = on_day.iter().copied().collect();
            (on_day.len() as i64, visitors.len() as i64)
        };
        let check = |body: &Value, first: NaiveDate, last: NaiveDate| {
            let days = body["days"].as_array().unwrap();
            assert_eq!(days.len() as i64, (last - first).num_days() + 1, "offset {offset}");
            let mut total = 0;
            for (i, entry) in days.iter().enumerate() {
                let day = first.checked_add_days(Days::new(i as u64)).unwrap();
                let (pageviews, visitors) = expected(day);
                total += pageviews;
                let want = json!({"day": day.format("%Y-%m-%d").to_string(), "day_display": day.format("%b %d").to_string(), "pageviews": pageviews, "unique_sessions": visitors});
                assert_eq!(entry, &want, "offset {offset}");
            }
            assert_eq!(body["total_pageviews"], total, "offset {offset}");
        };

        let week = alice.get(&format!("/api/v1/chart?site_id={id}&range=last_7_days&timezone_offset={offset}")).await;
        assert_eq!(week.status, 200, "{}", week.body);
        assert_eq!(week.body["data_type"], "daily");
        check(&week.body, today.checked_sub_days(Days::new(6)).unwrap(), today);
        assert_eq!(week.body["days"][4]["day"], two_days_ago.format("%Y-%m-%d").to_string());
        assert!(week.body["days"][4]["pageviews"].as_i64().unwrap() >= 3);

        let month =
            alice.get(&format!("/api/v1/chart?site_id={id}&range=last_month&timezone_offset={offset}")).await.body;
        check(&month, last_of_prev.with_day(1).unwrap(), last_of_prev);
        assert!(
            month["days"].as_array().unwrap().last().unwrap()["pageviews"].as_i64().unwrap() >= 1,
            "its last minute is its own"
        );

        let this =
            alice.get(&format!("/api/v1/chart?site_id={id}&range=this_month&timezone_offset={offset}")).await.body;
        check(&this, first_of_month, today);
        assert!(this["days"][0]["pageviews"].as_i64().unwrap() >= 1, "the first minute of the month is this month's");

        let thirty = alice.get(&format!("/api/v1/chart?site_id={id}&range=last_30_days&compare=previous")).await.body;
        assert_eq!(thirty["days"].as_array().unwrap().len(), 30);
        assert_eq!(thirty["previous"]["days"].as_array().unwrap().len(), 30);
        assert!(thirty.get("timezone_offset").is_none(), "not echoed when not given");
    }
}

async fn chart_parameters_are_checked_with_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _, id) = setup(&app).await;
    let cases: [(String, &str); 7] = [
        ("range=today".into(), "site_id parameter is required"),
        ("site_id=&range=today".into(), "site_id parameter is required"),
        ("site_id=abc".into(), "Invalid site_id"),
        (
            format!("site_id={id}&range=7d"),
            "Invalid range. Must be one of: today, yesterday, last_7_days, last_30_days, this_month, last_month",
        ),
        (format!("site_id={id}&timezone_offset=abc"), "Invalid timezone_offset"),
        (format!("site_id={id}&timezone_offset=100000"), "Invalid timezone_offset"),
        (format!("site_id={id}&compare=next"), "Invalid compare"),
    ];
    for (query, message) in cases {
        let answer = alice.get(&format!("/api/v1/chart?{query}")).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert!(answer.error().starts_with(message), "{query}: {}", answer.body);
    }
    let blank = alice.get(&format!("/api/v1/chart?site_id={id}&timezone_offset=")).await;
    assert_eq!(blank.status, 200, "a blank offset is no offset, not a 500");
    assert!(blank.body.get("timezone_offset").is_none());
    assert_eq!(blank.body["hours"].as_array().unwrap().len(), 24);
    assert_eq!((blank.body["range"].as_str(), blank.body["total_pageviews"].as_i64()), (Some("today"), Some(0)));
    let upper = alice.get(&format!("/api/v1/chart?site_id={}", id.to_uppercase())).await;
    assert_eq!(upper.status, 200, "UUIDs are case-insensitive");
    let post = alice.post(&format!("/api/v1/chart?site_id={id}"), json!({})).await;
    assert_eq!(post.status, 405);
    let _: Value = post.body;
}
