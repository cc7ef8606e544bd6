//! Health checks. `GET /up`: the original's, answered without touching the database so load balancers
//! and container checks stay cheap. `GET /health/live`: the process answers (no I/O; for restarts).
//! `GET /health/ready`: it can do its work (for routing traffic): the database answers a trivial query
//! within [`READY_DB_TIMEOUT`] and the ingest queue has room; otherwise 503 + `Retry-After` naming the
//! failing part. Redis is not checked: `serve` never uses it (only `workers` and the `queue-*`
//! commands do).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::super::{AppState, both_mounts};

/// How long readiness waits for the database: well under a balancer's probe timeout.
pub const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);
/// Seconds a balancer is asked to wait before probing a not-ready server again.
const READY_RETRY_AFTER_SECS: u32 = 5;

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in both_mounts("up") {
        router = router.route(&path, get(up));
    }
    for path in both_mounts("health/live") {
        router = router.route(&path, get(live));
    }
    for path in both_mounts("health/ready") {
        router = router.route(&path, get(ready));
    }
    router
}

async fn live() -> Response {
    no_store(StatusCode::OK, json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(READY_DB_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => {
            tracing::warn!(error = %anyhow::Error::from(err), "readiness: the database did not answer");
            Err("unavailable".to_string())
        }
        Err(_) => Err(format!("no answer within {} ms", READY_DB_TIMEOUT.as_millis())),
    };
    let ingest_queue = if state.ingest.writer().is_full() {
        Err("full: pageviews are waiting for the database".to_string())
    } else {
        Ok(())
    };
    let mut checks = Map::new();
    let mut failing = Vec::new();
    for (name, result) in [("database", database), ("ingest_queue", ingest_queue)] {
        match result {
            Ok(()) => checks.insert(name.into(), "ok".into()),
            Err(reason) => {
                failing.push(name);
                checks.insert(name.into(), reason.into())
            }
        };
    }
    if failing.is_empty() {
        return no_store(StatusCode::OK, json!({ "status": "ok", "checks": checks }));
    }
    let body = json!({
        "status": "unavailable",
        "error": format!("Not ready: {}", failing.join(", ")),
        "checks": checks,
    });
    let mut response = no_store(StatusCode::SERVICE_UNAVAILABLE, body);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(READY_RETRY_AFTER_SECS));
    response
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn up() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "healthy",
        "message": "Squirrel Stats is configured and working!",
        "version": "v1",
    }))
}
