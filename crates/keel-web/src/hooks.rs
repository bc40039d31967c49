//! Inbound provider webhooks, outside `/api/v1` (they authenticate by
//! signature, not API key).

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new().route("/hooks/stripe", post(payment_webhook)).route("/hooks/payments", post(payment_webhook))
}

/// Verifies the provider's signature (Stripe-Signature, 300 s tolerance),
/// then applies the event. Bad signatures are 400 so the sender can tell.
async fn payment_webhook(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_owned(), v.to_owned())))
        .collect();
    let now = keel_domain::time::now_micros() / 1_000_000;
    let event = match s.app.payments.parse_webhook(&pairs, &body, now) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "payment webhook refused");
            return ApiError::invalid(StatusCode::BAD_REQUEST, "invalid_signature", "the webhook signature did not verify", None)
                .into_response();
        }
    };
    let id = event.id.clone();
    match s.app.handle_payment_webhook(event).await {
        Ok(()) => Json(serde_json::json!({ "received": true, "id": id })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
