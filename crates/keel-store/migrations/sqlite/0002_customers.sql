-- Customers and addresses (personal data encrypted at rest). Kept in lockstep with the other backend.
--
-- Every personal value is stored as `v1:` + base64(nonce ‖ AES-256-GCM
-- ciphertext) in a `*_enc` column; nothing personal is kept in clear. Lookups
-- by email go through `email_index`, a keyed HMAC (blind index) of the email
-- trimmed and lower-cased. A registered account's email is unique: accounts
-- copy their index into `account_email_index`, which carries the unique
-- constraint, while guests leave it NULL (both backends allow many NULLs in a
-- unique column), so guests may share an email with each other and with an
-- account.

CREATE TABLE customers (
    id                  TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,
    email_index         TEXT NOT NULL,
    account_email_index TEXT,
    email_enc           TEXT NOT NULL,
    first_name_enc      TEXT,
    last_name_enc       TEXT,
    phone_enc           TEXT,
    password_hash       TEXT,
    marketing_opt_in    BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    CONSTRAINT customers_account_email_index_key UNIQUE (account_email_index),
    CONSTRAINT customers_kind_check CHECK (
        (kind = 'account' AND account_email_index = email_index AND password_hash IS NOT NULL)
        OR (kind = 'guest' AND account_email_index IS NULL AND password_hash IS NULL)
    ),
    CONSTRAINT customers_marketing_opt_in_check CHECK (marketing_opt_in IN (0, 1))
);
CREATE INDEX customers_email_index_idx ON customers (email_index, id);

CREATE TABLE customer_addresses (
    id                  TEXT PRIMARY KEY,
    customer_id         TEXT NOT NULL REFERENCES customers (id),
    name_enc            TEXT NOT NULL,
    line1_enc           TEXT NOT NULL,
    line2_enc           TEXT,
    city_enc            TEXT NOT NULL,
    region_enc          TEXT,
    postal_code_enc     TEXT,
    -- ISO 3166-1 alpha-2, in clear: shipping and tax zones are chosen by it.
    country             TEXT NOT NULL,
    phone_enc           TEXT,
    is_default_shipping BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    CONSTRAINT customer_addresses_is_default_shipping_check CHECK (is_default_shipping IN (0, 1))
);
CREATE INDEX customer_addresses_customer_idx ON customer_addresses (customer_id, id);
-- At most one default shipping address per customer.
CREATE UNIQUE INDEX customer_addresses_default_shipping_idx
    ON customer_addresses (customer_id) WHERE is_default_shipping = 1;
