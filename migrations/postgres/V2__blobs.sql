-- Blobs: the server's record of each encrypted file a stream uploads. The bytes live in the object store under
-- <app>/<user>/<hash>; here are only the ciphertext's size and SHA-256, and whether the upload was confirmed.
CREATE TABLE blobs (
    app_id       uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    hash         bytea       NOT NULL,
    size         bigint      NOT NULL,
    checksum     bytea       NOT NULL,
    -- When the upload was last begun: unconfirmed uploads are swept some time after.
    created_at   timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz,
    PRIMARY KEY (app_id, user_id, hash)
);

CREATE INDEX blobs_pending ON blobs (created_at) WHERE confirmed_at IS NULL;
