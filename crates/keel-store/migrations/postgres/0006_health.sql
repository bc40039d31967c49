-- Last known health state of each monitored component (integrations, webhook
-- endpoints, outbox consumers), so state changes raise alerts exactly once.
CREATE TABLE health_states (
    component  TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    since      BIGINT NOT NULL,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
