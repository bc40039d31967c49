use keel_domain::Invalid;
use keel_store::StoreError;

/// Errors of a use case. The web layer maps each to a status and a stable
/// code; `Store` errors are internal and never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no such {resource}: {id}")]
    NotFound { resource: &'static str, id: String, param: Option<String> },
    #[error("{message}")]
    Conflict { code: &'static str, message: String, param: Option<String> },
    /// Not final: the request's effect is still being settled (by this or a
    /// recovering process), so the client should send it again shortly
    /// (HTTP 409 with `Retry-After`). Never stored as an idempotent answer.
    #[error("{message}")]
    InProgress { code: &'static str, message: String, param: Option<String> },
    /// The payment provider refused the payment (HTTP 402).
    #[error("payment declined ({code}): {message}")]
    PaymentDeclined { code: String, decline_code: Option<String>, message: String },
    /// The caller is known but its role does not allow this (HTTP 403).
    #[error("{message}")]
    Forbidden { message: String },
    /// A sign-in or second-factor code was wrong (HTTP 401); deliberately
    /// says nothing about which part.
    #[error("invalid credentials")]
    BadCredentials,
    /// Too many failed sign-ins; try again after this many seconds (HTTP 429).
    #[error("too many attempts; retry in {retry_after_secs}s")]
    TooManyAttempts { retry_after_secs: u64 },
    /// A concurrent writer changed what this use case read; the transaction
    /// is retried from the start.
    #[error("concurrent change; retry")]
    Contended,
    #[error("storage failure")]
    Store(#[from] StoreError),
}

impl From<sqlx_error::Error> for AppError {
    fn from(e: sqlx_error::Error) -> Self {
        AppError::Store(StoreError::Db(e))
    }
}

/// Re-export so `?` works on raw sqlx errors (commit, rollback).
mod sqlx_error {
    pub use keel_store::SqlxError as Error;
}

impl AppError {
    pub fn is_transient(&self) -> bool {
        match self {
            AppError::Contended => true,
            AppError::Store(e) => e.is_transient(),
            _ => false,
        }
    }

    /// The database as a whole is out of service (full, unreachable, busy):
    /// callers answer "come back later" rather than "internal error".
    pub fn outage(&self) -> Option<keel_store::Outage> {
        match self {
            AppError::Store(e) => e.outage(),
            _ => None,
        }
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        AppError::NotFound { resource, id: id.into(), param: None }
    }

    pub fn not_found_at(resource: &'static str, id: impl Into<String>, param: impl Into<String>) -> Self {
        AppError::NotFound { resource, id: id.into(), param: Some(param.into()) }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>, param: Option<&str>) -> Self {
        AppError::Conflict { code, message: message.into(), param: param.map(str::to_owned) }
    }
}
