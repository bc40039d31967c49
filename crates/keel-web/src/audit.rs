//! Writes the audit log: one entry for every non-GET request that passed
//! authentication, whatever its outcome (the status is recorded, so refused
//! attempts are visible too). The entry names the actor, the method and
//! route, the resource, the request's top-level field names (never their
//! values), the client address and the status.
//!
//! The API records through [`record_writes`]; the admin console's gate
//! through [`audited`], with the staff user as the actor.
//!
//! The entry is appended in its own short transaction after the write has
//! committed (see ARCHITECTURE.md for the trade-off).

use crate::api::images::body_limit;
use crate::edge::ClientIp;
use crate::error::ApiError;
use crate::extract::MAX_JSON_BODY;
use crate::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::body::HttpBody as _;
use keel_app::apikeys::Principal;
use keel_app::audit::NewAuditEntry;
use serde::de::IgnoredAny;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// At most this many field names are kept, each at most this long.
const MAX_FIELDS: usize = 32;
const MAX_FIELD_LEN: usize = 64;
/// Responses larger than this are not inspected for their `id`.
const MAX_INSPECTED_RESPONSE: u64 = 1024 * 1024;

/// The API's audit layer: API keys leave a `Principal` in the request.
pub async fn record_writes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(actor) = req.extensions().get::<Principal>().map(|p| p.actor().0) else {
        return next.run(req).await;
    };
    audited(&state, actor, req, |req| next.run(req)).await
}

/// The id of what a write made, for the audit entry, when the response (a
/// page, not a redirect or JSON) cannot say it otherwise.
#[derive(Clone)]
pub struct CreatedId(pub String);

/// Runs `handle` on a write by `actor` and appends its audit entry: the
/// route, the target, the top-level field names of a JSON or form body, the
/// outcome. The admin console's gate calls this too, for allowed and
/// refused writes alike.
pub async fn audited<F, Fut>(state: &AppState, actor: String, req: Request, handle: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let ip = ClientIp::of_request(&req, state).0.map(|ip| ip.to_string());
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| req.uri().path().to_owned());
    let action = format!("{} {route}", req.method());
    let path_target = req.uri().path().split('/').find(|s| looks_like_id(s)).map(str::to_owned);
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let (parts, body) = req.into_parts();
    let mut summary = serde_json::Map::new();
    let req = if content_type.starts_with("application/json") || content_type.starts_with("application/x-www-form-urlencoded") {
        let limit = body_limit(parts.uri.path(), MAX_JSON_BODY);
        let bytes = match to_bytes(body, limit).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError::invalid(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body exceeds {limit} bytes"), None)
                    .into_response()
            }
        };
        if let Some(names) = field_names(&content_type, &bytes) {
            summary.insert("fields".into(), Value::Array(names));
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        if !content_type.is_empty() {
            summary.insert("content_type".into(), json!(content_type.chars().take(MAX_FIELD_LEN).collect::<String>()));
        }
        Request::from_parts(parts, body)
    };

    let res = handle(req).await;
    let status = res.status();
    if res.headers().get("idempotent-replayed").is_some_and(|v| v == "true") {
        summary.insert("replayed".into(), json!(true));
    }
    // A form post answered with a redirect names what it made in `Location`;
    // one answered with a page, in the response's `CreatedId`.
    if let Some(CreatedId(id)) = res.extensions().get::<CreatedId>().filter(|c| looks_like_id(&c.0)) {
        summary.insert("result_id".into(), json!(id));
    }
    if let Some(id) = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.split(['/', '?']).find(|s| looks_like_id(s)))
    {
        summary.insert("result_id".into(), json!(id));
    }
    let inspectable = res.body().size_hint().exact().is_some_and(|n| n <= MAX_INSPECTED_RESPONSE)
        && res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let res = if inspectable {
        let (parts, body) = res.into_parts();
        let bytes = to_bytes(body, MAX_INSPECTED_RESPONSE as usize).await.unwrap_or_default();
        if let Ok(seen) = serde_json::from_slice::<ResponseFacts>(&bytes) {
            if let Some(id) = seen.id.filter(|id| looks_like_id(id)) {
                summary.insert("result_id".into(), json!(id));
            }
            if let Some(code) = seen.error.and_then(|e| e.code) {
                summary.insert("error_code".into(), json!(code.chars().take(MAX_FIELD_LEN).collect::<String>()));
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    } else {
        res
    };
    let target = path_target.or_else(|| summary.get("result_id").and_then(Value::as_str).map(str::to_owned));
    let entry = NewAuditEntry { actor, action, target, summary: Value::Object(summary), ip, status: status.as_u16() };
    if let Err(e) = state.app.record_audit(entry).await {
        tracing::error!(error = %e, "could not append to the audit log");
    }
    res
}

/// The body's top-level field names (never values); a form's CSRF token is
/// left out as noise.
fn field_names(content_type: &str, bytes: &[u8]) -> Option<Vec<Value>> {
    let names: Vec<String> = if content_type.starts_with("application/json") {
        serde_json::from_slice::<BTreeMap<String, IgnoredAny>>(bytes).ok()?.into_keys().collect()
    } else {
        let mut names: Vec<String> = form_urlencoded::parse(bytes).map(|(k, _)| k.into_owned()).filter(|k| k != "csrf").collect();
        names.sort();
        names.dedup();
        names
    };
    Some(names.into_iter().take(MAX_FIELDS).map(|k| Value::String(k.chars().take(MAX_FIELD_LEN).collect())).collect())
}

#[derive(serde::Deserialize)]
struct ResponseFacts {
    id: Option<String>,
    error: Option<ErrorFacts>,
}

#[derive(serde::Deserialize)]
struct ErrorFacts {
    code: Option<String>,
}

/// `prod_0193…`: a lower-case prefix, `_`, then 32 hex digits.
fn looks_like_id(s: &str) -> bool {
    match s.split_once('_') {
        Some((prefix, rest)) => {
            !prefix.is_empty()
                && prefix.len() <= 16
                && prefix.bytes().all(|b| b.is_ascii_lowercase())
                && rest.len() == 32
                && rest.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}
