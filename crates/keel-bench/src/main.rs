//! `keel-bench`: the load generator behind `scripts/bench`.
//!
//! It drives an already-running Keel server over HTTP/1.1 on loopback with N
//! concurrent tokio tasks sharing one `reqwest::Client` (a connection pool big
//! enough that every task keeps its own keep-alive connection). Each task
//! records per-request latency in microseconds into its own `Vec`; the vectors
//! are merged and sorted at the end. Every subcommand prints exactly one JSON
//! object on stdout; progress and diagnostics go to stderr.
//!
//! This is a benchmark tool, not a test: it reports what it saw (including
//! oversells and unexpected statuses) and exits 0 unless it could not run.
//!
//! Subcommands: `reserve` and `get` (scenarios a and b of scripts/bench),
//! `setup-spread` (the many-SKU checkout fixture, created concurrently) and
//! `checkout` (the end-to-end cart → order flow; see `checkout.rs`).

mod checkout;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "keel-bench", about = "Load generator for Keel's JSON API (used by scripts/bench)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Contended reservations: every client loops `POST /api/v1/reservations`
    /// (quantity 1) until it sees 409 insufficient_stock.
    Reserve {
        /// Server base URL, e.g. http://127.0.0.1:7300
        #[arg(long)]
        base: String,
        /// API key (sent as `Authorization: Bearer …`).
        #[arg(long)]
        key: String,
        /// SKU to reserve.
        #[arg(long)]
        sku: String,
        /// Concurrent clients (tokio tasks, one keep-alive connection each).
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Units in stock: the number of successes expected before sell-out.
        #[arg(long, default_value_t = 10_000)]
        expect: u64,
        /// Safety net: stop every client after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Per-request timeout in seconds (a timeout counts as a transport error).
        #[arg(long, default_value_t = 30)]
        request_timeout: u64,
    },
    /// Hot read: every client loops `GET PATH` for warm-up + measured seconds.
    Get {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        /// Path (and query) to fetch, e.g. /api/v1/products/prod_…
        #[arg(long)]
        path: String,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Measured duration in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Warm-up duration in seconds (requests are made but not recorded).
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        #[arg(long, default_value_t = 30)]
        request_timeout: u64,
    },
    /// Checkout fixture with many SKUs: PRODUCTS active products of VARIANTS
    /// variants each (SKUs PREFIX-0000, PREFIX-0001, …; USD 10.00), then a
    /// `receive` of UNITS per SKU at LOCATION, CONCURRENCY requests at a time.
    SetupSpread {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        location_id: String,
        #[arg(long, default_value_t = 10)]
        products: usize,
        /// Variants per product (Keel allows at most 100).
        #[arg(long, default_value_t = 100)]
        variants: usize,
        #[arg(long, default_value_t = 1000)]
        units: i64,
        #[arg(long, default_value = "SPREAD")]
        prefix: String,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 30)]
        request_timeout: u64,
    },
    /// End-to-end checkouts: every client loops create cart → add 1 unit of
    /// a (random) SKU → set shipping address and method → complete with
    /// tok_visa. With --expect, until sold out (each client stops at its first
    /// 409 insufficient_stock); otherwise for --warmup + --seconds.
    Checkout {
        #[arg(long)]
        base: String,
        #[arg(long)]
        key: String,
        /// SKU to buy (repeatable; each flow picks one at random).
        #[arg(long)]
        sku: Vec<String>,
        /// With --sku-count: buy PREFIX-0000 … as created by setup-spread.
        #[arg(long)]
        sku_prefix: Option<String>,
        #[arg(long, default_value_t = 0)]
        sku_count: usize,
        #[arg(long)]
        shipping_method_id: String,
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Units in stock: run until sold out and check the levels against it.
        #[arg(long)]
        expect: Option<u64>,
        /// Duration mode (without --expect): measured seconds …
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// … after this warm-up.
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Sold-out mode safety net: stop every client after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        #[arg(long, default_value_t = 30)]
        request_timeout: u64,
        /// Duration mode: afterwards check that `reserved` summed over every
        /// SKU equals the orders created.
        #[arg(long)]
        verify_levels: bool,
        /// NAME=PID of a process (tree) whose CPU time over the measured
        /// window to report, e.g. server=1234 postgres=5678 (repeatable).
        #[arg(long)]
        cpu_pid: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Reserve { base, key, sku, clients, expect, timeout, request_timeout } => {
            reserve(base, key, sku, clients, expect, Duration::from_secs(timeout), Duration::from_secs(request_timeout)).await
        }
        Command::Get { base, key, path, clients, seconds, warmup, request_timeout } => {
            get(base, key, path, clients, seconds, warmup, Duration::from_secs(request_timeout)).await
        }
        Command::SetupSpread { base, key, location_id, products, variants, units, prefix, concurrency, request_timeout } => {
            checkout::setup_spread(base, key, location_id, products, variants, units, prefix, concurrency, Duration::from_secs(request_timeout))
                .await
        }
        Command::Checkout {
            base,
            key,
            mut sku,
            sku_prefix,
            sku_count,
            shipping_method_id,
            clients,
            expect,
            seconds,
            warmup,
            timeout,
            request_timeout,
            verify_levels,
            cpu_pid,
        } => {
            if let Some(prefix) = &sku_prefix {
                sku.extend((0..sku_count).map(|i| checkout::spread_sku(prefix, i)));
            }
            let mut cpu_watch = Vec::new();
            for w in cpu_pid {
                match w.split_once('=') {
                    Some((n, p)) if !n.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                        cpu_watch.push((n.to_owned(), p.to_owned()))
                    }
                    _ => {
                        eprintln!("keel-bench: error: --cpu-pid wants NAME=PID, not `{w}`");
                        return ExitCode::FAILURE;
                    }
                }
            }
            checkout::checkout(checkout::CheckoutArgs {
                base,
                key,
                skus: sku,
                shipping_method_id,
                clients,
                expect,
                warmup,
                seconds,
                timeout: Duration::from_secs(timeout),
                request_timeout: Duration::from_secs(request_timeout),
                verify_levels,
                cpu_watch,
            })
            .await
        }
    };
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keel-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn client(clients: usize, request_timeout: Duration) -> Result<reqwest::Client, AnyError> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(clients * 2)
        .pool_idle_timeout(None)
        .tcp_nodelay(true)
        .timeout(request_timeout)
        .build()?)
}

fn auth_header(key: &str) -> Result<reqwest::header::HeaderValue, AnyError> {
    let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Nearest-rank percentile of a sorted slice (µs), or null when empty.
fn pct(sorted: &[u64], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    json!(sorted[idx])
}

fn latency_summary(sorted: &[u64]) -> Value {
    let mean = if sorted.is_empty() { Value::Null } else { json!(sorted.iter().sum::<u64>() as f64 / sorted.len() as f64) };
    json!({
        "count": sorted.len(),
        "min_us": sorted.first(),
        "mean_us": mean,
        "p50_us": pct(sorted, 50.0),
        "p90_us": pct(sorted, 90.0),
        "p99_us": pct(sorted, 99.0),
        "p999_us": pct(sorted, 99.9),
        "max_us": sorted.last(),
        "over_100ms": sorted.iter().filter(|&&l| l > 100_000).count(),
        "over_1s": sorted.iter().filter(|&&l| l > 1_000_000).count(),
    })
}

/// Completions per whole second since the start, from completion offsets (µs).
fn per_second(done_at_us: &[u64]) -> Vec<u64> {
    let mut buckets: Vec<u64> = Vec::new();
    for &t in done_at_us {
        let s = (t / 1_000_000) as usize;
        if buckets.len() <= s {
            buckets.resize(s + 1, 0);
        }
        buckets[s] += 1;
    }
    buckets
}

fn merge_counts<K: Ord + Clone>(into: &mut BTreeMap<K, u64>, from: &BTreeMap<K, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

const MAX_SAMPLES: usize = 5;

fn sample(samples: &mut Vec<String>, s: String) {
    if samples.len() < MAX_SAMPLES {
        samples.push(s);
    }
}

/// Error `code` from Keel's error envelope `{"error":{"code":…}}`.
fn error_code(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/code").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "<no error.code>".to_owned())
}

fn truncate(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.chars().take(300).collect()
}

// ---------------------------------------------------------------- reserve

#[derive(Default)]
struct ReserveTask {
    ok_latency_us: Vec<u64>,
    ok_done_at_us: Vec<u64>,
    sold_out_latency_us: Vec<u64>,
    sold_out: u64,
    other_409: BTreeMap<String, u64>,
    other_status: BTreeMap<u16, u64>,
    other_latency_us: Vec<u64>,
    transport_errors: u64,
    samples: Vec<String>,
    requests: u64,
    finished_at_us: u64,
    gave_up: bool,
}

async fn reserve(
    base: String,
    key: String,
    sku: String,
    clients: usize,
    expect: u64,
    timeout: Duration,
    request_timeout: Duration,
) -> Result<Value, AnyError> {
    let http = client(clients, request_timeout)?;
    let auth = auth_header(&key)?;
    let url: Arc<str> = format!("{}/api/v1/reservations", base.trim_end_matches('/')).into();
    let body: &'static str = Box::leak(serde_json::to_string(&json!({ "sku": sku, "quantity": 1 }))?.into_boxed_str());

    // Open one connection per client before the clock starts, so connection
    // set-up is not part of the measurement.
    prewarm(&http, &base, &auth, clients).await?;

    let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut handles = Vec::with_capacity(clients);
    let t0_cell = Arc::new(std::sync::OnceLock::<Instant>::new());
    for _ in 0..clients {
        let http = http.clone();
        let auth = auth.clone();
        let url = url.clone();
        let barrier = barrier.clone();
        let t0_cell = t0_cell.clone();
        handles.push(tokio::spawn(async move {
            let mut r = ReserveTask { ok_latency_us: Vec::with_capacity(2 * expect as usize / clients.max(1) + 16), ..Default::default() };
            barrier.wait().await;
            let t0 = *t0_cell.get().expect("t0 is set before the barrier opens");
            let mut consecutive_failures = 0u32;
            loop {
                if t0.elapsed() > timeout || consecutive_failures >= 1000 {
                    r.gave_up = true;
                    break;
                }
                let start = Instant::now();
                r.requests += 1;
                let res = http
                    .post(&*url)
                    .header(reqwest::header::AUTHORIZATION, auth.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                let resp = match res {
                    Ok(resp) => resp,
                    Err(e) => {
                        r.transport_errors += 1;
                        consecutive_failures += 1;
                        sample(&mut r.samples, format!("transport: {e}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let status = resp.status().as_u16();
                let bytes = match resp.bytes().await {
                    Ok(b) => b,
                    Err(e) => {
                        r.transport_errors += 1;
                        consecutive_failures += 1;
                        sample(&mut r.samples, format!("reading body of {status}: {e}"));
                        continue;
                    }
                };
                let done = Instant::now();
                let lat = (done - start).as_micros() as u64;
                match status {
                    201 => {
                        consecutive_failures = 0;
                        r.ok_latency_us.push(lat);
                        r.ok_done_at_us.push((done - t0).as_micros() as u64);
                    }
                    409 => {
                        let code = error_code(&bytes);
                        if code == "insufficient_stock" {
                            r.sold_out += 1;
                            r.sold_out_latency_us.push(lat);
                            break;
                        }
                        consecutive_failures += 1;
                        r.other_latency_us.push(lat);
                        sample(&mut r.samples, format!("409 {code}: {}", truncate(&bytes)));
                        *r.other_409.entry(code).or_default() += 1;
                    }
                    s => {
                        consecutive_failures += 1;
                        r.other_latency_us.push(lat);
                        sample(&mut r.samples, format!("{s}: {}", truncate(&bytes)));
                        *r.other_status.entry(s).or_default() += 1;
                    }
                }
            }
            r.finished_at_us = t0.elapsed().as_micros() as u64;
            r
        }));
    }
    let _ = t0_cell.set(Instant::now());
    barrier.wait().await;
    let t0 = *t0_cell.get().expect("set above");

    let mut all = ReserveTask::default();
    let mut clients_gave_up = 0usize;
    let mut client_finish_us = Vec::with_capacity(clients);
    for h in handles {
        let r = h.await?;
        all.ok_latency_us.extend(r.ok_latency_us);
        all.ok_done_at_us.extend(r.ok_done_at_us);
        all.sold_out_latency_us.extend(r.sold_out_latency_us);
        all.other_latency_us.extend(r.other_latency_us);
        all.sold_out += r.sold_out;
        merge_counts(&mut all.other_409, &r.other_409);
        merge_counts(&mut all.other_status, &r.other_status);
        all.transport_errors += r.transport_errors;
        all.requests += r.requests;
        for s in r.samples {
            sample(&mut all.samples, s);
        }
        clients_gave_up += r.gave_up as usize;
        client_finish_us.push(r.finished_at_us);
    }
    let total_wall = t0.elapsed();
    all.ok_latency_us.sort_unstable();
    all.ok_done_at_us.sort_unstable();
    all.sold_out_latency_us.sort_unstable();
    all.other_latency_us.sort_unstable();

    let successes = all.ok_done_at_us.len() as u64;
    let counted = successes.min(expect);
    // Wall time from the first request to the expect-th success (or the last
    // success, if fewer succeeded).
    let wall_us = if counted == 0 { 0 } else { all.ok_done_at_us[counted as usize - 1] };
    let per_s = if wall_us == 0 { 0.0 } else { counted as f64 / (wall_us as f64 / 1e6) };
    let timeline = per_second(&all.ok_done_at_us);
    // Seconds that ended before the expect-th success (the last, partial one excluded).
    let full_seconds = (wall_us / 1_000_000) as usize;
    let slowest_second = timeline.iter().take(full_seconds).min().copied();

    let level = final_level(&http, &base, &auth, &sku).await;
    let (final_reserved, final_on_hand, final_available, level_error) = match &level {
        Ok((r, o, a)) => (json!(r), json!(o), json!(a), Value::Null),
        Err(e) => (Value::Null, Value::Null, Value::Null, json!(e.to_string())),
    };
    let other_statuses: BTreeMap<String, u64> = all.other_status.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    client_finish_us.sort_unstable();

    Ok(json!({
        "scenario": "reserve",
        "url": &*url,
        "body": body,
        "clients": clients,
        "expected_units": expect,
        "requests": all.requests,
        "status_201": successes,
        "status_409_insufficient_stock": all.sold_out,
        "status_409_other": all.other_409,
        "other_statuses": other_statuses,
        "transport_errors": all.transport_errors,
        "clients_gave_up": clients_gave_up,
        "error_samples": all.samples,
        "wall_s_to_expected_success": wall_us as f64 / 1e6,
        "wall_s_until_all_clients_sold_out": total_wall.as_secs_f64(),
        "first_client_done_s": client_finish_us.first().map(|&u| u as f64 / 1e6),
        "reservations_per_s": per_s,
        "successes_per_second_timeline": timeline,
        "slowest_full_second_successes": slowest_second,
        "latency_201": latency_summary(&all.ok_latency_us),
        "latency_409_sold_out": latency_summary(&all.sold_out_latency_us),
        "latency_other": latency_summary(&all.other_latency_us),
        "oversold": successes.saturating_sub(expect),
        "undersold": expect.saturating_sub(successes),
        "final_reserved": final_reserved,
        "final_on_hand": final_on_hand,
        "final_available": final_available,
        "final_level_error": level_error,
        "final_reserved_ok": level.as_ref().map(|(r, _, _)| *r == expect as i64).unwrap_or(false),
    }))
}

/// Opens `clients` keep-alive connections (concurrent `GET /healthz`).
async fn prewarm(http: &reqwest::Client, base: &str, _auth: &reqwest::header::HeaderValue, clients: usize) -> Result<(), AnyError> {
    let url = format!("{}/healthz", base.trim_end_matches('/'));
    let mut hs = Vec::new();
    for _ in 0..clients {
        let http = http.clone();
        let url = url.clone();
        hs.push(tokio::spawn(async move {
            let r = http.get(&url).send().await?;
            let status = r.status();
            r.bytes().await?;
            if !status.is_success() {
                return Err(format!("GET {url}: {status}").into());
            }
            Ok::<(), AnyError>(())
        }));
    }
    for h in hs {
        h.await??;
    }
    Ok(())
}

/// Sums `reserved`, `on_hand` and `available` over the SKU's levels.
async fn final_level(http: &reqwest::Client, base: &str, auth: &reqwest::header::HeaderValue, sku: &str) -> Result<(i64, i64, i64), AnyError> {
    let url = format!("{}/api/v1/inventory/levels", base.trim_end_matches('/'));
    let resp = http.get(&url).query(&[("sku", sku)]).header(reqwest::header::AUTHORIZATION, auth.clone()).send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    if !status.is_success() {
        return Err(format!("GET {url}?sku={sku}: {status}: {}", truncate(&bytes)).into());
    }
    let v: Value = serde_json::from_slice(&bytes)?;
    let data = v.get("data").and_then(Value::as_array).ok_or("levels response has no `data` array")?;
    let sum = |field: &str| data.iter().map(|l| l.get(field).and_then(Value::as_i64).unwrap_or(0)).sum::<i64>();
    Ok((sum("reserved"), sum("on_hand"), sum("available")))
}

// ---------------------------------------------------------------- get

#[derive(Default)]
struct GetTask {
    latency_us: Vec<u64>,
    done_at_us: Vec<u64>,
    status: BTreeMap<u16, u64>,
    transport_errors: u64,
    warmup_requests: u64,
    samples: Vec<String>,
}

async fn get(base: String, key: String, path: String, clients: usize, seconds: f64, warmup: f64, request_timeout: Duration) -> Result<Value, AnyError> {
    if seconds.is_nan() || seconds <= 0.0 || warmup.is_nan() || warmup < 0.0 {
        return Err("--seconds must be > 0 and --warmup >= 0".into());
    }
    let http = client(clients, request_timeout)?;
    let auth = auth_header(&key)?;
    let url: Arc<str> = format!("{}{}", base.trim_end_matches('/'), path).into();
    prewarm(&http, &base, &auth, clients).await?;

    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(warmup);
    let end = measure_from + Duration::from_secs_f64(seconds);
    let mut handles = Vec::with_capacity(clients);
    for _ in 0..clients {
        let http = http.clone();
        let auth = auth.clone();
        let url = url.clone();
        handles.push(tokio::spawn(async move {
            let mut r = GetTask::default();
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let res = http.get(&*url).header(reqwest::header::AUTHORIZATION, auth.clone()).send().await;
                let (status, body) = match res {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        match resp.bytes().await {
                            Ok(b) => (Some(status), b),
                            Err(e) => {
                                sample(&mut r.samples, format!("reading body of {status}: {e}"));
                                (None, Default::default())
                            }
                        }
                    }
                    Err(e) => {
                        sample(&mut r.samples, format!("transport: {e}"));
                        (None, Default::default())
                    }
                };
                let done = Instant::now();
                // Record only requests issued after warm-up that completed in the window.
                if t < measure_from || done > end {
                    r.warmup_requests += (t < measure_from) as u64;
                    if status.is_none() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    continue;
                }
                match status {
                    Some(s) => {
                        *r.status.entry(s).or_default() += 1;
                        if s == 200 {
                            r.latency_us.push((done - t).as_micros() as u64);
                            r.done_at_us.push((done - measure_from).as_micros() as u64);
                        } else {
                            sample(&mut r.samples, format!("{s}: {}", truncate(&body)));
                        }
                    }
                    None => {
                        r.transport_errors += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            r
        }));
    }
    let mut all = GetTask::default();
    for h in handles {
        let r = h.await?;
        all.latency_us.extend(r.latency_us);
        all.done_at_us.extend(r.done_at_us);
        merge_counts(&mut all.status, &r.status);
        all.transport_errors += r.transport_errors;
        all.warmup_requests += r.warmup_requests;
        for s in r.samples {
            sample(&mut all.samples, s);
        }
    }
    all.latency_us.sort_unstable();
    all.done_at_us.sort_unstable();
    let ok = all.latency_us.len() as u64;
    let total: u64 = all.status.values().sum::<u64>() + all.transport_errors;
    let statuses: BTreeMap<String, u64> = all.status.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let timeline = per_second(&all.done_at_us);
    Ok(json!({
        "scenario": "get",
        "url": &*url,
        "clients": clients,
        "warmup_s": warmup,
        "seconds": seconds,
        "warmup_requests": all.warmup_requests,
        "requests": total,
        "status_200": ok,
        "statuses": statuses,
        "transport_errors": all.transport_errors,
        "error_samples": all.samples,
        "requests_per_s": total as f64 / seconds,
        "ok_per_s": ok as f64 / seconds,
        "ok_per_second_timeline": timeline,
        "latency_200": latency_summary(&all.latency_us),
    }))
}
