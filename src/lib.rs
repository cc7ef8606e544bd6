//! Squirrel Stats: privacy-friendly, cookieless web analytics in one binary.
//!
//! A map of the system:
//! - [`cli`]: the `squirrel` subcommands; [`config`]: every setting, declared once.
//! - [`app`]: builds the server from a [`config::Config`] and runs it until told to stop.
//! - [`http`]: routes and the error → status map; [`ingest`]: tracking hit → committed pageview
//!   ([`ua`] classifies the User-Agent); [`accounts`]: users and sites.
//! - [`store`]: the database (SQLite or PostgreSQL, one schema) and all SQL.
//! - [`jobs`]: rollups and sessions, the Redis queue, the worker, the schedulers.
//! - [`stats`]: ranges in the viewer's time zone, charts and statistics read from the rollups.
//! - [`telemetry`]: logs and traces.

pub mod accounts;
pub mod app;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod ua;
