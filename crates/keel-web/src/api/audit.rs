//! `GET /audit-log`: the append-only record of writes, newest first.

use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::QueryParams;
use crate::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use keel_app::audit::{AuditEntryView, AuditQuery};
use keel_app::views::Page;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

pub fn router() -> Router<AppState> {
    Router::new().route("/audit-log", get(list))
}

#[derive(OpenApi)]
#[openapi(paths(list))]
pub struct Doc;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditListQuery {
    /// `api_key:key_…`
    pub actor: Option<String>,
    /// Method and route: `POST /api/v1/products/{id}`.
    pub action: Option<String>,
    /// A resource id.
    pub target: Option<String>,
    /// Actions containing this text (ASCII case ignored): `webhook`.
    pub action_contains: Option<String>,
    /// RFC 3339: entries at or after this time.
    pub since: Option<String>,
    /// RFC 3339: entries before this time.
    pub until: Option<String>,
    /// 1–100, default 10.
    pub limit: Option<i64>,
    /// An entry id: the page continues with older entries.
    pub starting_after: Option<String>,
}

#[utoipa::path(get, path = "/audit-log", tag = "audit", params(AuditListQuery),
    responses((status = 200, description = "Audit entries, newest first", body = Page<AuditEntryView>),
              (status = 422, body = ErrorEnvelope)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<AuditListQuery>) -> ApiResult<Json<Page<AuditEntryView>>> {
    let query = AuditQuery {
        limit: check_limit(q.limit)?,
        actor: q.actor,
        action: q.action,
        target: q.target,
        action_contains: q.action_contains,
        since: q.since,
        until: q.until,
        starting_after: q.starting_after,
    };
    Ok(Json(s.app.list_audit_log(&query).await?))
}
