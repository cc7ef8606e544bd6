//! `GET /up`: the original's health check, answered without touching the database so load balancers
//! and container checks stay cheap. `/` answers with the original's greeting until the dashboard lands.

use axum::Router;
use axum::response::Html;
use axum::routing::get;

use super::super::{AppState, both_mounts};

pub fn router() -> Router<AppState> {
    let mut router = Router::new().route("/", get(index));
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

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><title>Squirrel Stats</title><pre>\n   (\\__/)\n   (o.o )  Collecting nuts per usual...\n  z(_(\")(\")\n</pre>",
    )
}
