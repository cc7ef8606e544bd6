//! A bare durable-ack ingest server: the floor of what any server pays for a committed pageview.
//!
//! `GET /api/v1/pv?sid=&h=&p=&r=` → axum (Tokio, one worker per core) → a bounded channel → one
//! writer thread → one transaction per batch (SQLite WAL with `synchronous=NORMAL`, or PostgreSQL
//! with its default `synchronous_commit`) → `{"status":"ok"}` once the row's batch has committed.
//! A row is six columns (site, time, url, path, referrer, User-Agent) in a table with a primary key
//! and one (site, time) index.
//!
//! It leaves out everything squirrel does besides: no User-Agent classification, visitor hash, site
//! lookup, field limits or cleaning, UTM or referrer parsing, bot flag, foreign key, CORS, security
//! headers, rate limit or telemetry. `bench/ingest.sh` runs it beside nginx and squirrel, so the
//! ratios of a run can be read against what a minimal design reaches on the same machine.
//!
//!     ingest-baseline (sqlite://FILE | postgres://URL) HOST:PORT

use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use tokio::sync::oneshot;

/// Rows a batch takes at most; the batch is whatever has queued since the last commit.
const MAX_BATCH: usize = 256;

struct Row {
    site: String,
    url: String,
    path: String,
    referrer: String,
    user_agent: String,
}

type Pending = (Row, oneshot::Sender<bool>);

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS pageviews (
        id BIGSERIAL PRIMARY KEY, site TEXT NOT NULL, created_at BIGINT NOT NULL,
        url TEXT NOT NULL, path TEXT NOT NULL, referrer TEXT NOT NULL, user_agent TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS pageviews_site_time ON pageviews (site, created_at);";

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Waits for a first row, takes whatever else has queued, commits it as one transaction and
/// answers every row of the batch.
fn write_batches(rows: &mpsc::Receiver<Pending>, mut commit: impl FnMut(&[Pending]) -> bool) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rows.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rows.try_recv() {
                Ok(row) => batch.push(row),
                Err(_) => break,
            }
        }
        let committed = commit(&batch);
        for (_, done) in batch.drain(..) {
            let _ = done.send(committed);
        }
    }
}

fn sqlite_writer(path: &str, rows: &mpsc::Receiver<Pending>) {
    let mut conn = rusqlite::Connection::open(path).expect("open the SQLite file");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; {}",
        SCHEMA.replace("BIGSERIAL", "INTEGER")
    ))
    .expect("create the table");
    write_batches(rows, |batch| {
        let commit = |conn: &mut rusqlite::Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO pageviews (site, created_at, url, path, referrer, user_agent) VALUES (?, ?, ?, ?, ?, ?)",
                )?;
                let now = now_ms();
                for (r, _) in batch {
                    insert.execute(rusqlite::params![r.site, now, r.url, r.path, r.referrer, r.user_agent])?;
                }
            }
            tx.commit()
        };
        commit(&mut conn).is_ok()
    });
}

fn postgres_writer(url: &str, rows: &mpsc::Receiver<Pending>) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime");
    let mut conn = runtime.block_on(sqlx::PgConnection::connect(url)).expect("connect to PostgreSQL");
    runtime.block_on(sqlx::raw_sql(SCHEMA).execute(&mut conn)).expect("create the table");
    write_batches(rows, |batch| {
        let column = |field: fn(&Row) -> &str| batch.iter().map(|(r, _)| field(r)).collect::<Vec<&str>>();
        let insert = sqlx::query(
            "INSERT INTO pageviews (site, created_at, url, path, referrer, user_agent)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[])",
        )
        .bind(column(|r| &r.site))
        .bind(vec![now_ms(); batch.len()])
        .bind(column(|r| &r.url))
        .bind(column(|r| &r.path))
        .bind(column(|r| &r.referrer))
        .bind(column(|r| &r.user_agent));
        runtime.block_on(insert.execute(&mut conn)).is_ok()
    });
}

async fn track(
    rows: mpsc::SyncSender<Pending>,
    query: Option<String>,
    headers: HeaderMap,
) -> (StatusCode, &'static str) {
    let mut row = Row {
        site: String::new(),
        url: String::new(),
        path: String::new(),
        referrer: String::new(),
        user_agent: String::new(),
    };
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*key {
            "sid" => row.site = value.into_owned(),
            "h" => row.url = value.into_owned(),
            "p" => row.path = value.into_owned(),
            "r" => row.referrer = value.into_owned(),
            _ => {}
        }
    }
    if row.site.is_empty() {
        return (StatusCode::BAD_REQUEST, r#"{"error":"Missing site identifier"}"#);
    }
    row.user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (done, committed) = oneshot::channel();
    // Never blocks in practice: the queue holds far more rows than there are connections.
    if rows.send((row, done)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"writer stopped"}"#);
    }
    match committed.await {
        Ok(true) => (StatusCode::OK, r#"{"status":"ok"}"#),
        _ => (StatusCode::SERVICE_UNAVAILABLE, r#"{"error":"not committed"}"#),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(database), Some(addr)) = (args.next(), args.next()) else {
        eprintln!("usage: ingest-baseline (sqlite://FILE | postgres://URL) HOST:PORT");
        std::process::exit(2);
    };
    let (sender, rows) = mpsc::sync_channel::<Pending>(4096);
    std::thread::spawn(move || match database.strip_prefix("sqlite://") {
        Some(path) => sqlite_writer(path, &rows),
        None => postgres_writer(&database, &rows),
    });
    let app = Router::new().route(
        "/api/v1/pv",
        get(move |RawQuery(query): RawQuery, headers: HeaderMap| track(sender.clone(), query, headers)),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind the address");
    axum::serve(listener, app).await.expect("serve");
}
