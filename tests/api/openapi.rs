//! `GET /api/v1/openapi.json` describes every route, and every route it describes exists and answers
//! with a documented status. (`scripts/schemathesis` checks every answer's shape against it.)

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
            let documented = &methods[method]["responses"][response.status.to_string()];
            assert_eq!(
                documented["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
                "{method} {path}: {} is documented as an error",
                response.status
            );
        }
    }
    assert_eq!(operations, 22);
    let schemas = doc.body["components"]["schemas"].as_object().unwrap();
    let text = doc.body.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
}
