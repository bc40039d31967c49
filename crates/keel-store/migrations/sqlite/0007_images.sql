-- Product images and the responsive variants Keel generates from them.
-- Kept in lockstep with ../postgres/0007_images.sql.
-- Files live under the media directory (`<image id>/<file>`); rows are
-- written only after their files are in place.

CREATE TABLE product_images (
    id              TEXT PRIMARY KEY,
    product_id      TEXT NOT NULL REFERENCES products (id),
    variant_id      TEXT REFERENCES variants (id),
    position        BIGINT NOT NULL,
    alt             TEXT NOT NULL,
    -- The upload as received: format (jpeg, png, webp), upright dimensions
    -- (EXIF orientation applied), size and SHA-256 of its bytes.
    format          TEXT NOT NULL,
    width           BIGINT NOT NULL CHECK (width > 0),
    height          BIGINT NOT NULL CHECK (height > 0),
    byte_size       BIGINT NOT NULL CHECK (byte_size > 0),
    content_hash    TEXT NOT NULL,
    original_file   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX product_images_product_idx ON product_images (product_id, position);

-- One row per generated file: a width in one format. `file` is relative to
-- the media directory and embeds the truncated SHA-256 of its bytes (`hash`),
-- so its URL changes whenever its content does.
CREATE TABLE product_image_variants (
    image_id   TEXT NOT NULL REFERENCES product_images (id),
    format     TEXT NOT NULL CHECK (format IN ('webp', 'jpeg')),
    width      BIGINT NOT NULL CHECK (width > 0),
    height     BIGINT NOT NULL CHECK (height > 0),
    file       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    byte_size  BIGINT NOT NULL CHECK (byte_size > 0),
    PRIMARY KEY (image_id, format, width)
);
