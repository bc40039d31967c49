//! The one error shape of the API: `{"error":{"type","code","message","param"}}`.
//! Every failure a client can see is built here; internal causes are logged
//! once and answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keel_app::AppError;
use keel_app::Outage;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `rate_limit_error`, `idempotency_error` or `api_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Stable machine-readable code, e.g. `insufficient_stock`.
    pub code: String,
    pub message: String,
    /// The request field at fault, as a path like `lines[0].sku`.
    pub param: Option<String>,
    /// For declined payments: the issuer's reason, e.g. `insufficient_funds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds for a `Retry-After` header; 0 for none. (A `u16` keeps the
    /// error small: it fits beside the status.)
    pub retry_after: u16,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status, body: ErrorBody { kind, code: code.into(), message: message.into(), param: None, decline_code: None }, retry_after: 0 }
    }

    pub fn invalid(status: StatusCode, code: impl Into<String>, message: impl Into<String>, param: Option<String>) -> Self {
        let mut e = ApiError::new(status, "invalid_request_error", code, message);
        e.body.param = param;
        e
    }

    pub fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", "unauthorized", message)
    }

    /// The caller is authenticated but its role lacks the permission.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "permission_error", "forbidden", message)
    }

    /// 429 with `Retry-After` (seconds).
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "too_many_attempts",
            "too many failed attempts; retry later",
        );
        e.retry_after = retry_after_secs.clamp(1, u16::MAX as u64) as u16;
        e
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", "resource_missing", message)
    }

    /// The database is full, unreachable or saturated: 507 or 503 with a
    /// `Retry-After`, never a 500 — nothing was written, and a retry later
    /// can succeed. Logged here, once, for every front door.
    pub fn outage(outage: Outage, cause: &dyn std::error::Error) -> Self {
        let (status, code, message, retry) = outage_answer(outage);
        tracing::warn!(error = %cause, cause = ?cause.source(), code, "database outage");
        let mut e = ApiError::new(status, "api_error", code, message);
        e.retry_after = retry;
        e
    }

    pub fn internal() -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "internal_error", "an internal error occurred; it has been logged")
    }
}

/// Status, code, message and `Retry-After` seconds for each kind of outage,
/// shared by the API and the HTML pages.
pub fn outage_answer(outage: Outage) -> (StatusCode, &'static str, &'static str, u16) {
    match outage {
        Outage::StorageFull => (
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the database has no space left; nothing was saved, retry later",
            30,
        ),
        Outage::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; nothing was saved, retry shortly",
            5,
        ),
        Outage::Busy => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", "the service is busy; retry shortly", 1),
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Invalid(i) => ApiError::invalid(StatusCode::UNPROCESSABLE_ENTITY, i.code, i.message, Some(i.field)),
            AppError::NotFound { resource, id, param } => {
                let mut e = ApiError::not_found(format!("no such {resource}: `{id}`"));
                e.body.param = param;
                e
            }
            AppError::Conflict { code, message, param } => {
                ApiError::invalid(StatusCode::CONFLICT, code, message, param)
            }
            AppError::InProgress { code, message, param } => {
                let mut e = ApiError::invalid(StatusCode::CONFLICT, code, message, param);
                e.retry_after = 1;
                e
            }
            AppError::PaymentDeclined { code, decline_code, message } => {
                let mut e = ApiError::new(StatusCode::PAYMENT_REQUIRED, "card_error", code, message);
                e.body.param = Some("payment_method".into());
                e.body.decline_code = decline_code;
                e
            }
            AppError::BadCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid_credentials",
                "the email, password or code is not correct",
            ),
            AppError::Forbidden { message } => ApiError::forbidden(message),
            AppError::TooManyAttempts { retry_after_secs } => ApiError::too_many_attempts(retry_after_secs),
            AppError::Contended => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "concurrent_update",
                "the resource changed concurrently; retry the request",
            ),
            AppError::Store(err) => match err.outage() {
                Some(outage) => ApiError::outage(outage, &err),
                None => {
                    tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "storage error");
                    ApiError::internal()
                }
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(ErrorEnvelope { error: self.body })).into_response();
        res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
        if self.retry_after > 0 {
            res.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(self.retry_after));
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
