//! User-Agent classification: UA string → [`Agent`] (browser family and
//! version, OS family, [`DeviceType`]), memoised in a bounded per-[`UaParser`]
//! cache.
//!
//! Owns: the embedded uap-core `regexes.yaml` (Apache-2.0, see
//! `UAP-CORE-LICENSE`), the port of Python `user-agents` 2.2.0 device
//! heuristics that the original Django app relied on, and a small extra bot
//! list. Does not own: deciding what to do with bots (dropping, counting),
//! storage, or any other request field; it never sees anything but the UA.
//!
//! Invariant: work and output are bounded whatever the input — at most
//! [`MAX_UA_BYTES`] of the UA are ever matched or cached, browser/OS are at
//! most [`MAX_FAMILY_CHARS`] chars, version at most [`MAX_VERSION_CHARS`],
//! and [`UaParser::parse`] never panics.

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};

use quick_cache::sync::Cache;

#[cfg(test)]
mod tests;

/// Longer UAs are cut (at a char boundary) before matching and caching.
pub const MAX_UA_BYTES: usize = 512;
/// Browser and OS names are cut to this many chars.
pub const MAX_FAMILY_CHARS: usize = 50;
/// Browser versions are cut to this many chars.
pub const MAX_VERSION_CHARS: usize = 20;

/// Built once per process: the regex set is immutable and costs ~100 ms to
/// compile, while caches are per parser.
static EXTRACTOR: LazyLock<ua_parser::Extractor<'static>> = LazyLock::new(|| {
    let regexes: ua_parser::Regexes<'static> = serde_yaml::from_str(include_str!("regexes.yaml"))
        .expect("embedded regexes.yaml is valid YAML (checked by the uap-core suite tests)");
    ua_parser::Extractor::try_from(regexes)
        .expect("embedded regexes.yaml compiles (checked by the uap-core suite tests)")
});

/// Coarse device class, stored and reported by its [`DeviceType::as_str`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// Windows, macOS, Linux desktop, Chrome OS.
    Desktop,
    /// Phones and other handhelds.
    Mobile,
    /// iPad, Android without "Mobile", Windows RT, Kindle, ...
    Tablet,
    /// uap "Spider" device or one of our extra automation markers.
    Bot,
    /// Anything else: empty UA, curl, consoles, TVs, ...
    Unknown,
}

impl DeviceType {
    /// Stable lowercase name, as stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Bot => "bot",
            DeviceType::Unknown => "unknown",
        }
    }

    /// Inverse of [`DeviceType::as_str`]; exact match only.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "desktop" => DeviceType::Desktop,
            "mobile" => DeviceType::Mobile,
            "tablet" => DeviceType::Tablet,
            "bot" => DeviceType::Bot,
            "unknown" => DeviceType::Unknown,
            _ => return None,
        })
    }
}

/// What a UA says about the visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// uap browser family, "Other" when unknown.
    pub browser: String,
    /// "major.minor.patch" with missing parts left out; may be empty.
    pub browser_version: String,
    /// uap OS family, "Other" when unknown.
    pub os: String,
    /// Device class; [`DeviceType::Bot`] for crawlers and headless browsers.
    pub device: DeviceType,
}

impl Agent {
    /// Crawler or automation rather than a person.
    pub fn is_bot(&self) -> bool {
        self.device == DeviceType::Bot
    }
}

/// Thread-safe UA classifier with its own bounded cache; share one per process.
pub struct UaParser {
    cache: Cache<String, Arc<Agent>>,
}

impl UaParser {
    /// `cache_capacity` = max distinct UAs cached (bounded); 0 disables caching.
    pub fn new(cache_capacity: usize) -> Self {
        // Build the rule set now (~100 ms), not inside the first request, which would make every
        // request queued behind it wait too.
        LazyLock::force(&EXTRACTOR);
        let cache = Cache::new(cache_capacity);
        // quick_cache rounds each shard's share up, so the total can exceed
        // the request by up to shards-1; round down to make the bound strict.
        let shards = cache.num_shards() as u64;
        let requested = cache_capacity as u64;
        if cache.capacity() > requested {
            cache.set_capacity(requested - requested % shards);
        }
        Self { cache }
    }

    /// Never panics, whatever the input (any length, any bytes that are valid &str).
    pub fn parse(&self, user_agent: &str) -> Arc<Agent> {
        let ua = truncate_bytes(user_agent, MAX_UA_BYTES);
        // Concurrent misses on one key wait for a single computation.
        match self.cache.get_or_insert_with(ua, || Ok::<_, Infallible>(Arc::new(classify(ua)))) {
            Ok(agent) => agent,
            Err(never) => match never {},
        }
    }
}

/// Uncached classification of an already-truncated UA.
fn classify(ua: &str) -> Agent {
    let (browser, os, device) = EXTRACTOR.extract(ua);
    // uap says "Other" for no match; an empty family (a regex whose group
    // matched nothing) is treated the same, as Python ua-parser does.
    let browser_family = browser.as_ref().map(|b| &*b.family).filter(|f| !f.is_empty()).unwrap_or("Other");
    let browser_version = browser.as_ref().map(|b| version_string([b.major, b.minor, b.patch])).unwrap_or_default();
    let os_family = os.as_ref().map(|o| &*o.os).filter(|f| !f.is_empty()).unwrap_or("Other");
    let os_version = os
        .as_ref()
        .map(|o| version_string([o.major.as_deref(), o.minor.as_deref(), o.patch.as_deref()]))
        .unwrap_or_default();
    let device_family = device.as_ref().map(|d| &*d.device).filter(|f| !f.is_empty()).unwrap_or("Other");

    let facts = Facts { ua, browser: browser_family, os: os_family, os_version: &os_version, device: device_family };
    Agent {
        browser: truncate_chars(browser_family, MAX_FAMILY_CHARS).to_owned(),
        browser_version: truncate_chars(&browser_version, MAX_VERSION_CHARS).to_owned(),
        os: truncate_chars(os_family, MAX_FAMILY_CHARS).to_owned(),
        device: facts.device_type(),
    }
}

/// Python `user-agents` `parse_version` + `'.'.join(...)`: missing parts are
/// skipped (not just trailing ones) and all-digit parts go through `int()`,
/// which drops leading zeros ("04" → "4").
fn version_string(parts: [Option<&str>; 3]) -> String {
    let mut out = String::new();
    for part in parts.into_iter().flatten() {
        if !out.is_empty() {
            out.push('.');
        }
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            let trimmed = part.trim_start_matches('0');
            out.push_str(if trimmed.is_empty() { "0" } else { trimmed });
        } else {
            out.push_str(part);
        }
    }
    out
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

// Port of Python `user-agents` 2.2.0 `user_agents/parsers.py`: the family
// tuples below and the `is_bot`, `is_mobile`, `is_tablet`, `is_pc` properties
// (with `_is_android_tablet`), in the precedence the Django app used.
// `is_touch_capable` (TOUCH_CAPABLE_* lists, "Windows NT"+"Touch") and
// `is_email_client` are not ported: they never influenced the device type.

const MOBILE_DEVICE_FAMILIES: &[&str] =
    &["iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone", "PlayStation Vita", "iOS-Device"];
const PC_OS_FAMILIES: &[&str] = &["Windows 95", "Windows 98", "Solaris"];
const MOBILE_OS_FAMILIES: &[&str] =
    &["Windows Phone", "Windows Phone OS", "Symbian OS", "Bada", "Windows CE", "Windows Mobile", "Maemo"];
const MOBILE_BROWSER_FAMILIES: &[&str] =
    &["IE Mobile", "Opera Mobile", "Opera Mini", "Chrome Mobile", "Chrome Mobile WebView", "Chrome Mobile iOS"];
const TABLET_DEVICE_FAMILIES: &[&str] = &[
    "iPad",
    "BlackBerry Playbook",
    "Blackberry Playbook",
    "Kindle",
    "Kindle Fire",
    "Kindle Fire HD",
    "Galaxy Tab",
    "Xoom",
    "Dell Streak",
];

/// Beyond the original: automation that uap leaves unmarked. Matched
/// ASCII-case-insensitively anywhere in the (truncated) UA. Kept short on
/// purpose — every entry must be something no human's browser sends.
/// Deliberately absent: "curl", "wget", HTTP libraries (they are tools, shown
/// as `unknown`, not bots, as in the original).
const EXTRA_BOT_MARKERS: &[&str] = &[
    "headless",   // HeadlessChrome, "Headless" builds of anything
    "phantomjs",  // PhantomJS
    "puppeteer",  // custom Puppeteer UAs
    "playwright", // custom Playwright UAs
    "crawl",      // crawler, Crawl, webcrawl
    "spider",     // spider, Spider, Bytespider
    "slurp",      // Yahoo! Slurp
    "facebookexternalhit",
];

/// A bare "bot" substring would catch Cubot phones and words like "Abbott",
/// so "bot" only counts when it ends a word ("Googlebot/", "AhrefsBot;",
/// "bingbot)") that has at least two characters before it (sparing model codes
/// like "BOT-W09") and is not the Cubot brand.
fn has_bot_word(lower: &str) -> bool {
    lower.match_indices("bot").any(|(i, _)| {
        let end = i + 3;
        // After the separator's last byte: it may be multi-byte (U+FFFD from a lossy header; found by fuzzing).
        let word_start = lower[..i]
            .char_indices()
            .rev()
            .find(|&(_, c)| !c.is_ascii_alphanumeric())
            .map_or(0, |(p, c)| p + c.len_utf8());
        !lower[end..].starts_with(|c: char| c.is_ascii_alphabetic())
            && i - word_start >= 2
            && &lower[word_start..end] != "cubot"
    })
}

fn looks_automated(ua: &str) -> bool {
    let lower = ua.to_ascii_lowercase();
    EXTRA_BOT_MARKERS.iter().any(|m| lower.contains(m)) || has_bot_word(&lower)
}

/// What the heuristics look at: uap's families plus the raw (truncated) UA.
struct Facts<'a> {
    ua: &'a str,
    browser: &'a str,
    os: &'a str,
    os_version: &'a str,
    device: &'a str,
}

impl Facts<'_> {
    /// First match wins, as in the Django app.
    fn device_type(&self) -> DeviceType {
        if self.is_bot() {
            DeviceType::Bot
        } else if self.is_mobile() {
            DeviceType::Mobile
        } else if self.is_tablet() {
            DeviceType::Tablet
        } else if self.is_pc() {
            DeviceType::Desktop
        } else {
            DeviceType::Unknown
        }
    }

    fn is_bot(&self) -> bool {
        self.device == "Spider" || looks_automated(self.ua)
    }

    fn is_android_tablet(&self) -> bool {
        // Newer Android tablets lack "Mobile" in the UA; old Galaxy Tabs keep it.
        !self.ua.contains("Mobile Safari") && self.browser != "Firefox Mobile"
    }

    fn is_tablet(&self) -> bool {
        TABLET_DEVICE_FAMILIES.contains(&self.device)
            || (self.os == "Android" && self.is_android_tablet())
            || (self.os == "Windows" && self.os_version.starts_with("RT"))
            || (self.os == "Firefox OS" && !self.browser.contains("Mobile"))
    }

    fn is_mobile(&self) -> bool {
        let ua = self.ua;
        MOBILE_DEVICE_FAMILIES.contains(&self.device)
            || MOBILE_BROWSER_FAMILIES.contains(&self.browser)
            || ((self.os == "Android" || self.os == "Firefox OS") && !self.is_tablet())
            || (self.os == "BlackBerry OS" && self.device != "Blackberry Playbook")
            || MOBILE_OS_FAMILIES.contains(&self.os)
            || ua.contains("J2ME")
            || ua.contains("MIDP")
            // Google's mobile spider, and iPhones uap can't name.
            || ua.contains("iPhone;")
            || ua.contains("Googlebot-Mobile")
            || (self.device == "Spider" && self.browser.contains("Mobile"))
            || (ua.contains("NokiaBrowser") && ua.contains("Mobile"))
    }

    fn is_pc(&self) -> bool {
        let ua = self.ua;
        if ua.contains("Windows NT")
            || PC_OS_FAMILIES.contains(&self.os)
            || (self.os == "Windows" && self.os_version == "ME")
        {
            return true;
        }
        // Kindle's Silk browser claims Mac OS X in desktop mode.
        if self.os == "Mac OS X" && !ua.contains("Silk") {
            return true;
        }
        // Maemo sends "Linux" and "X11" but is a phone.
        if ua.contains("Maemo") {
            return false;
        }
        self.os.contains("Chrome OS") || (ua.contains("Linux") && ua.contains("X11"))
    }
}
