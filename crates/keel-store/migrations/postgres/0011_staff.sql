-- Staff access (kept in lockstep with ../sqlite/0011_staff.sql): API keys
-- scoped to a role, staff users with argon2id passwords and TOTP, one-use
-- recovery codes, database sessions, and login failure counters.

-- Keys made before roles existed keep full access.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'owner';
-- A staff user id, or NULL for keys made on the command line.
ALTER TABLE api_keys ADD COLUMN created_by TEXT;

-- Emails are stored lowercased. The TOTP secret is encrypted with the
-- master key like customer data; `totp_enabled_at` is set once a code has
-- confirmed enrolment, and `totp_last_step` refuses a code used twice.
CREATE TABLE staff_users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    totp_secret     TEXT,
    totp_enabled_at BIGINT,
    totp_last_step  BIGINT,
    last_login_at   BIGINT,
    disabled_at     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT staff_users_email_key UNIQUE (email)
);

-- Recovery codes: SHA-256 of 80 random bits each, one use.
CREATE TABLE staff_recovery_codes (
    user_id    TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Like storefront sessions, the id is the SHA-256 of the cookie token.
-- `second_factor_at` is NULL while a password-only session waits for its
-- TOTP code; such a session grants nothing.
CREATE TABLE staff_sessions (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    csrf_secret      TEXT NOT NULL,
    second_factor_at BIGINT,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    idle_expires_at  BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL
);
CREATE INDEX staff_sessions_user ON staff_sessions (user_id);
CREATE INDEX staff_sessions_expires ON staff_sessions (expires_at);

-- Failed sign-ins per account (scope 'account', key = lowercased email, known
-- or not) and per client address (scope 'ip').
CREATE TABLE login_failures (
    scope           TEXT NOT NULL,
    key             TEXT NOT NULL,
    failures        BIGINT NOT NULL,
    last_failure_at BIGINT NOT NULL,
    locked_until    BIGINT,
    PRIMARY KEY (scope, key)
);
