//! Inbound integrations and stock feeds.
//!
//! An *integration* is a named source (3PL, ERP, carrier, payment provider)
//! with its own credential — an HMAC signing secret (stored encrypted) or an
//! API key (stored hashed) — and a freshness SLA. It pushes stock feeds
//! (CSV, NDJSON or `{"rows":[…]}` JSON), or Keel polls its URL.
//!
//! A feed becomes one *sync batch*. Its body is parsed as it streams in and
//! staged into `sync_batch_rows` a few hundred rows at a time (the HMAC and a
//! content hash are computed on the way), so memory stays bounded whatever
//! the size. Once the body is complete and authentic, the batch is judged
//! set-wise in the database and its changed rows are applied through
//! [`move_stock`](crate::inventory) as `sync` movements.
//!
//! **Time-aware reconciliation.** A row says "at `counted_at` there were
//! `on_hand` units". Its delta is `on_hand − ledger on_hand as of counted_at`,
//! applied now, so sales and movements recorded after the count are kept.
//! The movement's `occurred_at` is the count time: the correction belongs to
//! the moment the discrepancy was observed, so later as-of computations (a
//! late feed, a repeated feed, a second count in one feed) see it and never
//! correct the same discrepancy twice. An older count never overrides a newer
//! one already applied (`superseded`). Rows are judged again in the
//! transaction that applies them, so a batch resumed after a crash never
//! applies a delta worked out before it.

use crate::inventory::move_stock;
use crate::outbound::{self, ClientSettings, Outbound};
use crate::views::Page;
use crate::workers::spawn_every;
use crate::{in_tx, page_limit, Actor, App, AppError, Result};
use hmac::{Hmac, Mac};
use keel_domain::catalog::{text, Sku};
use keel_domain::ids::{BatchId, IntegrationId, LocationId};
use keel_domain::inventory::{MovementKind, MAX_QUANTITY};
use keel_domain::time::{now_micros, parse_rfc3339, to_rfc3339};
use keel_domain::Invalid;
use keel_store::feeds::{self as db, outcome, BatchRow, IntegrationRow, LevelCursor, RowCounts, RowOutcome, StagedRow};
use keel_store::inventory::NewMovement;
use keel_store::{outbox, Conn};
use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

mod lease;
mod replay;

type HmacSha256 = Hmac<Sha256>;

/// Largest feed body accepted (push or pull).
pub const MAX_FEED_BYTES: u64 = 512 * 1024 * 1024;
/// Signed requests must be this fresh (seconds either way).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;
/// A count may be this far in the future (clock skew) before it is invalid.
const FUTURE_SKEW_MICROS: i64 = 300 * 1_000_000;
/// Longest CSV record / JSON row accepted, in bytes.
const MAX_ROW_BYTES: usize = 16 * 1024;
/// Rows per read-and-apply page, and per transaction in `apply_valid` mode.
const APPLY_PAGE: i64 = 500;
const APPLY_VALID_CHUNK: usize = 2_000;
/// Problem rows shown inline on a batch.
const SAMPLE_PROBLEMS: i64 = 10;
/// An upload that sent nothing for this long is forgotten by the sweep
/// (a retry with its key takes it over as soon as its lease lapses).
const RECEIVING_STALE_MICROS: i64 = 15 * 60 * 1_000_000;
/// A staged or applying batch untouched this long was interrupted; resume it.
const APPLYING_STALE_MICROS: i64 = 10 * 60 * 1_000_000;
/// Per-row reports are kept this long (batch summaries stay).
pub const ROW_RETENTION_MICROS: i64 = 30 * 24 * 3600 * 1_000_000;

const API_KEY_PREFIX: &str = "keel_ik_";
const SIGNING_SECRET_PREFIX: &str = "keel_whsec_";

// ------------------------------------------------------------------ types ---

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum IntegrationKind {
    #[serde(rename = "3pl")]
    ThreePl,
    #[serde(rename = "erp")]
    Erp,
    #[serde(rename = "carrier")]
    Carrier,
    #[serde(rename = "payment_provider")]
    PaymentProvider,
    #[serde(rename = "other")]
    Other,
}

impl IntegrationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThreePl => "3pl",
            Self::Erp => "erp",
            Self::Carrier => "carrier",
            Self::PaymentProvider => "payment_provider",
            Self::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `X-Keel-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">`.
    Hmac,
    /// `Authorization: Bearer keel_ik_…`.
    ApiKey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hmac => "hmac",
            Self::ApiKey => "api_key",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedMode {
    /// Any unknown SKU or location, bad row or refused delta fails the whole
    /// batch and nothing is applied.
    #[default]
    AllOrNothing,
    /// Valid rows are applied; the others are reported.
    ApplyValid,
}

impl FeedMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllOrNothing => "all_or_nothing",
            Self::ApplyValid => "apply_valid",
        }
    }

    fn from_db(s: &str) -> FeedMode {
        if s == "apply_valid" {
            FeedMode::ApplyValid
        } else {
            FeedMode::AllOrNothing
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedFormat {
    /// `text/csv` with a header row naming `sku,location_id,on_hand,counted_at`.
    Csv,
    /// `application/x-ndjson`: one JSON row object per line.
    Ndjson,
    /// `application/json`: `{"rows":[{…},…]}`, streamed element by element.
    Json,
}

impl FeedFormat {
    /// From a Content-Type (parameters ignored).
    pub fn from_content_type(ct: &str) -> Option<FeedFormat> {
        let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "text/csv" | "application/csv" | "text/plain" => Some(FeedFormat::Csv),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => {
                Some(FeedFormat::Ndjson)
            }
            "application/json" => Some(FeedFormat::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
            Self::Json => "json",
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PullInput {
    /// `http://` or `https://` URL returning a feed (CSV, NDJSON or JSON by
    /// Content-Type). Redirects are not followed.
    pub url: String,
    /// Poll interval, 10 s to 7 days.
    pub every_seconds: i64,
    /// Default `all_or_nothing`.
    pub mode: Option<FeedMode>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIntegration {
    pub name: String,
    pub kind: IntegrationKind,
    /// How often a feed is expected, e.g. 900 for every 15 minutes
    /// (default 900).
    pub freshness_sla_seconds: Option<i64>,
    /// Default `hmac`.
    pub auth: Option<AuthMethod>,
    /// Default true.
    pub enabled: Option<bool>,
    pub pull: Option<PullInput>,
}

fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationChanges {
    pub name: Option<String>,
    pub kind: Option<IntegrationKind>,
    pub freshness_sla_seconds: Option<i64>,
    /// Changing the method issues a new credential (returned once).
    pub auth: Option<AuthMethod>,
    pub enabled: Option<bool>,
    /// `null` stops polling.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<PullInput>)]
    pub pull: Option<Option<PullInput>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PullView {
    pub url: String,
    pub every_seconds: i64,
    pub mode: FeedMode,
    pub next_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationView {
    pub id: String,
    #[schema(example = "integration")]
    pub object: &'static str,
    pub name: String,
    pub kind: String,
    pub auth: String,
    pub enabled: bool,
    pub freshness_sla_seconds: i64,
    pub pull: Option<PullView>,
    /// Where the integration pushes feeds (outside `/api/v1`; authenticated
    /// by the integration's own credential).
    pub push_path: String,
    /// The first characters of the credential, to tell credentials apart.
    pub credential_prefix: String,
    /// The credential itself: only in the response that created it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    pub last_success_at: Option<String>,
    pub last_failure_at: Option<String>,
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl IntegrationView {
    fn new(r: &IntegrationRow, credential: Option<String>) -> IntegrationView {
        IntegrationView {
            id: r.id.clone(),
            object: "integration",
            name: r.name.clone(),
            kind: r.kind.clone(),
            auth: r.auth.clone(),
            enabled: r.enabled,
            freshness_sla_seconds: r.freshness_sla_seconds,
            pull: r.pull_url.as_ref().map(|url| PullView {
                url: url.clone(),
                every_seconds: r.pull_every_seconds.unwrap_or(0),
                mode: pull_mode(r),
                next_at: r.pull_next_at.map(to_rfc3339),
            }),
            push_path: format!("/hooks/integrations/{}/stock-feed", r.id),
            credential_prefix: r.credential_prefix.clone(),
            credential,
            last_success_at: r.last_success_at.map(to_rfc3339),
            last_failure_at: r.last_failure_at.map(to_rfc3339),
            last_error: r.last_error.clone(),
            version: r.version,
            created_at: to_rfc3339(r.created_at),
            updated_at: to_rfc3339(r.updated_at),
        }
    }
}

fn pull_mode(r: &IntegrationRow) -> FeedMode {
    FeedMode::from_db(r.pull_mode.as_deref().unwrap_or(""))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowCountsView {
    pub total: i64,
    pub applied: i64,
    pub unchanged: i64,
    pub superseded: i64,
    pub unknown_sku: i64,
    pub unknown_location: i64,
    pub invalid: i64,
    pub rejected: i64,
    pub skipped: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncBatchRowView {
    #[schema(example = "sync_batch_row")]
    pub object: &'static str,
    /// Line of the row in the feed (the CSV header is line 1).
    pub line: i64,
    pub sku: Option<String>,
    pub location_id: Option<String>,
    /// The counted on_hand.
    pub on_hand: Option<i64>,
    pub counted_at: Option<String>,
    /// applied, unchanged, superseded, unknown_sku, unknown_location,
    /// invalid, rejected, skipped (or pending while the batch is applied).
    pub outcome: String,
    pub message: Option<String>,
    /// The ledger's on_hand as of counted_at.
    pub ledger_on_hand: Option<i64>,
    /// on_hand − ledger_on_hand: the change applied (or that would have been).
    pub delta: Option<i64>,
    pub movement_id: Option<String>,
}

impl From<db::ReportRow> for SyncBatchRowView {
    fn from(r: db::ReportRow) -> Self {
        SyncBatchRowView {
            object: "sync_batch_row",
            line: r.line,
            sku: r.sku,
            location_id: r.location_id,
            on_hand: r.on_hand,
            counted_at: r.counted_at.map(to_rfc3339),
            outcome: r.outcome,
            message: r.message,
            ledger_on_hand: r.ledger_on_hand,
            delta: r.delta,
            movement_id: r.movement_id,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncBatchView {
    pub id: String,
    #[schema(example = "sync_batch")]
    pub object: &'static str,
    pub integration_id: String,
    pub idempotency_key: Option<String>,
    /// `push` or `pull`.
    pub source: String,
    /// `csv`, `ndjson` or `json`.
    pub format: String,
    pub mode: String,
    /// receiving, interrupted (an upload that stopped mid-body: its process
    /// died or it stalled past its lease; retry it with the same
    /// Idempotency-Key), staged, applying, applied, partially_applied,
    /// failed, rolled_back. Lists leave out uploads still being received.
    pub status: String,
    /// Why the batch failed as a whole, if it did.
    pub error: Option<String>,
    pub bytes: i64,
    pub content_sha256: Option<String>,
    pub rows: RowCountsView,
    /// The first problem rows (unknown, invalid, rejected), by line.
    pub problems: Vec<SyncBatchRowView>,
    pub version: i64,
    pub created_at: String,
    pub applied_at: Option<String>,
    pub rolled_back_at: Option<String>,
}

impl SyncBatchView {
    fn new(b: &BatchRow, problems: Vec<SyncBatchRowView>) -> SyncBatchView {
        let c = &b.counts;
        SyncBatchView {
            id: b.id.clone(),
            object: "sync_batch",
            integration_id: b.integration_id.clone(),
            idempotency_key: b.idempotency_key.clone(),
            source: b.source.clone(),
            format: b.format.clone(),
            mode: b.mode.clone(),
            status: lease::shown_status(b, now_micros()).to_owned(),
            error: b.error.clone(),
            bytes: b.bytes,
            content_sha256: b.content_sha256.clone(),
            rows: RowCountsView {
                total: c.total,
                applied: c.applied,
                unchanged: c.unchanged,
                superseded: c.superseded,
                unknown_sku: c.unknown_sku,
                unknown_location: c.unknown_location,
                invalid: c.invalid,
                rejected: c.rejected,
                skipped: c.skipped,
            },
            problems,
            version: b.version,
            created_at: to_rfc3339(b.created_at),
            applied_at: b.applied_at.map(to_rfc3339),
            rolled_back_at: b.rolled_back_at.map(to_rfc3339),
        }
    }
}

/// What a push answered: the batch, and whether it was a replay of an
/// earlier request with the same idempotency key.
#[derive(Debug, Clone)]
pub struct FeedOutcome {
    pub batch: SyncBatchView,
    pub replayed: bool,
}

/// Why a rollback was refused, per SKU and location.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RollbackProblemView {
    pub line: i64,
    pub sku: String,
    pub location_id: String,
    /// The delta the batch applied; the rollback would apply its negation.
    pub delta: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    /// Available stock after the rollback (negative: refused).
    pub available_after: i64,
    pub explanation: String,
}

#[derive(Debug, Clone)]
pub enum RollbackOutcome {
    RolledBack(Box<SyncBatchView>),
    /// Nothing was changed; `problems` lists (up to 100) rows that block it.
    Refused { message: String, problems: Vec<RollbackProblemView>, more: bool },
}

/// Freshness and activity of one integration, for health reporting.
/// Times are microseconds since the Unix epoch.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationStats {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub freshness_sla_seconds: i64,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    pub last_error: Option<String>,
    pub batches_last_hour: i64,
    pub failures_last_hour: i64,
    pub batches_last_day: i64,
    pub failures_last_day: i64,
    /// None when the integration never delivered a feed.
    pub seconds_since_last_success: Option<i64>,
    /// Enabled, and a feed arrived within the SLA.
    pub fresh: bool,
}

/// Errors of a feed push: authentication and size come before any use case.
#[derive(Debug)]
pub enum FeedError {
    Unauthorized(String),
    TooLarge,
    App(AppError),
}

impl From<AppError> for FeedError {
    fn from(e: AppError) -> Self {
        FeedError::App(e)
    }
}

impl From<keel_store::StoreError> for FeedError {
    fn from(e: keel_store::StoreError) -> Self {
        FeedError::App(e.into())
    }
}

impl From<Invalid> for FeedError {
    fn from(e: Invalid) -> Self {
        FeedError::App(e.into())
    }
}

/// A push as the web layer hands it over.
#[derive(Debug, Clone)]
pub struct FeedRequest {
    pub format: FeedFormat,
    pub mode: FeedMode,
    pub idempotency_key: Option<String>,
    /// `Authorization: Bearer …`, if sent.
    pub bearer: Option<String>,
    /// `X-Keel-Signature`, if sent.
    pub signature: Option<String>,
}

// ------------------------------------------------------------- validation ---

fn check_sla(field: &str, s: i64) -> Result<i64, Invalid> {
    if !(1..=30 * 24 * 3600).contains(&s) {
        return Err(Invalid::new(field, "invalid_value", "must be between 1 and 2592000 seconds"));
    }
    Ok(s)
}

struct Pull {
    url: String,
    every: i64,
    mode: FeedMode,
}

/// The pull URL passes the outbound guard ([`crate::outbound`]): the body
/// it fetches comes back through the batch's rows.
async fn check_pull(outbound: &Outbound, p: &PullInput) -> Result<Pull, Invalid> {
    let url = outbound.check_target("pull.url", &p.url).await?;
    if !(10..=7 * 24 * 3600).contains(&p.every_seconds) {
        return Err(Invalid::new("pull.every_seconds", "invalid_value", "must be between 10 and 604800"));
    }
    Ok(Pull { url, every: p.every_seconds, mode: p.mode.unwrap_or_default() })
}

fn apply_pull(row: &mut IntegrationRow, pull: Option<Pull>, now: i64) {
    match pull {
        Some(p) => {
            let changed = row.pull_url.as_deref() != Some(p.url.as_str());
            row.pull_url = Some(p.url);
            row.pull_every_seconds = Some(p.every);
            row.pull_mode = Some(p.mode.as_str().to_owned());
            if changed || row.pull_next_at.is_none() {
                row.pull_next_at = Some(now);
                row.pull_etag = None;
                row.pull_last_modified = None;
            }
        }
        None => {
            row.pull_url = None;
            row.pull_every_seconds = None;
            row.pull_mode = None;
            row.pull_next_at = None;
            row.pull_etag = None;
            row.pull_last_modified = None;
        }
    }
}

/// A fresh credential: the secret (shown once), its display prefix, and what
/// is stored (hash for API keys, ciphertext for signing secrets).
fn new_credential(app: &App, auth: AuthMethod, row: &mut IntegrationRow) -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    let (secret, hash, encrypted) = match auth {
        AuthMethod::ApiKey => {
            let s = format!("{API_KEY_PREFIX}{}", hex::encode(raw));
            let h = crate::apikeys::hash_secret(&s);
            (s, Some(h), None)
        }
        AuthMethod::Hmac => {
            let s = format!("{SIGNING_SECRET_PREFIX}{}", hex::encode(raw));
            let e = app.secrets.encrypt(&s);
            (s, None, Some(e))
        }
    };
    row.auth = auth.as_str().to_owned();
    let shown = if auth == AuthMethod::ApiKey { API_KEY_PREFIX.len() } else { SIGNING_SECRET_PREFIX.len() } + 6;
    row.credential_prefix = secret[..shown].to_owned();
    row.credential_hash = hash;
    row.credential_encrypted = encrypted;
    secret
}

async fn emit_integration(conn: &mut Conn, kind: &str, row: &IntegrationRow, actor: &Actor) -> Result<()> {
    outbox::append(
        conn,
        outbox::NewEvent {
            kind,
            aggregate_type: "integration",
            aggregate_id: &row.id,
            aggregate_seq: row.version,
            payload: json!({ "object": IntegrationView::new(row, None), "actor": actor.0 }),
        },
    )
    .await?;
    Ok(())
}

fn integration_not_found(id: &str) -> AppError {
    AppError::not_found("integration", id)
}

fn batch_not_found(id: &str) -> AppError {
    AppError::not_found("sync_batch", id)
}

// --------------------------------------------------------------- registry ---

impl App {
    /// Registers an integration; the view carries its new credential, which
    /// is not shown again.
    pub async fn create_integration(&self, actor: &Actor, input: NewIntegration) -> Result<IntegrationView> {
        let name = text("name", &input.name, 100)?;
        let sla = check_sla("freshness_sla_seconds", input.freshness_sla_seconds.unwrap_or(900))?;
        let pull = match &input.pull {
            Some(p) => Some(check_pull(&self.outbound, p).await?),
            None => None,
        };
        let now = now_micros();
        let mut row = IntegrationRow {
            id: IntegrationId::generate().to_string(),
            name,
            kind: input.kind.as_str().to_owned(),
            auth: String::new(),
            credential_prefix: String::new(),
            credential_hash: None,
            credential_encrypted: None,
            freshness_sla_seconds: sla,
            enabled: input.enabled.unwrap_or(true),
            pull_url: None,
            pull_every_seconds: None,
            pull_mode: None,
            pull_next_at: None,
            pull_etag: None,
            pull_last_modified: None,
            last_success_at: None,
            last_failure_at: None,
            last_error: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        apply_pull(&mut row, pull, now);
        let secret = new_credential(self, input.auth.unwrap_or(AuthMethod::Hmac), &mut row);
        in_tx!(self, |tx| {
            if let Err(e) = db::insert_integration(&mut tx, &row).await {
                if e.is_unique_violation("integrations", "name") {
                    return Err(AppError::conflict("duplicate_name", format!("an integration named `{}` exists", row.name), Some("name")));
                }
                return Err(e.into());
            }
            emit_integration(&mut tx, "integration.created", &row, actor).await?;
            Ok(())
        })?;
        Ok(IntegrationView::new(&row, Some(secret)))
    }

    pub async fn get_integration(&self, id: &str) -> Result<IntegrationView> {
        IntegrationId::parse("id", id).map_err(|_| integration_not_found(id))?;
        let mut conn = self.store.reader().await?;
        let row = db::get_integration(&mut conn, id).await?.ok_or_else(|| integration_not_found(id))?;
        Ok(IntegrationView::new(&row, None))
    }

    pub async fn list_integrations(&self, starting_after: Option<&str>, limit: Option<i64>) -> Result<Page<IntegrationView>> {
        if let Some(c) = starting_after {
            IntegrationId::parse("starting_after", c)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list_integrations(&mut conn, starting_after, limit + 1).await?;
        Ok(Page::from_overfetch(rows.iter().map(|r| IntegrationView::new(r, None)).collect(), limit))
    }

    /// Changes settings; a new `auth` method issues a new credential, shown
    /// in this response only.
    pub async fn update_integration(&self, actor: &Actor, id: &str, changes: IntegrationChanges) -> Result<IntegrationView> {
        IntegrationId::parse("id", id).map_err(|_| integration_not_found(id))?;
        let name = changes.name.as_deref().map(|n| text("name", n, 100)).transpose()?;
        let sla = changes.freshness_sla_seconds.map(|s| check_sla("freshness_sla_seconds", s)).transpose()?;
        let pull = match &changes.pull {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => Some(Some(check_pull(&self.outbound, p).await?)),
        };
        in_tx!(self, |tx| {
            let mut row = db::get_integration(&mut tx, id).await?.ok_or_else(|| integration_not_found(id))?;
            let now = now_micros();
            if let Some(n) = &name {
                row.name = n.clone();
            }
            if let Some(k) = changes.kind {
                row.kind = k.as_str().to_owned();
            }
            if let Some(s) = sla {
                row.freshness_sla_seconds = s;
            }
            if let Some(e) = changes.enabled {
                row.enabled = e;
            }
            if let Some(p) = &pull {
                let p = p.as_ref().map(|p| Pull { url: p.url.clone(), every: p.every, mode: p.mode });
                apply_pull(&mut row, p, now);
            }
            let secret = match changes.auth {
                Some(a) if a.as_str() != row.auth => Some(new_credential(self, a, &mut row)),
                _ => None,
            };
            row.updated_at = now;
            match db::update_integration(&mut tx, &row).await {
                Ok(v) => row.version = v.ok_or_else(|| integration_not_found(id))?,
                Err(e) if e.is_unique_violation("integrations", "name") => {
                    return Err(AppError::conflict("duplicate_name", format!("an integration named `{}` exists", row.name), Some("name")))
                }
                Err(e) => return Err(e.into()),
            }
            emit_integration(&mut tx, "integration.updated", &row, actor).await?;
            Ok(IntegrationView::new(&row, secret))
        })
    }

    /// Replaces the credential (same method); the old one stops working at
    /// once. The view carries the new one.
    pub async fn rotate_integration_credential(&self, actor: &Actor, id: &str) -> Result<IntegrationView> {
        IntegrationId::parse("id", id).map_err(|_| integration_not_found(id))?;
        in_tx!(self, |tx| {
            let mut row = db::get_integration(&mut tx, id).await?.ok_or_else(|| integration_not_found(id))?;
            let auth = if row.auth == "api_key" { AuthMethod::ApiKey } else { AuthMethod::Hmac };
            let secret = new_credential(self, auth, &mut row);
            row.updated_at = now_micros();
            row.version = db::update_integration(&mut tx, &row).await?.ok_or_else(|| integration_not_found(id))?;
            emit_integration(&mut tx, "integration.credential_rotated", &row, actor).await?;
            Ok(IntegrationView::new(&row, Some(secret)))
        })
    }

    /// Freshness and recent activity of every integration.
    pub async fn integration_stats(&self, now: i64) -> Result<Vec<IntegrationStats>> {
        let mut conn = self.store.reader().await?;
        let all = db::all_integrations(&mut conn).await?;
        let hour = db::batch_activity(&mut conn, now - 3600 * 1_000_000).await?;
        let day = db::batch_activity(&mut conn, now - 24 * 3600 * 1_000_000).await?;
        Ok(all
            .into_iter()
            .map(|i| {
                let (bh, fh) = hour.get(&i.id).copied().unwrap_or((0, 0));
                let (bd, fd) = day.get(&i.id).copied().unwrap_or((0, 0));
                let since = i.last_success_at.map(|t| ((now - t) / 1_000_000).max(0));
                IntegrationStats {
                    fresh: i.enabled && since.is_some_and(|s| s <= i.freshness_sla_seconds),
                    id: i.id,
                    name: i.name,
                    kind: i.kind,
                    enabled: i.enabled,
                    freshness_sla_seconds: i.freshness_sla_seconds,
                    last_success_at: i.last_success_at,
                    last_failure_at: i.last_failure_at,
                    last_error: i.last_error,
                    batches_last_hour: bh,
                    failures_last_hour: fh,
                    batches_last_day: bd,
                    failures_last_day: fd,
                    seconds_since_last_success: since,
                }
            })
            .collect())
    }
}

// ----------------------------------------------------------------- parser ---

/// One row's fields as text, before validation.
struct RawRow<'a> {
    sku: &'a str,
    location_id: &'a str,
    on_hand: std::result::Result<i64, String>,
    counted_at: &'a str,
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

fn invalid_row(line: i64, sku: Option<&str>, location_id: Option<&str>, message: String) -> StagedRow {
    StagedRow {
        line,
        sku: sku.map(|s| clip(s, 64)),
        location_id: location_id.map(|s| clip(s, 64)),
        on_hand: None,
        counted_at: None,
        inventory_item_id: None,
        outcome: outcome::INVALID,
        message: Some(message),
    }
}

/// Validates one row; `now` bounds counts from the future.
fn stage_row(line: i64, raw: RawRow<'_>, now: i64) -> StagedRow {
    let sku = raw.sku.trim();
    let location_id = raw.location_id.trim();
    let bad = |m: String| invalid_row(line, Some(sku), Some(location_id), m);
    if let Err(e) = Sku::parse("sku", sku) {
        return bad(format!("sku: {}", e.message));
    }
    if let Err(e) = LocationId::parse("location_id", location_id) {
        return bad(format!("location_id: {}", e.message));
    }
    let on_hand = match raw.on_hand {
        Ok(n) if (0..=MAX_QUANTITY).contains(&n) => n,
        Ok(_) => return bad(format!("on_hand: must be between 0 and {MAX_QUANTITY}")),
        Err(e) => return bad(format!("on_hand: {e}")),
    };
    let counted_at = match parse_rfc3339(raw.counted_at.trim()) {
        Some(t) if t > now + FUTURE_SKEW_MICROS => return bad("counted_at: is in the future".into()),
        Some(t) => t.min(now),
        None => return bad("counted_at: must be an RFC 3339 timestamp".into()),
    };
    StagedRow {
        line,
        sku: Some(sku.to_owned()),
        location_id: Some(location_id.to_owned()),
        on_hand: Some(on_hand),
        counted_at: Some(counted_at),
        inventory_item_id: None,
        outcome: outcome::PENDING,
        message: None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    sku: String,
    location_id: String,
    on_hand: serde_json::Value,
    counted_at: String,
}

fn stage_json(line: i64, bytes: &[u8], now: i64) -> StagedRow {
    match serde_json::from_slice::<JsonRow>(bytes) {
        Ok(r) => {
            let on_hand = match &r.on_hand {
                serde_json::Value::Number(n) => n.as_i64().ok_or_else(|| "must be an integer".to_owned()),
                _ => Err("must be an integer".to_owned()),
            };
            stage_row(line, RawRow { sku: &r.sku, location_id: &r.location_id, on_hand, counted_at: &r.counted_at }, now)
        }
        Err(e) => {
            let m = e.to_string();
            let m = m.find(" at line ").map_or(m.clone(), |i| m[..i].to_owned());
            invalid_row(line, None, None, format!("invalid row: {m}"))
        }
    }
}

/// Streaming CSV: `csv_core` parses records across chunk boundaries; line
/// numbers are counted here (the header is line 1).
struct CsvParser {
    rdr: csv_core::Reader,
    out: Vec<u8>,
    outlen: usize,
    ends: [usize; 16],
    endlen: usize,
    scratch: Vec<u8>,
    scratch_ends: [usize; 16],
    /// The record overflowed the buffers (too long or too many fields).
    overflow: Option<&'static str>,
    /// Lines (`\n`) consumed so far.
    newlines: i64,
    /// Line where the current record started, once it has.
    record_line: Option<i64>,
    /// Column of sku, location_id, on_hand, counted_at; set by the header.
    columns: Option<([usize; 4], usize)>,
    started: bool,
    bom: Vec<u8>,
}

impl CsvParser {
    fn new() -> CsvParser {
        CsvParser {
            rdr: csv_core::Reader::new(),
            out: vec![0; MAX_ROW_BYTES],
            outlen: 0,
            ends: [0; 16],
            endlen: 0,
            scratch: vec![0; 4096],
            scratch_ends: [0; 16],
            overflow: None,
            newlines: 0,
            record_line: None,
            columns: None,
            started: false,
            bom: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8], eof: bool, rows: &mut Vec<StagedRow>, now: i64) -> std::result::Result<(), String> {
        // Strip a UTF-8 byte order mark, even one split across chunks.
        let owned;
        let mut input: &[u8] = chunk;
        if !self.started {
            self.bom.extend_from_slice(chunk);
            if self.bom.len() < 3 && !eof && b"\xef\xbb\xbf".starts_with(&self.bom) {
                return Ok(());
            }
            self.started = true;
            owned = std::mem::take(&mut self.bom);
            input = owned.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&owned);
        }
        loop {
            if self.record_line.is_none() {
                // Between records: skip line terminators, counting lines.
                while let Some(&b) = input.first() {
                    if b == b'\n' {
                        self.newlines += 1;
                    } else if b != b'\r' {
                        break;
                    }
                    input = &input[1..];
                }
                if input.is_empty() && !eof {
                    return Ok(());
                }
                self.record_line = Some(self.newlines + 1);
            }
            let (res, nin, nout, nend) = match self.overflow {
                None => self.rdr.read_record(input, &mut self.out[self.outlen..], &mut self.ends[self.endlen..]),
                Some(_) => self.rdr.read_record(input, &mut self.scratch, &mut self.scratch_ends),
            };
            self.newlines += input[..nin].iter().filter(|&&b| b == b'\n').count() as i64;
            input = &input[nin..];
            if self.overflow.is_none() {
                self.outlen += nout;
                self.endlen += nend;
            }
            use csv_core::ReadRecordResult as R;
            match res {
                R::InputEmpty => {
                    if !eof {
                        return Ok(());
                    }
                    if input.is_empty() && nin == 0 && nout == 0 && nend == 0 {
                        // Nothing more will come.
                        return Ok(());
                    }
                }
                R::OutputFull => {
                    self.overflow.get_or_insert("the row is longer than 16384 bytes");
                }
                R::OutputEndsFull => {
                    self.overflow.get_or_insert("the row has too many fields");
                }
                R::Record => {
                    let line = self.record_line.take().unwrap_or(self.newlines);
                    let result = self.record(line, rows, now);
                    self.outlen = 0;
                    self.endlen = 0;
                    self.overflow = None;
                    result?;
                }
                R::End => return Ok(()),
            }
        }
    }

    fn record(&mut self, line: i64, rows: &mut Vec<StagedRow>, now: i64) -> std::result::Result<(), String> {
        if let Some(why) = self.overflow {
            if self.columns.is_none() {
                return Err(format!("line {line}: the header row is malformed ({why})"));
            }
            rows.push(invalid_row(line, None, None, why.to_owned()));
            return Ok(());
        }
        let data = &self.out[..self.outlen];
        let mut fields: Vec<&[u8]> = Vec::with_capacity(self.endlen);
        let mut start = 0;
        for &end in &self.ends[..self.endlen] {
            fields.push(&data[start..end]);
            start = end;
        }
        // A blank (or whitespace-only) line is no row.
        if fields.len() == 1 && fields[0].iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let texts: std::result::Result<Vec<&str>, _> = fields.iter().map(|f| std::str::from_utf8(f)).collect();
        let Some((cols, n)) = self.columns else {
            let names = texts.map_err(|_| format!("line {line}: the header row is not UTF-8"))?;
            let names: Vec<String> = names.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
            let want = ["sku", "location_id", "on_hand", "counted_at"];
            let mut cols = [usize::MAX; 4];
            for (i, name) in names.iter().enumerate() {
                match want.iter().position(|w| w == name) {
                    Some(k) if cols[k] == usize::MAX => cols[k] = i,
                    _ => {
                        return Err(format!(
                            "line {line}: the CSV header must name the columns sku,location_id,on_hand,counted_at (found `{}`)",
                            clip(&names.join(","), 200)
                        ))
                    }
                }
            }
            if cols.contains(&usize::MAX) {
                return Err(format!(
                    "line {line}: the CSV header must name the columns sku,location_id,on_hand,counted_at (found `{}`)",
                    clip(&names.join(","), 200)
                ));
            }
            self.columns = Some((cols, names.len()));
            return Ok(());
        };
        let Ok(texts) = texts else {
            rows.push(invalid_row(line, None, None, "the row is not valid UTF-8".into()));
            return Ok(());
        };
        if texts.len() != n {
            let sku = texts.get(cols[0]).copied();
            let loc = texts.get(cols[1]).copied();
            rows.push(invalid_row(line, sku, loc, format!("expected {n} fields, found {}", texts.len())));
            return Ok(());
        }
        let on_hand = texts[cols[2]].trim().parse::<i64>().map_err(|_| "must be an integer".to_owned());
        rows.push(stage_row(line, RawRow { sku: texts[cols[0]], location_id: texts[cols[1]], on_hand, counted_at: texts[cols[3]] }, now));
        Ok(())
    }

    fn finish(&mut self, rows: &mut Vec<StagedRow>, now: i64) -> std::result::Result<(), String> {
        self.feed(&[], true, rows, now)?;
        if self.columns.is_none() {
            return Err("the feed is empty: a CSV feed starts with the header sku,location_id,on_hand,counted_at".into());
        }
        Ok(())
    }
}

/// NDJSON: one row object per line; blank lines are skipped.
struct NdjsonParser {
    buf: Vec<u8>,
    overflow: bool,
    line: i64,
}

impl NdjsonParser {
    fn line_done(&mut self, rows: &mut Vec<StagedRow>, now: i64) {
        self.line += 1;
        if self.overflow {
            rows.push(invalid_row(self.line, None, None, format!("the row is longer than {MAX_ROW_BYTES} bytes")));
        } else {
            let t = self.buf.trim_ascii();
            if !t.is_empty() {
                rows.push(stage_json(self.line, t, now));
            }
        }
        self.buf.clear();
        self.overflow = false;
    }

    fn feed(&mut self, mut chunk: &[u8], rows: &mut Vec<StagedRow>, now: i64) {
        while !chunk.is_empty() {
            let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            if !self.overflow {
                if self.buf.len() + part.len() > MAX_ROW_BYTES {
                    self.overflow = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            match done {
                Some(n) => {
                    self.line_done(rows, now);
                    chunk = &chunk[n..];
                }
                None => break,
            }
        }
    }

    fn finish(&mut self, rows: &mut Vec<StagedRow>, now: i64) {
        if !self.buf.is_empty() || self.overflow {
            self.line_done(rows, now);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonState {
    /// Before the `[` of `{"rows": [`.
    Prelude,
    /// Inside the array, expecting a row or `]`.
    ExpectRow,
    /// After a row, expecting `,` or `]`.
    AfterRow,
    /// Inside a row object.
    InRow,
    /// After `]`, expecting the closing `}`.
    AfterArray,
    Done,
}

/// `{"rows":[{…},…]}` split into row objects without holding the document:
/// a small scanner tracks strings and nesting, and each row is parsed alone.
struct JsonArrayParser {
    state: JsonState,
    prelude: Vec<u8>,
    row: Vec<u8>,
    overflow: bool,
    depth: u32,
    in_string: bool,
    escaped: bool,
    newlines: i64,
    row_line: i64,
}

impl JsonArrayParser {
    fn new() -> JsonArrayParser {
        JsonArrayParser {
            state: JsonState::Prelude,
            prelude: Vec::new(),
            row: Vec::new(),
            overflow: false,
            depth: 0,
            in_string: false,
            escaped: false,
            newlines: 0,
            row_line: 0,
        }
    }

    fn feed(&mut self, chunk: &[u8], rows: &mut Vec<StagedRow>, now: i64) -> std::result::Result<(), String> {
        let line = |p: &JsonArrayParser| p.newlines + 1;
        for &b in chunk {
            match self.state {
                JsonState::Prelude => {
                    if b == b'[' {
                        let compact: Vec<u8> = self.prelude.iter().copied().filter(|c| !c.is_ascii_whitespace()).collect();
                        let compact = compact.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&compact);
                        if compact != br#"{"rows":"# {
                            return Err(format!("line {}: a JSON feed is an object {{\"rows\": [ … ]}}", line(self)));
                        }
                        self.state = JsonState::ExpectRow;
                    } else {
                        self.prelude.push(b);
                        if self.prelude.len() > 1024 {
                            return Err("a JSON feed is an object {\"rows\": [ … ]}".into());
                        }
                    }
                }
                JsonState::ExpectRow | JsonState::AfterRow => {
                    if b.is_ascii_whitespace() {
                    } else if b == b']' {
                        self.state = JsonState::AfterArray;
                    } else if b == b',' && self.state == JsonState::AfterRow {
                        self.state = JsonState::ExpectRow;
                    } else if b == b'{' && self.state == JsonState::ExpectRow {
                        self.state = JsonState::InRow;
                        self.row.clear();
                        self.row.push(b);
                        self.overflow = false;
                        self.depth = 1;
                        self.in_string = false;
                        self.escaped = false;
                        self.row_line = line(self);
                    } else {
                        return Err(format!("line {}: expected a row object, `,` or `]` in rows", line(self)));
                    }
                }
                JsonState::InRow => {
                    if !self.overflow {
                        if self.row.len() >= MAX_ROW_BYTES {
                            self.overflow = true;
                            self.row.clear();
                        } else {
                            self.row.push(b);
                        }
                    }
                    if self.in_string {
                        if self.escaped {
                            self.escaped = false;
                        } else if b == b'\\' {
                            self.escaped = true;
                        } else if b == b'"' {
                            self.in_string = false;
                        }
                    } else {
                        match b {
                            b'"' => self.in_string = true,
                            b'{' | b'[' => self.depth += 1,
                            b'}' | b']' => {
                                self.depth -= 1;
                                if self.depth == 0 {
                                    rows.push(if self.overflow {
                                        invalid_row(self.row_line, None, None, format!("the row is longer than {MAX_ROW_BYTES} bytes"))
                                    } else {
                                        stage_json(self.row_line, &self.row, now)
                                    });
                                    self.state = JsonState::AfterRow;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                JsonState::AfterArray => {
                    if b == b'}' {
                        self.state = JsonState::Done;
                    } else if !b.is_ascii_whitespace() {
                        return Err(format!("line {}: expected `}}` after the rows", line(self)));
                    }
                }
                JsonState::Done => {
                    if !b.is_ascii_whitespace() {
                        return Err(format!("line {}: unexpected data after the JSON document", line(self)));
                    }
                }
            }
            if b == b'\n' {
                self.newlines += 1;
            }
        }
        Ok(())
    }

    fn finish(&self) -> std::result::Result<(), String> {
        if self.state != JsonState::Done {
            return Err(format!("line {}: the JSON document ended early", self.newlines + 1));
        }
        Ok(())
    }
}

enum Parser {
    Csv(Box<CsvParser>),
    Ndjson(NdjsonParser),
    Json(JsonArrayParser),
}

impl Parser {
    fn new(format: FeedFormat) -> Parser {
        match format {
            FeedFormat::Csv => Parser::Csv(Box::new(CsvParser::new())),
            FeedFormat::Ndjson => Parser::Ndjson(NdjsonParser { buf: Vec::new(), overflow: false, line: 0 }),
            FeedFormat::Json => Parser::Json(JsonArrayParser::new()),
        }
    }

    fn feed(&mut self, chunk: &[u8], rows: &mut Vec<StagedRow>, now: i64) -> std::result::Result<(), String> {
        match self {
            Parser::Csv(p) => p.feed(chunk, false, rows, now),
            Parser::Ndjson(p) => {
                p.feed(chunk, rows, now);
                Ok(())
            }
            Parser::Json(p) => p.feed(chunk, rows, now),
        }
    }

    fn finish(&mut self, rows: &mut Vec<StagedRow>, now: i64) -> std::result::Result<(), String> {
        match self {
            Parser::Csv(p) => p.finish(rows, now),
            Parser::Ndjson(p) => {
                p.finish(rows, now);
                Ok(())
            }
            Parser::Json(p) => p.finish(),
        }
    }
}

// ----------------------------------------------------------------- upload ---

fn parse_signature(header: &str) -> Option<(i64, Vec<Vec<u8>>)> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "t" => t = Some(v.trim().parse::<i64>().ok()?),
            "v1" => sigs.push(hex::decode(v.trim()).ok()?),
            _ => {}
        }
    }
    Some((t?, sigs)).filter(|(_, s)| !s.is_empty())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_key(key: Option<String>) -> std::result::Result<Option<String>, Invalid> {
    match key {
        None => Ok(None),
        Some(k) if k.is_empty() || k.len() > 255 || k.chars().any(char::is_control) => {
            Err(Invalid::new("Idempotency-Key", "invalid_idempotency_key", "must be 1-255 printable characters"))
        }
        Some(k) => Ok(Some(k)),
    }
}

/// A feed being received: rows are staged as they are parsed, the body is
/// hashed (and HMAC'd) on the way, and nothing is applied before
/// [`FeedUpload::finish`] has verified it.
pub struct FeedUpload {
    app: App,
    mac: Option<(HmacSha256, Vec<Vec<u8>>)>,
    sha: Sha256,
    bytes: u64,
    parser: Parser,
    staged: Vec<StagedRow>,
    batch: Option<BatchRow>,
    /// Set when the key names an earlier batch: the body is only verified.
    replay: Option<BatchRow>,
    /// A pull without validators: the key is the content hash, known at the end.
    key_from_content: bool,
    /// The signature's `t` (unix seconds), for a signed upload.
    signed_at: Option<i64>,
    /// The signature that matched the body, once verified (hex).
    signature: Option<String>,
    fatal: Option<String>,
    /// When the upload started, on its own clock ([`FeedUpload::clock`]).
    now: i64,
    /// When its lease was last renewed, on the same clock.
    renewed_at: i64,
    started: std::time::Instant,
}

impl App {
    /// Starts receiving a pushed feed for an integration: checks the
    /// integration and its API key (or the signature's freshness; the HMAC
    /// itself is checked at the end), and resolves the idempotency key.
    pub async fn begin_stock_feed(&self, integration_id: &str, req: FeedRequest) -> Result<FeedUpload, FeedError> {
        self.begin_stock_feed_at(integration_id, req, now_micros()).await
    }

    /// [`App::begin_stock_feed`] with the clock at `now`, which the upload's
    /// own clock then runs on from.
    pub async fn begin_stock_feed_at(&self, integration_id: &str, req: FeedRequest, now: i64) -> Result<FeedUpload, FeedError> {
        IntegrationId::parse("id", integration_id).map_err(|_| integration_not_found(integration_id))?;
        let key = check_key(req.idempotency_key)?;
        let integ = {
            let mut conn = self.store.reader().await?;
            db::get_integration(&mut conn, integration_id).await?.ok_or_else(|| integration_not_found(integration_id))?
        };
        let (mac, signed_at) = if integ.auth == "api_key" {
            let presented = req.bearer.ok_or_else(|| FeedError::Unauthorized("send the integration's API key as `Authorization: Bearer keel_ik_…`".into()))?;
            let hash = crate::apikeys::hash_secret(presented.trim());
            let ok = integ.credential_hash.as_deref().is_some_and(|h| constant_time_eq(h.as_bytes(), hash.as_bytes()));
            if !ok {
                return Err(FeedError::Unauthorized("the integration API key is wrong or was rotated".into()));
            }
            (None, None)
        } else {
            let header = req.signature.ok_or_else(|| {
                FeedError::Unauthorized("sign the body: `X-Keel-Signature: t=<unix>,v1=<hex HMAC-SHA256 of \"{t}.{body}\">`".into())
            })?;
            let (t, sigs) = parse_signature(&header).ok_or_else(|| FeedError::Unauthorized("malformed X-Keel-Signature".into()))?;
            if (now / 1_000_000 - t).abs() > SIGNATURE_TOLERANCE_SECS {
                return Err(FeedError::Unauthorized(format!("the signature timestamp is more than {SIGNATURE_TOLERANCE_SECS} s away from now")));
            }
            let stored = integ.credential_encrypted.as_deref().ok_or_else(|| FeedError::Unauthorized("no signing secret".into()))?;
            let secret = self.secrets.decrypt(stored).map_err(|e| FeedError::App(keel_store::StoreError::corrupt(e).into()))?;
            let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            (Some((mac, sigs)), Some(t))
        };
        if !integ.enabled {
            return Err(AppError::conflict("integration_disabled", format!("integration {} is disabled", integ.id), None).into());
        }
        let mut upload = self.open_upload(integ, mac, req.format, req.mode, key, "push", now).await?;
        upload.signed_at = signed_at;
        Ok(upload)
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_upload(
        &self,
        integ: IntegrationRow,
        mac: Option<(HmacSha256, Vec<Vec<u8>>)>,
        format: FeedFormat,
        mode: FeedMode,
        key: Option<String>,
        source: &str,
        now: i64,
    ) -> Result<FeedUpload, FeedError> {
        let mut replay = None;
        let mut batch = None;
        let actor = format!("integration:{}", integ.id);
        if let Some(k) = &key {
            let existing = {
                let mut conn = self.store.reader().await?;
                db::batch_by_key(&mut conn, &integ.id, k).await?
            };
            if let Some(b) = existing {
                match b.status.as_str() {
                    // Its upload died: make way for this one.
                    "receiving" if lease::lapsed(&b, now) && lease::take_over(self, &b, now).await? => {}
                    "receiving" | "staged" | "applying" => {
                        return Err(AppError::conflict(
                            "batch_in_progress",
                            format!("a feed with this idempotency key is still being received or applied ({})", b.id),
                            Some("Idempotency-Key"),
                        )
                        .into())
                    }
                    _ => replay = Some(b),
                }
            }
        }
        if replay.is_none() {
            let row = BatchRow {
                id: BatchId::generate().to_string(),
                integration_id: integ.id.clone(),
                idempotency_key: key.clone(),
                source: source.to_owned(),
                format: format.as_str().to_owned(),
                mode: mode.as_str().to_owned(),
                status: "receiving".into(),
                content_sha256: None,
                bytes: 0,
                counts: RowCounts::default(),
                error: None,
                actor,
                version: 1,
                created_at: now,
                updated_at: now,
                applied_at: None,
                rolled_back_at: None,
                lease_owner: Some(lease::owner().to_owned()),
                lease_until: Some(now + lease::UPLOAD_LEASE_MICROS),
            };
            let inserted = in_tx!(self, |tx| {
                match db::insert_batch(&mut tx, &row).await {
                    Ok(()) => Ok(true),
                    Err(e) if e.is_unique_violation("sync_batches", "idempotency_key") => Ok(false),
                    Err(e) => Err(e.into()),
                }
            })?;
            if !inserted {
                return Err(AppError::conflict(
                    "batch_in_progress",
                    "a feed with this idempotency key is being received concurrently",
                    Some("Idempotency-Key"),
                )
                .into());
            }
            batch = Some(row);
        }
        Ok(FeedUpload {
            app: self.clone(),
            mac,
            sha: Sha256::new(),
            bytes: 0,
            parser: Parser::new(format),
            staged: Vec::with_capacity(db::STAGE_CHUNK),
            batch,
            replay,
            key_from_content: false,
            signed_at: None,
            signature: None,
            fatal: None,
            now,
            renewed_at: now,
            started: std::time::Instant::now(),
        })
    }
}

impl FeedUpload {
    /// The next piece of the body.
    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), FeedError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > MAX_FEED_BYTES {
            return Err(FeedError::TooLarge);
        }
        self.sha.update(chunk);
        if let Some((mac, _)) = &mut self.mac {
            mac.update(chunk);
        }
        if self.replay.is_some() {
            return Ok(());
        }
        if self.fatal.is_none() {
            if let Err(e) = self.parser.feed(chunk, &mut self.staged, self.now) {
                self.fatal = Some(e);
                self.staged.clear();
            }
        }
        // An unreadable body still streams to its end (to report on it), so
        // it keeps its lease too.
        if self.staged.len() >= db::STAGE_CHUNK {
            self.flush().await?;
        } else {
            self.renew_if_due().await?;
        }
        Ok(())
    }

    /// Resolves SKUs of the parsed rows and writes them to staging.
    async fn flush(&mut self) -> Result<()> {
        let Some(batch) = &self.batch else { return Ok(()) };
        if self.staged.is_empty() {
            return Ok(());
        }
        let skus: HashSet<&str> =
            self.staged.iter().filter(|r| r.outcome == outcome::PENDING).filter_map(|r| r.sku.as_deref()).collect();
        let skus: Vec<&str> = skus.into_iter().collect();
        let items = {
            let mut conn = self.app.store.reader().await?;
            db::items_by_sku(&mut conn, &skus).await?
        };
        for r in &mut self.staged {
            if r.outcome != outcome::PENDING {
                continue;
            }
            match r.sku.as_deref().and_then(|s| items.get(s)) {
                Some(id) => r.inventory_item_id = Some(id.clone()),
                None => {
                    r.outcome = outcome::UNKNOWN_SKU;
                    r.message = Some("no inventory item has this SKU".into());
                }
            }
        }
        let at = self.clock();
        let rows = &self.staged;
        let id = &batch.id;
        let this = &*self;
        in_tx!(this.app, |tx| {
            // Renewed first: an upload taken over must not stage rows.
            this.renew_in(&mut tx, id, at).await?;
            db::insert_rows(&mut tx, id, rows).await?;
            Ok(())
        })?;
        self.renewed_at = at;
        self.staged.clear();
        Ok(())
    }

    /// Ends the body: verifies the signature, then applies the batch (or
    /// answers with the earlier batch of the same idempotency key).
    pub async fn finish(mut self) -> Result<FeedOutcome, FeedError> {
        let result = self.finish_inner().await;
        if result.is_err() {
            self.discard().await;
        }
        self.batch = None;
        result
    }

    async fn finish_inner(&mut self) -> Result<FeedOutcome, FeedError> {
        let received = std::time::Instant::now();
        if let Some((mac, sigs)) = self.mac.take() {
            let got = mac.finalize().into_bytes();
            if !sigs.iter().any(|s| constant_time_eq(s, &got)) {
                return Err(FeedError::Unauthorized("the signature does not match the body".into()));
            }
            self.signature = Some(hex::encode(got));
        }
        let hash = hex::encode(std::mem::take(&mut self.sha).finalize());
        if let Some(earlier) = self.replay.take() {
            if earlier.content_sha256.as_deref().is_some_and(|h| h != hash) {
                return Err(AppError::conflict(
                    "idempotency_key_reused",
                    format!("idempotency key already used for a different feed (batch {})", earlier.id),
                    Some("Idempotency-Key"),
                )
                .into());
            }
            let view = self.app.batch_view(&earlier).await?;
            return Ok(FeedOutcome { batch: view, replayed: true });
        }
        if self.fatal.is_none() {
            if let Err(e) = self.parser.finish(&mut self.staged, self.now) {
                self.fatal = Some(e);
                self.staged.clear();
            }
        }
        self.flush().await?;
        let mut batch = self.batch.clone().ok_or_else(|| AppError::Store(keel_store::StoreError::corrupt("upload without batch")))?;
        if self.key_from_content {
            let key = format!("pull:sha256:{hash}");
            let earlier = {
                let mut conn = self.app.store.reader().await?;
                db::batch_by_key(&mut conn, &batch.integration_id, &key).await?
            };
            if let Some(e) = earlier {
                // The same content was seen before: nothing new to apply.
                self.discard().await;
                return Ok(FeedOutcome { batch: self.app.batch_view(&e).await?, replayed: true });
            }
            batch.idempotency_key = Some(key);
        }
        batch.content_sha256 = Some(hash);
        batch.bytes = self.bytes as i64;
        batch.updated_at = now_micros();
        let app = self.app.clone();
        let fatal = self.fatal.clone();
        let b = batch.clone();
        let at = self.clock();
        let this = &*self;
        let stored = in_tx!(app, |tx| {
            let mut b = b.clone();
            this.renew_in(&mut tx, &b.id, at).await?;
            this.refuse_replay(&mut tx, &b.integration_id, at).await?;
            match &fatal {
                Some(err) => {
                    db::skip_pending(&mut tx, &b.id, "not applied: the feed could not be read").await?;
                    b.error = Some(err.clone());
                    finalize(&mut tx, &mut b, "failed", true).await?;
                }
                None => {
                    b.status = "staged".into();
                    b.counts = db::count_rows(&mut tx, &b.id).await?;
                    match db::update_batch(&mut tx, &b).await {
                        Ok(v) => b.version = v,
                        Err(e) if e.is_unique_violation("sync_batches", "idempotency_key") => {
                            return Err(AppError::conflict("duplicate_feed", "the same content is being applied", None))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Ok(b)
        })?;
        // From here on the batch is authentic and complete: it stays.
        self.batch = None;
        let staged_in = received.elapsed();
        // Applied in a task of its own: a client that hangs up does not
        // cancel (and roll back) a large application half way.
        let applied = if stored.status == "staged" {
            let (app, id) = (self.app.clone(), stored.id.clone());
            tokio::spawn(async move { app.apply_sync_batch(&id).await })
                .await
                .map_err(|e| AppError::Store(keel_store::StoreError::Io(format!("the apply task failed: {e}"))))??
        } else {
            stored
        };
        tracing::info!(
            batch = %applied.id,
            status = %applied.status,
            rows = applied.counts.total,
            applied = applied.counts.applied,
            bytes = self.bytes,
            receive_ms = (self.started.elapsed() - received.elapsed()).as_millis() as u64,
            apply_ms = (received.elapsed() - staged_in).as_millis() as u64,
            "sync batch received"
        );
        Ok(FeedOutcome { batch: self.app.batch_view(&applied).await?, replayed: false })
    }

    /// Forgets the upload (a bad signature, a body that broke off).
    pub async fn abort(mut self) {
        self.discard().await;
    }

    async fn discard(&mut self) {
        if let Some(b) = self.batch.take() {
            let id = b.id;
            if let Err(e) = in_tx!(self.app, |tx| Ok(db::delete_batch(&mut tx, &id).await?)) {
                tracing::warn!(batch = %id, error = %e, "could not discard a feed upload");
            }
        }
    }
}

impl Drop for FeedUpload {
    fn drop(&mut self) {
        // A request dropped mid-body (client gone): discard in the background.
        if let Some(b) = self.batch.take() {
            let app = self.app.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let id = b.id;
                    let _ = in_tx!(app, |tx| Ok(db::delete_batch(&mut tx, &id).await?));
                });
            }
        }
    }
}

// ------------------------------------------------------------------ apply ---

/// Records the batch's final state, its event and the integration's
/// last success or failure, in the caller's transaction.
async fn finalize(conn: &mut Conn, b: &mut BatchRow, status: &str, count: bool) -> Result<()> {
    let now = now_micros();
    if count {
        b.counts = db::count_rows(conn, &b.id).await?;
    }
    b.status = status.to_owned();
    b.updated_at = now;
    match status {
        "applied" | "partially_applied" => b.applied_at = Some(now),
        "rolled_back" => b.rolled_back_at = Some(now),
        _ => {}
    }
    b.version = db::update_batch(conn, b).await?;
    let kind = match status {
        "applied" | "partially_applied" => "sync_batch.applied",
        "rolled_back" => "sync_batch.rolled_back",
        _ => "sync_batch.failed",
    };
    outbox::append(
        conn,
        outbox::NewEvent {
            kind,
            aggregate_type: "sync_batch",
            aggregate_id: &b.id,
            aggregate_seq: b.version,
            payload: json!({ "object": SyncBatchView::new(b, Vec::new()) }),
        },
    )
    .await?;
    match status {
        "applied" | "partially_applied" => db::record_success(conn, &b.integration_id, now).await?,
        "failed" => db::record_failure(conn, &b.integration_id, now, b.error.as_deref().unwrap_or("the batch failed")).await?,
        _ => {}
    }
    Ok(())
}

/// Applies pending rows in level-lock order from `cursor`, up to `limit`
/// rows; returns how many were decided and where it stopped. A refused row
/// is recorded as rejected, or (all-or-nothing) ends the transaction with
/// `refused` set.
async fn apply_pending(
    conn: &mut Conn,
    b: &BatchRow,
    cursor: &mut LevelCursor,
    limit: usize,
    refused: &mut Option<(i64, String)>,
) -> Result<usize> {
    let mode = FeedMode::from_db(&b.mode);
    let mut done = 0;
    while done < limit {
        let want = (limit - done).min(APPLY_PAGE as usize) as i64;
        let page = db::rows_in_level_order(conn, &b.id, outcome::PENDING, cursor, want).await?;
        let Some(last) = page.last() else { break };
        let next = LevelCursor::after(last);
        // The delta judged earlier may be stale (an interruption, another
        // feed in between): only one judged in this transaction is applied.
        let due = db::recheck_pending(conn, &b.id, cursor, &next).await?;
        let mut outcomes = Vec::with_capacity(due.len());
        for r in &due {
            let mut m = NewMovement::new(&r.inventory_item_id, &r.location_id, MovementKind::Sync, r.delta, &b.actor);
            m.source = &b.integration_id;
            m.batch_id = Some(&b.id);
            m.idempotency_key = Some(&b.id);
            // The correction belongs to the moment of the count.
            m.occurred_at = Some(r.counted_at);
            match move_stock(conn, &r.sku, &m, "on_hand").await {
                Ok((_, movement_id)) => outcomes.push(RowOutcome {
                    line: r.line,
                    outcome: outcome::APPLIED,
                    message: None,
                    movement_id: Some(movement_id.to_string()),
                }),
                Err(AppError::Conflict { message, .. }) => {
                    if mode == FeedMode::AllOrNothing {
                        *refused = Some((r.line, message.clone()));
                        return Err(AppError::conflict("sync_row_refused", format!("line {}: {message}", r.line), None));
                    }
                    outcomes.push(RowOutcome { line: r.line, outcome: outcome::REJECTED, message: Some(message), movement_id: None });
                }
                Err(e) => return Err(e),
            }
        }
        db::set_outcomes(conn, &b.id, &outcomes).await?;
        done += page.len();
        *cursor = next;
    }
    Ok(done)
}

enum Judged {
    Done(BatchRow),
    Apply(BatchRow),
}

// `in_tx!` commits only when its body evaluates to `Ok`; the steps below are
// plain functions so that an early `return Ok(…)` still commits.

/// Within one feed the latest count of a level wins (on a tie, the last
/// line); the others are `superseded`. One ordered pass over the pending
/// rows, in which rows of a level are adjacent.
async fn supersede_repeats(conn: &mut Conn, id: &str) -> Result<()> {
    let mut cursor = LevelCursor::default();
    let mut best: Option<db::CountRef> = None;
    let mut losers: Vec<RowOutcome> = Vec::new();
    let lose = |line: i64| RowOutcome {
        line,
        outcome: outcome::SUPERSEDED,
        message: Some("a later count of this SKU at this location in the same feed wins".into()),
        movement_id: None,
    };
    loop {
        let page = db::pending_counts(conn, id, &cursor, 5_000).await?;
        let Some(last) = page.last() else { break };
        cursor = LevelCursor { inventory_item_id: last.inventory_item_id.clone(), location_id: last.location_id.clone(), line: last.line };
        for r in page {
            match best.take() {
                Some(b) if b.inventory_item_id == r.inventory_item_id && b.location_id == r.location_id => {
                    if (r.counted_at, r.line) > (b.counted_at, b.line) {
                        losers.push(lose(b.line));
                        best = Some(r);
                    } else {
                        losers.push(lose(r.line));
                        best = Some(b);
                    }
                }
                _ => best = Some(r),
            }
        }
        if losers.len() >= db::STAGE_CHUNK {
            db::set_outcomes(conn, id, &losers).await?;
            losers.clear();
        }
    }
    Ok(db::set_outcomes(conn, id, &losers).await?)
}

/// Judges a staged batch set-wise; an all-or-nothing batch with problem rows
/// fails here.
async fn judge_batch(conn: &mut Conn, id: &str) -> Result<Judged> {
    let mut b = db::get_batch(conn, id).await?.ok_or_else(|| batch_not_found(id))?;
    match b.status.as_str() {
        "staged" => {
            if !db::transition_batch(conn, id, "staged", "applying", now_micros()).await? {
                return Ok(Judged::Done(db::get_batch(conn, id).await?.ok_or_else(|| batch_not_found(id))?));
            }
            db::mark_unknown_locations(conn, id).await?;
            supersede_repeats(conn, id).await?;
            db::judge_pending(conn, id).await?;
            b.status = "applying".into();
        }
        "applying" => {
            // Resumed after an interruption. Taking the batch's row lock
            // first waits out a process still applying it.
            if !db::transition_batch(conn, id, "applying", "applying", now_micros()).await? {
                return Ok(Judged::Done(db::get_batch(conn, id).await?.ok_or_else(|| batch_not_found(id))?));
            }
            db::reopen_unchanged(conn, id).await?;
        }
        _ => return Ok(Judged::Done(b)),
    }
    let counts = db::count_rows(conn, id).await?;
    if FeedMode::from_db(&b.mode) == FeedMode::AllOrNothing && counts.problems() > 0 {
        db::skip_pending(conn, id, "not applied: other rows of the batch have problems").await?;
        b.error = Some(format!(
            "{} of {} rows cannot be applied (unknown SKU or location, invalid, or refused by the stock rules); \
             nothing was applied",
            counts.problems(),
            counts.total
        ));
        finalize(conn, &mut b, "failed", true).await?;
        return Ok(Judged::Done(b));
    }
    Ok(Judged::Apply(b))
}

/// Applies every pending row of an all-or-nothing batch; `None` when another
/// process already decided it.
async fn apply_all(conn: &mut Conn, b: &BatchRow, refused: &mut Option<(i64, String)>) -> Result<Option<BatchRow>> {
    if !db::transition_batch(conn, &b.id, "applying", "applying", now_micros()).await? {
        return Ok(None);
    }
    let mut cursor = LevelCursor::default();
    apply_pending(conn, b, &mut cursor, usize::MAX, refused).await?;
    let mut b = b.clone();
    finalize(conn, &mut b, "applied", true).await?;
    Ok(Some(b))
}

/// Records the row that an all-or-nothing batch stumbled on, and fails it.
async fn fail_refused(conn: &mut Conn, id: &str, line: i64, message: &str) -> Result<BatchRow> {
    let mut b = db::get_batch(conn, id).await?.ok_or_else(|| batch_not_found(id))?;
    if b.status != "applying" {
        return Ok(b);
    }
    let o = RowOutcome { line, outcome: outcome::REJECTED, message: Some(message.to_owned()), movement_id: None };
    db::set_outcomes(conn, id, &[o]).await?;
    db::skip_pending(conn, id, "not applied: another row of the batch was refused").await?;
    b.error = Some(format!("line {line} was refused ({message}); nothing was applied"));
    finalize(conn, &mut b, "failed", true).await?;
    Ok(b)
}

enum Step {
    /// Another process decided the batch.
    Gone,
    More(LevelCursor),
    Done(Box<BatchRow>),
}

/// One short transaction of an apply-valid batch: up to a chunk of rows,
/// or the final status once none is pending.
async fn apply_chunk(conn: &mut Conn, b: &BatchRow, start: &LevelCursor) -> Result<Step> {
    if !db::transition_batch(conn, &b.id, "applying", "applying", now_micros()).await? {
        return Ok(Step::Gone);
    }
    let mut c = start.clone();
    if apply_pending(conn, b, &mut c, APPLY_VALID_CHUNK, &mut None).await? > 0 {
        return Ok(Step::More(c));
    }
    let mut b = b.clone();
    let counts = db::count_rows(conn, &b.id).await?;
    let status = if counts.problems() == 0 {
        "applied"
    } else if counts.applied + counts.unchanged + counts.superseded == 0 {
        b.error = Some(format!("none of the {} rows could be applied", counts.total));
        "failed"
    } else {
        "partially_applied"
    };
    b.counts = counts;
    finalize(conn, &mut b, status, false).await?;
    Ok(Step::Done(Box::new(b)))
}

impl App {
    /// Judges and applies a staged batch (also resumes one interrupted while
    /// applying). Idempotent: a batch already decided is returned as is.
    pub async fn apply_sync_batch(&self, id: &str) -> Result<BatchRow> {
        let t0 = std::time::Instant::now();
        let judged = in_tx!(self, |tx| judge_batch(&mut tx, id).await)?;
        tracing::debug!(batch = id, judge_ms = t0.elapsed().as_millis() as u64, "sync batch judged");
        let b = match judged {
            Judged::Done(b) => return Ok(b),
            Judged::Apply(b) => b,
        };
        let current = || async {
            let mut conn = self.store.reader().await?;
            db::get_batch(&mut conn, id).await?.ok_or_else(|| batch_not_found(id))
        };
        match FeedMode::from_db(&b.mode) {
            FeedMode::AllOrNothing => {
                let mut refused = None;
                let result = in_tx!(self, |tx| {
                    refused = None;
                    apply_all(&mut tx, &b, &mut refused).await
                });
                match (result, refused) {
                    (Ok(Some(done)), _) => Ok(done),
                    (Ok(None), _) => current().await,
                    (Err(_), Some((line, message))) => in_tx!(self, |tx| fail_refused(&mut tx, id, line, &message).await),
                    (Err(e), None) => Err(e),
                }
            }
            FeedMode::ApplyValid => {
                // Short transactions, so other writers (the SQLite writer
                // above all) are not held up by a large feed.
                let mut cursor = LevelCursor::default();
                loop {
                    let start = cursor.clone();
                    match in_tx!(self, |tx| apply_chunk(&mut tx, &b, &start).await)? {
                        Step::Gone => return current().await,
                        Step::More(c) => cursor = c,
                        Step::Done(done) => return Ok(*done),
                    }
                }
            }
        }
    }

    async fn batch_view(&self, b: &BatchRow) -> Result<SyncBatchView> {
        let problems = if b.counts.problems() > 0 {
            let mut conn = self.store.reader().await?;
            let o = [outcome::UNKNOWN_SKU, outcome::UNKNOWN_LOCATION, outcome::INVALID, outcome::REJECTED];
            db::report_rows(&mut conn, &b.id, &o, 0, SAMPLE_PROBLEMS).await?.into_iter().map(SyncBatchRowView::from).collect()
        } else {
            Vec::new()
        };
        Ok(SyncBatchView::new(b, problems))
    }

    pub async fn get_sync_batch(&self, id: &str) -> Result<SyncBatchView> {
        BatchId::parse("id", id).map_err(|_| batch_not_found(id))?;
        let b = {
            let mut conn = self.store.reader().await?;
            db::get_batch(&mut conn, id).await?.ok_or_else(|| batch_not_found(id))?
        };
        self.batch_view(&b).await
    }

    /// Batches newest first, optionally of one integration (uploads still
    /// being received are left out; dead ones are shown as `interrupted`).
    pub async fn list_sync_batches(
        &self,
        integration_id: Option<&str>,
        starting_after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<SyncBatchView>> {
        if let Some(i) = integration_id {
            IntegrationId::parse("integration_id", i)?;
        }
        if let Some(c) = starting_after {
            BatchId::parse("starting_after", c)?;
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        let rows = db::list_batches(&mut conn, integration_id, starting_after, limit + 1, now_micros()).await?;
        Ok(Page::from_overfetch(rows.iter().map(|b| SyncBatchView::new(b, Vec::new())).collect(), limit))
    }

    /// A page of one integration's batches by offset (the admin console's
    /// paging), newest first.
    pub async fn sync_batch_page(&self, integration_id: &str, offset: i64, limit: i64) -> Result<Vec<SyncBatchView>> {
        IntegrationId::parse("id", integration_id).map_err(|_| integration_not_found(integration_id))?;
        let mut conn = self.store.reader().await?;
        let rows = db::batch_page(&mut conn, integration_id, offset.max(0), limit.clamp(1, 200), now_micros()).await?;
        Ok(rows.iter().map(|b| SyncBatchView::new(b, Vec::new())).collect())
    }

    /// The newest batch of every integration that has received one.
    pub async fn latest_sync_batches(&self) -> Result<Vec<SyncBatchView>> {
        let mut conn = self.store.reader().await?;
        Ok(db::latest_batches(&mut conn, now_micros()).await?.iter().map(|b| SyncBatchView::new(b, Vec::new())).collect())
    }

    /// The per-row report in line order. `outcome` is one outcome, several
    /// separated by commas, or `problems` (unknown, invalid and rejected);
    /// `starting_after` is a line number.
    pub async fn sync_batch_rows(
        &self,
        id: &str,
        outcome_filter: Option<&str>,
        starting_after: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Page<SyncBatchRowView>> {
        BatchId::parse("id", id).map_err(|_| batch_not_found(id))?;
        let mut outcomes: Vec<&str> = Vec::new();
        if let Some(f) = outcome_filter {
            for o in f.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                if o == "problems" {
                    outcomes.extend([outcome::UNKNOWN_SKU, outcome::UNKNOWN_LOCATION, outcome::INVALID, outcome::REJECTED]);
                } else if let Some(known) = outcome::ALL.iter().find(|k| **k == o) {
                    outcomes.push(known);
                } else {
                    return Err(Invalid::new("outcome", "invalid_value", format!("unknown outcome `{o}`")).into());
                }
            }
        }
        let limit = page_limit(limit);
        let mut conn = self.store.reader().await?;
        db::get_batch(&mut conn, id).await?.ok_or_else(|| batch_not_found(id))?;
        let rows = db::report_rows(&mut conn, id, &outcomes, starting_after.unwrap_or(0), limit + 1).await?;
        Ok(Page::from_overfetch(rows.into_iter().map(SyncBatchRowView::from).collect(), limit))
    }

    /// Undoes an applied batch with compensating `sync` movements (each the
    /// negated delta, at the original count time), in one transaction.
    /// Refused as a whole, with the rows at fault, when undoing would drive
    /// available stock negative or break a level rule.
    pub async fn rollback_sync_batch(&self, actor: &Actor, id: &str) -> Result<RollbackOutcome> {
        BatchId::parse("id", id).map_err(|_| batch_not_found(id))?;
        let mut problems: Vec<RollbackProblemView> = Vec::new();
        let result = in_tx!(self, |tx| {
            problems.clear();
            let mut b = db::get_batch(&mut tx, id).await?.ok_or_else(|| batch_not_found(id))?;
            match b.status.as_str() {
                "applied" | "partially_applied" => {}
                "rolled_back" => return Err(AppError::conflict("batch_rolled_back", format!("batch {id} was already rolled back"), None)),
                s => return Err(AppError::conflict("batch_not_applied", format!("batch {id} is {s}; only applied batches can be rolled back"), None)),
            }
            if b.counts.applied > 0 && !db::has_rows(&mut tx, id).await? {
                return Err(AppError::conflict("batch_rows_purged", format!("the rows of batch {id} are no longer kept"), None));
            }
            // Lock the batch against a concurrent rollback.
            if !db::transition_batch(&mut tx, id, &b.status, &b.status, now_micros()).await? {
                return Err(AppError::Contended);
            }
            let found = db::rollback_problems(&mut tx, id, 101).await?;
            if !found.is_empty() {
                problems = found.iter().map(rollback_problem).collect();
                return Err(AppError::conflict("rollback_refused", "", None));
            }
            let mut cursor = LevelCursor::default();
            let key = format!("rollback:{id}");
            loop {
                let page = db::rows_in_level_order(&mut tx, id, outcome::APPLIED, &cursor, APPLY_PAGE).await?;
                let Some(last) = page.last() else { break };
                cursor = LevelCursor::after(last);
                for r in &page {
                    let mut m = NewMovement::new(&r.inventory_item_id, &r.location_id, MovementKind::Sync, -r.delta, &actor.0);
                    m.source = &b.integration_id;
                    m.batch_id = Some(id);
                    m.idempotency_key = Some(&key);
                    m.reason = Some("sync batch rollback");
                    m.occurred_at = Some(r.counted_at);
                    if let Err(e) = move_stock(&mut tx, &r.sku, &m, "on_hand").await {
                        if let AppError::Conflict { message, .. } = &e {
                            let level = keel_store::inventory::get_level(&mut tx, &r.inventory_item_id, &r.location_id).await?;
                            let l = level.map(|l| l.levels).unwrap_or_default();
                            let mut p = rollback_problem(&db::RollbackProblem {
                                line: r.line,
                                sku: r.sku.clone(),
                                location_id: r.location_id.clone(),
                                delta: r.delta,
                                on_hand: l.on_hand,
                                reserved: l.reserved,
                                safety_stock: l.safety_stock,
                                damaged: l.damaged,
                                quality_control: l.quality_control,
                            });
                            p.explanation = format!("{}: {message}", p.explanation);
                            problems.push(p);
                            return Err(AppError::conflict("rollback_refused", "", None));
                        }
                        return Err(e);
                    }
                }
            }
            finalize(&mut tx, &mut b, "rolled_back", false).await?;
            Ok(b)
        });
        match result {
            Ok(b) => Ok(RollbackOutcome::RolledBack(Box::new(self.batch_view(&b).await?))),
            Err(AppError::Conflict { code: "rollback_refused", .. }) => {
                let more = problems.len() > 100;
                problems.truncate(100);
                let shown: Vec<String> = problems.iter().take(5).map(|p| p.explanation.clone()).collect();
                let message = format!(
                    "rolling back batch {id} would drive available stock negative for {}{} SKU/location(s): {}{}",
                    problems.len(),
                    if more { "+" } else { "" },
                    shown.join("; "),
                    if problems.len() > 5 { "; …" } else { "" }
                );
                Ok(RollbackOutcome::Refused { message, problems, more })
            }
            Err(e) => Err(e),
        }
    }
}

fn rollback_problem(p: &db::RollbackProblem) -> RollbackProblemView {
    let available = p.on_hand - p.reserved - p.safety_stock - p.damaged - p.quality_control;
    let after = available - p.delta;
    RollbackProblemView {
        line: p.line,
        sku: p.sku.clone(),
        location_id: p.location_id.clone(),
        delta: p.delta,
        on_hand: p.on_hand,
        reserved: p.reserved,
        available,
        available_after: after,
        explanation: format!(
            "{} at {}: undoing +{} would leave {} available (on_hand {}, reserved {}, safety_stock {}, damaged {}, \
             quality_control {}) — stock was sold or moved since the batch",
            p.sku, p.location_id, p.delta, after, p.on_hand, p.reserved, p.safety_stock, p.damaged, p.quality_control
        ),
    }
}

// ------------------------------------------------------------------- pull ---

/// The client of feed pulls: a feed may be large (up to [`MAX_FEED_BYTES`],
/// counted as it streams in), hence the long total time.
pub(crate) fn pull_client(outbound: &Outbound) -> outbound::Client {
    outbound.client(ClientSettings {
        connect_timeout: Duration::from_secs(10),
        timeout: Duration::from_secs(600),
        user_agent: "keel-feeds/1",
        max_idle_per_host: 4,
    })
}

/// What one poll did.
#[derive(Debug, Clone)]
pub enum PullResult {
    /// A new batch (applied, partially applied or failed).
    Batch(Box<SyncBatchView>),
    /// The source answered 304, or served content already seen.
    Unchanged,
}

impl App {
    /// Polls every integration whose pull is due at `now`; returns how many
    /// were polled. Each due poll runs once even with several nodes.
    pub async fn poll_feeds(&self, now: i64) -> Result<u64> {
        let due = {
            let mut conn = self.store.reader().await?;
            db::due_pulls(&mut conn, now, 20).await?
        };
        let mut polled = 0;
        for integ in due {
            let (Some(seen), Some(every)) = (integ.pull_next_at, integ.pull_every_seconds) else { continue };
            let next = now + every * 1_000_000;
            let id = integ.id.clone();
            if !in_tx!(self, |tx| Ok(db::claim_pull(&mut tx, &id, seen, next).await?))? {
                continue;
            }
            polled += 1;
            if let Err(e) = self.pull_feed(&integ).await {
                tracing::warn!(integration = %integ.id, error = %e, "feed pull failed");
            }
        }
        Ok(polled)
    }

    /// Fetches one integration's feed now and applies it.
    pub async fn pull_feed(&self, integ: &IntegrationRow) -> Result<PullResult> {
        match self.pull_inner(integ).await {
            Ok(r) => {
                if matches!(r, PullResult::Unchanged) {
                    let id = integ.id.clone();
                    in_tx!(self, |tx| Ok(db::record_success(&mut tx, &id, now_micros()).await?))?;
                }
                Ok(r)
            }
            Err(message) => {
                // A failed fetch is recorded as a failed batch, so it counts
                // in the integration's failure rate.
                let now = now_micros();
                let b = BatchRow {
                    id: BatchId::generate().to_string(),
                    integration_id: integ.id.clone(),
                    idempotency_key: None,
                    source: "pull".into(),
                    format: "csv".into(),
                    mode: pull_mode(integ).as_str().to_owned(),
                    status: "receiving".into(),
                    content_sha256: None,
                    bytes: 0,
                    counts: RowCounts::default(),
                    error: Some(clip(&message, 500)),
                    actor: format!("integration:{}", integ.id),
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    applied_at: None,
                    rolled_back_at: None,
                    lease_owner: None,
                    lease_until: None,
                };
                let b = in_tx!(self, |tx| {
                    let mut b = b.clone();
                    db::insert_batch(&mut tx, &b).await?;
                    finalize(&mut tx, &mut b, "failed", false).await?;
                    Ok(b)
                })?;
                Ok(PullResult::Batch(Box::new(SyncBatchView::new(&b, Vec::new()))))
            }
        }
    }

    async fn pull_inner(&self, integ: &IntegrationRow) -> std::result::Result<PullResult, String> {
        let url = integ.pull_url.as_deref().ok_or("no pull URL")?;
        // Checked again here: the URL may have been saved by a node that
        // allowed private targets.
        let mut req = self.feed_client.get(url).map_err(|b| b.to_string())?;
        if let Some(etag) = &integ.pull_etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &integ.pull_last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
        }
        let mut res = req.send().await.map_err(|e| format!("fetch failed: {}", outbound::describe(&e)))?;
        if res.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(PullResult::Unchanged);
        }
        if !res.status().is_success() {
            return Err(format!("the source answered HTTP {}", res.status().as_u16()));
        }
        if res.content_length().is_some_and(|n| n > MAX_FEED_BYTES) {
            return Err(format!("the feed is larger than {MAX_FEED_BYTES} bytes"));
        }
        let header = |name: reqwest::header::HeaderName| res.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok()).map(str::to_owned);
        let etag = header(reqwest::header::ETAG);
        let last_modified = header(reqwest::header::LAST_MODIFIED);
        let format = header(reqwest::header::CONTENT_TYPE)
            .and_then(|ct| FeedFormat::from_content_type(&ct))
            .or_else(|| {
                let path = res.url().path().to_ascii_lowercase();
                if path.ends_with(".ndjson") || path.ends_with(".jsonl") {
                    Some(FeedFormat::Ndjson)
                } else if path.ends_with(".json") {
                    Some(FeedFormat::Json)
                } else {
                    None
                }
            })
            .unwrap_or(FeedFormat::Csv);
        let key = match (&etag, &last_modified) {
            (Some(e), _) => Some(format!("pull:etag:{}", hex::encode(Sha256::digest(format!("{url}\n{e}").as_bytes())))),
            (None, Some(lm)) => Some(format!("pull:last-modified:{}", hex::encode(Sha256::digest(format!("{url}\n{lm}").as_bytes())))),
            (None, None) => None,
        };
        let app_err = |e: AppError| format!("{e}");
        if let Some(k) = &key {
            let mut conn = self.store.reader().await.map_err(|e| app_err(e.into()))?;
            if let Some(earlier) = db::batch_by_key(&mut conn, &integ.id, k).await.map_err(|e| app_err(e.into()))? {
                return seen_before(&earlier.id, &earlier.status, earlier.error.as_deref());
            }
        }
        let mut upload = match self.open_upload(integ.clone(), None, format, pull_mode(integ), key.clone(), "pull", now_micros()).await {
            Ok(u) => u,
            Err(FeedError::App(AppError::Conflict { code: "batch_in_progress", .. })) => return Ok(PullResult::Unchanged),
            Err(e) => return Err(feed_error_text(e)),
        };
        upload.key_from_content = key.is_none();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => upload.push(&chunk).await.map_err(feed_error_text)?,
                Ok(None) => break,
                Err(e) => return Err(format!("reading the feed failed: {}", e.without_url())),
            }
        }
        let outcome = match upload.finish().await {
            Ok(o) => o,
            Err(FeedError::App(AppError::Conflict { code: "duplicate_feed", .. })) => return Ok(PullResult::Unchanged),
            Err(e) => return Err(feed_error_text(e)),
        };
        if outcome.replayed {
            return seen_before(&outcome.batch.id, &outcome.batch.status, outcome.batch.error.as_deref());
        }
        // Conditional requests only once the content was applied: a feed
        // that failed is fetched (and fails) again rather than reported fresh.
        if matches!(outcome.batch.status.as_str(), "applied" | "partially_applied") {
            let id = integ.id.clone();
            in_tx!(self, |tx| Ok(db::set_pull_validators(&mut tx, &id, etag.as_deref(), last_modified.as_deref()).await?))
                .map_err(app_err)?;
        }
        Ok(PullResult::Batch(Box::new(outcome.batch)))
    }

    /// Housekeeping: forgets abandoned uploads, resumes batches interrupted
    /// while being applied, and purges old per-row reports.
    pub async fn maintain_feeds(&self, now: i64) -> Result<u64> {
        let mut n = 0;
        let (abandoned, interrupted) = {
            let mut conn = self.store.reader().await?;
            let a = db::stale_batches(&mut conn, "receiving", now - RECEIVING_STALE_MICROS, 100).await?;
            let mut i = db::stale_batches(&mut conn, "staged", now - APPLYING_STALE_MICROS, 10).await?;
            i.extend(db::stale_batches(&mut conn, "applying", now - APPLYING_STALE_MICROS, 10).await?);
            (a, i)
        };
        for b in abandoned {
            let id = b.id.clone();
            in_tx!(self, |tx| {
                // Only if it is still abandoned.
                if db::claim_stale(&mut tx, &id, "receiving", now - RECEIVING_STALE_MICROS).await? {
                    db::delete_batch(&mut tx, &id).await?;
                }
                Ok(())
            })?;
            n += 1;
        }
        for b in interrupted {
            tracing::info!(batch = %b.id, status = %b.status, "resuming an interrupted sync batch");
            self.apply_sync_batch(&b.id).await?;
            n += 1;
        }
        let purged = in_tx!(self, |tx| Ok(db::purge_rows(&mut tx, now - ROW_RETENTION_MICROS, 50_000).await?))?;
        Ok(n + purged)
    }
}

/// A pulled feed identical to an earlier batch: nothing new, unless that
/// batch failed, in which case the source still serves a feed that fails.
fn seen_before(id: &str, status: &str, error: Option<&str>) -> std::result::Result<PullResult, String> {
    if status == "failed" {
        return Err(format!("the source still serves the feed of batch {id}, which failed: {}", error.unwrap_or("see its rows")));
    }
    Ok(PullResult::Unchanged)
}

fn feed_error_text(e: FeedError) -> String {
    match e {
        FeedError::Unauthorized(m) => m,
        FeedError::TooLarge => format!("the feed is larger than {MAX_FEED_BYTES} bytes"),
        FeedError::App(AppError::Store(s)) => format!("storage error: {s}"),
        FeedError::App(e) => e.to_string(),
    }
}

/// The pull scheduler (every second) and feed housekeeping (every minute).
pub fn spawn_workers(app: App, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![
        spawn_every("feed-pull", Duration::from_secs(1), shutdown.clone(), {
            let app = app.clone();
            move || {
                let app = app.clone();
                async move { app.poll_feeds(now_micros()).await }
            }
        }),
        spawn_every("feed-maintenance", Duration::from_secs(60), shutdown, move || {
            let app = app.clone();
            async move { app.maintain_feeds(now_micros()).await }
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(format: FeedFormat, body: &[u8], chunk: usize) -> (Vec<StagedRow>, Option<String>) {
        let mut p = Parser::new(format);
        let mut rows = Vec::new();
        let now = parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
        for c in body.chunks(chunk.max(1)) {
            if let Err(e) = p.feed(c, &mut rows, now) {
                return (rows, Some(e));
            }
        }
        let err = p.finish(&mut rows, now).err();
        (rows, err)
    }

    const LOC: &str = "loc_0193a1b2c3d4e5f60718293a4b5c6d7e";

    #[test]
    fn csv_rows_line_numbers_and_errors_survive_any_chunking() {
        let body = format!(
            "\u{feff}sku,location_id,on_hand,counted_at\r\nA-1,{LOC},5,2026-01-01T00:00:00Z\r\n\r\n\
             \"B,2\",{LOC},x,2026-01-01T00:00:00Z\nC-3,{LOC},7\n\"D\nmulti\",{LOC},1,2026-01-01T00:00:00Z\n\
             E-5,{LOC},3,2026-01-01T00:00:00Z"
        );
        for chunk in [1, 2, 3, 7, 64, 100_000] {
            let (rows, err) = parse_all(FeedFormat::Csv, body.as_bytes(), chunk);
            assert_eq!(err, None, "chunk {chunk}");
            let got: Vec<(i64, &str)> = rows.iter().map(|r| (r.line, r.outcome)).collect();
            assert_eq!(
                got,
                [(2, "pending"), (4, "invalid"), (5, "invalid"), (6, "invalid"), (8, "pending")],
                "chunk {chunk}: {rows:?}"
            );
            assert_eq!(rows[0].on_hand, Some(5));
            assert!(rows[1].message.as_deref().unwrap().starts_with("sku:"), "{:?}", rows[1]);
            assert_eq!(rows[2].message.as_deref(), Some("expected 4 fields, found 3"));
        }
        let (_, err) = parse_all(FeedFormat::Csv, b"sku,location,on_hand,counted_at\n", 5);
        assert!(err.unwrap().contains("header"));
        let (_, err) = parse_all(FeedFormat::Csv, b"", 5);
        assert!(err.unwrap().contains("empty"));
        // Columns in any order.
        let (rows, err) = parse_all(FeedFormat::Csv, format!("counted_at,on_hand,sku,location_id\n2026-01-01T00:00:00Z,4,A,{LOC}\n").as_bytes(), 3);
        assert_eq!((err, rows[0].on_hand, rows[0].sku.as_deref()), (None, Some(4), Some("A")));
    }

    #[test]
    fn ndjson_and_json_rows() {
        let row = |sku: &str, n: i64| format!(r#"{{"sku":"{sku}","location_id":"{LOC}","on_hand":{n},"counted_at":"2026-01-01T00:00:00Z"}}"#);
        let nd = format!("{}\n\n{}\nnot json\n{}", row("A", 1), row("B", -1), row("C", 3));
        for chunk in [1, 5, 1000] {
            let (rows, err) = parse_all(FeedFormat::Ndjson, nd.as_bytes(), chunk);
            assert_eq!(err, None);
            let got: Vec<(i64, &str)> = rows.iter().map(|r| (r.line, r.outcome)).collect();
            assert_eq!(got, [(1, "pending"), (3, "invalid"), (4, "invalid"), (5, "pending")]);
        }
        let doc = format!("{{ \"rows\" : [\n {},\n {} ,\n{{\"sku\":\"x]}}\",\"bad\":1}}\n] }}\n", row("A", 1), row("B", 2));
        for chunk in [1, 4, 1000] {
            let (rows, err) = parse_all(FeedFormat::Json, doc.as_bytes(), chunk);
            assert_eq!(err, None);
            let got: Vec<(i64, &str)> = rows.iter().map(|r| (r.line, r.outcome)).collect();
            assert_eq!(got, [(2, "pending"), (3, "pending"), (4, "invalid")]);
        }
        let (_, err) = parse_all(FeedFormat::Json, format!("{{\"rows\":[{}", row("A", 1)).as_bytes(), 3);
        assert!(err.unwrap().contains("ended early"));
        let (_, err) = parse_all(FeedFormat::Json, b"[1]", 3);
        assert!(err.unwrap().contains("rows"));
    }

    #[test]
    fn rows_are_validated() {
        let now = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let ok = |sku, loc, n: std::result::Result<i64, String>, t| stage_row(2, RawRow { sku, location_id: loc, on_hand: n, counted_at: t }, now);
        assert_eq!(ok("A", LOC, Ok(1), "2025-12-31T23:00:00Z").outcome, "pending");
        assert_eq!(ok("A", LOC, Ok(1), "2026-01-01T00:04:00Z").counted_at, Some(now), "small skew is clamped");
        assert_eq!(ok("A", LOC, Ok(1), "2026-01-01T01:00:00Z").outcome, "invalid");
        assert_eq!(ok("A", "loc_x", Ok(1), "2025-12-31T23:00:00Z").outcome, "invalid");
        assert_eq!(ok("A", LOC, Ok(-1), "2025-12-31T23:00:00Z").outcome, "invalid");
        assert_eq!(ok("A", LOC, Ok(1), "yesterday").outcome, "invalid");
        assert_eq!(ok("A B", LOC, Ok(1), "2025-12-31T23:00:00Z").outcome, "invalid");
    }

    #[test]
    fn signature_header() {
        let (t, sigs) = parse_signature("t=12,v1=00ff,v0=zz,v1=ab").unwrap();
        assert_eq!((t, sigs.len()), (12, 2));
        assert!(parse_signature("t=12").is_none());
        assert!(parse_signature("v1=00").is_none());
    }
}
