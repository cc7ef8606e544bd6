//! Dashboard: the assets the binary serves to browsers, compiled in so the binary needs no files
//! beside it. The tracking script (`/script.js`) and the dashboard itself: one HTML shell answered
//! for every page URL, plus its scripts, stylesheet and icon under `/assets/<version>/`.
//!
//! Invariant: the version in asset URLs is a hash of every asset, so an asset URL never changes
//! content and may be cached forever, while the HTML (which names the version) is revalidated on
//! every load. Not HTTP (`http::routes::dashboard` maps these to responses).

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

/// A file of the dashboard, served at `/assets/<version>/<name>`.
#[derive(Debug)]
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every asset. The scripts are ES modules importing each other by relative URL, so they resolve
/// inside the same versioned folder and never mix versions.
pub const ASSETS: &[Asset] = &[
    Asset { name: "app.js", content_type: JS, body: include_str!("assets/app.js") },
    Asset { name: "api.js", content_type: JS, body: include_str!("assets/api.js") },
    Asset { name: "chart.js", content_type: JS, body: include_str!("assets/chart.js") },
    Asset { name: "pages.js", content_type: JS, body: include_str!("assets/pages.js") },
    Asset { name: "site.js", content_type: JS, body: include_str!("assets/site.js") },
    Asset { name: "ui.js", content_type: JS, body: include_str!("assets/ui.js") },
    Asset { name: "style.css", content_type: "text/css; charset=utf-8", body: include_str!("assets/style.css") },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_str!("assets/favicon.svg") },
];

const INDEX_TEMPLATE: &str = include_str!("assets/index.html");
const NOT_FOUND_TEMPLATE: &str = include_str!("assets/not-found.html");

/// The placeholder in the HTML templates that becomes `/assets/<version>`.
const ASSETS_PLACEHOLDER: &str = "{{assets}}";

/// The first 16 hex digits of BLAKE3 over every asset (names and bodies).
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut hasher = blake3::Hasher::new();
        for asset in ASSETS {
            hasher.update(asset.name.as_bytes()).update(&[0]).update(asset.body.as_bytes()).update(&[0]);
        }
        hasher.finalize().to_hex()[..16].to_string()
    });
    &VERSION
}

/// The asset `name` of version `version_in_url`; `None` for another version (a page loaded before a
/// deploy; reloading gets the current HTML) or an unknown name.
pub fn asset(version_in_url: &str, name: &str) -> Option<&'static Asset> {
    (version_in_url == version()).then(|| ASSETS.iter().find(|a| a.name == name)).flatten()
}

/// An HTML page with its strong validator.
#[derive(Debug)]
pub struct Page {
    pub html: String,
    pub etag: String,
}

fn page(template: &str) -> Page {
    let html = template.replace(ASSETS_PLACEHOLDER, &format!("/assets/{}", version()));
    let etag = format!("\"{}\"", &blake3::hash(html.as_bytes()).to_hex()[..16]);
    Page { html, etag }
}

/// The shell every dashboard URL answers with; the scripts render the page the URL names.
pub fn index() -> &'static Page {
    static INDEX: LazyLock<Page> = LazyLock::new(|| page(INDEX_TEMPLATE));
    &INDEX
}

/// The page of a URL that is nothing (status 404); works without JavaScript.
pub fn not_found() -> &'static Page {
    static NOT_FOUND: LazyLock<Page> = LazyLock::new(|| page(NOT_FOUND_TEMPLATE));
    &NOT_FOUND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_the_current_version_and_every_asset_they_link_exists() {
        for page in [index(), not_found()] {
            assert!(!page.html.contains(ASSETS_PLACEHOLDER));
            for link in page.html.split(&format!("/assets/{}/", version())).skip(1) {
                let name = link.split('"').next().unwrap_or_default();
                assert!(asset(version(), name).is_some(), "{name} is linked but not served");
            }
        }
        assert!(asset("0000000000000000", "app.js").is_none());
    }

    #[test]
    fn html_has_no_inline_script_or_style_so_a_strict_csp_allows_it() {
        for page in [index(), not_found()] {
            let html = page.html.to_ascii_lowercase();
            assert!(!html.contains("<style"), "no <style> blocks");
            assert!(!html.contains(" style="), "no style attributes");
            for script in html.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap_or_default();
                assert!(tag.contains("src="), "every <script> loads a file: <script{tag}>");
            }
        }
    }

    #[test]
    fn module_imports_are_relative_so_they_stay_in_one_version() {
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line.rsplit(" from ").next().unwrap_or(line).trim_matches(|c| c == ';' || c == '"');
                let name = target.trim_start_matches("./");
                assert!(target.starts_with("./") && ASSETS.iter().any(|a| a.name == name), "{}: {line}", asset.name);
            }
        }
    }
}
