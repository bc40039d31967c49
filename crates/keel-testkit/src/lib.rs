//! Starts Keel for a test: a fresh database (a temp SQLite file, or a new
//! PostgreSQL database when `KEEL_TEST_DATABASE_URL` points at a server),
//! migrations, an API key, and the real router on 127.0.0.1:0.

use keel_app::{App, Location, PoolSizes, Store};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use reqwest;
pub use serde_json::json;

/// Which backend this test run targets (`KEEL_TEST_DATABASE_URL` set →
/// PostgreSQL).
pub fn postgres_url() -> Option<String> {
    std::env::var("KEEL_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// The master key tests use, so a restarted app (or the binary, given
/// `KEEL_SECRET_KEY` = [`test_secret_key_hex`]) reads what an earlier one wrote.
pub const TEST_MASTER_KEY: [u8; 32] = *b"keel-testkit-fixed-master-key-32";

pub fn test_secret_key_hex() -> String {
    TEST_MASTER_KEY.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct TestDb {
    pub location: Location,
    pub dir: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("keel_test_{}_{}_{}", std::process::id(), n, rand::random::<u32>())
}

impl TestDb {
    pub async fn fresh() -> TestDb {
        let name = unique_name();
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let location = match postgres_url() {
            Some(admin) => {
                use sqlx::Executor;
                sqlx::any::install_default_drivers();
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await.expect("connect to test postgres");
                conn.execute(sqlx::raw_sql(&format!("CREATE DATABASE {name}"))).await.expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).expect("database url has a path");
                Location::Postgres(format!("{base}/{name}"))
            }
            None => Location::SqliteFile(dir.join("keel.db")),
        };
        TestDb { location, dir }
    }

    pub async fn open(&self) -> App {
        let sizes = PoolSizes { postgres: 16, sqlite_readers: 4 };
        let store = Store::open(&self.location, sizes).await.expect("open store");
        store.migrate().await.expect("migrate");
        App::new(store, keel_app::secrets::Secrets::from_master(TEST_MASTER_KEY)).with_media_dir(self.dir.join("media"))
    }

    /// The `--data-dir` / `KEEL_DATABASE_URL` pair for running the binary
    /// against this database.
    pub fn cli_args(&self) -> Vec<String> {
        let mut args = vec!["--data-dir".to_owned(), self.dir.display().to_string()];
        if let Location::Postgres(url) = &self.location {
            args.push("--database-url".into());
            args.push(url.clone());
        }
        args
    }

    /// One integer from a raw SQL query (e.g. `SELECT COUNT(*) …`), for tests
    /// that look beneath the API.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let url = match &self.location {
            Location::Postgres(u) => u.clone(),
            Location::SqliteFile(p) => format!("sqlite://{}", p.display()),
        };
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect("connect");
        let row = sqlx::query(sql).fetch_one(&mut conn).await.expect("scalar query");
        row.try_get::<i64, _>(0).expect("an integer")
    }

    /// Runs raw SQL and reports whether the database accepted it (for tests
    /// that check a statement is refused).
    pub async fn try_execute_raw(&self, sql: &str) -> Result<(), String> {
        use sqlx::Executor;
        sqlx::any::install_default_drivers();
        let url = match &self.location {
            Location::Postgres(u) => u.clone(),
            Location::SqliteFile(p) => format!("sqlite://{}", p.display()),
        };
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect("connect");
        conn.execute(sqlx::raw_sql(sql)).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Runs raw SQL against the database, for tests that must break an
    /// invariant on purpose.
    pub async fn execute_raw(&self, sql: &str) {
        use sqlx::Executor;
        sqlx::any::install_default_drivers();
        let url = match &self.location {
            Location::Postgres(u) => u.clone(),
            Location::SqliteFile(p) => format!("sqlite://{}", p.display()),
        };
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.expect("connect");
        conn.execute(sqlx::raw_sql(sql)).await.expect("raw sql");
    }
}

pub struct TestApp {
    pub db: TestDb,
    pub app: App,
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    addr: std::net::SocketAddr,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if matches!(self.db.location, Location::SqliteFile(_)) {
            let _ = std::fs::remove_dir_all(&self.db.dir);
        } else {
            let _ = std::fs::remove_dir_all(self.db.dir.join("media"));
        }
    }
}

pub async fn spawn_app() -> TestApp {
    let db = TestDb::fresh().await;
    spawn_on(db).await
}

pub async fn spawn_on(db: TestDb) -> TestApp {
    spawn_configured(db, |app| app).await
}

/// Like [`spawn_app`], with the app adjusted first (another payment
/// provider, checkout settings, …).
pub async fn spawn_with(configure: impl FnOnce(App) -> App) -> TestApp {
    spawn_configured(TestDb::fresh().await, configure).await
}

/// The app allowed to reach private targets (loopback receivers, feed
/// sources and CDN doubles of tests), as `KEEL_ALLOW_PRIVATE_TARGETS=1`
/// does for `keel serve`: `spawn_with(allow_private_targets)`.
pub fn allow_private_targets(app: App) -> App {
    app.with_outbound(keel_app::outbound::Outbound::default().allowing_private_targets(true))
}

/// Like [`spawn_app`], with edge settings (rate limits, trusted proxy,
/// HTTPS flag) that tests otherwise leave off.
pub async fn spawn_with_edge(edge: keel_web::edge::EdgeSettings) -> TestApp {
    spawn_full(TestDb::fresh().await, |app| app, edge).await
}

async fn spawn_configured(db: TestDb, configure: impl FnOnce(App) -> App) -> TestApp {
    spawn_full(db, configure, keel_web::edge::EdgeSettings::default()).await
}

async fn spawn_full(db: TestDb, configure: impl FnOnce(App) -> App, edge: keel_web::edge::EdgeSettings) -> TestApp {
    let app = configure(db.open().await);
    let (_, key) = app.create_api_key("test").await.expect("api key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = keel_web::router(keel_web::AppState::new(app.clone()).with_edge(edge));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await;
    });
    let http = reqwest::Client::builder().pool_max_idle_per_host(512).build().expect("client");
    TestApp { db, app, base: format!("http://{addr}"), key, http, server, addr }
}

/// Serves `app` on `listener` until aborted.
fn serve(app: &App, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
    let router = keel_web::router(keel_web::AppState::new(app.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await;
    })
}

/// A response as tests look at it.
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Res {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn error_param(&self) -> &str {
        self.body["error"]["param"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// Stops the server and closes its database as a process exit would,
    /// then starts a new app on the same database and address (default
    /// settings; the API key is kept).
    pub async fn restart(&mut self) {
        self.server.abort();
        let _ = (&mut self.server).await;
        self.app.store.close().await;
        self.app = self.db.open().await;
        let listener = tokio::net::TcpListener::bind(self.addr).await.expect("rebind the same port");
        self.server = serve(&self.app, listener);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{}", self.base, path)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Res {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(&self.key);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Res { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Res {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    /// POST that must succeed; returns the body.
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, body).await;
        assert!(r.status.is_success(), "POST {path} failed: {} {}", r.status, r.body);
        r.body
    }

    pub async fn location(&self, name: &str, priority: i64) -> String {
        let b = self.ok("/locations", json!({"name": name, "kind": "warehouse", "priority": priority, "country": "US"})).await;
        b["id"].as_str().unwrap().to_owned()
    }

    /// A product with one plain variant per SKU; returns the product body.
    pub async fn product(&self, title: &str, skus: &[&str]) -> Value {
        let variants: Vec<Value> = skus
            .iter()
            .map(|s| json!({"sku": s, "prices": [{"currency": "USD", "amount": 1000}]}))
            .collect();
        self.ok("/products", json!({"title": title, "status": "active", "variants": variants})).await
    }

    pub async fn receive(&self, sku: &str, location: &str, qty: i64) -> Value {
        self.ok("/inventory/adjustments", json!({"sku": sku, "location_id": location, "kind": "receive", "quantity_delta": qty})).await
    }

    /// The level of `sku` at `location` (zeros when there is none yet).
    pub async fn level(&self, sku: &str, location: &str) -> Value {
        let r = self.get(&format!("/inventory/levels?sku={sku}&location_id={location}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"].get(0).cloned().unwrap_or(json!({"on_hand": 0, "reserved": 0, "available": 0}))
    }

    /// `GET /events?{query}` once at least `n` events are readable. On
    /// PostgreSQL an event becomes readable when every transaction older
    /// than it has finished (see `keel-store::outbox`), which other tests
    /// running in the same cluster can delay by a few milliseconds.
    pub async fn events(&self, query: &str, n: usize) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = self.get(&format!("/events?{query}")).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let len = r.body["data"].as_array().map_or(0, Vec::len);
            if len >= n || std::time::Instant::now() > deadline {
                return r.body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// `keel check` through the use case; panics with the report if broken.
    pub async fn assert_consistent(&self) {
        let report = self.app.check().await.expect("check runs");
        assert!(report.problems.is_empty(), "keel check found problems: {:#?}", report.problems);
    }
}
