-- When an account was last re-enabled. A staff user is stale when it is
-- active and the latest of last_login_at, created_at and reactivated_at is
-- older than the stale threshold; re-enabling restarts that clock, so the
-- stale-accounts job does not disable the account again at its next run.
ALTER TABLE staff_users ADD COLUMN reactivated_at BIGINT;
