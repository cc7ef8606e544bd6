//! Tracking parameters (`sid`, `h`, `p`, `r`, `qs`) from the query string and body, cleaned and bounded.
//!
//! Nothing a client sends can make these functions fail or allocate without bound: every field is
//! cut to a documented limit at a character boundary, NUL and other control characters are removed,
//! and invalid UTF-8 is replaced (U+FFFD) by the URL decoder.

use std::borrow::Cow;

use url::form_urlencoded;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

/// Limits, in bytes. Longer values are truncated at a character boundary, never rejected: losing the
/// tail of a 5 KB URL is better than losing the pageview.
pub const MAX_SITE_IDENTIFIER: usize = 64;
pub const MAX_HOSTNAME: usize = 512;
pub const MAX_PATH: usize = 1024;
pub const MAX_URL: usize = 2048;
pub const MAX_REFERRER: usize = 2048;
pub const MAX_REFERRER_DOMAIN: usize = 255;
pub const MAX_UTM: usize = 255;
/// A `qs` longer than this is ignored as a whole (like malformed JSON), not cut into invalid JSON.
pub const MAX_QS: usize = 4096;
/// Request bodies above this answer 413.
pub const MAX_BODY: usize = 16 * 1024;

/// The raw parameters of one tracking request, query string first (it wins over the body). Their
/// schemas (query parameters and body fields alike) carry the limits above.
#[derive(Debug, Default, Clone, PartialEq, Eq, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[schema(description = format!("A body of at most {MAX_BODY} bytes"))]
pub struct TrackParams {
    #[param(schema_with = sid_schema)]
    #[schema(schema_with = sid_schema)]
    pub sid: Option<String>,
    #[param(schema_with = h_schema)]
    #[schema(schema_with = h_schema)]
    pub h: Option<String>,
    #[param(schema_with = p_schema)]
    #[schema(schema_with = p_schema)]
    pub p: Option<String>,
    #[param(schema_with = r_schema)]
    #[schema(schema_with = r_schema)]
    pub r: Option<String>,
    #[param(schema_with = qs_schema)]
    #[schema(schema_with = qs_schema)]
    pub qs: Option<String>,
}

fn tracked(max: usize, what: &str) -> Object {
    let description = format!("{what}; longer values are cut at {max} bytes");
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).build()
}

fn sid_schema() -> Object {
    tracked(
        MAX_SITE_IDENTIFIER,
        "Site identifier, e.g. mossy-acorn-8K2PN9: required, here or in the body (400 without)",
    )
}

fn h_schema() -> Object {
    tracked(MAX_HOSTNAME, "Origin of the page, e.g. https://example.com")
}

fn p_schema() -> Object {
    tracked(MAX_PATH, "Path of the page")
}

fn r_schema() -> Object {
    tracked(MAX_REFERRER, "Referrer URL")
}

fn qs_schema() -> Object {
    tracked(MAX_QS, "JSON object of whitelisted query parameters (utm_*); malformed: ignored")
}

/// Why a body could not be read as tracking parameters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("Request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("Request body must be a JSON object")]
    NotAnObject,
}

impl TrackParams {
    /// Fills fields that are still unset from URL-encoded `key=value` pairs.
    pub fn fill_from_urlencoded(&mut self, input: &[u8]) {
        for (key, value) in form_urlencoded::parse(input) {
            self.fill(&key, value);
        }
    }

    /// Fills fields that are still unset from a JSON object body, as `fetch`/`sendBeacon` send with
    /// `text/plain` or `application/json`. `qs` may be a JSON string or an object.
    pub fn fill_from_json(&mut self, body: &[u8]) -> Result<(), BodyError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|err| BodyError::InvalidJson(err.to_string()))?;
        let serde_json::Value::Object(map) = value else {
            return Err(BodyError::NotAnObject);
        };
        for (key, value) in map {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => continue,
                other => other.to_string(),
            };
            self.fill(&key, Cow::Owned(text));
        }
        Ok(())
    }

    /// Reads a body according to its content type. Unknown or missing types are sniffed: a body that
    /// looks like a JSON object is read as JSON, anything else as URL-encoded pairs.
    pub fn fill_from_body(&mut self, content_type: Option<&str>, body: &[u8]) -> Result<(), BodyError> {
        let trimmed = body.trim_ascii();
        if trimmed.is_empty() {
            return Ok(());
        }
        let mime = content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => self.fill_from_urlencoded(trimmed),
            "application/json" => self.fill_from_json(trimmed)?,
            _ if trimmed.starts_with(b"{") => self.fill_from_json(trimmed)?,
            _ => self.fill_from_urlencoded(trimmed),
        }
        Ok(())
    }

    fn fill(&mut self, key: &str, value: Cow<'_, str>) {
        let slot = match key {
            "sid" => &mut self.sid,
            "h" => &mut self.h,
            "p" => &mut self.p,
            "r" => &mut self.r,
            "qs" => &mut self.qs,
            _ => return,
        };
        if slot.is_none() {
            // Bound before storing: a parameter can be as large as the body limit allows.
            let max = MAX_URL.max(MAX_QS);
            *slot = Some(match value {
                // The decoder already made a copy: keep it when it needs no cleaning.
                Cow::Owned(decoded) if is_clean(&decoded, max) => decoded,
                value => clean(&value, max),
            });
        }
    }

    /// The trimmed site identifier, or `None` when absent or empty.
    pub fn site_identifier(&self) -> Option<&str> {
        self.sid.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
}

/// A pageview's page and source, derived from validated parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub hostname: String,
    pub url: String,
    pub path: String,
    pub referrer: String,
    pub referrer_domain: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_term: String,
    pub utm_content: String,
}

impl Page {
    /// `url = h + p + ?qs`, with the whitelisted query pairs URL-encoded in the order the client sent
    /// them (the original appended them raw, so `?a=b c` was stored unencoded).
    pub fn from_params(params: &TrackParams) -> Page {
        let hostname = clean_cow(params.h.as_deref().unwrap_or(""), MAX_HOSTNAME);
        let raw_path = clean_cow(params.p.as_deref().unwrap_or(""), MAX_PATH);
        let referrer = clean(params.r.as_deref().unwrap_or(""), MAX_REFERRER);
        let query = params.qs.as_deref().map(parse_qs).unwrap_or_default();

        let mut url = String::with_capacity(hostname.len() + raw_path.len());
        url.push_str(&hostname);
        url.push_str(&raw_path);
        if !query.is_empty() {
            url.push('?');
            let query_start = url.len();
            let mut encoded = form_urlencoded::Serializer::for_suffix(url, query_start);
            for (key, value) in &query {
                encoded.append_pair(key, value);
            }
            url = encoded.finish();
        }
        url.truncate(truncate(&url, MAX_URL).len());
        let path = if raw_path.is_empty() { path_of(&url) } else { raw_path.into_owned() };

        let utm = |name: &str| {
            query.iter().find(|(k, _)| k == name).map(|(_, v)| truncate(v, MAX_UTM).to_string()).unwrap_or_default()
        };
        Page {
            referrer_domain: referrer_domain(&referrer),
            utm_source: utm("utm_source"),
            utm_medium: utm("utm_medium"),
            utm_campaign: utm("utm_campaign"),
            utm_term: utm("utm_term"),
            utm_content: utm("utm_content"),
            hostname: hostname.into_owned(),
            url,
            path,
            referrer,
        }
    }
}

/// `qs` is a JSON object of the query parameters the tracker whitelisted. Anything else (malformed,
/// not an object, over [`MAX_QS`]) is ignored, as the original did, and logged at debug.
fn parse_qs(raw: &str) -> Vec<(String, String)> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "{}" {
        return Vec::new();
    }
    if raw.len() > MAX_QS {
        tracing::debug!(len = raw.len(), "qs over {MAX_QS} bytes ignored");
        return Vec::new();
    }
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw) {
        Ok(map) => map
            .into_iter()
            .filter_map(|(key, value)| {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => return None,
                    other => other.to_string(),
                };
                Some((clean(&key, MAX_UTM), clean(&value, MAX_URL)))
            })
            .collect(),
        Err(err) => {
            tracing::debug!(error = %err, "qs is not a JSON object; ignored");
            Vec::new()
        }
    }
}

/// The path of an absolute URL (`/` when it has none or does not parse).
fn path_of(url: &str) -> String {
    url::Url::parse(url).map(|u| u.path().to_string()).ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into())
}

/// `host[:port]` of a referrer URL, `""` when there is none.
fn referrer_domain(referrer: &str) -> String {
    let Ok(parsed) = url::Url::parse(referrer) else {
        return String::new();
    };
    let Some(host) = parsed.host_str() else {
        return String::new();
    };
    let domain = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    truncate(&domain, MAX_REFERRER_DOMAIN).to_string()
}

/// Removes control characters (C0 with NUL, DEL and C1) and cuts to `max` bytes at a character boundary.
pub fn clean(value: &str, max: usize) -> String {
    clean_cow(value, max).into_owned()
}

/// Whether [`clean`] would return `value` unchanged.
fn is_clean(value: &str, max: usize) -> bool {
    matches!(clean_cow(value, max), Cow::Borrowed(kept) if kept.len() == value.len())
}

/// [`clean`], borrowing `value` when it only needs trimming or cutting.
fn clean_cow(value: &str, max: usize) -> Cow<'_, str> {
    let trimmed = value.trim();
    // Not only ASCII bytes: C1 controls (U+0080–U+009F) are two-byte characters (found by fuzzing).
    if trimmed.chars().any(char::is_control) {
        let mut filtered: String = trimmed.chars().filter(|c| !c.is_control()).collect();
        filtered.truncate(truncate(&filtered, max).len());
        Cow::Owned(filtered)
    } else {
        Cow::Borrowed(truncate(trimmed, max))
    }
}

/// The longest prefix of `value` of at most `max` bytes that ends on a character boundary.
pub fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_removes_c1_controls_too() {
        // From fuzz/artifacts (track_params): U+0092 survived, as only ASCII control bytes were looked for.
        assert_eq!(clean("a\u{92}b\u{9f}", 64), "ab");
        assert_eq!(clean("a\u{0}b\u{7f}c", 64), "abc");
        let mut params = TrackParams::default();
        params.fill_from_urlencoded(b"sid=mossy-acorn%C2%92-8K2PN9&p=%2Fa%C2%85b");
        assert_eq!(params.sid.as_deref(), Some("mossy-acorn-8K2PN9"));
        assert_eq!(Page::from_params(&params).path, "/ab");
    }

    fn params(query: &str) -> TrackParams {
        let mut p = TrackParams::default();
        p.fill_from_urlencoded(query.as_bytes());
        p
    }

    #[test]
    fn query_string_wins_over_the_body() {
        let mut p = params("sid=from-query&p=/q");
        p.fill_from_body(Some("application/x-www-form-urlencoded"), b"sid=from-body&h=https://b.example&p=/b").unwrap();
        assert_eq!(p.sid.as_deref(), Some("from-query"));
        assert_eq!(p.p.as_deref(), Some("/q"));
        assert_eq!(p.h.as_deref(), Some("https://b.example"));
    }

    #[test]
    fn json_bodies_are_read_whatever_the_declared_type() {
        for ct in [Some("text/plain;charset=UTF-8"), Some("application/json"), None] {
            let mut p = TrackParams::default();
            p.fill_from_body(ct, br#"{"sid":"s","h":"https://x.example","p":"/a","qs":{"utm_source":"news"}}"#)
                .unwrap();
            assert_eq!(p.sid.as_deref(), Some("s"));
            assert_eq!(p.qs.as_deref(), Some(r#"{"utm_source":"news"}"#));
        }
        let mut p = TrackParams::default();
        assert!(matches!(p.fill_from_body(Some("application/json"), b"{nope"), Err(BodyError::InvalidJson(_))));
        assert_eq!(p.fill_from_body(Some("application/json"), b"[1]"), Err(BodyError::NotAnObject));
    }

    #[test]
    fn url_is_origin_plus_path_plus_encoded_query_in_client_order() {
        let page = Page::from_params(&params(
            "h=https://example.com&p=/about&qs=%7B%22search%22%3A%22a+b%22%2C%22category%22%3A%22web%22%7D",
        ));
        assert_eq!(page.url, "https://example.com/about?search=a+b&category=web");
        assert_eq!(page.path, "/about");
    }

    #[test]
    fn utm_parameters_come_from_qs() {
        let mut p = params("h=https://e.com&p=/");
        p.qs = Some(r#"{"utm_source":"google","utm_medium":"cpc","utm_campaign":"fall","gclid":"x"}"#.into());
        let page = Page::from_params(&p);
        assert_eq!(
            (page.utm_source.as_str(), page.utm_medium.as_str(), page.utm_campaign.as_str()),
            ("google", "cpc", "fall")
        );
        assert_eq!(page.utm_term, "");
    }

    #[test]
    fn invalid_or_empty_qs_leaves_the_url_without_query() {
        for qs in ["{invalid-json}", "{}", "[1,2]", "\"text\""] {
            let mut p = params("h=https://example.com&p=/test");
            p.qs = Some(qs.into());
            assert_eq!(Page::from_params(&p).url, "https://example.com/test", "qs {qs}");
        }
    }

    #[test]
    fn empty_path_is_derived_from_the_url() {
        assert_eq!(Page::from_params(&params("h=https://example.com")).path, "/");
        assert_eq!(Page::from_params(&params("h=https://example.com&p=")).path, "/");
    }

    #[test]
    fn referrer_domain_keeps_the_port_and_is_empty_without_referrer() {
        assert_eq!(Page::from_params(&params("r=https://news.example:8443/x?y")).referrer_domain, "news.example:8443");
        assert_eq!(Page::from_params(&params("r=https://example.com/")).referrer_domain, "example.com");
        assert_eq!(Page::from_params(&params("")).referrer_domain, "");
        assert_eq!(Page::from_params(&params("r=not a url")).referrer_domain, "");
    }

    #[test]
    fn long_fields_are_cut_at_char_boundaries_and_control_chars_removed() {
        let long = "é".repeat(3000);
        let page = Page::from_params(&params(&format!("h=https://e.com&p=/{long}&r=https://r.com/{long}")));
        assert!(page.path.len() <= MAX_PATH && page.url.len() <= MAX_URL && page.referrer.len() <= MAX_REFERRER);
        assert!(page.path.starts_with("/é"));
        let page = Page::from_params(&params("p=/a%00b%0Ac&h=https://e.com"));
        assert_eq!(page.path, "/abc");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        let p = params("sid=ab%FFcd");
        assert_eq!(p.sid.as_deref(), Some("ab\u{FFFD}cd"));
    }

    #[test]
    fn blank_site_identifier_counts_as_missing() {
        assert_eq!(params("sid=%20%20").site_identifier(), None);
        assert_eq!(params("sid=+mossy-oak-AAAAAA+").site_identifier(), Some("mossy-oak-AAAAAA"));
    }
}
