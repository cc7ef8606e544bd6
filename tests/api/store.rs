//! Store behaviour that HTTP doesn't show directly: salts, settings, users, sites.

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    visitor_salts_rotate_daily_and_only_two_days_are_kept,
    settings_are_generated_once_and_shared,
    emails_are_unique_ignoring_case_and_sites_get_woodland_identifiers,
    pageview_batches_commit_all_or_nothing,
);

async fn visitor_salts_rotate_daily_and_only_two_days_are_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = &app.store;
    let day = 20_000;
    let first = store.visitor_salt(day).await.unwrap();
    assert_eq!(store.visitor_salt(day).await.unwrap(), first, "stable within a day");
    let (a, b) = tokio::join!(store.visitor_salt(day + 1), store.visitor_salt(day + 1));
    assert_eq!(a.unwrap(), b.unwrap(), "concurrent creators agree");
    assert_ne!(store.visitor_salt(day + 1).await.unwrap(), first, "a new day, a new salt");
    assert_eq!(store.existing_visitor_salt(day).await.unwrap(), Some(first), "yesterday's is kept");
    store.visitor_salt(day + 2).await.unwrap();
    assert_eq!(store.existing_visitor_salt(day).await.unwrap(), None, "older ones are deleted");
}

async fn settings_are_generated_once_and_shared(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.store.setting_or_insert("k", || "one".into()).await.unwrap();
    let second = app.store.setting_or_insert("k", || "two".into()).await.unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    // The app generated and persisted a secret key at start.
    let key = app.store.setting_or_insert("secret_key", || "unused".into()).await.unwrap();
    assert_eq!(key.len(), 64);
}

async fn emails_are_unique_ignoring_case_and_sites_get_woodland_identifiers(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = squirrel::accounts::create_user(&app.store, "  Ada@Example.com ", "long enough pw").await.unwrap();
    assert_eq!(user.email, "Ada@Example.com");
    let dup = squirrel::accounts::create_user(&app.store, "ada@example.COM", "long enough pw").await;
    assert!(matches!(dup, Err(squirrel::accounts::AccountError::EmailTaken)), "{dup:?}");
    let short = squirrel::accounts::create_user(&app.store, "b@example.com", "short").await;
    assert!(matches!(short, Err(squirrel::accounts::AccountError::Invalid(_))));
    let site = squirrel::accounts::create_site(&app.store, "ADA@example.com", " Blog ").await.unwrap();
    assert_eq!(site.name, "Blog");
    assert!(squirrel::accounts::identifier::is_well_formed(&site.identifier), "{}", site.identifier);
    assert_eq!(site.uuid.len(), 36);
    let found = app.store.site_by_identifier(&site.identifier).await.unwrap().unwrap();
    assert_eq!(found, site);
}

async fn pageview_batches_commit_all_or_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let site = app.create_site().await;
    let row = |site_id: i64, path: &str| squirrel::store::NewPageview {
        site_id,
        created_at: 1,
        url: format!("https://e.com{path}"),
        path: path.into(),
        referrer: String::new(),
        referrer_domain: String::new(),
        utm_source: String::new(),
        utm_medium: String::new(),
        utm_campaign: String::new(),
        utm_term: String::new(),
        utm_content: String::new(),
        browser: "Chrome".into(),
        browser_version: "1".into(),
        os: "Linux".into(),
        device_type: "desktop",
        country: String::new(),
        is_bot: false,
        visitor_id: 7,
        visitor_id_prev: None,
    };
    // 250 rows span three INSERT statements in one transaction.
    let good: Vec<_> = (0..250).map(|i| row(site.id, &format!("/{i}"))).collect();
    app.store.insert_pageviews(&good).await.unwrap();
    assert_eq!(app.pageviews(&site).await.len(), 250);
    let mut mixed = good.clone();
    mixed.push(row(site.id + 1000, "/orphan")); // violates the foreign key
    assert!(app.store.insert_pageviews(&mixed).await.is_err());
    assert_eq!(app.pageviews(&site).await.len(), 250, "the failed batch left nothing behind");
}
