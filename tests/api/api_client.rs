//! A JSON API client for the account, site and chart tests: keeps the session cookie the server set,
//! or sends an API token, like the dashboard and a script would.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::TestApp;

pub struct ApiClient {
    pub base: String,
    pub http: reqwest::Client,
    /// `sessionid=<token>` once logged in.
    pub cookie: Option<String>,
    pub bearer: Option<String>,
}

/// Status, `Set-Cookie` (if any) and JSON body (`Null` for an empty one).
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or_else(|| panic!("no error message in {}: {}", self.status, self.body))
    }

    pub fn set_cookie(&self) -> Option<String> {
        self.headers.get("set-cookie").map(|v| v.to_str().unwrap().to_string())
    }
}

impl ApiClient {
    pub fn anonymous(app: &TestApp) -> ApiClient {
        ApiClient { base: app.base.clone(), http: app.http.clone(), cookie: None, bearer: None }
    }

    pub fn with_token(app: &TestApp, token: &str) -> ApiClient {
        ApiClient { bearer: Some(token.to_string()), ..ApiClient::anonymous(app) }
    }

    /// Signs up `email` (password `correct horse battery`) and keeps the session.
    pub async fn signup(app: &TestApp, email: &str) -> ApiClient {
        let mut client = ApiClient::anonymous(app);
        let answer =
            client.post("/api/v1/auth/signup", serde_json::json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        client.keep_cookie(&answer);
        client
    }

    pub fn keep_cookie(&mut self, answer: &Answer) {
        let cookie = answer.set_cookie().expect("Set-Cookie");
        let pair = cookie.split(';').next().unwrap().trim().to_string();
        self.cookie = if pair.ends_with('=') { None } else { Some(pair) };
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(token) = &self.bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.expect("request sent");
        answer(response).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a site through the API and returns its JSON.
    pub async fn create_site(&self, name: &str) -> Value {
        let answer = self.post("/api/v1/sites/", serde_json::json!({ "name": name })).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }
}

pub const PASSWORD: &str = "correct horse battery";

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"))
    };
    Answer { status, headers, body }
}

pub fn unique_email() -> String {
    format!("{}@example.com", uuid::Uuid::new_v4().simple())
}
