//! A product's images: upload (a multipart form), alt text, delete.

use super::edit::{refused, Edits};
use super::product_path;
use crate::admin::{error_page, flash, not_found, StaffForm, StaffUpload, UploadedFile, MAX_UPLOAD};
use crate::storefront::form::Errors;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use keel_app::images::{ImageChanges, NewImage};
use keel_app::AppError;
use keel_domain::images::SourceFormat;

pub async fn upload(State(state): State<AppState>, Path(product_id): Path<String>, StaffUpload { staff, form, file }: StaffUpload) -> Response {
    let alt = form.get("alt").to_owned();
    let mut errors = Errors::default();
    let (format, bytes, status) = match file {
        UploadedFile::Missing => {
            errors.add("file", "Choose an image file to upload");
            (None, Vec::new(), StatusCode::UNPROCESSABLE_ENTITY)
        }
        UploadedFile::TooLarge => {
            errors.add("file", format!("The file is larger than {} MiB: choose a smaller image", MAX_UPLOAD / (1024 * 1024)));
            (None, Vec::new(), StatusCode::PAYLOAD_TOO_LARGE)
        }
        // What the bytes are, not what the browser says they are.
        UploadedFile::File { bytes, .. } => match SourceFormat::sniff(&bytes) {
            Some(f) => (Some(f), bytes, StatusCode::OK),
            None => {
                errors.add("file", "The file is not a JPEG, PNG or WebP image");
                (None, Vec::new(), StatusCode::UNPROCESSABLE_ENTITY)
            }
        },
    };
    let Some(format) = format else {
        return refused(&state, &staff, &product_id, Edits { upload_alt: alt, errors, ..Default::default() }, status).await;
    };
    let input = NewImage { alt: Some(alt.clone()), variant_id: None, position: None };
    match state.app.add_product_image(&staff.actor(), &product_id, format, bytes, input).await {
        Ok(_) => flash(&state, &product_path(&product_id), "Image uploaded."),
        Err(AppError::NotFound { .. }) => not_found("product"),
        Err(AppError::Invalid(i)) => {
            let (field, message) = match i.field.as_str() {
                "alt" => ("alt", format!("Alt text {}", i.message)),
                _ => ("file", format!("The image was refused: {}", i.message)),
            };
            errors.add(field, message);
            refused(&state, &staff, &product_id, Edits { upload_alt: alt, errors, ..Default::default() }, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => error_page(&e),
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path((product_id, image_id)): Path<(String, String)>,
    StaffForm { staff, form }: StaffForm,
) -> Response {
    let alt = form.get("alt").to_owned();
    let changes = ImageChanges { alt: Some(alt.clone()), position: None };
    match state.app.update_product_image(&staff.actor(), &product_id, &image_id, changes).await {
        Ok(_) => flash(&state, &product_path(&product_id), "Alt text saved."),
        Err(AppError::NotFound { resource: "product", .. }) => not_found("product"),
        Err(AppError::NotFound { .. }) => not_found("image"),
        Err(AppError::Invalid(i)) => {
            let mut errors = Errors::default();
            errors.add("image_alt", format!("Alt text {}", i.message));
            let edits = Edits { image_alt: Some((image_id, alt)), errors, ..Default::default() };
            refused(&state, &staff, &product_id, edits, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => error_page(&e),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Path((product_id, image_id)): Path<(String, String)>,
    StaffForm { staff, .. }: StaffForm,
) -> Response {
    match state.app.delete_product_image(&staff.actor(), &product_id, &image_id).await {
        Ok(_) => flash(&state, &product_path(&product_id), "Image deleted."),
        Err(AppError::NotFound { resource: "product", .. }) => not_found("product"),
        Err(AppError::NotFound { .. }) => not_found("image"),
        Err(e) => error_page(&e),
    }
}
