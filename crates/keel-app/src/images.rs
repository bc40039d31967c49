//! Product images. An upload is checked (ids, alt, then the header's
//! dimensions), decoded and rendered into responsive WebP and JPEG variants
//! on the blocking pool, written to the media directory (temp file + rename),
//! and only then recorded with its event in one transaction. Files are
//! content-addressed (`{image id}/{width}-{hash}.{ext}`), so their URLs can be
//! cached forever.

use keel_imaging::{self as imaging, Rendered};
use crate::views::Page;
use crate::{in_tx, Actor, App, AppError, Result};
use keel_domain::ids::{ImageId, ProductId, VariantId};
use keel_domain::images::{self as rules, SourceFormat};
use keel_domain::time::{now_micros, to_rfc3339};
use keel_domain::Invalid;
use keel_store::catalog;
use keel_store::images::{self as db, ImageRow, ImageVariantRow};
use keel_store::{outbox, Conn};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

/// The URL prefix generated files are served under.
pub const MEDIA_PREFIX: &str = "/media";
/// A directory with no image row older than this is a leftover (an upload
/// that died between writing its files and committing, or a delete whose
/// file removal failed), never an upload still in progress.
pub const ORPHAN_AGE: Duration = Duration::from_secs(3600);

pub fn spawn_workers(app: App, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![crate::workers::spawn_every("media-sweep", Duration::from_secs(3600), shutdown, move || {
        let app = app.clone();
        async move { app.sweep_orphan_media(ORPHAN_AGE).await }
    })]
}

/// The field uploads are reported under in errors: the request body.
const BODY: &str = "body";

/// Where generated files live, and how many uploads may decode at once (a
/// maximal image takes a few hundred MB while it is processed).
#[derive(Clone)]
pub struct Media {
    root: PathBuf,
    permits: Arc<Semaphore>,
}

impl Media {
    pub fn new(root: impl Into<PathBuf>) -> Media {
        Media { root: root.into(), permits: Arc::new(Semaphore::new(2)) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind `/media/{image_id}/{file}`, if both parts are
    /// well-formed names of generated files (never a path outside the root).
    pub fn locate(&self, image_id: &str, file: &str) -> Option<(PathBuf, rules::OutputFormat, String)> {
        ImageId::parse("image_id", image_id).ok()?;
        let (_, hash, format) = rules::parse_variant_file_name(file)?;
        Some((self.root.join(image_id).join(file), format, hash.to_owned()))
    }

    /// Writes every file of a new image into its own directory, each through
    /// a temp file renamed into place after it is synced.
    fn write_files(&self, image_id: &str, files: &[(String, &[u8])]) -> std::io::Result<()> {
        let dir = self.root.join(image_id);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in files {
            let tmp = dir.join(format!(".{name}.tmp"));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, dir.join(name))?;
        }
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Image directories last modified more than `min_age` ago.
    fn directories_older_than(&self, min_age: Duration) -> std::io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if ImageId::parse("id", &name).is_err() {
                continue;
            }
            let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
            if age >= min_age {
                out.push(name);
            }
        }
        Ok(out)
    }

    fn remove_files(&self, image_id: &str) {
        let dir = self.root.join(image_id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "could not remove image files"),
        }
    }
}

/// The options of an upload (query parameters of the upload request).
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct NewImage {
    /// Text alternative, at most 1000 characters; empty for a decorative image.
    pub alt: Option<String>,
    /// The variant this image shows, if it is specific to one.
    pub variant_id: Option<String>,
    /// Display order, 0–10000; default: after the existing images.
    pub position: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageChanges {
    pub alt: Option<String>,
    pub position: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageFileView {
    /// `webp` or `jpeg`.
    pub format: String,
    pub width: i64,
    pub height: i64,
    /// Content-addressed and immutable: `/media/{image id}/{width}-{hash}.{ext}`.
    pub url: String,
    pub byte_size: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImageView {
    pub id: String,
    #[schema(example = "product_image")]
    pub object: &'static str,
    pub product_id: String,
    pub variant_id: Option<String>,
    pub position: i64,
    pub alt: String,
    /// Of the upload: `jpeg`, `png` or `webp`.
    pub format: String,
    /// Of the upload, upright.
    pub width: i64,
    pub height: i64,
    pub byte_size: i64,
    /// SHA-256 of the uploaded bytes.
    pub content_hash: String,
    /// Generated files: WebP then JPEG, each narrowest first. Never wider
    /// than the upload.
    pub variants: Vec<ImageFileView>,
    pub created_at: String,
    pub updated_at: String,
}

impl ImageView {
    pub fn from_row(r: ImageRow) -> ImageView {
        ImageView {
            id: r.id,
            object: "product_image",
            product_id: r.product_id,
            variant_id: r.variant_id,
            position: r.position,
            alt: r.alt,
            format: r.format,
            width: r.width,
            height: r.height,
            byte_size: r.byte_size,
            content_hash: r.content_hash,
            variants: r
                .variants
                .into_iter()
                .map(|v| ImageFileView {
                    format: v.format,
                    width: v.width,
                    height: v.height,
                    url: format!("{MEDIA_PREFIX}/{}", v.file),
                    byte_size: v.byte_size,
                })
                .collect(),
            created_at: to_rfc3339(r.created_at),
            updated_at: to_rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletedImageView {
    pub id: String,
    #[schema(example = "product_image")]
    pub object: &'static str,
    pub deleted: bool,
}

fn check_alt(alt: &str) -> Result<String, Invalid> {
    let alt = alt.trim();
    if alt.chars().count() > rules::MAX_ALT {
        return Err(Invalid::new("alt", "too_long", format!("must be at most {} characters", rules::MAX_ALT)));
    }
    if alt.chars().any(char::is_control) {
        return Err(Invalid::new("alt", "invalid_alt", "must not contain control characters"));
    }
    Ok(alt.to_owned())
}

fn check_position(position: Option<i64>) -> Result<(), Invalid> {
    match position {
        Some(p) if !(0..=10_000).contains(&p) => {
            Err(Invalid::new("position", "invalid_position", "must be between 0 and 10000"))
        }
        _ => Ok(()),
    }
}

fn check_product_id(id: &str) -> Result<()> {
    ProductId::parse("id", id).map(|_| ()).map_err(|_| AppError::not_found("product", id))
}

fn check_image_id(id: &str) -> Result<()> {
    ImageId::parse("image_id", id).map(|_| ()).map_err(|_| AppError::not_found("product_image", id))
}

async fn emit(conn: &mut Conn, kind: &str, product_id: &str, seq: i64, object: serde_json::Value, actor: &Actor) -> Result<()> {
    outbox::append(
        conn,
        outbox::NewEvent {
            kind,
            aggregate_type: "product",
            aggregate_id: product_id,
            aggregate_seq: seq,
            payload: json!({ "object": object, "actor": actor.0 }),
        },
    )
    .await?;
    Ok(())
}

fn rows_of(id: &str, product_id: &str, input: &NewImage, alt: &str, rendered: &Rendered, byte_size: usize, now: i64) -> ImageRow {
    let mut variants: Vec<ImageVariantRow> = rendered
        .variants
        .iter()
        .map(|v| ImageVariantRow {
            format: v.format.as_str().to_owned(),
            width: i64::from(v.width),
            height: i64::from(v.height),
            file: format!("{id}/{}", v.file_name()),
            hash: v.hash.clone(),
            byte_size: v.bytes.len() as i64,
        })
        .collect();
    // The order reads return them in: WebP before JPEG, narrowest first.
    variants.sort_by(|a, b| b.format.cmp(&a.format).then(a.width.cmp(&b.width)));
    ImageRow {
        id: id.to_owned(),
        product_id: product_id.to_owned(),
        variant_id: input.variant_id.clone(),
        position: input.position.unwrap_or(0),
        alt: alt.to_owned(),
        format: rendered.format.as_str().to_owned(),
        width: i64::from(rendered.width),
        height: i64::from(rendered.height),
        byte_size: byte_size as i64,
        content_hash: rendered.content_hash.clone(),
        original_file: format!("{id}/{}", original_name(rendered.format)),
        created_at: now,
        updated_at: now,
        variants,
    }
}

enum Processing {
    Invalid(Invalid),
    Io(std::io::Error),
}

impl From<Invalid> for Processing {
    fn from(e: Invalid) -> Self {
        Processing::Invalid(e)
    }
}

/// The upload is kept beside its variants (not served) so variants can be
/// regenerated later.
fn original_name(format: SourceFormat) -> String {
    format!("original.{}", format.extension())
}

impl App {
    /// Uploads an image of `product_id` (`product.image_created`). Bad
    /// bytes, a wrong format or dimensions over the limits are refused with
    /// a 422 naming `body` before anything is written.
    pub async fn add_product_image<B>(
        &self,
        actor: &Actor,
        product_id: &str,
        format: SourceFormat,
        body: B,
        input: NewImage,
    ) -> Result<ImageView>
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        check_product_id(product_id)?;
        let alt = check_alt(input.alt.as_deref().unwrap_or(""))?;
        if let Some(v) = &input.variant_id {
            VariantId::parse("variant_id", v)?;
        }
        check_position(input.position)?;
        let size = body.as_ref().len();
        if size == 0 {
            return Err(Invalid::new(BODY, "invalid_image", "the body is empty; send the image bytes").into());
        }
        if size > rules::MAX_UPLOAD_BYTES {
            return Err(Invalid::new(BODY, "image_too_large", format!("at most {} bytes", rules::MAX_UPLOAD_BYTES)).into());
        }
        // Cheap refusals first: unknown ids and oversized headers cost no decode.
        {
            let mut conn = self.store.reader().await?;
            catalog::get_product(&mut conn, product_id).await?.ok_or_else(|| AppError::not_found("product", product_id))?;
            if let Some(v) = &input.variant_id {
                if !db::variant_belongs(&mut conn, product_id, v).await? {
                    return Err(AppError::not_found_at("variant", v, "variant_id"));
                }
            }
        }
        imaging::probe(BODY, body.as_ref(), format)?;
        let id = ImageId::generate().to_string();
        // The permit travels with the blocking job, so an abandoned request
        // cannot let more decodes run than allowed.
        let permit = self.media.permits.clone().acquire_owned().await.map_err(|_| AppError::Contended)?;
        let (media, dir) = (self.media.clone(), id.clone());
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let rendered = imaging::render(BODY, body.as_ref(), format)?;
            let mut files: Vec<(String, &[u8])> = rendered.variants.iter().map(|v| (v.file_name(), v.bytes.as_slice())).collect();
            files.push((original_name(rendered.format), body.as_ref()));
            media.write_files(&dir, &files).map_err(Processing::Io)?;
            Ok::<_, Processing>(rendered)
        });
        let rendered = match job.await {
            Ok(Ok(r)) => r,
            Ok(Err(Processing::Invalid(e))) => return Err(e.into()),
            Ok(Err(Processing::Io(e))) => {
                tracing::error!(error = %e, root = %self.media.root.display(), "could not write image files");
                self.remove_media(&id).await;
                return Err(keel_store::StoreError::Io(e.to_string()).into());
            }
            Err(_) => {
                self.remove_media(&id).await;
                return Err(Invalid::new(BODY, "invalid_image", "the image could not be processed").into());
            }
        };
        let outcome = in_tx!(self, |tx| {
            let now = now_micros();
            let seq = db::touch_product(&mut tx, product_id, now)
                .await?
                .ok_or_else(|| AppError::not_found("product", product_id))?;
            if let Some(v) = &input.variant_id {
                if !db::variant_belongs(&mut tx, product_id, v).await? {
                    return Err(AppError::not_found_at("variant", v, "variant_id"));
                }
            }
            let mut row = rows_of(&id, product_id, &input, &alt, &rendered, size, now);
            row.position = match input.position {
                Some(p) => p,
                None => db::count_for_product(&mut tx, product_id).await?,
            };
            db::insert_image(&mut tx, &row).await?;
            let view = ImageView::from_row(row);
            emit(&mut tx, "product.image_created", product_id, seq, json!(view), actor).await?;
            Ok(view)
        });
        if outcome.is_err() {
            self.remove_media(&id).await;
        }
        outcome
    }

    async fn remove_media(&self, image_id: &str) {
        let media = self.media.clone();
        let id = image_id.to_owned();
        let _ = tokio::task::spawn_blocking(move || media.remove_files(&id)).await;
    }

    /// Removes image directories older than `min_age` that no image row
    /// refers to; returns how many.
    pub async fn sweep_orphan_media(&self, min_age: Duration) -> Result<u64> {
        let media = self.media.clone();
        let candidates = tokio::task::spawn_blocking(move || media.directories_older_than(min_age))
            .await
            .map_err(|_| keel_store::StoreError::Io("media sweep stopped".into()))?
            .map_err(|e| keel_store::StoreError::Io(e.to_string()))?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let known: std::collections::HashSet<String> = {
            let mut conn = self.store.reader().await?;
            db::existing_ids(&mut conn, &candidates).await?.into_iter().collect()
        };
        let mut removed = 0;
        for id in candidates.into_iter().filter(|id| !known.contains(id)) {
            self.remove_media(&id).await;
            removed += 1;
        }
        Ok(removed)
    }

    /// The images of a product in display order.
    pub async fn product_images(&self, product_id: &str) -> Result<Page<ImageView>> {
        check_product_id(product_id)?;
        let mut conn = self.store.reader().await?;
        catalog::get_product(&mut conn, product_id).await?.ok_or_else(|| AppError::not_found("product", product_id))?;
        let rows = db::images_of(&mut conn, &[product_id.to_owned()]).await?.remove(product_id).unwrap_or_default();
        Ok(Page { object: "list", data: rows.into_iter().map(ImageView::from_row).collect(), has_more: false })
    }

    /// The images of many products (a listing page) in two queries, keyed
    /// by product id; products without images are absent.
    pub async fn images_for_products(&self, product_ids: &[String]) -> Result<HashMap<String, Vec<ImageView>>> {
        let mut conn = self.store.reader().await?;
        let rows = db::images_of(&mut conn, product_ids).await?;
        Ok(rows.into_iter().map(|(k, v)| (k, v.into_iter().map(ImageView::from_row).collect())).collect())
    }

    /// Changes alt text or position (`product.image_updated`).
    pub async fn update_product_image(
        &self,
        actor: &Actor,
        product_id: &str,
        image_id: &str,
        changes: ImageChanges,
    ) -> Result<ImageView> {
        check_product_id(product_id)?;
        check_image_id(image_id)?;
        let alt = changes.alt.as_deref().map(check_alt).transpose()?;
        check_position(changes.position)?;
        in_tx!(self, |tx| {
            let now = now_micros();
            let seq = db::touch_product(&mut tx, product_id, now)
                .await?
                .ok_or_else(|| AppError::not_found("product", product_id))?;
            let mut row = db::get_image(&mut tx, product_id, image_id)
                .await?
                .ok_or_else(|| AppError::not_found("product_image", image_id))?;
            if let Some(a) = &alt {
                row.alt = a.clone();
            }
            if let Some(p) = changes.position {
                row.position = p;
            }
            row.updated_at = now;
            db::update_image(&mut tx, &row).await?;
            let view = ImageView::from_row(row);
            emit(&mut tx, "product.image_updated", product_id, seq, json!(view), actor).await?;
            Ok(view)
        })
    }

    /// Removes an image (`product.image_deleted`), then its files.
    pub async fn delete_product_image(&self, actor: &Actor, product_id: &str, image_id: &str) -> Result<DeletedImageView> {
        check_product_id(product_id)?;
        check_image_id(image_id)?;
        in_tx!(self, |tx| {
            let seq = db::touch_product(&mut tx, product_id, now_micros())
                .await?
                .ok_or_else(|| AppError::not_found("product", product_id))?;
            let row = db::get_image(&mut tx, product_id, image_id)
                .await?
                .ok_or_else(|| AppError::not_found("product_image", image_id))?;
            db::delete_image(&mut tx, image_id).await?;
            let object = json!({ "id": row.id, "object": "product_image", "product_id": row.product_id });
            emit(&mut tx, "product.image_deleted", product_id, seq, object, actor).await?;
            Ok(())
        })?;
        // Files go only after the commit: a failed delete leaves a working image.
        self.remove_media(image_id).await;
        Ok(DeletedImageView { id: image_id.to_owned(), object: "product_image", deleted: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_paths_are_strict() {
        let m = Media::new("/srv/media");
        let id = ImageId::generate().to_string();
        let (path, format, hash) = m.locate(&id, "640-0123456789abcdef.webp").unwrap();
        assert_eq!(path, PathBuf::from(format!("/srv/media/{id}/640-0123456789abcdef.webp")));
        assert_eq!((format, hash.as_str()), (rules::OutputFormat::Webp, "0123456789abcdef"));
        assert!(m.locate("..", "640-0123456789abcdef.webp").is_none());
        assert!(m.locate(&id, "original.png").is_none());
        assert!(m.locate(&id, "..%2F640-0123456789abcdef.webp").is_none());
        assert!(m.locate("img_../../etc", "640-0123456789abcdef.webp").is_none());
    }

    #[test]
    fn alt_text_is_bounded() {
        assert_eq!(check_alt("  A red mug  ").unwrap(), "A red mug");
        assert_eq!(check_alt(&"x".repeat(1001)).unwrap_err().code, "too_long");
        assert_eq!(check_alt("a\u{0}b").unwrap_err().code, "invalid_alt");
        assert_eq!(check_position(Some(-1)).unwrap_err().field, "position");
    }
}
