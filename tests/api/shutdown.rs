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
