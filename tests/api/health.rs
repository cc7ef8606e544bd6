//! `/health/live` and `/health/ready` (and `/up`, unchanged): ready answers 200 only when the database
//! answers and the ingest queue has room, otherwise 503 + `Retry-After` naming the failing part.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{Connection, Executor};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    live_and_ready_answer_ok_on_a_healthy_server,
    ready_names_a_dead_database_and_live_stays_up,
    ready_names_a_full_ingest_queue_until_the_database_catches_up
);

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http.get(format!("{}{path}", app.base)).send().await.expect("request sent")
}

async fn live_and_ready_answer_ok_on_a_healthy_server(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/health/live", "/api/v1/health/live", "/health/live/"] {
        let (status, body) = json(get(&app, path).await).await;
        assert_eq!((status, body), (200, json!({"status": "ok"})), "{path}");
    }
    for path in ["/health/ready", "/api/v1/health/ready"] {
        let response = get(&app, path).await;
        assert_eq!(response.headers()["cache-control"], "no-store");
        let (status, body) = json(response).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body, json!({"status": "ok", "checks": {"database": "ok", "ingest_queue": "ok"}}));
    }
    let (status, body) = json(get(&app, "/up").await).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("healthy")), "/up keeps the original's answer");
    app.shutdown().await;
}

async fn ready_names_a_dead_database_and_live_stays_up(backend: Backend) {
    let app = spawn_app(backend).await;
    app.store.close().await;
    let response = get(&app, "/health/ready").await;
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, body) = json(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["error"], "Not ready: database");
    assert_ne!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["ingest_queue"], "ok");
    let (status, _) = json(get(&app, "/health/live").await).await;
    assert_eq!(status, 200, "liveness does no I/O: a dead database is no reason to restart the process");
    app.shutdown().await;
}

/// Another connection holds the write lock (SQLite) or a table lock (PostgreSQL), so the writer's
/// batch waits and the one-row queue fills; readiness says so, and recovers once the lock goes.
async fn ready_names_a_full_ingest_queue_until_the_database_catches_up(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.ingest.queue = 1;
        config.ingest.batch = 1;
        // One writer: with PostgreSQL's default four, three blocked hits would never fill the queue.
        config.ingest.writers = Some(1);
        config.ingest.wait_ms = 10_000;
    })
    .await;
    let site = app.create_site().await;
    // One pageview first, so today's visitor salt exists and only the pageview insert waits.
    let warm = app.get_pv(&format!("sid={}&h=https://e.com&p=/", site.identifier), MAC_CHROME).await;
    assert_eq!(warm.status(), 200);
    let blocker = Blocker::lock(backend, &app.db.url).await;
    let hits: Vec<_> = (0..3)
        .map(|i| {
            let (http, base, sid) = (app.http.clone(), app.base.clone(), site.identifier.clone());
            tokio::spawn(async move {
                let url = format!("{base}/api/v1/pv?sid={sid}&h=https://e.com&p=/{i}");
                http.get(url).header("user-agent", MAC_CHROME).send().await.expect("sent").status().as_u16()
            })
        })
        .collect();
    let mut answer = (0, serde_json::Value::Null);
    for _ in 0..80 {
        answer = json(get(&app, "/health/ready").await).await;
        if answer.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    blocker.release().await;
    let (status, body) = answer;
    assert_eq!(status, 503, "the queue never filled: {body}");
    assert_eq!(body["error"], "Not ready: ingest_queue");
    assert_eq!(body["checks"]["database"], "ok", "reads still work under the write lock");
    for hit in hits {
        assert_eq!(hit.await.unwrap(), 200, "every waiting pageview is stored once the lock goes");
    }
    let (status, body) = json(get(&app, "/health/ready").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.pageviews(&site).await.len(), 4);
    app.shutdown().await;
}

/// A second connection holding the lock pageview inserts need.
enum Blocker {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Blocker {
    async fn lock(backend: Backend, url: &str) -> Blocker {
        match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.expect("second SQLite connection");
                conn.execute("BEGIN IMMEDIATE").await.expect("write lock");
                Blocker::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url).await.expect("second PostgreSQL connection");
                conn.execute("BEGIN").await.expect("begin");
                conn.execute("LOCK TABLE pageviews IN EXCLUSIVE MODE").await.expect("table lock");
                Blocker::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Blocker::Sqlite(mut conn) => conn.execute("ROLLBACK").await.map(drop).expect("unlock"),
            Blocker::Postgres(mut conn) => conn.execute("ROLLBACK").await.map(drop).expect("unlock"),
        }
    }
}

/// PostgreSQL behind a loopback relay the test cuts: the database becomes unreachable the way a
/// crashed or partitioned server does (open connections drop, new ones are refused), and readiness
/// says so within its timeout instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_an_unreachable_postgres_within_its_timeout() {
    let admin = url::Url::parse(&postgres_admin_url()).expect("admin URL");
    let server: SocketAddr = format!("{}:{}", admin.host_str().unwrap(), admin.port().unwrap_or(5432))
        .parse()
        .expect("PostgreSQL at an IP address");
    let relay = Relay::start(server).await;
    let app = spawn_app_with(Backend::Postgres, |config| {
        let mut url = url::Url::parse(&config.store.database_url).unwrap();
        url.set_port(Some(relay.port)).unwrap();
        config.store.database_url = url.to_string();
    })
    .await;
    let (status, body) = json(get(&app, "/health/ready").await).await;
    assert_eq!(status, 200, "through the relay: {body}");

    relay.cut.cancel();
    let started = Instant::now();
    let response = get(&app, "/health/ready").await;
    let waited = started.elapsed();
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, body) = json(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "Not ready: database");
    let reason = body["checks"]["database"].as_str().unwrap();
    assert!(reason == "unavailable" || reason == "no answer within 2000 ms", "{reason}");
    assert!(waited < Duration::from_secs(4), "answered within the 2 s check timeout (plus slack): {waited:?}");
    app.shutdown().await;
}

/// A TCP relay to `target` on a loopback port; cancelling `cut` closes the listener and every
/// relayed connection.
struct Relay {
    port: u16,
    cut: CancellationToken,
}

impl Relay {
    async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay port");
        let port = listener.local_addr().unwrap().port();
        let cut = CancellationToken::new();
        let stop = cut.clone();
        tokio::spawn(async move {
            loop {
                let mut inbound = tokio::select! {
                    () = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => return,
                    },
                };
                let stop = stop.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        () = stop.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        Relay { port, cut }
    }
}
