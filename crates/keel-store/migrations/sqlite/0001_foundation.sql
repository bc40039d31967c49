-- Foundation: catalog, inventory ledger, reservations, outbox, API keys,
-- idempotency. Kept in lockstep with ../postgres/0001_foundation.sql.
-- Timestamps are microseconds since the Unix epoch (UTC).

CREATE TABLE products (
    id              TEXT PRIMARY KEY,
    handle          TEXT NOT NULL,
    title           TEXT NOT NULL,
    description     TEXT,
    status          TEXT NOT NULL,
    seo_title       TEXT,
    seo_description TEXT,
    version         BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT products_handle_key UNIQUE (handle)
);

CREATE TABLE variants (
    id          TEXT PRIMARY KEY,
    product_id  TEXT NOT NULL REFERENCES products (id),
    sku         TEXT NOT NULL,
    title       TEXT NOT NULL,
    options     TEXT NOT NULL,
    position    BIGINT NOT NULL,
    archived_at BIGINT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT variants_sku_key UNIQUE (sku)
);
CREATE INDEX variants_product_idx ON variants (product_id, position);

CREATE TABLE variant_prices (
    variant_id TEXT NOT NULL REFERENCES variants (id),
    currency   TEXT NOT NULL,
    amount     BIGINT NOT NULL,
    PRIMARY KEY (variant_id, currency)
);

CREATE TABLE sales_channels (
    id          TEXT PRIMARY KEY,
    handle      TEXT NOT NULL,
    name        TEXT NOT NULL,
    archived_at BIGINT,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    CONSTRAINT sales_channels_handle_key UNIQUE (handle)
);

CREATE TABLE product_channels (
    product_id TEXT NOT NULL REFERENCES products (id),
    channel_id TEXT NOT NULL REFERENCES sales_channels (id),
    PRIMARY KEY (product_id, channel_id)
);

CREATE TABLE locations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    priority    BIGINT NOT NULL,
    country     TEXT NOT NULL,
    archived_at BIGINT,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE inventory_items (
    id         TEXT PRIMARY KEY,
    sku        TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT inventory_items_sku_key UNIQUE (sku)
);

-- What one unit of a variant consumes: one row for a plain product, several
-- for a bundle or kit.
CREATE TABLE variant_components (
    variant_id        TEXT NOT NULL REFERENCES variants (id),
    inventory_item_id TEXT NOT NULL REFERENCES inventory_items (id),
    quantity          BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (variant_id, inventory_item_id)
);
CREATE INDEX variant_components_item_idx ON variant_components (inventory_item_id);

-- A projection of inventory_movements; `keel check` proves they agree.
CREATE TABLE inventory_levels (
    inventory_item_id TEXT NOT NULL REFERENCES inventory_items (id),
    location_id       TEXT NOT NULL REFERENCES locations (id),
    on_hand           BIGINT NOT NULL,
    reserved          BIGINT NOT NULL,
    safety_stock      BIGINT NOT NULL,
    incoming          BIGINT NOT NULL,
    damaged           BIGINT NOT NULL,
    quality_control   BIGINT NOT NULL,
    version           BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (inventory_item_id, location_id),
    CHECK (on_hand >= 0 AND reserved >= 0 AND safety_stock >= 0 AND incoming >= 0
           AND damaged >= 0 AND quality_control >= 0
           AND on_hand >= reserved + damaged + quality_control)
);
CREATE INDEX inventory_levels_location_idx ON inventory_levels (location_id);

-- The append-only ledger. Nothing updates or deletes a row.
CREATE TABLE inventory_movements (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    inventory_item_id TEXT NOT NULL REFERENCES inventory_items (id),
    location_id       TEXT NOT NULL REFERENCES locations (id),
    kind              TEXT NOT NULL,
    quantity          BIGINT NOT NULL,
    d_on_hand         BIGINT NOT NULL,
    d_reserved        BIGINT NOT NULL,
    d_safety_stock    BIGINT NOT NULL,
    d_incoming        BIGINT NOT NULL,
    d_damaged         BIGINT NOT NULL,
    d_quality_control BIGINT NOT NULL,
    reason            TEXT,
    actor             TEXT NOT NULL,
    source            TEXT NOT NULL,
    batch_id          TEXT,
    idempotency_key   TEXT,
    reservation_id    TEXT,
    transfer_id       TEXT,
    occurred_at       BIGINT NOT NULL,
    recorded_at       BIGINT NOT NULL
);
CREATE INDEX inventory_movements_level_idx ON inventory_movements (inventory_item_id, location_id, seq);
CREATE INDEX inventory_movements_occurred_idx ON inventory_movements (inventory_item_id, location_id, occurred_at);
CREATE UNIQUE INDEX inventory_movements_idempotency_key ON inventory_movements (source, idempotency_key, inventory_item_id, location_id, kind)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE reservations (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    lines       TEXT NOT NULL,
    location_id TEXT,
    reference   TEXT,
    expires_at  BIGINT,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX reservations_expiry_idx ON reservations (status, expires_at);

-- Where each reserved unit is held: per inventory item and location.
CREATE TABLE reservation_allocations (
    reservation_id    TEXT NOT NULL REFERENCES reservations (id),
    inventory_item_id TEXT NOT NULL REFERENCES inventory_items (id),
    location_id       TEXT NOT NULL REFERENCES locations (id),
    quantity          BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, inventory_item_id, location_id)
);
CREATE INDEX reservation_allocations_level_idx ON reservation_allocations (inventory_item_id, location_id);

CREATE TABLE transfers (
    id                TEXT PRIMARY KEY,
    inventory_item_id TEXT NOT NULL REFERENCES inventory_items (id),
    from_location_id  TEXT NOT NULL REFERENCES locations (id),
    to_location_id    TEXT NOT NULL REFERENCES locations (id),
    quantity          BIGINT NOT NULL,
    reason            TEXT,
    actor             TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);

-- The outbox. `position` orders rows within one backend transaction order
-- (`tx_order`, the PostgreSQL transaction id; 0 on SQLite, whose single
-- writer already commits in position order).
CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    tx_order       BIGINT NOT NULL,
    type           TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    aggregate_id   TEXT NOT NULL,
    aggregate_seq  BIGINT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    payload        TEXT NOT NULL,
    CONSTRAINT events_aggregate_seq_key UNIQUE (aggregate_id, aggregate_seq)
);
CREATE INDEX events_order_idx ON events (tx_order, position);
CREATE INDEX events_type_idx ON events (type, tx_order, position);

CREATE TABLE consumer_cursors (
    name       TEXT PRIMARY KEY,
    tx_order   BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    CONSTRAINT api_keys_secret_hash_key UNIQUE (secret_hash)
);

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    method        TEXT NOT NULL,
    path          TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        BIGINT,
    response_body TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
