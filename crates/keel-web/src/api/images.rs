//! Product images: upload (the raw image as the body), list, change, delete.

use crate::auth::ApiKey;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{JsonBody, QueryParams};
use crate::AppState;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use keel_app::images::{DeletedImageView, ImageChanges, ImageView, NewImage};
use keel_app::views::Page;
use keel_domain::images::{SourceFormat, MAX_UPLOAD_BYTES};
use utoipa::OpenApi;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products/{id}/images", post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)).get(list))
        .route("/products/{id}/images/{image_id}", post(update).delete(remove))
        .route("/products/{id}/images/{image_id}/delete", post(remove_action))
}

#[derive(OpenApi)]
#[openapi(paths(upload, list, update, remove, remove_action), components(schemas(ImageView, DeletedImageView, ImageChanges)))]
pub struct Doc;

/// The largest body a request to `path` may carry, for middleware that
/// buffers bodies before routing (idempotency).
pub fn body_limit(path: &str, default: usize) -> usize {
    let p = path.strip_prefix("/api/v1").unwrap_or(path);
    let upload = p
        .strip_prefix("/products/")
        .and_then(|rest| rest.strip_suffix("/images"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    if upload {
        MAX_UPLOAD_BYTES
    } else {
        default
    }
}

/// The raw upload; over [`MAX_UPLOAD_BYTES`] is a 413 in the API's shape.
pub struct ImageBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ImageBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(ImageBody).map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::invalid(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("images are limited to {MAX_UPLOAD_BYTES} bytes"),
                    Some("body".into()),
                )
            } else {
                ApiError::invalid(StatusCode::BAD_REQUEST, "invalid_body", "the body could not be read", None)
            }
        })
    }
}

fn source_format(headers: &HeaderMap) -> Result<SourceFormat, ApiError> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(SourceFormat::from_content_type)
        .ok_or_else(|| {
            ApiError::invalid(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the image as the body with Content-Type image/jpeg, image/png or image/webp",
                Some("Content-Type".into()),
            )
        })
}

/// Upload an image: the body is the image itself (JPEG, PNG or WebP, at most
/// 20 MiB, 10000 px a side and 40 megapixels). Keel stores it and generates
/// WebP and JPEG copies 320, 640, 960 and 1440 px wide (never wider than
/// the upload) under content-addressed `/media/…` URLs.
#[utoipa::path(post, path = "/products/{id}/images", tag = "catalog", params(("id" = String, Path), NewImage),
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "The image bytes: image/jpeg, image/png or image/webp"),
    responses((status = 201, body = ImageView), (status = 404, body = ErrorEnvelope),
              (status = 413, description = "body_too_large", body = ErrorEnvelope),
              (status = 415, description = "unsupported_media_type", body = ErrorEnvelope),
              (status = 422, description = "invalid_image, image_too_large, or an invalid parameter", body = ErrorEnvelope)))]
pub async fn upload(
    State(s): State<AppState>,
    key: ApiKey,
    Path(id): Path<String>,
    QueryParams(q): QueryParams<NewImage>,
    headers: HeaderMap,
    ImageBody(body): ImageBody,
) -> ApiResult<(StatusCode, Json<ImageView>)> {
    let format = source_format(&headers)?;
    Ok((StatusCode::CREATED, Json(s.app.add_product_image(&key.actor(), &id, format, body, q).await?)))
}

#[utoipa::path(get, path = "/products/{id}/images", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, body = Page<ImageView>), (status = 404, body = ErrorEnvelope)))]
pub async fn list(State(s): State<AppState>, _key: ApiKey, Path(id): Path<String>) -> ApiResult<Json<Page<ImageView>>> {
    Ok(Json(s.app.product_images(&id).await?))
}

#[utoipa::path(post, path = "/products/{id}/images/{image_id}", tag = "catalog",
    params(("id" = String, Path), ("image_id" = String, Path)), request_body = ImageChanges,
    responses((status = 200, body = ImageView), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope)))]
pub async fn update(
    State(s): State<AppState>,
    key: ApiKey,
    Path((id, image_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<ImageChanges>,
) -> ApiResult<Json<ImageView>> {
    Ok(Json(s.app.update_product_image(&key.actor(), &id, &image_id, input).await?))
}

/// Removes the image and its files.
#[utoipa::path(delete, path = "/products/{id}/images/{image_id}", tag = "catalog",
    params(("id" = String, Path), ("image_id" = String, Path)),
    responses((status = 200, body = DeletedImageView), (status = 404, body = ErrorEnvelope)))]
pub async fn remove(
    State(s): State<AppState>,
    key: ApiKey,
    Path((id, image_id)): Path<(String, String)>,
) -> ApiResult<Json<DeletedImageView>> {
    Ok(Json(s.app.delete_product_image(&key.actor(), &id, &image_id).await?))
}

/// The same as `DELETE /products/{id}/images/{image_id}`, as a POST action
/// (so it can carry an `Idempotency-Key`).
#[utoipa::path(post, path = "/products/{id}/images/{image_id}/delete", tag = "catalog",
    params(("id" = String, Path), ("image_id" = String, Path)),
    responses((status = 200, body = DeletedImageView), (status = 404, body = ErrorEnvelope)))]
pub async fn remove_action(
    State(s): State<AppState>,
    key: ApiKey,
    Path((id, image_id)): Path<(String, String)>,
) -> ApiResult<Json<DeletedImageView>> {
    Ok(Json(s.app.delete_product_image(&key.actor(), &id, &image_id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uploads_get_the_large_limit() {
        assert_eq!(body_limit("/products/prod_1/images", 10), MAX_UPLOAD_BYTES);
        assert_eq!(body_limit("/api/v1/products/prod_1/images", 10), MAX_UPLOAD_BYTES);
        assert_eq!(body_limit("/products/prod_1/images/img_1", 10), 10);
        assert_eq!(body_limit("/products//images", 10), 10);
        assert_eq!(body_limit("/products/a/b/images", 10), 10);
        assert_eq!(body_limit("/carts", 10), 10);
    }
}
