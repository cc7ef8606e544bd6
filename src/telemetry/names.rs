//! Span and attribute names of the original's catalogue (SPEC §5.3), kept exact so existing Axiom
//! queries keep working. Code refers to these constants, never to string literals.

pub const TRACK_PAGEVIEW: &str = "track_pageview";

pub const PAGEVIEW_SITE_IDENTIFIER: &str = "pageview.site_identifier";
pub const PAGEVIEW_HOSTNAME: &str = "pageview.hostname";
pub const PAGEVIEW_PATH: &str = "pageview.path";
pub const PAGEVIEW_METHOD: &str = "pageview.method";
pub const PAGEVIEW_SITE_FOUND: &str = "pageview.site_found";
pub const PAGEVIEW_DEVICE_TYPE: &str = "pageview.device_type";
pub const PAGEVIEW_BROWSER: &str = "pageview.browser";
pub const PAGEVIEW_OS: &str = "pageview.os";
pub const PAGEVIEW_CREATED: &str = "pageview.created";
pub const PAGEVIEW_ERROR: &str = "pageview.error";
pub const PAGEVIEW_ERROR_MESSAGE: &str = "pageview.error_message";
