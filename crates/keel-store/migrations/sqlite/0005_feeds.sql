-- Inbound integrations, stock feeds and sync batches. Kept in lockstep with the other backend.

-- A named source of data (3PL, ERP, carrier, payment provider) with its own
-- credential: an HMAC signing secret (stored encrypted, Keel must sign with
-- it) or an API key (stored as SHA-256). Optionally polled for a feed.
CREATE TABLE integrations (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    auth                  TEXT NOT NULL,
    credential_prefix     TEXT NOT NULL,
    credential_hash       TEXT,
    credential_encrypted  TEXT,
    freshness_sla_seconds BIGINT NOT NULL,
    enabled               BIGINT NOT NULL,
    pull_url              TEXT,
    pull_every_seconds    BIGINT,
    pull_mode             TEXT,
    pull_next_at          BIGINT,
    pull_etag             TEXT,
    pull_last_modified    TEXT,
    last_success_at       BIGINT,
    last_failure_at       BIGINT,
    last_error            TEXT,
    version               BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    CONSTRAINT integrations_name_key UNIQUE (name)
);
CREATE INDEX integrations_pull_idx ON integrations (pull_next_at);

-- One received feed, applied as one unit (all_or_nothing) or row by row
-- (apply_valid). The idempotency key makes a repeated feed apply once.
CREATE TABLE sync_batches (
    id                    TEXT PRIMARY KEY,
    integration_id        TEXT NOT NULL REFERENCES integrations (id),
    idempotency_key       TEXT,
    source                TEXT NOT NULL,
    format                TEXT NOT NULL,
    mode                  TEXT NOT NULL,
    status                TEXT NOT NULL,
    content_sha256        TEXT,
    bytes                 BIGINT NOT NULL,
    rows_total            BIGINT NOT NULL,
    rows_applied          BIGINT NOT NULL,
    rows_unchanged        BIGINT NOT NULL,
    rows_superseded       BIGINT NOT NULL,
    rows_unknown_sku      BIGINT NOT NULL,
    rows_unknown_location BIGINT NOT NULL,
    rows_invalid          BIGINT NOT NULL,
    rows_rejected         BIGINT NOT NULL,
    rows_skipped          BIGINT NOT NULL,
    error                 TEXT,
    actor                 TEXT NOT NULL,
    version               BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    applied_at            BIGINT,
    rolled_back_at        BIGINT,
    CONSTRAINT sync_batches_idempotency_key_key UNIQUE (integration_id, idempotency_key)
);
CREATE INDEX sync_batches_integration_idx ON sync_batches (integration_id, created_at);
CREATE INDEX sync_batches_status_idx ON sync_batches (status, updated_at);

-- Every row of a feed with its line number and outcome: staged while the
-- body streams in, then judged and applied. `ledger_on_hand` is the ledger's
-- on_hand as of `counted_at`; `delta` = on_hand − ledger_on_hand.
-- `batch_id` has no foreign key on purpose: a feed stages up to millions of
-- rows, each check would cost a lookup (a trigger on PostgreSQL), and rows
-- are only ever written for a batch that exists and deleted before it.
CREATE TABLE sync_batch_rows (
    batch_id          TEXT NOT NULL,
    line              BIGINT NOT NULL,
    sku               TEXT,
    location_id       TEXT,
    on_hand           BIGINT,
    counted_at        BIGINT,
    inventory_item_id TEXT,
    outcome           TEXT NOT NULL,
    message           TEXT,
    ledger_on_hand    BIGINT,
    delta             BIGINT,
    movement_id       TEXT,
    PRIMARY KEY (batch_id, line)
);
-- Rows of a batch in level-lock order (item, location).
CREATE INDEX sync_batch_rows_level_idx ON sync_batch_rows (batch_id, inventory_item_id, location_id, line);
-- The latest count of a level across batches (an older count never overrides a newer one).
CREATE INDEX sync_batch_rows_count_idx ON sync_batch_rows (inventory_item_id, location_id, counted_at);
