//! The User-Agent path: classification (uap rules + our bot heuristics) through the cached parser,
//! built once per process as the server does. It must never panic, and a second look at the same UA
//! (from the cache) must agree with the first.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use squirrel::ua::UaParser;

static PARSER: LazyLock<UaParser> = LazyLock::new(|| UaParser::new(1024));

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser through `String::from_utf8_lossy`, as in the tracking handler.
    let user_agent = String::from_utf8_lossy(data);
    let first = PARSER.parse(&user_agent);
    let again = PARSER.parse(&user_agent);
    assert_eq!(first, again);
    assert!(!first.browser.is_empty() && !first.os.is_empty(), "{first:?}");
    let _ = first.is_bot();
});
