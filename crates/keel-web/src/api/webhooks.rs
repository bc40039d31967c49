//! Outbound webhook endpoints, their secrets, messages and attempts, and
//! replay (retry one message, recover an endpoint's failed messages).

use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keel_app::views::Page;
use keel_app::webhooks::{
    NewWebhookEndpoint, RecoverInput, WebhookAttemptView, WebhookEndpointChanges, WebhookEndpointView, WebhookMessageView,
    WebhookRecoveryView, WebhookSecretView,
};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhook-endpoints", post(create).get(list))
        .route("/webhook-endpoints/{id}", get(show).post(update))
        .route("/webhook-endpoints/{id}/secret", get(secret))
        .route("/webhook-endpoints/{id}/rotate-secret", post(rotate_secret))
        .route("/webhook-endpoints/{id}/messages", get(messages))
        .route("/webhook-endpoints/{id}/recover", post(recover))
        .route("/webhook-messages/{id}", get(message))
        .route("/webhook-messages/{id}/retry", post(retry))
}

#[derive(OpenApi)]
#[openapi(
    paths(create, list, show, update, secret, rotate_secret, messages, recover, message, retry),
    components(schemas(WebhookAttemptView))
)]
pub struct Doc;

#[utoipa::path(post, path = "/webhook-endpoints", tag = "webhooks", request_body = NewWebhookEndpoint,
    responses((status = 201, description = "The endpoint, with its new `secret` (shown only here and by `GET …/secret`)", body = WebhookEndpointView),
              (status = 422, description = "invalid field; `url_not_allowed` on `url` for a scheme other than http(s), credentials in the URL, or a target that is not public (loopback, private, link-local or metadata, CGNAT, IPv6 unique-local, addresses embedding those, `localhost`, or a name resolving to any of them)", body = ErrorEnvelope)))]
pub async fn create(
    State(s): State<AppState>,
    key: ApiKey,
    JsonBody(input): JsonBody<NewWebhookEndpoint>,
) -> ApiResult<(StatusCode, Json<WebhookEndpointView>)> {
    Ok((StatusCode::CREATED, Json(s.app.create_webhook_endpoint(&key.actor(), input).await?)))
}

#[utoipa::path(get, path = "/webhook-endpoints", tag = "webhooks", params(super::ListQuery),
    responses((status = 200, description = "Newest first", body = Page<WebhookEndpointView>)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, QueryParams(q): QueryParams<super::ListQuery>) -> ApiResult<Json<Page<WebhookEndpointView>>> {
    Ok(Json(s.app.list_webhook_endpoints(q.starting_after.as_deref(), check_limit(q.limit)?).await?))
}

#[utoipa::path(get, path = "/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookEndpointView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<WebhookEndpointView>> {
    Ok(Json(s.app.get_webhook_endpoint(&id).await?))
}

#[utoipa::path(post, path = "/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)), request_body = WebhookEndpointChanges,
    responses((status = 200, body = WebhookEndpointView), (status = 404, body = ErrorEnvelope),
              (status = 422, description = "invalid field; `url_not_allowed` on `url` as when creating", body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<WebhookEndpointChanges>,
) -> ApiResult<Json<WebhookEndpointView>> {
    Ok(Json(s.app.update_webhook_endpoint(&key.actor(), &id, input).await?))
}

#[utoipa::path(get, path = "/webhook-endpoints/{id}/secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "The current signing secret", body = WebhookSecretView), (status = 404, body = ErrorEnvelope)))]
pub async fn secret(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<WebhookSecretView>> {
    Ok(Json(s.app.reveal_webhook_secret(&id).await?))
}

#[utoipa::path(post, path = "/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "The new secret; the previous one keeps signing beside it for 24 hours (two `v1,` signatures)", body = WebhookSecretView),
              (status = 404, body = ErrorEnvelope)))]
pub async fn rotate_secret(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<WebhookSecretView>> {
    Ok(Json(s.app.rotate_webhook_secret(&key.actor(), &id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessageListQuery {
    /// `pending`, `succeeded` or `failed` (dead-lettered).
    pub status: Option<String>,
    /// 1–100, default 10.
    pub limit: Option<i64>,
    /// A message id: the page starts after it.
    pub starting_after: Option<String>,
}

#[utoipa::path(get, path = "/webhook-endpoints/{id}/messages", tag = "webhooks", params(("id" = String, Path), MessageListQuery),
    responses((status = 200, description = "The endpoint's delivery log, newest first, each message with its attempts", body = Page<WebhookMessageView>),
              (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn messages(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<MessageListQuery>,
) -> ApiResult<Json<Page<WebhookMessageView>>> {
    let limit = check_limit(q.limit)?;
    Ok(Json(key.viewer().show(s.app.list_webhook_messages(&id, q.status.as_deref(), q.starting_after.as_deref(), limit).await?)))
}

#[utoipa::path(post, path = "/webhook-endpoints/{id}/recover", tag = "webhooks", params(("id" = String, Path)), request_body = RecoverInput,
    responses((status = 200, description = "Failed messages since then are sent again", body = WebhookRecoveryView),
              (status = 404, body = ErrorEnvelope), (status = 409, description = "webhook_endpoint_disabled", body = ErrorEnvelope),
              (status = 422, body = ErrorEnvelope)))]
pub async fn recover(
    State(s): State<AppState>,
    _key: ApiKey,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<RecoverInput>,
) -> ApiResult<Json<WebhookRecoveryView>> {
    Ok(Json(s.app.recover_webhook_endpoint(&id, input).await?))
}

#[utoipa::path(get, path = "/webhook-messages/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "The message with every attempt", body = WebhookMessageView), (status = 404, body = ErrorEnvelope)))]
pub async fn message(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<WebhookMessageView>> {
    Ok(Json(key.viewer().show(s.app.get_webhook_message(&id).await?)))
}

#[utoipa::path(post, path = "/webhook-messages/{id}/retry", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "Scheduled now, with the same `webhook-id`", body = WebhookMessageView),
              (status = 404, body = ErrorEnvelope), (status = 409, description = "webhook_endpoint_disabled", body = ErrorEnvelope)))]
pub async fn retry(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<WebhookMessageView>> {
    Ok(Json(key.viewer().show(s.app.retry_webhook_message(&id).await?)))
}
