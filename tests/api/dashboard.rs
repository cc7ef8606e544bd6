//! The dashboard in a real headless Chromium, driven over WebDriver (Debian's `chromium-driver`,
//! installed by scripts/test): a user signs up, adds a site, and sees exactly the pageviews the test
//! sent; login, logout, rename, delete, API tokens and password reset through the pages. Every page
//! must load with no console error and no Content-Security-Policy violation. Screenshots of the main
//! pages go to `target/screenshots/` (the README shows copies from `docs/screenshots/`).
//! Plus the HTTP side without a browser: content types, caching, and the 404s.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use squirrel::store::{DAY_MS, Grain, now_ms};

use crate::api_client::{ApiClient, PASSWORD, unique_email};
use crate::auth::{link_params, mailpace, next_mail};
use crate::chart::roll_up;
use crate::helpers::*;

/// How long a page may take to show something: generous, as CI runs the browser tests beside the
/// rest of the suite on two cores. A deadline, not a sleep.
const WAIT: Duration = Duration::from_secs(60);

/// chromedriver on a loopback port of its own, a Chromium session with a fresh profile, and the
/// browser's console log.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `time_zone` is the viewer's zone (the `TZ` Chromium runs in), so the pages' local times are
    /// known to the test.
    async fn start(time_zone: &str) -> Browser {
        let driver_path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromedriver must be installed (scripts/test installs Debian's `chromium-driver`)");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .env("TZ", time_zone)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--no-first-run",
                    "--no-default-browser-check", "--disable-sync", "--hide-scrollbars", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let capabilities = capabilities.as_object().cloned().expect("an object");
        let url = format!("http://127.0.0.1:{port}/");
        let deadline = tokio::time::Instant::now() + WAIT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session from chromedriver within {WAIT:?}: {e}"),
            }
        };
        Browser { client, driver, _profile: profile }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| {
            panic!("no element `{css}` within {WAIT:?}: {e}");
        })
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Runs `script` (a function body returning a value) until it returns something other than
    /// `null`/`false`, and returns that.
    async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = self.client.execute(script, vec![]).await.unwrap_or_else(|e| panic!("{what}: {e}"));
            if !(value.is_null() || value == json!(false)) {
                return value;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.client.execute("return document.body.innerText", vec![]).await.unwrap_or_default();
                panic!("{what}: not within {WAIT:?}. The page shows:\n{}", text.as_str().unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text_appears(&self, text: &str) {
        let script = format!("return document.body.innerText.includes({})", json!(text));
        self.until(&format!("the text {text:?}"), &script).await;
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    async fn path_becomes(&self, path: &str) {
        let script = format!("return location.pathname === {}", json!(path));
        self.until(&format!("the URL path {path}"), &script).await;
    }

    /// Warnings and errors of the console since the last call: script errors, CSP violations, failed
    /// requests.
    async fn console_problems(&self) -> Vec<String> {
        let entries = self.client.issue_cmd(BrowserLog).await.expect("chromedriver returns the browser log");
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] != "DEBUG" && e["level"] != "INFO")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    async fn assert_clean_console(&self, page: &str) {
        let problems = self.console_problems().await;
        assert!(problems.is_empty(), "console errors on {page}:\n{}", problems.join("\n"));
    }

    /// Saves a screenshot of the viewport at `width` x the page's full height.
    async fn screenshot(&self, name: &str, width: u32) {
        self.client.set_window_size(width, 900).await.unwrap();
        // The window's height includes the browser's own frame: add it, so the viewport fits the page.
        let script = "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight";
        let height = self.client.execute(script, vec![]).await.unwrap();
        let height = height.as_u64().unwrap_or(900).clamp(600, 5000) as u32;
        self.client.set_window_size(width, height).await.unwrap();
        // From the top, without a focus ring, and after the layout of the new size (the chart redraws).
        let settle = "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); \
                      requestAnimationFrame(() => requestAnimationFrame(arguments[0]))";
        self.client.execute_async(settle, vec![]).await.unwrap();
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test never reaches `quit`: don't leave chromedriver (and its Chromium) behind.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target").join("screenshots")
}

/// chromedriver's `POST /session/{id}/se/log` (`{"type": "browser"}`): the console entries since
/// the last call, CSP violations included. fantoccini has no method for it.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

const FIREFOX_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
const IPHONE_SAFARI: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

/// Rows of the breakdown table under `panel` (e.g. `Pages`) once tab `breakdown` is shown:
/// value → [visitors, pageviews or visits], read from the cells the viewer sees.
async fn breakdown_rows(browser: &Browser, panel: &str, breakdown: &str) -> BTreeMap<String, [i64; 2]> {
    let tab = format!(r#"[data-panel="{panel}"] [data-breakdown="{breakdown}"][role="tab"]"#);
    if browser.client.find(Locator::Css(&tab)).await.is_ok() {
        browser.click(&tab).await;
    }
    let script = format!(
        r#"const body = document.querySelector('[data-panel="{panel}"] .breakdown-body');
        if (!body || body.dataset.breakdown !== "{breakdown}" || body.getAttribute("aria-busy") !== "false") return null;
        if (body.querySelector(".empty")) return [];
        const table = body.querySelector('table[data-breakdown="{breakdown}"]');
        if (!table) return null;
        return [...table.tBodies[0].rows].map(r => [r.dataset.value, r.cells[1].innerText, r.cells[2].innerText, r.cells[0].innerText]);"#
    );
    let rows = browser.until(&format!("the {breakdown} table"), &script).await;
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let number = |i: usize| r[i].as_str().unwrap().replace(',', "").parse::<i64>().unwrap();
            (r[0].as_str().unwrap().to_string(), [number(1), number(2)])
        })
        .collect()
}

fn rows(expected: &[(&str, i64, i64)]) -> BTreeMap<String, [i64; 2]> {
    expected.iter().map(|(v, visitors, count)| (v.to_string(), [*visitors, *count])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_adds_a_site_and_sees_exactly_the_pageviews_sent() {
    let app = spawn_app(Backend::Sqlite).await;
    // A half-hour zone: local hours are not UTC hours, so the chart must follow the viewer's clock.
    let browser = Browser::start("Asia/Kolkata").await;

    browser.goto(&app.base).await;
    browser.text_appears("Know your audience without tracking people.").await;
    browser.assert_clean_console("the landing page").await;
    browser.screenshot("landing", 1280).await;

    browser.click(r#"main a[href="/signup"]"#).await;
    browser.path_becomes("/signup").await;
    browser.find("input[name=email]").await;
    browser.screenshot("signup", 1280).await;
    let email = unique_email();
    browser.type_into("input[name=email]", &email).await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.path_becomes("/dashboard").await;
    browser.text_appears("No sites yet").await;

    browser.type_into("#new-site-name", "Shop").await;
    browser.click("form[aria-label='Add a site'] button[type=submit]").await;
    let identifier = browser
        .until(
            "the new site in the list",
            r#"const code = document.querySelector("tr[data-site-id] .identifier"); return code && code.textContent;"#,
        )
        .await;
    let identifier = identifier.as_str().unwrap().to_string();
    let site = app.store.site_by_identifier(&identifier).await.unwrap().expect("the site the page shows exists");
    assert_eq!(site.name, "Shop");

    // Three visitors (the visitor id hashes IP and User-Agent; all come from 127.0.0.1) and a bot.
    let before = now_ms();
    let sent = [
        ("p=/&r=https://news.example.org/item%3Fid%3D1", MAC_CHROME),
        ("p=/pricing&r=https://shop.example/", MAC_CHROME),
        (
            "p=/&r=https://search.example.com/%3Fq%3Dshop&qs=%7B%22utm_source%22%3A%22newsletter%22%2C%22utm_medium%22%3A%22email%22%2C%22utm_campaign%22%3A%22launch%22%7D",
            FIREFOX_WINDOWS,
        ),
        ("p=/blog/hello", IPHONE_SAFARI),
        ("p=/", GOOGLEBOT),
    ];
    for (query, user_agent) in sent {
        let response = app.get_pv(&format!("sid={identifier}&h=https://shop.example&{query}"), user_agent).await;
        assert_eq!(response.status(), 200, "{query}");
    }
    let after = now_ms();
    // Sessions and the chart's hourly rows come from the rollup jobs: run them as the scheduler would.
    roll_up(&app, &site, Grain::Day.floor(before) - DAY_MS, Grain::Day.floor(after) + DAY_MS).await;
    let stored = app.pageviews(&site).await;
    let humans: Vec<_> = stored.iter().filter(|p| !p.row.is_bot).collect();
    assert_eq!(humans.len(), 4);

    browser.goto(&format!("{}/dashboard", app.base)).await;
    let listed = browser
        .until(
            "the pageview count in the list",
            r#"const c = document.querySelector("tr[data-site-id] td.num"); return c && c.textContent;"#,
        )
        .await;
    assert_eq!(listed, "4", "bots are not counted");
    browser.assert_clean_console("the site list").await;
    browser.screenshot("sites", 1280).await;

    browser.click("tr[data-site-id] .site-name a").await;
    browser.path_becomes(&format!("/dashboard/{}", site.uuid)).await;

    // Totals, as shown.
    let totals = browser
        .until(
            "the totals",
            r#"const v = [...document.querySelectorAll("[data-testid^=total-]")];
            return v.length === 5 ? Object.fromEntries(v.map(e => [e.dataset.testid, e.textContent])) : null;"#,
        )
        .await;
    assert_eq!(
        totals,
        json!({"total-visitors": "3", "total-pageviews": "4", "total-visits": "3", "total-bounce_rate": "66.7%",
               "total-avg_visit_duration": totals["total-avg_visit_duration"].clone()})
    );
    let duration = totals["total-avg_visit_duration"].as_str().unwrap();
    assert!(duration.ends_with('s') && !duration.contains('m'), "one visit of ~0 s and two bounces: {duration}");

    // The chart: 24 local hours; the pageviews sit in the Kolkata hour (UTC+5:30) they were sent in.
    let chart = browser
        .until(
            "the chart's table",
            r#"const rows = [...document.querySelectorAll(".chart-table tbody tr")];
            const svg = document.querySelector("svg.chart");
            return rows.length && svg ? { svgPoints: [...svg.querySelectorAll("circle.point")].map(c => [c.dataset.bucket, Number(c.dataset.value)]),
              rows: rows.map(r => [r.dataset.bucket, Number(r.dataset.visitors), Number(r.dataset.pageviews)]) } : null;"#,
        )
        .await;
    let table = chart["rows"].as_array().unwrap();
    assert_eq!(table.len(), 24, "hourly buckets of today");
    let kolkata_hour = |ms: i64| {
        let local = ms + 330 * 60_000;
        let start = local - local.rem_euclid(3_600_000) - 330 * 60_000;
        chrono::DateTime::from_timestamp_millis(start).unwrap().format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    };
    let busy: Vec<&Value> = table.iter().filter(|r| r[2].as_i64() != Some(0)).collect();
    let total: i64 = table.iter().map(|r| r[2].as_i64().unwrap()).sum();
    assert_eq!(total, 4, "pageviews in the chart: {table:?}");
    assert!(
        busy.iter().all(|r| [kolkata_hour(before), kolkata_hour(after)].contains(&r[0].as_str().unwrap().to_string())),
        "pageviews in the local hour they were sent: {busy:?}"
    );
    if kolkata_hour(before) == kolkata_hour(after) {
        assert_eq!(busy.len(), 1);
        assert_eq!((busy[0][1].as_i64(), busy[0][2].as_i64()), (Some(3), Some(4)), "visitors and pageviews");
    }
    let points: Vec<(String, i64)> = chart["svgPoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_i64().unwrap()))
        .collect();
    let visitors_per_row: Vec<(String, i64)> =
        table.iter().map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_i64().unwrap())).collect();
    assert_eq!(points, visitors_per_row, "the SVG draws the same visitors as the table");
    // The chart reads point by point from the keyboard, and keeps the focus while doing so.
    let right = char::from(fantoccini::key::Key::Right).to_string();
    let svg = browser.find("svg.chart").await;
    svg.send_keys(&right).await.unwrap();
    svg.send_keys(&right).await.unwrap();
    let tooltip = browser
        .until(
            "the tooltip of the second hour",
            r#"const t = document.querySelector(".chart-tooltip"); return !t.hidden && document.activeElement.matches("svg.chart") && t.innerText;"#,
        )
        .await;
    let second = browser
        .client
        .execute("return document.querySelector('.chart-table tbody tr:nth-child(2) th').innerText", vec![]);
    assert!(tooltip.as_str().unwrap().starts_with(second.await.unwrap().as_str().unwrap()), "{tooltip}");

    // Breakdowns, as shown.
    assert_eq!(
        breakdown_rows(&browser, "Pages", "pages").await,
        rows(&[("/", 2, 2), ("/pricing", 1, 1), ("/blog/hello", 1, 1)])
    );
    assert_eq!(breakdown_rows(&browser, "Pages", "entry_pages").await, rows(&[("/", 2, 2), ("/blog/hello", 1, 1)]));
    assert_eq!(
        breakdown_rows(&browser, "Pages", "exit_pages").await,
        rows(&[("/", 1, 1), ("/pricing", 1, 1), ("/blog/hello", 1, 1)])
    );
    assert_eq!(
        breakdown_rows(&browser, "Sources", "referrers").await,
        rows(&[("news.example.org", 1, 1), ("search.example.com", 1, 1)]),
        "a session's referrer is its entry's; the same-site referrer of /pricing is not a source"
    );
    assert_eq!(breakdown_rows(&browser, "Sources", "utm_source").await, rows(&[("newsletter", 1, 1)]));
    assert_eq!(breakdown_rows(&browser, "Sources", "utm_medium").await, rows(&[("email", 1, 1)]));
    assert_eq!(breakdown_rows(&browser, "Sources", "utm_campaign").await, rows(&[("launch", 1, 1)]));
    // Browser, OS and device names are the classifier's (tested on its own): count what was stored.
    for (breakdown, column) in [("browsers", 0), ("os", 1), ("devices", 2)] {
        let mut expected: BTreeMap<String, (std::collections::BTreeSet<i64>, i64)> = BTreeMap::new();
        for p in &humans {
            let value = [p.row.browser.clone(), p.row.os.clone(), p.row.device_type.to_string()][column].clone();
            let entry = expected.entry(value).or_default();
            entry.0.insert(p.row.visitor_id);
            entry.1 += 1;
        }
        let expected: BTreeMap<String, [i64; 2]> =
            expected.into_iter().map(|(v, (visitors, n))| (v, [visitors.len() as i64, n])).collect();
        assert_eq!(breakdown_rows(&browser, "Devices", breakdown).await, expected, "{breakdown}");
    }
    assert!(breakdown_rows(&browser, "Countries", "countries").await.is_empty(), "no GeoIP database: no countries");

    // The CSV link of the shown tab downloads the same rows with the viewer's session.
    breakdown_rows(&browser, "Pages", "pages").await;
    let csv_href = browser
        .until(
            "the pages CSV link",
            r#"const a = document.querySelector('[data-panel="Pages"] a.download'); return a && a.href;"#,
        )
        .await;
    let csv = browser
        .client
        .execute_async(
            "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(arguments[1])",
            vec![csv_href.clone()],
        )
        .await
        .unwrap();
    let csv_href = csv_href.as_str().unwrap();
    assert!(csv_href.contains("breakdown=pages") && csv_href.contains("format=csv"), "{csv_href}");
    let mut csv_lines: Vec<&str> = csv.as_str().unwrap().lines().collect();
    assert_eq!(csv_lines.remove(0), "pages,pageviews,visitors");
    csv_lines.sort();
    assert_eq!(csv_lines, ["/,2,2", "/blog/hello,1,1", "/pricing,1,1"]);

    let live = browser
        .until("visitors now", r#"const e = document.querySelector("[data-testid=realtime-visitors]"); return e && e.textContent !== "–" && e.textContent;"#)
        .await;
    assert_eq!(live, "3");
    let snippet = browser.find(".snippet code").await.text().await.unwrap();
    assert_eq!(snippet, format!(r#"<script defer src="{}/script.js" data-site="{identifier}"></script>"#, app.base));

    // Comparing with the previous period draws a second (dashed) line; a daily range, daily buckets.
    browser.click("#compare").await;
    browser
        .until("the previous period's line", r#"return document.querySelector("path.line.previous") !== null"#)
        .await;
    browser.find("#range").await.select_by_value("last_7_days").await.unwrap();
    let days = browser
        .until(
            "a 7-day chart",
            r#"const r = [...document.querySelectorAll(".chart-table tbody tr")]; return r.length === 7 && r.map(x => [x.dataset.bucket, Number(x.dataset.pageviews)]);"#,
        )
        .await;
    assert!(browser.path().await.starts_with("/dashboard/"));
    let today_local =
        chrono::DateTime::from_timestamp_millis(after + 330 * 60_000).unwrap().format("%Y-%m-%d").to_string();
    let last = days.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last[0], today_local.as_str(), "the last day is today in the viewer's zone");
    browser.assert_clean_console("the site page").await;
    browser.click("#compare").await;
    browser.find("#range").await.select_by_value("today").await.unwrap();
    browser
        .until("the hourly chart again", r#"return document.querySelectorAll(".chart-table tbody tr").length === 24"#)
        .await;
    breakdown_rows(&browser, "Sources", "referrers").await;
    breakdown_rows(&browser, "Devices", "browsers").await;
    let leftovers =
        browser.client.execute("return document.querySelectorAll('main .state, main .alert').length", vec![]);
    assert_eq!(leftovers.await.unwrap(), 0, "no loading or error state is left once everything has loaded");
    browser.screenshot("site", 1280).await;
    browser.screenshot("site-375px", 375).await;
    browser.assert_clean_console("the site page").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_sized_site_page_does_not_scroll_sideways() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = ApiClient::signup(&app, &unique_email()).await;
    let site = alice.create_site("A site with a rather long name for a phone screen").await;
    let browser = Browser::start("UTC").await;
    login(&browser, &app, &alice).await;
    browser.client.set_window_size(375, 800).await.unwrap();
    browser.goto(&format!("{}/dashboard/{}", app.base, site["id"].as_str().unwrap())).await;
    browser.until("the totals", r#"return document.querySelectorAll("[data-testid^=total-]").length === 5"#).await;
    browser.until("the chart", r#"return document.querySelector("svg.chart") !== null"#).await;
    let widths = browser
        .client
        .execute("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]", vec![])
        .await
        .unwrap();
    assert!(widths[0].as_i64() <= widths[1].as_i64(), "content wider than the phone: {widths}");
    browser.assert_clean_console("the site page at 375 px").await;
    browser.quit().await;
}

/// Signs `client`'s user in through the login page.
async fn login(browser: &Browser, app: &TestApp, client: &ApiClient) {
    let email = client_email(app, client).await;
    browser.goto(&format!("{}/login", app.base)).await;
    browser.type_into("input[name=email]", &email).await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.path_becomes("/dashboard").await;
}

async fn client_email(_app: &TestApp, client: &ApiClient) -> String {
    let me = client.get("/api/v1/auth/user").await;
    me.body["user"]["email"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rename_delete_tokens_logout_and_password_reset_work_in_the_browser() {
    let (mail_url, mut mails) = mailpace(200).await;
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.accounts.mailpace_api_key = Some("server-token".into());
        config.accounts.mailpace_url = mail_url;
        config.accounts.default_from_email = "stats@example.com".into();
    })
    .await;
    let alice = ApiClient::signup(&app, &unique_email()).await;
    let email = client_email(&app, &alice).await;
    alice.create_site("Blog").await;
    let browser = Browser::start("UTC").await;

    // A page that needs a session sends a stranger to the login page, and back after it.
    browser.goto(&format!("{}/settings", app.base)).await;
    browser.path_becomes("/login").await;
    browser.find("input[name=email]").await;
    browser.screenshot("login", 1280).await;
    browser.type_into("input[name=email]", &email).await;
    browser.type_into("input[name=password]", "not the password").await;
    browser.click("form button[type=submit]").await;
    browser.text_appears("Invalid credentials").await;
    // The failed request is in the log (so the log is read), and nothing else is.
    let problems = browser.console_problems().await;
    assert!(!problems.is_empty() && problems.iter().all(|m| m.contains("status of 401")), "{problems:?}");
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.path_becomes("/settings").await;

    // API tokens: create, use, revoke.
    browser.type_into("#token-name", "weekly report").await;
    browser.click("form[aria-label='Create an API token'] button[type=submit]").await;
    let token = browser
        .until("the new token", r#"const s = document.querySelector(".secret"); return s && s.textContent;"#)
        .await;
    let token = token.as_str().unwrap().to_string();
    assert!(token.starts_with("sq_"), "{token}");
    browser
        .until("the token in the list", r#"return document.querySelectorAll("tr[data-token-id]").length === 1"#)
        .await;
    let with_token = ApiClient::with_token(&app, &token);
    assert_eq!(with_token.get("/api/v1/sites").await.status, 200, "the token the page showed works");
    browser.assert_clean_console("the settings page").await;
    browser.screenshot("settings", 1280).await;
    browser.click("tr[data-token-id] button").await;
    browser.click("dialog button[value=confirm]").await;
    browser.text_appears("No API tokens yet.").await;
    assert_eq!(with_token.get("/api/v1/sites").await.status, 401, "revoked");

    // Rename and delete a site.
    browser.click("nav a[href='/dashboard']").await;
    browser.path_becomes("/dashboard").await;
    browser.click("button[aria-label='Rename Blog']").await;
    browser.type_into(".rename-form input", "Journal").await;
    browser.click(".rename-form button[type=submit]").await;
    browser
        .until(
            "the new name",
            r#"const a = document.querySelector(".site-name a"); return a && a.textContent === "Journal";"#,
        )
        .await;
    let sites = alice.get("/api/v1/sites").await;
    assert_eq!(sites.body["results"][0]["name"], "Journal");
    browser.click("button[aria-label='Delete Journal']").await;
    // Cancelling keeps it.
    browser.click("dialog button[value=cancel]").await;
    assert_eq!(alice.get("/api/v1/sites").await.body["count"], 1);
    browser.click("button[aria-label='Delete Journal']").await;
    browser.click("dialog button[value=confirm]").await;
    browser.text_appears("No sites yet").await;
    assert_eq!(alice.get("/api/v1/sites").await.body["count"], 0);
    browser.assert_clean_console("the site list").await;

    // Logout ends the session: the dashboard now sends to the login page.
    browser.click("#nav button").await;
    browser.path_becomes("/login").await;
    assert_eq!(alice.get("/api/v1/sites").await.status, 200, "only the browser's session ended");
    browser.goto(&format!("{}/dashboard", app.base)).await;
    browser.path_becomes("/login").await;
    // Asking the server who is signed in is the only failed request there.
    let problems = browser.console_problems().await;
    assert!(problems.iter().all(|m| m.contains("/auth/user") && m.contains("status of 401")), "{problems:?}");

    // Password reset through the pages: the mailed link's path is a dashboard page.
    browser.click("a[href='/forgot-password']").await;
    browser.type_into("input[name=email]", &email).await;
    browser.click("form button[type=submit]").await;
    browser.text_appears("a password reset link has been sent").await;
    let (_, mail) = next_mail(&mut mails).await;
    let (link, uid, reset_token) = link_params(&mail);
    assert_eq!(url::Url::parse(&link).unwrap().path(), "/reset-password");
    browser.goto(&format!("{}/reset-password?uid={uid}&token={reset_token}", app.base)).await;
    browser.type_into("input[name=password]", "a new long passphrase").await;
    browser.type_into("input[name=confirm]", "a different one").await;
    browser.click("form button[type=submit]").await;
    browser.text_appears("Passwords do not match.").await;
    browser.type_into("input[name=confirm]", "a new long passphrase").await;
    browser.click("form button[type=submit]").await;
    browser.text_appears("Password changed").await;
    assert_eq!(alice.get("/api/v1/sites").await.status, 401, "a reset ends every session");
    let relogin = ApiClient::anonymous(&app)
        .post("/api/v1/auth/login", json!({"email": email, "password": "a new long passphrase"}))
        .await;
    assert_eq!(relogin.status, 200);
    browser.assert_clean_console("the password reset").await;
    browser.quit().await;
}

#[tokio::test]
async fn pages_assets_and_unknown_paths_answer_with_the_right_types_and_caching() {
    let app = spawn_app(Backend::Sqlite).await;
    let get = |path: &str, etag: Option<&str>| {
        let mut request = app.http.get(format!("{}{path}", app.base));
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        request.send()
    };
    let header = |r: &reqwest::Response, name: &str| {
        r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    };

    let mut shell = None;
    for path in ["/", "/login", "/signup", "/forgot-password", "/reset-password", "/dashboard", "/settings"]
        .into_iter()
        .map(String::from)
        .chain([format!("/dashboard/{}", uuid::Uuid::new_v4()), "/dashboard/".into()])
    {
        let response = get(&path, None).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8", "{path}");
        assert_eq!(header(&response, "cache-control"), "no-cache", "{path}");
        assert!(header(&response, "content-security-policy").contains("script-src 'self'"), "{path}");
        let etag = header(&response, "etag");
        let body = response.text().await.unwrap();
        assert!(body.contains(r#"<main id="main""#), "{path}");
        shell.get_or_insert((etag, body));
    }
    let (etag, body) = shell.unwrap();
    let revalidated = get("/dashboard", Some(&etag)).await.unwrap();
    assert_eq!(revalidated.status(), 304);

    // Every asset the shell names: its type, cached for a year, and revalidation by ETag.
    let assets: Vec<&str> = body.split("\"/assets/").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert!(assets.iter().any(|a| a.ends_with("/app.js")) && assets.iter().any(|a| a.ends_with("/style.css")));
    for asset in &assets {
        let response = get(&format!("/assets/{asset}"), None).await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let expected = match asset.rsplit('.').next().unwrap() {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other}"),
        };
        assert_eq!(header(&response, "content-type"), expected, "{asset}");
        assert_eq!(header(&response, "cache-control"), "public, max-age=31536000, immutable");
        let etag = header(&response, "etag");
        assert_eq!(get(&format!("/assets/{asset}"), Some(&etag)).await.unwrap().status(), 304);
    }
    // The modules the entry imports are in the same versioned folder.
    let version = assets[0].split('/').next().unwrap();
    for module in ["api.js", "chart.js", "pages.js", "site.js", "ui.js"] {
        assert_eq!(get(&format!("/assets/{version}/{module}"), None).await.unwrap().status(), 200, "{module}");
    }
    let stale = get("/assets/0123456789abcdef/app.js", None).await.unwrap();
    assert_eq!(stale.status(), 404, "another version's asset");

    for path in ["/api/v1/nothing-here", "/api/v1/sites/x/y", "/api"] {
        let response = get(path, None).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let (_, body) = json(response).await;
        assert_eq!(body, json!({"error": "Not found"}), "{path}");
    }
    for path in ["/nothing-here", "/dashboard/not-a-site/more", "/wp-login.php"] {
        let response = get(path, None).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8");
        assert!(response.text().await.unwrap().contains("Page not found"), "{path}");
    }
    // The API and the tracker keep their own routes.
    assert_eq!(get("/up", None).await.unwrap().status(), 200);
    assert_eq!(get("/sites", None).await.unwrap().status(), 401, "the unprefixed API mount owns /sites");
    assert_eq!(get("/script.js", None).await.unwrap().status(), 200);
    let post = app.http.post(format!("{}/login", app.base)).send().await.unwrap();
    assert_eq!(post.status(), 405);
}

/// The console check above would see a page break the Content-Security-Policy: a page on loopback
/// with an inline script and an inline style under the dashboard's policy logs both violations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_check_sees_csp_violations() {
    let page = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            (
                [
                    ("content-type", "text/html; charset=utf-8"),
                    ("content-security-policy", squirrel::http::routes::dashboard::CONTENT_SECURITY_POLICY),
                ],
                r#"<!doctype html><title>x</title><p style="color: red">inline</p><script>document.title = "ran"</script>"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, page).await.unwrap() });
    let browser = Browser::start("UTC").await;
    browser.goto(&format!("http://{addr}/")).await;
    browser.find("p").await;
    assert_eq!(
        browser.client.execute("return document.title", vec![]).await.unwrap(),
        "x",
        "the inline script is blocked"
    );
    let problems = browser.console_problems().await;
    let csp = |what: &str| problems.iter().any(|m| m.contains("Content Security Policy") && m.contains(what));
    assert!(csp("script") && csp("style"), "{problems:?}");
    browser.quit().await;
}
