//! Dashboard: the assets the binary serves to browsers. Today the tracking script (`/script.js`);
//! the dashboard pages join it here. Assets are compiled in, so the binary needs no files beside it.

use std::sync::LazyLock;

/// The tracking script, as served. Its size budget is 1 KB gzipped (a test holds it to that).
pub const TRACKER_JS: &str = include_str!("script.js");

/// Strong validator for the script: changes whenever the script does, so browsers and CDNs may
/// cache it for long and still revalidate cheaply.
pub fn tracker_etag() -> &'static str {
    static ETAG: LazyLock<String> =
        LazyLock::new(|| format!("\"{}\"", &blake3::hash(TRACKER_JS.as_bytes()).to_hex()[..16]));
    &ETAG
}
