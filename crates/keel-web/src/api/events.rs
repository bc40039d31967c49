use super::check_limit;
use crate::auth::ApiKey;
use crate::error::{ApiResult, ErrorEnvelope};
use crate::extract::QueryParams;
use crate::AppState;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use keel_app::views::{EventView, Page};
use serde::Deserialize;
use utoipa::IntoParams;

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(list)).route("/events/{id}", get(show))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventListQuery {
    /// Comma-separated types or families: `product.created,inventory.*`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub types: Option<String>,
    pub limit: Option<i64>,
    /// An event id: the page continues with later events.
    pub starting_after: Option<String>,
}

#[utoipa::path(get, path = "/events", tag = "events", params(EventListQuery),
    responses((status = 200, description = "Events in commit order, oldest first", body = Page<EventView>),
              (status = 422, body = ErrorEnvelope)))]
pub async fn list(State(s): State<AppState>, key: ApiKey, QueryParams(q): QueryParams<EventListQuery>) -> ApiResult<Json<Page<EventView>>> {
    let types: Vec<String> = q
        .types
        .as_deref()
        .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Json(key.viewer().show(s.app.list_events(&types, q.starting_after.as_deref(), check_limit(q.limit)?).await?)))
}

#[utoipa::path(get, path = "/events/{id}", tag = "events", params(("id" = String, Path)),
    responses((status = 200, body = EventView), (status = 404, body = ErrorEnvelope)))]
pub async fn show(State(s): State<AppState>, key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<EventView>> {
    Ok(Json(key.viewer().show(s.app.get_event(&id).await?)))
}
