//! The application: one startup path shared by `squirrel serve` and the tests.
//!
//! [`App::build`] connects the store, starts the ingest writers and binds the listener;
//! [`App::run_until_stopped`] serves until told to stop and then shuts down in order:
//! HTTP stops accepting and finishes in-flight requests → the router (and every writer handle) is
//! dropped → the writers commit what is queued and exit → the pool closes. Ownership, not sleeps,
//! fixes that order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accounts::auth::Auth;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::ingest::geo::GeoIp;
use crate::ingest::{Ingest, Writer, WriterSettings};
use crate::store::Store;
use crate::ua::UaParser;

pub struct App {
    listener: TcpListener,
    store: Store,
    state: AppState,
    /// The ingest writers; they end once every `Writer` handle (all inside `state`) is gone.
    tasks: TaskTracker,
    config: Config,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let store = Store::connect(&config.store).await.context("opening the database")?;
        let secret_key = match &config.http.secret_key {
            Some(key) if !key.trim().is_empty() => key.clone(),
            // Generated once and shared through the database, so every process signs alike.
            _ => store.setting_or_insert("secret_key", || hex::encode(rand::random::<[u8; 32]>())).await?,
        };
        let tasks = TaskTracker::new();
        let writer = Writer::spawn(
            &tasks,
            &store,
            WriterSettings {
                writers: config.ingest.writers.map_or_else(|| store.dialect().ingest_writers(), |n| n as usize),
                batch: config.ingest.batch as usize,
                capacity: config.ingest.queue as usize,
                wait: Duration::from_millis(config.ingest.wait_ms),
                linger: config.ingest.linger_us.map_or_else(|| store.dialect().ingest_linger(), Duration::from_micros),
            },
        )
        .context("opening the ingest writer's connection")?;
        let geo = config.ingest.geoip_db.as_deref().map(GeoIp::open).transpose()?;
        let ingest = Arc::new(Ingest::new(store.clone(), UaParser::new(config.ingest.ua_cache), writer).with_geo(geo));
        let state = AppState::new(http::Services {
            store: store.clone(),
            ingest,
            trusted_proxies: Arc::new(config.http.trusted_proxies.clone()),
            auth: Arc::new(
                Auth::new(store.clone(), &config.accounts, &secret_key).context("setting up password-reset mail")?,
            ),
            accounts: Arc::new(config.accounts.clone()),
            stats: Arc::default(),
            track_limiter: config
                .http
                .track_rate_limit
                .map(|limit| Arc::new(http::rate_limit::TrackLimiter::new(limit))),
            secret_key: Arc::from(secret_key),
        });
        let listener = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("binding {} (SQUIRREL_ADDR)", config.http.addr))?;
        Ok(App { listener, store, state, tasks, config })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound TCP listener has a local address")
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `stop` is cancelled, then drains (bounded by the shutdown grace period).
    pub async fn run_until_stopped(self, stop: CancellationToken) -> anyhow::Result<()> {
        let App { listener, store, state, tasks, config } = self;
        let grace = config.http.shutdown_grace();
        let server = http::server::serve(listener, http::Frontend::new(state), stop.clone());
        let checkpointer = tokio::spawn(store.clone().run_checkpointer(stop.clone()));
        tokio::select! {
            () = server => {}
            () = async { stop.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(?grace, "in-flight requests outlived the grace period; closing them");
            }
        }
        tasks.close();
        tokio::time::timeout(grace, tasks.wait())
            .await
            .context("ingest writers outlived the grace period; queued pageviews may be unacknowledged")?;
        let _ = checkpointer.await;
        store.checkpoint_all().await;
        store.close().await;
        Ok(())
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler only fails outside a Tokio runtime");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
