//! `/api-keys`: secret keys scoped to a role, and publishable storefront
//! keys. The secret is in the create response only; lists never show it. A
//! key can only create or revoke keys whose role its own role may grant.

use super::{check_limit, ListQuery};
use crate::auth::ApiKey;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use keel_app::apikeys::{KeyScope, NewApiKey, MAX_EXPIRY_DAYS};
use keel_app::views::Page;
use keel_domain::access::Role;
use keel_domain::Invalid;
use keel_domain::time::{now_micros, to_rfc3339};
use keel_store::apikeys::ApiKeyRow;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new().route("/api-keys", post(create).get(list)).route("/api-keys/{id}/revoke", post(revoke))
}

#[derive(OpenApi)]
#[openapi(paths(create, list, revoke))]
pub struct Doc;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// `secret` (the default: `keel_sk_…`, with a role) or `publishable`
    /// (`keel_pk_…`, safe in a browser: catalog reads, carts and checkout;
    /// limited per client address).
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: Option<String>,
    /// Secret keys: a staff role: owner, admin, catalog_manager,
    /// inventory_manager, fulfillment, support_agent or analyst.
    pub role: Option<String>,
    /// 1–3650; omitted: the key does not expire.
    pub expires_in_days: Option<i64>,
    /// Secret keys: requests per minute, 1–1000000; omitted: the default
    /// (6000 unless `KEEL_RATE_LIMIT_API_PER_MIN` says otherwise).
    pub rate_limit_per_min: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    #[schema(example = "api_key")]
    pub object: &'static str,
    pub id: String,
    pub name: String,
    /// `secret` or `publishable`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    /// Secret keys' role; `null` for publishable keys.
    pub role: Option<String>,
    /// Secret keys' own limit; `null`: the default.
    pub rate_limit_per_min: Option<i64>,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub created_by: Option<String>,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// Only in the response that created the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(k: ApiKeyRow) -> Self {
        ApiKeyView {
            object: "api_key",
            id: k.id,
            name: k.name,
            role: (k.kind != "publishable").then_some(k.role),
            kind: k.kind,
            rate_limit_per_min: k.rate_limit_per_min,
            prefix: k.prefix,
            created_at: to_rfc3339(k.created_at),
            created_by: k.created_by,
            last_used_at: k.last_used_at.map(to_rfc3339),
            expires_at: k.expires_at.map(to_rfc3339),
            revoked_at: k.revoked_at.map(to_rfc3339),
            secret: None,
        }
    }
}

#[utoipa::path(post, path = "/api-keys", tag = "access", request_body = CreateApiKey,
    responses((status = 201, body = ApiKeyView), (status = 403, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn create(State(s): State<AppState>, key: ApiKey, JsonBody(input): JsonBody<CreateApiKey>) -> ApiResult<(StatusCode, Json<ApiKeyView>)> {
    let scope = match (input.kind.as_deref().unwrap_or("secret"), input.role.as_deref()) {
        ("secret", Some(role)) => KeyScope::Role(Role::parse("role", role).map_err(keel_app::AppError::from)?),
        ("secret", None) => return Err(keel_app::AppError::from(Invalid::new("role", "required", "a secret key needs a role")).into()),
        ("publishable", None) => KeyScope::Storefront,
        ("publishable", Some(_)) => {
            return Err(keel_app::AppError::from(Invalid::new("role", "not_allowed", "a publishable key has no role: it may read the catalog and use carts and checkout")).into())
        }
        _ => return Err(keel_app::AppError::from(Invalid::new("type", "invalid_value", "must be secret or publishable")).into()),
    };
    let expires_at = match input.expires_in_days {
        None => None,
        Some(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => Some(now_micros() + d * 86_400_000_000),
        Some(_) => {
            return Err(ApiError::invalid(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_expiry",
                format!("expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}"),
                Some("expires_in_days".into()),
            ))
        }
    };
    let new = NewApiKey {
        name: input.name,
        scope,
        expires_at,
        rate_limit_per_min: input.rate_limit_per_min,
        created_by: Some(key.0.key_id.clone()),
        creator_role: key.role()?,
    };
    let (row, secret) = s.app.create_scoped_api_key(new).await?;
    let mut view = ApiKeyView::from(row);
    view.secret = Some(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/api-keys", tag = "access", params(ListQuery), responses((status = 200, body = Page<ApiKeyView>)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<ListQuery>) -> ApiResult<Json<Page<ApiKeyView>>> {
    let limit = check_limit(q.limit)?.unwrap_or(10);
    let rows = s.app.list_api_keys(limit + 1, q.starting_after.as_deref()).await?;
    Ok(Json(Page::from_overfetch(rows.into_iter().map(ApiKeyView::from).collect(), limit)))
}

#[utoipa::path(post, path = "/api-keys/{id}/revoke", tag = "access", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn revoke(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<ApiKeyView>> {
    let row = s.app.revoke_api_key(&id, key.role()?).await?;
    s.keys.evict(&row.id);
    Ok(Json(ApiKeyView::from(row)))
}
