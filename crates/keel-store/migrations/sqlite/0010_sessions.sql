-- Storefront sessions (kept in lockstep with ../postgres/0010_sessions.sql).
-- The cookie holds a random 256-bit token; only its SHA-256 (hex) is stored,
-- so a copy of this table does not let anyone act as a shopper.
CREATE TABLE storefront_sessions (
    id           TEXT PRIMARY KEY,
    cart_id      TEXT,
    customer_id  TEXT,
    csrf_secret  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX storefront_sessions_expires ON storefront_sessions (expires_at);
CREATE INDEX storefront_sessions_customer ON storefront_sessions (customer_id);

-- Orders a session may show: `placed` (it checked the order out: the
-- confirmation page) or `lookup` (it proved the order number and email: the
-- status page). Rows go with their session.
CREATE TABLE storefront_session_orders (
    session_id TEXT NOT NULL REFERENCES storefront_sessions (id) ON DELETE CASCADE,
    order_id   TEXT NOT NULL,
    access     TEXT NOT NULL CHECK (access IN ('placed', 'lookup')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, order_id, access)
);
