-- A session that looked an order up by number and email sees its status
-- but not where it ships; `verified` is held once the shopper also gave the
-- shipping address's postal code. SQLite cannot change a CHECK, so the
-- table is rebuilt (nothing references it).
CREATE TABLE storefront_session_orders_new (
    session_id TEXT NOT NULL REFERENCES storefront_sessions (id) ON DELETE CASCADE,
    order_id   TEXT NOT NULL,
    access     TEXT NOT NULL CHECK (access IN ('placed', 'lookup', 'verified')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, order_id, access)
);
INSERT INTO storefront_session_orders_new (session_id, order_id, access, created_at)
    SELECT session_id, order_id, access, created_at FROM storefront_session_orders;
DROP TABLE storefront_session_orders;
ALTER TABLE storefront_session_orders_new RENAME TO storefront_session_orders;
