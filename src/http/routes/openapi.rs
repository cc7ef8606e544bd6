//! `GET /api/v1/openapi.json`: an OpenAPI 3.1 description of the JSON API, built from one table
//! ([`OPERATIONS`]) that lists every route with its parameters, body fields and answers. The table
//! sits next to the handlers and a test checks that every route it names answers (not 404), so the
//! document and the router can't drift apart silently.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::super::AppState;

/// One operation: method, path (after `/api/v1/`), summary, who may call it, query parameters,
/// JSON body fields, and the statuses it answers with.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    pub query: &'static [(&'static str, &'static str)],
    pub body: &'static [&'static str],
    pub responses: &'static [(u16, &'static str)],
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Session,
    /// A session or an API token.
    Read,
}

const ERRORS_401: (u16, &str) = (401, "Authentication required");

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "post",
        path: "auth/signup",
        summary: "Create an account and log in",
        auth: Auth::None,
        query: &[],
        body: &["email", "password"],
        responses: &[
            (201, "Account created, session cookie set"),
            (400, "Missing fields, bad email, password under 8 characters, or email taken"),
            (415, "Body is not JSON"),
        ],
    },
    Operation {
        method: "post",
        path: "auth/login",
        summary: "Log in",
        auth: Auth::None,
        query: &[],
        body: &["email", "password"],
        responses: &[
            (200, "Logged in, session cookie set"),
            (400, "Missing fields"),
            (401, "Invalid credentials"),
            (429, "Too many failed attempts; see Retry-After"),
        ],
    },
    Operation {
        method: "post",
        path: "auth/logout",
        summary: "End this session",
        auth: Auth::Session,
        query: &[],
        body: &[],
        responses: &[(200, "Logged out, cookie cleared"), ERRORS_401],
    },
    Operation {
        method: "post",
        path: "auth/forgot-password",
        summary: "Mail a password-reset link (same answer whether or not the account exists)",
        auth: Auth::None,
        query: &[],
        body: &["email"],
        responses: &[(200, "Accepted"), (400, "Email is required")],
    },
    Operation {
        method: "post",
        path: "auth/reset-password",
        summary: "Set a new password from a reset link; ends every session",
        auth: Auth::None,
        query: &[],
        body: &["uid", "token", "new_password"],
        responses: &[(200, "Password reset"), (400, "Missing fields, invalid or expired link, weak password")],
    },
    Operation {
        method: "get",
        path: "auth/user",
        summary: "The logged-in user",
        auth: Auth::Session,
        query: &[],
        body: &[],
        responses: &[(200, "{user: {id, username, email}}"), ERRORS_401],
    },
    Operation {
        method: "get",
        path: "auth/tokens",
        summary: "List API tokens (never the secrets)",
        auth: Auth::Session,
        query: &[],
        body: &[],
        responses: &[(200, "{results: [...]}"), ERRORS_401],
    },
    Operation {
        method: "post",
        path: "auth/tokens",
        summary: "Create an API token; the secret is shown once",
        auth: Auth::Session,
        query: &[],
        body: &["name"],
        responses: &[(201, "{id, name, prefix, created_at, token}"), (400, "Name missing or too long"), ERRORS_401],
    },
    Operation {
        method: "delete",
        path: "auth/tokens/{id}",
        summary: "Revoke an API token",
        auth: Auth::Session,
        query: &[],
        body: &[],
        responses: &[(204, "Revoked"), ERRORS_401, (404, "No such token of yours")],
    },
    Operation {
        method: "get",
        path: "sites",
        summary: "Your sites, newest first, 20 a page",
        auth: Auth::Read,
        query: &[("page", "1-based page")],
        body: &[],
        responses: &[(200, "{count, next, previous, results}"), ERRORS_401, (404, "Invalid page.")],
    },
    Operation {
        method: "post",
        path: "sites",
        summary: "Create a site",
        auth: Auth::Session,
        query: &[],
        body: &["name"],
        responses: &[
            (201, "The site, with pageview_count"),
            (400, "Name missing or too long, or 50-site limit reached"),
            ERRORS_401,
        ],
    },
    Operation {
        method: "get",
        path: "sites/{id}",
        summary: "One site",
        auth: Auth::Read,
        query: &[],
        body: &[],
        responses: &[(200, "The site"), ERRORS_401, (404, "Not yours, unknown or malformed id")],
    },
    Operation {
        method: "put",
        path: "sites/{id}",
        summary: "Rename a site (name required)",
        auth: Auth::Session,
        query: &[],
        body: &["name"],
        responses: &[
            (200, "The site"),
            (400, "Name missing or too long"),
            ERRORS_401,
            (404, "Not yours, unknown or malformed id"),
        ],
    },
    Operation {
        method: "patch",
        path: "sites/{id}",
        summary: "Rename a site (name optional)",
        auth: Auth::Session,
        query: &[],
        body: &["name"],
        responses: &[
            (200, "The site"),
            (400, "Name blank or too long"),
            ERRORS_401,
            (404, "Not yours, unknown or malformed id"),
        ],
    },
    Operation {
        method: "delete",
        path: "sites/{id}",
        summary: "Delete a site and all its data",
        auth: Auth::Session,
        query: &[],
        body: &[],
        responses: &[(204, "Deleted"), ERRORS_401, (404, "Not yours, unknown or malformed id")],
    },
    Operation {
        method: "get",
        path: "chart",
        summary: "Pageviews and unique visitors per hour (today, yesterday) or day",
        auth: Auth::Read,
        query: &[
            ("site_id", "site UUID (required)"),
            ("range", "today | yesterday | last_7_days | last_30_days | this_month | last_month"),
            ("timezone_offset", "minutes west of UTC, as Date.getTimezoneOffset()"),
            ("compare", "previous: add the period before"),
        ],
        body: &[],
        responses: &[
            (
                200,
                "{hours|days, total_pageviews, total_unique_sessions, range, data_type[, timezone_offset][, previous]}",
            ),
            (400, "Bad site_id, range, timezone_offset or compare"),
            ERRORS_401,
            (404, "Site not found or access denied"),
        ],
    },
    Operation {
        method: "get",
        path: "stats",
        summary: "Totals against the previous period, and one breakdown",
        auth: Auth::Read,
        query: &[
            ("site_id", "site UUID (required)"),
            ("range", "as for chart"),
            ("timezone_offset", "as for chart"),
            (
                "breakdown",
                "pages | entry_pages | exit_pages | referrers | utm_source | utm_medium | utm_campaign | browsers | os | devices | countries",
            ),
            ("limit", "rows per page, 1-1000 (10)"),
            ("page", "1-based"),
            ("path", "only this path"),
            ("format", "json | csv (needs breakdown)"),
        ],
        body: &[],
        responses: &[
            (200, "{site_id, range, totals[, breakdown]} or text/csv"),
            (400, "A bad parameter, named"),
            ERRORS_401,
            (404, "Site not found or access denied"),
        ],
    },
    Operation {
        method: "get",
        path: "realtime",
        summary: "Visitors and pageviews of the last five minutes",
        auth: Auth::Read,
        query: &[("site_id", "site UUID (required)")],
        body: &[],
        responses: &[
            (200, "{visitors, pageviews, window_seconds}"),
            (400, "Bad site_id"),
            ERRORS_401,
            (404, "Site not found or access denied"),
        ],
    },
];

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/openapi.json", get(|| async { Json(document()) }))
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut parameters: Vec<Value> = op
            .query
            .iter()
            .map(|(name, doc)| {
                json!({"name": name, "in": "query", "required": *name == "site_id", "description": doc, "schema": {"type": "string"}})
            })
            .collect();
        if op.path.contains("{id}") {
            parameters.push(json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}));
        }
        let responses: Map<String, Value> = op
            .responses
            .iter()
            .map(|(status, doc)| {
                let schema = if *status >= 400 { json!({"$ref": "#/components/schemas/Error"}) } else { json!({}) };
                let content =
                    if *status == 204 { json!(null) } else { json!({"application/json": {"schema": schema}}) };
                let mut response = json!({"description": doc});
                if !content.is_null() {
                    response["content"] = content;
                }
                (status.to_string(), response)
            })
            .collect();
        let mut operation = json!({
            "summary": op.summary,
            "operationId": format!("{}_{}", op.method, op.path.replace(['/', '-'], "_").replace(['{', '}'], "")),
            "parameters": parameters,
            "responses": responses,
            "security": match op.auth {
                Auth::None => json!([]),
                Auth::Session => json!([{"session": []}]),
                Auth::Read => json!([{"session": []}, {"token": []}]),
            },
        });
        if !op.body.is_empty() {
            let properties: Map<String, Value> =
                op.body.iter().map(|field| (field.to_string(), json!({"type": "string"}))).collect();
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"type": "object", "properties": properties}}},
            });
        }
        let entry = paths.entry(format!("/api/v1/{}", op.path)).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Squirrel Stats API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every path also exists without the /api/v1 prefix; a trailing slash is optional.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": super::super::extract::SESSION_COOKIE},
                "token": {"type": "http", "scheme": "bearer", "description": "API token (sq_…): read-only"},
            },
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}},
        },
    })
}
