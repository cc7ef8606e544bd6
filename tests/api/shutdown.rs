//! Graceful shutdown: every pageview that got a 200 is stored, and the app stops cleanly.

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(stopping_under_load_commits_every_acknowledged_pageview);

async fn stopping_under_load_commits_every_acknowledged_pageview(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let store = app.store.clone();
    let mut clients = Vec::new();
    for c in 0..16 {
        let (http, base, sid) = (app.http.clone(), app.base.clone(), site.identifier.clone());
        clients.push(tokio::spawn(async move {
            let mut ok = 0u32;
            for i in 0.. {
                match http.get(format!("{base}/pv?sid={sid}&p=/{c}/{i}")).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    _ => break, // refused or 503 once shutdown began
                }
            }
            ok
        }));
    }
    // Let load build up, then stop as SIGTERM would.
    while store.count_pageviews(site.id).await.unwrap() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let db = app.shutdown().await;
    let mut acknowledged = 0;
    for c in clients {
        acknowledged += c.await.unwrap();
    }
    let reopened = squirrel::store::Store::connect(&squirrel::config::Config::for_tests(&db.url).store).await.unwrap();
    let stored = reopened.count_pageviews(site.id).await.unwrap();
    assert!(acknowledged >= 200, "load ran: {acknowledged}");
    assert!(stored >= i64::from(acknowledged), "stored {stored} < acknowledged {acknowledged}");
    reopened.close().await;
}

on_both_backends!(sigterm_under_load_finishes_in_flight_commits_and_flushes_telemetry);

/// The real binary: SIGTERM while clients keep sending. Every request the server took gets its
/// answer, every 200 is stored, the spans of the last requests reach the OTLP receiver (the batch
/// delay is ten minutes, so only the flush at exit can have sent them), and the exit status is 0.
async fn sigterm_under_load_finishes_in_flight_commits_and_flushes_telemetry(backend: Backend) {
    use crate::process::*;
    use crate::telemetry::{Behaviour, Receiver, decode_spans};
    use std::time::Duration;

    let mut receiver = Receiver::start(Behaviour::Accept).await;
    let db = TestDb::create(backend).await;
    let site = create_site(&db.url);
    let mut cmd = squirrel(&db.url);
    cmd.env("AXIOM_API_TOKEN", "xaat-shutdown-test")
        .env("AXIOM_DOMAIN", receiver.base())
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "1000000");
    let serve = Process::serve(cmd);
    let load = Load::start(&[Target { base: serve.base.clone(), site: site.clone() }], 12, "term");
    load.until_acknowledged(200, Duration::from_secs(60)).await;
    let (code, lines) = tokio::task::block_in_place(|| serve.terminate());
    let outcome = load.stop().await;
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("stopped cleanly")), "{lines:#?}");

    let stored = stored_paths(&db.url, std::slice::from_ref(&site)).await;
    let unanswered = assert_every_acknowledged_stored(&outcome, &stored, "after SIGTERM");
    assert_eq!(unanswered, 0, "a request the server took was stored without its answer");

    // The last acknowledged pageview of each client: its request span was exported.
    let mut last = std::collections::BTreeMap::new();
    for (_, path) in &outcome.acknowledged {
        let client = path.rsplit_once('/').unwrap().0.to_string();
        last.insert(client, path.clone()); // acknowledged in order per client
    }
    let wanted: Vec<String> = last.into_values().collect();
    let exported = |all: &[crate::telemetry::Received]| -> Vec<String> {
        let spans = all.iter().filter(|r| r.path == "/v1/traces").flat_map(|r| decode_spans(&r.body));
        let paths: std::collections::BTreeSet<String> = spans
            .filter(|s| s.name == "track_pageview")
            .filter_map(|s| s.attrs.get("pageview.path").cloned())
            .collect();
        wanted.iter().filter(|p| !paths.contains(*p)).cloned().collect()
    };
    receiver.until("the last requests' spans", Duration::from_secs(10), |all| exported(all).is_empty()).await;
}
