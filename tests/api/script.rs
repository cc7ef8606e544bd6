//! `/script.js`: served from the binary, small, cacheable.

use std::io::Write;

use crate::helpers::*;

#[tokio::test]
async fn tracking_script_is_under_1kb_gzipped_and_revalidates_with_its_etag() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.http.get(format!("{}/script.js", app.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/javascript; charset=utf-8");
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let etag = response.headers()["etag"].to_str().unwrap().to_string();
    let body = response.bytes().await.unwrap();
    assert!(std::str::from_utf8(&body).unwrap().contains("/api/v1/pv"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&body).unwrap();
    let gzipped = gz.finish().unwrap().len();
    assert!(gzipped <= 1024, "script.js is {gzipped} bytes gzipped");

    let again = app.http.get(format!("{}/script.js", app.base)).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let changed =
        app.http.get(format!("{}/script.js", app.base)).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(changed.status(), 200);
}
