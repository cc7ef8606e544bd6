//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of the JSON API and the tracking endpoint.
//!
//! Built from one table ([`OPERATIONS`]) that names, per route, its parameters, its JSON body schema
//! and every status it answers with, plus the schemas of those bodies ([`schemas`]). The limits in the
//! schemas are the constants the code enforces, so they can't disagree. Kept honest from two sides:
//! `tests/api/openapi.rs` calls every operation and checks its status is documented and its body has
//! the documented shape, and `scripts/schemathesis` fuzzes the running server against this document
//! (zero 5xx, every status, content type, header and body as documented).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::super::AppState;
use super::super::extract::{MAX_JSON_BODY, SESSION_COOKIE};
use crate::accounts::auth::MAX_TOKEN_NAME;
use crate::accounts::password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
use crate::accounts::{MAX_EMAIL_BYTES, MAX_SITE_NAME, MAX_SITES_PER_USER};
use crate::ingest::hit;
use crate::stats::range::{MAX_OFFSET, MIN_OFFSET, Range};
use crate::stats::report::{Breakdown, MAX_LIMIT};

/// One operation: method, path (after `/api/v1/`), summary, who may call it, query parameters, the
/// JSON body's schema, and the statuses particular to it. [`Operation::responses`] adds the ones
/// every operation of its kind shares (401 without credentials, 415 for a body that is not JSON…).
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub auth: Auth,
    pub query: &'static [Param],
    pub body: Option<&'static str>,
    pub responses: &'static [Answer],
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    Session,
    /// A session or an API token.
    Read,
}

/// A query parameter; `schema` is a component in [`schemas`] (`#/components/schemas/<schema>`).
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    pub description: &'static str,
    pub schema: &'static str,
}

/// A documented status, its meaning, and what its body is.
#[derive(Clone, Copy)]
pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub body: AnswerBody,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AnswerBody {
    /// `application/json` of this component schema.
    Json(&'static str),
    /// `application/json` of this component, or `text/csv` (a breakdown downloaded with `format=csv`).
    JsonOrCsv(&'static str),
    /// `{"error": "..."}`.
    Error,
    Empty,
}

const fn answer(status: u16, description: &'static str, body: AnswerBody) -> Answer {
    Answer { status, description, body }
}

const fn error(status: u16, description: &'static str) -> Answer {
    Answer { status, description, body: AnswerBody::Error }
}

const fn param(name: &'static str, required: bool, description: &'static str, schema: &'static str) -> Param {
    Param { name, required, description, schema }
}

const SITE_NOT_FOUND: Answer = error(404, "Site not found or access denied");
const SITE_ID: Param = param("site_id", true, "The site's id (a UUID) from the sites list", "SiteId");
const RANGE: Param = param("range", false, "Default today", "Range");
const TIMEZONE_OFFSET: Param =
    param("timezone_offset", false, "Minutes west of UTC, as Date.getTimezoneOffset(); default 0", "TimezoneOffset");

/// The tracking endpoint's parameters, read from the query string first, then from the body.
const TRACK_QUERY: &[Param] = &[
    param("sid", false, "Site identifier; required here or in the body (400 without)", "TrackSiteIdentifier"),
    param("h", false, "Origin of the page, e.g. https://example.com", "TrackHostname"),
    param("p", false, "Path of the page", "TrackPath"),
    param("r", false, "Referrer URL", "TrackReferrer"),
    param("qs", false, "JSON object of whitelisted query parameters (utm_*); malformed: ignored", "TrackQueryString"),
];
const TRACK_ANSWERS: &[Answer] = &[
    answer(200, "The pageview is committed (bots too: stored, flagged, never counted)", AnswerBody::Json("TrackOk")),
    error(400, "No or blank sid, or a JSON body that does not parse or is not an object"),
    error(404, "No site has this identifier"),
    error(413, "Body over the limit"),
];

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "post",
        path: "auth/signup",
        summary: "Create an account and log in",
        auth: Auth::None,
        query: &[],
        body: Some("NewAccount"),
        responses: &[
            answer(201, "Account created, session cookie set", AnswerBody::Json("LoggedIn")),
            error(400, "Missing fields, bad email, password under 8 characters, or email taken"),
        ],
    },
    Operation {
        method: "post",
        path: "auth/login",
        summary: "Log in",
        auth: Auth::None,
        query: &[],
        body: Some("Credentials"),
        responses: &[
            answer(200, "Logged in, session cookie set", AnswerBody::Json("LoggedIn")),
            error(400, "Missing fields"),
            error(401, "Invalid credentials"),
            error(429, "Too many failed attempts; see Retry-After"),
        ],
    },
    Operation {
        method: "post",
        path: "auth/logout",
        summary: "End this session",
        auth: Auth::Session,
        query: &[],
        body: None,
        responses: &[answer(200, "Logged out, cookie cleared", AnswerBody::Json("Message"))],
    },
    Operation {
        method: "post",
        path: "auth/forgot-password",
        summary: "Mail a password-reset link (same answer whether or not the account exists)",
        auth: Auth::None,
        query: &[],
        body: Some("ForgotPassword"),
        responses: &[answer(200, "Accepted", AnswerBody::Json("Message")), error(400, "Email is required")],
    },
    Operation {
        method: "post",
        path: "auth/reset-password",
        summary: "Set a new password from a reset link; ends every session",
        auth: Auth::None,
        query: &[],
        body: Some("ResetPassword"),
        responses: &[
            answer(200, "Password reset", AnswerBody::Json("Message")),
            error(400, "Missing fields, invalid or expired link, weak password"),
        ],
    },
    Operation {
        method: "get",
        path: "auth/user",
        summary: "The logged-in user",
        auth: Auth::Session,
        query: &[],
        body: None,
        responses: &[answer(200, "The user", AnswerBody::Json("UserEnvelope"))],
    },
    Operation {
        method: "get",
        path: "auth/tokens",
        summary: "List API tokens (never the secrets)",
        auth: Auth::Session,
        query: &[],
        body: None,
        responses: &[answer(200, "The tokens", AnswerBody::Json("ApiTokenList"))],
    },
    Operation {
        method: "post",
        path: "auth/tokens",
        summary: "Create an API token; the secret is shown once",
        auth: Auth::Session,
        query: &[],
        body: Some("NewApiTokenRequest"),
        responses: &[
            answer(201, "The token, with its secret", AnswerBody::Json("NewApiToken")),
            error(400, "Name missing or too long"),
        ],
    },
    Operation {
        method: "delete",
        path: "auth/tokens/{id}",
        summary: "Revoke an API token",
        auth: Auth::Session,
        query: &[],
        body: None,
        responses: &[answer(204, "Revoked", AnswerBody::Empty), error(404, "No such token of yours")],
    },
    Operation {
        method: "get",
        path: "sites",
        summary: "Your sites, newest first, 20 a page",
        auth: Auth::Read,
        query: &[param("page", false, "1-based page", "Page")],
        body: None,
        responses: &[answer(200, "One page of sites", AnswerBody::Json("SitePage")), error(404, "Invalid page.")],
    },
    Operation {
        method: "post",
        path: "sites",
        summary: "Create a site",
        auth: Auth::Session,
        query: &[],
        body: Some("SiteName"),
        responses: &[
            answer(201, "The site, with pageview_count", AnswerBody::Json("Site")),
            error(400, "Name missing or too long, or 50-site limit reached"),
        ],
    },
    Operation {
        method: "get",
        path: "sites/{id}",
        summary: "One site",
        auth: Auth::Read,
        query: &[],
        body: None,
        responses: &[
            answer(200, "The site", AnswerBody::Json("Site")),
            error(404, "Not yours, unknown or malformed id"),
        ],
    },
    Operation {
        method: "put",
        path: "sites/{id}",
        summary: "Rename a site (name required)",
        auth: Auth::Session,
        query: &[],
        body: Some("SiteName"),
        responses: &[
            answer(200, "The site", AnswerBody::Json("Site")),
            error(400, "Name missing or too long"),
            error(404, "Not yours, unknown or malformed id"),
        ],
    },
    Operation {
        method: "patch",
        path: "sites/{id}",
        summary: "Rename a site (without a name nothing changes)",
        auth: Auth::Session,
        query: &[],
        body: Some("SiteNamePatch"),
        responses: &[
            answer(200, "The site", AnswerBody::Json("Site")),
            error(400, "Name blank or too long"),
            error(404, "Not yours, unknown or malformed id"),
        ],
    },
    Operation {
        method: "delete",
        path: "sites/{id}",
        summary: "Delete a site and all its data",
        auth: Auth::Session,
        query: &[],
        body: None,
        responses: &[answer(204, "Deleted", AnswerBody::Empty), error(404, "Not yours, unknown or malformed id")],
    },
    Operation {
        method: "get",
        path: "chart",
        summary: "Pageviews and unique visitors per hour (today, yesterday) or day",
        auth: Auth::Read,
        query: &[
            SITE_ID,
            RANGE,
            TIMEZONE_OFFSET,
            param("compare", false, "previous: add the period before", "Compare"),
        ],
        body: None,
        responses: &[
            answer(200, "The chart", AnswerBody::Json("Chart")),
            error(400, "Bad site_id, range, timezone_offset or compare"),
            SITE_NOT_FOUND,
        ],
    },
    Operation {
        method: "get",
        path: "stats",
        summary: "Totals against the previous period, and one breakdown",
        auth: Auth::Read,
        query: &[
            SITE_ID,
            RANGE,
            TIMEZONE_OFFSET,
            param("breakdown", false, "Which dimension to break the range down by", "BreakdownName"),
            param("limit", false, "Rows per page (default 10)", "Limit"),
            param("page", false, "1-based page of the breakdown", "Page"),
            param("path", false, "Only pageviews of this path", "PathFilter"),
            param("format", false, "csv downloads the breakdown (needs breakdown)", "Format"),
        ],
        body: None,
        responses: &[
            answer(200, "Totals and the breakdown, or the breakdown as CSV", AnswerBody::JsonOrCsv("Stats")),
            error(400, "A bad parameter, named"),
            SITE_NOT_FOUND,
        ],
    },
    Operation {
        method: "get",
        path: "realtime",
        summary: "Visitors and pageviews of the last five minutes",
        auth: Auth::Read,
        query: &[SITE_ID],
        body: None,
        responses: &[
            answer(200, "The last five minutes", AnswerBody::Json("Realtime")),
            error(400, "Bad site_id"),
            SITE_NOT_FOUND,
        ],
    },
    Operation {
        method: "get",
        path: "pv",
        summary: "Record a pageview (the tracking script's endpoint)",
        auth: Auth::None,
        query: TRACK_QUERY,
        body: None,
        responses: TRACK_ANSWERS,
    },
    Operation {
        method: "post",
        path: "pv",
        summary: "Record a pageview; parameters missing from the query string are read from the body",
        auth: Auth::None,
        query: TRACK_QUERY,
        body: Some("TrackParams"),
        responses: TRACK_ANSWERS,
    },
    Operation {
        method: "get",
        path: "track",
        summary: "Record a pageview (alias of pv)",
        auth: Auth::None,
        query: TRACK_QUERY,
        body: None,
        responses: TRACK_ANSWERS,
    },
    Operation {
        method: "post",
        path: "track",
        summary: "Record a pageview (alias of pv)",
        auth: Auth::None,
        query: TRACK_QUERY,
        body: Some("TrackParams"),
        responses: TRACK_ANSWERS,
    },
];

impl Operation {
    fn is_tracking(&self) -> bool {
        matches!(self.path, "pv" | "track")
    }

    /// Its own answers plus those every operation of its kind shares, ordered by status.
    pub fn responses(&self) -> Vec<Answer> {
        let mut all = self.responses.to_vec();
        let mut add = |extra: Answer| {
            if !all.iter().any(|a| a.status == extra.status) {
                all.push(extra);
            }
        };
        if !self.query.is_empty() && !self.is_tracking() {
            add(error(400, "Invalid query parameters (a wrong type, or one given twice)"));
        }
        if self.body.is_some() && !self.is_tracking() {
            add(error(400, "The body is not valid JSON or a field has the wrong type"));
            add(error(413, "Body over the limit"));
            add(error(415, "Content-Type is not application/json"));
        }
        match self.auth {
            Auth::None => {}
            Auth::Session => {
                add(error(401, "Authentication required"));
                add(error(403, "Only an API token: tokens can only read statistics"));
            }
            Auth::Read => add(error(401, "Authentication required, or the API token is unknown or revoked")),
        }
        if !(self.path == "auth/forgot-password") {
            add(error(503, "The database is unavailable; retry after Retry-After seconds"));
        }
        all.sort_by_key(|a| a.status);
        all
    }
}

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
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": "query",
                    "required": p.required,
                    "description": p.description,
                    "schema": schema_ref(p.schema),
                })
            })
            .collect();
        if op.path.contains("{id}") {
            parameters.push(json!({
                "name": "id",
                "in": "path",
                "required": true,
                "description": "Anything that is not the id of one of yours is 404",
                "schema": {"type": "string"},
            }));
        }
        let responses: Map<String, Value> =
            op.responses().iter().map(|answer| (answer.status.to_string(), response(answer))).collect();
        let mut operation = json!({
            "summary": op.summary,
            "operationId": format!("{}_{}", op.method, op.path.replace(['/', '-'], "_").replace(['{', '}'], "")),
            "tags": [tag(op.path)],
            "parameters": parameters,
            "responses": responses,
            "security": match op.auth {
                Auth::None => json!([]),
                Auth::Session => json!([{"session": []}]),
                Auth::Read => json!([{"session": []}, {"token": []}]),
            },
        });
        if let Some(body) = op.body {
            operation["requestBody"] = if op.is_tracking() {
                json!({
                    "required": false,
                    "description": "sendBeacon / fetch / form body; read only for parameters the query string lacks",
                    "content": {
                        "application/json": {"schema": schema_ref(body)},
                        "text/plain": {"schema": {"type": "string", "description": "A JSON object as text"}},
                        "application/x-www-form-urlencoded": {"schema": schema_ref(body)},
                    },
                })
            } else {
                json!({
                    "required": false,
                    "description": "An empty body reads as {}",
                    "content": {"application/json": {"schema": schema_ref(body)}},
                })
            };
        }
        let entry = paths.entry(format!("/api/v1/{}", op.path)).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Squirrel Stats API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every path also exists without the /api/v1 prefix; a trailing slash is optional. \
                Errors are {\"error\": \"<message>\"}.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
                "token": {"type": "http", "scheme": "bearer", "description": "API token (sq_…): read-only"},
            },
            "schemas": schemas(),
        },
    })
}

fn tag(path: &str) -> &'static str {
    match path.split('/').next() {
        Some("auth") => "accounts",
        Some("sites") => "sites",
        Some("pv" | "track") => "tracking",
        _ => "statistics",
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn response(answer: &Answer) -> Value {
    let json_of = |schema: Value| json!({"application/json": {"schema": schema}});
    let content = match answer.body {
        AnswerBody::Json(name) => Some(json_of(schema_ref(name))),
        AnswerBody::JsonOrCsv(name) => {
            let mut content = json_of(schema_ref(name));
            content["text/csv"] = json!({"schema": {"type": "string"}});
            Some(content)
        }
        AnswerBody::Error => Some(json_of(schema_ref("Error"))),
        AnswerBody::Empty => None,
    };
    let mut response = json!({"description": answer.description});
    if let Some(content) = content {
        response["content"] = content;
    }
    if matches!(answer.status, 429 | 503) {
        response["headers"] = json!({"Retry-After": {
            "required": true,
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }});
    }
    response
}

/// A JSON object schema whose properties are exactly these (answers never carry undocumented fields).
fn closed_object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// A request body: unknown fields are ignored, so they are allowed.
fn open_object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

/// Every schema the operations refer to, by name.
pub fn schemas() -> Value {
    let timestamp = json!({"type": "string", "description": "UTC, 2025-09-08T05:00:00.000000Z"});
    let count = json!({"type": "integer", "minimum": 0});
    let compared = |number: &str| {
        closed_object(json!({"value": {"type": number}, "previous": {"type": number}}), &["value", "previous"])
    };
    let period_fields = json!({
        "hours": {"type": "array", "items": {"$ref": "#/components/schemas/HourPoint"}},
        "days": {"type": "array", "items": {"$ref": "#/components/schemas/DayPoint"}},
        "total_pageviews": count,
        "total_unique_sessions": count,
    });
    let mut chart_fields = period_fields.clone();
    chart_fields["range"] = schema_ref("Range");
    chart_fields["data_type"] = json!({"type": "string", "enum": ["hourly", "daily"]});
    chart_fields["timezone_offset"] = schema_ref("TimezoneOffset");
    chart_fields["previous"] = schema_ref("ChartPeriod");
    let one_series = json!([{"required": ["hours"]}, {"required": ["days"]}]);
    let tracked = |max: usize, what: &str| json!({"type": "string", "description": format!("{what}; longer values are cut at {max} bytes")});
    let breakdown_names: Vec<&str> = Breakdown::ALL.iter().map(|b| b.as_str()).collect();
    let range_names: Vec<&str> = Range::ALL.iter().map(|r| r.as_str()).collect();
    let entries = [
        ("Error", closed_object(json!({"error": {"type": "string"}}), &["error"])),
        ("Message", closed_object(json!({"message": {"type": "string"}}), &["message"])),
        (
            "User",
            closed_object(
                json!({"id": {"type": "integer"}, "username": {"type": "string"}, "email": {"type": "string"}}),
                &["id", "username", "email"],
            ),
        ),
        ("UserEnvelope", closed_object(json!({"user": schema_ref("User")}), &["user"])),
        (
            "LoggedIn",
            closed_object(json!({"message": {"type": "string"}, "user": schema_ref("User")}), &["message", "user"]),
        ),
        (
            "Credentials",
            open_object(
                json!({
                    "email": {"type": "string", "description": "Trimmed, case-insensitive"},
                    "password": {
                        "type": "string",
                        "description": "Any string: a wrong one is 401",
                    },
                }),
                &["email", "password"],
            ),
        ),
        (
            "NewAccount",
            open_object(
                json!({
                    "email": {"type": "string", "format": "email", "maxLength": MAX_EMAIL_BYTES, "description": "Trimmed, case-insensitive"},
                    "password": {"type": "string", "minLength": MIN_PASSWORD_CHARS, "description": format!("{MIN_PASSWORD_CHARS} characters to {MAX_PASSWORD_BYTES} bytes")},
                }),
                &["email", "password"],
            ),
        ),
        ("ForgotPassword", open_object(json!({"email": {"type": "string"}}), &["email"])),
        (
            "ResetPassword",
            open_object(
                json!({
                    "uid": {"type": "string"},
                    "token": {"type": "string"},
                    "new_password": {
                        "type": "string",
                        "description": format!("{MIN_PASSWORD_CHARS} characters to {MAX_PASSWORD_BYTES} bytes"),
                    },
                }),
                &["uid", "token", "new_password"],
            ),
        ),
        (
            "ApiToken",
            closed_object(
                json!({
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "prefix": {"type": "string", "description": "The secret's first characters, to recognise it"},
                    "created_at": timestamp,
                    "last_used_at": {"type": ["string", "null"]},
                }),
                &["id", "name", "prefix", "created_at", "last_used_at"],
            ),
        ),
        (
            "NewApiToken",
            closed_object(
                json!({
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "prefix": {"type": "string"},
                    "created_at": timestamp,
                    "last_used_at": {"type": ["string", "null"]},
                    "token": {"type": "string", "description": "The secret, shown this once"},
                }),
                &["id", "name", "prefix", "created_at", "last_used_at", "token"],
            ),
        ),
        (
            "ApiTokenList",
            closed_object(json!({"results": {"type": "array", "items": schema_ref("ApiToken")}}), &["results"]),
        ),
        (
            "NewApiTokenRequest",
            open_object(
                json!({"name": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_NAME, "description": "Trimmed"}}),
                &["name"],
            ),
        ),
        (
            "SiteName",
            open_object(
                json!({"name": {"type": "string", "minLength": 1, "maxLength": MAX_SITE_NAME, "description": "Trimmed"}}),
                &["name"],
            ),
        ),
        (
            "SiteNamePatch",
            open_object(
                json!({"name": {"type": "string", "minLength": 1, "maxLength": MAX_SITE_NAME, "description": "Trimmed"}}),
                &[],
            ),
        ),
        (
            "Site",
            closed_object(
                json!({
                    "id": {"type": "string", "format": "uuid"},
                    "name": {"type": "string"},
                    "identifier": {"type": "string", "description": "What the tracking script sends as sid"},
                    "created_at": timestamp,
                    "updated_at": timestamp,
                    "pageview_count": count,
                }),
                &["id", "name", "identifier", "created_at", "updated_at", "pageview_count"],
            ),
        ),
        (
            "SitePage",
            closed_object(
                json!({
                    "count": {"type": "integer", "minimum": 0, "maximum": MAX_SITES_PER_USER},
                    "next": {"type": ["string", "null"]},
                    "previous": {"type": ["string", "null"]},
                    "results": {"type": "array", "items": schema_ref("Site")},
                }),
                &["count", "next", "previous", "results"],
            ),
        ),
        ("SiteId", json!({"type": "string", "format": "uuid"})),
        ("Page", json!({"type": "integer", "minimum": 1})),
        ("Range", json!({"type": "string", "enum": range_names})),
        ("TimezoneOffset", json!({"type": "integer", "minimum": MIN_OFFSET, "maximum": MAX_OFFSET})),
        ("Compare", json!({"type": "string", "enum": ["previous"]})),
        ("BreakdownName", json!({"type": "string", "enum": breakdown_names})),
        ("Limit", json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})),
        ("PathFilter", json!({"type": "string"})),
        ("Format", json!({"type": "string", "enum": ["json", "csv"]})),
        (
            "HourPoint",
            closed_object(
                json!({
                    "hour": {"type": "string", "description": "Start of the bucket in UTC, 2025-09-08T05:00:00+00:00"},
                    "hour_display": {"type": "string", "description": "The viewer's local hour, 2:00 PM"},
                    "pageviews": count,
                    "unique_sessions": count,
                }),
                &["hour", "hour_display", "pageviews", "unique_sessions"],
            ),
        ),
        (
            "DayPoint",
            closed_object(
                json!({
                    "day": {"type": "string", "description": "2025-09-01"},
                    "day_display": {"type": "string", "description": "Sep 01"},
                    "pageviews": count,
                    "unique_sessions": count,
                }),
                &["day", "day_display", "pageviews", "unique_sessions"],
            ),
        ),
        (
            "ChartPeriod",
            json!({
                "type": "object",
                "properties": period_fields,
                "required": ["total_pageviews", "total_unique_sessions"],
                "additionalProperties": false,
                "oneOf": one_series,
            }),
        ),
        (
            "Chart",
            json!({
                "type": "object",
                "properties": chart_fields,
                "required": ["total_pageviews", "total_unique_sessions", "range", "data_type"],
                "additionalProperties": false,
                "oneOf": one_series,
            }),
        ),
        (
            "Totals",
            closed_object(
                json!({
                    "pageviews": compared("integer"),
                    "visitors": compared("integer"),
                    "visits": compared("integer"),
                    "bounce_rate": compared("number"),
                    "avg_visit_duration": compared("integer"),
                }),
                &["pageviews", "visitors", "visits", "bounce_rate", "avg_visit_duration"],
            ),
        ),
        (
            "BreakdownRow",
            json!({
                "type": "object",
                "properties": {"value": {"type": "string"}, "pageviews": count, "visits": count, "visitors": count},
                "required": ["value", "visitors"],
                "additionalProperties": false,
                "oneOf": [{"required": ["pageviews"]}, {"required": ["visits"]}],
            }),
        ),
        (
            "Breakdown",
            closed_object(
                json!({
                    "name": schema_ref("BreakdownName"),
                    "count": count,
                    "page": {"type": "integer", "minimum": 1},
                    "limit": schema_ref("Limit"),
                    "results": {"type": "array", "items": schema_ref("BreakdownRow")},
                }),
                &["name", "count", "page", "limit", "results"],
            ),
        ),
        (
            "Stats",
            closed_object(
                json!({
                    "site_id": {"type": "string", "format": "uuid"},
                    "range": schema_ref("Range"),
                    "totals": schema_ref("Totals"),
                    "breakdown": schema_ref("Breakdown"),
                }),
                &["site_id", "range", "totals"],
            ),
        ),
        (
            "Realtime",
            closed_object(
                json!({"visitors": count, "pageviews": count, "window_seconds": {"type": "integer"}}),
                &["visitors", "pageviews", "window_seconds"],
            ),
        ),
        ("TrackSiteIdentifier", tracked(hit::MAX_SITE_IDENTIFIER, "Site identifier, e.g. mossy-acorn-8K2PN9")),
        ("TrackHostname", tracked(hit::MAX_HOSTNAME, "Origin of the page")),
        ("TrackPath", tracked(hit::MAX_PATH, "Path, default derived from the URL")),
        ("TrackReferrer", tracked(hit::MAX_REFERRER, "Referrer URL")),
        ("TrackQueryString", tracked(hit::MAX_QS, "JSON object of query parameters")),
        (
            "TrackParams",
            open_object(
                json!({
                    "sid": schema_ref("TrackSiteIdentifier"),
                    "h": schema_ref("TrackHostname"),
                    "p": schema_ref("TrackPath"),
                    "r": schema_ref("TrackReferrer"),
                    "qs": schema_ref("TrackQueryString"),
                }),
                &[],
            ),
        ),
        ("TrackOk", closed_object(json!({"status": {"type": "string", "enum": ["ok"]}}), &["status"])),
    ];
    let mut schemas: Value =
        entries.into_iter().map(|(name, schema)| (name.to_string(), schema)).collect::<Map<_, _>>().into();
    for name in [
        "NewAccount",
        "Credentials",
        "ForgotPassword",
        "ResetPassword",
        "NewApiTokenRequest",
        "SiteName",
        "SiteNamePatch",
    ] {
        schemas[name]["description"] = json!(format!("A JSON body of at most {MAX_JSON_BODY} bytes"));
    }
    schemas["TrackParams"]["description"] = json!(format!("A body of at most {} bytes", hit::MAX_BODY));
    schemas
}
