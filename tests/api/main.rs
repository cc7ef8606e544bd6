//! Integration tests: each test spawns the real app on a random loopback port against a fresh
//! database (a SQLite file in a temp dir, or a new PostgreSQL database), and talks HTTP to it.
//! One binary for all of them, so the app is linked once.

mod helpers;

mod browser;
mod cli;
mod jobs;
mod schema;
mod script;
mod shutdown;
mod store;
mod track;
mod telemetry;
