//! Both migration trees must define the same tables and columns.

use sqlx::{Connection, Row};

use crate::helpers::*;

async fn columns(backend: Backend) -> Vec<(String, String)> {
    let db = TestDb::create(backend).await;
    let store = squirrel::store::Store::connect(&squirrel::config::Config::for_tests(&db.url).store).await.unwrap();
    store.close().await;
    let mut out: Vec<(String, String)> = match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            let rows = sqlx::query(
                "SELECT m.name AS t, p.name AS c FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            rows.iter().map(|r| (r.get("t"), r.get("c"))).collect()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let rows = sqlx::query(
                "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            rows.iter().map(|r| (r.get("t"), r.get("c"))).collect()
        }
    };
    out.sort();
    out
}

#[tokio::test]
async fn migrations_define_the_same_tables_on_both_backends() {
    let sqlite = columns(Backend::Sqlite).await;
    let postgres = columns(Backend::Postgres).await;
    assert!(sqlite.iter().any(|(t, c)| t == "pageviews" && c == "visitor_id"), "{sqlite:?}");
    assert_eq!(sqlite, postgres);
}
