-- Each serving process announces itself with a lease it renews while it
-- lives, so work it claimed (an Idempotency-Key) can be taken over as soon
-- as it dies rather than after a fixed wait.
CREATE TABLE node_leases (
    node_id    TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX node_leases_expires_idx ON node_leases (expires_at);

-- The process holding an unfinished claim.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;

-- The request (API key scope + Idempotency-Key, hashed) that started a
-- checkout, so the same request retried after a crash gets its order back.
ALTER TABLE checkouts ADD COLUMN request_key TEXT;

-- A capture owed at order time, written in the order's own transaction: a
-- crash between the order's commit and the provider call leaves this row,
-- and the capture job finishes it (the provider call is idempotent by key).
CREATE TABLE capture_due (
    order_id   TEXT PRIMARY KEY REFERENCES orders(id),
    due_at     BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX capture_due_at_idx ON capture_due (due_at);
