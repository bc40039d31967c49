-- Storefront: collections and product search. Kept in lockstep with
-- ../sqlite/0008_storefront.sql.

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

-- Full-text document per product (title, description, SKUs), rewritten by
-- the catalog use cases in the transaction of each product write. The
-- vector holds English stems (so "mugs" finds "Mug") and unstemmed words
-- (so SKUs and names match as typed).
CREATE TABLE product_search (
    product_id  TEXT PRIMARY KEY REFERENCES products (id),
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    skus        TEXT NOT NULL,
    document    tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A')
        || setweight(to_tsvector('simple', title || ' ' || skus), 'A')
        || setweight(to_tsvector('english', description), 'B')
    ) STORED
);
CREATE INDEX product_search_document_idx ON product_search USING GIN (document);

INSERT INTO product_search (product_id, title, description, skus)
SELECT p.id, p.title, COALESCE(p.description, ''),
       COALESCE((SELECT string_agg(v.sku, ' ' ORDER BY v.position) FROM variants v WHERE v.product_id = p.id), '')
FROM products p;
