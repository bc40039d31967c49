//! End-to-end checkout scenarios: the spread fixture (many SKUs, set up
//! concurrently) and the checkout flow itself.
//!
//! One checkout *flow* is four requests on one keep-alive connection:
//! `POST /carts` (with an email) → `POST /carts/{id}/lines` (1 unit) →
//! `POST /carts/{id}` (shipping address and shipping method together) →
//! `POST /carts/{id}/complete {"payment_method":"tok_visa"}`. Latency is
//! recorded per step, for the whole flow, and for `complete` alone.

use crate::{
    auth_header, client, error_code, final_level, latency_summary, merge_counts, per_second, prewarm, sample, truncate, AnyError,
};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The SKU of the `i`-th spread variant (`PREFIX-0000`, `PREFIX-0001`, …).
pub fn spread_sku(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:04}")
}

struct Resp {
    status: u16,
    body: Vec<u8>,
    start: Instant,
    done: Instant,
}

impl Resp {
    fn lat_us(&self) -> u64 {
        (self.done - self.start).as_micros() as u64
    }
}

async fn post(http: &reqwest::Client, url: &str, auth: &HeaderValue, body: String, idem: Option<&str>) -> Result<Resp, String> {
    let start = Instant::now();
    let mut req = http.post(url).header(AUTHORIZATION, auth.clone()).header(CONTENT_TYPE, "application/json").body(body);
    if let Some(k) = idem {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.map_err(|e| format!("transport: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| format!("reading body of {status}: {e}"))?.to_vec();
    Ok(Resp { status, body, start, done: Instant::now() })
}

/// Fields of /proc/PID/stat after "(comm) ": index 1 is the parent PID,
/// 11..=14 are utime, stime, cutime, cstime (in USER_HZ ticks, 100 on Linux).
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // The state letter (index 0) parses as 0.
    Some(after_comm.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect())
}

/// CPU seconds (user + system) of a process tree so far: the process, its
/// reaped children, and its live children (a PostgreSQL postmaster and its
/// backends; for a process without children just the process).
fn tree_cpu_s(pid: &str) -> Option<f64> {
    let f = stat_fields(pid)?;
    let mut ticks = f.get(11)? + f.get(12)? + f.get(13)? + f.get(14)?;
    let parent: u64 = pid.parse().ok()?;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(child) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
            if let Some(c) = stat_fields(child) {
                if c.get(1) == Some(&parent) {
                    ticks += c.get(11).unwrap_or(&0) + c.get(12).unwrap_or(&0);
                }
            }
        }
    }
    Some(ticks as f64 / 100.0)
}

/// Busy CPU seconds of the whole machine, all cores (user, nice, system,
/// irq, softirq and steal from the first line of /proc/stat).
fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    Some((f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7).unwrap_or(&0)) as f64 / 100.0)
}

/// CPU seconds of keel-bench itself, of every watched process tree and of
/// the whole machine (last), in the order of `cpu_names`.
fn cpu_sample(watch: &[(String, String)]) -> Vec<Option<f64>> {
    let mut v = vec![stat_fields("self").and_then(|f| Some((f.get(11)? + f.get(12)?) as f64 / 100.0))];
    v.extend(watch.iter().map(|(_, pid)| tree_cpu_s(pid)));
    v.push(machine_busy_s());
    v
}

fn cpu_names(watch: &[(String, String)]) -> Vec<String> {
    std::iter::once("keel-bench".to_owned()).chain(watch.iter().map(|(n, _)| n.clone())).chain(["machine".to_owned()]).collect()
}

// ---------------------------------------------------------------- setup-spread

#[allow(clippy::too_many_arguments)]
pub async fn setup_spread(
    base: String,
    key: String,
    location_id: String,
    products: usize,
    variants: usize,
    units: i64,
    prefix: String,
    concurrency: usize,
    request_timeout: Duration,
) -> Result<Value, AnyError> {
    if products == 0 || !(1..=100).contains(&variants) || units <= 0 || concurrency == 0 {
        return Err("--products >= 1, --variants 1..=100, --units >= 1 and --concurrency >= 1 are required".into());
    }
    let http = client(concurrency, request_timeout)?;
    let auth = auth_header(&key)?;
    let base = base.trim_end_matches('/').to_owned();
    let skus = products * variants;
    let t0 = Instant::now();

    // Products, all at once (there are few; each carries up to 100 variants).
    let mut hs = Vec::new();
    for p in 0..products {
        let vs: Vec<Value> = (0..variants)
            .map(|v| json!({"sku": spread_sku(&prefix, p * variants + v), "prices": [{"currency": "USD", "amount": 1000}]}))
            .collect();
        let body = json!({"title": format!("Bench spread {p}"), "status": "active", "variants": vs}).to_string();
        let (http, auth, url, idem) = (http.clone(), auth.clone(), format!("{base}/api/v1/products"), format!("bench-spread-product-{prefix}-{p}"));
        hs.push(tokio::spawn(async move { post_retrying(&http, &url, &auth, body, &idem).await }));
    }
    let mut retries = 0u64;
    for h in hs {
        retries += h.await??;
    }
    let products_s = t0.elapsed().as_secs_f64();

    // Receive stock for every SKU with `concurrency` workers.
    let t1 = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for _ in 0..concurrency {
        let (http, auth, next, prefix, location_id) = (http.clone(), auth.clone(), next.clone(), prefix.clone(), location_id.clone());
        let url = format!("{base}/api/v1/inventory/adjustments");
        hs.push(tokio::spawn(async move {
            let mut retries = 0u64;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= skus {
                    break;
                }
                let sku = spread_sku(&prefix, i);
                let body = json!({"sku": sku, "location_id": location_id, "kind": "receive", "quantity_delta": units}).to_string();
                let started = Instant::now();
                retries += post_retrying(&http, &url, &auth, body, &format!("bench-spread-receive-{sku}")).await?;
                lat.push(started.elapsed().as_micros() as u64);
            }
            Ok::<_, AnyError>((retries, lat))
        }));
    }
    let mut lat = Vec::new();
    for h in hs {
        let (r, l) = h.await??;
        retries += r;
        lat.extend(l);
    }
    lat.sort_unstable();
    let receives_s = t1.elapsed().as_secs_f64();
    Ok(json!({
        "scenario": "setup-spread",
        "products": products,
        "variants_per_product": variants,
        "skus": skus,
        "sku_first": spread_sku(&prefix, 0),
        "sku_last": spread_sku(&prefix, skus - 1),
        "units_per_sku": units,
        "location_id": location_id,
        "concurrency": concurrency,
        "retries": retries,
        "products_s": products_s,
        "receives_s": receives_s,
        "total_s": t0.elapsed().as_secs_f64(),
        "latency_receive": latency_summary(&lat),
    }))
}

/// POSTs with an Idempotency-Key, retrying transport errors, 5xx and 409s
/// about the key being in flight (up to 5 attempts). Returns the retries.
async fn post_retrying(http: &reqwest::Client, url: &str, auth: &HeaderValue, body: String, idem: &str) -> Result<u64, AnyError> {
    let mut last = String::new();
    for attempt in 0..5u64 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        match post(http, url, auth, body.clone(), Some(idem)).await {
            Ok(r) if (200..300).contains(&r.status) => return Ok(attempt),
            Ok(r) if r.status >= 500 || (r.status == 409 && error_code(&r.body).contains("idempotency")) => {
                last = format!("{}: {}", r.status, truncate(&r.body));
            }
            Ok(r) => return Err(format!("POST {url}: {}: {}", r.status, truncate(&r.body)).into()),
            Err(e) => last = e,
        }
    }
    Err(format!("POST {url}: gave up after 5 attempts; last: {last}").into())
}

// ---------------------------------------------------------------- checkout

pub struct CheckoutArgs {
    pub base: String,
    pub key: String,
    pub skus: Vec<String>,
    pub shipping_method_id: String,
    pub clients: usize,
    /// Sold-out mode: units in stock; each client stops at its first 409
    /// insufficient_stock from `complete`.
    pub expect: Option<u64>,
    /// Duration mode (no `expect`): warm-up, then measured seconds.
    pub warmup: f64,
    pub seconds: f64,
    pub timeout: Duration,
    pub request_timeout: Duration,
    /// Duration mode: afterwards sum `reserved` over every SKU and compare
    /// it with the orders created.
    pub verify_levels: bool,
    /// (name, pid) of process trees whose CPU use to report (the server,
    /// the PostgreSQL postmaster).
    pub cpu_watch: Vec<(String, String)>,
}

#[derive(Default)]
struct CoTask {
    lat_create: Vec<u64>,
    lat_line: Vec<u64>,
    lat_update: Vec<u64>,
    lat_complete_201: Vec<u64>,
    lat_complete_sold_out: Vec<u64>,
    lat_complete_other: Vec<u64>,
    lat_flow_201: Vec<u64>,
    /// Completion of every 201 `complete`, µs since the start (t0).
    order_done_at_us: Vec<u64>,
    sold_out: u64,
    complete_other: BTreeMap<String, u64>,
    step_errors: BTreeMap<String, u64>,
    transport_errors: u64,
    flows_started: u64,
    flows_abandoned_at_end: u64,
    samples: Vec<String>,
    gave_up: bool,
    finished_at_us: u64,
}

/// What may be recorded: everything (sold-out mode), or only requests that
/// started after the warm-up and finished before the end (duration mode).
#[derive(Clone, Copy)]
struct Window {
    from: Option<Instant>,
    end: Option<Instant>,
}

impl Window {
    fn records(&self, r: &Resp) -> bool {
        self.from.is_none_or(|f| r.start >= f) && self.end.is_none_or(|e| r.done <= e)
    }
    fn over(&self) -> bool {
        self.end.is_some_and(|e| Instant::now() >= e)
    }
}

/// Tiny xorshift for picking SKUs (no dependency needed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

const ADDRESS: &str =
    r#"{"name":"Ada Lovelace","line1":"1 Main St","city":"Springfield","region":"IL","postal_code":"62701","country":"US"}"#;

pub async fn checkout(a: CheckoutArgs) -> Result<Value, AnyError> {
    if a.skus.is_empty() {
        return Err("give at least one --sku (or --sku-prefix with --sku-count)".into());
    }
    if a.expect.is_none() && (a.seconds.is_nan() || a.seconds <= 0.0 || a.warmup.is_nan() || a.warmup < 0.0) {
        return Err("--seconds must be > 0 and --warmup >= 0".into());
    }
    let http = client(a.clients, a.request_timeout)?;
    let auth = auth_header(&a.key)?;
    let base: Arc<str> = a.base.trim_end_matches('/').into();
    let skus: Arc<Vec<String>> = Arc::new(a.skus.clone());
    let sold_out_mode = a.expect.is_some();
    let update_body: Arc<str> = format!(r#"{{"shipping_address":{ADDRESS},"shipping_method_id":{}}}"#, json!(a.shipping_method_id)).into();
    prewarm(&http, &base, &auth, a.clients).await?;
    let reserved_before = if a.verify_levels && !sold_out_mode { Some(sum_reserved(&http, &base, &auth, &skus).await?) } else { None };

    let barrier = Arc::new(tokio::sync::Barrier::new(a.clients + 1));
    let t0_cell = Arc::new(std::sync::OnceLock::<Instant>::new());
    let (timeout, warmup, seconds) = (a.timeout, a.warmup, a.seconds);
    let mut handles = Vec::with_capacity(a.clients);
    for client_no in 0..a.clients {
        let (http, auth, base, skus, update_body, barrier, t0_cell) =
            (http.clone(), auth.clone(), base.clone(), skus.clone(), update_body.clone(), barrier.clone(), t0_cell.clone());
        handles.push(tokio::spawn(async move {
            let mut t = CoTask::default();
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((client_no as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9)));
            barrier.wait().await;
            let t0 = *t0_cell.get().expect("t0 is set before the barrier opens");
            let w = if sold_out_mode {
                Window { from: None, end: None }
            } else {
                let from = t0 + Duration::from_secs_f64(warmup);
                Window { from: Some(from), end: Some(from + Duration::from_secs_f64(seconds)) }
            };
            let create_url = format!("{base}/api/v1/carts");
            let create_body = format!(r#"{{"currency":"USD","email":"bench{client_no}@example.com"}}"#);
            let mut consecutive_failures = 0u32;
            'flows: loop {
                if w.over() {
                    break;
                }
                if sold_out_mode && (t0.elapsed() > timeout || consecutive_failures >= 1000) {
                    t.gave_up = true;
                    break;
                }
                let sku = &skus[(rng.next() % skus.len() as u64) as usize];
                t.flows_started += 1;
                let flow_start = Instant::now();
                let mut cart_url = String::new();
                // Steps 1-3: set-up of a ready cart.
                for step in ["create_cart", "add_line", "set_address_and_method"] {
                    if w.over() {
                        t.flows_abandoned_at_end += 1;
                        break 'flows;
                    }
                    let (url, body, want) = match step {
                        "create_cart" => (create_url.clone(), create_body.clone(), 201),
                        "add_line" => (format!("{cart_url}/lines"), format!(r#"{{"sku":{},"quantity":1}}"#, json!(sku)), 201),
                        _ => (cart_url.clone(), update_body.to_string(), 200),
                    };
                    let r = match post(&http, &url, &auth, body, None).await {
                        Ok(r) => r,
                        Err(e) => {
                            t.transport_errors += 1;
                            consecutive_failures += 1;
                            sample(&mut t.samples, format!("{step}: {e}"));
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue 'flows;
                        }
                    };
                    if r.status != want {
                        consecutive_failures += 1;
                        let k = format!("{step} {} {}", r.status, error_code(&r.body));
                        sample(&mut t.samples, format!("{k}: {}", truncate(&r.body)));
                        *t.step_errors.entry(k).or_default() += 1;
                        continue 'flows;
                    }
                    let rec = w.records(&r);
                    let lat = r.lat_us();
                    match step {
                        "create_cart" => {
                            let id = serde_json::from_slice::<Value>(&r.body)
                                .ok()
                                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned));
                            let Some(id) = id else {
                                consecutive_failures += 1;
                                sample(&mut t.samples, format!("create_cart: no id in {}", truncate(&r.body)));
                                *t.step_errors.entry("create_cart no-id".into()).or_default() += 1;
                                continue 'flows;
                            };
                            cart_url = format!("{base}/api/v1/carts/{id}");
                            if rec {
                                t.lat_create.push(lat);
                            }
                        }
                        "add_line" if rec => t.lat_line.push(lat),
                        "set_address_and_method" if rec => t.lat_update.push(lat),
                        _ => {}
                    }
                }
                if w.over() {
                    t.flows_abandoned_at_end += 1;
                    break;
                }
                // Step 4: complete.
                let r = match post(&http, &format!("{cart_url}/complete"), &auth, r#"{"payment_method":"tok_visa"}"#.into(), None).await {
                    Ok(r) => r,
                    Err(e) => {
                        t.transport_errors += 1;
                        consecutive_failures += 1;
                        sample(&mut t.samples, format!("complete: {e}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let rec = w.records(&r);
                match r.status {
                    201 => {
                        consecutive_failures = 0;
                        t.order_done_at_us.push((r.done - t0).as_micros() as u64);
                        if rec {
                            t.lat_complete_201.push(r.lat_us());
                            if w.from.is_none_or(|f| flow_start >= f) {
                                t.lat_flow_201.push((r.done - flow_start).as_micros() as u64);
                            }
                        }
                    }
                    409 if error_code(&r.body) == "insufficient_stock" => {
                        t.sold_out += 1;
                        if rec {
                            t.lat_complete_sold_out.push(r.lat_us());
                        }
                        if sold_out_mode {
                            break;
                        }
                        consecutive_failures += 1;
                    }
                    s => {
                        consecutive_failures += 1;
                        let k = format!("{s} {}", error_code(&r.body));
                        sample(&mut t.samples, format!("complete {k}: {}", truncate(&r.body)));
                        *t.complete_other.entry(k).or_default() += 1;
                        if rec {
                            t.lat_complete_other.push(r.lat_us());
                        }
                    }
                }
            }
            t.finished_at_us = t0.elapsed().as_micros() as u64;
            t
        }));
    }
    // CPU is sampled over the measured window: from the start to the last
    // client's end (sold-out mode), or from the end of the warm-up to the
    // end (duration mode).
    let cpu_watch = Arc::new(a.cpu_watch.clone());
    let cpu_start = if sold_out_mode { cpu_sample(&cpu_watch) } else { Vec::new() };
    let mut cpu_window = None;
    let _ = t0_cell.set(Instant::now());
    barrier.wait().await;
    let t0 = *t0_cell.get().expect("set above");
    if !sold_out_mode {
        let w = cpu_watch.clone();
        let (from, end) = (t0 + Duration::from_secs_f64(warmup), t0 + Duration::from_secs_f64(warmup + seconds));
        cpu_window = Some(tokio::spawn(async move {
            tokio::time::sleep_until(from.into()).await;
            let a = cpu_sample(&w);
            tokio::time::sleep_until(end.into()).await;
            (a, cpu_sample(&w))
        }));
    }

    let mut all = CoTask::default();
    let mut clients_gave_up = 0usize;
    let mut client_finish_us = Vec::with_capacity(a.clients);
    for h in handles {
        let t = h.await?;
        all.lat_create.extend(t.lat_create);
        all.lat_line.extend(t.lat_line);
        all.lat_update.extend(t.lat_update);
        all.lat_complete_201.extend(t.lat_complete_201);
        all.lat_complete_sold_out.extend(t.lat_complete_sold_out);
        all.lat_complete_other.extend(t.lat_complete_other);
        all.lat_flow_201.extend(t.lat_flow_201);
        all.order_done_at_us.extend(t.order_done_at_us);
        all.sold_out += t.sold_out;
        merge_counts(&mut all.complete_other, &t.complete_other);
        merge_counts(&mut all.step_errors, &t.step_errors);
        all.transport_errors += t.transport_errors;
        all.flows_started += t.flows_started;
        all.flows_abandoned_at_end += t.flows_abandoned_at_end;
        for s in t.samples {
            sample(&mut all.samples, s);
        }
        clients_gave_up += t.gave_up as usize;
        client_finish_us.push(t.finished_at_us);
    }
    let total_wall = t0.elapsed();
    let (cpu_a, cpu_b, cpu_wall_s) = match cpu_window.take() {
        Some(h) => {
            let (x, y) = h.await?;
            (x, y, seconds)
        }
        None => (cpu_start, cpu_sample(&cpu_watch), total_wall.as_secs_f64()),
    };
    let cpu: serde_json::Map<String, Value> = cpu_names(&a.cpu_watch)
        .into_iter()
        .zip(cpu_a.iter().zip(cpu_b.iter()))
        .map(|(n, (x, y))| (n, match (x, y) { (Some(x), Some(y)) => json!(((y - x) * 100.0).round() / 100.0), _ => Value::Null }))
        .collect();
    for v in [
        &mut all.lat_create,
        &mut all.lat_line,
        &mut all.lat_update,
        &mut all.lat_complete_201,
        &mut all.lat_complete_sold_out,
        &mut all.lat_complete_other,
        &mut all.lat_flow_201,
        &mut all.order_done_at_us,
    ] {
        v.sort_unstable();
    }
    client_finish_us.sort_unstable();
    let orders = all.order_done_at_us.len() as u64;

    let mut doc = json!({
        "scenario": "checkout",
        "mode": if sold_out_mode { "until_sold_out" } else { "duration" },
        "clients": a.clients,
        "sku_count": a.skus.len(),
        "sku_first": a.skus[0],
        "flow": "POST /carts → POST /carts/{id}/lines (1 unit) → POST /carts/{id} (shipping_address + shipping_method_id) → POST /carts/{id}/complete {\"payment_method\":\"tok_visa\"}",
        "flows_started": all.flows_started,
        "orders_total": orders,
        "complete_201": orders,
        "complete_409_insufficient_stock": all.sold_out,
        "complete_other": all.complete_other,
        "setup_step_errors": all.step_errors,
        "transport_errors": all.transport_errors,
        "clients_gave_up": clients_gave_up,
        "error_samples": all.samples,
        "wall_s_until_all_clients_done": total_wall.as_secs_f64(),
        "first_client_done_s": client_finish_us.first().map(|&u| u as f64 / 1e6),
        "cpu_s": cpu,
        "cpu_window_s": cpu_wall_s,
        "latency_complete_201": latency_summary(&all.lat_complete_201),
        "latency_complete_409_sold_out": latency_summary(&all.lat_complete_sold_out),
        "latency_complete_other": latency_summary(&all.lat_complete_other),
        "latency_flow_201": latency_summary(&all.lat_flow_201),
        "latency_steps": {
            "create_cart": latency_summary(&all.lat_create),
            "add_line": latency_summary(&all.lat_line),
            "set_address_and_method": latency_summary(&all.lat_update),
        },
    });
    let d = doc.as_object_mut().expect("object");

    if let Some(expect) = a.expect {
        let counted = orders.min(expect);
        let wall_us = if counted == 0 { 0 } else { all.order_done_at_us[counted as usize - 1] };
        let per_s = if wall_us == 0 { 0.0 } else { counted as f64 / (wall_us as f64 / 1e6) };
        let timeline = per_second(&all.order_done_at_us);
        let full_seconds = (wall_us / 1_000_000) as usize;
        let level = final_level(&http, &base, &auth, &a.skus[0]).await;
        let (final_reserved, final_on_hand, final_available, level_error) = match &level {
            Ok((r, o, av)) => (json!(r), json!(o), json!(av), Value::Null),
            Err(e) => (Value::Null, Value::Null, Value::Null, json!(e.to_string())),
        };
        d.insert("expected_units".into(), json!(expect));
        d.insert("wall_s_to_expected_orders".into(), json!(wall_us as f64 / 1e6));
        d.insert("checkouts_per_s".into(), json!(per_s));
        d.insert("orders_per_second_timeline".into(), json!(timeline));
        d.insert("slowest_full_second_orders".into(), json!(timeline.iter().take(full_seconds).min()));
        d.insert("oversold".into(), json!(orders as i64 - expect as i64));
        d.insert("final_reserved".into(), final_reserved);
        d.insert("final_on_hand".into(), final_on_hand);
        d.insert("final_available".into(), final_available);
        d.insert("final_level_error".into(), level_error);
        d.insert("final_reserved_ok".into(), json!(level.as_ref().map(|(r, _, _)| *r == expect as i64).unwrap_or(false)));
    } else {
        let from_us = (warmup * 1e6) as u64;
        let end_us = from_us + (seconds * 1e6) as u64;
        let in_window: Vec<u64> =
            all.order_done_at_us.iter().filter(|&&u| u >= from_us && u < end_us).map(|&u| u - from_us).collect();
        d.insert("warmup_s".into(), json!(warmup));
        d.insert("seconds".into(), json!(seconds));
        d.insert("orders_in_window".into(), json!(in_window.len()));
        d.insert("checkouts_per_s".into(), json!(in_window.len() as f64 / seconds));
        d.insert("orders_per_second_timeline".into(), json!(per_second(&in_window)));
        d.insert("flows_abandoned_at_end".into(), json!(all.flows_abandoned_at_end));
        if let Some(before) = reserved_before {
            // Every order holds its unit until it ships: `reserved` summed
            // over the SKUs must have grown by exactly the orders created.
            let sum = sum_reserved(&http, &base, &auth, &skus).await;
            let (after, err) = match &sum {
                Ok(r) => (json!(r), Value::Null),
                Err(e) => (Value::Null, json!(e.to_string())),
            };
            d.insert("reserved_sum_before".into(), json!(before));
            d.insert("reserved_sum_after".into(), after);
            d.insert("reserved_sum_error".into(), err);
            d.insert("reserved_delta_ok".into(), json!(sum.as_ref().map(|r| *r - before == orders as i64).unwrap_or(false)));
        }
    }
    Ok(doc)
}

/// Sum of `reserved` over all `skus` (16 concurrent level reads).
async fn sum_reserved(http: &reqwest::Client, base: &str, auth: &HeaderValue, skus: &Arc<Vec<String>>) -> Result<i64, AnyError> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut hs = Vec::new();
    for _ in 0..16 {
        let (http, base, auth, skus, next) = (http.clone(), base.to_owned(), auth.clone(), skus.clone(), next.clone());
        hs.push(tokio::spawn(async move {
            let mut sum = 0i64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(sku) = skus.get(i) else { break };
                sum += final_level(&http, &base, &auth, sku).await?.0;
            }
            Ok::<_, AnyError>(sum)
        }));
    }
    let mut total = 0;
    for h in hs {
        total += h.await??;
    }
    Ok(total)
}
