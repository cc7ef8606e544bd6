//! Integration tests: each test spawns the real app on a random loopback port against a fresh
//! database (a SQLite file in a temp dir, or a new PostgreSQL database), and talks HTTP to it.
//! One binary for all of them, so the app is linked once.

mod api_client;
mod helpers;

mod auth;
mod browser;
mod chart;
mod cli;
mod dashboard;
mod deploy;
mod faults;
mod geo;
mod hardening;
mod health;
mod jobs;
mod openapi;
mod process;
mod retention;
mod scale;
mod schema;
mod script;
mod shutdown;
mod sites;
mod stats;
mod store;
mod telemetry;
mod track;
