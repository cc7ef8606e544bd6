//! `GET /up`: the original's health check, answered without touching the database so load balancers
//! and container checks stay cheap.

use axum::Router;
use axum::routing::get;

use super::super::{AppState, both_mounts};

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in both_mounts("up") {
        router = router.route(&path, get(up));
    }
    router
}

async fn up() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "healthy",
        "message": "Squirrel Stats is configured and working!",
        "version": "v1",
    }))
}
