-- Usage (see migrations/postgres): each stream's stored bytes on its head row, and per stream and UTC day the bytes
-- transferred and the net change of stored bytes.
ALTER TABLE streams ADD COLUMN changelog_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN blob_bytes INTEGER NOT NULL DEFAULT 0;

UPDATE streams SET changelog_bytes = coalesce(
    (SELECT sum(length(payload)) FROM changes c WHERE c.app_id = streams.app_id AND c.user_id = streams.user_id), 0);
INSERT INTO streams (app_id, user_id)
    SELECT DISTINCT app_id, user_id FROM blobs WHERE confirmed_at IS NOT NULL
    ON CONFLICT DO NOTHING;
UPDATE streams SET blob_bytes = coalesce(
    (SELECT sum(size) FROM blobs b
     WHERE b.app_id = streams.app_id AND b.user_id = streams.user_id AND b.confirmed_at IS NOT NULL), 0);

CREATE TABLE usage_days (
    app_id         BLOB    NOT NULL,
    day            INTEGER NOT NULL,
    user_id        BLOB    NOT NULL,
    transfer_bytes INTEGER NOT NULL DEFAULT 0,
    stored_delta   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, day, user_id)
) STRICT, WITHOUT ROWID;
