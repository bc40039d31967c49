//! `Idempotency-Key` for every POST: the first request with a key runs and
//! its response is stored; the same key with the same request replays it; the
//! same key with a different request is a 409. Keys are scoped per API key.

use crate::error::ApiError;
use crate::extract::MAX_JSON_BODY;
use crate::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use keel_app::apikeys::Principal;
use keel_app::idempotency::{Claim, Request as KeyRequest, RequestKey};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";
/// Stored responses larger than this are not kept (the request still runs).
const MAX_STORED_RESPONSE: usize = 4 * 1024 * 1024;

pub async fn idempotent_posts(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => k.to_owned(),
        _ => {
            return ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1-255 visible ASCII characters",
                Some("Idempotency-Key".into()),
            )
            .into_response()
        }
    };
    let scope = req.extensions().get::<Principal>().map(|p| p.key_id.clone()).unwrap_or_default();
    let (parts, body) = req.into_parts();
    let limit = crate::api::images::body_limit(parts.uri.path(), MAX_JSON_BODY);
    let bytes = match to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::invalid(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds {limit} bytes"),
                None,
            )
            .into_response()
        }
    };
    let path = parts.uri.path().to_owned();
    let mut h = Sha256::new();
    h.update(parts.uri.query().unwrap_or("").as_bytes());
    h.update([0]);
    h.update(&bytes);
    let hash = hex::encode(h.finalize());
    let claim = state
        .app
        .idempotency_claim(&KeyRequest { scope: &scope, key: &key, method: "POST", path: &path, request_hash: &hash })
        .await;
    match claim {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Claim::Mismatch) => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_error",
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
        )
        .into_response(),
        Ok(Claim::InFlight) => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_error",
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being processed; retry shortly",
        )
        .into_response(),
        Ok(Claim::Replay { status, body }) => {
            let mut res = Response::new(Body::from(body));
            *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let headers = res.headers_mut();
            headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            res
        }
        Ok(Claim::New) => {
            let mut req = Request::from_parts(parts, Body::from(bytes));
            req.extensions_mut().insert(RequestKey::new(&scope, &key));
            // The request runs to the end even if the client goes away, so
            // its claim is always completed or released: a write that
            // committed is never re-run by a retry.
            let res = match tokio::spawn(next.run(req)).await {
                Ok(res) => res,
                Err(e) => {
                    tracing::error!(error = %e, "request task failed");
                    ApiError::internal().into_response()
                }
            };
            let (mut parts, body) = res.into_parts();
            let bytes = match to_bytes(body, MAX_STORED_RESPONSE).await {
                Ok(b) => b,
                Err(_) => {
                    let _ = state.app.idempotency_abandon(&scope, &key).await;
                    return ApiError::internal().into_response();
                }
            };
            // An answer that says "retry later" (a 5xx, or anything with
            // `Retry-After`) is not the request's final answer: release the
            // key so the retry runs, rather than replaying it forever.
            let outcome = if parts.status.is_server_error() || parts.headers.contains_key(axum::http::header::RETRY_AFTER) {
                state.app.idempotency_abandon(&scope, &key).await
            } else {
                state
                    .app
                    .idempotency_complete(&scope, &key, parts.status.as_u16(), &String::from_utf8_lossy(&bytes))
                    .await
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "could not record idempotent response");
            }
            parts.headers.insert("idempotent-replayed", HeaderValue::from_static("false"));
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}
