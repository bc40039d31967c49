-- Publishable storefront keys beside secret ones, and secret keys' own
-- rate limits (NULL: the configured default).
ALTER TABLE api_keys ADD COLUMN kind TEXT NOT NULL DEFAULT 'secret';
ALTER TABLE api_keys ADD COLUMN rate_limit_per_min BIGINT;
