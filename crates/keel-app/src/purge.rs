//! Cache invalidation from the outbox, by surrogate key.
//!
//! Storefront responses carry a `Surrogate-Key` header naming what they show
//! (see [`product_keys`]): the product id (`prod_…`), collection ids
//! (`coll_…`), and [`PRODUCTS_KEY`] on pages that list products. Two readers
//! of the outbox turn changes into the same keys ([`keys_for`]):
//!
//! - **CDN purge** ([`App::purge_cdn`]): a durable outbox consumer (cursor
//!   [`CONSUMER`], monitored in integration health and `/metrics`). Per batch
//!   of committed events it POSTs the deduplicated keys to
//!   `KEEL_CDN_PURGE_URL` (checked by [`crate::outbound`] at start and at
//!   every request) as `{"surrogate_keys":[…]}` with a
//!   `Surrogate-Key: k1 k2 …` header (Fastly style), at most
//!   [`PurgeConfig::max_keys_per_request`] keys per request, with
//!   `Authorization: Bearer KEEL_CDN_PURGE_TOKEN` when set. The cursor only
//!   moves after every request of the batch got a 2xx, so purges are
//!   at-least-once; failures back off exponentially (1 s … 5 min, ±10 %).
//!   Without a URL the consumer still runs and moves its cursor without
//!   calling anything, so configuring a CDN later starts from the present
//!   rather than replaying history.
//! - **In-process invalidations** ([`App::cache_invalidations`]): every node
//!   tails the outbox with its own in-memory cursor (starting at the head
//!   when the process starts) and broadcasts the keys of each batch, for
//!   caches of rendered fragments held in this process. Each node sees every
//!   change, whichever node purged the CDN.
//!
//! Which keys an event yields: product events → the product and
//! [`PRODUCTS_KEY`]; any event whose payload names a `product_id` → that
//! product; collection events → the collection and [`COLLECTIONS_KEY`] (and
//! its `product_ids`); `collection_ids` on a product → those collections;
//! inventory level changes → every product with a variant consuming the
//! item (bundles and kits too), plus [`PRODUCTS_KEY`] when availability
//! crosses zero or moves at or below [`LISTING_STOCK_THRESHOLD`] (listings
//! show "sold out" and "only N left", nothing finer).

use crate::outbound::{self, ClientSettings, Outbound};
use crate::{in_tx, App, Result};
use keel_domain::inventory::Levels;
use keel_domain::time::now_micros;
use keel_store::outbox::{self, Cursor, Event, Filter};
use keel_store::purge as db;
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// The durable consumer's cursor name (as listed in integration health).
pub const CONSUMER: &str = "cdn-purge";
/// On every page that lists products (home, collections, search).
pub const PRODUCTS_KEY: &str = "products";
/// On every page that lists collections.
pub const COLLECTIONS_KEY: &str = "collections";
/// Listings are purged when a level's availability changes at or below this.
pub const LISTING_STOCK_THRESHOLD: i64 = 5;
/// Events read per batch.
pub const BATCH_EVENTS: i64 = 500;
/// Capacity of the in-process broadcast; a receiver further behind gets
/// `RecvError::Lagged` and must drop its whole cache.
pub const INVALIDATION_CAPACITY: usize = 1024;
const POLL: Duration = Duration::from_millis(200);
const ERROR_LIMIT: usize = 300;

/// The surrogate keys of one invalidation, sorted and deduplicated.
pub type Invalidation = Arc<[String]>;

/// The purge API token. Never printed: `Debug` shows `***`.
#[derive(Clone)]
pub struct PurgeToken(String);

impl PurgeToken {
    pub fn new(token: impl Into<String>) -> PurgeToken {
        PurgeToken(token.into())
    }
}

impl std::fmt::Debug for PurgeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PurgeToken(***)")
    }
}

#[derive(Debug, Clone)]
pub struct PurgeConfig {
    /// Where purges are POSTed; `None`: no CDN (the consumer only advances).
    pub url: Option<String>,
    pub token: Option<PurgeToken>,
    pub connect_timeout: Duration,
    /// The whole request including the response headers.
    pub timeout: Duration,
    /// Keys per request (Fastly accepts 256).
    pub max_keys_per_request: usize,
    /// First retry delay, doubled per consecutive failure up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
}

impl Default for PurgeConfig {
    fn default() -> Self {
        PurgeConfig {
            url: None,
            token: None,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            max_keys_per_request: 256,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
        }
    }
}

impl PurgeConfig {
    /// `KEEL_CDN_PURGE_URL` (http or https, a target `outbound` allows) and
    /// `KEEL_CDN_PURGE_TOKEN` (or `KEEL_CDN_PURGE_TOKEN_FILE`), both optional.
    pub async fn from_env(outbound: &Outbound) -> std::result::Result<PurgeConfig, String> {
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let url = match var("KEEL_CDN_PURGE_URL") {
            None => None,
            Some(u) => Some(check_url(outbound, &u).await?),
        };
        let token = match (var("KEEL_CDN_PURGE_TOKEN"), var("KEEL_CDN_PURGE_TOKEN_FILE")) {
            (Some(t), _) => Some(PurgeToken::new(t)),
            (None, Some(path)) => {
                let t = std::fs::read_to_string(&path).map_err(|e| format!("KEEL_CDN_PURGE_TOKEN_FILE {path}: {e}"))?;
                Some(PurgeToken::new(t.trim()))
            }
            (None, None) => None,
        };
        Ok(PurgeConfig { url, token, ..PurgeConfig::default() })
    }
}

async fn check_url(outbound: &Outbound, raw: &str) -> std::result::Result<String, String> {
    outbound.check_target("KEEL_CDN_PURGE_URL", raw).await.map_err(|e| format!("KEEL_CDN_PURGE_URL ({}): {}", e.code, e.message))
}

/// What one [`App::purge_cdn`] step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeRun {
    /// Nothing new in the outbox.
    Idle,
    /// Backing off after a failure until this time (µs); nothing tried.
    Waiting { until: i64 },
    /// `events` consumed and `keys` purged in `requests` requests (none
    /// without a URL, or when the events touch nothing cached).
    Advanced { events: usize, keys: Vec<String>, requests: usize },
    /// The purge API failed; nothing was consumed; the next try is at `retry_at`.
    Failed { error: String, retry_at: i64 },
}

#[derive(Default)]
struct Retry {
    failures: u32,
    not_before: i64,
    last_error: Option<String>,
}

/// Purge settings, HTTP client and invalidation channel, shared by clones of
/// an [`App`].
pub struct CacheRuntime {
    config: PurgeConfig,
    client: Option<outbound::Client>,
    invalidations: broadcast::Sender<Invalidation>,
    registered: AtomicBool,
    retry: Mutex<Retry>,
    local: tokio::sync::Mutex<Option<Cursor>>,
}

impl CacheRuntime {
    pub fn new(config: PurgeConfig, policy: &Outbound) -> CacheRuntime {
        let client = config.url.as_ref().map(|_| {
            policy.client(ClientSettings {
                connect_timeout: config.connect_timeout,
                timeout: config.timeout,
                user_agent: concat!("Keel-Purge/", env!("CARGO_PKG_VERSION")),
                max_idle_per_host: 4,
            })
        });
        let (invalidations, _) = broadcast::channel(INVALIDATION_CAPACITY);
        CacheRuntime {
            config,
            client,
            invalidations,
            registered: AtomicBool::new(false),
            retry: Mutex::new(Retry::default()),
            local: tokio::sync::Mutex::new(None),
        }
    }

    fn retry(&self) -> std::sync::MutexGuard<'_, Retry> {
        self.retry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a failure; returns when to try again.
    fn failed(&self, now: i64, error: &str) -> i64 {
        let mut r = self.retry();
        r.failures = r.failures.saturating_add(1);
        let base = self.config.retry_base.as_micros() as f64 * 2f64.powi(r.failures.min(30) as i32 - 1);
        let delay = base.min(self.config.retry_max.as_micros() as f64) * rand::thread_rng().gen_range(0.9..=1.1);
        r.not_before = now + delay as i64;
        r.last_error = Some(error.to_owned());
        r.not_before
    }

    fn succeeded(&self) {
        *self.retry() = Retry::default();
    }
}

/// The `Surrogate-Key` header value of a product page: the product, its
/// collections. Listing pages add [`PRODUCTS_KEY`] and the ids they show.
pub fn product_keys(product_id: &str, collection_ids: &[&str]) -> String {
    std::iter::once(product_id).chain(collection_ids.iter().copied()).collect::<Vec<_>>().join(" ")
}

/// Keys an event yields without looking anything up, and the inventory item
/// whose products it also touches.
pub fn event_keys(ev: &Event) -> (Vec<String>, Option<String>) {
    let mut keys = Vec::new();
    let p = &ev.payload;
    let obj = p.get("object").unwrap_or(&Value::Null);
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let strs_of = |v: &Value, k: &str| -> Vec<String> {
        v.get(k).and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let family = ev.kind.split('.').next().unwrap_or("");
    if ev.aggregate_type == "product" || family == "product" {
        keys.push(ev.aggregate_id.clone());
        keys.push(PRODUCTS_KEY.to_owned());
    }
    if ev.aggregate_type == "collection" || family == "collection" {
        keys.push(ev.aggregate_id.clone());
        keys.push(COLLECTIONS_KEY.to_owned());
        keys.extend(strs_of(obj, "product_ids"));
        keys.extend(strs_of(p, "product_ids"));
    }
    for v in [p, obj] {
        keys.extend(str_of(v, "product_id").filter(|id| id.starts_with("prod_")));
        keys.extend(str_of(v, "collection_id").filter(|id| id.starts_with("coll_")));
        keys.extend(strs_of(v, "collection_ids").into_iter().filter(|id| id.starts_with("coll_")));
    }
    let mut item = None;
    if family == "inventory" {
        item = str_of(p, "inventory_item_id");
        if item.is_some() && listing_visible(p) {
            keys.push(PRODUCTS_KEY.to_owned());
        }
    }
    (keys, item)
}

/// Whether a level change can show on a listing: availability crossed zero
/// or changed at or below [`LISTING_STOCK_THRESHOLD`]. Unknown shapes: yes.
fn listing_visible(payload: &Value) -> bool {
    let before = payload.get("before").and_then(|b| serde_json::from_value::<Levels>(b.clone()).ok()).map(|l| l.available());
    let after = payload.get("level").and_then(|l| l.get("available")).and_then(Value::as_i64);
    match (before, after) {
        (Some(a), Some(b)) => a != b && ((a > 0) != (b > 0) || a.min(b) <= LISTING_STOCK_THRESHOLD),
        _ => true,
    }
}

/// Every key the events touch, looking up the products of inventory items.
pub async fn keys_for(conn: &mut keel_store::Conn, events: &[Event]) -> Result<BTreeSet<String>> {
    let mut keys = BTreeSet::new();
    let mut items = BTreeSet::new();
    for ev in events {
        let (k, item) = event_keys(ev);
        keys.extend(k);
        items.extend(item);
    }
    let items: Vec<String> = items.into_iter().collect();
    for chunk in items.chunks(500) {
        keys.extend(db::products_of_items(conn, chunk).await?);
    }
    Ok(keys)
}

impl App {
    /// Replaces the purge settings. Receivers from [`App::cache_invalidations`]
    /// taken before this call belong to the old settings: subscribe after.
    pub fn with_purge_config(mut self, config: PurgeConfig) -> App {
        self.cache = Arc::new(CacheRuntime::new(config, &self.outbound));
        self
    }

    pub fn purge_config(&self) -> &PurgeConfig {
        &self.cache.config
    }

    /// Surrogate keys of every change this process sees, batch by batch,
    /// for in-process caches: drop entries tagged with any of the keys; on
    /// `RecvError::Lagged`, drop everything.
    pub fn cache_invalidations(&self) -> broadcast::Receiver<Invalidation> {
        self.cache.invalidations.subscribe()
    }

    /// The last purge error while purges are failing (for health).
    pub fn purge_last_error(&self) -> Option<String> {
        self.cache.retry().last_error.clone()
    }

    /// One step of the CDN purge consumer at `now` (µs): one batch of
    /// events, its keys purged, then the cursor advanced. The worker calls
    /// it in a loop; tests call it with a controlled clock.
    pub async fn purge_cdn(&self, now: i64) -> Result<PurgeRun> {
        let rt = self.cache.clone();
        if !rt.registered.load(Ordering::Relaxed) {
            in_tx!(self, |tx| Ok(db::register(&mut tx, CONSUMER).await?))?;
            rt.registered.store(true, Ordering::Relaxed);
        }
        let until = rt.retry().not_before;
        if until > now {
            return Ok(PurgeRun::Waiting { until });
        }
        let mut conn = self.store.reader().await?;
        let cursor = outbox::load_cursor(&mut conn, CONSUMER).await?;
        let events = outbox::read(&mut conn, cursor, &Filter::default(), BATCH_EVENTS).await?;
        let Some(last) = events.last().map(|e| e.cursor) else { return Ok(PurgeRun::Idle) };
        let (keys, requests) = match (&rt.config.url, &rt.client) {
            (Some(url), Some(client)) => {
                let keys: Vec<String> = keys_for(&mut conn, &events).await?.into_iter().collect();
                drop(conn);
                let mut requests = 0;
                for chunk in keys.chunks(rt.config.max_keys_per_request.max(1)) {
                    if let Err(error) = post_keys(client, url, rt.config.token.as_ref(), chunk).await {
                        let retry_at = rt.failed(now, &error);
                        tracing::warn!(consumer = CONSUMER, %error, keys = chunk.len(), retry_in_ms = (retry_at - now) / 1000, "CDN purge failed");
                        return Ok(PurgeRun::Failed { error, retry_at });
                    }
                    requests += 1;
                }
                (keys, requests)
            }
            _ => {
                drop(conn);
                (Vec::new(), 0)
            }
        };
        in_tx!(self, |tx| Ok(db::advance_cursor(&mut tx, CONSUMER, last).await?))?;
        rt.succeeded();
        if requests > 0 {
            tracing::debug!(consumer = CONSUMER, events = events.len(), keys = keys.len(), requests, "CDN purged");
        }
        Ok(PurgeRun::Advanced { events: events.len(), keys, requests })
    }

    /// One step of this process's invalidation feed: broadcasts the keys of
    /// the next batch of events to [`App::cache_invalidations`] receivers;
    /// returns how many keys. The first call only finds the outbox head
    /// (a process starts with empty caches).
    pub async fn publish_cache_invalidations(&self) -> Result<usize> {
        let rt = self.cache.clone();
        let mut local = rt.local.lock().await;
        let mut conn = self.store.reader().await?;
        let Some(cursor) = *local else {
            *local = Some(db::horizon(&mut conn).await?);
            return Ok(0);
        };
        let events = outbox::read(&mut conn, cursor, &Filter::default(), BATCH_EVENTS).await?;
        let Some(last) = events.last().map(|e| e.cursor) else { return Ok(0) };
        let mut sent = 0;
        if rt.invalidations.receiver_count() > 0 {
            let keys: Vec<String> = keys_for(&mut conn, &events).await?.into_iter().collect();
            sent = keys.len();
            if sent > 0 {
                let _ = rt.invalidations.send(Arc::from(keys));
            }
        }
        *local = Some(last);
        Ok(sent)
    }
}

/// One purge request; `Err` is a short, secret-free description.
async fn post_keys(client: &outbound::Client, url: &str, token: Option<&PurgeToken>, keys: &[String]) -> std::result::Result<(), String> {
    let body = serde_json::json!({ "surrogate_keys": keys });
    let mut req = client.post(url).map_err(|b| b.to_string())?.header("Surrogate-Key", keys.join(" ")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(&t.0);
    }
    match req.send().await {
        Err(e) => {
            // The kind only, unless the guard refused the name: its reason
            // says what to fix.
            let described = outbound::describe(&e);
            if described.starts_with("blocked") {
                return Err(described);
            }
            Err(outbound::kind(&e).to_owned())
        }
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let (body, _) = outbound::read_bounded(&mut resp, 4 * ERROR_LIMIT).await;
            let text: String = String::from_utf8_lossy(&body).chars().take(ERROR_LIMIT).collect();
            Err(if text.trim().is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {}", text.trim()) })
        }
    }
}

/// The CDN purge consumer and this process's invalidation feed, each
/// polling every 200 ms (at once again after a full batch).
pub fn spawn_workers(app: App, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let cdn = {
        let app = app.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let full = match app.purge_cdn(now_micros()).await {
                    Ok(PurgeRun::Advanced { events, .. }) => events as i64 == BATCH_EVENTS,
                    Ok(_) => false,
                    Err(e) => {
                        tracing::warn!(consumer = CONSUMER, error = %e, cause = ?std::error::Error::source(&e), "CDN purge step failed");
                        false
                    }
                };
                if full {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => return,
                }
            }
        })
    };
    let local = {
        let mut shutdown = shutdown;
        tokio::spawn(async move {
            loop {
                if let Err(e) = app.publish_cache_invalidations().await {
                    tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "cache invalidation step failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.changed() => return,
                }
            }
        })
    };
    vec![cdn, local]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(kind: &str, aggregate_type: &str, aggregate_id: &str, payload: Value) -> Event {
        Event {
            id: "evt_1".into(),
            kind: kind.into(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            aggregate_seq: 1,
            occurred_at: 0,
            payload,
            cursor: Cursor::default(),
        }
    }

    fn level(before_on_hand: i64, after_available: i64) -> Value {
        json!({
            "inventory_item_id": "item_1",
            "before": {"on_hand": before_on_hand, "reserved": 0, "safety_stock": 0, "incoming": 0, "damaged": 0, "quality_control": 0},
            "level": {"available": after_available},
        })
    }

    #[test]
    fn product_events_purge_the_product_and_listings() {
        let (keys, item) = event_keys(&ev("product.updated", "product", "prod_1", json!({"object": {"id": "prod_1", "collection_ids": ["coll_9"]}})));
        assert_eq!(keys, ["prod_1", "products", "coll_9"]);
        assert_eq!(item, None);
    }

    #[test]
    fn collection_events_purge_the_collection_and_its_products() {
        let (keys, _) = event_keys(&ev("collection.updated", "collection", "coll_1", json!({"object": {"product_ids": ["prod_2"]}})));
        assert_eq!(keys, ["coll_1", "collections", "prod_2"]);
    }

    #[test]
    fn stock_changes_purge_listings_only_when_they_can_show() {
        let item = |p| event_keys(&ev("inventory.level_changed", "inventory_level", "item_1:loc_1", p));
        assert_eq!(item(level(50, 49)), (vec![], Some("item_1".into())));
        assert_eq!(item(level(6, 5)).0, ["products"]);
        assert_eq!(item(level(0, 40)).0, ["products"]);
        assert_eq!(item(level(3, 3)).0, Vec::<String>::new());
        assert_eq!(item(json!({"inventory_item_id": "item_1"})).0, ["products"]);
    }

    #[test]
    fn other_events_name_their_product() {
        let (keys, _) = event_keys(&ev("product_image.created", "product_image", "img_1", json!({"product_id": "prod_7"})));
        assert_eq!(keys, ["prod_7"]);
        assert_eq!(event_keys(&ev("order.created", "order", "ord_1", json!({}))).0, Vec::<String>::new());
    }

    #[test]
    fn tokens_never_print() {
        let c = PurgeConfig { token: Some(PurgeToken::new("s3cret")), ..PurgeConfig::default() };
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn urls_are_checked() {
        let strict = Outbound::default();
        assert!(check_url(&strict, "https://api.fastly.com/service/x/purge").await.is_ok());
        assert!(check_url(&strict, "ftp://example.com").await.is_err());
        assert!(check_url(&strict, "not a url").await.is_err());
        let private = check_url(&strict, "http://127.0.0.1:9/purge").await.unwrap_err();
        assert!(private.contains("url_not_allowed"), "{private}");
        assert!(check_url(&strict.allowing_private_targets(true), "http://127.0.0.1:9/purge").await.is_ok());
    }

    #[test]
    fn product_header() {
        assert_eq!(product_keys("prod_1", &["coll_1", "coll_2"]), "prod_1 coll_1 coll_2");
    }
}
