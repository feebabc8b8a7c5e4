-- SyncKit schema, embedded SQLite. The same model as migrations/postgres: ids are 16-byte blobs, timestamps are
-- microseconds since the Unix epoch.

CREATE TABLE users (
    id             BLOB    PRIMARY KEY,
    email          TEXT    NOT NULL UNIQUE,
    salt           BLOB    NOT NULL,
    login_key_hash BLOB    NOT NULL,
    token_version  INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE apps (
    id           BLOB    PRIMARY KEY,
    name         TEXT    NOT NULL,
    api_key_hash BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    id         BLOB    PRIMARY KEY,
    app_id     BLOB    NOT NULL,
    user_id    BLOB    NOT NULL,
    name       TEXT    NOT NULL,
    platform   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (app_id, user_id, name)
) STRICT;

CREATE TABLE key_envelopes (
    app_id     BLOB    NOT NULL,
    user_id    BLOB    NOT NULL,
    envelope   BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE streams (
    app_id  BLOB    NOT NULL,
    user_id BLOB    NOT NULL,
    head    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE changes (
    app_id     BLOB    NOT NULL,
    user_id    BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    change_id  BLOB    NOT NULL,
    device_id  BLOB    NOT NULL,
    payload    BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, seq)
) STRICT;
CREATE UNIQUE INDEX changes_change_id ON changes (app_id, user_id, change_id);
