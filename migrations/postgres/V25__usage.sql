-- Usage. Each stream's stored bytes live on its head row, changed by the writes that change them and in their
-- transaction: an append adds the payloads it stored, a blob's first confirmation its size, deleting a confirmed
-- blob takes it off. A stream that only has blobs gets a head row at 0.
ALTER TABLE streams ADD COLUMN changelog_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN blob_bytes bigint NOT NULL DEFAULT 0;

UPDATE streams s SET changelog_bytes = coalesce(
    (SELECT sum(octet_length(payload)) FROM changes c WHERE c.app_id = s.app_id AND c.user_id = s.user_id), 0);
INSERT INTO streams (app_id, user_id)
    SELECT DISTINCT app_id, user_id FROM blobs WHERE confirmed_at IS NOT NULL
    ON CONFLICT DO NOTHING;
UPDATE streams s SET blob_bytes = coalesce(
    (SELECT sum(size) FROM blobs b
     WHERE b.app_id = s.app_id AND b.user_id = s.user_id AND b.confirmed_at IS NOT NULL), 0);

-- Per stream and UTC day (days since 1970-01-01): bytes transferred, and the net change of stored bytes, from which
-- the stored bytes at each day's end are worked back. Keyed by app first: an app's usage reads a range of it.
CREATE TABLE usage_days (
    app_id         uuid    NOT NULL,
    day            integer NOT NULL,
    user_id        uuid    NOT NULL,
    transfer_bytes bigint  NOT NULL DEFAULT 0,
    stored_delta   bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, day, user_id)
);
