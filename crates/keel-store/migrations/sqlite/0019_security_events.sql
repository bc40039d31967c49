-- Security events (failed sign-ins, refused API keys) are audit entries;
-- the spike alert counts recent ones by action every few seconds.
CREATE INDEX audit_log_action_time ON audit_log (action, occurred_at);
