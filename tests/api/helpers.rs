//! The test harness: fresh databases, a running app, and one method per endpoint.

use std::sync::LazyLock;

use sqlx::{Connection, Executor};
use squirrel::app::App;
use squirrel::config::Config;
use squirrel::store::{Site, Store, StoredPageview};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// `TEST_LOG=1` prints the app's logs.
static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info,squirrel=debug").with_test_writer().try_init();
    }
});

/// The PostgreSQL server the tests create their databases on. Never skipped: a missing server is
/// a failing test, so CI can't pass on SQLite alone.
pub fn postgres_admin_url() -> String {
    std::env::var("SQUIRREL_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database that exists for one test. SQLite: a real file in a temp dir (WAL and fsync behave as
/// in production). PostgreSQL: `sq_<uuid>`, dropped with `WITH (FORCE)` when the test ends.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("squirrel.db").display());
                TestDb { url, _dir: Some(dir), pg_name: None }
            }
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("sq_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL at {admin} (SQUIRREL_TEST_DATABASE_URL) must be running: {e}")
                });
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).expect("URL has a database part");
                TestDb { url: format!("{base}/{name}"), _dir: None, pg_name: Some(name) }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        // Drop runs inside the test's runtime, which can't block on itself: use a fresh one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    let _ =
                        conn.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub http: reqwest::Client,
    pub stop: CancellationToken,
    pub running: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub db: TestDb,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns the app with `adjust` applied to the test configuration.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    LazyLock::force(&TRACING);
    let db = TestDb::create(backend).await;
    let mut config = Config::for_tests(&db.url);
    adjust(&mut config);
    let app = App::build(config).await.expect("app builds");
    let addr = app.local_addr();
    let store = app.store().clone();
    let stop = CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(stop.clone()));
    TestApp {
        base: format!("http://{addr}"),
        store,
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
        stop,
        running: Some(running),
        db,
    }
}

pub const MAC_CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36";
pub const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

impl TestApp {
    /// A user and a site owned by them.
    pub async fn create_site(&self) -> Site {
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        squirrel::accounts::create_user(&self.store, &email, "correct horse battery").await.expect("user");
        squirrel::accounts::create_site(&self.store, &email, "Test site").await.expect("site")
    }

    /// `GET /api/v1/pv?<query>` with a User-Agent.
    pub async fn get_pv(&self, query: &str, user_agent: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/v1/pv?{query}", self.base))
            .header("user-agent", user_agent)
            .send()
            .await
            .expect("request sent")
    }

    /// `POST <path>` with a body of the given content type.
    pub async fn post(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("user-agent", MAC_CHROME)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn pageviews(&self, site: &Site) -> Vec<StoredPageview> {
        self.store.pageviews_of_site(site.id).await.expect("pageviews readable")
    }

    /// Stops the app as SIGTERM would and waits until it has drained.
    pub async fn shutdown(mut self) -> TestDb {
        self.stop.cancel();
        let running = self.running.take().expect("running once");
        running.await.expect("app task").expect("app stops cleanly");
        self.db
    }
}

/// Status and JSON body of a response.
pub async fn json(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON (status {status}): {text}"));
    (status, body)
}

/// One body, two named tests (`name::sqlite`, `name::postgres`), so a failure names its backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$test($crate::helpers::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$test($crate::helpers::Backend::Postgres).await }
        }
    )*};
}
