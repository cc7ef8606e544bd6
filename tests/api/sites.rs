//! Sites over HTTP: create, list (newest first, 20 a page), retrieve, rename, delete, the 50-site
//! limit, `pageview_count`, and the authorization matrix (one user never sees or changes another's).

use serde_json::json;

use crate::api_client::{ApiClient, unique_email};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_site_is_created_read_renamed_and_deleted,
    site_names_are_checked_with_messages,
    the_fifty_first_site_is_refused,
    lists_are_newest_first_twenty_a_page,
    pageview_count_counts_stored_human_pageviews,
    users_never_see_or_change_each_others_sites,
);

async fn a_site_is_created_read_renamed_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = ApiClient::signup(&app, &unique_email()).await;
    let created = alice.post("/api/v1/sites/", json!({"name": "  My blog ", "identifier": "mine", "id": "x"})).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let site = created.body;
    let id = site["id"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(site["name"], "My blog");
    assert_ne!(site["identifier"], "mine", "read-only fields are ignored");
    assert_eq!(site["identifier"].as_str().unwrap().split('-').count(), 3);
    assert_eq!(site["pageview_count"], 0, "create carries the count too");
    let created_at = site["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z') && created_at.len() == "2025-08-30T19:43:01.123456Z".len(), "{created_at}");

    let got = alice.get(&format!("/api/v1/sites/{id}/")).await;
    assert_eq!((got.status, &got.body), (200, &site));
    let list = alice.get("/api/v1/sites").await;
    assert_eq!(list.body["count"], 1);
    assert_eq!(list.body["results"][0], site);

    let renamed = alice.put(&format!("/api/v1/sites/{id}/"), json!({"name": "Renamed"})).await;
    assert_eq!((renamed.status, renamed.body["name"].as_str()), (200, Some("Renamed")));
    assert_eq!(renamed.body["identifier"], site["identifier"], "the identifier never changes");
    assert!(renamed.body["updated_at"].as_str() >= site["updated_at"].as_str());
    let patched = alice.patch(&format!("/sites/{id}"), json!({"name": "Patched"})).await;
    assert_eq!((patched.status, patched.body["name"].as_str()), (200, Some("Patched")));
    let untouched = alice.patch(&format!("/sites/{id}"), json!({})).await;
    assert_eq!((untouched.status, untouched.body["name"].as_str()), (200, Some("Patched")), "PATCH is partial");

    let deleted = alice.delete(&format!("/api/v1/sites/{id}/")).await;
    assert_eq!((deleted.status, &deleted.body), (204, &serde_json::Value::Null));
    assert_eq!(alice.get(&format!("/api/v1/sites/{id}/")).await.status, 404);
    assert_eq!(alice.delete(&format!("/api/v1/sites/{id}/")).await.status, 404);
    assert_eq!(alice.get("/api/v1/sites/").await.body["count"], 0);
}

async fn site_names_are_checked_with_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = ApiClient::signup(&app, &unique_email()).await;
    let long = "x".repeat(256);
    for body in [json!({}), json!({"name": "   "}), json!({"name": long})] {
        let answer = alice.post("/api/v1/sites/", body.clone()).await;
        assert_eq!(answer.status, 400, "{body}");
        assert!(answer.error().starts_with("Site name"), "{}", answer.body);
    }
    assert_eq!(alice.post("/api/v1/sites/", json!({"name": "x".repeat(255)})).await.status, 201);
    let site = alice.create_site("Blog").await;
    let id = site["id"].as_str().unwrap();
    let put = alice.put(&format!("/api/v1/sites/{id}"), json!({})).await;
    assert_eq!((put.status, put.error()), (400, "Site name is required"), "PUT needs the name");
    let form = app.post("/api/v1/sites/", "text/plain", "name=x").await;
    assert_eq!(form.status(), 401, "authentication is checked before the body");
}

async fn the_fifty_first_site_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let alice = ApiClient::signup(&app, &email).await;
    let user = app.store.user_by_email(&email).await.unwrap().unwrap();
    for i in 0..49 {
        app.store.create_site(user.id, &format!("site {i}")).await.unwrap();
    }
    assert_eq!(alice.post("/api/v1/sites/", json!({"name": "fiftieth"})).await.status, 201);
    let refused = alice.post("/api/v1/sites/", json!({"name": "fifty-first"})).await;
    assert_eq!((refused.status, refused.error()), (400, "Site limit reached. Maximum 50 sites allowed."));
    assert_eq!(app.store.count_sites_of_user(user.id).await.unwrap(), 50);
    let bob = ApiClient::signup(&app, &unique_email()).await;
    assert_eq!(bob.post("/api/v1/sites/", json!({"name": "bob's"})).await.status, 201, "the limit is per user");
}

async fn lists_are_newest_first_twenty_a_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = ApiClient::signup(&app, &unique_email()).await;
    let mut names = Vec::new();
    for i in 0..45 {
        let name = format!("site {i:02}");
        alice.create_site(&name).await;
        names.push(name);
    }
    names.reverse();
    let page1 = alice.get("/api/v1/sites/").await.body;
    assert_eq!(page1["count"], 45);
    assert_eq!(page1["previous"], serde_json::Value::Null);
    assert!(page1["next"].as_str().unwrap().ends_with("/api/v1/sites/?page=2"), "{}", page1["next"]);
    let got: Vec<&str> = page1["results"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(got, names[..20]);
    let page3 = alice.get("/api/v1/sites/?page=3").await.body;
    let got: Vec<&str> = page3["results"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(got, names[40..]);
    assert_eq!(page3["next"], serde_json::Value::Null);
    assert!(page3["previous"].as_str().unwrap().ends_with("/api/v1/sites/?page=2"));
    for bad in ["4", "0", "-1", "abc"] {
        let answer = alice.get(&format!("/api/v1/sites/?page={bad}")).await;
        assert_eq!((answer.status, answer.error()), (404, "Invalid page."), "page={bad}");
    }
    let empty = ApiClient::signup(&app, &unique_email()).await.get("/sites").await.body;
    assert_eq!(empty, json!({"count": 0, "next": null, "previous": null, "results": []}));
}

async fn pageview_count_counts_stored_human_pageviews(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = ApiClient::signup(&app, &unique_email()).await;
    let site = alice.create_site("Blog").await;
    let sid = site["identifier"].as_str().unwrap();
    for path in ["/", "/a"] {
        assert_eq!(app.get_pv(&format!("sid={sid}&h=https://e.com&p={path}"), MAC_CHROME).await.status(), 200);
    }
    assert_eq!(app.get_pv(&format!("sid={sid}&h=https://e.com&p=/"), GOOGLEBOT).await.status(), 200);
    let id = site["id"].as_str().unwrap();
    assert_eq!(alice.get(&format!("/api/v1/sites/{id}")).await.body["pageview_count"], 2);
    assert_eq!(alice.get("/api/v1/sites/").await.body["results"][0]["pageview_count"], 2);
    let renamed = alice.put(&format!("/api/v1/sites/{id}"), json!({"name": "n"})).await;
    assert_eq!(renamed.body["pageview_count"], 2);
}

async fn users_never_see_or_change_each_others_sites(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = ApiClient::signup(&app, &unique_email()).await;
    let bob = ApiClient::signup(&app, &unique_email()).await;
    let alices = alice.create_site("Alice's").await;
    let bobs = bob.create_site("Bob's").await;
    let a_id = alices["id"].as_str().unwrap();
    let sid = bobs["identifier"].as_str().unwrap();
    assert_eq!(app.get_pv(&format!("sid={sid}&h=https://b.com"), MAC_CHROME).await.status(), 200);

    let list = alice.get("/api/v1/sites/").await.body;
    assert_eq!(list["count"], 1);
    assert_eq!(list["results"][0]["name"], "Alice's");
    for id in [bobs["id"].as_str().unwrap(), "not-a-uuid", "00000000-0000-4000-8000-000000000000", "1"] {
        for answer in [
            alice.get(&format!("/api/v1/sites/{id}")).await,
            alice.put(&format!("/api/v1/sites/{id}"), json!({"name": "pwned"})).await,
            alice.patch(&format!("/api/v1/sites/{id}"), json!({"name": "pwned"})).await,
            alice.delete(&format!("/sites/{id}/")).await,
        ] {
            assert_eq!(answer.status, 404, "{id}: {}", answer.body);
        }
        // The chart names the parameter when it is not even a UUID, and says 404 otherwise.
        let chart = alice.get(&format!("/api/v1/chart?site_id={id}&range=last_7_days")).await;
        let expected = if uuid::Uuid::parse_str(id).is_ok() { 404 } else { 400 };
        assert_eq!(chart.status, expected, "{id}: {}", chart.body);
        assert!(!chart.body.to_string().contains("Bob"));
    }
    let chart = alice.get(&format!("/api/v1/chart?site_id={}", bobs["id"].as_str().unwrap())).await;
    assert_eq!((chart.status, chart.error()), (404, "Site not found or access denied"));
    let bob_view = bob.get(&format!("/api/v1/sites/{}", bobs["id"].as_str().unwrap())).await.body;
    assert_eq!((bob_view["name"].as_str(), bob_view["pageview_count"].as_i64()), (Some("Bob's"), Some(1)), "untouched");
    assert_eq!(bob.get(&format!("/api/v1/sites/{a_id}")).await.status, 404);

    // Deleting cascades to everything recorded for the site.
    let bob_site = app.store.site_by_identifier(sid).await.unwrap().unwrap();
    assert_eq!(bob.delete(&format!("/api/v1/sites/{}", bobs["id"].as_str().unwrap())).await.status, 204);
    assert!(app.pageviews(&bob_site).await.is_empty());
    assert_eq!(alice.get(&format!("/api/v1/sites/{a_id}")).await.status, 200, "Alice's site survives");
}
