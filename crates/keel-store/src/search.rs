//! Product search over title, description and SKUs: SQLite FTS5, or
//! PostgreSQL full-text search (a generated `tsvector` with a GIN index).
//! The index is rewritten by [`reindex_product`] inside the transaction of
//! each product write, so search never disagrees with the catalog.

use crate::catalog::{product_from_row, ProductRow, PRODUCT_COLUMNS};
use crate::{Backend, Result};
use sqlx::{AnyConnection, Row};

/// Rewrites the search document of one product from its current rows.
pub async fn reindex_product(conn: &mut AnyConnection, product_id: &str) -> Result<()> {
    match Backend::of(conn) {
        Backend::Sqlite => {
            sqlx::query("DELETE FROM product_search WHERE product_id = $1").bind(product_id).execute(&mut *conn).await?;
            sqlx::query(
                "INSERT INTO product_search (product_id, title, description, skus) \
                 SELECT p.id, p.title, COALESCE(p.description, ''), \
                 COALESCE((SELECT group_concat(v.sku, ' ') FROM variants v WHERE v.product_id = p.id), '') \
                 FROM products p WHERE p.id = $1",
            )
            .bind(product_id)
            .execute(&mut *conn)
            .await?;
        }
        Backend::Postgres => {
            sqlx::query(
                "INSERT INTO product_search (product_id, title, description, skus) \
                 SELECT p.id, p.title, COALESCE(p.description, ''), \
                 COALESCE((SELECT string_agg(v.sku, ' ' ORDER BY v.position) FROM variants v WHERE v.product_id = p.id), '') \
                 FROM products p WHERE p.id = $1 \
                 ON CONFLICT (product_id) DO UPDATE SET title = EXCLUDED.title, description = EXCLUDED.description, \
                 skus = EXCLUDED.skus",
            )
            .bind(product_id)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// An FTS5 query that matches every word of what the shopper typed, the
/// last one as a prefix. Each word is quoted, so FTS5 operators and column
/// filters typed by the shopper are plain text. `None` when nothing
/// searchable remains.
pub fn fts5_query(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric)).take(16).collect();
    let last = words.len().checked_sub(1)?;
    let parts: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| format!("\"{}\"{}", w.replace('"', "\"\""), if i == last { "*" } else { "" }))
        .collect();
    Some(parts.join(" "))
}

/// Active products matching `text`, best first, and how many match.
pub async fn search_products(
    conn: &mut AnyConnection,
    text: &str,
    offset: i64,
    limit: i64,
) -> Result<(Vec<ProductRow>, i64)> {
    let cols = PRODUCT_COLUMNS.split(", ").map(|c| format!("p.{c}")).collect::<Vec<_>>().join(", ");
    let (count_sql, sql, arg) = match Backend::of(conn) {
        Backend::Sqlite => {
            let Some(q) = fts5_query(text) else { return Ok((Vec::new(), 0)) };
            let from = "product_search s JOIN products p ON p.id = s.product_id \
                        WHERE product_search MATCH $1 AND p.status = 'active'";
            (
                format!("SELECT COUNT(*) AS n FROM {from}"),
                format!("SELECT {cols} FROM {from} ORDER BY bm25(product_search, 0.0, 10.0, 1.0, 5.0), p.id LIMIT $2 OFFSET $3"),
                q,
            )
        }
        // English stems ("mugs" → mug), words as typed, and the parts of
        // hyphenated words, so a partial SKU such as `LIN-SHIRT` finds
        // `LIN-SHIRT-M`.
        Backend::Postgres => {
            if !text.chars().any(char::is_alphanumeric) {
                return Ok((Vec::new(), 0));
            }
            let from = "product_search s JOIN products p ON p.id = s.product_id, \
                        (SELECT websearch_to_tsquery('english', $1) || websearch_to_tsquery('simple', $1) \
                        || plainto_tsquery('simple', replace($1, '-', ' ')) AS query) q \
                        WHERE s.document @@ q.query AND p.status = 'active'";
            (
                format!("SELECT COUNT(*) AS n FROM {from}"),
                format!("SELECT {cols} FROM {from} ORDER BY ts_rank(s.document, q.query) DESC, p.id LIMIT $2 OFFSET $3"),
                text.to_owned(),
            )
        }
    };
    let total: i64 = sqlx::query(&count_sql).bind(&arg).fetch_one(&mut *conn).await?.try_get("n")?;
    if total == 0 {
        return Ok((Vec::new(), 0));
    }
    let rows = sqlx::query(&sql).bind(&arg).bind(limit).bind(offset).fetch_all(&mut *conn).await?;
    Ok((rows.iter().map(product_from_row).collect::<Result<_>>()?, total))
}

#[cfg(test)]
mod tests {
    use super::fts5_query;

    #[test]
    fn shopper_text_becomes_quoted_words_with_a_prefix_last() {
        assert_eq!(fts5_query("linen shirt").as_deref(), Some("\"linen\" \"shirt\"*"));
        assert_eq!(fts5_query("EVE-TEE-M").as_deref(), Some("\"EVE-TEE-M\"*"));
        assert_eq!(fts5_query("title:x OR \"y").as_deref(), Some("\"title:x\" \"OR\" \"\"\"y\"*"));
        assert_eq!(fts5_query("  -- * "), None);
        assert_eq!(fts5_query(""), None);
    }
}
