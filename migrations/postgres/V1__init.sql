-- SyncKit schema, PostgreSQL. Everything the server stores about a user's data is ciphertext or an opaque id.

-- Accounts are shared by every app of a deployment.
CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    email          text        NOT NULL UNIQUE,
    salt           bytea       NOT NULL,
    login_key_hash bytea       NOT NULL,
    token_version  bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE apps (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    api_key_hash bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    id         uuid        PRIMARY KEY,
    app_id     uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    name       text        NOT NULL,
    platform   text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (app_id, user_id, name)
);

CREATE TABLE key_envelopes (
    app_id     uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    envelope   bytea       NOT NULL,
    version    bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, user_id)
);

-- Deployment-wide secrets (the token signing key), created by the first instance that needs one.
CREATE TABLE server_secrets (
    name  text  PRIMARY KEY,
    value bytea NOT NULL
);

-- One row per stream: its head is the newest sequence number. Pushes lock this row first, which serialises the
-- writers of one stream (and only of that stream) until they commit, so commit order equals sequence order.
CREATE TABLE streams (
    app_id  uuid   NOT NULL,
    user_id uuid   NOT NULL,
    head    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, user_id)
);

CREATE TABLE changes (
    app_id     uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    seq        bigint      NOT NULL,
    change_id  uuid        NOT NULL,
    device_id  uuid        NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, user_id, seq)
);
CREATE UNIQUE INDEX changes_change_id ON changes (app_id, user_id, change_id);
-- Payloads are ciphertext: trying to compress them only burns CPU.
ALTER TABLE changes ALTER COLUMN payload SET STORAGE EXTERNAL;
