//! `GET /api/v1/openapi.json` describes every route, and every route it describes exists.

use crate::api_client::{ApiClient, answer};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(the_openapi_document_lists_exactly_routes_that_answer);

async fn the_openapi_document_lists_exactly_routes_that_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = ApiClient::anonymous(&app).get("/api/v1/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    for route in ["/api/v1/auth/login", "/api/v1/sites/{id}", "/api/v1/chart", "/api/v1/stats", "/api/v1/realtime"] {
        assert!(paths.contains_key(route), "{route}");
    }
    let mut operations = 0;
    for (path, methods) in paths {
        for method in methods.as_object().unwrap().keys() {
            operations += 1;
            let url = format!("{}{}", app.base, path.replace("{id}", "00000000-0000-4000-8000-000000000000"));
            let request = app.http.request(method.to_uppercase().parse().unwrap(), url);
            let response =
                answer(request.header("content-type", "application/json").body("{}").send().await.unwrap()).await;
            assert!(![404, 405].contains(&response.status), "{method} {path}: {}", response.status);
            assert!(response.body["error"].is_string(), "{method} {path}: a JSON error without credentials or fields");
        }
    }
    assert_eq!(operations, 18);
}
