//! Product images and their generated variants (the files themselves live
//! in the media directory; these rows say which exist and where).

use crate::batch::Batch;
use crate::Result;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: String,
    pub product_id: String,
    pub variant_id: Option<String>,
    pub position: i64,
    pub alt: String,
    pub format: String,
    pub width: i64,
    pub height: i64,
    pub byte_size: i64,
    pub content_hash: String,
    pub original_file: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Generated files, by format then width.
    pub variants: Vec<ImageVariantRow>,
}

#[derive(Debug, Clone)]
pub struct ImageVariantRow {
    pub format: String,
    pub width: i64,
    pub height: i64,
    /// Relative to the media directory: `{image id}/{width}-{hash}.{ext}`.
    pub file: String,
    pub hash: String,
    pub byte_size: i64,
}

const IMAGE_COLUMNS: &str = "id, product_id, variant_id, position, alt, format, width, height, byte_size, content_hash, \
     original_file, created_at, updated_at";

fn image_from_row(r: &AnyRow) -> Result<ImageRow> {
    Ok(ImageRow {
        id: r.try_get("id")?,
        product_id: r.try_get("product_id")?,
        variant_id: r.try_get("variant_id")?,
        position: r.try_get("position")?,
        alt: r.try_get("alt")?,
        format: r.try_get("format")?,
        width: r.try_get("width")?,
        height: r.try_get("height")?,
        byte_size: r.try_get("byte_size")?,
        content_hash: r.try_get("content_hash")?,
        original_file: r.try_get("original_file")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        variants: Vec::new(),
    })
}

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Inserts an image and all its variants in one round trip.
pub async fn insert_image(conn: &mut AnyConnection, img: &ImageRow) -> Result<()> {
    let mut batch = Batch::new();
    batch.push(
        format!("INSERT INTO product_images ({IMAGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
        vec![
            (&img.id).into(),
            (&img.product_id).into(),
            (&img.variant_id).into(),
            img.position.into(),
            (&img.alt).into(),
            (&img.format).into(),
            img.width.into(),
            img.height.into(),
            img.byte_size.into(),
            (&img.content_hash).into(),
            (&img.original_file).into(),
            img.created_at.into(),
            img.updated_at.into(),
        ],
    );
    for v in &img.variants {
        batch.push(
            "INSERT INTO product_image_variants (image_id, format, width, height, file, hash, byte_size) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                (&img.id).into(),
                (&v.format).into(),
                v.width.into(),
                v.height.into(),
                (&v.file).into(),
                (&v.hash).into(),
                v.byte_size.into(),
            ],
        );
    }
    batch.run(conn).await
}

/// Changes alt text and position.
pub async fn update_image(conn: &mut AnyConnection, img: &ImageRow) -> Result<()> {
    sqlx::query("UPDATE product_images SET alt = $2, position = $3, updated_at = $4 WHERE id = $1")
        .bind(&img.id)
        .bind(&img.alt)
        .bind(img.position)
        .bind(img.updated_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes an image and its variant rows; false if it was not there.
pub async fn delete_image(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    sqlx::query("DELETE FROM product_image_variants WHERE image_id = $1").bind(id).execute(&mut *conn).await?;
    let done = sqlx::query("DELETE FROM product_images WHERE id = $1").bind(id).execute(&mut *conn).await?;
    Ok(done.rows_affected() > 0)
}

/// One image of one product (ownership-scoped), with its variants.
pub async fn get_image(conn: &mut AnyConnection, product_id: &str, id: &str) -> Result<Option<ImageRow>> {
    let row = sqlx::query(&format!("SELECT {IMAGE_COLUMNS} FROM product_images WHERE id = $1 AND product_id = $2"))
        .bind(id)
        .bind(product_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut images = vec![image_from_row(&row)?];
    fill_variants(conn, &mut images).await?;
    Ok(images.pop())
}

/// The images of several products, each list in display order (position,
/// then upload order), in two queries whatever the number of products.
pub async fn images_of(conn: &mut AnyConnection, product_ids: &[String]) -> Result<HashMap<String, Vec<ImageRow>>> {
    let mut out: HashMap<String, Vec<ImageRow>> = HashMap::new();
    if product_ids.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM product_images WHERE product_id IN ({}) ORDER BY product_id, position, id",
        placeholders(product_ids.len())
    );
    let mut q = sqlx::query(&sql);
    for id in product_ids {
        q = q.bind(id.as_str());
    }
    let mut images: Vec<ImageRow> = q.fetch_all(&mut *conn).await?.iter().map(image_from_row).collect::<Result<_>>()?;
    fill_variants(conn, &mut images).await?;
    for img in images {
        out.entry(img.product_id.clone()).or_default().push(img);
    }
    Ok(out)
}

/// How many images a product has (the default position of the next one).
pub async fn count_for_product(conn: &mut AnyConnection, product_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM product_images WHERE product_id = $1")
        .bind(product_id)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get("n")?)
}

/// Which of `ids` are recorded images.
pub async fn existing_ids(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let sql = format!("SELECT id FROM product_images WHERE id IN ({})", placeholders(chunk.len()));
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.as_str());
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push(r.try_get("id")?);
        }
    }
    Ok(out)
}

/// Bumps the product's version (image changes are product changes) and
/// locks its row for the rest of the transaction; `None` if it is gone.
pub async fn touch_product(conn: &mut AnyConnection, product_id: &str, now: i64) -> Result<Option<i64>> {
    let row = sqlx::query("UPDATE products SET version = version + 1, updated_at = $2 WHERE id = $1 RETURNING version")
        .bind(product_id)
        .bind(now)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("version")?),
        None => None,
    })
}

/// Whether `variant_id` is a variant of `product_id`.
pub async fn variant_belongs(conn: &mut AnyConnection, product_id: &str, variant_id: &str) -> Result<bool> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM variants WHERE id = $1 AND product_id = $2")
        .bind(variant_id)
        .bind(product_id)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

async fn fill_variants(conn: &mut AnyConnection, images: &mut [ImageRow]) -> Result<()> {
    if images.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT image_id, format, width, height, file, hash, byte_size FROM product_image_variants \
         WHERE image_id IN ({}) ORDER BY image_id, format DESC, width",
        placeholders(images.len())
    );
    let mut q = sqlx::query(&sql);
    for img in images.iter() {
        q = q.bind(img.id.as_str());
    }
    let mut by_image: HashMap<String, Vec<ImageVariantRow>> = HashMap::new();
    for r in q.fetch_all(&mut *conn).await? {
        by_image.entry(r.try_get("image_id")?).or_default().push(ImageVariantRow {
            format: r.try_get("format")?,
            width: r.try_get("width")?,
            height: r.try_get("height")?,
            file: r.try_get("file")?,
            hash: r.try_get("hash")?,
            byte_size: r.try_get("byte_size")?,
        });
    }
    for img in images.iter_mut() {
        img.variants = by_image.remove(&img.id).unwrap_or_default();
    }
    Ok(())
}
