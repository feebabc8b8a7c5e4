-- App registration (see migrations/postgres). SQLite cannot add a NOT NULL column without a constant default, so
-- the table is rebuilt; apps made before get a random client id, 128 random bits as hex. Redirect URIs are rows of
-- their own, in the order registered, deleted with their app.
CREATE TABLE apps_registered (
    id           BLOB    PRIMARY KEY,
    name         TEXT    NOT NULL,
    api_key_hash BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    owner_id     BLOB,
    client_id    TEXT    NOT NULL UNIQUE
) STRICT;
INSERT INTO apps_registered (id, name, api_key_hash, created_at, owner_id, client_id)
    SELECT id, name, api_key_hash, created_at, NULL, 'cid_' || lower(hex(randomblob(16))) FROM apps;
DROP TABLE apps;
ALTER TABLE apps_registered RENAME TO apps;
CREATE INDEX apps_by_owner ON apps (owner_id, created_at);

CREATE TABLE app_redirect_uris (
    app_id   BLOB    NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    uri      TEXT    NOT NULL,
    PRIMARY KEY (app_id, position)
) STRICT, WITHOUT ROWID;
