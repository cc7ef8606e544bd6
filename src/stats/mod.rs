//! Statistics: what a site's owner reads. Date ranges in the viewer's time zone ([`range`]) and the
//! chart built from the rollups ([`chart`]).
//!
//! Owns the calendar arithmetic and the shapes of the answers; asks `store` for rows and never
//! imports `axum` (`http::routes::chart` maps [`StatsError`] through `http::error`).
//! Invariant: every series is zero-filled, one entry per bucket of the requested range, oldest first.

pub mod chart;
pub mod range;
pub mod report;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A parameter the caller can fix; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// Unknown, or not the caller's: the two are never told apart.
    #[error("Site not found or access denied")]
    SiteNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}
