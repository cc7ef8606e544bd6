//! Ingest: a tracking hit becomes a stored pageview.
//!
//! Owns parameter cleaning ([`hit`]), User-Agent classification (through `ua`), visitor hashing
//! ([`visitor`]) and the group-commit writer ([`writer`]). Not HTTP (`http::routes::track` turns
//! requests into [`TrackParams`] and results into responses) and not SQL (`store`).
//! Invariant: [`Ingest::track`] returns `Ok` only after the pageview's transaction has committed.

pub mod geo;
pub mod hit;
pub mod visitor;
pub mod writer;

use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use hit::{BodyError, TrackParams};
pub use writer::{WriteError, Writer, WriterSettings};

use crate::store::{NewPageview, Store, StoreError};
use crate::telemetry::lane::{LaneSpan, Value};
use crate::telemetry::names;
use crate::ua::UaParser;

/// How long a site identifier → site id mapping is trusted. A site deleted meanwhile is caught by the
/// foreign key at insert time (that row is refused, its batch neighbours are not).
const SITE_CACHE_TTL: Duration = Duration::from_secs(60);
const SITE_CACHE_CAPACITY: usize = 10_000;

/// The requester, as far as ingest needs to know it. Neither field is ever stored.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    pub ip: IpAddr,
    pub user_agent: &'a str,
}

/// Why a hit was not stored. The HTTP layer maps these to statuses.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TrackError {
    #[error("Missing site identifier")]
    MissingSiteIdentifier,
    #[error("Invalid site identifier")]
    InvalidSiteIdentifier,
    #[error("storage is busy, try again later")]
    Unavailable,
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

impl TrackError {
    /// The `pageview.error` attribute value of the original's span catalogue.
    pub fn code(&self) -> &'static str {
        match self {
            TrackError::MissingSiteIdentifier => "missing_site_identifier",
            TrackError::InvalidSiteIdentifier => "invalid_site_identifier",
            TrackError::Unavailable | TrackError::ShuttingDown | TrackError::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for TrackError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => TrackError::Unavailable,
            other => TrackError::Internal(format!("{:#}", anyhow::Error::from(other))),
        }
    }
}

impl From<WriteError> for TrackError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::Busy => TrackError::Unavailable,
            WriteError::Closed => TrackError::ShuttingDown,
            // The only row-level refusal we expect is the site's deletion racing the cache.
            WriteError::Refused(_) => TrackError::InvalidSiteIdentifier,
        }
    }
}

/// The ingest service shared by all tracking requests.
pub struct Ingest {
    store: Store,
    ua: UaParser,
    visitors: visitor::Visitors,
    sites: quick_cache::sync::Cache<String, (i64, Instant)>,
    writer: Writer,
    /// `GEOIP_DB`, when configured: the client IP's country, kept instead of the IP.
    geo: Option<geo::GeoIp>,
}

impl Ingest {
    pub fn new(store: Store, ua: UaParser, writer: Writer) -> Ingest {
        Ingest {
            visitors: visitor::Visitors::new(store.clone()),
            sites: quick_cache::sync::Cache::new(SITE_CACHE_CAPACITY),
            store,
            ua,
            writer,
            geo: None,
        }
    }

    /// Resolves each client's country with `geo` (see [`geo`]).
    pub fn with_geo(self, geo: Option<geo::GeoIp>) -> Ingest {
        Ingest { geo, ..self }
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Validates, classifies and stores one hit received at `now_ms`. Records the `pageview.*`
    /// attributes on `span` (the handler's `track_pageview`), whose identity the batch INSERT's span
    /// links to.
    pub async fn track(
        &self,
        params: &TrackParams,
        client: &Client<'_>,
        now_ms: i64,
        span: &mut LaneSpan,
    ) -> Result<(), TrackError> {
        let identifier = params.site_identifier().unwrap_or("");
        span.set_str(names::PAGEVIEW_SITE_IDENTIFIER, hit::truncate(identifier, hit::MAX_SITE_IDENTIFIER));
        span.set_str(
            names::PAGEVIEW_HOSTNAME,
            params.h.as_deref().map(|h| hit::truncate(h, hit::MAX_HOSTNAME)).unwrap_or(""),
        );
        span.set_str(names::PAGEVIEW_PATH, params.p.as_deref().map(|p| hit::truncate(p, hit::MAX_PATH)).unwrap_or(""));
        if identifier.is_empty() {
            return Err(TrackError::MissingSiteIdentifier);
        }
        let site_id = self.site_id(identifier).await?;
        span.set(names::PAGEVIEW_SITE_FOUND, Value::Bool(site_id.is_some()));
        let Some(site_id) = site_id else {
            return Err(TrackError::InvalidSiteIdentifier);
        };

        let agent = self.ua.parse(client.user_agent);
        span.set_str(names::PAGEVIEW_DEVICE_TYPE, agent.device.as_str());
        span.set_str(names::PAGEVIEW_BROWSER, &agent.browser);
        span.set_str(names::PAGEVIEW_OS, &agent.os);

        let (visitor_id, visitor_id_prev) = self.visitors.ids(now_ms, site_id, client.ip, client.user_agent).await?;
        let page = hit::Page::from_params(params);
        let row = NewPageview {
            site_id,
            created_at: now_ms,
            url: page.url,
            path: page.path,
            referrer: page.referrer,
            referrer_domain: page.referrer_domain,
            utm_source: page.utm_source,
            utm_medium: page.utm_medium,
            utm_campaign: page.utm_campaign,
            utm_term: page.utm_term,
            utm_content: page.utm_content,
            browser: agent.browser.clone(),
            browser_version: agent.browser_version.clone(),
            os: agent.os.clone(),
            device_type: agent.device.as_str(),
            country: self.geo.as_ref().and_then(|g| g.country(client.ip)).unwrap_or_default(),
            is_bot: agent.is_bot(),
            visitor_id,
            visitor_id_prev,
        };
        if let Err(err) = self.writer.write(row, span.context()).await {
            if matches!(err, WriteError::Refused(_)) {
                self.forget_site(identifier);
            }
            return Err(err.into());
        }
        span.set(names::PAGEVIEW_CREATED, Value::Bool(true));
        Ok(())
    }

    /// The site id for an identifier, from the cache when fresh. Unknown identifiers are not cached,
    /// so a site created in another process is usable at once.
    async fn site_id(&self, identifier: &str) -> Result<Option<i64>, StoreError> {
        if identifier.len() > hit::MAX_SITE_IDENTIFIER {
            return Ok(None);
        }
        if let Some((id, fetched)) = self.sites.get(identifier)
            && fetched.elapsed() < SITE_CACHE_TTL
        {
            return Ok(Some(id));
        }
        // A cache miss: boxed, so the future every request carries stays small.
        let site = Box::pin(self.store.site_by_identifier(identifier)).await?;
        if let Some(site) = &site {
            self.sites.insert(identifier.to_string(), (site.id, Instant::now()));
        }
        Ok(site.map(|s| s.id))
    }

    /// Forgets a cached identifier (after the site is deleted in this process).
    pub fn forget_site(&self, identifier: &str) {
        self.sites.remove(identifier);
    }
}
