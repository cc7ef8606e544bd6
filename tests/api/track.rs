//! The tracking endpoint, end to end over HTTP, on both backends.

use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    pageview_is_stored_with_every_derived_field_when_200_returns,
    missing_or_blank_site_identifier_is_400_naming_the_problem,
    unknown_site_identifier_is_404,
    every_route_and_trailing_slash_tracks,
    post_bodies_fill_what_the_query_string_lacks,
    malformed_json_body_is_400_with_the_reason,
    oversized_body_is_413,
    other_methods_are_405_with_allow_header,
    any_origin_may_send_pageviews,
    bots_are_stored_flagged_and_left_out_of_counts,
    hostile_input_never_yields_a_5xx_and_is_stored_bounded,
    neither_ip_nor_user_agent_is_stored_and_visitors_are_told_apart,
    forwarded_for_is_believed_only_from_trusted_proxies,
    concurrent_pageviews_are_all_committed,
    pageview_for_a_site_deleted_meanwhile_is_404_not_500,
    a_client_that_closes_its_sending_side_still_gets_its_answer_and_its_pageview,
    a_body_that_stops_arriving_is_408_after_ten_seconds_and_nothing_is_stored,
);

async fn pageview_is_stored_with_every_derived_field_when_200_returns(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let qs = urlencode(r#"{"utm_source":"newsletter","utm_medium":"email","utm_campaign":"fall","q":"a b"}"#);
    let response = app
        .get_pv(
            &format!(
                "sid={}&h=https://example.com&p=/about&r=https://news.example.org:8443/item&qs={qs}&buster=123",
                site.identifier
            ),
            MAC_CHROME,
        )
        .await;
    let (status, body) = json(response).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    // A 200 means committed: the row is readable at once, no waiting.
    let rows = app.pageviews(&site).await;
    assert_eq!(rows.len(), 1);
    let pv = &rows[0].row;
    assert_eq!(pv.url, "https://example.com/about?utm_source=newsletter&utm_medium=email&utm_campaign=fall&q=a+b");
    assert_eq!(pv.path, "/about");
    assert_eq!(pv.referrer, "https://news.example.org:8443/item");
    assert_eq!(pv.referrer_domain, "news.example.org:8443");
    assert_eq!(
        (pv.utm_source.as_str(), pv.utm_medium.as_str(), pv.utm_campaign.as_str()),
        ("newsletter", "email", "fall")
    );
    assert_eq!((pv.browser.as_str(), pv.browser_version.as_str(), pv.os.as_str()), ("Chrome", "91.0.4472", "Mac OS X"));
    assert_eq!(pv.device_type, "desktop");
    assert!(!pv.is_bot);
    let now = squirrel::store::now_ms();
    assert!(now - pv.created_at < 60_000 && pv.created_at <= now, "created_at is the receive time in ms");
    assert_eq!(app.store.count_pageviews(site.id).await.unwrap(), 1);
}

async fn missing_or_blank_site_identifier_is_400_naming_the_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    for query in ["h=https://example.com&p=/", "sid=&p=/", "sid=%20%20"] {
        let (status, body) = json(app.get_pv(query, MAC_CHROME).await).await;
        assert_eq!((status, body), (400, json!({"error": "Missing site identifier"})), "query {query}");
    }
}

async fn unknown_site_identifier_is_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let long = "x".repeat(5000);
    for sid in ["invalid-site-ABC123", &site.identifier.to_lowercase(), &long] {
        let (status, body) = json(app.get_pv(&format!("sid={sid}&p=/"), MAC_CHROME).await).await;
        assert_eq!((status, body), (404, json!({"error": "Invalid site identifier"})));
    }
    assert!(app.pageviews(&site).await.is_empty());
}

async fn every_route_and_trailing_slash_tracks(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let routes = ["/api/v1/pv", "/pv", "/api/v1/track", "/track", "/api/v1/pv/", "/track/"];
    for (i, route) in routes.iter().enumerate() {
        let url = format!("{}{route}?sid={}&h=https://e.com&p=/r{i}", app.base, site.identifier);
        let status = app.http.get(url).send().await.unwrap().status();
        assert_eq!(status, 200, "{route}");
    }
    let paths: Vec<String> = app.pageviews(&site).await.into_iter().map(|p| p.row.path).collect();
    assert_eq!(paths, (0..routes.len()).map(|i| format!("/r{i}")).collect::<Vec<_>>());
}

async fn post_bodies_fill_what_the_query_string_lacks(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let sid = &site.identifier;
    // sendBeacon: empty body, everything in the query string.
    let r = app.post(&format!("/api/v1/pv?sid={sid}&h=https://e.com&p=/beacon"), "text/plain;charset=UTF-8", "").await;
    assert_eq!(r.status(), 200);
    // Form body (the original's POST), with the query string winning on `p`.
    let r = app
        .post(
            "/pv?p=/from-query",
            "application/x-www-form-urlencoded",
            format!("sid={sid}&h=https://e.com&p=/from-body&qs=%7B%7D"),
        )
        .await;
    assert_eq!(r.status(), 200);
    // fetch/sendBeacon with a JSON payload as text/plain (no preflight) and as application/json.
    let body = json!({"sid": sid, "h": "https://e.com", "p": "/json-text", "qs": {"utm_source": "x"}}).to_string();
    assert_eq!(app.post("/api/v1/track", "text/plain", body).await.status(), 200);
    let body = json!({"sid": sid, "h": "https://e.com", "p": "/json", "r": "https://ref.example/"}).to_string();
    assert_eq!(app.post("/track", "application/json", body).await.status(), 200);

    let rows = app.pageviews(&site).await;
    let paths: Vec<&str> = rows.iter().map(|p| p.row.path.as_str()).collect();
    assert_eq!(paths, ["/beacon", "/from-query", "/json-text", "/json"]);
    assert_eq!(rows[2].row.utm_source, "x");
    assert_eq!(rows[2].row.url, "https://e.com/json-text?utm_source=x");
    assert_eq!(rows[3].row.referrer_domain, "ref.example");
}

async fn malformed_json_body_is_400_with_the_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = json(app.post("/api/v1/pv", "application/json", "{\"sid\": ").await).await;
    assert_eq!(status, 400);
    let message = body["error"].as_str().unwrap();
    assert!(message.starts_with("Request body is not valid JSON"), "{message}");
    let (status, body) = json(app.post("/api/v1/pv", "application/json", "[1, 2]").await).await;
    assert_eq!((status, body), (400, json!({"error": "Request body must be a JSON object"})));
}

async fn oversized_body_is_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let body = format!("sid={}&p=/{}", site.identifier, "a".repeat(20_000));
    let (status, body) = json(app.post("/api/v1/pv", "application/x-www-form-urlencoded", body).await).await;
    assert_eq!((status, body), (413, json!({"error": "Request body too large (limit 16384 bytes)"})));
    assert!(app.pageviews(&site).await.is_empty());
}

async fn other_methods_are_405_with_allow_header(backend: Backend) {
    let app = spawn_app(backend).await;
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE, reqwest::Method::PATCH] {
        let response = app.http.request(method.clone(), format!("{}/api/v1/pv", app.base)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET, POST");
        let (_, body) = json(response).await;
        assert_eq!(body, json!({"error": "Method not allowed"}));
    }
}

async fn any_origin_may_send_pageviews(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/api/v1/pv", app.base))
        .header("origin", "https://some-blog.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let response = app
        .http
        .get(format!("{}/pv?sid={}&p=/", app.base, site.identifier))
        .header("origin", "https://another.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

async fn bots_are_stored_flagged_and_left_out_of_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let headless =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
    for ua in [MAC_CHROME, GOOGLEBOT, headless] {
        assert_eq!(app.get_pv(&format!("sid={}&p=/", site.identifier), ua).await.status(), 200);
    }
    let rows = app.pageviews(&site).await;
    let flags: Vec<(bool, &str)> = rows.iter().map(|p| (p.row.is_bot, p.row.device_type)).collect();
    assert_eq!(flags, [(false, "desktop"), (true, "bot"), (true, "bot")]);
    assert_eq!(app.store.count_pageviews(site.id).await.unwrap(), 1);
    let listed = app.store.all_sites().await.unwrap();
    assert_eq!(listed.iter().find(|s| s.identifier == site.identifier).unwrap().pageview_count, 1);
}

async fn hostile_input_never_yields_a_5xx_and_is_stored_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let sid = &site.identifier;
    let long = "%C3%A9".repeat(1500);
    let queries = [
        format!("sid={sid}&p=/a%00b&h=https://e.com%00"),
        format!("sid={sid}&p=/{long}&r=https://r.example/{long}&h=https://{long}"),
        format!("sid={sid}&p=%FF%FE%80&r=%C0%AF"),
        format!("sid={sid}&qs=%7B%22utm_source%22%3A%5B1%2C2%5D%7D"),
        format!("sid={sid}&qs={}", "%7B".repeat(3000)),
        format!("sid={sid}&sid=other&p=/dup&p=/dup2"),
    ];
    for query in &queries {
        let ua = format!("Mozilla/5.0 {}\u{1F600}", "x".repeat(8000));
        let status = app.get_pv(query, &ua).await.status();
        assert_eq!(status, 200, "query {}", &query[..query.len().min(80)]);
    }
    let rows = app.pageviews(&site).await;
    assert_eq!(rows.len(), queries.len());
    for pv in &rows {
        let pv = &pv.row;
        assert!(pv.path.len() <= 1024 && pv.url.len() <= 2048 && pv.referrer.len() <= 2048);
        assert!(pv.browser.len() <= 50 && pv.browser_version.len() <= 20 && pv.os.len() <= 50);
        assert!(!format!("{}{}{}", pv.path, pv.url, pv.referrer).contains('\0'));
    }
    assert_eq!(rows[0].row.path, "/ab");
    assert_eq!(rows[2].row.path, "\u{FFFD}\u{FFFD}\u{FFFD}");
    assert_eq!(rows[3].row.utm_source, "[1,2]");
    assert_eq!(rows[5].row.path, "/dup");
    // Control characters in a header value are refused by the HTTP layer itself; a raw non-UTF-8
    // User-Agent is accepted and read lossily.
    let response = app
        .http
        .get(format!("{}/pv?sid={sid}&p=/latin1", app.base))
        .header("user-agent", reqwest::header::HeaderValue::from_bytes(b"Mozilla/5.0 \xe9t\xe9").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn neither_ip_nor_user_agent_is_stored_and_visitors_are_told_apart(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let ua_a = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/119.0 MarkerAgentA";
    let ua_b = "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/119.0 MarkerAgentB";
    for ua in [ua_a, ua_a, ua_b] {
        assert_eq!(app.get_pv(&format!("sid={}&p=/", site.identifier), ua).await.status(), 200);
    }
    let rows = app.pageviews(&site).await;
    assert_eq!(rows[0].row.visitor_id, rows[1].row.visitor_id, "same IP and UA, same day: one visitor");
    assert_ne!(rows[0].row.visitor_id, rows[2].row.visitor_id, "another UA: another visitor");
    let stored = format!("{:?}", rows);
    assert!(!stored.contains("MarkerAgent") && !stored.contains("127.0.0.1"), "{stored}");
}

async fn forwarded_for_is_believed_only_from_trusted_proxies(backend: Backend) {
    for (trusted, expect_distinct) in [("", false), ("127.0.0.1", true)] {
        let app = spawn_app_with(backend, |c| {
            c.http.trusted_proxies = squirrel::config::TrustedProxies::parse(trusted).unwrap();
        })
        .await;
        let site = app.create_site().await;
        for ip in ["198.51.100.1", "198.51.100.2"] {
            let response = app
                .http
                .get(format!("{}/pv?sid={}&p=/", app.base, site.identifier))
                .header("user-agent", MAC_CHROME)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let rows = app.pageviews(&site).await;
        assert_eq!(rows[0].row.visitor_id != rows[1].row.visitor_id, expect_distinct, "TRUSTED_PROXIES={trusted:?}");
    }
}

async fn concurrent_pageviews_are_all_committed(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let requests = (0..300).map(|i| {
        let (http, url) = (app.http.clone(), format!("{}/api/v1/pv?sid={}&p=/c{i}", app.base, site.identifier));
        async move { http.get(url).header("user-agent", MAC_CHROME).send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.pageviews(&site).await.len(), 300);
}

async fn pageview_for_a_site_deleted_meanwhile_is_404_not_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let query = format!("sid={}&p=/", site.identifier);
    assert_eq!(app.get_pv(&query, MAC_CHROME).await.status(), 200); // caches the identifier
    assert!(app.store.delete_site(site.id).await.unwrap());
    let (status, body) = json(app.get_pv(&query, MAC_CHROME).await).await;
    assert_eq!((status, body), (404, json!({"error": "Invalid site identifier"})));
}

async fn a_client_that_closes_its_sending_side_still_gets_its_answer_and_its_pageview(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let request = format!(
        "GET /api/v1/pv?sid={}&h=https://example.com&p=/half HTTP/1.1\r\nHost: stats.example\r\n\
         User-Agent: {MAC_CHROME}\r\nConnection: close\r\n\r\n",
        site.identifier
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // A half-close right after the request: the server must not take it for a client gone away.
    stream.shutdown().await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(r#"{"status":"ok"}"#), "{answer}");
    let stored = app.pageviews(&site).await;
    assert_eq!(stored.iter().map(|p| p.row.path.as_str()).collect::<Vec<_>>(), ["/half"]);
}

async fn a_body_that_stops_arriving_is_408_after_ten_seconds_and_nothing_is_stored(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    // 100 bytes announced, 6 sent, and the connection left open: a stalled beacon.
    let request = format!(
        "POST /api/v1/pv?sid={} HTTP/1.1\r\nHost: stats.example\r\nUser-Agent: {MAC_CHROME}\r\n\
         Content-Type: text/plain\r\nContent-Length: 100\r\n\r\n{{\"p\":",
        site.identifier
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    // Until the JSON body is complete (the server may keep the connection open after it).
    while !answer.ends_with(b"}") {
        let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .expect("an answer within 30 s")
            .unwrap();
        assert_ne!(read, 0, "connection closed without a complete answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..read]);
    }
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.ends_with(r#"{"error":"The request body took too long to arrive"}"#), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("access-control-allow-origin: *"), "{answer}");
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_secs(9), "answered after {waited:?}, before the 10 s body timeout");
    assert!(app.pageviews(&site).await.is_empty());
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn futures_join_all<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// PostgreSQL only: the ingest writer keeps a connection of its own, outside the pool. A restart, an
/// administrator or a firewall can end it between two quiet moments; the next pageview must still be
/// stored, not answered 503.
#[tokio::test]
async fn the_postgres_ingest_writer_replaces_a_connection_ended_while_idle() {
    use sqlx::{Connection, Row};
    let app = spawn_app(Backend::Postgres).await;
    let site = app.create_site().await;
    let first = app.get_pv(&format!("sid={}&h=https://example.com&p=/before", site.identifier), MAC_CHROME).await;
    assert_eq!(first.status(), 200);

    let mut admin = sqlx::PgConnection::connect(&app.db.url).await.expect("admin connection");
    let ended = sqlx::query(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'squirrel-ingest' AND datname = current_database()) AS ended",
    )
    .fetch_one(&mut admin)
    .await
    .expect("terminate the writer's connection")
    .get::<i64, _>(0);
    assert_eq!(ended, 1, "the writer's connection shows in pg_stat_activity under its own name");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let second = app.get_pv(&format!("sid={}&h=https://example.com&p=/after", site.identifier), MAC_CHROME).await;
    assert_eq!(second.status(), 200, "{:?}", second.text().await);
    let stored = app.pageviews(&site).await;
    assert_eq!(stored.iter().map(|p| p.row.path.as_str()).collect::<Vec<_>>(), ["/before", "/after"]);
}
