//! The tracking script in a real headless Chromium (Debian's `chromium`, installed by scripts/test).
//! Chromium is run as a command (`--dump-dom` with a virtual-time budget), so no driver is needed: the
//! test page scripts its own navigations, and the test reads what the server stored.

use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::get;

use crate::helpers::*;

/// Chromium with the flags that work on these machines (no sandbox as root, no background traffic),
/// and the fresh profile directory it uses (deleted when dropped).
pub fn chromium() -> (Command, tempfile::TempDir) {
    let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("Chromium must be installed (scripts/test installs Debian's `chromium`)");
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new(binary);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    (cmd, profile)
}

/// Serves `pages` (path → HTML) on a loopback port of its own: another origin than the app's.
async fn serve_pages(pages: Vec<(&'static str, String)>) -> std::net::SocketAddr {
    let mut router = Router::new();
    for (path, html) in pages {
        router = router.route(path, get(move || async move { Html(html) }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_and_two_spa_navigations_store_three_pageviews() {
    let app = spawn_app(Backend::Sqlite).await;
    let site = app.create_site().await;
    let start = format!(
        r#"<!doctype html><html><head><title>Shop</title>
<script defer src="{base}/script.js" data-site="{sid}"></script></head>
<body><h1>Shop</h1><script>
window.addEventListener("load", function () {{
  setTimeout(function () {{
    history.pushState({{}}, "", "/spa/one?utm_source=news&ignored=1");
    setTimeout(function () {{
      history.pushState({{}}, "", "/spa/two");
      setTimeout(function () {{ history.replaceState({{}}, "", "/spa/two"); document.title = "done"; }}, 200);
    }}, 200);
  }}, 300);
}});
</script></body></html>"#,
        base = app.base,
        sid = site.identifier
    );
    let pages_addr = serve_pages(vec![("/start", start), ("/from", String::new())]).await;
    // A page on another origin ("localhost") links here, so the first pageview has a referrer.
    let from = format!(
        r#"<!doctype html><script>location.href = "http://127.0.0.1:{}/start?utm_medium=email&debug=1";</script>"#,
        pages_addr.port()
    );
    let from_addr = serve_pages(vec![("/from", from)]).await;

    let run = tokio::task::spawn_blocking(move || {
        let (mut cmd, _profile) = chromium();
        cmd.args(["--virtual-time-budget=5000", "--dump-dom"])
            .arg(format!("http://localhost:{}/from", from_addr.port()))
            .output()
            .expect("chromium runs")
    });
    let output = run.await.unwrap();
    assert!(output.status.success(), "chromium failed: {}", String::from_utf8_lossy(&output.stderr));

    // Beacons are sent asynchronously; wait for the three rows (a deadline, not a fixed sleep).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows = app.pageviews(&site).await;
        if rows.len() >= 3 || tokio::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let origin = format!("http://127.0.0.1:{}", pages_addr.port());
    let seen: Vec<(String, String, String)> =
        rows.iter().map(|p| (p.row.path.clone(), p.row.url.clone(), p.row.referrer.clone())).collect();
    assert_eq!(
        seen,
        vec![
            (
                "/start".into(),
                format!("{origin}/start?utm_medium=email"),
                format!("http://localhost:{}/", from_addr.port())
            ),
            ("/spa/one".into(), format!("{origin}/spa/one?utm_source=news"), String::new()),
            ("/spa/two".into(), format!("{origin}/spa/two"), String::new()),
        ]
    );
    assert_eq!(rows[0].row.utm_medium, "email");
    assert_eq!(rows[1].row.utm_source, "news");
    assert_eq!((rows[0].row.browser.as_str(), rows[0].row.device_type), ("HeadlessChrome", "bot"));
}
