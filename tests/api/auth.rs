//! Accounts over HTTP: signup, login, logout, the session cookie, password reset by mail (against a
//! local MailPace stand-in), login throttling, imported Django hashes, API tokens and CORS.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api_client::{ApiClient, PASSWORD, answer, unique_email};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    signup_logs_in_with_a_hardened_session_cookie,
    signup_and_login_refuse_bad_input_with_messages,
    logout_ends_the_session_for_good,
    protected_routes_answer_401_without_a_session,
    login_is_case_insensitive_and_wrong_passwords_are_401,
    login_is_throttled_per_account_and_per_ip_but_nothing_else_is,
    imported_django_hashes_log_in_and_are_upgraded_to_argon2id,
    password_reset_by_mail_works_once_and_ends_every_session,
    forgot_password_answers_alike_whether_or_not_the_account_or_mail_exists,
    reset_password_refuses_bad_links_with_the_originals_messages,
    api_tokens_read_statistics_and_nothing_else,
    cors_answers_the_dashboards_origin_only,
);

async fn signup_logs_in_with_a_hardened_session_cookie(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let mut client = ApiClient::anonymous(&app);
    let answer =
        client.post("/api/v1/auth/signup", json!({"email": format!("  {email} "), "password": PASSWORD})).await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body["message"], "Account created successfully");
    assert_eq!(answer.body["user"]["email"], email.as_str(), "email trimmed");
    assert_eq!(answer.body["user"]["username"], email.as_str());
    assert!(answer.body["user"]["id"].is_i64());
    let cookie = answer.set_cookie().expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "plain http by default: {cookie}");
    client.keep_cookie(&answer);
    let token = client.cookie.clone().unwrap().trim_start_matches("sessionid=").to_string();
    let me = client.get("/api/v1/auth/user").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["email"], email.as_str());
    assert_eq!(client.get("/auth/user/").await.status, 200, "unprefixed mount, trailing slash");

    // The database holds a hash of the token, never the token.
    let user = app.store.user_by_email(&email).await.unwrap().unwrap();
    assert_eq!(app.store.count_auth_sessions(user.id, squirrel::store::now_ms()).await.unwrap(), 1);
    assert!(app.store.user_by_session(&token, squirrel::store::now_ms()).await.unwrap().is_none());

    for (public_url, cookie_secure) in [(Some("https://stats.example.com"), false), (None, true)] {
        let secure = spawn_app_with(backend, |config| {
            config.accounts.public_url = public_url.map(String::from);
            config.accounts.cookie_secure = cookie_secure;
        })
        .await;
        let answer = ApiClient::anonymous(&secure)
            .post("/api/v1/auth/signup", json!({"email": unique_email(), "password": PASSWORD}))
            .await;
        assert!(answer.set_cookie().unwrap().contains("; Secure"), "{:?}", answer.set_cookie());
    }
}

async fn signup_and_login_refuse_bad_input_with_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = ApiClient::anonymous(&app);
    let email = unique_email();
    let cases: [(Value, u16, &str); 6] = [
        (json!({}), 400, "Email and password are required"),
        (json!({"email": "  ", "password": PASSWORD}), 400, "Email and password are required"),
        (json!({"email": email, "password": ""}), 400, "Email and password are required"),
        (json!({"email": email, "password": "1234567"}), 400, "Password must be at least 8 characters long"),
        (json!({"email": "not-an-email", "password": PASSWORD}), 400, "'not-an-email' is not an email address"),
        (json!({"email": 5, "password": PASSWORD}), 400, "Invalid JSON body"),
    ];
    for (body, status, message) in cases {
        let answer = client.post("/api/v1/auth/signup", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert!(answer.error().starts_with(message), "{body}: {}", answer.body);
    }
    ApiClient::signup(&app, &email).await;
    let again = client.post("/api/v1/auth/signup", json!({"email": email.to_uppercase(), "password": PASSWORD})).await;
    assert_eq!((again.status, again.error()), (400, "Email already registered"));

    // Not JSON, malformed JSON, empty: 415 / 400 / "required", never 500.
    for path in
        ["/api/v1/auth/signup", "/api/v1/auth/login", "/api/v1/auth/forgot-password", "/api/v1/auth/reset-password"]
    {
        let form = app.post(path, "application/x-www-form-urlencoded", "email=a%40b.c&password=x").await;
        let form = answer(form).await;
        assert_eq!(form.status, 415, "{path}: {}", form.body);
        assert_eq!(form.error(), "Content-Type must be application/json");
        let broken = answer(app.post(path, "application/json", "{\"email\": ").await).await;
        assert_eq!(broken.status, 400, "{path}");
        assert!(broken.error().starts_with("Invalid JSON body"), "{}", broken.body);
        let empty = answer(app.post(path, "application/json", "").await).await;
        assert_eq!(empty.status, 400, "{path}");
        assert!(empty.error().contains("required"), "{}", empty.body);
    }
    let get = client.get("/api/v1/auth/login").await;
    assert_eq!(get.status, 405);
}

async fn logout_ends_the_session_for_good(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = ApiClient::signup(&app, &unique_email()).await;
    let stolen = client.cookie.clone();
    let answer = client.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!((answer.status, answer.body["message"].as_str()), (200, Some("Logout successful")));
    assert!(answer.set_cookie().unwrap().contains("Max-Age=0"), "cookie cleared");
    client.keep_cookie(&answer);
    assert_eq!(client.cookie, None);
    let replay = ApiClient { cookie: stolen, ..ApiClient::anonymous(&app) };
    let me = replay.get("/api/v1/auth/user").await;
    assert_eq!((me.status, me.error()), (401, "Authentication required"), "a copied cookie dies with logout");
}

async fn protected_routes_answer_401_without_a_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = ApiClient::anonymous(&app);
    let forged = ApiClient { cookie: Some("sessionid=0123abcd".into()), ..ApiClient::anonymous(&app) };
    let site = "00000000-0000-4000-8000-000000000000";
    for who in [&client, &forged] {
        for answer in [
            who.get("/api/v1/auth/user").await,
            who.post("/api/v1/auth/logout", json!({})).await,
            who.get("/api/v1/sites/").await,
            who.post("/api/v1/sites/", json!({"name": "x"})).await,
            who.get(&format!("/api/v1/sites/{site}/")).await,
            who.delete(&format!("/sites/{site}")).await,
            who.get(&format!("/api/v1/chart?site_id={site}")).await,
            who.get("/api/v1/auth/tokens").await,
        ] {
            assert_eq!((answer.status, answer.error()), (401, "Authentication required"));
        }
    }
}

async fn login_is_case_insensitive_and_wrong_passwords_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    ApiClient::signup(&app, &email).await;
    let mut client = ApiClient::anonymous(&app);
    let ok = client
        .post("/api/v1/auth/login", json!({"email": format!(" {} ", email.to_uppercase()), "password": PASSWORD}))
        .await;
    assert_eq!((ok.status, ok.body["message"].as_str()), (200, Some("Login successful")), "{}", ok.body);
    assert_eq!(ok.body["user"]["email"], email.as_str());
    client.keep_cookie(&ok);
    assert_eq!(client.get("/api/v1/auth/user").await.status, 200);
    let user = app.store.user_by_email(&email).await.unwrap().unwrap();
    assert!(user.last_login.is_some());

    for body in
        [json!({"email": email, "password": "wrong password"}), json!({"email": unique_email(), "password": PASSWORD})]
    {
        let answer = ApiClient::anonymous(&app).post("/auth/login", body).await;
        assert_eq!((answer.status, answer.error()), (401, "Invalid credentials"));
        assert!(answer.set_cookie().is_none());
    }
    let missing = ApiClient::anonymous(&app).post("/api/v1/auth/login", json!({"email": email})).await;
    assert_eq!((missing.status, missing.error()), (400, "Email and password are required"));
}

async fn login_is_throttled_per_account_and_per_ip_but_nothing_else_is(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.accounts.login_attempts_per_account = 3;
        config.accounts.login_attempts_per_ip = 5;
    })
    .await;
    let (a, b) = (unique_email(), unique_email());
    ApiClient::signup(&app, &a).await;
    let bob = ApiClient::signup(&app, &b).await;
    let client = ApiClient::anonymous(&app);
    let login =
        |email: &str, password: &str| client.post("/api/v1/auth/login", json!({"email": email, "password": password}));
    for _ in 0..3 {
        assert_eq!(login(&a, "wrong password").await.status, 401);
    }
    let blocked = login(&a.to_uppercase(), PASSWORD).await;
    assert_eq!(blocked.status, 429, "the account is blocked, even with the right password");
    assert!(blocked.error().starts_with("Too many failed login attempts"), "{}", blocked.body);
    let retry: u64 = blocked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(login(&b, "wrong password").await.status, 401);
    assert_eq!(login(&b, "wrong password").await.status, 401);
    assert_eq!(login(&b, PASSWORD).await.status, 429, "five failures from this IP block every account");
    // Nothing else shares the budget.
    for _ in 0..120 {
        assert_eq!(app.http.get(format!("{}/up", app.base)).send().await.unwrap().status(), 200);
    }
    assert_eq!(bob.get("/api/v1/sites/").await.status, 200);
    assert_eq!(app.get_pv("sid=unknown", MAC_CHROME).await.status(), 404);
}

async fn imported_django_hashes_log_in_and_are_upgraded_to_argon2id(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    // Django's make_password("correct horse", "saltsaltsalt12") with 1,000 rounds.
    let django = "pbkdf2_sha256$1000$saltsaltsalt12$C+2hGzGMesL5wgeiQcx46xeGGDaxX+EX4cU9Q2czXeM=";
    app.store.create_user(&email, django).await.unwrap();
    let client = ApiClient::anonymous(&app);
    let wrong = client.post("/api/v1/auth/login", json!({"email": email, "password": "correct horsE"})).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(app.store.user_by_email(&email).await.unwrap().unwrap().password_hash, django, "untouched on failure");
    let ok = client.post("/api/v1/auth/login", json!({"email": email, "password": "correct horse"})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let stored = app.store.user_by_email(&email).await.unwrap().unwrap().password_hash;
    assert!(stored.starts_with("$argon2id$"), "rehashed: {stored}");
    let again = client.post("/api/v1/auth/login", json!({"email": email, "password": "correct horse"})).await;
    assert_eq!(again.status, 200, "the new hash verifies");
}

/// A stand-in for MailPace's send endpoint: hands every request to the test, answers `status`.
pub(crate) async fn mailpace(status: u16) -> (String, mpsc::UnboundedReceiver<(axum::http::HeaderMap, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = axum::Router::new().route(
        "/api/v1/send",
        axum::routing::post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                (axum::http::StatusCode::from_u16(status).unwrap(), axum::Json(json!({"id": 1, "status": "queued"})))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/send", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, rx)
}

pub(crate) async fn next_mail(
    rx: &mut mpsc::UnboundedReceiver<(axum::http::HeaderMap, Value)>,
) -> (axum::http::HeaderMap, Value) {
    tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("a mail within 20 s").expect("server alive")
}

/// `uid` and `token` of the link in a mail.
pub(crate) fn link_params(mail: &Value) -> (String, String, String) {
    let text = mail["textbody"].as_str().unwrap();
    let link = text.split_whitespace().find(|w| w.contains("/reset-password?")).expect("a link").to_string();
    let url = url::Url::parse(&link).unwrap();
    let get = |key: &str| url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.to_string()).unwrap();
    (link.clone(), get("uid"), get("token"))
}

async fn password_reset_by_mail_works_once_and_ends_every_session(backend: Backend) {
    let (url, mut mails) = mailpace(200).await;
    let app = spawn_app_with(backend, |config| {
        config.accounts.mailpace_api_key = Some("server-token".into());
        config.accounts.mailpace_url = url;
        config.accounts.default_from_email = "stats@example.com".into();
        config.accounts.frontend_url = squirrel::config::Origins(vec!["https://app.example.com".into()]);
    })
    .await;
    let email = unique_email();
    let first = ApiClient::signup(&app, &email).await;
    let client = ApiClient::anonymous(&app);
    let asked =
        client.post("/api/v1/auth/forgot-password", json!({"email": format!(" {}", email.to_uppercase())})).await;
    assert_eq!(asked.status, 200);
    let (headers, mail) = next_mail(&mut mails).await;
    assert_eq!(headers["mailpace-server-token"], "server-token");
    assert_eq!(mail["from"], "stats@example.com");
    assert_eq!(mail["to"], email.as_str());
    assert_eq!(mail["subject"], "Password Reset - Squirrel Stats");
    assert!(mail["textbody"].as_str().unwrap().contains("24 hours"));
    assert!(mail["htmlbody"].as_str().unwrap().contains("Reset Your Password"));
    let (link, uid, token) = link_params(&mail);
    assert!(link.starts_with("https://app.example.com/reset-password?uid="), "{link}");

    let weak =
        client.post("/api/v1/auth/reset-password", json!({"uid": uid, "token": token, "new_password": "short"})).await;
    assert_eq!((weak.status, weak.error()), (400, "Password must be at least 8 characters long"));
    let done = client
        .post("/api/v1/auth/reset-password", json!({"uid": uid, "token": token, "new_password": "a brand new secret"}))
        .await;
    assert_eq!((done.status, done.body["message"].as_str()), (200, Some("Password reset successful")), "{}", done.body);
    assert_eq!(first.get("/api/v1/auth/user").await.status, 401, "sessions end with the reset");
    let reused = client
        .post("/api/v1/auth/reset-password", json!({"uid": uid, "token": token, "new_password": "yet another secret"}))
        .await;
    assert_eq!((reused.status, reused.error()), (400, "Invalid or expired reset link"), "single use");
    let old = client.post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(old.status, 401);
    let new = client.post("/api/v1/auth/login", json!({"email": email, "password": "a brand new secret"})).await;
    assert_eq!(new.status, 200);

    // A link issued before any later password change is dead too.
    client.post("/api/v1/auth/forgot-password", json!({"email": email})).await;
    let (_, mail) = next_mail(&mut mails).await;
    let (_, uid, token) = link_params(&mail);
    client.post("/api/v1/auth/forgot-password", json!({"email": email})).await;
    let (_, mail) = next_mail(&mut mails).await;
    let (_, uid2, token2) = link_params(&mail);
    let used = client
        .post("/api/v1/auth/reset-password", json!({"uid": uid2, "token": token2, "new_password": "third secret!"}))
        .await;
    assert_eq!(used.status, 200);
    let stale = client
        .post("/api/v1/auth/reset-password", json!({"uid": uid, "token": token, "new_password": "fourth secret"}))
        .await;
    assert_eq!((stale.status, stale.error()), (400, "Invalid or expired reset link"));
}

async fn forgot_password_answers_alike_whether_or_not_the_account_or_mail_exists(backend: Backend) {
    for status in [200, 500] {
        let (url, mut mails) = mailpace(status).await;
        let app = spawn_app_with(backend, |config| {
            config.accounts.mailpace_api_key = Some("t".into());
            config.accounts.mailpace_url = url;
        })
        .await;
        let email = unique_email();
        ApiClient::signup(&app, &email).await;
        let client = ApiClient::anonymous(&app);
        let unknown = client.post("/api/v1/auth/forgot-password", json!({"email": unique_email()})).await;
        let known = client.post("/auth/forgot-password", json!({"email": email})).await;
        assert_eq!((unknown.status, &unknown.body), (known.status, &known.body), "mail answered {status}");
        assert_eq!(known.status, 200);
        assert_eq!(known.body["message"], "If an account with that email exists, a password reset link has been sent");
        // Only the known account gets mail: the first (and only) one to arrive is theirs.
        let (_, mail) = next_mail(&mut mails).await;
        assert_eq!(mail["to"], email.as_str());
        let missing = client.post("/api/v1/auth/forgot-password", json!({})).await;
        assert_eq!((missing.status, missing.error()), (400, "Email is required"));
    }
}

async fn reset_password_refuses_bad_links_with_the_originals_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    ApiClient::signup(&app, &email).await;
    let user = app.store.user_by_email(&email).await.unwrap().unwrap();
    let uid = squirrel::accounts::reset::encode_uid(user.id);
    let client = ApiClient::anonymous(&app);
    let cases = [
        (json!({"uid": uid, "token": "x"}), "UID, token, and new password are required"),
        (json!({"uid": "!!!", "token": "1-abc", "new_password": "long enough"}), "Invalid reset link"),
        (
            json!({"uid": squirrel::accounts::reset::encode_uid(999_999), "token": "1-abc", "new_password": "long enough"}),
            "Invalid reset link",
        ),
        (json!({"uid": uid, "token": "1-abc", "new_password": "long enough"}), "Invalid or expired reset link"),
        (json!({"uid": uid, "token": "garbage", "new_password": "long enough"}), "Invalid or expired reset link"),
    ];
    for (body, message) in cases {
        let answer = client.post("/api/v1/auth/reset-password", body.clone()).await;
        assert_eq!((answer.status, answer.error()), (400, message), "{body}");
    }
}

async fn api_tokens_read_statistics_and_nothing_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = ApiClient::signup(&app, &unique_email()).await;
    let bob = ApiClient::signup(&app, &unique_email()).await;
    let site = alice.create_site("Blog").await;
    let site_id = site["id"].as_str().unwrap();

    let nameless = alice.post("/api/v1/auth/tokens", json!({})).await;
    assert_eq!((nameless.status, nameless.error()), (400, "Token name is required"));
    let created = alice.post("/api/v1/auth/tokens", json!({"name": "grafana"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let token = created.body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("sq_"));
    let listed = alice.get("/api/v1/auth/tokens").await;
    assert_eq!(listed.status, 200);
    let results = listed.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["name"], "grafana");
    assert!(results[0].get("token").is_none() && !listed.body.to_string().contains(&token), "shown once");
    assert!(token.starts_with(results[0]["prefix"].as_str().unwrap()));
    assert_eq!(bob.get("/api/v1/auth/tokens").await.body["results"], json!([]));

    let script = ApiClient::with_token(&app, &token);
    assert_eq!(script.get(&format!("/api/v1/chart?site_id={site_id}")).await.status, 200);
    assert_eq!(script.get("/api/v1/sites/").await.body["count"], 1);
    assert_eq!(script.get(&format!("/api/v1/sites/{site_id}")).await.status, 200);
    for answer in [
        script.post("/api/v1/sites/", json!({"name": "x"})).await,
        script.put(&format!("/api/v1/sites/{site_id}"), json!({"name": "x"})).await,
        script.delete(&format!("/api/v1/sites/{site_id}")).await,
        script.post("/api/v1/auth/tokens", json!({"name": "more"})).await,
        script.get("/api/v1/auth/user").await,
        script.post("/api/v1/auth/logout", json!({})).await,
    ] {
        assert_eq!((answer.status, answer.error()), (403, "API tokens can only read statistics"));
    }
    let forged = ApiClient::with_token(&app, "sq_0000000000000000000000000000000000000000");
    assert_eq!(forged.get("/api/v1/sites/").await.status, 401);
    let bob_token =
        bob.post("/api/v1/auth/tokens", json!({"name": "b"})).await.body["token"].as_str().unwrap().to_string();
    let bobs_script = ApiClient::with_token(&app, &bob_token);
    let peek = bobs_script.get(&format!("/api/v1/chart?site_id={site_id}")).await;
    assert_eq!(peek.status, 404, "another user's token sees nothing of Alice's");

    let id = results[0]["id"].as_i64().unwrap();
    assert_eq!(bob.delete(&format!("/api/v1/auth/tokens/{id}")).await.status, 404, "not Bob's to revoke");
    assert_eq!(alice.delete("/api/v1/auth/tokens/not-a-number").await.status, 404);
    assert_eq!(alice.delete(&format!("/api/v1/auth/tokens/{id}")).await.status, 204);
    assert_eq!(script.get("/api/v1/sites/").await.status, 401, "revoked");
}

async fn cors_answers_the_dashboards_origin_only(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.accounts.frontend_url =
            squirrel::config::Origins(vec!["https://app.example.com".into(), "http://localhost:7777".into()]);
    })
    .await;
    let preflight = |origin: &'static str, path: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    for origin in ["https://app.example.com", "http://localhost:7777"] {
        for path in
            ["/api/v1/sites/", "/api/v1/auth/login", "/api/v1/chart", "/sites/00000000-0000-4000-8000-000000000000/"]
        {
            let response = preflight(origin, path).await.unwrap();
            assert!(response.status().is_success(), "{path}: {}", response.status());
            let h = response.headers();
            assert_eq!(h["access-control-allow-origin"], origin, "{path}");
            assert_eq!(h["access-control-allow-credentials"], "true");
            let methods = h["access-control-allow-methods"].to_str().unwrap();
            for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                assert!(methods.contains(m), "{methods}");
            }
            assert!(h["access-control-allow-headers"].to_str().unwrap().to_lowercase().contains("content-type"));
        }
    }
    let evil = preflight("https://evil.example", "/api/v1/sites/").await.unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());
    let get = app.http.get(format!("{}/api/v1/auth/user", app.base)).header("origin", "https://app.example.com");
    let get = get.send().await.unwrap();
    assert_eq!(get.status(), 401);
    assert_eq!(get.headers()["access-control-allow-origin"], "https://app.example.com");
    let get = app.http.get(format!("{}/api/v1/auth/user", app.base)).header("origin", "https://evil.example");
    assert!(get.send().await.unwrap().headers().get("access-control-allow-origin").is_none());
    // Tracking stays open to every origin.
    let track = app.http.get(format!("{}/api/v1/pv?sid=x", app.base)).header("origin", "https://evil.example");
    assert_eq!(track.send().await.unwrap().headers()["access-control-allow-origin"], "*");
}
