-- Reads of the admin console: the dashboard's order figures by time and its
-- work queue by status; webhook messages failing across all endpoints (the
-- integrations overview), without a scan of every message.
CREATE INDEX orders_created_idx ON orders (created_at);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX webhook_messages_failing_idx ON webhook_messages (status, endpoint_id);
