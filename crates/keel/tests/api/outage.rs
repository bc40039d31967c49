//! A database outage is answered as one: 503 `database_unavailable` with
//! `Retry-After`, `/readyz` not ready, and everything back once the
//! database is. PostgreSQL is reached through a loopback proxy the test can
//! cut, as a network partition or a stopped server would.

use keel_app::Location;
use keel_testkit::{json, postgres_url, spawn_on, TestDb};
use reqwest::StatusCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Forwards 127.0.0.1:port → `upstream` until cut; while cut, connections
/// are accepted and closed at once, and the live ones are gone.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (d, l) = (down.clone(), live.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if d.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Proxy { port, down, live, accept }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for t in self.live.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[tokio::test]
async fn a_database_outage_answers_503_with_retry_after_and_readyz_says_not_ready() {
    if postgres_url().is_none() {
        return; // SQLite is in-process: it cannot become unreachable.
    }
    let db = TestDb::fresh().await;
    let Location::Postgres(url) = &db.location else { unreachable!() };
    let (head, tail) = url.split_once('@').unwrap();
    let (hostport, dbname) = tail.split_once('/').unwrap();
    let proxy = Proxy::start(hostport.to_owned()).await;
    let via_proxy = format!("{head}@127.0.0.1:{}/{dbname}", proxy.port);
    let t = spawn_on(TestDb { location: Location::Postgres(via_proxy), dir: db.dir.clone() }).await;
    let loc = t.location("Main", 1).await;
    t.product("Tee", &["OUT-1"]).await;
    t.receive("OUT-1", &loc, 5).await;
    let ready = t.http.get(format!("{}/readyz", t.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    proxy.cut();
    let r = t.post("/inventory/adjustments", json!({"sku": "OUT-1", "location_id": loc, "kind": "receive", "quantity_delta": 1})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.error_code(), "database_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    let r = t.get("/inventory/levels?sku=OUT-1").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "reads too: {}", r.body);
    let ready = t.http.get(format!("{}/readyz", t.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["database"], "unreachable", "{body}");
    // Liveness is not readiness: the process itself is fine.
    assert_eq!(t.http.get(format!("{}/healthz", t.base)).send().await.unwrap().status(), StatusCode::OK);

    proxy.restore();
    t.receive("OUT-1", &loc, 1).await;
    assert_eq!(t.level("OUT-1", &loc).await["on_hand"], 6, "the refused write left nothing behind");
    let ready = t.http.get(format!("{}/readyz", t.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
}

/// A claim whose request failed while the database was away is released
/// once it answers again, so the client's retry runs at once.
#[tokio::test]
async fn a_release_owed_during_an_outage_is_paid_when_the_database_returns() {
    let t = keel_testkit::spawn_app().await;
    // As the middleware leaves it: the claim made, its release not done.
    let claim = keel_app::idempotency::Request { scope: "", key: "owed-1", method: "POST", path: "/x", request_hash: "h" };
    assert_eq!(t.app.idempotency_claim(&claim).await.unwrap(), keel_app::idempotency::Claim::New);
    t.app.node.owe_release("", "owed-1");
    assert_eq!(t.app.idempotency_claim(&claim).await.unwrap(), keel_app::idempotency::Claim::InFlight);
    assert_eq!(t.app.pay_owed_releases().await.unwrap(), 1);
    assert_eq!(t.app.idempotency_claim(&claim).await.unwrap(), keel_app::idempotency::Claim::New);
}

/// An unfinished claim of a process that died is taken over at once by the
/// same request; one of a live process is still in flight.
#[tokio::test]
async fn a_dead_processs_claim_is_taken_over_at_once_and_a_live_ones_is_not() {
    let t = keel_testkit::spawn_app().await;
    let claim = keel_app::idempotency::Request { scope: "s", key: "k", method: "POST", path: "/x", request_hash: "h" };
    assert_eq!(t.app.idempotency_claim(&claim).await.unwrap(), keel_app::idempotency::Claim::New);
    assert_eq!(t.app.idempotency_claim(&claim).await.unwrap(), keel_app::idempotency::Claim::InFlight, "its owner lives");
    // The owner dies: its lease ends (as when it is not renewed).
    t.db.execute_raw(&format!("DELETE FROM node_leases WHERE node_id = '{}'", t.app.node.id())).await;
    let other = t.db.open().await;
    assert_eq!(other.idempotency_claim(&claim).await.unwrap(), keel_app::idempotency::Claim::New, "taken over at once");
    assert_eq!(t.app.idempotency_claim(&claim).await.unwrap(), keel_app::idempotency::Claim::InFlight);
}
