use super::*;
use serde::Deserialize;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/uap-core/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---- uap-core suites, checked the way ua-parser's tests/integration.rs does ----

/// The suites write a missing version part as `''` or `~` interchangeably.
fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

#[derive(Deserialize)]
struct Cases<T> {
    test_cases: Vec<T>,
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
struct UaCase {
    user_agent_string: String,
    family: String,
    #[serde(deserialize_with = "empty_is_none")]
    major: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    minor: Option<String>,
    #[serde(deserialize_with = "empty_is_none")]
    patch: Option<String>,
    #[serde(default, deserialize_with = "empty_is_none")]
    patch_minor: Option<String>,
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
struct OsCase {
    user_agent_string: String,
    family: String,
    major: Option<String>,
    minor: Option<String>,
    patch: Option<String>,
    patch_minor: Option<String>,
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
struct DeviceCase {
    user_agent_string: String,
    family: String,
    brand: Option<String>,
    model: Option<String>,
}

fn cases<T: serde::de::DeserializeOwned>(name: &str) -> Vec<T> {
    let cases: Cases<T> = serde_yaml::from_str(&fixture(name)).expect(name);
    assert!(!cases.test_cases.is_empty(), "{name} has no cases");
    cases.test_cases
}

#[test]
fn uap_core_test_ua() {
    for want in cases::<UaCase>("test_ua.yaml") {
        let ua = want.user_agent_string.as_str();
        let got = match EXTRACTOR.ua.extract(ua).map(|v| v.into_owned()) {
            Some(v) => UaCase {
                user_agent_string: ua.to_owned(),
                family: v.family,
                major: v.major,
                minor: v.minor,
                patch: v.patch,
                patch_minor: v.patch_minor,
            },
            None => UaCase {
                user_agent_string: ua.to_owned(),
                family: "Other".into(),
                major: None,
                minor: None,
                patch: None,
                patch_minor: None,
            },
        };
        assert_eq!(want, got, "{ua}");
    }
}

#[test]
fn uap_core_test_os() {
    for want in cases::<OsCase>("test_os.yaml") {
        let ua = want.user_agent_string.as_str();
        let got = match EXTRACTOR.os.extract(ua).map(|v| v.into_owned()) {
            Some(v) => OsCase {
                user_agent_string: ua.to_owned(),
                family: v.os,
                major: v.major,
                minor: v.minor,
                patch: v.patch,
                patch_minor: v.patch_minor,
            },
            None => OsCase {
                user_agent_string: ua.to_owned(),
                family: "Other".into(),
                major: None,
                minor: None,
                patch: None,
                patch_minor: None,
            },
        };
        assert_eq!(want, got, "{ua}");
    }
}

#[test]
fn uap_core_test_device() {
    for want in cases::<DeviceCase>("test_device.yaml") {
        let ua = want.user_agent_string.as_str();
        let got = match EXTRACTOR.dev.extract(ua).map(|v| v.into_owned()) {
            Some(v) => {
                DeviceCase { user_agent_string: ua.to_owned(), family: v.device, brand: v.brand, model: v.model }
            }
            None => DeviceCase { user_agent_string: ua.to_owned(), family: "Other".into(), brand: None, model: None },
        };
        assert_eq!(want, got, "{ua}");
    }
}

// ---- the behaviour the rest of Squirrel relies on ----

fn check(ua: &str, device: DeviceType, browser: &str, version: &str, os: &str) {
    let agent = UaParser::new(16).parse(ua);
    assert_eq!(agent.device, device, "device of {ua:?}: {agent:?}");
    assert_eq!(agent.browser, browser, "browser of {ua:?}: {agent:?}");
    assert_eq!(agent.browser_version, version, "version of {ua:?}: {agent:?}");
    assert_eq!(agent.os, os, "os of {ua:?}: {agent:?}");
    assert_eq!(agent.is_bot(), device == DeviceType::Bot);
}

use DeviceType::{Bot, Desktop, Mobile, Tablet, Unknown};

#[test]
fn contract_table() {
    check(
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36",
        Desktop,
        "Chrome",
        "91.0.4472",
        "Mac OS X",
    );
    check(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:89.0) Gecko/20100101 Firefox/89.0",
        Desktop,
        "Firefox",
        "89.0",
        "Windows",
    );
    check(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.114 Safari/537.36",
        Desktop,
        "Chrome",
        "91.0.4472",
        "Linux",
    );
    check(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 14_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.0 Mobile/15E148 Safari/604.1",
        Mobile,
        "Mobile Safari",
        "14.0",
        "iOS",
    );
    check(
        "Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.120 Mobile Safari/537.36",
        Mobile,
        "Chrome Mobile",
        "91.0.4472",
        "Android",
    );
    check(
        "Mozilla/5.0 (iPad; CPU OS 14_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/14.1.1 Mobile/15E148 Safari/604.1",
        Tablet,
        "Mobile Safari",
        "14.1.1",
        "iOS",
    );
    check("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Bot, "Googlebot", "2.1", "Other");
    check(
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        Bot,
        "FacebookBot",
        "1.1",
        "Other",
    );
    let bing = UaParser::new(4).parse("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)");
    assert_eq!(bing.device, Bot, "{bing:?}");
    let ahrefs = UaParser::new(4).parse("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)");
    assert_eq!(ahrefs.device, Bot, "{ahrefs:?}");
    check("", Unknown, "Other", "", "Other");
    check("curl/8.0.1", Unknown, "curl", "8.0.1", "Other");
    let headless = UaParser::new(4).parse(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/91.0.4472.114 Safari/537.36",
    );
    assert_eq!(headless.device, Bot, "{headless:?}");
}

/// Device types from Python user-agents' own test UAs (its devices.json),
/// reduced through bot > mobile > tablet > pc, to pin the port down.
#[test]
fn python_user_agents_device_types() {
    let cases: &[(&str, DeviceType)] = &[
        ("Mozilla/5.0 (Android; Mobile; rv:27.0) Gecko/27.0 Firefox/27.0", Mobile),
        (
            "BlackBerry9700/5.0.0.862 Profile/MIDP-2.1 Configuration/CLDC-1.1 VendorID/331 UNTRUSTED/1.0 3gpp-gba",
            Mobile,
        ),
        (
            "Mozilla/5.0 (BlackBerry; U; BlackBerry 9930; en-US) AppleWebKit/534.11+ (KHTML, like Gecko) Version/7.0.0.241 Mobile Safari/534.11+",
            Mobile,
        ),
        (
            "Mozilla/5.0 (Linux; U; Android 4.0.4; en-gb; GT-I9300 Build/IMM76D) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
            Mobile,
        ),
        // Old Galaxy Tabs say "Mobile Safari", so the original calls them mobile.
        (
            "Mozilla/5.0 (Linux; U; Android 2.2; en-us; SCH-I800 Build/FROYO) AppleWebKit/533.1 (KHTML, like Gecko) Version/4.0 Mobile Safari/533.1",
            Mobile,
        ),
        ("Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)", Desktop),
        ("Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0; Touch)", Desktop),
        (
            "Mozilla/5.0(iPad; U; CPU iPhone OS 3_2 like Mac OS X; en-us) AppleWebKit/531.21.10 (KHTML, like Gecko) Version/4.0.4 Mobile/7B314 Safari/531.21.10",
            Tablet,
        ),
        ("Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (J2ME/22.478; U; en) Presto/2.5.25 Version/10.54", Mobile),
        (
            "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; en-us; Silk/1.1.0-80) AppleWebKit/533.16 (KHTML, like Gecko) Version/5.0 Safari/533.16 Silk-Accelerated=true",
            Tablet,
        ),
        (
            "Mozilla/5.0 (Linux; Android 4.1.1; Nexus 7 Build/JRO03D) AppleWebKit/535.19 (KHTML, like Gecko) Chrome/18.0.1025.166  Safari/535.19",
            Tablet,
        ),
        (
            "Mozilla/5.0 (SymbianOS/9.4; Series60/5.0 NokiaN97-1/12.0.024; Profile/MIDP-2.1 Configuration/CLDC-1.1; en-us) AppleWebKit/525 (KHTML, like Gecko) BrowserNG/7.1.12344",
            Mobile,
        ),
        (
            "Mozilla/5.0 (PlayBook; U; RIM Tablet OS 2.0.1; en-US) AppleWebKit/535.8+ (KHTML, like Gecko) Version/7.2.0.1 Safari/535.8+",
            Tablet,
        ),
        ("Mozilla/5.0 (PLAYSTATION 3 4.60) AppleWebKit/531.22.8 (KHTML, like Gecko)", Unknown),
        ("Mozilla/5.0 (PlayStation Vita 3.12) AppleWebKit/536.26 (KHTML, like Gecko) Silk/3.2", Mobile),
        (
            "Mozilla/5.0 (SAMSUNG; SAMSUNG-GT-S8530/S8530DDLC2; U; Bada/2.0; en-us) AppleWebKit/534.20 (KHTML, like Gecko) Dolfin/3.0 Mobile WVGA SMM-MMS/1.2.0 OPN-B",
            Mobile,
        ),
        ("Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:15.0) Gecko/20100101 Firefox/15.0.1", Desktop),
        (
            "Mozilla/5.0 (compatible; MSIE 9.0; Windows Phone OS 7.5; Trident/5.0; IEMobile/9.0; SAMSUNG; SGH-i917)",
            Mobile,
        ),
        // Windows RT: both tablet and pc in the original; tablet wins.
        ("Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; ARM; Trident/6.0)", Tablet),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 13904.97.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.167 Safari/537.36",
            Desktop,
        ),
        // Modern Android tablet: no "Mobile" token.
        (
            "Mozilla/5.0 (Linux; Android 11; SM-T870) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.120 Safari/537.36",
            Tablet,
        ),
    ];
    let parser = UaParser::new(64);
    for &(ua, want) in cases {
        let got = parser.parse(ua);
        assert_eq!(got.device, want, "{ua}: {got:?}");
    }
}

#[test]
fn extra_bots_beyond_uap() {
    let bots = [
        // uap names the Mac, not the bot, because its Mac rule matches first.
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_1) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/62.0.3202.89 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.6099.28 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X) AppleWebKit/534.34 (KHTML, like Gecko) PhantomJS/1.6.0 Safari/534.34",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Puppeteer",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Playwright/1.40",
        "DoCoMo/2.0 N902iS(c100;TB;W24H12)(compatible; moba-crawler; http://crawler.dena.jp/)",
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; +https://openai.com/gptbot)",
        "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
    ];
    let parser = UaParser::new(64);
    for ua in bots {
        let got = parser.parse(ua);
        assert_eq!(got.device, Bot, "{ua}: {got:?}");
    }
}

#[test]
fn bot_heuristic_spares_humans_and_tools() {
    let cases: &[(&str, DeviceType)] = &[
        // A phone brand ending in "bot".
        (
            "Mozilla/5.0 (Linux; Android 10; CUBOT_X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.120 Mobile Safari/537.36",
            Mobile,
        ),
        (
            "Mozilla/5.0 (Linux; Android 4.2.2; CUBOT C11 Build/JDQ39) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/31.0.1650.57 Mobile Safari/537.36 OPR/18.0.1290.66961",
            Mobile,
        ),
        // A model code that is the bare word.
        (
            "Mozilla/5.0 (Linux; Android 10; BOT-W09) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.120 Safari/537.36",
            Tablet,
        ),
        ("curl/8.0.1", Unknown),
        ("Wget/1.21.3", Unknown),
    ];
    let parser = UaParser::new(64);
    for &(ua, want) in cases {
        let got = parser.parse(ua);
        assert_eq!(got.device, want, "{ua}: {got:?}");
    }
    assert!(has_bot_word("mozilla (compatible; ahrefsbot/7.0)"));
    assert!(has_bot_word("twitterbot"));
    assert!(!has_bot_word("cubot note 20"));
    assert!(!has_bot_word("abbott"));
    assert!(!has_bot_word("bot-w09"));
}

#[test]
fn version_string_follows_python_user_agents() {
    assert_eq!(version_string([Some("91"), Some("0"), Some("4472")]), "91.0.4472");
    assert_eq!(version_string([Some("89"), Some("0"), None]), "89.0");
    assert_eq!(version_string([None, None, None]), "");
    // int() drops leading zeros; non-numeric parts are kept verbatim.
    assert_eq!(version_string([Some("10"), Some("04"), Some("000")]), "10.4.0");
    assert_eq!(version_string([Some("1"), Some("0b3"), None]), "1.0b3");
    // Python filters out None anywhere, not just at the end.
    assert_eq!(version_string([Some("5"), None, Some("2")]), "5.2");
}

#[test]
fn device_type_round_trips() {
    for d in [Desktop, Mobile, Tablet, Bot, Unknown] {
        assert_eq!(DeviceType::parse(d.as_str()), Some(d));
    }
    assert_eq!(DeviceType::parse("Desktop"), None);
    assert_eq!(DeviceType::parse(""), None);
}

// ---- cache ----

#[test]
fn cache_returns_the_same_arc() {
    let parser = UaParser::new(8);
    let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:89.0) Gecko/20100101 Firefox/89.0";
    let a = parser.parse(ua);
    let b = parser.parse(ua);
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(parser.cache.len(), 1);
}

#[test]
fn cache_key_is_the_truncated_ua() {
    let parser = UaParser::new(8);
    let base = "x".repeat(MAX_UA_BYTES);
    let a = parser.parse(&format!("{base}aaaa"));
    let b = parser.parse(&format!("{base}bbbb"));
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(parser.cache.len(), 1);
}

#[test]
fn cache_capacity_is_a_hard_bound() {
    for capacity in [1, 7, 100, 1000, 4099] {
        let parser = UaParser::new(capacity);
        for i in 0..capacity * 3 + 50 {
            parser.parse(&format!("Mozilla/5.0 test-agent/{i}"));
            assert!(parser.cache.len() <= capacity, "capacity {capacity}");
        }
        assert!(!parser.cache.is_empty());
    }
}

#[test]
fn zero_capacity_still_parses() {
    let parser = UaParser::new(0);
    let a = parser.parse("curl/8.0.1");
    let b = parser.parse("curl/8.0.1");
    assert_eq!(a, b);
    assert_eq!(a.browser, "curl");
    assert_eq!(parser.cache.len(), 0);
}

#[test]
fn parser_is_shareable_across_threads() {
    let parser = Arc::new(UaParser::new(32));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let parser = Arc::clone(&parser);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let agent = parser.parse(&format!("Mozilla/5.0 (compatible; Thing/{})", i % 10 + t));
                    assert!(agent.browser.chars().count() <= MAX_FAMILY_CHARS);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("worker thread panicked");
    }
}

// ---- bounds and hostile input ----

#[test]
fn megabyte_ua_is_truncated_and_fast() {
    let parser = UaParser::new(8);
    let huge = format!(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:89.0) Gecko/20100101 Firefox/89.0 {}",
        "é".repeat(1 << 19)
    );
    assert!(huge.len() > 1 << 20);
    // Build the shared extractor outside the timed section.
    let _ = UaParser::new(1).parse("warm-up");
    let start = std::time::Instant::now();
    let agent = parser.parse(&huge);
    let elapsed = start.elapsed();
    assert_eq!(agent.browser, "Firefox");
    assert_eq!(agent.device, Desktop);
    // Generous for unoptimised builds; a 1 MB scan would take far longer.
    assert!(elapsed < std::time::Duration::from_millis(500), "{elapsed:?}");
    let key = parser.cache.iter().next().expect("one entry").0;
    assert!(key.len() <= MAX_UA_BYTES && huge.starts_with(key.as_str()));
}

#[test]
fn truncation_respects_char_boundaries() {
    let s = format!("{}€€", "a".repeat(MAX_UA_BYTES - 1));
    let t = truncate_bytes(&s, MAX_UA_BYTES);
    assert_eq!(t.len(), MAX_UA_BYTES - 1);
    assert_eq!(truncate_bytes("short", MAX_UA_BYTES), "short");
    assert_eq!(truncate_chars("héllo", 2), "hé");
    assert_eq!(truncate_chars("hé", 2), "hé");
}

#[test]
fn outputs_are_bounded() {
    // uap copies some families and versions straight out of the UA.
    let long_word = "A".repeat(300);
    let long_digits = "9".repeat(300);
    let inputs = [
        format!("{long_word}/{long_digits}.{long_digits}.{long_digits}"),
        format!("Mozilla/5.0 (compatible; {long_word}bot/{long_digits})"),
        format!("Mozilla/5.0 (Windows NT 10.0) Firefox/{long_digits}.1"),
        format!("Mozilla/5.0 (Linux; Android {long_digits}; {long_word} Build/X) Chrome/1.2.3.4 Mobile Safari/1"),
    ];
    let parser = UaParser::new(8);
    for ua in &inputs {
        let a = parser.parse(ua);
        assert!(a.browser.chars().count() <= MAX_FAMILY_CHARS, "{a:?}");
        assert!(a.os.chars().count() <= MAX_FAMILY_CHARS, "{a:?}");
        assert!(a.browser_version.chars().count() <= MAX_VERSION_CHARS, "{a:?}");
    }
    let firefox = parser.parse(&inputs[2]);
    assert_eq!(firefox.browser, "Firefox");
    assert_eq!(firefox.browser_version.len(), MAX_VERSION_CHARS);
}

#[test]
fn odd_inputs_never_panic() {
    let mut inputs: Vec<String> = [
        "\0",
        "\0\0\0Mozilla/5.0\0",
        "\u{1}\u{2}\u{7f}\t\r\n\u{1b}[31m",
        "🐿️🐿️🐿️ Squirrel/1.0 🦀",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 14_0 like Mac OS X) \u{202e}evil\u{200b}",
        "\u{feff}Mozilla/5.0",
        "((((((((((((((((((((",
        "))))]]]]}}}}$1$2\\",
        " ",
        "Mozilla/5.0 (",
        "bot",
        "Headless",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Deterministic pseudo-random strings drawn from an alphabet that mixes
    // UA tokens, separators, controls and multi-byte chars.
    let alphabet: Vec<char> =
        "aZ09 ;/()._-+\0\u{1}\n\té€𝄞🐿️Mozilla/Chrome/Android iPhone Windows NT X11 Mobile Safari bot".chars().collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in [1usize, 5, 40, 200, 511, 512, 513, 700, 3000] {
        for _ in 0..20 {
            let s: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            inputs.push(s);
        }
    }
    let parser = UaParser::new(1024);
    for ua in &inputs {
        let a = parser.parse(ua);
        assert!(a.browser.chars().count() <= MAX_FAMILY_CHARS);
        assert!(a.os.chars().count() <= MAX_FAMILY_CHARS);
        assert!(a.browser_version.chars().count() <= MAX_VERSION_CHARS);
        assert!(!a.browser.is_empty() && !a.os.is_empty());
        // Same answer uncached.
        assert_eq!(*a, classify(truncate_bytes(ua, MAX_UA_BYTES)), "{ua:?}");
    }
}

#[test]
fn a_bot_word_after_a_multibyte_character_does_not_panic() {
    // From the user_agent fuzz target: the separator before "googlebot" was U+FFFD (3 bytes), and the
    // word was sliced from inside it.
    assert!(has_bot_word("mozilla/2.0 (compatible \u{fffd}googlebot/2.1)"));
    assert!(has_bot_word("\u{e9}\u{fffd}ahrefsbot"));
    let parser = UaParser::new(0);
    assert!(
        parser.parse("Mozilla/2.0 (compatiblP\u{0}\u{0}\n\u{fffd}ooglebot/\u{10}.1; +http://wwwLinux.go)").is_bot()
    );
}
