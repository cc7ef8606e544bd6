//! Telemetry end to end: the real `squirrel` binary exporting to an OTLP/HTTP receiver run by the test
//! (gzip + protobuf decoded with the OpenTelemetry proto types, headers recorded).
//!
//! Only the real binary can show global setup, the flush on SIGTERM and the exit deadline, so every
//! test here starts processes. Spans are awaited on a channel with a deadline, never by sleeping.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use tokio::sync::mpsc;

use crate::helpers::*;
use crate::process::{Load, Target, assert_every_acknowledged_stored, stored_paths};

const TOKEN: &str = "xaat-test-0123456789abcdef";
const PASSWORD: &str = "hunter2hunter2-secret";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// What the receiver answers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Behaviour {
    Accept,
    Status(u16),
    /// Answer 200 after this long.
    Slow(Duration),
}

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub(crate) struct Receiver {
    addr: SocketAddr,
    got: mpsc::UnboundedReceiver<Received>,
    pub all: Vec<Received>,
}

#[derive(Clone)]
struct ReceiverState {
    behaviour: Behaviour,
    sink: mpsc::UnboundedSender<Received>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        let (sink, got) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .route("/v1/traces", post(receive))
            .route("/v1/metrics", post(receive))
            .route("/v1/logs", post(receive))
            .with_state(ReceiverState { behaviour, sink });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, got, all: Vec::new() }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until `done` holds for what arrived so far, or panics at the deadline.
    pub async fn until(&mut self, what: &str, deadline: Duration, done: impl Fn(&[Received]) -> bool) {
        let end = Instant::now() + deadline;
        while !done(&self.all) {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.got.recv()).await {
                Ok(Some(received)) => self.all.push(received),
                _ => panic!("{what}: not received within {deadline:?}; got {} requests", self.all.len()),
            }
        }
    }

    /// Takes whatever has arrived, without waiting.
    pub fn drain(&mut self) {
        while let Ok(received) = self.got.try_recv() {
            self.all.push(received);
        }
    }

    pub fn on(&self, path: &str) -> Vec<&Received> {
        self.all.iter().filter(|r| r.path == path).collect()
    }

    pub fn spans(&self) -> Vec<Span> {
        self.on("/v1/traces").iter().flat_map(|r| decode_spans(&r.body)).collect()
    }
}

async fn receive(State(state): State<ReceiverState>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let body = if gzip {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).expect("valid gzip");
        out
    } else {
        body.to_vec()
    };
    let _ = state.sink.send(Received { path: uri.path().to_string(), headers, body });
    match state.behaviour {
        Behaviour::Accept => StatusCode::OK,
        Behaviour::Status(code) => StatusCode::from_u16(code).unwrap(),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
    }
}

/// A decoded span, flattened for assertions.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub name: String,
    pub kind: i32,
    pub trace_id: String,
    pub span_id: String,
    pub parent_id: String,
    pub attrs: HashMap<String, String>,
    pub resource: HashMap<String, String>,
    pub links: Vec<(String, String)>,
    pub status_code: i32,
    /// Unix nanoseconds.
    pub start: u64,
    pub end: u64,
}

const KIND_SERVER: i32 = 2;
const KIND_CLIENT: i32 = 3;
const STATUS_ERROR: i32 = 2;

fn value(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter().map(|kv| (kv.key.clone(), value(&kv.value))).collect()
}

pub(crate) fn decode_spans(body: &[u8]) -> Vec<Span> {
    let request = ExportTraceServiceRequest::decode(body).expect("an ExportTraceServiceRequest");
    let mut spans = Vec::new();
    for rs in request.resource_spans {
        let resource = rs.resource.map(|r| attrs(&r.attributes)).unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                spans.push(Span {
                    name: s.name,
                    kind: s.kind,
                    trace_id: hex::encode(&s.trace_id),
                    span_id: hex::encode(&s.span_id),
                    parent_id: hex::encode(&s.parent_span_id),
                    attrs: attrs(&s.attributes),
                    resource: resource.clone(),
                    links: s.links.iter().map(|l| (hex::encode(&l.trace_id), hex::encode(&l.span_id))).collect(),
                    status_code: s.status.map(|st| st.code).unwrap_or(0),
                    start: s.start_time_unix_nano,
                    end: s.end_time_unix_nano,
                });
            }
        }
    }
    spans
}

/// The binary with telemetry pointed at `receiver`, in a temp working dir, with no stray OTEL_*.
fn squirrel(db: &TestDb, receiver_base: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_squirrel"));
    cmd.current_dir(std::env::temp_dir());
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("OTEL_") || key.starts_with("AXIOM_") || key.starts_with("SQUIRREL_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("DATABASE_URL", &db.url)
        .env_remove("TRUSTED_PROXIES")
        .env("AXIOM_API_TOKEN", TOKEN)
        .env("AXIOM_DOMAIN", receiver_base)
        .env("AXIOM_DATASET", "test-traces");
    cmd
}

/// A running `squirrel serve`: its address and every stderr line so far.
struct Server {
    child: Child,
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Server {
    fn start(mut cmd: Command) -> Server {
        let mut child = cmd.args(["serve", "--addr", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let collected = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("addr=").nth(1) {
                    let _ = addr_tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                collected.lock().unwrap().push(line);
            }
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(60)).expect("serve logs its address");
        Server { child, addr, lines, reader }
    }

    /// SIGTERM, then the exit status and how long the exit took.
    fn terminate(mut self) -> (Option<i32>, Duration, Vec<String>) {
        let started = Instant::now();
        let ok = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap().success();
        assert!(ok);
        let status = self.child.wait().unwrap();
        let took = started.elapsed();
        self.reader.join().expect("stderr reader"); // ends at EOF, after the exit
        let lines = self.lines.lock().unwrap().clone();
        (status.code(), took, lines)
    }
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("squirrel runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A user and a site through the CLI (their SQL spans are exported too); returns the identifier.
fn create_site(db: &TestDb, receiver_base: &str) -> String {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let (code, _, err) =
        run(squirrel(db, receiver_base).args(["create-user", "--email", &email, "--password", PASSWORD]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        run(squirrel(db, receiver_base).args(["create-site", "--owner", &email, "--name", "Traced"]));
    assert_eq!(code, 0, "{err}");
    out.lines().last().unwrap().to_string()
}

fn find<'a>(spans: &'a [Span], what: &str, pred: impl Fn(&Span) -> bool) -> &'a Span {
    spans.iter().find(|s| pred(s)).unwrap_or_else(|| {
        let names: Vec<_> = spans.iter().map(|s| s.name.as_str()).collect();
        panic!("no {what} among {names:?}")
    })
}

async fn a_pageview_traces_from_the_http_span_to_the_insert_and_flushes_on_sigterm(backend: Backend) {
    let mut receiver = Receiver::start(Behaviour::Accept).await;
    let db = TestDb::create(backend).await;
    let site = create_site(&db, &receiver.base());

    // A long schedule delay: whatever arrives was sent by the flush at exit.
    let mut cmd = squirrel(&db, &receiver.base());
    cmd.env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "600000")
        .env("AXIOM_METRICS_DATASET", "test-metrics")
        .env("AXIOM_LOGS_DATASET", "test-logs")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test");
    let server = Server::start(cmd);
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let ok = http
        .get(format!("{base}/api/v1/pv?sid={site}&h=https://blog.example&p=/hello"))
        .header("user-agent", MAC_CHROME)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let missing = http.get(format!("{base}/pv?p=/x")).header("user-agent", MAC_CHROME).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    let unknown = http.get(format!("{base}/pv/?sid=nope-nope-XXXXXX")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);

    let (code, took, lines) = server.terminate();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(took < Duration::from_secs(10), "exit took {took:?}");
    // Everything was sent before exit; the channel has it (or gets it within the deadline).
    receiver
        .until("the server's spans", Duration::from_secs(10), |all| {
            all.iter()
                .filter(|r| r.path == "/v1/traces")
                .flat_map(|r| decode_spans(&r.body))
                .any(|s| s.name == "INSERT pageviews" && !s.links.is_empty())
        })
        .await;
    receiver.drain();
    let spans = receiver.spans();

    // Headers of every trace export.
    for r in receiver.on("/v1/traces") {
        assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}").as_str());
        assert_eq!(r.headers["x-axiom-dataset"], "test-traces");
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        assert_eq!(r.headers["content-encoding"], "gzip");
    }

    // The SERVER span continues the caller's trace.
    let server_span =
        find(&spans, "SERVER span of the tracked hit", |s| s.trace_id == TRACE_ID && s.kind == KIND_SERVER);
    assert_eq!(server_span.name, "GET /api/v1/pv");
    assert_eq!(server_span.parent_id, PARENT_ID);
    let a = &server_span.attrs;
    assert_eq!(a["http.request.method"], "GET");
    assert_eq!(a["http.route"], "/api/v1/pv");
    assert_eq!(a["http.response.status_code"], "200");
    assert_eq!(a["url.path"], "/api/v1/pv");
    assert_eq!(a["client.address"], "127.0.0.1");
    assert_eq!(a["user_agent.original"], MAC_CHROME);
    assert_eq!(a["server.address"], "127.0.0.1");
    assert_ne!(server_span.status_code, STATUS_ERROR);

    // Resource.
    let r = &server_span.resource;
    assert_eq!(r["service.name"], "server");
    assert_eq!(r["service.version"], env!("CARGO_PKG_VERSION"));
    assert!(!r["host.name"].is_empty());
    assert_eq!(r["deployment.environment"], "test");

    // track_pageview is its child, with the original's attributes.
    let track =
        find(&spans, "track_pageview child", |s| s.name == "track_pageview" && s.parent_id == server_span.span_id);
    assert_eq!(track.trace_id, TRACE_ID);
    let t = &track.attrs;
    assert_eq!(t["pageview.site_identifier"], site);
    assert_eq!(t["pageview.hostname"], "https://blog.example");
    assert_eq!(t["pageview.path"], "/hello");
    assert_eq!(t["pageview.method"], "GET");
    assert_eq!(t["pageview.site_found"], "true");
    assert_eq!(t["pageview.device_type"], "desktop");
    assert_eq!(t["pageview.browser"], "Chrome");
    assert_eq!(t["pageview.os"], "Mac OS X");
    assert_eq!(t["pageview.created"], "true");
    assert!(!t.contains_key("pageview.error"));

    // The batch INSERT is a CLIENT span linked to the request's span.
    let insert = find(&spans, "INSERT linked to the request", |s| {
        s.name == "INSERT pageviews" && s.links.contains(&(TRACE_ID.to_string(), track.span_id.clone()))
    });
    assert_eq!(insert.kind, KIND_CLIENT);
    let d = &insert.attrs;
    let system = if backend == Backend::Sqlite { "sqlite" } else { "postgresql" };
    assert_eq!(d["db.system.name"], system);
    assert_eq!(d["db.operation.name"], "INSERT");
    assert_eq!(d["db.collection.name"], "pageviews");
    // Placeholders, never values: `?1` on SQLite (the ingest writer's own connection), `$1` on PostgreSQL.
    let placeholder = if backend == Backend::Sqlite { "?1" } else { "$1" };
    assert!(
        d["db.query.text"].contains(placeholder) && !d["db.query.text"].contains("/hello"),
        "{}",
        d["db.query.text"]
    );
    let batch = find(&spans, "ingest_batch parent", |s| s.span_id == insert.parent_id);
    assert_eq!(batch.name, "ingest_batch");
    assert_eq!(batch.attrs["batch.size"], "1");

    // Rejected hits: the original's error codes, and 4xx leaves the SERVER span's status unset.
    let missing = find(&spans, "missing sid span", |s| {
        s.name == "track_pageview" && s.attrs.get("pageview.error").is_some_and(|e| e == "missing_site_identifier")
    });
    assert_eq!(missing.attrs["pageview.site_identifier"], "");
    let missing_server = find(&spans, "its SERVER span", |s| s.span_id == missing.parent_id);
    assert_eq!(missing_server.name, "GET /pv");
    assert_eq!(missing_server.attrs["http.response.status_code"], "400");
    assert_ne!(missing_server.status_code, STATUS_ERROR);
    let unknown = find(&spans, "unknown sid span", |s| {
        s.name == "track_pageview" && s.attrs.get("pageview.error").is_some_and(|e| e == "invalid_site_identifier")
    });
    assert_eq!(unknown.attrs["pageview.site_found"], "false");
    let unknown_server = find(&spans, "its SERVER span", |s| s.span_id == unknown.parent_id);
    assert_eq!(unknown_server.attrs["http.route"], "/pv", "the trailing slash is normalised away");

    // The CLI's own statements were exported by those short-lived processes.
    find(&spans, "INSERT users from create-user", |s| s.name == "INSERT users" && s.kind == KIND_CLIENT);

    // Metrics and logs went to their own datasets.
    let metrics = receiver.on("/v1/metrics");
    assert!(!metrics.is_empty(), "metrics flushed at exit");
    assert_eq!(metrics[0].headers["x-axiom-metrics-dataset"], "test-metrics");
    let names: Vec<String> = metrics
        .iter()
        .flat_map(|r| ExportMetricsServiceRequest::decode(&r.body[..]).unwrap().resource_metrics)
        .flat_map(|rm| rm.scope_metrics)
        .flat_map(|sm| sm.metrics)
        .map(|m| m.name)
        .collect();
    for name in [
        "squirrel.pageviews.accepted",
        "squirrel.pageviews.rejected",
        "squirrel.ingest.duration",
        "squirrel.writer.batch_size",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
    let logs = receiver.on("/v1/logs");
    assert!(!logs.is_empty(), "logs flushed at exit");
    assert_eq!(logs[0].headers["x-axiom-dataset"], "test-logs");
    let bodies: Vec<String> = logs
        .iter()
        .flat_map(|r| ExportLogsServiceRequest::decode(&r.body[..]).unwrap().resource_logs)
        .flat_map(|rl| rl.scope_logs)
        .flat_map(|sl| sl.log_records)
        .map(|l| value(&l.body))
        .collect();
    assert!(bodies.iter().any(|b| b == "squirrel serving"), "{bodies:?}");

    // No secret anywhere: not in spans, events, resources, logs or metrics.
    let secrets = [TOKEN, PASSWORD];
    for r in &receiver.all {
        let text = String::from_utf8_lossy(&r.body);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} leaked to {}", r.path);
        }
        if let Some(password) = url::Url::parse(&db.url).ok().and_then(|u| u.password().map(str::to_string)) {
            assert!(!text.contains(&password), "the database password leaked to {}", r.path);
        }
    }
}

crate::on_both_backends!(a_pageview_traces_from_the_http_span_to_the_insert_and_flushes_on_sigterm);

/// A lone hit's spans are exported on the schedule (`OTEL_BSP_SCHEDULE_DELAY`) while the server runs,
/// not held until more traffic fills a batch or the exit flushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_hits_spans_are_exported_while_the_server_runs() {
    let mut receiver = Receiver::start(Behaviour::Accept).await;
    let db = TestDb::create(Backend::Sqlite).await;
    let site = create_site(&db, &receiver.base());
    let mut cmd = squirrel(&db, &receiver.base());
    cmd.env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let server = Server::start(cmd);
    let hit = reqwest::get(format!("http://{}/api/v1/pv?sid={site}&p=/lone", server.addr)).await.unwrap();
    assert_eq!(hit.status(), 200);
    receiver
        .until("the lone hit's SERVER and track_pageview spans, before any exit", Duration::from_secs(10), |all| {
            let spans: Vec<Span> =
                all.iter().filter(|r| r.path == "/v1/traces").flat_map(|r| decode_spans(&r.body)).collect();
            spans.iter().any(|s| s.kind == KIND_SERVER && s.name == "GET /api/v1/pv")
                && spans
                    .iter()
                    .any(|s| s.name == "track_pageview" && s.attrs.get("pageview.path").is_some_and(|p| p == "/lone"))
        })
        .await;
    let (code, _, lines) = server.terminate();
    assert_eq!(code, Some(0), "{lines:#?}");
}

/// The hit's spans follow the sampler: with the default (parent-based), a caller's unsampled
/// `traceparent` keeps them out of the export, while a hit without one is exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_caller_keeps_the_hits_spans_out() {
    const UNSAMPLED_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    let mut receiver = Receiver::start(Behaviour::Accept).await;
    let db = TestDb::create(Backend::Sqlite).await;
    let site = create_site(&db, &receiver.base());
    let server = Server::start(squirrel(&db, &receiver.base()));
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let unsampled = http
        .get(format!("{base}/api/v1/pv?sid={site}&p=/unsampled"))
        .header("traceparent", format!("00-{UNSAMPLED_TRACE}-b7ad6b7169203331-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsampled.status(), 200);
    let sampled = http.get(format!("{base}/api/v1/pv?sid={site}&p=/sampled")).send().await.unwrap();
    assert_eq!(sampled.status(), 200);
    let (code, _, lines) = server.terminate();
    assert_eq!(code, Some(0), "{lines:#?}");

    let is_track_of =
        |s: &Span, path: &str| s.name == "track_pageview" && s.attrs.get("pageview.path").is_some_and(|p| p == path);
    receiver
        .until("the sampled hit's spans", Duration::from_secs(10), |all| {
            all.iter()
                .filter(|r| r.path == "/v1/traces")
                .flat_map(|r| decode_spans(&r.body))
                .any(|s| is_track_of(&s, "/sampled"))
        })
        .await;
    receiver.drain();
    let spans = receiver.spans();
    let sampled = find(&spans, "the sampled hit's SERVER span", |s| {
        s.kind == KIND_SERVER && spans.iter().any(|t| is_track_of(t, "/sampled") && t.parent_id == s.span_id)
    });
    assert_eq!(sampled.name, "GET /api/v1/pv");
    assert!(!spans.iter().any(|s| s.trace_id == UNSAMPLED_TRACE), "the unsampled caller's trace was exported");
    assert!(!spans.iter().any(|s| is_track_of(s, "/unsampled")), "the unsampled hit's span was exported");
}

/// With the backend in `behaviour` (or down), tracking answers normally and fast, stores every
/// acknowledged pageview, and the process exits promptly; returns the server's stderr.
async fn tracking_is_unaffected_by(behaviour: Option<Behaviour>) -> Vec<String> {
    let (receiver, base) = match behaviour {
        Some(behaviour) => {
            let r = Receiver::start(behaviour).await;
            let base = r.base();
            (Some(r), base)
        }
        None => {
            // A port nothing listens on.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            drop(listener);
            (None, base)
        }
    };
    let db = TestDb::create(Backend::Sqlite).await;
    let site = {
        // Created with export off, so a dead backend can't slow the setup.
        let email = "down@example.com";
        let mut cmd = squirrel(&db, &base);
        cmd.env_remove("AXIOM_API_TOKEN");
        let (code, _, err) = run(cmd.args(["create-user", "--email", email, "--password", PASSWORD]));
        assert_eq!(code, 0, "{err}");
        let mut cmd = squirrel(&db, &base);
        cmd.env_remove("AXIOM_API_TOKEN");
        let (_, out, _) = run(cmd.args(["create-site", "--owner", email, "--name", "S"]));
        out.lines().last().unwrap().to_string()
    };
    let mut cmd = squirrel(&db, &base);
    cmd.env("OTEL_BSP_SCHEDULE_DELAY", "50").env("SQUIRREL_TELEMETRY_FLUSH_SECS", "2");
    let server = Server::start(cmd);
    // Concurrent clients, as real traffic: every pageview answered 200 at once, and stored.
    let target = Target { base: format!("http://{}", server.addr), site: site.clone() };
    let load = Load::start(&[target], 8, "otlp");
    load.until_acknowledged(300, Duration::from_secs(60)).await;
    let outcome = load.stop().await;
    assert_eq!(outcome.unavailable + outcome.no_answer, 0, "{outcome:?}");
    // Debug build, shared CI machine: generous, yet far below the 5 s a blocked request would take.
    assert!(outcome.slowest < Duration::from_secs(1), "a tracking request took {:?}", outcome.slowest);
    let (code, took, lines) = server.terminate();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(took < Duration::from_secs(5), "exit took {took:?} with the backend {behaviour:?}");
    let stored = stored_paths(&db.url, &[site]).await;
    assert_eq!(assert_every_acknowledged_stored(&outcome, &stored, "telemetry backend in trouble"), 0);
    drop(receiver);
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_backend_never_slows_tracking_and_is_reported_once() {
    let lines = tracking_is_unaffected_by(None).await;
    let reports: Vec<_> = lines.iter().filter(|l| l.contains("telemetry export failed")).collect();
    assert_eq!(reports.len(), 1, "one report per minute at most: {lines:#?}");
    assert!(reports[0].contains("connection refused"), "{}", reports[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_never_slows_tracking_nor_holds_the_exit() {
    tracking_is_unaffected_by(Some(Behaviour::Slow(Duration::from_secs(5)))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_refusing_the_token_is_reported_once_with_the_reason() {
    let lines = tracking_is_unaffected_by(Some(Behaviour::Status(401))).await;
    let reports: Vec<_> = lines.iter().filter(|l| l.contains("telemetry export failed")).collect();
    assert_eq!(reports.len(), 1, "{lines:#?}");
    assert!(reports[0].contains("HTTP 401") && reports[0].contains("token"), "{}", reports[0]);
    assert!(!lines.iter().any(|l| l.contains(TOKEN)), "the token is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_token_or_endpoint_export_is_off_with_one_log_line() {
    let db = TestDb::create(Backend::Sqlite).await;
    let mut cmd = squirrel(&db, "http://127.0.0.1:9");
    cmd.env_remove("AXIOM_API_TOKEN");
    let (code, out, err) = run(cmd.arg("migrate"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Migrations applied"));
    assert_eq!(err.matches("telemetry export off").count(), 1, "{err}");
}

/// `telemetry-check` against a receiver answering `behaviour` (or a closed port).
async fn check(behaviour: Option<Behaviour>) -> (i32, String) {
    let receiver = match behaviour {
        Some(b) => Some(Receiver::start(b).await),
        None => None,
    };
    let base = match &receiver {
        Some(r) => r.base(),
        None => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        }
    };
    let db = TestDb::create(Backend::Sqlite).await;
    let (code, out, err) =
        tokio::task::spawn_blocking(move || run(squirrel(&db, &base).arg("telemetry-check"))).await.unwrap();
    assert!(out.contains("/v1/traces") && out.contains("test-traces"), "{out}");
    assert!(out.contains("xaat…") && !out.contains(TOKEN) && !err.contains(TOKEN), "token masked: {out}{err}");
    (code, format!("{out}{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_check_reports_success() {
    let (code, out) = check(Some(Behaviour::Accept)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("test span accepted"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_check_blames_the_token_on_401() {
    let (code, out) = check(Some(Behaviour::Status(401))).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("HTTP 401") && out.contains("token is wrong or lacks ingest rights"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_check_blames_the_dataset_on_404() {
    let (code, out) = check(Some(Behaviour::Status(404))).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("HTTP 404") && out.contains("dataset"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_check_blames_the_network_on_a_closed_port() {
    let (code, out) = check(None).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("connection refused"), "{out}");
}
