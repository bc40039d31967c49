-- Outbound webhooks: endpoints, secrets, messages, delivery attempts. Kept in lockstep with the other backend.
--
-- A message is one event for one endpoint (its id is the `webhook-id` every
-- redelivery carries, and its body the exact bytes that are signed). A
-- message is `pending` exactly while it has a row in `webhook_deliveries`,
-- the delivery queue; `succeeded` and `failed` (dead-lettered) messages have
-- none. Every HTTP attempt is kept in `webhook_attempts`.

CREATE TABLE webhook_endpoints (
    id                         TEXT PRIMARY KEY,
    url                        TEXT NOT NULL,
    description                TEXT,
    -- JSON array of event types or families (`inventory.*`); `[]` = every event.
    event_types                TEXT NOT NULL,
    enabled                    BIGINT NOT NULL,
    -- `manual` or `failing` while disabled.
    disabled_reason            TEXT,
    disabled_at                BIGINT,
    -- Deliveries per second; NULL = unlimited.
    rate_limit                 BIGINT,
    -- `whsec_…`, encrypted with the master key; the previous secret keeps
    -- signing beside the new one until it expires.
    secret_enc                 TEXT NOT NULL,
    previous_secret_enc        TEXT,
    previous_secret_expires_at BIGINT,
    -- Delivery health, written by every attempt (not part of the version).
    consecutive_failures       BIGINT NOT NULL,
    failing_since              BIGINT,
    circuit_open_until         BIGINT,
    last_success_at            BIGINT,
    last_failure_at            BIGINT,
    last_error                 TEXT,
    rate_window_start          BIGINT NOT NULL,
    rate_window_count          BIGINT NOT NULL,
    version                    BIGINT NOT NULL,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);

CREATE TABLE webhook_messages (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    -- The exact JSON body that is signed and sent.
    body            TEXT NOT NULL,
    -- `pending`, `succeeded` or `failed`.
    status          TEXT NOT NULL,
    attempt_count   BIGINT NOT NULL,
    next_attempt_at BIGINT,
    last_attempt_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT webhook_messages_event_id_key UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_messages_endpoint_idx ON webhook_messages (endpoint_id, id);
CREATE INDEX webhook_messages_status_idx ON webhook_messages (endpoint_id, status, created_at);

-- The delivery queue. `attempt` counts the attempts of the current run (a
-- manual retry or a recovery starts a new run); a claimed delivery carries a
-- lease, and its `next_attempt_at` is the lease's end, so a delivery whose
-- worker died becomes due again by itself.
CREATE TABLE webhook_deliveries (
    message_id      TEXT PRIMARY KEY REFERENCES webhook_messages (id),
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
    attempt         BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at);
CREATE INDEX webhook_deliveries_next_idx ON webhook_deliveries (next_attempt_at);
CREATE INDEX webhook_deliveries_lease_idx ON webhook_deliveries (endpoint_id, lease_until);

CREATE TABLE webhook_attempts (
    id               TEXT PRIMARY KEY,
    message_id       TEXT NOT NULL REFERENCES webhook_messages (id),
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    url              TEXT NOT NULL,
    attempted_at     BIGINT NOT NULL,
    succeeded        BIGINT NOT NULL,
    status_code      BIGINT,
    latency_micros   BIGINT NOT NULL,
    -- At most 1 KiB of the response body, as text.
    response_excerpt TEXT,
    error            TEXT
);
CREATE INDEX webhook_attempts_message_idx ON webhook_attempts (message_id, attempted_at);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, attempted_at);

-- Attempts and failures per endpoint and minute, for health (kept 48 hours).
CREATE TABLE webhook_endpoint_minutes (
    endpoint_id TEXT NOT NULL,
    minute      BIGINT NOT NULL,
    attempts    BIGINT NOT NULL,
    failures    BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, minute)
);
CREATE INDEX webhook_endpoint_minutes_minute_idx ON webhook_endpoint_minutes (minute);
