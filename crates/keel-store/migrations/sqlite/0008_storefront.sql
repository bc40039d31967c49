-- Storefront: collections and product search. Kept in lockstep with
-- ../postgres/0008_storefront.sql.

CREATE TABLE collections (
    id              TEXT PRIMARY KEY,
    handle          TEXT NOT NULL,
    title           TEXT NOT NULL,
    description     TEXT,
    seo_title       TEXT,
    seo_description TEXT,
    position        BIGINT NOT NULL,
    published_at    BIGINT,
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT collections_handle_key UNIQUE (handle)
);
CREATE INDEX collections_position_idx ON collections (position, id);

CREATE TABLE collection_products (
    collection_id TEXT NOT NULL REFERENCES collections (id),
    product_id    TEXT NOT NULL REFERENCES products (id),
    position      BIGINT NOT NULL,
    PRIMARY KEY (collection_id, product_id)
);
CREATE INDEX collection_products_order_idx ON collection_products (collection_id, position, product_id);
CREATE INDEX collection_products_product_idx ON collection_products (product_id);

CREATE INDEX products_status_idx ON products (status, id);

-- Full-text index over a product's title, description and SKUs (Porter
-- stems, so "mugs" finds "Mug"), rewritten by the catalog use cases in the
-- transaction of each product write.
CREATE VIRTUAL TABLE product_search USING fts5 (
    product_id UNINDEXED,
    title,
    description,
    skus,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

INSERT INTO product_search (product_id, title, description, skus)
SELECT p.id, p.title, COALESCE(p.description, ''),
       COALESCE((SELECT group_concat(v.sku, ' ') FROM variants v WHERE v.product_id = p.id), '')
FROM products p;
