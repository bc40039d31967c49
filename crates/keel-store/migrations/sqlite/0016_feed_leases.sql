-- A feed upload holds a lease while its body streams in, renewed as chunks
-- arrive. A lapsed lease means the process receiving it died (or the body
-- stalled): the batch shows as interrupted, and a retry with the same
-- Idempotency-Key takes it over at once instead of waiting for the sweep.
-- `lease_owner` names the process; batches received before this migration
-- have no lease and fall back to their `updated_at`.
ALTER TABLE sync_batches ADD COLUMN lease_owner TEXT;
ALTER TABLE sync_batches ADD COLUMN lease_until BIGINT;
