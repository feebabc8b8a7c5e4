-- Blobs: the server's record of each encrypted file a stream uploads (see migrations/postgres).
CREATE TABLE blobs (
    app_id       BLOB    NOT NULL,
    user_id      BLOB    NOT NULL,
    hash         BLOB    NOT NULL,
    size         INTEGER NOT NULL,
    checksum     BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    PRIMARY KEY (app_id, user_id, hash)
) STRICT;

CREATE INDEX blobs_pending ON blobs (created_at) WHERE confirmed_at IS NULL;
