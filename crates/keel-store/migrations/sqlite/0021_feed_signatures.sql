-- Signatures of accepted signed feed uploads, remembered while their
-- timestamp is inside the tolerance window: the same signed body sent again
-- (without an Idempotency-Key) is refused, by every node, instead of being
-- applied twice. One row per accepted signature; rows past the window are
-- deleted as new uploads are accepted.
CREATE TABLE feed_signatures (
    integration_id TEXT NOT NULL REFERENCES integrations (id),
    signature      TEXT NOT NULL,
    signed_at      BIGINT NOT NULL,
    PRIMARY KEY (integration_id, signature)
);
CREATE INDEX feed_signatures_signed_at_idx ON feed_signatures (signed_at);
