-- Carts, shipping methods, tax rates, checkouts, orders, refunds, and the
-- built-in test payment provider's ledger. Kept in lockstep with
-- ../sqlite/0003_checkout.sql. Personal data (email, addresses) is stored
-- encrypted (`*_enc`); `email_index` is a keyed hash for lookups.

CREATE TABLE shipping_methods (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    currency    TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    -- Comma-separated ISO countries, or '*' for everywhere.
    countries   TEXT NOT NULL,
    archived_at BIGINT,
    version     BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE tax_rates (
    id               TEXT PRIMARY KEY,
    country          TEXT NOT NULL,
    -- '' when the rate covers the whole country.
    region           TEXT NOT NULL,
    rate_bps         BIGINT NOT NULL,
    inclusive        BIGINT NOT NULL,
    shipping_taxable BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    CONSTRAINT tax_rates_region_key UNIQUE (country, region)
);

CREATE TABLE carts (
    id                   TEXT PRIMARY KEY,
    status               TEXT NOT NULL,
    currency             TEXT NOT NULL,
    customer_id          TEXT,
    email_enc            TEXT,
    email_index          TEXT,
    shipping_address_enc TEXT,
    shipping_country     TEXT,
    shipping_region      TEXT,
    shipping_method_id   TEXT REFERENCES shipping_methods (id),
    order_id             TEXT,
    version              BIGINT NOT NULL,
    expires_at           BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX carts_expiry_idx ON carts (status, expires_at);

CREATE TABLE cart_lines (
    id          TEXT PRIMARY KEY,
    cart_id     TEXT NOT NULL REFERENCES carts (id),
    variant_id  TEXT NOT NULL REFERENCES variants (id),
    sku         TEXT NOT NULL,
    title       TEXT NOT NULL,
    unit_amount BIGINT NOT NULL,
    quantity    BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX cart_lines_cart_idx ON cart_lines (cart_id, created_at);

-- One attempt to turn a cart into an order. Each step is its own short
-- transaction; `status` records how far it got so recovery can finish or
-- undo it after a crash.
CREATE TABLE checkouts (
    id               TEXT PRIMARY KEY,
    cart_id          TEXT NOT NULL REFERENCES carts (id),
    status           TEXT NOT NULL,
    reservation_id   TEXT,
    payment_provider TEXT NOT NULL,
    payment_method   TEXT NOT NULL,
    payment_id       TEXT,
    amount           BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    order_id         TEXT,
    failure_code     TEXT,
    failure_message  TEXT,
    lease_until      BIGINT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX checkouts_cart_idx ON checkouts (cart_id);
CREATE INDEX checkouts_recovery_idx ON checkouts (status, lease_until);

CREATE TABLE orders (
    id                   TEXT PRIMARY KEY,
    number               BIGINT NOT NULL,
    cart_id              TEXT NOT NULL,
    checkout_id          TEXT NOT NULL,
    customer_id          TEXT,
    email_enc            TEXT,
    email_index          TEXT,
    status               TEXT NOT NULL,
    payment_status       TEXT NOT NULL,
    currency             TEXT NOT NULL,
    subtotal             BIGINT NOT NULL,
    discount_total       BIGINT NOT NULL,
    shipping_total       BIGINT NOT NULL,
    tax_total            BIGINT NOT NULL,
    total                BIGINT NOT NULL,
    tax_inclusive        BIGINT NOT NULL,
    amount_captured      BIGINT NOT NULL,
    amount_refunded      BIGINT NOT NULL,
    shipping_address_enc TEXT,
    shipping_country     TEXT,
    shipping_method_id   TEXT,
    reservation_id       TEXT,
    payment_provider     TEXT NOT NULL,
    payment_id           TEXT,
    version              BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    CONSTRAINT orders_number_key UNIQUE (number),
    CONSTRAINT orders_cart_id_key UNIQUE (cart_id)
);
CREATE INDEX orders_email_idx ON orders (email_index);
CREATE INDEX orders_customer_idx ON orders (customer_id);

CREATE TABLE order_lines (
    order_id    TEXT NOT NULL REFERENCES orders (id),
    position    BIGINT NOT NULL,
    variant_id  TEXT NOT NULL,
    sku         TEXT NOT NULL,
    title       TEXT NOT NULL,
    unit_amount BIGINT NOT NULL,
    quantity    BIGINT NOT NULL,
    PRIMARY KEY (order_id, position)
);

CREATE TABLE refunds (
    id                TEXT PRIMARY KEY,
    order_id          TEXT NOT NULL REFERENCES orders (id),
    provider_refund_id TEXT,
    amount            BIGINT NOT NULL,
    reason            TEXT,
    status            TEXT NOT NULL,
    actor             TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX refunds_order_idx ON refunds (order_id);

-- Order numbers (SQLite; PostgreSQL uses a sequence).
CREATE SEQUENCE order_number_seq START 1001;
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

-- State of the built-in `test` payment provider, which must survive a
-- restart like a remote provider would.
CREATE TABLE test_payments (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
